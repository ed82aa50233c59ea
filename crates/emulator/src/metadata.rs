//! The Metadata API's REST deploy (issue #15; `docs/salesforce-behaviour.md`, "The loader"):
//! `POST /services/data/vXX.X/metadata/deployRequest` with a ZIP, its status with `details`,
//! cancel, `checkOnly`, `rollbackOnError`, `destructiveChanges.xml`; the components it holds
//! (`AuraDefinitionBundle`, `LightningComponentBundle`, `CspTrustedSite`, `StaticResource`)
//! readable through Tooling and data queries.
//!
//! A deploy is validated when it is created (the failures are known from the start, as
//! Salesforce fills `componentFailures` while a deploy runs) and takes effect when its time is
//! up on the emulator's clock (`deploy_ms`, a few seconds by default): `Pending` for the first
//! quarter, `InProgress` after, then `Succeeded`, `SucceededPartial`, `Failed` or `Canceled`.
//! Every read of deploys or components settles the deploys whose time is up first.
//!
//! XML is read with a small tag reader that takes the well-formed, attribute-free files the
//! Metadata API's formats are; anything it cannot read is a component failure.

use std::collections::BTreeMap;
use std::io::Read;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::clock::sf_datetime;
use crate::rest::{Ctx, SfError, with_operation};
use crate::state::{StaticResource, World};

pub const DEPLOY_PREFIX: &str = "0Af";
pub const AURA_PREFIX: &str = "0Ab";
pub const LWC_PREFIX: &str = "0Rb";
pub const CSP_PREFIX: &str = "08y";
pub const FLEXIPAGE_PREFIX: &str = "0M0";

/// How long a deploy takes on the emulator's clock unless set otherwise.
pub const DEFAULT_DEPLOY_MS: i64 = 3_000;

/// A metadata component the org holds.
#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    pub org_id: String,
    pub kind: Kind,
    pub full_name: String,
    pub description: Option<String>,
    pub api_version: String,
    /// The bundle's files by path in the deploy ZIP (`aura/name/name.cmp`).
    pub files: BTreeMap<String, Vec<u8>>,
    pub csp: Option<CspSite>,
    pub created_ms: i64,
    pub created_by: String,
    pub modified_ms: i64,
    pub modified_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Aura,
    Lwc,
    CspTrustedSite,
    FlexiPage,
}

impl Kind {
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Aura => "AuraDefinitionBundle",
            Kind::Lwc => "LightningComponentBundle",
            Kind::CspTrustedSite => "CspTrustedSite",
            Kind::FlexiPage => "FlexiPage",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Aura => AURA_PREFIX,
            Kind::Lwc => LWC_PREFIX,
            Kind::CspTrustedSite => CSP_PREFIX,
            Kind::FlexiPage => FLEXIPAGE_PREFIX,
        }
    }
}

/// A CSP Trusted Site's settings.
#[derive(Debug, Clone, Default)]
pub struct CspSite {
    pub endpoint_url: String,
    pub context: String,
    pub is_active: bool,
    pub connect: bool,
    pub img: bool,
    pub media: bool,
    pub style: bool,
    pub font: bool,
    pub frame: bool,
}

/// A deploy and what it will do when its time is up.
#[derive(Debug, Clone)]
pub struct Deploy {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub user_name: String,
    pub options: Map<String, Value>,
    pub check_only: bool,
    pub created_ms: i64,
    pub done_ms: i64,
    pub failures: Vec<Value>,
    pub successes: Vec<Value>,
    pub total: usize,
    pub effects: Vec<Effect>,
    pub error: Option<(String, String)>,
    pub canceled: bool,
    pub settled: bool,
}

#[derive(Debug, Clone)]
pub enum Effect {
    Put(Component),
    PutResource(StaticResource),
    Delete(Kind, String),
    DeleteResource(String),
}

impl Deploy {
    /// Failures that are errors (a missing component to delete is only a warning).
    fn errors(&self) -> usize {
        self.failures.iter().filter(|f| f["problemType"] == "Error").count()
    }

    /// `Succeeded`, `SucceededPartial`, `Failed` or `Canceled` once done.
    fn outcome(&self) -> &'static str {
        if self.canceled {
            "Canceled"
        } else if self.error.is_some() || (self.errors() > 0 && (self.rollback_on_error() || self.successes.is_empty()))
        {
            "Failed"
        } else if self.errors() == 0 {
            "Succeeded"
        } else {
            "SucceededPartial"
        }
    }

    fn rollback_on_error(&self) -> bool {
        self.options.get("rollbackOnError").and_then(Value::as_bool).unwrap_or(false)
    }

    /// Whether its effects are applied when its time is up.
    fn applies(&self) -> bool {
        !self.check_only && matches!(self.outcome(), "Succeeded" | "SucceededPartial")
    }

    fn status(&self, now: i64) -> &'static str {
        if self.canceled || now >= self.done_ms {
            self.outcome()
        } else if now < self.created_ms + (self.done_ms - self.created_ms) / 4 {
            "Pending"
        } else {
            "InProgress"
        }
    }

    /// The REST answer: `id`, `url`, `deployOptions`, `deployResult`.
    pub fn to_json(&self, version: &str, now: i64, details: bool) -> Value {
        let status = self.status(now);
        let done = matches!(status, "Succeeded" | "SucceededPartial" | "Failed" | "Canceled");
        let success = done && matches!(status, "Succeeded" | "SucceededPartial");
        let deployed = if done && success { self.successes.len() } else { 0 };
        let details = details.then(|| {
            json!({
                "componentFailures": self.failures,
                "componentSuccesses": if done { self.successes.clone() } else { Vec::new() },
                "retrieveResult": null,
                "runTestResult": {"numTestsRun": 0, "numFailures": 0, "successes": [], "failures": [],
                                   "codeCoverage": [], "codeCoverageWarnings": [], "totalTime": 0.0},
            })
        });
        let url = format!("/services/data/v{version}/metadata/deployRequest/{}", self.id);
        let (error_code, error_message) = match &self.error {
            Some((c, m)) => (json!(c), json!(m)),
            None => (Value::Null, Value::Null),
        };
        json!({
            "id": self.id,
            "url": url,
            "deployOptions": self.options,
            "deployResult": {
                "id": self.id,
                "checkOnly": self.check_only,
                "ignoreWarnings": self.options.get("ignoreWarnings").and_then(Value::as_bool).unwrap_or(false),
                "rollbackOnError": self.rollback_on_error(),
                "status": status,
                "done": done,
                "success": success,
                "numberComponentsDeployed": deployed,
                "numberComponentsTotal": self.total,
                "numberComponentErrors": self.failures.iter().filter(|f| f["problemType"] == "Error").count(),
                "numberTestsCompleted": 0,
                "numberTestsTotal": 0,
                "numberTestErrors": 0,
                "details": details,
                "createdDate": sf_datetime(self.created_ms),
                "startDate": if status == "Pending" { Value::Null } else { json!(sf_datetime(self.created_ms)) },
                "lastModifiedDate": sf_datetime(now.min(self.done_ms)),
                "completedDate": if done { json!(sf_datetime(self.done_ms.min(now))) } else { Value::Null },
                "errorStatusCode": error_code,
                "errorMessage": error_message,
                "stateDetail": if done { Value::Null } else { json!("Processing Type: Component") },
                "createdBy": self.user_id,
                "createdByName": self.user_name,
                "canceledBy": if self.canceled { json!(self.user_id) } else { Value::Null },
                "canceledByName": if self.canceled { json!(self.user_name) } else { Value::Null },
                "runTestsEnabled": false,
            }
        })
    }
}

impl World {
    /// Applies the deploys whose time is up (in creation order).
    pub fn settle_deploys(&mut self, now: i64) {
        let mut due: Vec<(i64, String)> = self
            .deploys
            .values()
            .filter(|d| !d.settled && (d.canceled || d.done_ms <= now))
            .map(|d| (d.created_ms, d.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            let Some(deploy) = self.deploys.get_mut(&id) else { continue };
            deploy.settled = true;
            if !deploy.applies() {
                continue;
            }
            let effects = std::mem::take(&mut deploy.effects);
            let org = deploy.org_id.clone();
            for effect in effects {
                match effect {
                    Effect::Put(c) => {
                        let key = (c.org_id.clone(), c.kind, c.full_name.to_ascii_lowercase());
                        let c = match self.components.get(&key) {
                            Some(old) => Component {
                                id: old.id.clone(),
                                created_ms: old.created_ms,
                                created_by: old.created_by.clone(),
                                ..c
                            },
                            None => c,
                        };
                        self.components.insert(key, c);
                    }
                    Effect::Delete(kind, name) => {
                        self.components.remove(&(org.clone(), kind, name.to_ascii_lowercase()));
                    }
                    Effect::PutResource(r) => {
                        let r = match self.resource_by_name(&r.org_id, &r.name) {
                            Some(old) => StaticResource { id: old.id.clone(), created_ms: old.created_ms, ..r },
                            None => r,
                        };
                        self.put_resource(r);
                    }
                    Effect::DeleteResource(name) => {
                        if let Some(rid) = self.resource_by_name(&org, &name).map(|r| r.id.clone()) {
                            self.remove_resource(&rid);
                        }
                    }
                }
            }
        }
    }

    /// One org's components of a kind, by name.
    pub fn org_components(&self, org_id: &str, kind: Kind) -> impl Iterator<Item = &Component> {
        self.components.values().filter(move |c| c.org_id == org_id && c.kind == kind)
    }

    pub fn component(&self, org_id: &str, kind: Kind, name: &str) -> Option<&Component> {
        self.components.get(&(org_id.to_string(), kind, name.to_ascii_lowercase()))
    }

    /// Puts a component in an org as if an admin had made it (the seed's utility bars).
    pub fn seed_component(&mut self, org_id: &str, kind: Kind, name: &str, body: Vec<u8>, now: i64) {
        let id = self.new_record_id(org_id, kind.prefix());
        let path = match kind {
            Kind::FlexiPage => format!("flexipages/{name}.flexipage"),
            Kind::CspTrustedSite => format!("cspTrustedSites/{name}.cspTrustedSite"),
            Kind::Aura => format!("aura/{name}/{name}.cmp"),
            Kind::Lwc => format!("lwc/{name}/{name}.js"),
        };
        let component = Component {
            id,
            org_id: org_id.to_string(),
            kind,
            full_name: name.to_string(),
            description: None,
            api_version: format!("{}.0", crate::LATEST_API_VERSION),
            files: BTreeMap::from([(path, body)]),
            csp: None,
            created_ms: now,
            created_by: String::new(),
            modified_ms: now,
            modified_by: String::new(),
        };
        self.components.insert((org_id.to_string(), kind, name.to_ascii_lowercase()), component);
    }

    /// A FlexiPage's XML.
    pub fn flexipage_xml(&self, org_id: &str, name: &str) -> Option<String> {
        let page = self.component(org_id, Kind::FlexiPage, name)?;
        page.files.values().next().map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A component failure or success, as Salesforce's DeployMessage.
fn message(kind: &str, full_name: &str, file: &str, problem: Option<(&str, &str)>, created: bool) -> Value {
    let (problem, problem_type) = match problem {
        Some((text, level)) => (json!(text), json!(level)),
        None => (Value::Null, Value::Null),
    };
    json!({
        "changed": !created && problem.is_null(),
        "columnNumber": null,
        "componentType": kind,
        "created": created && problem.is_null(),
        "createdDate": null,
        "deleted": false,
        "fileName": file,
        "fullName": full_name,
        "id": null,
        "lineNumber": null,
        "problem": problem,
        "problemType": problem_type,
        "success": problem.is_null(),
    })
}

/// The text of every `<tag>…</tag>` in `xml`, in order (no attributes, no nesting of `tag`).
pub fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(after[..end].trim()));
        rest = &after[end + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// `(type, members)` of a `package.xml` (or `destructiveChanges.xml`).
fn manifest(xml: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    if !xml.contains("<Package") || !xml.contains("</Package>") {
        return Err("Error parsing file: the root element must be Package".into());
    }
    let mut types = Vec::new();
    for block in tag_values(xml, "types") {
        let names = tag_values(&block, "name");
        let [name] = names.as_slice() else {
            return Err("Error parsing file: each <types> needs exactly one <name>".into());
        };
        types.push((name.clone(), tag_values(&block, "members")));
    }
    Ok(types)
}

/// Types Salesforce has that the emulator does not model (a deploy naming one fails with
/// words that say so); any other name is unknown to Salesforce too.
const NOT_MODELLED: &[&str] = &[
    "ApexClass",
    "ApexTrigger",
    "ApexPage",
    "ApexComponent",
    "CustomApplication",
    "CustomObject",
    "CustomField",
    "CustomTab",
    "Layout",
    "PermissionSet",
    "Profile",
    "Flow",
];

struct Request<'a> {
    org_id: &'a str,
    user_id: &'a str,
    now: i64,
    files: BTreeMap<String, Vec<u8>>,
}

/// Validates a deploy's ZIP: the messages and the effects it would have.
fn plan(world: &World, req: &Request<'_>) -> (Vec<Value>, Vec<Value>, Vec<Effect>, usize) {
    let (mut failures, mut successes, mut effects) = (Vec::new(), Vec::new(), Vec::new());
    let text = |path: &str| req.files.get(path).map(|b| String::from_utf8_lossy(b).into_owned());
    let Some(package) = text("package.xml") else {
        failures.push(message("", "package.xml", "package.xml", Some(("No package.xml found", "Error")), false));
        return (failures, successes, effects, 0);
    };
    let types = match manifest(&package) {
        Ok(m) => m,
        Err(e) => {
            failures.push(message("", "package.xml", "package.xml", Some((&e, "Error")), false));
            return (failures, successes, effects, 0);
        }
    };
    // Static resources in this deploy count as present for the bundles that load them.
    let deployed_resources: Vec<String> = types
        .iter()
        .filter(|(t, _)| t == "StaticResource")
        .flat_map(|(_, m)| m.iter().map(|n| n.to_ascii_lowercase()))
        .collect();
    // So are components, for the pages that name them.
    let deployed_components: Vec<String> = types
        .iter()
        .filter(|(t, _)| t == "AuraDefinitionBundle" || t == "LightningComponentBundle")
        .flat_map(|(_, m)| m.iter().map(|n| n.to_ascii_lowercase()))
        .collect();
    let mut total = 0;
    for (type_name, members) in &types {
        for member in members {
            total += 1;
            let result = match type_name.as_str() {
                "AuraDefinitionBundle" => aura(world, req, member, &deployed_resources),
                "LightningComponentBundle" => lwc(req, member),
                "CspTrustedSite" => csp(req, member),
                "FlexiPage" => flexipage(world, req, member, &deployed_components),
                "StaticResource" => static_resource(req, member),
                t if NOT_MODELLED.contains(&t) => Err((
                    String::new(),
                    format!("The emulator does not model metadata type {t} (Salesforce would deploy it)"),
                )),
                t => Err(("package.xml".into(), format!("Unknown type name '{t}' specified in package.xml"))),
            };
            match result {
                Ok((file, effect)) => {
                    let created = match &effect {
                        Effect::Put(c) => world.component(req.org_id, c.kind, &c.full_name).is_none(),
                        Effect::PutResource(r) => world.resource_by_name(req.org_id, &r.name).is_none(),
                        _ => false,
                    };
                    successes.push(message(type_name, member, &file, None, created));
                    effects.push(effect);
                }
                Err((file, problem)) => {
                    failures.push(message(type_name, member, &file, Some((&problem, "Error")), false))
                }
            }
        }
    }
    // Deletions: `destructiveChanges.xml` and `…Pre.xml` before the additions, `…Post.xml`
    // after them. A component still named by a Lightning page (as the org will be at that
    // moment) cannot be deleted, nor a page an app uses as its utility bar.
    let puts = std::mem::take(&mut effects);
    let mut pre = Vec::new();
    let mut post = Vec::new();
    for destructive in ["destructiveChanges.xml", "destructiveChangesPre.xml", "destructiveChangesPost.xml"] {
        let Some(xml) = text(destructive) else { continue };
        let Ok(types) = manifest(&xml) else {
            failures.push(message("", destructive, destructive, Some(("Error parsing file", "Error")), false));
            continue;
        };
        let after_puts = destructive == "destructiveChangesPost.xml";
        for (type_name, members) in types {
            for member in members {
                let kind = match type_name.as_str() {
                    "AuraDefinitionBundle" => Some(Kind::Aura),
                    "LightningComponentBundle" => Some(Kind::Lwc),
                    "CspTrustedSite" => Some(Kind::CspTrustedSite),
                    "FlexiPage" => Some(Kind::FlexiPage),
                    _ => None,
                };
                let exists = match kind {
                    Some(k) => world.component(req.org_id, k, &member).is_some(),
                    None => type_name == "StaticResource" && world.resource_by_name(req.org_id, &member).is_some(),
                };
                if !exists {
                    let words = format!("No {type_name} named: {member} found");
                    failures.push(message(&type_name, &member, destructive, Some((&words, "Warning")), false));
                    continue;
                }
                if let Some(problem) = in_use(world, req.org_id, kind, &member, after_puts.then_some(&puts[..])) {
                    failures.push(message(&type_name, &member, destructive, Some((&problem, "Error")), false));
                    continue;
                }
                total += 1;
                let mut deleted = message(&type_name, &member, destructive, None, false);
                deleted["deleted"] = json!(true);
                deleted["changed"] = json!(false);
                successes.push(deleted);
                let effect = match kind {
                    Some(k) => Effect::Delete(k, member),
                    None => Effect::DeleteResource(member),
                };
                if after_puts { post.push(effect) } else { pre.push(effect) }
            }
        }
    }
    effects = pre;
    effects.extend(puts);
    effects.extend(post);
    (failures, successes, effects, total)
}

/// Why a component cannot be deleted: a Lightning page names it, or an app uses the page as
/// its utility bar. `puts` are this deploy's additions when the deletion runs after them.
fn in_use(world: &World, org: &str, kind: Option<Kind>, name: &str, puts: Option<&[Effect]>) -> Option<String> {
    match kind? {
        Kind::Aura | Kind::Lwc => {
            let replaced = |page: &str| {
                puts.into_iter().flatten().find_map(|e| match e {
                    Effect::Put(c) if c.kind == Kind::FlexiPage && c.full_name.eq_ignore_ascii_case(page) => Some(
                        c.files.values().next().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
                    ),
                    _ => None,
                })
            };
            let names = |xml: &str| {
                crate::flexipage::component_names(xml)
                    .iter()
                    .any(|n| crate::flexipage::own_component(n).is_some_and(|own| own.eq_ignore_ascii_case(name)))
            };
            let mut pages: Vec<String> = world
                .org_components(org, Kind::FlexiPage)
                .filter(|p| match replaced(&p.full_name) {
                    Some(xml) => names(&xml),
                    None => p.files.values().any(|b| names(&String::from_utf8_lossy(b))),
                })
                .map(|p| p.full_name.clone())
                .collect();
            for e in puts.into_iter().flatten() {
                if let Effect::Put(c) = e
                    && c.kind == Kind::FlexiPage
                    && world.component(org, Kind::FlexiPage, &c.full_name).is_none()
                    && c.files.values().any(|b| names(&String::from_utf8_lossy(b)))
                {
                    pages.push(c.full_name.clone());
                }
            }
            (!pages.is_empty()).then(|| {
                format!(
                    "This component is referenced by the Lightning page(s) {}: remove it from them first",
                    pages.join(", ")
                )
            })
        }
        Kind::FlexiPage => {
            let apps: Vec<String> = world
                .orgs
                .get(org)
                .map(|o| {
                    o.apps
                        .iter()
                        .filter(|a| a.utility_bar.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(name)))
                        .map(|a| a.label.clone())
                        .collect()
                })
                .unwrap_or_default();
            (!apps.is_empty())
                .then(|| format!("This Lightning page is the utility bar of the app(s) {}", apps.join(", ")))
        }
        Kind::CspTrustedSite => None,
    }
}

type Planned = Result<(String, Effect), (String, String)>;

fn flexipage(world: &World, req: &Request<'_>, name: &str, deployed_components: &[String]) -> Planned {
    let path = format!("flexipages/{name}.flexipage");
    let body = req.files.get(&path).ok_or_else(|| (path.clone(), not_in_zip("FlexiPage", name)))?;
    let xml = String::from_utf8_lossy(body).into_owned();
    let exists = |own: &str| {
        deployed_components.contains(&own.to_ascii_lowercase())
            || world.component(req.org_id, Kind::Aura, own).is_some()
            || world.component(req.org_id, Kind::Lwc, own).is_some()
    };
    crate::flexipage::validate(&xml, exists).map_err(|problem| (path.clone(), problem))?;
    let files = BTreeMap::from([(path.clone(), body.clone())]);
    let mut component = new_component(req, Kind::FlexiPage, name, None, files);
    component.description = crate::flexipage::metadata_json(&xml)["description"].as_str().map(str::to_string);
    Ok((path, Effect::Put(component)))
}

fn new_component(
    req: &Request<'_>,
    kind: Kind,
    name: &str,
    meta: Option<&str>,
    files: BTreeMap<String, Vec<u8>>,
) -> Component {
    let description = meta.and_then(|m| tag_values(m, "description").into_iter().next());
    let api_version =
        meta.and_then(|m| tag_values(m, "apiVersion").into_iter().next()).unwrap_or_else(|| "60.0".into());
    Component {
        id: String::new(),
        org_id: req.org_id.to_string(),
        kind,
        full_name: name.to_string(),
        description,
        api_version,
        files,
        csp: None,
        created_ms: req.now,
        created_by: req.user_id.to_string(),
        modified_ms: req.now,
        modified_by: req.user_id.to_string(),
    }
}

fn bundle_files(req: &Request<'_>, folder: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let prefix = format!("{folder}/{name}/");
    req.files.iter().filter(|(p, _)| p.starts_with(&prefix)).map(|(p, b)| (p.clone(), b.clone())).collect()
}

fn not_in_zip(type_name: &str, name: &str) -> String {
    format!("An object '{name}' of type {type_name} was named in package.xml, but was not found in zipped directory")
}

fn aura(world: &World, req: &Request<'_>, name: &str, deployed_resources: &[String]) -> Planned {
    let files = bundle_files(req, "aura", name);
    let definition = ["cmp", "app", "evt", "intf"]
        .iter()
        .map(|ext| format!("aura/{name}/{name}.{ext}"))
        .find(|p| files.contains_key(p))
        .ok_or_else(|| (format!("aura/{name}"), not_in_zip("AuraDefinitionBundle", name)))?;
    let markup = String::from_utf8_lossy(&files[&definition]).into_owned();
    let root = if definition.ends_with(".app") { "aura:application" } else { "aura:component" };
    let wellformed = markup.trim_start().trim_start_matches(|c| c != '<').starts_with(&format!("<{root}"))
        && markup.trim_end().ends_with(&format!("</{root}>"));
    if !wellformed && !markup.trim_end().ends_with("/>") {
        return Err((definition, format!("Markup for {root} is not well-formed")));
    }
    for resource in resource_references(&markup) {
        let present = deployed_resources.contains(&resource.to_ascii_lowercase())
            || world.resource_by_name(req.org_id, &resource).is_some()
            || world.org_resources(req.org_id).any(|r| {
                r.namespace_prefix
                    .as_deref()
                    .is_some_and(|ns| format!("{ns}__{}", r.name).eq_ignore_ascii_case(&resource))
            });
        if !present {
            return Err((definition, format!("No STATIC_RESOURCE named {resource} found")));
        }
    }
    let meta_path = format!("aura/{name}/{name}.{}-meta.xml", definition.rsplit('.').next().unwrap_or("cmp"));
    let meta = files.get(&meta_path).map(|b| String::from_utf8_lossy(b).into_owned());
    Ok((definition, Effect::Put(new_component(req, Kind::Aura, name, meta.as_deref(), files))))
}

/// The static resources a markup names as `$Resource.Name`.
pub fn resource_references(markup: &str) -> Vec<String> {
    markup
        .match_indices("$Resource.")
        .map(|(at, found)| {
            markup[at + found.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

fn lwc(req: &Request<'_>, name: &str) -> Planned {
    let files = bundle_files(req, "lwc", name);
    let js = format!("lwc/{name}/{name}.js");
    let meta_path = format!("lwc/{name}/{name}.js-meta.xml");
    if !files.contains_key(&js) || !files.contains_key(&meta_path) {
        return Err((format!("lwc/{name}"), not_in_zip("LightningComponentBundle", name)));
    }
    let meta = String::from_utf8_lossy(&files[&meta_path]).into_owned();
    if tag_values(&meta, "apiVersion").is_empty() {
        return Err((meta_path, "apiVersion is required: every component must specify an API version".into()));
    }
    Ok((js, Effect::Put(new_component(req, Kind::Lwc, name, Some(&meta), files))))
}

fn csp(req: &Request<'_>, name: &str) -> Planned {
    let path = format!("cspTrustedSites/{name}.cspTrustedSite");
    let xml = req
        .files
        .get(&path)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| (path.clone(), not_in_zip("CspTrustedSite", name)))?;
    let get = |tag: &str| tag_values(&xml, tag).into_iter().next();
    let flag = |tag: &str| get(tag).is_some_and(|v| v == "true");
    let endpoint =
        get("endpointUrl").ok_or_else(|| (path.clone(), "Required field is missing: endpointUrl".to_string()))?;
    if !is_origin(&endpoint) {
        return Err((
            path,
            format!("endpointUrl {endpoint:?}: a URL with a domain name (and an optional port), nothing after it"),
        ));
    }
    let site = CspSite {
        endpoint_url: endpoint,
        context: get("context").unwrap_or_else(|| "All".into()),
        is_active: get("isActive").is_none_or(|v| v == "true"),
        connect: flag("isApplicableToConnectSrc"),
        img: flag("isApplicableToImgSrc"),
        media: flag("isApplicableToMediaSrc"),
        style: flag("isApplicableToStyleSrc"),
        font: flag("isApplicableToFontSrc"),
        frame: flag("isApplicableToFrameSrc"),
    };
    if !(site.connect || site.img || site.media || site.style || site.font || site.frame) {
        return Err((path, "At least one isApplicableTo… field must be true (API 59.0 and later)".into()));
    }
    if !["All", "LEX", "Communities", "VisualForce", "FieldServiceMobileExtension"].contains(&site.context.as_str()) {
        return Err((path, format!("context: bad value for restricted picklist field: {}", site.context)));
    }
    let mut component = new_component(req, Kind::CspTrustedSite, name, Some(&xml), BTreeMap::new());
    component.csp = Some(site);
    Ok((path, Effect::Put(component)))
}

/// `scheme://host[:port][/]`, the host a domain name (a leading `*.` allowed), as a CSP
/// Trusted Site's `endpointUrl` must be.
fn is_origin(endpoint: &str) -> bool {
    let Some((scheme, rest)) = endpoint.split_once("://") else { return false };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .trim_start_matches("*.")
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    ["http", "https", "wss", "ws"].contains(&scheme.to_ascii_lowercase().as_str())
        && host_ok
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

fn static_resource(req: &Request<'_>, name: &str) -> Planned {
    let body_path = format!("staticresources/{name}.resource");
    let meta_path = format!("staticresources/{name}.resource-meta.xml");
    let (Some(body), Some(meta)) = (req.files.get(&body_path), req.files.get(&meta_path)) else {
        return Err((body_path, not_in_zip("StaticResource", name)));
    };
    if let Some(problem) = crate::rest::name_problem(name) {
        return Err((body_path, problem.to_string()));
    }
    let meta = String::from_utf8_lossy(meta).into_owned();
    let get = |tag: &str| tag_values(&meta, tag).into_iter().next();
    let (Some(content_type), Some(cache_control)) = (get("contentType"), get("cacheControl")) else {
        return Err((meta_path, "Required fields are missing: contentType, cacheControl".into()));
    };
    Ok((
        body_path,
        Effect::PutResource(StaticResource {
            id: String::new(),
            org_id: req.org_id.to_string(),
            namespace_prefix: None,
            name: name.to_string(),
            content_type,
            cache_control,
            description: get("description"),
            body: Bytes::from(body.clone()),
            created_ms: req.now,
            created_by: req.user_id.to_string(),
            modified_ms: req.now,
            modified_by: req.user_id.to_string(),
        }),
    ))
}

fn unzip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a ZIP: {e}"))?;
    if archive.len() > 10_000 {
        return Err("more than 10,000 files".into());
    }
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("a damaged entry: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| format!("an entry's name: {e}"))?.trim_start_matches("./").to_string();
        let mut data = Vec::new();
        (&mut entry).take(600 * 1024 * 1024 - total).read_to_end(&mut data).map_err(|e| format!("{name}: {e}"))?;
        total += data.len() as u64;
        files.insert(name, data);
    }
    Ok(files)
}

/// `POST /services/data/vXX.X/metadata/deployRequest`.
pub(crate) async fn create(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let label = "deploy:create".to_string();
    let answer = create_in(&shared, &ctx, &headers, &body);
    with_operation(answer.unwrap_or_else(IntoResponse::into_response), label)
}

fn create_in(shared: &Shared, ctx: &Ctx, headers: &HeaderMap, body: &Bytes) -> Result<Response, SfError> {
    let malformed = |why: &str| SfError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", why);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media != "multipart/form-data" {
        let words = format!("MediaType of '{media}' is not supported by this resource");
        return Err(SfError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", &words));
    }
    let boundary =
        crate::multipart::boundary(content_type).ok_or_else(|| malformed("no boundary in the Content-Type"))?;
    let parts = crate::multipart::parts(body, boundary).map_err(malformed)?;
    let part = |names: &[&str]| parts.iter().find(|p| p.name.as_deref().is_some_and(|n| names.contains(&n)));
    let json_part = part(&["json", "entity_content"]).ok_or_else(|| malformed("no deployOptions part (json)"))?;
    let zip_part = part(&["file"]).ok_or_else(|| malformed("no ZIP part (file)"))?;
    let parsed: Value = serde_json::from_slice(&json_part.data).map_err(|e| {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character at [line:{},column:{}]", e.line(), e.column()),
        )
    })?;
    let options = parsed.get("deployOptions").and_then(Value::as_object).cloned().unwrap_or_default();
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    world.settle_deploys(now);
    let user = world.users.get(&ctx.user_id).cloned().ok_or_else(SfError::not_found)?;
    if !(user.modify_metadata || user.modify_all_data) {
        return Err(SfError::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_ACCESS",
            "use of the Metadata API requires a user with the ModifyAllData or ModifyMetadata permissions",
        ));
    }
    let sandbox = world.orgs.get(&ctx.org_id).is_some_and(|o| o.sandbox);
    if options.get("testLevel").and_then(Value::as_str) == Some("NoTestRun") && !sandbox {
        return Err(SfError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_OPERATION",
            "testLevel of NoTestRun cannot be used in production organizations",
        ));
    }
    let (files, error) = match unzip(&zip_part.data) {
        Ok(files) => (files, None),
        Err(e) => (BTreeMap::new(), Some(("UNKNOWN_EXCEPTION".to_string(), format!("The ZIP cannot be read: {e}")))),
    };
    let request = Request { org_id: &ctx.org_id, user_id: &ctx.user_id, now, files };
    let (failures, successes, mut effects, total) =
        if error.is_some() { Default::default() } else { plan(&world, &request) };
    for effect in &mut effects {
        match effect {
            Effect::Put(c) => c.id = world.new_record_id(&ctx.org_id, c.kind.prefix()),
            Effect::PutResource(r) => r.id = world.new_record_id(&ctx.org_id, crate::ids::STATIC_RESOURCE_PREFIX),
            _ => {}
        }
    }
    let id = world.new_record_id(&ctx.org_id, DEPLOY_PREFIX);
    let deploy = Deploy {
        id: id.clone(),
        org_id: ctx.org_id.clone(),
        user_id: ctx.user_id.clone(),
        user_name: user.display_name(),
        check_only: options.get("checkOnly").and_then(Value::as_bool).unwrap_or(false),
        options,
        created_ms: now,
        done_ms: now + world.deploy_ms,
        failures,
        successes,
        total,
        effects,
        error,
        canceled: false,
        settled: false,
    };
    let answer = deploy.to_json(&ctx.version, now, false);
    world.deploys.insert(id, deploy);
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// `GET /services/data/vXX.X/metadata/deployRequest/{id}[?includeDetails=true]`.
pub(crate) async fn status(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    world.settle_deploys(now);
    let details = q.get("includeDetails").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let answer = match find(&world, &ctx, &id) {
        Ok(d) => axum::Json(d.to_json(&ctx.version, now, details)).into_response(),
        Err(e) => e.into_response(),
    };
    with_operation(answer, "deploy:status".into())
}

/// `PATCH …/deployRequest/{id}` with `{"deployResult":{"status":"Canceling"}}`: 202.
pub(crate) async fn cancel(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    world.settle_deploys(now);
    let asked = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["deployResult"]["status"].as_str().map(str::to_string));
    let answer = if asked.as_deref() != Some("Canceling") {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "Only {\"deployResult\":{\"status\":\"Canceling\"}} may be sent",
        )
        .into_response()
    } else {
        match find(&world, &ctx, &id).map(|d| d.id.clone()) {
            Ok(id) => {
                let deploy = world.deploys.get_mut(&id).expect("found");
                if !deploy.settled {
                    deploy.canceled = true;
                    deploy.done_ms = now;
                }
                let answer = deploy.to_json(&ctx.version, now, false);
                world.settle_deploys(now);
                (StatusCode::ACCEPTED, axum::Json(answer)).into_response()
            }
            Err(e) => e.into_response(),
        }
    };
    with_operation(answer, "deploy:cancel".into())
}

fn find<'w>(world: &'w World, ctx: &Ctx, id: &str) -> Result<&'w Deploy, SfError> {
    crate::ids::normalize(id)
        .and_then(|id| world.deploys.get(&id))
        .filter(|d| d.org_id == ctx.org_id)
        .ok_or_else(SfError::not_found)
}

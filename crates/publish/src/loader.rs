//! The loader (issue #15, B7): the small metadata package that makes a published static
//! resource run on every page of an org's Lightning apps, and its deploy.
//!
//! What it puts in an org (`docs/salesforce-behaviour.md`, "What the loader puts in an org"):
//! - an Aura component implementing `lightning:backgroundUtilityItem` (Lightning creates it
//!   when an app loads; it renders nothing) whose only markup is an `<ltng:require>` of the
//!   configured scripts and styles inside the environment's static resource — LWC has no
//!   background utility items;
//! - a CSP Trusted Site per origin the player calls back to (`connect-src`, images, media):
//!   scripts themselves can only come from static resources;
//! - the component in the utility bar of each chosen Lightning app: each bar (a `FlexiPage`)
//!   is read from the org, the component added to its `Background` region (and taken out of
//!   the bars of apps no longer chosen), and deployed back whole with the rest — the
//!   customer's own utility items stay as they were. An app without a utility bar is refused
//!   with the fix (Lightbridge never rewrites a customer's app definition).
//!
//! The package is built deterministically: the same settings give the same bytes, the same
//! version, and names derived from the system × environment (`lightbridgeLoader_<key>`,
//! `Lightbridge_<key>_<n>`) that a customer's own metadata does not use. Each component's
//! description carries the version, so what an org holds is read back with one query.

use std::io::Write;
use std::time::Duration;

use domain::ResourceName;
use salesforce::metadata::{ComponentProblem, DeployMode, DeployStatus};
use salesforce::{API_VERSION, Client, SalesforceError, Session};
use serde_json::Value;
use zip::write::SimpleFileOptions;

/// What a system's loader loads, and where its player may call back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderSettings {
    /// The environment's published static resource.
    pub resource: ResourceName,
    /// Scripts inside the resource, loaded in this order (`player.js`, `js/app.js`).
    pub scripts: Vec<String>,
    /// Style sheets inside the resource.
    pub styles: Vec<String>,
    /// Origins the player calls (`https://api.example.com`, `https://cdn.example.com:8443`).
    pub trusted_sites: Vec<String>,
    /// Lightning apps whose utility bars hold the loader (`standard__LightningSales`, `MyApp`).
    pub apps: Vec<String>,
}

impl LoaderSettings {
    /// The settings a system keeps, for the resource an environment publishes.
    pub fn from_config(resource: ResourceName, config: &domain::LoaderConfig) -> Self {
        LoaderSettings {
            resource,
            scripts: config.scripts.clone(),
            styles: config.styles.clone(),
            trusted_sites: config.trusted_sites.clone(),
            apps: config.apps.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderError {
    #[error("the loader needs at least one script or style sheet to load")]
    NothingToLoad,
    #[error("{0:?} is not a path inside the resource: letters, digits, '.', '-', '_' and '/', no leading '/', no '..'")]
    BadPath(String),
    #[error(
        "{0:?} is not an origin a CSP Trusted Site can name: https://host[:port] (http only for 127.0.0.1 or localhost), nothing after it"
    )]
    BadSite(String),
    #[error("at most {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("the published resource has no file {0:?}")]
    Missing(String),
    #[error("the loader needs at least one Lightning app to run in (e.g. standard__LightningSales)")]
    NoApps,
    #[error(
        "{0:?} is not a Lightning app's API name: MyApp, or namespace__MyApp (letters, digits, single underscores)"
    )]
    BadApp(String),
}

const MAX_FILES: usize = 20;
const MAX_SITES: usize = 20;
const MAX_APPS: usize = 20;

/// `MyApp` or `ns__MyApp`, each part a developer name (a letter first; letters, digits and
/// single underscores, not ending in one).
fn app_name_ok(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 80
            && p.starts_with(|c: char| c.is_ascii_alphabetic())
            && !p.ends_with('_')
            && !p.contains("__")
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match name.split_once("__") {
        Some((ns, rest)) => ns.len() <= 15 && part(ns) && part(rest),
        None => part(name),
    }
}

/// Every fault of a loader's parts, each with the field it is in (`scripts`, `styles`,
/// `trusted_sites`): empty when they are fine.
pub fn faults(
    scripts: &[String],
    styles: &[String],
    trusted_sites: &[String],
    apps: &[String],
) -> Vec<(&'static str, LoaderError)> {
    let mut out = Vec::new();
    if apps.is_empty() {
        out.push(("apps", LoaderError::NoApps));
    }
    if apps.len() > MAX_APPS {
        out.push(("apps", LoaderError::TooMany { what: "apps", max: MAX_APPS }));
    }
    for app in apps.iter().filter(|a| !app_name_ok(a)) {
        out.push(("apps", LoaderError::BadApp(app.clone())));
    }
    if scripts.is_empty() && styles.is_empty() {
        out.push(("scripts", LoaderError::NothingToLoad));
    }
    if scripts.len() + styles.len() > MAX_FILES {
        out.push(("scripts", LoaderError::TooMany { what: "scripts and style sheets", max: MAX_FILES }));
    }
    if trusted_sites.len() > MAX_SITES {
        out.push(("trusted_sites", LoaderError::TooMany { what: "trusted sites", max: MAX_SITES }));
    }
    for (field, paths) in [("scripts", scripts), ("styles", styles)] {
        for path in paths {
            let ok = !path.is_empty()
                && path.len() <= 200
                && !path.starts_with('/')
                && path.split('/').all(|seg| !seg.is_empty() && seg != "..")
                && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
            if !ok {
                out.push((field, LoaderError::BadPath(path.clone())));
            }
        }
    }
    for site in trusted_sites {
        if origin(site).is_none() {
            out.push(("trusted_sites", LoaderError::BadSite(site.clone())));
        }
    }
    out
}

impl LoaderSettings {
    /// Checks every path and origin; the first fault found.
    pub fn validate(&self) -> Result<(), LoaderError> {
        match faults(&self.scripts, &self.styles, &self.trusted_sites, &self.apps).into_iter().next() {
            Some((_, fault)) => Err(fault),
            None => Ok(()),
        }
    }

    /// The configured files the published resource does not have.
    pub fn check_files(&self, published: &[String]) -> Result<(), LoaderError> {
        match self.scripts.iter().chain(&self.styles).find(|p| !published.contains(p)) {
            Some(missing) => Err(LoaderError::Missing(missing.clone())),
            None => Ok(()),
        }
    }
}

/// `scheme://host[:port]` of a trusted site, as its `endpointUrl`.
fn origin(site: &str) -> Option<String> {
    let url = url::Url::parse(site).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let loopback = host == "127.0.0.1" || host == "localhost";
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
    (scheme_ok && bare && !site.trim_end_matches('/').ends_with(':')).then(|| url.origin().ascii_serialization())
}

/// A built loader: its ZIP for the Metadata API, its version, and its components' names.
#[derive(Debug, Clone)]
pub struct LoaderPackage {
    /// The Aura bundle's developer name.
    pub bundle: String,
    /// The CSP Trusted Sites' developer names, in the settings' order.
    pub sites: Vec<String>,
    /// A hash of everything the package holds and the apps it is placed in (16 hex digits).
    pub version: String,
    /// The package without utility bars (what `zip_with(&[])` gives).
    pub zip: Vec<u8>,
    /// The apps whose utility bars hold it.
    pub apps: Vec<String>,
    files: Vec<(String, String)>,
    types: String,
}

impl LoaderPackage {
    /// Builds the package for one system × environment (`owner` names it, e.g. the system and
    /// environment ids).
    pub fn build(owner: &str, settings: &LoaderSettings) -> Result<LoaderPackage, LoaderError> {
        settings.validate()?;
        let key: String = hex(&sha256(owner.as_bytes()))[..10].to_string();
        let bundle = format!("lightbridgeLoader_{key}");
        let sites: Vec<String> = (1..=settings.trusted_sites.len()).map(|n| format!("Lightbridge_{key}_{n}")).collect();
        // The version covers the content; the descriptions then name it.
        let (content, _) = Self::files(&bundle, &sites, settings, "");
        let mut hasher_input = Vec::new();
        for (path, text) in &content {
            hasher_input.extend_from_slice(path.as_bytes());
            hasher_input.push(0);
            hasher_input.extend_from_slice(text.as_bytes());
            hasher_input.push(0);
        }
        // The apps as a set: their order and case change nothing in an org.
        let mut apps: Vec<String> = settings.apps.iter().map(|a| a.to_ascii_lowercase()).collect();
        apps.sort();
        apps.dedup();
        for app in &apps {
            hasher_input.extend_from_slice(b"app\0");
            hasher_input.extend_from_slice(app.as_bytes());
            hasher_input.push(0);
        }
        let version = hex(&sha256(&hasher_input))[..16].to_string();
        let (files, types) = Self::files(&bundle, &sites, settings, &marker(&version, &settings.resource));
        let mut package =
            LoaderPackage { bundle, sites, version, zip: Vec::new(), apps: settings.apps.clone(), files, types };
        package.zip = package.zip_with(&[]);
        Ok(package)
    }

    /// The component names a system × environment's loader uses, whatever its settings: what
    /// removing it needs.
    pub fn names(owner: &str) -> LoaderPackage {
        let key: String = hex(&sha256(owner.as_bytes()))[..10].to_string();
        LoaderPackage {
            bundle: format!("lightbridgeLoader_{key}"),
            sites: Vec::new(),
            version: String::new(),
            zip: Vec::new(),
            apps: Vec::new(),
            files: Vec::new(),
            types: String::new(),
        }
    }

    /// How a utility bar names the component (`c:lightbridgeLoader_…`).
    pub fn component_name(&self) -> String {
        format!("c:{}", self.bundle)
    }

    /// The package for one org: its files, plus the utility bars it changes there.
    pub fn zip_with(&self, bars: &[BarChange]) -> Vec<u8> {
        let mut files = self.files.clone();
        let mut types = self.types.clone();
        if !bars.is_empty() {
            types.push_str(&bar_types(bars));
            files.extend(bars.iter().map(|b| (format!("flexipages/{}.flexipage", b.name), b.xml.clone())));
        }
        files.push(("package.xml".into(), manifest(&types)));
        files.sort();
        deterministic_zip(&files)
    }

    /// The files (all but `package.xml`) and the manifest's `<types>`.
    fn files(
        bundle: &str,
        sites: &[String],
        settings: &LoaderSettings,
        description: &str,
    ) -> (Vec<(String, String)>, String) {
        let resource = settings.resource.as_str();
        let join = |paths: &[String]| -> String {
            let parts: Vec<String> = paths.iter().map(|p| format!("$Resource.{resource} + '/{p}'")).collect();
            match parts.len() {
                0 => String::new(),
                1 => format!("{{!{}}}", parts[0]),
                _ => format!("{{!join(',', {})}}", parts.join(", ")),
            }
        };
        let mut require = String::from("<ltng:require");
        if !settings.scripts.is_empty() {
            require.push_str(&format!(" scripts=\"{}\"", join(&settings.scripts)));
        }
        if !settings.styles.is_empty() {
            require.push_str(&format!(" styles=\"{}\"", join(&settings.styles)));
        }
        require.push_str(" afterScriptsLoaded=\"{!c.loaded}\"/>");
        let mut files = vec![
            (
                format!("aura/{bundle}/{bundle}.cmp"),
                format!(
                    "<aura:component implements=\"lightning:backgroundUtilityItem\">\n    {require}\n</aura:component>\n"
                ),
            ),
            (
                format!("aura/{bundle}/{bundle}.cmp-meta.xml"),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuraDefinitionBundle xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <apiVersion>{API_VERSION}</apiVersion>\n    <description>{}</description>\n</AuraDefinitionBundle>\n",
                    xml_escape(description)
                ),
            ),
            (
                format!("aura/{bundle}/{bundle}Controller.js"),
                "({\n    // The scripts run as they load; nothing else to do.\n    loaded: function () {}\n})\n"
                    .to_string(),
            ),
        ];
        for (name, site) in sites.iter().zip(&settings.trusted_sites) {
            let endpoint = origin(site).unwrap_or_default();
            files.push((
                format!("cspTrustedSites/{name}.cspTrustedSite"),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CspTrustedSite xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <context>LEX</context>\n    <description>{}</description>\n    <endpointUrl>{}</endpointUrl>\n    <isActive>true</isActive>\n    <isApplicableToConnectSrc>true</isApplicableToConnectSrc>\n    <isApplicableToImgSrc>true</isApplicableToImgSrc>\n    <isApplicableToMediaSrc>true</isApplicableToMediaSrc>\n</CspTrustedSite>\n",
                    xml_escape(description),
                    xml_escape(&endpoint)
                ),
            ));
        }
        let mut types = format!(
            "    <types>\n        <members>{bundle}</members>\n        <name>AuraDefinitionBundle</name>\n    </types>\n"
        );
        if !sites.is_empty() {
            types.push_str(&csp_types(sites.iter().cloned()));
        }
        // Sites an earlier version had and this one does not: removed after the deploy (a
        // name the org does not hold is only a warning), so a dropped origin stops being
        // trusted.
        if let Some(stale) = stale_sites(bundle, sites.len()) {
            files.push(("destructiveChangesPost.xml".into(), stale));
        }
        files.sort();
        (files, types)
    }

    /// The description each component carries: the version, and what it is.
    pub fn marker(&self, resource: &ResourceName) -> String {
        marker(&self.version, resource)
    }

    /// The ZIP that removes this package's components: destructive changes beside an empty
    /// manifest, or — when utility bars still hold the component — beside the bars without
    /// it, the deletion running after they change (`destructiveChangesPost.xml`).
    pub fn removal_zip(&self, bars: &[BarChange]) -> Vec<u8> {
        let mut types = format!(
            "    <types>\n        <members>{}</members>\n        <name>AuraDefinitionBundle</name>\n    </types>\n",
            self.bundle
        );
        // Every site any version of it may have left.
        types.push_str(&csp_types(site_names(&self.bundle, 1)));
        if bars.is_empty() {
            return deterministic_zip(&[
                ("destructiveChanges.xml".into(), manifest(&types)),
                ("package.xml".into(), manifest("")),
            ]);
        }
        let mut files = vec![
            ("destructiveChangesPost.xml".to_string(), manifest(&types)),
            ("package.xml".to_string(), manifest(&bar_types(bars))),
        ];
        files.extend(bars.iter().map(|b| (format!("flexipages/{}.flexipage", b.name), b.xml.clone())));
        files.sort();
        deterministic_zip(&files)
    }
}

/// One utility bar as the loader leaves it in an org: the whole page, to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarChange {
    /// The page's developer name.
    pub name: String,
    /// Its Metadata API XML.
    pub xml: String,
}

fn bar_types(bars: &[BarChange]) -> String {
    let mut types = String::from("    <types>\n");
    for bar in bars {
        types.push_str(&format!("        <members>{}</members>\n", xml_escape(&bar.name)));
    }
    types.push_str("        <name>FlexiPage</name>\n    </types>\n");
    types
}

/// Whether a page's `componentInstance` names `component` (`c:name`, any case).
fn names_component(item: &Value, component: &str) -> bool {
    item["componentInstance"]["componentName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(component))
}

/// A utility bar's metadata (Tooling's JSON) with the loader's component in its background
/// region (`present`) or out of every region (`!present`); `None` when that is already so.
pub fn edit_bar(metadata: &Value, component: &str, present: bool) -> Option<Value> {
    let mut page = metadata.clone();
    if !page.get("flexiPageRegions").is_some_and(Value::is_array) {
        if !present {
            return None;
        }
        page.as_object_mut()?.insert("flexiPageRegions".into(), Value::Array(Vec::new()));
    }
    let regions = page.get_mut("flexiPageRegions")?.as_array_mut()?;
    let holds = regions.iter().any(|r| {
        r["itemInstances"].as_array().is_some_and(|items| items.iter().any(|i| names_component(i, component)))
    });
    if holds == present {
        return None;
    }
    if present {
        let item = serde_json::json!({"componentInstance": {
            "componentName": component,
            "identifier": component.replace(':', "_"),
        }});
        match regions.iter_mut().find(|r| r["type"] == "Background") {
            Some(region) => match region.get_mut("itemInstances").and_then(Value::as_array_mut) {
                Some(items) => items.push(item),
                None => region["itemInstances"] = Value::Array(vec![item]),
            },
            None => regions.push(serde_json::json!({
                "itemInstances": [item],
                "name": "backgroundComponents",
                "type": "Background",
            })),
        }
    } else {
        for region in regions.iter_mut() {
            if let Some(items) = region.get_mut("itemInstances").and_then(Value::as_array_mut) {
                items.retain(|i| !names_component(i, component));
            }
        }
    }
    Some(page)
}

/// Tooling's JSON form of a FlexiPage as the Metadata API's XML: each field an element (a
/// list's items repeated), in name order — the order of the Metadata API's schema for these
/// types — with empty fields left out.
pub fn flexipage_xml(metadata: &Value) -> String {
    fn write(out: &mut String, name: &str, value: &Value, depth: usize) {
        let pad = "    ".repeat(depth);
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    write(out, name, item, depth);
                }
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().filter(|k| !map[*k].is_null()).collect();
                keys.sort();
                out.push_str(&format!("{pad}<{name}>\n"));
                for key in keys {
                    write(out, key, &map[key], depth + 1);
                }
                out.push_str(&format!("{pad}</{name}>\n"));
            }
            Value::String(text) => out.push_str(&format!("{pad}<{name}>{}</{name}>\n", xml_escape(text))),
            other => out.push_str(&format!("{pad}<{name}>{other}</{name}>\n")),
        }
    }
    let mut body = String::new();
    if let Value::Object(map) = metadata {
        let mut keys: Vec<&String> = map.keys().filter(|k| !map[*k].is_null()).collect();
        keys.sort();
        for key in keys {
            write(&mut body, key, &map[key], 1);
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FlexiPage xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n{body}</FlexiPage>\n"
    )
}

/// The utility bars to change in one org so that the loader's component is in the bars of
/// exactly the chosen apps (none, to remove it): one query for the org's apps, one for its
/// utility bars, and one per bar of the org's own — every one is looked at, so a bar of an app
/// no longer chosen (or no longer anyone's) is cleared too. Refuses a chosen app the org
/// lacks, one without a utility bar, and one whose bar belongs to a managed package or cannot
/// be read, each with the fix.
pub async fn plan_bars(
    client: &Client,
    session: &Session,
    component: &str,
    apps: &[String],
) -> Result<Vec<BarChange>, LoaderFailure> {
    let org_apps = client.lightning_apps(session).await?;
    let pages = client.utility_bars(session).await?;
    let is_own = |p: &salesforce::metadata::FlexiPage| p.namespace_prefix.as_deref().is_none_or(str::is_empty);
    let mut wanted: Vec<String> = Vec::new();
    for app in apps {
        let Some(found) = org_apps.iter().find(|a| a.full_name().eq_ignore_ascii_case(app)) else {
            return Err(LoaderFailure::AppMissing {
                app: app.clone(),
                available: org_apps.iter().map(|a| a.full_name()).collect(),
            });
        };
        let Some(bar) = found.utility_bar.clone() else {
            return Err(LoaderFailure::NoUtilityBar {
                app: app.clone(),
                label: found.label.clone().unwrap_or_else(|| app.clone()),
            });
        };
        // A managed app's bar lives in its package's namespace, even where the org has a page
        // of its own with the same name.
        let package = found.namespace_prefix.as_deref().filter(|n| !n.is_empty() && *n != "standard");
        let named = |p: &&salesforce::metadata::FlexiPage| p.developer_name.eq_ignore_ascii_case(&bar);
        let managed = pages
            .iter()
            .filter(named)
            .any(|p| !is_own(p) && (package.is_none() || p.namespace_prefix.as_deref() == package));
        let own = pages.iter().filter(named).any(is_own);
        if managed && (package.is_some() || !own) {
            return Err(LoaderFailure::ManagedBar { bar });
        }
        if !own {
            return Err(LoaderFailure::BarMissing { app: app.clone(), bar });
        }
        if !wanted.iter().any(|w| w.eq_ignore_ascii_case(&bar)) {
            wanted.push(bar);
        }
    }
    let mut bars: Vec<String> = pages.iter().filter(|p| is_own(p)).map(|p| p.developer_name.clone()).collect();
    bars.sort_by_key(|b| b.to_ascii_lowercase());
    bars.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let mut changes = Vec::new();
    for bar in bars {
        let chosen = wanted.iter().any(|w| w.eq_ignore_ascii_case(&bar));
        let page = client.flexipage(session, &bar).await?.filter(|p| p.metadata.is_object());
        let Some(page) = page else {
            if chosen {
                return Err(LoaderFailure::BarMissing { app: bar.clone(), bar });
            }
            continue;
        };
        if let Some(edited) = edit_bar(&page.metadata, component, chosen) {
            changes.push(BarChange { name: page.developer_name, xml: flexipage_xml(&edited) });
        }
    }
    Ok(changes)
}

/// `destructiveChangesPost.xml` for the sites numbered after `kept`, up to the most a loader
/// may have; `None` when every number is in use.
fn stale_sites(bundle: &str, kept: usize) -> Option<String> {
    if kept >= MAX_SITES {
        return None;
    }
    Some(manifest(&csp_types(site_names(bundle, kept + 1))))
}

/// The trusted sites' names a loader may have, from number `from` up to the most it may hold.
fn site_names(bundle: &str, from: usize) -> impl Iterator<Item = String> {
    let key = bundle.trim_start_matches("lightbridgeLoader_").to_string();
    (from..=MAX_SITES).map(move |n| format!("Lightbridge_{key}_{n}"))
}

/// A manifest's `<types>` block naming these CSP Trusted Sites.
fn csp_types(names: impl Iterator<Item = String>) -> String {
    let mut types = String::from("    <types>\n");
    for name in names {
        types.push_str(&format!("        <members>{name}</members>\n"));
    }
    types.push_str("        <name>CspTrustedSite</name>\n    </types>\n");
    types
}

fn marker(version: &str, resource: &ResourceName) -> String {
    format!("Lightbridge loader {version}: loads the static resource {} on every Lightning page", resource.as_str())
        .chars()
        .take(255)
        .collect()
}

fn manifest(types: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n{types}    <version>{API_VERSION}</version>\n</Package>\n"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn deterministic_zip(files: &[(String, String)]) -> Vec<u8> {
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, text) in files {
        // Writing to memory cannot fail but for a bug: the package is small and fixed.
        writer.start_file(path.as_str(), options).expect("a ZIP entry in memory");
        writer.write_all(text.as_bytes()).expect("a ZIP entry in memory");
    }
    writer.finish().expect("a ZIP in memory").into_inner()
}

/// How a loader deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderOutcome {
    /// The org already holds this version: nothing was sent.
    Unchanged,
    /// Validated, deployed and read back.
    Deployed { deploy_id: String },
    /// Removed (or was not there).
    Removed { deploy_id: String },
    /// The org needs the loader, but its daily API allowance left (as the checks' own answers
    /// reported it) is below the reserve asked for (#17): nothing was deployed.
    AtReserve(salesforce::ApiUsage),
}

#[derive(Debug, thiserror::Error)]
pub enum LoaderFailure {
    #[error(
        "the Salesforce user may not deploy metadata: give them \"Modify Metadata Through Metadata API Functions\" (or \"Modify All Data\")"
    )]
    Permission,
    #[error("Salesforce refused the loader ({}): {}", if *validation { "validation; nothing was deployed" } else { "deploy" }, problems.iter().map(describe).collect::<Vec<_>>().join("; "))]
    Rejected { validation: bool, problems: Vec<ComponentProblem>, error: Option<String> },
    #[error("the deploy {id} did not finish within {seconds} s (asked Salesforce to cancel it)")]
    TimedOut { id: String, seconds: u64 },
    #[error("deployed, but the org does not show loader version {0}")]
    Unverified(String),
    #[error(
        "the org has no Lightning app {app:?} (its apps: {}): fix the loader's apps on the system's Loader tab",
        available.join(", ")
    )]
    AppMissing { app: String, available: Vec<String> },
    #[error(
        "the app {label} ({app}) has no utility bar: in Setup → App Manager, edit {label}, add a utility item under Utility Items and save; then deploy again"
    )]
    NoUtilityBar { app: String, label: String },
    #[error(
        "the utility bar {bar} belongs to a managed package, which Lightbridge may not change: choose another app, or give the app a utility bar of the org's own"
    )]
    ManagedBar { bar: String },
    #[error(
        "the utility bar {bar} of {app} could not be read from the org: open the app in Setup → App Manager and save its Utility Items once, then deploy again"
    )]
    BarMissing { app: String, bar: String },
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
}

fn describe(p: &ComponentProblem) -> String {
    format!("{} {} ({}): {}", p.component_type, p.full_name, p.file_name, p.problem)
}

/// How often to ask for a deploy's status, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub every: Duration,
    pub timeout: Duration,
}

impl Default for Polling {
    /// Every second, for 50 s per deploy: a validation and a deploy fit in the publish
    /// worker's two-minute lease (a deploy Salesforce holds longer is cancelled and the target
    /// retried later).
    fn default() -> Self {
        Polling { every: Duration::from_secs(1), timeout: Duration::from_secs(50) }
    }
}

/// What an org holds of this loader: the version its bundle's description names, if any.
pub async fn deployed_version(
    client: &Client,
    session: &Session,
    package: &LoaderPackage,
) -> Result<Option<String>, SalesforceError> {
    let found = client.deployed_components(session, "AuraDefinitionBundle", &[package.bundle.as_str()]).await?;
    Ok(found.first().map(|c| {
        c.description
            .as_deref()
            .and_then(|d| d.strip_prefix("Lightbridge loader "))
            .and_then(|d| d.split(':').next())
            .unwrap_or("")
            .to_string()
    }))
}

/// Deploys the loader into one org: the permission first, then — unless the org already holds
/// this version with its utility bars as chosen — a validation (`checkOnly`: a refusal leaves
/// the org untouched), the deploy, and a read back. Polls each deploy to its end; one that outlasts `polling.timeout` is
/// cancelled.
pub async fn deploy_loader(
    client: &Client,
    session: &Session,
    package: &LoaderPackage,
    polling: Polling,
) -> Result<LoaderOutcome, LoaderFailure> {
    deploy_loader_within(client, session, package, polling, 0.0).await
}

/// [`deploy_loader`], stopping before the deploy when the org's daily API allowance left is
/// below `reserve` (a share, 0 to 1) as the answers to its own checks reported it (#17): a
/// validation, a deploy, their polls and a read back cost far more than those checks. An org
/// already holding this version with its utility bars as wanted is never held back.
pub async fn deploy_loader_within(
    client: &Client,
    session: &Session,
    package: &LoaderPackage,
    polling: Polling,
    reserve: f64,
) -> Result<LoaderOutcome, LoaderFailure> {
    let asked_at = client.now_ms();
    if !client.may_deploy_metadata(session).await? {
        return Err(LoaderFailure::Permission);
    }
    // The version says what the components are; the bars are the org's and may have changed
    // since (an admin, the customer's own deploys): both must be as wanted to skip.
    let held = deployed_version(client, session, package).await?.as_deref() == Some(package.version.as_str());
    let bars = plan_bars(client, session, &package.component_name(), &package.apps).await?;
    if held && bars.is_empty() {
        return Ok(LoaderOutcome::Unchanged);
    }
    if reserve > 0.0
        && let Some(usage) = client.api_usage(&session.instance_url)
        // Only what these checks' own answers said: never an older figure.
        && usage.seen_at >= asked_at
        && usage.remaining_share() < reserve
    {
        return Ok(LoaderOutcome::AtReserve(usage));
    }
    let zip = package.zip_with(&bars);
    let validated = run(client, session, &zip, DeployMode::Validate, polling).await?;
    if !validated.succeeded() {
        return Err(rejected(validated, true));
    }
    let deployed = run(client, session, &zip, DeployMode::Deploy, polling).await?;
    if !deployed.succeeded() {
        return Err(rejected(deployed, false));
    }
    if deployed_version(client, session, package).await?.as_deref() != Some(package.version.as_str()) {
        return Err(LoaderFailure::Unverified(package.version.clone()));
    }
    Ok(LoaderOutcome::Deployed { deploy_id: deployed.id })
}

/// Removes the loader's components from one org (a destructive deploy).
pub async fn remove_loader(
    client: &Client,
    session: &Session,
    package: &LoaderPackage,
    polling: Polling,
) -> Result<LoaderOutcome, LoaderFailure> {
    if !client.may_deploy_metadata(session).await? {
        return Err(LoaderFailure::Permission);
    }
    let bars = plan_bars(client, session, &package.component_name(), &[]).await?;
    let removed = run(client, session, &package.removal_zip(&bars), DeployMode::Deploy, polling).await?;
    if !removed.succeeded() {
        return Err(rejected(removed, false));
    }
    Ok(LoaderOutcome::Removed { deploy_id: removed.id })
}

fn rejected(status: DeployStatus, validation: bool) -> LoaderFailure {
    let problems = status.problems.into_iter().filter(|p| p.problem_type != "Warning").collect();
    LoaderFailure::Rejected { validation, problems, error: status.error }
}

async fn run(
    client: &Client,
    session: &Session,
    zip: &[u8],
    mode: DeployMode,
    polling: Polling,
) -> Result<DeployStatus, LoaderFailure> {
    let id = client.deploy(session, zip, mode).await?;
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(polling.every).await;
        let status = match client.deploy_status(session, &id).await {
            Ok(s) => s,
            // A status read that fails for now (HTML, a dropped connection) is read again.
            Err(e) if e.is_transient() && started.elapsed() < polling.timeout => continue,
            Err(e) => return Err(e.into()),
        };
        if status.done {
            return Ok(status);
        }
        if started.elapsed() >= polling.timeout {
            let _ = client.cancel_deploy(session, &id).await;
            return Err(LoaderFailure::TimedOut { id, seconds: polling.timeout.as_secs() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LoaderSettings {
        LoaderSettings {
            resource: ResourceName::parse("Player_Prod").expect("name"),
            scripts: vec!["player.js".into(), "js/extra.js".into()],
            styles: vec!["css/player.css".into()],
            trusted_sites: vec!["https://api.example.com".into(), "http://127.0.0.1:9999/".into()],
            apps: vec!["standard__LightningSales".into()],
        }
    }

    #[test]
    fn the_same_settings_give_the_same_bytes_and_a_change_a_new_version() {
        let a = LoaderPackage::build("sys_1/env_1", &settings()).expect("package");
        let b = LoaderPackage::build("sys_1/env_1", &settings()).expect("package");
        assert_eq!((a.zip.clone(), a.version.clone()), (b.zip.clone(), b.version.clone()));
        assert!(a.bundle.starts_with("lightbridgeLoader_") && a.bundle.len() <= 40, "{}", a.bundle);
        assert_eq!(a.sites.len(), 2);
        let other_env = LoaderPackage::build("sys_1/env_2", &settings()).expect("package");
        assert_ne!(other_env.bundle, a.bundle, "names are per system × environment");
        let mut changed = settings();
        changed.scripts.push("late.js".into());
        assert_ne!(LoaderPackage::build("sys_1/env_1", &changed).expect("package").version, a.version);
    }

    #[test]
    fn the_component_loads_the_files_in_order_and_the_sites_open_connect_src() {
        let p = LoaderPackage::build("sys/env", &settings()).expect("package");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(p.zip.clone())).expect("zip");
        let mut read = |path: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut archive.by_name(path).expect(path), &mut text).expect("read");
            text
        };
        let cmp = read(&format!("aura/{0}/{0}.cmp", p.bundle));
        assert!(cmp.contains("implements=\"lightning:backgroundUtilityItem\""), "{cmp}");
        assert!(
            cmp.contains(
                "scripts=\"{!join(',', $Resource.Player_Prod + '/player.js', $Resource.Player_Prod + '/js/extra.js')}\""
            ),
            "{cmp}"
        );
        assert!(cmp.contains("styles=\"{!$Resource.Player_Prod + '/css/player.css'}\""), "{cmp}");
        let site = read(&format!("cspTrustedSites/{}.cspTrustedSite", p.sites[1]));
        assert!(site.contains("<endpointUrl>http://127.0.0.1:9999</endpointUrl>"), "{site}");
        assert!(site.contains("<isApplicableToConnectSrc>true</isApplicableToConnectSrc>"), "{site}");
        let meta = read(&format!("aura/{0}/{0}.cmp-meta.xml", p.bundle));
        assert!(meta.contains(&p.version), "the version is in the description: {meta}");
        let manifest = read("package.xml");
        assert!(manifest.contains("<name>AuraDefinitionBundle</name>") && manifest.contains(&p.sites[0]), "{manifest}");
    }

    #[test]
    fn a_bar_gains_and_loses_the_component_and_keeps_everything_else() {
        let bar = serde_json::json!({
            "description": null,
            "flexiPageRegions": [
                {"itemInstances": [{"componentInstance": {"componentInstanceProperties": [
                    {"name": "eager", "type": "decorator", "value": "true"}],
                    "componentName": "opencti:softPhone", "identifier": "opencti_softPhone", "visibilityRule": null}}],
                 "mode": null, "name": "utilityItems", "type": "Region"}
            ],
            "masterLabel": "Ops & Sales",
            "template": {"name": "one:utilityBarTemplateDesktop", "properties": [{"name": "isLeftAligned", "value": "true"}]},
            "type": "UtilityBar"
        });
        let added = edit_bar(&bar, "c:lightbridgeLoader_ab", true).expect("added");
        assert_eq!(added["flexiPageRegions"][1]["type"], "Background", "a bar without a background region gets one");
        assert_eq!(edit_bar(&added, "C:LIGHTBRIDGELOADER_AB", true), None, "already there, any case");
        let xml = flexipage_xml(&added);
        assert!(xml.contains("<masterLabel>Ops &amp; Sales</masterLabel>"), "{xml}");
        assert!(!xml.contains("visibilityRule") && !xml.contains("<description>"), "nulls are left out: {xml}");
        assert!(
            xml.contains("<componentInstanceProperties>\n                    <name>eager</name>\n                    <type>decorator</type>\n                    <value>true</value>"),
            "{xml}"
        );
        let order: Vec<usize> = ["<flexiPageRegions>", "<masterLabel>", "<template>", "<type>UtilityBar"]
            .iter()
            .map(|t| xml.find(t).expect(t))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "fields in the schema's (name) order: {xml}");
        let removed = edit_bar(&added, "c:lightbridgeLoader_ab", false).expect("removed");
        assert_eq!(removed["flexiPageRegions"][1]["itemInstances"], serde_json::json!([]));
        assert_eq!(edit_bar(&bar, "c:lightbridgeLoader_ab", false), None, "nothing to take out");
        let bare = serde_json::json!({"masterLabel": "Bare", "type": "UtilityBar", "flexiPageRegions": null});
        let filled = edit_bar(&bare, "c:lightbridgeLoader_ab", true).expect("a bar without regions gets one");
        assert_eq!(
            filled["flexiPageRegions"][0]["itemInstances"][0]["componentInstance"]["componentName"],
            "c:lightbridgeLoader_ab"
        );
        assert_eq!(edit_bar(&bare, "c:lightbridgeLoader_ab", false), None);
    }

    #[test]
    fn app_names_are_api_names() {
        for ok in ["standard__LightningSales", "MyApp", "Field_Ops", "acme__Ops_2"] {
            assert!(app_name_ok(ok), "{ok}");
        }
        for bad in ["", "1App", "My App", "a___b", "trailing_", "x__", "__x", "a__b__c", "Sales;drop"] {
            assert!(!app_name_ok(bad), "{bad}");
        }
        let mut s = settings();
        s.apps.clear();
        assert_eq!(s.validate(), Err(LoaderError::NoApps));
        let a = LoaderPackage::build("s/e", &settings()).expect("p");
        s.apps = vec!["Field_Ops".into(), "STANDARD__LightningSales".into()];
        let b = LoaderPackage::build("s/e", &s).expect("p");
        s.apps = vec!["standard__LightningSales".into(), "field_ops".into()];
        assert_eq!(LoaderPackage::build("s/e", &s).expect("p").version, b.version, "order and case change nothing");
        s.apps = vec!["standard__LightningService".into()];
        assert_ne!(LoaderPackage::build("s/e", &s).expect("p").version, a.version, "the apps are part of the version");
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        let mut s = settings();
        s.scripts = vec!["../secret.js".into()];
        assert_eq!(s.validate(), Err(LoaderError::BadPath("../secret.js".into())));
        let mut s = settings();
        s.trusted_sites = vec!["http://api.example.com".into()];
        assert!(matches!(s.validate(), Err(LoaderError::BadSite(_))), "plain http only on loopback");
        let mut s = settings();
        s.trusted_sites = vec!["https://api.example.com/path".into()];
        assert!(matches!(s.validate(), Err(LoaderError::BadSite(_))));
        let mut s = settings();
        s.scripts.clear();
        s.styles.clear();
        assert_eq!(s.validate(), Err(LoaderError::NothingToLoad));
        let published = vec!["player.js".to_string(), "css/player.css".to_string()];
        assert_eq!(settings().check_files(&published), Err(LoaderError::Missing("js/extra.js".into())));
    }
}

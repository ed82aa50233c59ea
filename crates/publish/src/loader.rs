//! The loader (issue #15, B7): the small metadata package that makes a published static
//! resource run on every page of an org's Lightning apps, and its deploy.
//!
//! What it puts in an org (`docs/salesforce-behaviour.md`, "What the loader puts in an org"):
//! - an Aura component implementing `lightning:backgroundUtilityItem` (Lightning creates it
//!   when an app loads; it renders nothing) whose only markup is an `<ltng:require>` of the
//!   configured scripts and styles inside the environment's static resource — LWC has no
//!   background utility items;
//! - a CSP Trusted Site per origin the player calls back to (`connect-src`, images, media):
//!   scripts themselves can only come from static resources.
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
}

const MAX_FILES: usize = 20;
const MAX_SITES: usize = 20;

/// Every fault of a loader's parts, each with the field it is in (`scripts`, `styles`,
/// `trusted_sites`): empty when they are fine.
pub fn faults(scripts: &[String], styles: &[String], trusted_sites: &[String]) -> Vec<(&'static str, LoaderError)> {
    let mut out = Vec::new();
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
        match faults(&self.scripts, &self.styles, &self.trusted_sites).into_iter().next() {
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
    /// A hash of everything the package holds (16 hex digits).
    pub version: String,
    pub zip: Vec<u8>,
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
        let content = Self::files(&bundle, &sites, settings, "");
        let mut hasher_input = Vec::new();
        for (path, text) in &content {
            hasher_input.extend_from_slice(path.as_bytes());
            hasher_input.push(0);
            hasher_input.extend_from_slice(text.as_bytes());
            hasher_input.push(0);
        }
        let version = hex(&sha256(&hasher_input))[..16].to_string();
        let files = Self::files(&bundle, &sites, settings, &marker(&version, &settings.resource));
        let zip = deterministic_zip(&files);
        Ok(LoaderPackage { bundle, sites, version, zip })
    }

    fn files(bundle: &str, sites: &[String], settings: &LoaderSettings, description: &str) -> Vec<(String, String)> {
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
        files.push(("package.xml".into(), manifest(&types)));
        // Sites an earlier version had and this one does not: removed after the deploy (a
        // name the org does not hold is only a warning), so a dropped origin stops being
        // trusted.
        if let Some(stale) = stale_sites(bundle, sites.len()) {
            files.push(("destructiveChangesPost.xml".into(), stale));
        }
        files.sort();
        files
    }

    /// The description each component carries: the version, and what it is.
    pub fn marker(&self, resource: &ResourceName) -> String {
        marker(&self.version, resource)
    }

    /// The ZIP that removes this package's components (destructive changes beside an empty
    /// manifest).
    pub fn removal_zip(&self) -> Vec<u8> {
        let mut types = format!(
            "    <types>\n        <members>{}</members>\n        <name>AuraDefinitionBundle</name>\n    </types>\n",
            self.bundle
        );
        // Every site any version of it may have left.
        types.push_str(&csp_types(site_names(&self.bundle, 1)));
        deterministic_zip(&[("destructiveChanges.xml".into(), manifest(&types)), ("package.xml".into(), manifest(""))])
    }
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
/// this version — a validation (`checkOnly`: a refusal leaves the org untouched), the deploy,
/// and a read back. Polls each deploy to its end; one that outlasts `polling.timeout` is
/// cancelled.
pub async fn deploy_loader(
    client: &Client,
    session: &Session,
    package: &LoaderPackage,
    polling: Polling,
) -> Result<LoaderOutcome, LoaderFailure> {
    if !client.may_deploy_metadata(session).await? {
        return Err(LoaderFailure::Permission);
    }
    if deployed_version(client, session, package).await?.as_deref() == Some(package.version.as_str()) {
        return Ok(LoaderOutcome::Unchanged);
    }
    let validated = run(client, session, &package.zip, DeployMode::Validate, polling).await?;
    if !validated.succeeded() {
        return Err(rejected(validated, true));
    }
    let deployed = run(client, session, &package.zip, DeployMode::Deploy, polling).await?;
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
    let removed = run(client, session, &package.removal_zip(), DeployMode::Deploy, polling).await?;
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

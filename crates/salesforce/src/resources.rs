//! Static resources (salesforce-api.md §5): find one by `Name` among the org's own
//! (`NamespacePrefix = null`, so a managed package's resource of the same name is never
//! touched), create it, replace its `Body` in place, read its `Body`. Tooling API, which needs
//! `ContentType` and `CacheControl` on create.
//!
//! Uploads go first as a multipart body on the REST API (the fields as a JSON part, the `Body`
//! as raw bytes: "Insert or Update Blob Data" in the REST API guide) — a quarter fewer bytes than
//! base64 and nothing for either side to encode or decode. An org that refuses that form with
//! anything but a transient or semantic error (415, `400 JSON_PARSER_ERROR`, a malformed-request
//! answer…) gets the base64 JSON body on the Tooling API instead; when that works, the client
//! remembers to send JSON to that org — only that org — from then on.

use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::oauth::{join, unreachable};
use crate::{API_VERSION, Client, SalesforceError, Session};

/// An org's static resource, as the lookup reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResource {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `Private` or `Public`.
    pub cache_control: Option<String>,
    pub body_length: u64,
    /// `application/zip` for what Lightbridge publishes.
    pub content_type: Option<String>,
    /// `SystemModstamp` in milliseconds: the `<timestamp>` of `/resource/<timestamp>/<Name>`.
    pub modstamp_ms: i64,
    /// Who last changed it (`LastModifiedBy.Name`) and when (`LastModifiedDate`), for drift (#17).
    pub last_modified_by: Option<String>,
    pub last_modified_ms: Option<i64>,
}

impl StaticResource {
    /// The path the org serves it at (files inside a ZIP follow after another `/`).
    pub fn url_path(&self) -> String {
        format!("/resource/{}/{}", self.modstamp_ms, self.name)
    }
}

/// The JSON bodies of one resource's create and update, built once and sent to any number of
/// orgs: a 1 MB bundle is 1.4 MB of base64, and encoding it again for every org of a fan-out
/// would cost more than the network.
#[derive(Clone)]
pub struct ResourceUpload {
    create: Bodies,
    update: Bodies,
    /// `multipart/form-data; boundary="…"` for the multipart bodies.
    multipart_type: String,
}

/// One request's body in both forms.
#[derive(Clone)]
struct Bodies {
    json: bytes::Bytes,
    multipart: bytes::Bytes,
}

impl std::fmt::Debug for ResourceUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceUpload").field("bytes", &self.create.multipart.len()).finish()
    }
}

impl ResourceUpload {
    pub fn new(resource: &NewStaticResource<'_>) -> Result<Self, SalesforceError> {
        let body = base64::engine::general_purpose::STANDARD.encode(resource.body);
        let mut create = json!({
            "Name": soql_name(resource.name)?,
            "ContentType": resource.content_type,
            "CacheControl": resource.cache_control,
            "Description": resource.description,
        });
        // An update sets everything Lightbridge decides, not only the bytes: a changed cache
        // control (or a content type someone changed in the org) is put right too.
        let mut update = json!({
            "ContentType": resource.content_type,
            "CacheControl": resource.cache_control,
            "Description": resource.description,
        });
        // A boundary that cannot occur in the data.
        let boundary = (0u32..)
            .map(|n| format!("lightbridge-blob-{n}"))
            .find(|b| memchr::memmem::find(resource.body, b.as_bytes()).is_none())
            .unwrap_or_default();
        let multipart = |fields: &serde_json::Value| {
            let mut out = Vec::with_capacity(resource.body.len() + 512);
            out.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"entity_staticresource\"\r\nContent-Type: application/json\r\n\r\n{fields}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"Body\"; filename=\"{}.zip\"\r\nContent-Type: {}\r\n\r\n",
                    resource.name, resource.content_type
                )
                .as_bytes(),
            );
            out.extend_from_slice(resource.body);
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            bytes::Bytes::from(out)
        };
        let (create_multipart, update_multipart) = (multipart(&create), multipart(&update));
        create["Body"] = json!(body);
        update["Body"] = json!(body);
        let json = |v: &serde_json::Value| bytes::Bytes::from(v.to_string());
        Ok(ResourceUpload {
            create: Bodies { json: json(&create), multipart: create_multipart },
            update: Bodies { json: json(&update), multipart: update_multipart },
            multipart_type: format!("multipart/form-data; boundary=\"{boundary}\""),
        })
    }
}

/// A refusal of the multipart form that the JSON form may not meet: any client error but a
/// transient one (rate limits, locks: retried as they are), an expired session (renewed by the
/// caller) or a duplicate name (the caller takes the existing resource). If the JSON form is
/// refused as well, its answer is the one returned.
fn refuses_multipart(e: &SalesforceError) -> bool {
    matches!(e, SalesforceError::Api { status, code, .. }
        if (400..500).contains(status)
            && !e.is_transient()
            && !matches!(*status, 401 | 404 | 429)
            && !matches!(code.as_str(), "DUPLICATE_VALUE" | "INVALID_SESSION_ID" | "ENTITY_IS_DELETED" | "NOT_FOUND"))
}

/// Which org a session is in: the org id an opaque access token starts with (`00D…!…`,
/// salesforce-api.md §1.5), else (a JWT-based access token) the instance URL.
fn org_key(session: &Session) -> String {
    let token = session.access_token.expose_secret();
    match token.split_once('!') {
        Some((org, _)) if org.starts_with("00D") && matches!(org.len(), 15 | 18) => org[..15].to_string(),
        _ => session.instance_url.as_str().to_string(),
    }
}

/// What a new resource is made of.
#[derive(Debug, Clone)]
pub struct NewStaticResource<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    /// `Private` or `Public`.
    pub cache_control: &'a str,
    pub description: &'a str,
    pub body: &'a [u8],
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    id: String,
    name: String,
    description: Option<String>,
    #[serde(default)]
    cache_control: Option<String>,
    #[serde(default)]
    body_length: Option<u64>,
    #[serde(default)]
    content_type: Option<String>,
    system_modstamp: String,
    #[serde(default)]
    last_modified_date: Option<String>,
    /// The parent record `{"attributes": …, "Name": …}`; null when the lookup is empty.
    #[serde(default)]
    last_modified_by: Option<Parent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parent {
    #[serde(default)]
    name: Option<String>,
}

/// What the lookups select: the fields publishing and the drift check compare.
const RESOURCE_FIELDS: &str = "Id, Name, Description, ContentType, CacheControl, BodyLength, SystemModstamp, LastModifiedDate, LastModifiedBy.Name";

impl Row {
    fn into_resource(self) -> Result<StaticResource, SalesforceError> {
        let modstamp_ms = parse_modstamp(&self.system_modstamp).ok_or_else(|| SalesforceError::Unexpected {
            status: 200,
            detail: format!("SystemModstamp {:?} is not a date", self.system_modstamp),
        })?;
        Ok(StaticResource {
            id: self.id,
            name: self.name,
            description: self.description,
            cache_control: self.cache_control,
            body_length: self.body_length.unwrap_or_default(),
            content_type: self.content_type,
            modstamp_ms,
            last_modified_by: self.last_modified_by.and_then(|p| p.name),
            last_modified_ms: self.last_modified_date.as_deref().and_then(parse_modstamp),
        })
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `2026-11-23T17:20:00.000+0000` → milliseconds since the epoch.
fn parse_modstamp(text: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(text, format).ok().map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Names reach SOQL only after this check (letters, digits, underscores), so quoting is safe.
pub(crate) fn soql_name(name: &str) -> Result<&str, SalesforceError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(SalesforceError::Config(format!("{name:?} is not a static resource name")))
    }
}

impl Client {
    /// The org's own static resource with this name, if any.
    pub async fn find_static_resource(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<Option<StaticResource>, SalesforceError> {
        let soql = format!(
            "SELECT {RESOURCE_FIELDS} FROM StaticResource WHERE Name = '{}' AND NamespacePrefix = null",
            soql_name(name)?
        );
        let found = self.tooling_query::<Row>(session, &soql).await?;
        found.records.into_iter().next().map(Row::into_resource).transpose()
    }

    /// The org's own static resources with these names, in one query (a drift scan's one call
    /// per org, #17); names it does not hold are simply absent.
    pub async fn find_static_resources(
        &self,
        session: &Session,
        names: &[&str],
    ) -> Result<Vec<StaticResource>, SalesforceError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let list = names.iter().map(|n| soql_name(n).map(|n| format!("'{n}'"))).collect::<Result<Vec<_>, _>>()?;
        let soql = format!(
            "SELECT {RESOURCE_FIELDS} FROM StaticResource WHERE NamespacePrefix = null AND Name IN ({})",
            list.join(", ")
        );
        let found = self.tooling_query::<Row>(session, &soql).await?;
        found.records.into_iter().map(Row::into_resource).collect()
    }

    /// Creates a static resource; returns its id.
    pub async fn create_static_resource(
        &self,
        session: &Session,
        resource: &NewStaticResource<'_>,
    ) -> Result<String, SalesforceError> {
        self.create_prepared(session, &ResourceUpload::new(resource)?).await
    }

    /// Creates a static resource from a prepared upload; returns its id.
    pub async fn create_prepared(&self, session: &Session, upload: &ResourceUpload) -> Result<String, SalesforceError> {
        let mut refusal = None;
        if self.multipart_for(session) {
            let url = join(&session.instance_url, &format!("services/data/v{API_VERSION}/sobjects/StaticResource"));
            let request = self
                .http
                .post(url.clone())
                .header("content-type", &upload.multipart_type)
                .body(upload.create.multipart.clone());
            match self.send_json::<Created>(session, request, &url).await {
                Err(e) if refuses_multipart(&e) => refusal = Some(e),
                other => return other.map(|c| c.id),
            }
        }
        let url = join(&session.instance_url, &format!("services/data/v{API_VERSION}/tooling/sobjects/StaticResource"));
        let request =
            self.http.post(url.clone()).header("content-type", "application/json").body(upload.create.json.clone());
        let created: Created = self.send_json(session, request, &url).await?;
        self.json_works(session, refusal);
        Ok(created.id)
    }

    /// Whether uploads to this session's org go as multipart (until it refuses that form).
    fn multipart_for(&self, session: &Session) -> bool {
        !self.json_only.lock().unwrap_or_else(|p| p.into_inner()).contains(&org_key(session))
    }

    /// The JSON form worked where the multipart one was refused: that org gets JSON from now on.
    fn json_works(&self, session: &Session, refusal: Option<SalesforceError>) {
        let Some(refusal) = refusal else { return };
        let org = org_key(session);
        if self.json_only.lock().unwrap_or_else(|p| p.into_inner()).insert(org.clone()) {
            tracing::warn!(%refusal, instance = %org, "this org refused a multipart upload; sending it static resources as base64 JSON from now on");
        }
    }

    /// Replaces a static resource's `Body`, `Description`, `CacheControl` and `ContentType` from a
    /// prepared upload.
    pub async fn update_prepared(
        &self,
        session: &Session,
        id: &str,
        upload: &ResourceUpload,
    ) -> Result<(), SalesforceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SalesforceError::Config(format!("{id:?} is not a record id")));
        }
        let mut refusal = None;
        if self.multipart_for(session) {
            let url =
                join(&session.instance_url, &format!("services/data/v{API_VERSION}/sobjects/StaticResource/{id}"));
            let request = self
                .http
                .patch(url.clone())
                .header("content-type", &upload.multipart_type)
                .body(upload.update.multipart.clone());
            match self.send_empty(session, request, &url).await {
                Err(e) if refuses_multipart(&e) => refusal = Some(e),
                other => return other,
            }
        }
        let url =
            join(&session.instance_url, &format!("services/data/v{API_VERSION}/tooling/sobjects/StaticResource/{id}"));
        let request =
            self.http.patch(url.clone()).header("content-type", "application/json").body(upload.update.json.clone());
        self.send_empty(session, request, &url).await?;
        self.json_works(session, refusal);
        Ok(())
    }

    /// Replaces a static resource's `Body` (and `Description`) in place: the id stays.
    pub async fn update_static_resource(
        &self,
        session: &Session,
        id: &str,
        body: &[u8],
        description: &str,
    ) -> Result<(), SalesforceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SalesforceError::Config(format!("{id:?} is not a record id")));
        }
        let url =
            join(&session.instance_url, &format!("services/data/v{API_VERSION}/tooling/sobjects/StaticResource/{id}"));
        let payload =
            json!({"Body": base64::engine::general_purpose::STANDARD.encode(body), "Description": description});
        self.send_empty(session, self.http.patch(url.clone()).json(&payload), &url).await
    }

    /// The bytes of a static resource.
    pub async fn static_resource_body(&self, session: &Session, id: &str) -> Result<Vec<u8>, SalesforceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SalesforceError::Config(format!("{id:?} is not a record id")));
        }
        let url = join(
            &session.instance_url,
            &format!("services/data/v{API_VERSION}/tooling/sobjects/StaticResource/{id}/Body"),
        );
        self.policy.check(&url)?;
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(session.access_token.expose_secret())
            .send()
            .await
            .map_err(|e| unreachable(&url, e))?;
        if let Some(moved) = crate::error::redirected(&response) {
            return Err(moved);
        }
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| unreachable(&url, e))?;
        if !(200..300).contains(&status) {
            return Err(crate::rest::api_error(status, &String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes.to_vec())
    }

    pub(crate) async fn send_empty(
        &self,
        session: &Session,
        request: reqwest::RequestBuilder,
        url: &url::Url,
    ) -> Result<(), SalesforceError> {
        self.policy.check(url)?;
        let response = request
            .bearer_auth(session.access_token.expose_secret())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unreachable(url, e))?;
        if let Some(moved) = crate::error::redirected(&response) {
            return Err(moved);
        }
        self.note_usage(url, response.headers());
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.map_err(|e| unreachable(url, e))?;
        Err(crate::rest::api_error(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modstamps_read_as_milliseconds() {
        assert_eq!(parse_modstamp("1970-01-01T00:00:01.250+0000"), Some(1250));
        assert_eq!(parse_modstamp("not a date"), None);
    }

    #[test]
    fn only_plain_names_reach_soql() {
        assert!(soql_name("Player_2").is_ok());
        assert!(soql_name("x' OR Name != '").is_err());
        assert!(soql_name("").is_err());
    }
}

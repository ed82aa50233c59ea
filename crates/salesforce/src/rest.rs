//! REST and Tooling calls on an org's instance with an access token.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;
use vault::AccessToken;

use crate::error::excerpt;
use crate::oauth::{join, unreachable};
use crate::{API_VERSION, Client, SalesforceError};

/// Where and as whom REST calls go.
#[derive(Debug, Clone)]
pub struct Session {
    pub instance_url: Url,
    pub access_token: AccessToken,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult<T> {
    pub total_size: u64,
    pub done: bool,
    pub records: Vec<T>,
    #[serde(default)]
    pub next_records_url: Option<String>,
}

/// What the identity URL says about the signed-in user.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub organization_id: String,
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Deserialize)]
struct RawApiError {
    #[serde(rename = "errorCode")]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// Reads Salesforce's REST error body (an array, sometimes a single object).
pub(crate) fn api_error(status: u16, body: &str) -> SalesforceError {
    let parsed = serde_json::from_str::<Vec<RawApiError>>(body)
        .ok()
        .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
        .or_else(|| serde_json::from_str::<RawApiError>(body).ok());
    match parsed {
        Some(e) if status == 401 && e.error_code == "INVALID_SESSION_ID" => SalesforceError::SessionExpired,
        Some(e) => SalesforceError::Api { status, code: e.error_code, message: e.message },
        None if status == 401 => SalesforceError::SessionExpired,
        None => SalesforceError::Unexpected { status, detail: excerpt(body) },
    }
}

impl Client {
    /// GET a path under the instance with the session's token; parses JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, session: &Session, path: &str) -> Result<T, SalesforceError> {
        let url = match path.split_once('?') {
            Some((path, query)) => {
                let mut u = join(&session.instance_url, path);
                u.set_query(Some(query));
                u
            }
            None => join(&session.instance_url, path),
        };
        self.send_json(session, self.http.get(url.clone()), &url).await
    }

    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        session: &Session,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<T, SalesforceError> {
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
        let body = response.text().await.map_err(|e| unreachable(url, e))?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|e| SalesforceError::Unexpected { status, detail: format!("cannot read the answer: {e}") })
    }

    /// SOQL on the REST API.
    pub async fn query<T: DeserializeOwned>(
        &self,
        session: &Session,
        soql: &str,
    ) -> Result<QueryResult<T>, SalesforceError> {
        self.run_query(session, "query", soql).await
    }

    /// SOQL on the Tooling API.
    pub async fn tooling_query<T: DeserializeOwned>(
        &self,
        session: &Session,
        soql: &str,
    ) -> Result<QueryResult<T>, SalesforceError> {
        self.run_query(session, "tooling/query", soql).await
    }

    async fn run_query<T: DeserializeOwned>(
        &self,
        session: &Session,
        endpoint: &str,
        soql: &str,
    ) -> Result<QueryResult<T>, SalesforceError> {
        let mut url = join(&session.instance_url, &format!("services/data/v{API_VERSION}/{endpoint}"));
        url.query_pairs_mut().append_pair("q", soql);
        self.send_json(session, self.http.get(url.clone()), &url).await
    }

    /// Reads the identity URL from a token reply (with the session's token).
    pub async fn identity(&self, session: &Session, id_url: &Url) -> Result<Identity, SalesforceError> {
        let mut url = id_url.clone();
        url.query_pairs_mut().append_pair("format", "json").append_pair("version", API_VERSION);
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
        let body = response.text().await.map_err(|e| unreachable(&url, e))?;
        match status {
            200..=299 => serde_json::from_str(&body)
                .map_err(|e| SalesforceError::Unexpected { status, detail: format!("identity reply: {e}") }),
            // The identity service answers a bad token with a plain-text 403 Bad_OAuth_Token.
            401 | 403 if body.contains("Bad_OAuth_Token") => Err(SalesforceError::SessionExpired),
            _ => Err(api_error(status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_errors_keep_salesforce_s_code() {
        match api_error(403, r#"[{"message":"API is disabled for this User","errorCode":"API_CURRENTLY_DISABLED"}]"#) {
            SalesforceError::Api { code, .. } => assert_eq!(code, "API_CURRENTLY_DISABLED"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            api_error(401, r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#),
            SalesforceError::SessionExpired
        ));
        assert!(matches!(
            api_error(400, r#"{"message":"x","errorCode":"MALFORMED_QUERY"}"#),
            SalesforceError::Api { .. }
        ));
        assert!(matches!(api_error(502, "<html>bad gateway</html>"), SalesforceError::Unexpected { status: 502, .. }));
    }
}

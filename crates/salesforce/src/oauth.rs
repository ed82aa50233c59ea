//! OAuth 2.0 against Salesforce's token endpoint: the four grants Lightbridge uses, revoke,
//! PKCE, and verification of the reply's `signature`.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use url::Url;
use vault::{AccessToken, ClientSecret, JwtPrivateKey, RefreshToken};

use crate::error::excerpt;
use crate::{Client, OrgType, SalesforceError};

/// A connected app's consumer key and, where the flow uses it, its secret.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub consumer_key: String,
    pub consumer_secret: Option<ClientSecret>,
}

/// A PKCE pair: the verifier stays with us, the S256 challenge goes to Salesforce.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A 64-character verifier (48 random bytes, base64url), within RFC 7636's 43–128.
    pub fn generate() -> Result<Self, SalesforceError> {
        let mut bytes = [0u8; 48];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SalesforceError::Config("random number generator failed".into()))?;
        Ok(Self::from_verifier(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
        Pkce { verifier, challenge }
    }
}

/// A random `state` value (32 bytes, base64url).
pub fn random_state() -> Result<String, SalesforceError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SalesforceError::Config("random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The authorize URL to send the admin's browser to.
pub fn authorize_url(
    login_base: &Url,
    consumer_key: &str,
    redirect_uri: &str,
    scopes: &str,
    state: &str,
    pkce: &Pkce,
) -> Url {
    let mut url = join(login_base, "services/oauth2/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", consumer_key)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scopes)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "login consent");
    url
}

/// `base` + `path`, keeping any path prefix `base` has (the emulator's `/hosts/login`).
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url.set_query(None);
    url
}

/// A successful token reply. Salesforce sends no `expires_in`: the session lasts until the
/// org's timeout, which shows up as `INVALID_SESSION_ID`.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub instance_url: Url,
    /// The identity URL: `<login base>/id/<org id>/<user id>`.
    pub id: Url,
    pub org_id: String,
    pub user_id: String,
    pub issued_at: Option<String>,
    pub scope: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    refresh_token: Option<String>,
    instance_url: String,
    id: String,
    issued_at: Option<String>,
    signature: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct RawOAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenResponse {
    /// Checks `signature` = base64(HMAC-SHA256(secret, id + issued_at)) in constant time, so
    /// the org and user in `id` are the ones Salesforce vouched for.
    pub fn verify_signature(&self, secret: &ClientSecret) -> Result<(), SalesforceError> {
        let (Some(signature), Some(issued_at)) = (&self.signature, &self.issued_at) else {
            return Err(SalesforceError::Unexpected {
                status: 200,
                detail: "token reply has no signature to verify".into(),
            });
        };
        let given = STANDARD.decode(signature).map_err(|_| SalesforceError::Unexpected {
            status: 200,
            detail: "token reply signature is not base64".into(),
        })?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
        hmac::verify(&key, format!("{}{issued_at}", self.id).as_bytes(), &given).map_err(|_| {
            SalesforceError::Unexpected {
                status: 200,
                detail: "token reply signature does not match: the identity may have been tampered with".into(),
            }
        })
    }
}

/// Org and user ids from an identity URL (`…/id/<org>/<user>`).
pub fn parse_id_url(id: &Url) -> Option<(String, String)> {
    let mut segments: Vec<&str> = id.path_segments()?.filter(|s| !s.is_empty()).collect();
    let user = segments.pop()?;
    let org = segments.pop()?;
    (segments.pop()? == "id" && org.starts_with("00D") && user.starts_with("005"))
        .then(|| (org.to_string(), user.to_string()))
}

impl Client {
    async fn token_request(
        &self,
        token_url: Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<TokenResponse, SalesforceError> {
        self.policy.check(&token_url)?;
        let mut request = self.http.post(token_url.clone()).form(form).header("accept", "application/json");
        if let Some((user, pass)) = basic {
            request = request.basic_auth(user, Some(pass));
        }
        let response = request.send().await.map_err(|e| unreachable(&token_url, e))?;
        if let Some(moved) = crate::error::redirected(&response) {
            return Err(moved);
        }
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| unreachable(&token_url, e))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<RawOAuthError>(&body) {
                Ok(e) => SalesforceError::OAuth { status, error: e.error, description: e.error_description },
                Err(_) => SalesforceError::Unexpected { status, detail: excerpt(&body) },
            });
        }
        let raw: RawToken = serde_json::from_str(&body).map_err(|e| SalesforceError::Unexpected {
            status,
            detail: format!("token reply is not what Salesforce sends: {e}"),
        })?;
        let instance_url = Url::parse(&raw.instance_url)
            .map_err(|_| SalesforceError::Unexpected { status, detail: "instance_url is not a URL".into() })?;
        // A token reply must not be able to send our tokens somewhere else.
        if self.policy.check(&instance_url).is_err() {
            return Err(SalesforceError::InstanceNotAllowed(instance_url.origin().ascii_serialization()));
        }
        let id = Url::parse(&raw.id)
            .map_err(|_| SalesforceError::Unexpected { status, detail: "id is not a URL".into() })?;
        let (org_id, user_id) = parse_id_url(&id)
            .ok_or_else(|| SalesforceError::Unexpected { status, detail: "id is not an identity URL".into() })?;
        Ok(TokenResponse {
            access_token: AccessToken::new(raw.access_token),
            refresh_token: raw.refresh_token.map(RefreshToken::new),
            instance_url,
            id,
            org_id,
            user_id,
            issued_at: raw.issued_at,
            scope: raw.scope,
            signature: raw.signature,
        })
    }

    /// Exchanges an authorization code (with its PKCE verifier); verifies the signature.
    pub async fn exchange_code(
        &self,
        login_base: &Url,
        app: &ClientCredentials,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, SalesforceError> {
        let secret = app
            .consumer_secret
            .as_ref()
            .ok_or_else(|| SalesforceError::Config("the OAuth flow needs the consumer secret".into()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", app.consumer_key.as_str()),
            ("client_secret", secret.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let reply = self.token_request(join(login_base, "services/oauth2/token"), &form, None).await?;
        reply.verify_signature(secret)?;
        Ok(reply)
    }

    /// Refreshes an access token. Returns a new refresh token when the app rotates them.
    pub async fn refresh(
        &self,
        login_base: &Url,
        app: &ClientCredentials,
        refresh_token: &RefreshToken,
    ) -> Result<TokenResponse, SalesforceError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("client_id", app.consumer_key.as_str()),
        ];
        if let Some(secret) = &app.consumer_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        let reply = self.token_request(join(login_base, "services/oauth2/token"), &form, None).await?;
        if let (Some(secret), Some(_)) = (&app.consumer_secret, &reply.signature) {
            reply.verify_signature(secret)?;
        }
        Ok(reply)
    }

    /// JWT bearer grant: an RS256 assertion signed with the app's private key.
    pub async fn jwt_bearer(
        &self,
        login_base: &Url,
        org_type: OrgType,
        consumer_key: &str,
        username: &str,
        key: &JwtPrivateKey,
    ) -> Result<TokenResponse, SalesforceError> {
        let assertion = crate::jwt::assertion(consumer_key, username, org_type.jwt_audience(), key, self.now_secs())?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        self.token_request(join(login_base, "services/oauth2/token"), &form, None).await
    }

    /// Client credentials grant, against the org's My Domain.
    pub async fn client_credentials(
        &self,
        my_domain: &Url,
        app: &ClientCredentials,
    ) -> Result<TokenResponse, SalesforceError> {
        let secret = app
            .consumer_secret
            .as_ref()
            .ok_or_else(|| SalesforceError::Config("client credentials need the consumer secret".into()))?;
        let reply = self
            .token_request(
                join(my_domain, "services/oauth2/token"),
                &[("grant_type", "client_credentials")],
                Some((&app.consumer_key, secret.expose_secret())),
            )
            .await?;
        if reply.signature.is_some() {
            reply.verify_signature(secret)?;
        }
        Ok(reply)
    }

    /// Revokes a refresh or access token (revoking a refresh token ends its sessions too).
    /// An already-dead token is not an error.
    pub async fn revoke(&self, login_base: &Url, token: &str) -> Result<(), SalesforceError> {
        let url = join(login_base, "services/oauth2/revoke");
        self.policy.check(&url)?;
        let response =
            self.http.post(url.clone()).form(&[("token", token)]).send().await.map_err(|e| unreachable(&url, e))?;
        if let Some(moved) = crate::error::redirected(&response) {
            return Err(moved);
        }
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        match serde_json::from_str::<RawOAuthError>(&body) {
            Ok(e) if e.error == "invalid_token" || e.error == "unsupported_token_type" => Ok(()),
            Ok(e) => Err(SalesforceError::OAuth { status, error: e.error, description: e.error_description }),
            Err(_) => Err(SalesforceError::Unexpected { status, detail: excerpt(&body) }),
        }
    }
}

pub(crate) fn unreachable(url: &Url, e: reqwest::Error) -> SalesforceError {
    // reqwest errors may carry the URL; only the host is kept.
    let reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        e.without_url().to_string()
    };
    SalesforceError::Unreachable { host: url.origin().ascii_serialization(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let fresh = Pkce::generate().expect("pkce");
        assert!((43..=128).contains(&fresh.verifier.len()));
    }

    #[test]
    fn the_authorize_url_keeps_the_login_host_path_prefix() {
        let base = Url::parse("http://127.0.0.1:1/hosts/login").expect("url");
        let url =
            authorize_url(&base, "key", "http://cb", "api refresh_token", "st", &Pkce::from_verifier("v".repeat(43)));
        assert_eq!(url.path(), "/hosts/login/services/oauth2/authorize");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("code_challenge_method".into(), "S256".into())));
        assert!(pairs.contains(&("state".into(), "st".into())));
    }

    #[test]
    fn identity_urls_yield_org_and_user() {
        let id = Url::parse("https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P").expect("url");
        assert_eq!(parse_id_url(&id), Some(("00Dx0000000BV7z".into(), "005x00000012Q9P".into())));
        assert_eq!(parse_id_url(&Url::parse("https://x/id/foo/bar").expect("url")), None);
    }
}

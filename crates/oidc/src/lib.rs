//! An OpenID Connect relying party (OpenID Connect Core 1.0, the authorization code flow with
//! PKCE S256 from RFC 7636; Discovery 1.0): what Lightbridge's single sign-on needs and nothing
//! more. Every failure is a [`Refused`] whose text a person signing in can read.
//!
//! - [`Client::discover`] reads the provider's discovery document and refuses one that names
//!   another issuer, or endpoints outside the [`Policy`] (HTTPS, or plain-HTTP origins the
//!   operator allows).
//! - [`Provider::authorization_url`] builds the request with `state`, `nonce` and the PKCE
//!   challenge of a verifier [`pkce_challenge`] hashes.
//! - [`Client::sign_in`] exchanges the code (client_secret_basic), validates the ID token —
//!   its signature against the provider's published keys (RSA, RSA-PSS, ECDSA, Ed25519; never a
//!   shared secret or `none`), issuer, audience (and `azp` when there are several), expiry with
//!   60 s leeway, and the nonce — and merges the userinfo claims for the same subject.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Clock skew allowed on the ID token's times.
const LEEWAY_SECS: u64 = 60;

/// Why a provider or its answer was refused, in words for the person signing in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(text: impl Into<String>) -> Refused {
    Refused(text.into())
}

/// Where providers may be: HTTPS at public addresses, and the origins the operator allows
/// (over plain HTTP too, and at private addresses: a provider on the operator's own network).
/// A provider's host is checked again at connection time, after DNS: no public name may lead a
/// request to a loopback, private or link-local address (no server-side request forgery, no DNS
/// rebinding around the check).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allowed_http_origins: Vec<String>,
}

impl Policy {
    fn allowed_origin(&self, origin: &str) -> bool {
        self.allowed_http_origins.iter().any(|h| h.trim_end_matches('/') == origin)
    }

    /// Host names the operator allows, which may resolve to private addresses.
    fn allowed_hosts(&self) -> Vec<String> {
        self.allowed_http_origins
            .iter()
            .filter_map(|o| url::Url::parse(o).ok())
            .filter_map(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()))
            .collect()
    }

    /// The URL, if the policy allows it (and it carries no user name or password).
    pub fn check(&self, url: &str) -> Result<url::Url, Refused> {
        let parsed = url::Url::parse(url).map_err(|_| refused(format!("{url} is not a URL")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused("a provider URL must not carry a user name or password"));
        }
        let origin = parsed.origin().ascii_serialization();
        if self.allowed_origin(&origin) {
            return Ok(parsed);
        }
        if parsed.scheme() != "https" {
            return Err(refused(format!("{url} is not HTTPS (plain HTTP only for origins the operator allows)")));
        }
        // An address written into the URL never reaches the resolver: checked here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if parsed.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
            || literal.is_some_and(|ip| !public(ip))
        {
            return Err(refused(format!("{url} is not a public address")));
        }
        Ok(parsed)
    }
}

/// An address anyone on the internet could reach: not loopback, private, link-local, shared
/// (CGNAT), unique-local, multicast, unspecified, documentation, benchmarking or reserved
/// space; an IPv4 address inside IPv6 (mapped, or NAT64's `64:ff9b::/96`) judged as IPv4. The
/// one rule for every outbound request a customer chooses the address of: single sign-on
/// providers and webhook endpoints (#18).
pub fn public(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19)))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            let o = v6.octets();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address; local-use NAT64
            // (64:ff9b:1::/48) is a network's own.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return public(std::net::IpAddr::V4(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])));
            }
            if s[0] == 0x2002 {
                return public(std::net::IpAddr::V4(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5])));
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[0..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// A DNS resolver for `reqwest` that keeps only public addresses of a name (all of them for
/// hosts allowed by name, or for every host when private addresses are allowed): the check
/// happens where the connection is made, so DNS rebinding cannot get around it.
#[derive(Debug, Clone)]
pub struct PublicOnly {
    allowed: std::sync::Arc<Vec<String>>,
    any: bool,
}

impl PublicOnly {
    /// Public addresses only, but every address of these host names.
    pub fn allowing(hosts: Vec<String>) -> Self {
        PublicOnly { allowed: std::sync::Arc::new(hosts), any: false }
    }

    /// Every address (the operator allows private ones).
    pub fn any() -> Self {
        PublicOnly { allowed: std::sync::Arc::default(), any: true }
    }
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allowed = self.any || self.allowed.contains(&host);
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<std::net::SocketAddr> = found.into_iter().filter(|a| allowed || public(a.ip())).collect();
            if kept.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to addresses that are not public").into();
                return Err(error);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A provider, as its discovery document describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
}

/// The client Lightbridge is at a provider (its secret's `Debug` is redacted).
#[derive(Debug)]
pub struct Registration<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a vault::SsoClientSecret,
    pub redirect_uri: &'a str,
}

/// One authorization request's secrets, kept by the caller until the provider sends the person back.
pub struct Request<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    /// The PKCE verifier (43–128 URL-safe characters).
    pub verifier: &'a str,
    pub login_hint: Option<&'a str>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("login_hint", &self.login_hint).finish_non_exhaustive()
    }
}

/// The S256 challenge of a PKCE verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

impl Provider {
    /// Where to send the person: the authorization endpoint with the code flow's parameters.
    pub fn authorization_url(&self, client: &Registration<'_>, request: &Request<'_>) -> String {
        let mut url = url::Url::parse(&self.authorization_endpoint).expect("checked at discovery");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client.client_id)
                .append_pair("redirect_uri", client.redirect_uri)
                .append_pair("scope", "openid email profile")
                .append_pair("state", request.state)
                .append_pair("nonce", request.nonce)
                .append_pair("code_challenge", &pkce_challenge(request.verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = request.login_hint.filter(|h| !h.is_empty() && h.len() <= 254) {
                query.append_pair("login_hint", hint);
            }
        }
        url.to_string()
    }
}

/// Talks to providers (10 s per request, no redirects followed).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    policy: Policy,
}

#[derive(Deserialize)]
struct TokenReply {
    id_token: Option<String>,
    access_token: Option<String>,
}

fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused"
    } else {
        "request failed"
    }
}

impl Client {
    pub fn new(policy: Policy) -> Result<Client, Refused> {
        let resolver = PublicOnly::allowing(policy.allowed_hosts());
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(resolver))
            // No proxy from the environment: it would resolve the name itself, past the check.
            .no_proxy()
            .build()
            .map_err(|_| refused("cannot build an HTTP client"))?;
        Ok(Client { http, policy })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The provider at `issuer`, from its discovery document.
    pub async fn discover(&self, issuer: &str) -> Result<Provider, Refused> {
        let base = self.policy.check(issuer)?;
        let url = format!("{}/.well-known/openid-configuration", base.as_str().trim_end_matches('/'));
        let answer = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| refused(format!("the provider at {issuer} did not answer ({})", short(&e))))?;
        if !answer.status().is_success() {
            return Err(refused(format!("the provider's discovery document answered {}", answer.status())));
        }
        let found: Provider =
            answer.json().await.map_err(|_| refused("the provider's discovery document is not valid JSON"))?;
        if found.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(refused(format!("the provider names itself {} instead of {issuer}", found.issuer)));
        }
        for endpoint in [&found.authorization_endpoint, &found.token_endpoint, &found.jwks_uri] {
            self.policy.check(endpoint)?;
        }
        if let Some(userinfo) = &found.userinfo_endpoint {
            self.policy.check(userinfo)?;
        }
        Ok(found)
    }

    /// Exchanges the code the provider sent back and returns the person's claims: the ID
    /// token's, validated, with the userinfo endpoint's for the same subject added.
    pub async fn sign_in(
        &self,
        provider: &Provider,
        client: &Registration<'_>,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<serde_json::Value, Refused> {
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let reply = self
            .http
            .post(&provider.token_endpoint)
            .basic_auth(form(client.client_id), Some(form(client.client_secret.expose_secret())))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", client.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| refused(format!("the provider did not answer ({})", short(&e))))?;
        if !reply.status().is_success() {
            let status = reply.status();
            let body: serde_json::Value = reply.json().await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("no error code").chars().take(100).collect::<String>();
            return Err(refused(format!("the provider refused the sign-in code ({status}, {error})")));
        }
        let tokens: TokenReply = reply.json().await.map_err(|_| refused("the provider's token answer is not JSON"))?;
        let id_token = tokens.id_token.ok_or_else(|| refused("the provider sent no ID token"))?;
        let mut claims = self.validate(provider, client.client_id, &id_token, nonce).await?;
        let subject = claims["sub"].as_str().unwrap_or_default().to_string();
        if let (Some(endpoint), Some(access)) = (&provider.userinfo_endpoint, &tokens.access_token) {
            let info: serde_json::Value = self
                .http
                .get(endpoint)
                .bearer_auth(access)
                .send()
                .await
                .map_err(|e| refused(format!("the provider's userinfo did not answer ({})", short(&e))))?
                .json()
                .await
                .unwrap_or_default();
            if info["sub"].as_str() != Some(subject.as_str()) {
                return Err(refused("the provider's userinfo is for another subject"));
            }
            if let (Some(map), Some(info)) = (claims.as_object_mut(), info.as_object()) {
                for (k, v) in info {
                    map.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(claims)
    }

    /// The ID token's claims, if its signature, issuer, audience, expiry and nonce are right.
    async fn validate(
        &self,
        provider: &Provider,
        client_id: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<serde_json::Value, Refused> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| refused("the ID token is not a signed JWT"))?;
        let asymmetric = matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        );
        if !asymmetric {
            return Err(refused(format!(
                "the ID token is signed with {:?}, which Lightbridge does not accept",
                header.alg
            )));
        }
        let keys: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(&provider.jwks_uri)
            .send()
            .await
            .map_err(|e| refused(format!("the provider's keys did not answer ({})", short(&e))))?
            .json()
            .await
            .map_err(|_| refused("the provider's keys are not a JWK set"))?;
        let key = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| refused("the ID token is signed with a key the provider does not publish"))?;
        let key =
            DecodingKey::from_jwk(key).map_err(|_| refused("the provider publishes a key Lightbridge cannot read"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[provider.issuer.as_str()]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            refused(match e.kind() {
                ErrorKind::InvalidSignature => "the ID token's signature does not verify".to_string(),
                ErrorKind::InvalidAudience => "the ID token is for another application (audience)".to_string(),
                ErrorKind::InvalidIssuer => "the ID token is from another issuer".to_string(),
                ErrorKind::ExpiredSignature => "the ID token has expired".to_string(),
                ErrorKind::ImmatureSignature => "the ID token is not valid yet".to_string(),
                ErrorKind::MissingRequiredClaim(claim) => format!("the ID token has no {claim}"),
                _ => "the ID token is not valid".to_string(),
            })
        })?;
        let claims = data.claims;
        if claims["aud"].is_array()
            && claims["aud"].as_array().is_some_and(|a| a.len() > 1)
            && claims["azp"].as_str() != Some(client_id)
        {
            return Err(refused("the ID token is for another application (azp)"));
        }
        let sent = claims["nonce"].as_str().unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), nonce.as_bytes()).is_err() {
            return Err(refused("the ID token was issued for another sign-in (nonce)"));
        }
        if claims["sub"].as_str().is_none_or(str::is_empty) {
            return Err(refused("the ID token names no subject"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!public(private.parse().expect("ip")), "{private}");
        }
        for open in
            ["8.8.8.8", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
        {
            assert!(public(open.parse().expect("ip")), "{open}");
        }
        let policy = Policy::default();
        for url in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://localhost/",
            "https://10.0.0.1:8443/x",
        ] {
            assert!(policy.check(url).is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_at_connection_time() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        // `localhost` resolves to loopback on every machine, as a rebinding name would.
        let strict = PublicOnly::allowing(Vec::new());
        let name = reqwest::dns::Name::from_str("localhost").expect("name");
        let refused = strict.resolve(name).await.err().expect("refused");
        assert!(refused.to_string().contains("not public"), "{refused}");
        let allowed = PublicOnly::allowing(vec!["localhost".into()]);
        let name = reqwest::dns::Name::from_str("localhost").expect("name");
        let found: Vec<std::net::SocketAddr> = allowed.resolve(name).await.expect("allowed").collect();
        assert!(!found.is_empty() && found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }

    #[test]
    fn providers_are_https_or_an_allowed_plain_http_origin() {
        let policy = Policy { allowed_http_origins: vec!["http://127.0.0.1:9000".into()] };
        assert!(policy.check("https://login.example.com/realms/acme").is_ok());
        assert!(policy.check("http://127.0.0.1:9000/auth").is_ok());
        assert!(policy.check("http://127.0.0.1:9001/auth").is_err(), "another port");
        assert!(policy.check("http://idp.example.com").is_err());
        assert!(policy.check("https://user:pw@idp.example.com").is_err());
        assert!(policy.check("ftp://idp.example.com").is_err());
        assert!(policy.check("not a url").is_err());
    }
}

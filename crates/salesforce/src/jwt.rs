//! JWT bearer assertions (RFC 7523): RS256 over `{iss, sub, aud, exp}`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use vault::JwtPrivateKey;

use crate::SalesforceError;

/// Salesforce allows `exp` up to a few minutes ahead; three minutes, as simple-salesforce uses.
const LIFETIME_SECS: u64 = 180;

/// Checks that a PEM private key is an RSA key Lightbridge can sign with; the message says
/// what is wrong in terms an admin can act on.
pub fn validate_private_key(key: &JwtPrivateKey) -> Result<(), SalesforceError> {
    load(key).map(|_| ())
}

fn load(key: &JwtPrivateKey) -> Result<RsaKeyPair, SalesforceError> {
    let pem = key.expose_secret().trim();
    let (label, der) = pem_block(pem).ok_or_else(|| {
        SalesforceError::Config(
            "the private key must be PEM: a block starting with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY)"
                .into(),
        )
    })?;
    let parsed = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        "ENCRYPTED PRIVATE KEY" => {
            return Err(SalesforceError::Config(
                "the private key is encrypted; paste it without a passphrase (openssl pkey -in key.pem -out plain.pem)"
                    .into(),
            ));
        }
        other => return Err(SalesforceError::Config(format!("expected a private key, found a PEM {other} block"))),
    };
    parsed.map_err(|_| {
        SalesforceError::Config(
            "the private key is not a valid RSA key (JWT bearer needs RSA, 2048 bits or more)".into(),
        )
    })
}

fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let end_marker = format!("-----END {label}-----");
    let body_start = label_end + 5;
    let body_end = rest.find(&end_marker)?;
    let body: String = rest[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok().map(|der| (label, der))
}

/// A signed assertion for the token endpoint.
/// `now_secs` is the caller's clock (seconds since the epoch); the assertion expires
/// `LIFETIME_SECS` after it.
pub fn assertion(
    consumer_key: &str,
    username: &str,
    audience: &str,
    key: &JwtPrivateKey,
    now_secs: u64,
) -> Result<String, SalesforceError> {
    let pair = load(key)?;
    let exp = now_secs + LIFETIME_SECS;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({"iss": consumer_key, "sub": username, "aud": audience, "exp": exp});
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
        .map_err(|_| SalesforceError::Config("signing the JWT assertion failed".into()))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        for (pem, says) in [
            ("not a key", "must be PEM"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "found a PEM CERTIFICATE"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", "encrypted"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "not a valid RSA key"),
        ] {
            let err = validate_private_key(&JwtPrivateKey::new(pem)).expect_err(pem).to_string();
            assert!(err.contains(says), "{pem}: {err}");
        }
    }
}

//! JWT bearer assertions: RS256 signatures checked against the app's X.509 certificate, and
//! the claims Salesforce checks (`iss`, `sub`, `aud`, `exp`) read as leniently as it reads them.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The OID of `rsaEncryption`.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Extracts the PKCS#1 RSA public key from a PEM certificate.
pub fn rsa_public_key_from_certificate(pem: &str) -> Result<Vec<u8>, String> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("certificate is not PEM: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| format!("certificate is not valid X.509: {e}"))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != RSA_ENCRYPTION_OID {
        return Err("certificate key is not RSA (JWT bearer needs RS256)".into());
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// A verified assertion's claims.
#[derive(Debug, Clone)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    /// Expiry in seconds since the epoch (milliseconds are folded to seconds).
    pub exp: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    BadSignature,
    MissingClaim(&'static str),
}

/// Splits an assertion and decodes its claims without checking the signature yet (the
/// issuer names the app whose certificate checks it).
pub fn decode_unverified(assertion: &str) -> Result<(Claims, String, Vec<u8>), JwtError> {
    let mut parts = assertion.trim().split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?)
        .map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtError::Malformed);
    }
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?)
        .map_err(|_| JwtError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| JwtError::Malformed)?;
    let text = |name: &'static str| {
        payload.get(name).and_then(Value::as_str).map(str::to_string).ok_or(JwtError::MissingClaim(name))
    };
    let aud = match payload.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => return Err(JwtError::MissingClaim("aud")),
    };
    let exp = match payload.get("exp") {
        Some(Value::Number(n)) => n.as_f64().map(|f| f as i64),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
    .ok_or(JwtError::MissingClaim("exp"))?;
    // Clients send seconds, milliseconds or a numeric string: anything past year 5138 in
    // seconds is taken as milliseconds.
    let exp = if exp > 100_000_000_000 { exp / 1000 } else { exp };
    let claims = Claims { iss: text("iss")?, sub: text("sub")?, aud, exp };
    Ok((claims, format!("{h}.{p}"), signature))
}

/// Checks an RS256 signature with a PKCS#1 RSA public key.
pub fn verify(signing_input: &str, signature: &[u8], public_key: &[u8]) -> Result<(), JwtError> {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signing_input.as_bytes(), signature)
        .map_err(|_| JwtError::BadSignature)
}

/// Signs claims with a PKCS#8 private key; used by tests and the compatibility suite helpers.
pub fn sign(claims: &Value, private_key_pem: &str) -> Result<String, String> {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let der = pem_body(private_key_pem).ok_or("private key is not PEM")?;
    let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("private key rejected: {e}"))?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
        .map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_assertion_verifies_and_a_tampered_one_does_not() {
        let (key_pem, public) = crate::tls::generate_jwt_key("test").expect("key");
        let jwt = sign(
            &serde_json::json!({"iss":"k","sub":"u@x","aud":"https://login.salesforce.com","exp":"1700000000"}),
            &key_pem,
        )
        .expect("signs");
        let (claims, input, sig) = decode_unverified(&jwt).expect("decodes");
        assert_eq!(claims.exp, 1_700_000_000);
        assert_eq!(verify(&input, &sig, &public), Ok(()));
        let tampered = input.replace('.', ".e");
        assert_eq!(verify(&tampered, &sig, &public), Err(JwtError::BadSignature));
    }

    #[test]
    fn exp_in_milliseconds_is_read_as_seconds() {
        let (key_pem, _) = crate::tls::generate_jwt_key("ms").expect("key");
        let jwt = sign(&serde_json::json!({"iss":"k","sub":"u","aud":"a","exp":1_700_000_000_123_i64}), &key_pem)
            .expect("signs");
        assert_eq!(decode_unverified(&jwt).expect("decodes").0.exp, 1_700_000_000);
    }
}

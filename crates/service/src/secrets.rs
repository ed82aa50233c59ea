//! Random values and the one-way hashes the store keeps of them.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vault::ApiToken;

use crate::ServiceError;

/// A new API token: `lb_` + 32 random bytes, base64url.
pub fn new_api_token() -> Result<ApiToken, ServiceError> {
    Ok(ApiToken::new(format!("lb_{}", random_token()?)))
}

/// SHA-256 (hex) of a token: what the store keeps and looks up. API tokens and session ids
/// carry 256 bits of randomness, so a fast hash is enough (passwords use argon2id).
pub fn hash_token(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A random URL-safe value of 32 bytes (session ids, CSRF tokens, OAuth states).
pub fn random_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|e| ServiceError::internal("no randomness", e))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

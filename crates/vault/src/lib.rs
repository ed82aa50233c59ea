//! Secrets and encryption at rest. Every credential Lightbridge holds (access and refresh
//! tokens, client secrets, JWT private keys, API tokens, the master key) has its own newtype
//! with a redacted `Debug`, no `Display` and no `Serialize`, so it cannot reach a log or a
//! JSON body by accident; reading it takes a loud `expose_secret()`.
//!
//! Stored secrets are sealed with AES-256-GCM under a master key. Each sealed value carries
//! the id of the key that sealed it (so keys can rotate) and is bound, as associated data, to
//! its owner and field: a ciphertext copied to another connection or column does not open.
//!
//! This crate knows nothing of HTTP or SQL.

mod seal;
mod secrets;

pub use seal::{Keyring, MasterKey, Sealed, VaultError};
pub use secrets::{
    AccessToken, ApiToken, ClientSecret, JwtPrivateKey, Password, RefreshToken, SsoClientSecret, TotpSecret,
};

/// What a sealed value belongs to: the owning record and the field, e.g.
/// (`conn_01H…`, `refresh_token`). Opening with a different binding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub owner: &'a str,
    pub field: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(owner: &'a str, field: &'a str) -> Self {
        Binding { owner, field }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.owner.len() + self.field.len() + 1);
        out.extend_from_slice(self.owner.as_bytes());
        out.push(0);
        out.extend_from_slice(self.field.as_bytes());
        out
    }
}

//! AES-256-GCM sealing under a keyring of master keys.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::Binding;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("a master key must be 32 bytes, base64-encoded (got {0} bytes); make one with `lightbridge keys generate`")]
    KeyLength(usize),
    #[error("the master key is not valid base64")]
    KeyEncoding,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key {0}, which this keyring does not hold")]
    UnknownKey(String),
    #[error("sealed value does not open with its key and binding (tampered, or copied from another record)")]
    Tampered,
    #[error("the random number generator failed")]
    Random,
}

/// A 256-bit master key. Its id is the first 8 hex characters of its fingerprint.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    fingerprint: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {})", self.id())
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"lightbridge master key fingerprint v1\0");
        ctx.update(&bytes);
        let fingerprint = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        MasterKey { bytes: Zeroizing::new(bytes), fingerprint }
    }

    /// Reads a base64 (standard or URL-safe) 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let decoded = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| VaultError::KeyEncoding)?;
        let decoded = Zeroizing::new(decoded);
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| VaultError::KeyLength(decoded.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| VaultError::Random)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as base64, to write to a key file. Handle with care.
    pub fn expose_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.bytes))
    }

    /// SHA-256 of a domain-separated key, hex: safe to store and show.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn id(&self) -> &str {
        &self.fingerprint[..8]
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.bytes.as_ref()).expect("a 32-byte key is a valid AES-256 key"),
        )
    }
}

/// A sealed secret as stored: `v1.<key id>.<base64(nonce ‖ ciphertext ‖ tag)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed(key {})", self.key_id().unwrap_or("?"))
    }
}

impl Sealed {
    pub fn from_stored(text: impl Into<String>) -> Self {
        Sealed(text.into())
    }
    pub fn as_stored(&self) -> &str {
        &self.0
    }
    pub fn key_id(&self) -> Option<&str> {
        let mut parts = self.0.splitn(3, '.');
        (parts.next() == Some("v1")).then(|| parts.next()).flatten()
    }
}

/// The current master key, which seals, and older keys, which only open (during rotation).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        Keyring { current, previous: Vec::new() }
    }

    pub fn with_previous(mut self, key: MasterKey) -> Self {
        self.previous.push(key);
        self
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Whether this keyring holds the key with this fingerprint (current or previous).
    pub fn knows(&self, fingerprint: &str) -> bool {
        std::iter::once(&self.current).chain(&self.previous).any(|k| k.fingerprint() == fingerprint)
    }

    pub fn seal(&self, plaintext: &[u8], binding: Binding<'_>) -> Result<Sealed, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut buffer = plaintext.to_vec();
        self.current
            .aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(binding.bytes()), &mut buffer)
            .map_err(|_| VaultError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok(Sealed(format!("v1.{}.{}", self.current.id(), URL_SAFE_NO_PAD.encode(out))))
    }

    pub fn seal_str(&self, plaintext: &str, binding: Binding<'_>) -> Result<Sealed, VaultError> {
        self.seal(plaintext.as_bytes(), binding)
    }

    pub fn open(&self, sealed: &Sealed, binding: Binding<'_>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let mut parts = sealed.0.splitn(3, '.');
        let (Some("v1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VaultError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_string()))?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| VaultError::Malformed)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Malformed)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let len = key
            .aead()
            .open_in_place(nonce, Aad::from(binding.bytes()), &mut buffer)
            .map_err(|_| VaultError::Tampered)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }

    pub fn open_string(&self, sealed: &Sealed, binding: Binding<'_>) -> Result<Zeroizing<String>, VaultError> {
        let bytes = self.open(sealed, binding)?;
        String::from_utf8(bytes.to_vec()).map(Zeroizing::new).map_err(|_| VaultError::Malformed)
    }

    /// Whether a value is sealed under an older key and should be re-sealed.
    pub fn needs_rotation(&self, sealed: &Sealed) -> bool {
        sealed.key_id() != Some(self.current.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(MasterKey::from_bytes([7u8; 32]))
    }

    #[test]
    fn sealed_values_open_only_with_their_binding() {
        let ring = ring();
        let sealed = ring.seal_str("5Aep861-refresh", Binding::new("conn_1", "refresh_token")).expect("seal");
        assert!(!sealed.as_stored().contains("5Aep861"));
        assert_eq!(
            ring.open_string(&sealed, Binding::new("conn_1", "refresh_token")).expect("open").as_str(),
            "5Aep861-refresh"
        );
        assert_eq!(ring.open(&sealed, Binding::new("conn_2", "refresh_token")).err(), Some(VaultError::Tampered));
        assert_eq!(ring.open(&sealed, Binding::new("conn_1", "access_token")).err(), Some(VaultError::Tampered));
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let ring = ring();
        let b = Binding::new("o", "f");
        assert_ne!(ring.seal_str("x", b).expect("seal"), ring.seal_str("x", b).expect("seal"));
    }

    #[test]
    fn a_flipped_bit_is_detected() {
        let ring = ring();
        let b = Binding::new("o", "f");
        let sealed = ring.seal_str("secret", b).expect("seal");
        let mut text = sealed.as_stored().to_string();
        let last = text.pop().expect("char");
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring.open(&Sealed::from_stored(text), b).is_err());
    }

    #[test]
    fn rotation_opens_old_values_and_seals_new_ones_with_the_new_key() {
        let old = MasterKey::from_bytes([1u8; 32]);
        let new = MasterKey::from_bytes([2u8; 32]);
        let b = Binding::new("o", "f");
        let sealed_old = Keyring::new(old.clone()).seal_str("v", b).expect("seal");
        let ring = Keyring::new(new.clone()).with_previous(old);
        assert!(ring.needs_rotation(&sealed_old));
        assert_eq!(ring.open_string(&sealed_old, b).expect("open").as_str(), "v");
        let resealed = ring.seal_str("v", b).expect("seal");
        assert_eq!(resealed.key_id(), Some(new.id()));
        assert_eq!(
            Keyring::new(new).open(&sealed_old, b).err().map(|e| matches!(e, VaultError::UnknownKey(_))),
            Some(true)
        );
    }

    #[test]
    fn keys_parse_from_base64_and_refuse_wrong_lengths() {
        let key = MasterKey::generate().expect("key");
        let again = MasterKey::from_base64(&key.expose_base64()).expect("parse");
        assert_eq!(key.fingerprint(), again.fingerprint());
        assert_eq!(MasterKey::from_base64("AAAA").err(), Some(VaultError::KeyLength(3)));
        assert_eq!(MasterKey::from_base64("!!!").err(), Some(VaultError::KeyEncoding));
        assert!(!format!("{key:?}").contains(key.expose_base64().as_str()));
    }
}

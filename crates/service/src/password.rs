//! Passwords: argon2id with a random salt, stored as a PHC string.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use vault::Password;

/// The shortest password accepted.
pub const MIN_LEN: usize = 12;

pub fn hash(password: &Password) -> Result<String, String> {
    if password.expose_secret().chars().count() < MIN_LEN {
        return Err(format!("a password needs at least {MIN_LEN} characters"));
    }
    let hashed: PasswordHash =
        Argon2::default().hash_password(password.expose_secret().as_bytes()).map_err(|e| e.to_string())?;
    Ok(hashed.to_string())
}

pub fn verify(password: &Password, stored: &str) -> bool {
    Argon2::default().verify_password(password.expose_secret().as_bytes(), stored).is_ok()
}

/// Spends about as long as a real check, so a missing user cannot be told from a wrong
/// password by timing.
pub fn verify_dummy(password: &Password) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash(&Password::new("not-a-real-password-at-all")).unwrap_or_default());
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let pw = Password::new("correct horse battery staple");
        let a = hash(&pw).expect("hash");
        let b = hash(&pw).expect("hash");
        assert!(a.starts_with("$argon2id$") && a != b);
        assert!(verify(&pw, &a) && !verify(&Password::new("wrong password here"), &a));
        assert!(hash(&Password::new("short")).is_err());
    }
}

//! Passwords: argon2id with a random salt, stored as a PHC string; and the policy a password
//! a person chooses must meet — at least 12 characters, and not easy to guess by the zxcvbn
//! estimate (its lists of common passwords, names and words, keyboard patterns, dates and
//! l33t speak), with the reason when it is refused.

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

/// The lowest zxcvbn score accepted: 3 of 4, "safely unguessable: moderate protection from an
/// offline slow-hash scenario" (about 10^10 guesses).
const MIN_SCORE: u8 = 3;

/// Whether a password someone chose is good enough; `context` names what an attacker would try
/// first (the person's email and name). The refusal says why, in the estimator's words.
pub fn policy(password: &Password, context: &[&str]) -> Result<(), String> {
    let text = password.expose_secret();
    if text.chars().count() < MIN_LEN {
        return Err(format!("a password needs at least {MIN_LEN} characters"));
    }
    // The email's parts are guesses too (`anna.smith@acme.example` → anna, smith, acme).
    let mut hints: Vec<&str> = context.to_vec();
    for item in context {
        hints.extend(item.split(|c: char| !c.is_alphanumeric()).filter(|p| p.len() >= 3));
    }
    let estimate = zxcvbn::zxcvbn(text, &hints);
    let score = u8::from(estimate.score());
    if score >= MIN_SCORE {
        return Ok(());
    }
    let mut reason = format!("this password is too easy to guess (strength {score} of 4)");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason.push_str(&format!(": {}", warning.to_string().trim_end_matches('.').to_lowercase()));
        }
        let tips: Vec<String> = feedback.suggestions().iter().map(ToString::to_string).collect();
        if !tips.is_empty() {
            reason.push_str(&format!(". {}", tips.join(" ")));
        }
    }
    Err(reason)
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

    #[test]
    fn the_policy_refuses_common_and_guessable_passwords_with_the_reason() {
        for weak in ["password1234", "qwertyuiop123", "aaaaaaaaaaaaaa", "Password2026!", "anna.smith@acme.example"] {
            let refused = policy(&Password::new(weak), &["anna.smith@acme.example"]);
            let reason = refused.expect_err(weak);
            assert!(reason.contains("too easy to guess") || reason.contains("at least 12"), "{weak}: {reason}");
        }
        let reason = policy(&Password::new("password1234"), &[]).expect_err("common");
        assert!(reason.contains("strength") && reason.len() > 40, "a reason a person can act on: {reason}");
        for strong in ["correct horse battery staple", "lightbridge-demo", "a brand new passphrase"] {
            assert_eq!(policy(&Password::new(strong), &["someone@example.org"]), Ok(()), "{strong}");
        }
    }
}

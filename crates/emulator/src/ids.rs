//! Salesforce-shaped identifiers and opaque credentials.
//!
//! Record ids are 15 case-sensitive characters (3-character key prefix + 12) plus the
//! 3-character case-insensitive checksum suffix Salesforce appends to form the 18-character id.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Key prefixes of the objects the emulator serves.
pub const ORG_PREFIX: &str = "00D";
pub const USER_PREFIX: &str = "005";
pub const STATIC_RESOURCE_PREFIX: &str = "081";
pub const PERMISSION_ACCESS_PREFIX: &str = "0Qx";
pub const QUERY_LOCATOR_PREFIX: &str = "01g";

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends Salesforce's checksum to a 15-character id.
pub fn to_18(id15: &str) -> String {
    let bytes = id15.as_bytes();
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    for chunk in 0..3 {
        let mut flags = 0usize;
        for bit in 0..5 {
            if bytes.get(chunk * 5 + bit).is_some_and(u8::is_ascii_uppercase) {
                flags |= 1 << bit;
            }
        }
        out.push(CHECKSUM_ALPHABET[flags] as char);
    }
    out
}

/// Normalizes a 15- or 18-character id to its 18-character form; `None` if it is neither.
pub fn normalize(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(to_18(id)),
        18 => {
            let full = to_18(&id[..15]);
            full[15..].eq_ignore_ascii_case(&id[15..]).then_some(full)
        }
        _ => None,
    }
}

/// Builds the 18-character id number `n` of an object with key prefix `prefix`.
/// `pod` keeps ids of different orgs apart the way Salesforce's instance characters do.
pub fn make(prefix: &str, pod: &str, n: u64) -> String {
    let mut body = [b'0'; 10];
    let mut rest = n;
    for slot in body.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id15 = String::with_capacity(15);
    id15.push_str(prefix);
    id15.push_str(&pod[..2]);
    id15.push_str(std::str::from_utf8(&body).unwrap_or("0000000000"));
    to_18(&id15)
}

/// Random characters from `[A-Za-z0-9]`.
pub fn random_alnum(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// An access token in Salesforce's shape: `<15-char org id>!<letters, digits, dots, underscores>`.
pub fn access_token(org_id: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..96)
        .map(|_| {
            const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
            SET[rng.random_range(0..SET.len())] as char
        })
        .collect();
    format!("{}!AQ{}", &org_id[..15], tail)
}

/// A refresh token: only `[A-Za-z0-9._-]`, starting the way Salesforce's do.
pub fn refresh_token() -> String {
    format!("5Aep861{}", random_alnum(80))
}

/// A one-time authorization code.
pub fn authorization_code() -> String {
    format!("aPrx{}", random_alnum(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_salesforce_for_known_ids() {
        // Pairs seen in Salesforce documentation and client test suites.
        assert_eq!(to_18("00D000000000062"), "00D000000000062EAA");
        assert_eq!(to_18("001A0000006Vm9r"), "001A0000006Vm9rIAC");
    }

    #[test]
    fn normalize_accepts_both_forms_and_rejects_bad_checksums() {
        assert_eq!(normalize("001A0000006Vm9r").as_deref(), Some("001A0000006Vm9rIAC"));
        assert_eq!(normalize("001A0000006Vm9riac").as_deref(), Some("001A0000006Vm9rIAC"));
        assert_eq!(normalize("001A0000006Vm9rAAA"), None);
        assert_eq!(normalize("not-an-id"), None);
    }

    #[test]
    fn tokens_have_the_shapes_clients_expect() {
        let org = make(ORG_PREFIX, "Lb", 7);
        let token = access_token(&org);
        let (head, tail) = token.split_once('!').expect("token has a bang");
        assert_eq!(head, &org[..15]);
        assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        assert!(refresh_token().bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}

//! Drift (#17): whether someone changed, in the org, a resource Lightbridge published there.
//! The org's copy is compared with what Lightbridge last published — its body (by SHA-256),
//! content type and cache control — not by its modstamp alone: the modstamp only says whether
//! to look closer, so a record saved without a change is not drift, and the body is read only
//! when the modstamp moved and its length did not already tell.

use domain::Drift;
use salesforce::{Client, SalesforceError, Session, StaticResource};

/// What Lightbridge last published as a resource in an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sha256: String,
    pub content_type: String,
    pub cache_control: String,
    pub body_length: u64,
    pub modstamp_ms: i64,
}

impl From<&domain::Baseline> for Expected {
    fn from(b: &domain::Baseline) -> Self {
        Expected {
            sha256: b.sha256.clone(),
            content_type: b.content_type.clone(),
            cache_control: b.cache_control.clone(),
            body_length: b.body_length,
            modstamp_ms: b.modstamp_ms,
        }
    }
}

/// The SHA-256 of `bytes`, in hex (as [`crate::Bundle::sha256`]).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What changed in the org since `expected` (`found`: the org's record now, `None` when it is
/// gone); `None` when nothing did. Reads the body (one call) only when the modstamp moved and
/// the length is unchanged.
pub async fn compare(
    client: &Client,
    session: &Session,
    found: Option<&StaticResource>,
    expected: &Expected,
) -> Result<Option<Drift>, SalesforceError> {
    let now = client.now_ms();
    let Some(found) = found else {
        return Ok(Some(Drift { what: "deleted from the org".into(), by: None, at: None, found_at: now }));
    };
    if found.modstamp_ms == expected.modstamp_ms {
        return Ok(None);
    }
    let mut changes = Vec::new();
    if found.body_length != expected.body_length {
        changes.push("its body changed".to_string());
    } else {
        let body = client.static_resource_body(session, &found.id).await?;
        if sha256_hex(&body) != expected.sha256 {
            changes.push("its body changed".to_string());
        }
    }
    if let Some(ct) = found.content_type.as_deref().filter(|ct| !ct.eq_ignore_ascii_case(&expected.content_type)) {
        changes.push(format!("its content type changed from {} to {ct}", expected.content_type));
    }
    if let Some(cc) = found.cache_control.as_deref().filter(|cc| !cc.eq_ignore_ascii_case(&expected.cache_control)) {
        changes.push(format!("its cache control changed from {} to {cc}", expected.cache_control));
    }
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Drift {
        what: changes.join(", "),
        by: found.last_modified_by.clone(),
        at: found.last_modified_ms,
        found_at: now,
    }))
}

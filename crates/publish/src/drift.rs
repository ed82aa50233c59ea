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

/// What a look at the org's copy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compared {
    /// As Lightbridge left it (or saved again without a change).
    Clean,
    /// Exactly `this` release (body, content type and cache control): Lightbridge's own upload
    /// whose outcome was not recorded, or another connection's to the same org.
    IsRelease,
    /// Someone changed it.
    Drifted(Drift),
}

/// What changed in the org since `expected` (`found`: the org's record now, `None` when it is
/// gone). Reads the body (one call) only when the modstamp moved and the length matches
/// `expected` or `this` (the release about to be published, if any).
pub async fn compare(
    client: &Client,
    session: &Session,
    found: Option<&StaticResource>,
    expected: &Expected,
    this: Option<&Expected>,
) -> Result<Compared, SalesforceError> {
    let now = client.now_ms();
    let Some(found) = found else {
        return Ok(Compared::Drifted(Drift {
            what: "deleted from the org".into(),
            by: None,
            at: None,
            found_at: now,
            seen_modstamp: None,
        }));
    };
    if found.modstamp_ms == expected.modstamp_ms {
        return Ok(Compared::Clean);
    }
    let same_meta = |e: &Expected| {
        found.content_type.as_deref().is_none_or(|ct| ct.eq_ignore_ascii_case(&e.content_type))
            && found.cache_control.as_deref().is_none_or(|cc| cc.eq_ignore_ascii_case(&e.cache_control))
    };
    let lengths = [Some(expected.body_length), this.map(|t| t.body_length)];
    let body_sha = if lengths.contains(&Some(found.body_length)) {
        Some(sha256_hex(&client.static_resource_body(session, &found.id).await?))
    } else {
        None
    };
    if let (Some(this), Some(sha)) = (this, &body_sha)
        && *sha == this.sha256
        && same_meta(this)
    {
        return Ok(Compared::IsRelease);
    }
    let mut changes = Vec::new();
    if body_sha.as_deref() != Some(expected.sha256.as_str()) {
        changes.push("its body changed".to_string());
    }
    if let Some(ct) = found.content_type.as_deref().filter(|ct| !ct.eq_ignore_ascii_case(&expected.content_type)) {
        changes.push(format!("its content type changed from {} to {ct}", expected.content_type));
    }
    if let Some(cc) = found.cache_control.as_deref().filter(|cc| !cc.eq_ignore_ascii_case(&expected.cache_control)) {
        changes.push(format!("its cache control changed from {} to {cc}", expected.cache_control));
    }
    if changes.is_empty() {
        return Ok(Compared::Clean);
    }
    Ok(Compared::Drifted(Drift {
        what: changes.join(", "),
        by: found.last_modified_by.clone(),
        at: found.last_modified_ms,
        found_at: now,
        seen_modstamp: Some(found.modstamp_ms),
    }))
}

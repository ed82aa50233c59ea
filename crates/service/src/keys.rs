//! Master-key rotation (the operator's): re-seal every stored secret under the current key in
//! steps, while instances keep serving, and record it when done.

use store::{ConnectionStore, Rotation};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// One step: up to `batch` secrets re-sealed (compare-and-set, so a token refreshed meanwhile
/// is kept); the database names the new key when none remain.
pub async fn rotate_step(svc: &Service, actor: &Actor, batch: u32) -> Result<Rotation, ServiceError> {
    actor.require_operator()?;
    Ok(svc.store.rotate_keys(batch).await?)
}

/// Records a finished rotation in the audit log.
pub async fn rotated(svc: &Service, actor: &Actor, total: u64, fingerprint: &str) -> Result<(), ServiceError> {
    actor.require_operator()?;
    let detail = format!("{total} secret(s) re-sealed under key {fingerprint}");
    let entry = actor.audit_for(
        None,
        svc.now_ms(),
        "keys.rotated",
        "instance",
        Some(fingerprint),
        Some("master key"),
        Some(detail),
    );
    record(svc, entry).await;
    Ok(())
}

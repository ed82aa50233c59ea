//! The audit log (B4): every action writes its entry through [`record`].

use store::AuditStore;

use crate::Service;

/// Writes an audit entry. A failure is logged loudly but does not undo what already happened.
pub async fn record(svc: &Service, entry: domain::AuditEntry) {
    if let Err(e) = svc.store.record(&entry).await {
        tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
    }
}

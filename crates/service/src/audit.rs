//! The audit log (B4). An action whose change goes through a [`store::Tx`] writes its entry
//! in the same transaction (the change is not made without it); entries that record no
//! change (a failed check, a sign-in) and actions not yet on a `Tx` use [`record`].

use store::AuditStore;

use crate::Service;

/// Writes an audit entry. A failure is logged loudly but does not undo what already happened.
pub async fn record(svc: &Service, entry: domain::AuditEntry) {
    if let Err(e) = svc.store.record(&entry).await {
        tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
    }
}

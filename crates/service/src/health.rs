//! The periodic health check (B1): every connection checked within a chosen interval.

use crate::Service;

/// Runs the periodic health check (B1) in the background: every tick (a minute, or the
/// interval if shorter) it checks the connections not checked within `every`, up to 500 at a
/// time, and renews the OAuth connections not renewed within `keep_alive` (issue #14; zero
/// turns the keep-alive off). Returns `None` when `every` is zero (turned off).
pub fn spawn_health_checks(
    svc: &Service,
    every: std::time::Duration,
    keep_alive: std::time::Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    let keeper = svc.keeper.clone();
    let tick = every.min(std::time::Duration::from_secs(60));
    Some(tokio::spawn(async move {
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            match keeper.health_sweep(every, 500).await {
                Ok(s) if s.checked > 0 => tracing::info!(
                    checked = s.checked,
                    logged_in = s.logged_in,
                    logged_out = s.logged_out,
                    not_available = s.not_available,
                    "health check"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "health check failed"),
            }
            if keep_alive.is_zero() {
                continue;
            }
            match keeper.keep_alive(keep_alive, 500).await {
                Ok(s) if s.renewed + s.failed > 0 => {
                    tracing::info!(renewed = s.renewed, failed = s.failed, "keep-alive renewals")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "keep-alive failed"),
            }
        }
    }))
}

/// Housekeeping every minute: grants of passing OAuth tests that nobody saved in time are
/// revoked at Salesforce (so a test never holds one of the user's approvals for the app).
pub fn spawn_housekeeping(svc: &Service) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(std::time::Duration::from_secs(60));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            match crate::oauth::revoke_unsaved_tests(&svc).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(revoked = n, "revoked the grants of OAuth tests nobody saved"),
                Err(e) => tracing::error!(error = %e, "revoking unsaved OAuth test grants failed"),
            }
        }
    })
}

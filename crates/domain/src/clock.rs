//! Time, injected: every layer asks a [`Clock`] for "now", never the system directly (clippy's
//! `disallowed-methods` keeps it so), so tests and the long-run simulations move time instead
//! of sleeping, and the emulator's clock and Lightbridge's can move together.

use crate::Millis;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The machine's clock: the one place Lightbridge reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

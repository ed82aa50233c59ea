//! The emulator's clock: real time plus an offset tests can move forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    /// The last timestamp handed out by [`Clock::unique_ms`], so record modstamps never repeat.
    last_unique_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, as the emulator sees them: the machine's clock (the
    /// emulator's one reading of it) plus the offset tests add.
    #[allow(clippy::disallowed_methods)]
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
        real + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves the emulator's time forward.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    /// A millisecond timestamp that is strictly greater than any handed out before, so that
    /// `/resource/{timestamp}/{name}` addresses one version of one resource.
    pub fn unique_ms(&self) -> i64 {
        let now = self.now_ms();
        let mut last = self.last_unique_ms.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_unique_ms.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// Formats milliseconds since the epoch the way Salesforce's REST API writes datetimes:
/// `2026-11-22T14:15:34.000+0000`.
pub fn sf_datetime(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ms_never_repeats() {
        let clock = Clock::default();
        let a = clock.unique_ms();
        let b = clock.unique_ms();
        assert!(b > a);
    }

    #[test]
    fn advance_moves_now() {
        let clock = Clock::default();
        let before = clock.now_secs();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now_secs() >= before + 3600);
    }

    #[test]
    fn datetimes_use_salesforce_format() {
        assert_eq!(sf_datetime(1_278_448_832_702), "2010-07-06T20:40:32.702+0000");
    }
}

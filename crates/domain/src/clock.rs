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

/// Milliseconds since the epoch as a UTC calendar date and time: (year, month, day, hour,
/// minute, second), from days since the epoch by Howard Hinnant's `civil_from_days` (the
/// proleptic Gregorian calendar). Written by hand: an export formats a million of them.
pub fn civil_utc(ms: Millis) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, in_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, in_day / 3600, in_day % 3600 / 60, in_day % 60)
}

/// Milliseconds since the epoch as people read them: `2026-11-23 16:41 UTC`.
pub fn format_utc(ms: Millis) -> String {
    let (year, month, day, hour, minute, _) = civil_utc(ms);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// Milliseconds since the epoch in RFC 3339, to the millisecond: `2026-11-23T16:41:05.120Z`.
pub fn format_rfc3339(ms: Millis) -> String {
    let (year, month, day, hour, minute, second) = civil_utc(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z", ms.rem_euclid(1000))
}

/// 100000 as "100,000": a count as people read it.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00 UTC");
        // 2026-11-26 22:28:57 UTC
        assert_eq!(super::format_utc(1_795_732_137_000), "2026-11-26 22:28 UTC");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn counts_read_in_thousands() {
        assert_eq!((super::thousands(0), super::thousands(999)), ("0".into(), "999".into()));
        assert_eq!((super::thousands(1000), super::thousands(1_048_576)), ("1,000".into(), "1,048,576".into()));
    }
}

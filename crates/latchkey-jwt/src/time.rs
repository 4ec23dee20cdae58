//! Times for messages: Unix seconds, RFC 3339 dates and short human durations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// The latest NumericDate latchkey reads or writes: 9999-12-31T23:59:59Z. A JWT whose `exp`,
/// `nbf` or `iat` lies beyond is refused as malformed by [`crate::inspect`] (and [`crate::mint`]
/// never writes one): every date latchkey handles then fits an `i64` and a `SystemTime`.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// `2026-11-22T22:00:00Z` for Unix seconds (UTC); absurd dates past year 9999 as `unix time N`.
pub fn rfc3339(secs: u64) -> String {
    if secs > MAX_NUMERIC_DATE {
        return format!("unix time {secs}");
    }
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `45s`, `2m 30s`, `1h 5m`, `3d 2h`: the two largest units, truncated.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let two = |a: u64, ua: &str, b: u64, ub: &str| if b == 0 { format!("{a}{ua}") } else { format!("{a}{ua} {b}{ub}") };
    if s < 60 {
        format!("{secs}s")
    } else if s < 3600 {
        two(mins, "m", secs, "s")
    } else if s < 86_400 {
        two(hours, "h", mins, "m")
    } else {
        two(days, "d", hours, "h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::T0;

    // --- formatting ---------------------------------------------------------------------------

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(946_684_799), "1999-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_587_696), "2100-03-01T12:34:56Z");
        assert_eq!(rfc3339(T0), "2026-11-22T22:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "unix time 253402300800");
        assert_eq!(rfc3339(u64::MAX), format!("unix time {}", u64::MAX));
    }

    #[test]
    fn human_durations() {
        let h = |s| human_duration(Duration::from_secs(s));
        assert_eq!(h(0), "0s");
        assert_eq!(h(59), "59s");
        assert_eq!(h(60), "1m");
        assert_eq!(h(150), "2m 30s");
        assert_eq!(h(3600), "1h");
        assert_eq!(h(3900 + 59), "1h 5m");
        assert_eq!(h(86_400 * 3 + 7200), "3d 2h");
        assert_eq!(h(u64::MAX), format!("{}d 7h", u64::MAX / 86_400));
    }
}

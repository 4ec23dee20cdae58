//! Numbers from servers are untrusted: every lifetime, poll interval and retry pause a server
//! sends goes through one of these pure functions before it meets a clock, so that no value
//! (huge, negative, fractional, a string, absent) can overflow `Instant + Duration` or make
//! latchkey wait for ever.
//!
//! | number (where)                                              | absent / unreadable / `<= 0` | accepted range            |
//! |-------------------------------------------------------------|------------------------------|---------------------------|
//! | `expires_in` of a registry or OAuth token ([`token_lifetime`]) | 60 s (docker's default)   | 60 s ..= 24 h             |
//! | `expires_in` of an RFC 8628 device code ([`device_code_lifetime`]) | the configured login timeout | 1 s ..= login timeout |
//! | `interval` of an RFC 8628 device code ([`poll_interval`])   | 5 s (RFC 8628 §3.2)          | 1 s ..= 60 s              |
//! | `slow_down` (RFC 8628 §3.5, [`slowed_down`])                | —                            | +5 s, at most 60 s        |
//! | `Retry-After` ([`retry_after`])                             | ignored (own backoff)        | 0 s ..= 60 s, never past the caller's deadline |
//!
//! A JWT's `exp`, `nbf` and `iat` are not clamped but checked: one that is negative, not a
//! number, or after year 9999 makes the token malformed (`latchkey_jwt::inspect`). Sizes are
//! bounded where they are read (bodies are read in chunks up to fixed caps; `Content-Length`
//! is never used to allocate; descriptor sizes are checked by `pull`).
//!
//! "Unreadable" means anything but a JSON number or a string holding one: a value is read as
//! whole seconds (fractions dropped), and a value too large for any integer type is simply
//! large, so it clamps to the maximum.

use std::time::{Duration, Instant};

use serde_json::Value;

/// A registry token's lifetime when its answer has no usable `expires_in`, and the least
/// latchkey assumes (docker's `minimumTokenLifetimeSeconds`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token answer is believed: a token is fetched again after a day at most.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// RFC 8628 §3.2: without `interval`, poll every 5 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest poll interval latchkey uses, whatever the server says.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest poll interval (and pause after `slow_down`) latchkey uses.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// RFC 8628 §3.5: `slow_down` adds this to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest `Retry-After` latchkey honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Any deadline latchkey computes lies at most this far ahead (so `Instant + Duration` never
/// overflows, whatever a configuration or a server says).
pub const MAX_DEADLINE: Duration = Duration::from_secs(366 * 24 * 3600);

/// Whole seconds in a JSON value: a number (fractions dropped, saturating at the `i128`
/// range) or a string holding one; `None` for anything else.
pub fn whole_seconds(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_i64() {
                Some(i128::from(v))
            } else if let Some(v) = n.as_u64() {
                Some(i128::from(v))
            } else {
                // Saturating float-to-int cast: 1e300 is i128::MAX, never a panic.
                n.as_f64().filter(|f| !f.is_nan()).map(|f| f.floor() as i128)
            }
        }
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i128>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| !f.is_nan()).map(|f| f.floor() as i128))
                // Only spelled-out numbers: "inf" and "NaN" are not seconds.
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)))
        }
        _ => None,
    }
}

/// `secs` clamped into `min..=max` (both in whole seconds).
fn clamp_secs(secs: i128, min: Duration, max: Duration) -> Duration {
    let secs = secs.clamp(i128::from(min.as_secs()), i128::from(max.as_secs()));
    Duration::from_secs(u64::try_from(secs).unwrap_or(max.as_secs()))
}

/// How long a token answer's token is believed to live, from its `expires_in` (absent or
/// `null` = `None`): absent, unreadable or `<= 0` is [`DEFAULT_TOKEN_LIFETIME`]; anything else
/// is clamped into [`DEFAULT_TOKEN_LIFETIME`]`..=`[`MAX_TOKEN_LIFETIME`], as docker raises a
/// shorter lifetime to 60 s.
pub fn token_lifetime(expires_in: Option<&Value>) -> Duration {
    match expires_in.and_then(whole_seconds) {
        Some(secs) if secs > 0 => clamp_secs(secs, DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME),
        _ => DEFAULT_TOKEN_LIFETIME,
    }
}

/// How long an RFC 8628 device code lives, from its `expires_in`, bounded by `login_timeout`
/// (the configured upper bound on a login): absent, unreadable or `<= 0` is `login_timeout`;
/// anything else is clamped into `1 s..=login_timeout`. The result is never zero.
pub fn device_code_lifetime(expires_in: Option<&Value>, login_timeout: Duration) -> Duration {
    let max = login_timeout.clamp(Duration::from_secs(1), MAX_DEADLINE);
    match expires_in.and_then(whole_seconds) {
        Some(secs) if secs > 0 => clamp_secs(secs, Duration::from_secs(1), max),
        _ => max,
    }
}

/// The RFC 8628 poll interval from a device code's `interval`: absent, unreadable or `<= 0`
/// is [`DEFAULT_POLL_INTERVAL`]; anything else is clamped into
/// [`MIN_POLL_INTERVAL`]`..=`[`MAX_POLL_INTERVAL`].
pub fn poll_interval(interval: Option<&Value>) -> Duration {
    match interval.and_then(whole_seconds) {
        Some(secs) if secs > 0 => clamp_secs(secs, MIN_POLL_INTERVAL, MAX_POLL_INTERVAL),
        _ => DEFAULT_POLL_INTERVAL,
    }
}

/// The interval after a `slow_down`: 5 s more, at most [`MAX_POLL_INTERVAL`].
pub fn slowed_down(interval: Duration) -> Duration {
    interval.saturating_add(SLOW_DOWN_STEP).min(MAX_POLL_INTERVAL)
}

/// A `Retry-After` header's pause (RFC 9110 §10.2.3), if it is delta-seconds: at most
/// [`MAX_RETRY_AFTER`]. An HTTP-date or anything unreadable is `None` (the caller keeps its
/// own backoff). Callers also cap it by their deadline ([`deadline_after`] and `min`).
pub fn retry_after(header: &str) -> Option<Duration> {
    let text = header.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only too long a number fails to parse, and that is a long pause.
    let secs = text.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// `now + after`, with `after` capped at [`MAX_DEADLINE`]: never overflows.
pub fn deadline_after(now: Instant, after: Duration) -> Instant {
    let after = after.min(MAX_DEADLINE);
    now.checked_add(after).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Values a hostile server may send, as JSON.
    fn hostile() -> Vec<Value> {
        let literal = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        vec![
            json!(u64::MAX),
            json!(1u64 << 63),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(0),
            json!(0.5),
            json!(-0.5),
            json!(1e300),
            json!(-1e300),
            json!(f64::MAX),
            literal("9999999999999999999999"),
            literal("-9999999999999999999999"),
            json!("9999999999999999999999"),
            json!("3600"),
            json!(" 7 "),
            json!("inf"),
            json!("NaN"),
            json!("soon"),
            json!(""),
            json!(null),
            json!(true),
            json!([60]),
            json!({"secs": 60}),
        ]
    }

    #[test]
    fn whole_seconds_reads_numbers_and_numeric_strings() {
        assert_eq!(whole_seconds(&json!(300)), Some(300));
        assert_eq!(whole_seconds(&json!(-5)), Some(-5));
        assert_eq!(whole_seconds(&json!(2.9)), Some(2));
        assert_eq!(whole_seconds(&json!(-0.5)), Some(-1));
        assert_eq!(whole_seconds(&json!(u64::MAX)), Some(i128::from(u64::MAX)));
        assert_eq!(whole_seconds(&json!(1e300)), Some(i128::MAX));
        assert_eq!(whole_seconds(&json!(-1e300)), Some(i128::MIN));
        assert_eq!(whole_seconds(&json!("9999999999999999999999")), Some(9_999_999_999_999_999_999_999));
        assert_eq!(whole_seconds(&json!(" 60 ")), Some(60));
        assert_eq!(whole_seconds(&json!("1.5e3")), Some(1500));
        for unreadable in [json!("inf"), json!("NaN"), json!("soon"), json!(""), json!(null), json!(true), json!([1])] {
            assert_eq!(whole_seconds(&unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn token_lifetime_defaults_and_clamps() {
        assert_eq!(token_lifetime(None), DEFAULT_TOKEN_LIFETIME);
        for v in [json!(0), json!(-1), json!(i64::MIN), json!(-1e300), json!(0.5), json!("soon"), json!(null)] {
            assert_eq!(token_lifetime(Some(&v)), DEFAULT_TOKEN_LIFETIME, "{v}");
        }
        assert_eq!(token_lifetime(Some(&json!(30))), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(Some(&json!(300))), Duration::from_secs(300));
        assert_eq!(token_lifetime(Some(&json!(300.7))), Duration::from_secs(300));
        assert_eq!(token_lifetime(Some(&json!("300"))), Duration::from_secs(300));
        for v in [json!(u64::MAX), json!(1u64 << 63), json!(1e300), json!("9999999999999999999999")] {
            assert_eq!(token_lifetime(Some(&v)), MAX_TOKEN_LIFETIME, "{v}");
        }
        for v in hostile() {
            let d = token_lifetime(Some(&v));
            assert!((DEFAULT_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&d), "{v}: {d:?}");
        }
    }

    #[test]
    fn device_code_lifetime_is_bounded_by_the_login_timeout() {
        let login = Duration::from_secs(900);
        assert_eq!(device_code_lifetime(None, login), login);
        assert_eq!(device_code_lifetime(Some(&json!(0)), login), login);
        assert_eq!(device_code_lifetime(Some(&json!(-30)), login), login);
        assert_eq!(device_code_lifetime(Some(&json!(300)), login), Duration::from_secs(300));
        assert_eq!(device_code_lifetime(Some(&json!(0.5)), login), login);
        assert_eq!(device_code_lifetime(Some(&json!(1.5)), login), Duration::from_secs(1));
        assert_eq!(device_code_lifetime(Some(&json!(u64::MAX)), login), login);
        assert_eq!(device_code_lifetime(Some(&json!(1e300)), login), login);
        // A zero or absurd configured bound is clamped too.
        assert_eq!(device_code_lifetime(None, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(device_code_lifetime(None, Duration::MAX), MAX_DEADLINE);
        for v in hostile() {
            let d = device_code_lifetime(Some(&v), login);
            assert!((Duration::from_secs(1)..=login).contains(&d), "{v}: {d:?}");
        }
    }

    #[test]
    fn poll_interval_defaults_and_clamps() {
        assert_eq!(poll_interval(None), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!(0))), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!(-3))), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!("x"))), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!(0.2))), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!(1.9))), MIN_POLL_INTERVAL);
        assert_eq!(poll_interval(Some(&json!(10))), Duration::from_secs(10));
        for v in [json!(61), json!(u64::MAX), json!(1e300), json!("9999999999999999999999")] {
            assert_eq!(poll_interval(Some(&v)), MAX_POLL_INTERVAL, "{v}");
        }
        for v in hostile() {
            let d = poll_interval(Some(&v));
            assert!((MIN_POLL_INTERVAL..=MAX_POLL_INTERVAL).contains(&d), "{v}: {d:?}");
        }
    }

    #[test]
    fn slow_down_adds_five_seconds_up_to_the_cap() {
        assert_eq!(slowed_down(Duration::from_secs(5)), Duration::from_secs(10));
        assert_eq!(slowed_down(Duration::from_secs(58)), MAX_POLL_INTERVAL);
        assert_eq!(slowed_down(Duration::MAX), MAX_POLL_INTERVAL);
        let mut d = DEFAULT_POLL_INTERVAL;
        for _ in 0..1000 {
            d = slowed_down(d);
        }
        assert_eq!(d, MAX_POLL_INTERVAL);
    }

    #[test]
    fn retry_after_reads_delta_seconds_only() {
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("120"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("9999999999999999999999999999999999"), Some(MAX_RETRY_AFTER));
        for unread in ["", "-1", "1.5", "1e9", "+5", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"] {
            assert_eq!(retry_after(unread), None, "{unread:?}");
        }
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert_eq!(deadline_after(now, Duration::MAX), now + MAX_DEADLINE);
        assert_eq!(deadline_after(now, Duration::from_secs(u64::MAX)), now + MAX_DEADLINE);
    }
}

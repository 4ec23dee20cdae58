//! JWT inspection (unverified decode, strict structure) and the usability check: never panic;
//! every date an accepted token carries fits year 9999 (so an `i64` and a `SystemTime`).
#![no_main]

use std::time::{Duration, SystemTime};

use latchkey_jwt as jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(claims) = jwt::inspect(text) {
        for date in [claims.expires_at, claims.not_before, claims.issued_at].into_iter().flatten() {
            assert!(date <= jwt::MAX_NUMERIC_DATE, "{date}");
        }
        assert_eq!(claims.expires_at_time().is_some(), claims.expires_at.is_some());
        let _ = jwt::check_usable(&claims, SystemTime::now(), Duration::from_secs(120), Some("aud"));
        let _ = claims.time_left(SystemTime::UNIX_EPOCH);
        let _ = claims.expires_at_time();
    }
});

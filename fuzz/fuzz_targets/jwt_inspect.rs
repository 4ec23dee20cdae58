//! JWT inspection (unverified decode, strict structure) and the usability check: never panic.
#![no_main]

use std::time::{Duration, SystemTime};

use latchkey_jwt as jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(claims) = jwt::inspect(text) {
        let _ = jwt::check_usable(&claims, SystemTime::now(), Duration::from_secs(120), Some("aud"));
        let _ = claims.time_left(SystemTime::UNIX_EPOCH);
        let _ = claims.expires_at_time();
    }
});

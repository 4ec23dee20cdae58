//! The numbers servers send (`latchkey_protocol::server_numbers`): a token or device code
//! answer's `expires_in` and `interval`, and a `Retry-After` header, never panic and always come
//! out inside their bounds, and a deadline built from them never overflows the clock.
#![no_main]

use std::time::{Duration, Instant};

use latchkey_protocol::server_numbers as n;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = Instant::now();
    if let Some(wait) = n::retry_after(text) {
        assert!(wait <= n::MAX_RETRY_AFTER);
    }
    let Ok(answer) = serde_json::from_str::<serde_json::Value>(text) else { return };
    for field in [answer.get("expires_in"), answer.get("interval"), Some(&answer)] {
        let lifetime = n::token_lifetime(field);
        assert!((n::DEFAULT_TOKEN_LIFETIME..=n::MAX_TOKEN_LIFETIME).contains(&lifetime), "{lifetime:?}");
        let _ = n::deadline_after(now, lifetime);
        let login = Duration::from_secs(900);
        let code = n::device_code_lifetime(field, login);
        assert!((Duration::from_secs(1)..=login).contains(&code), "{code:?}");
        let mut interval = n::poll_interval(field);
        assert!((n::MIN_POLL_INTERVAL..=n::MAX_POLL_INTERVAL).contains(&interval), "{interval:?}");
        for _ in 0..20 {
            interval = n::slowed_down(interval);
            assert!(interval <= n::MAX_POLL_INTERVAL);
        }
        assert!(n::deadline_after(now, code) <= now + n::MAX_DEADLINE);
    }
});

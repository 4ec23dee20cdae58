//! Server-URL normalisation: never panics; an accepted key is a fixed point.
#![no_main]

use latchkey_protocol::server_url::RegistryKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match RegistryKey::parse(text) {
        Ok(key) => {
            let again = RegistryKey::parse(key.as_str()).expect("an accepted key parses again");
            assert_eq!(again, key);
            assert!(!key.as_str().contains(['/', '@']));
            let _ = key.api_host();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

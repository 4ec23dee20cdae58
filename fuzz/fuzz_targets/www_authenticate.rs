//! `WWW-Authenticate` challenge parsing: never panics; parameter names come out lower-case.
#![no_main]

use latchkey::source::device::session::parse_challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some((scheme, params)) = parse_challenge(text) {
        assert!(!scheme.is_empty());
        for name in params.keys() {
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }
});

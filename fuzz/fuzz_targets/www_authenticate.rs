//! `WWW-Authenticate` challenge parsing, the one parser (`latchkey_protocol::challenge`) and
//! the registry client's reading of it: never panics; the scheme is one non-empty word;
//! parameter names come out lower-case, non-empty and without `=` or `,`; the client answers
//! `Basic` or `Bearer` exactly when the parser says so (which the device session check
//! relies on too: a `bearer` scheme and its `realm`).
#![no_main]

use latchkey_protocol::challenge::parse_challenge;
use latchkey_resolver::client::{Challenge, parse_challenge as answerable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = parse_challenge(text);
    if let Some((scheme, params)) = &parsed {
        assert!(!scheme.is_empty());
        assert!(!scheme.contains(char::is_whitespace), "{scheme:?}");
        for name in params.keys() {
            assert!(!name.is_empty());
            assert!(!name.contains(['=', ',']), "{name:?}");
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }
    let expected = parsed.and_then(|(scheme, params)| {
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params.get("realm")?.clone();
            Some(Challenge::Bearer { realm, service: params.get("service").cloned() })
        } else {
            None
        }
    });
    assert_eq!(answerable(&[text]), expected);
});

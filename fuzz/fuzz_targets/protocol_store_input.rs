//! `store`'s stdin: never panics; what is accepted re-encodes (as `get` prints it) and parses
//! back to the same credentials.
#![no_main]

use latchkey_protocol::helper as protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = protocol::parse_store_input(data) {
        let wire = protocol::encode_credentials(&c.server_url, &c.username, c.secret.expose());
        let again = protocol::parse_store_input(wire.as_bytes()).expect("encoded credentials parse");
        assert_eq!(again, c);
    }
});

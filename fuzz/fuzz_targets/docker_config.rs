//! docker config.json editing: never panics; edits are JSON, idempotent, and undo exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    latchkey::docker_config::check_edit_invariants(text, &["ghcr.io", "docker.io", "localhost:5000"]);
});

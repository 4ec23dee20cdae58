//! latchkey's TOML config: never panics; every error names the file.
#![no_main]

use std::path::Path;

use latchkey::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Config::parse(Path::new("/fuzz/config.toml"), text) {
        assert!(e.0.contains("/fuzz/config.toml"), "{}", e.0);
    }
});

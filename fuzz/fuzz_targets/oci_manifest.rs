//! OCI/Docker manifest and index reading, as `pull` does it: never panics; every digest it
//! would put in a URL or a file name is valid; platforms print as `--platform` reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HEADER_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the Content-Type the "registry" sent.
    let Some((&pick, bytes)) = data.split_first() else { return };
    latchkey_resolver::pull::check_manifest_invariants(bytes, HEADER_TYPES[usize::from(pick % 4)]);
});

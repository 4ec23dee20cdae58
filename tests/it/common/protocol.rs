//! Protocol helpers.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// A copy of the key file `source` inside `env`, mode 0600: latchkey refuses a private key
/// others can read (as ssh does), and the repository's test keys are checked out 0644.
pub fn private_copy(env: &TestEnv, source: &Path, name: &str) -> PathBuf {
    let copy = env.path(name);
    fs::copy(source, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).expect("chmod 600 the key copy");
    }
    copy
}

/// `store` input, JSON-encoded.
pub fn store_json(server_url: &str, username: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({"ServerURL": server_url, "Username": username, "Secret": secret}).to_string().into_bytes()
}

/// Parse a successful `get` answer into (ServerURL, Username, Secret).
pub fn parse_get(out: &Output) -> (String, String, String) {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("get answer is not JSON ({e}):\n{out}"));
    let field = |name: &str| {
        v.get(name).and_then(|f| f.as_str()).unwrap_or_else(|| panic!("get answer lacks {name}:\n{out}")).to_owned()
    };
    (field("ServerURL"), field("Username"), field("Secret"))
}

//! The OS keyring: the freedesktop Secret Service on Linux, the login keychain on macOS,
//! Credential Manager on Windows.
//!
//! One keyring item per registry key ([`RegistryKey::as_str`]). The item's *secret* is a small
//! JSON document with the protocol's three fields, `{"ServerURL":..,"Username":..,"Secret":..}`:
//! one read gives `get` everything it answers, and the format is the same on every platform.
//! What identifies the item, and marks it as latchkey's, lives in each platform's own lookup
//! fields (Secret Service attributes, keychain service/account, Credential Manager target
//! name), so `list` finds latchkey's items and nobody else's without reading any secret.
//!
//! Linux talks to the Secret Service over zbus with calls of its own (see `linux.rs` for why
//! not a Secret Service crate); macOS and Windows go through the keyring-core stores.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{Store, StoreError, StoredCredential};
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

// Compiled everywhere so its tests run on every platform; only Windows needs it.
#[cfg_attr(not(windows), allow(dead_code))]
mod chunks;

#[cfg(any(target_os = "macos", windows))]
mod keyring_core_util;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as platform;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as platform;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod platform {
    use zeroize::Zeroizing;

    pub struct Backend;

    impl Backend {
        pub fn open() -> Result<Self, String> {
            Err(format!("latchkey has no OS keyring support on {}", std::env::consts::OS))
        }
        pub fn describe(&self) -> String {
            unreachable!()
        }
        pub fn get(&self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
            unreachable!()
        }
        pub fn set(&self, _: &str, _: &[u8]) -> Result<(), String> {
            unreachable!()
        }
        pub fn delete(&self, _: &str) -> Result<bool, String> {
            unreachable!()
        }
        pub fn list(&self) -> Result<super::Listed, String> {
            unreachable!()
        }
    }
}

/// What a backend's `list` returns: (registry key, payload) for each of latchkey's items.
pub(crate) type Listed = Vec<(String, Zeroizing<Vec<u8>>)>;

/// The name latchkey's items carry as their service (Secret Service `service` attribute,
/// keychain service, Credential Manager target prefix).
pub(crate) const SERVICE: &str = "latchkey";

pub struct KeyringStore {
    backend: platform::Backend,
}

impl KeyringStore {
    /// Connect to the platform keyring; `Err` carries the real cause (e.g. no D-Bus session,
    /// no Secret Service running, the default collection locked).
    pub fn open() -> Result<Self, String> {
        platform::Backend::open().map(|backend| KeyringStore { backend })
    }
}

impl Store for KeyringStore {
    fn describe(&self) -> String {
        self.backend.describe()
    }

    fn get(&self, key: &RegistryKey) -> Result<Option<StoredCredential>, StoreError> {
        match self.backend.get(key.as_str()).map_err(StoreError)? {
            None => Ok(None),
            Some(payload) => decode(key.as_str(), &payload).map(Some),
        }
    }

    fn set(&self, key: &RegistryKey, credential: &StoredCredential) -> Result<(), StoreError> {
        let payload = encode(credential);
        self.backend.set(key.as_str(), &payload).map_err(StoreError)
    }

    fn delete(&self, key: &RegistryKey) -> Result<bool, StoreError> {
        self.backend.delete(key.as_str()).map_err(StoreError)
    }

    fn list(&self) -> Result<Vec<(RegistryKey, StoredCredential)>, StoreError> {
        let mut out = Vec::new();
        for (key, payload) in self.backend.list().map_err(StoreError)? {
            // Only normalised keys are ever written; anything else is not ours to report.
            let Ok(parsed) = RegistryKey::parse(&key) else { continue };
            if parsed.as_str() != key {
                continue;
            }
            out.push((parsed, decode(&key, &payload)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }
}

/// The secret payload of a keyring item.
#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

#[derive(Serialize)]
struct PayloadRef<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

fn encode(credential: &StoredCredential) -> Zeroizing<Vec<u8>> {
    let fields = PayloadRef {
        server_url: &credential.server_url,
        username: &credential.username,
        secret: credential.secret.expose(),
    };
    // Room for the worst-case escaping (\u00XX is 6 bytes) so the buffer never reallocates and
    // leaves a copy of the secret behind in freed memory.
    let room = 6 * (fields.server_url.len() + fields.username.len() + fields.secret.len()) + 64;
    let mut out = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(&mut *out, &fields).expect("strings always serialise");
    out
}

fn decode(key: &str, payload: &[u8]) -> Result<StoredCredential, StoreError> {
    // serde_json's messages can quote the input ("invalid type: string \"...\""), which would
    // be the secret: report only where it went wrong.
    let parsed: Payload = serde_json::from_slice(payload).map_err(|e| {
        StoreError(format!(
            "the keyring item for {key} is not a latchkey credential (invalid JSON at line {}, column {}); \
             remove it with: echo {key} | docker-credential-latchkey erase",
            e.line(),
            e.column()
        ))
    })?;
    Ok(StoredCredential {
        server_url: parsed.server_url.clone(),
        username: parsed.username.clone(),
        secret: Secret::new(parsed.secret.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(secret: &str) -> StoredCredential {
        StoredCredential { server_url: "https://ghcr.io/".into(), username: "me".into(), secret: Secret::from(secret) }
    }

    #[test]
    fn payload_round_trips() {
        for s in ["", "s3cr3t", "päss wörd ✓ \"quoted\" \\ \n\t\u{1}", &"x".repeat(10 * 1024)] {
            let payload = encode(&cred(s));
            assert_eq!(decode("ghcr.io", &payload).unwrap(), cred(s));
        }
        let payload = encode(&cred("s"));
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            r#"{"ServerURL":"https://ghcr.io/","Username":"me","Secret":"s"}"#
        );
    }

    #[test]
    fn corrupt_payload_error_never_quotes_it() {
        for bad in
            [&br#"{"ServerURL":"x","Username":"u","Secret":12345678}"#[..], b"hunter2", b"{\"Secret\":\"hunter2\"}"]
        {
            let err = decode("ghcr.io", bad).unwrap_err().0;
            assert!(err.contains("ghcr.io") && err.contains("erase"), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("12345678"), "{err}");
        }
    }
}

//! The one place a registry's configured mode picks its credential source. The protocol
//! adapter ([`crate::helper`]), `status` and the per-mode commands (`token`, `login`, ...) all
//! start here.

use std::time::Duration;

use crate::config::{Config, Mode};
use crate::source::CredentialSource;
use crate::source::device::DeviceSource;
use crate::source::static_bearer::{DEFAULT_MIN_VALIDITY_SECS, StaticBearer};
use crate::source::stored::StoredSource;
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::server_url::RegistryKey;

/// The registry a server URL names (as the protocol and the commands receive it).
pub fn key(server_url: &str) -> Result<RegistryKey, HelperError> {
    RegistryKey::parse(server_url).map_err(|e| HelperError::Failed(e.to_string()))
}

/// The source of `key`'s credentials, as `config` says. Building one does no I/O.
pub fn source_for<'a>(config: &'a Config, key: &'a RegistryKey) -> Result<Box<dyn CredentialSource + 'a>, HelperError> {
    let mode = config.registries.get(key).map(|r| r.mode).unwrap_or_default();
    Ok(match mode {
        Mode::Stored => Box::new(StoredSource { key }),
        Mode::StaticBearer => Box::new(static_bearer(config, key)?),
        Mode::Device => Box::new(device(config, key)?),
    })
}

/// The static-bearer source for `key`, if the config gives it that mode (`token`, `header`).
pub fn static_bearer<'a>(config: &'a Config, key: &'a RegistryKey) -> Result<StaticBearer<'a>, HelperError> {
    let registry = config.registries.get(key);
    match registry.and_then(|r| r.identity.as_ref().map(|i| (r, i))) {
        Some((r, identity)) if r.mode == Mode::StaticBearer => Ok(StaticBearer {
            key,
            identity,
            min_validity: Duration::from_secs(r.min_validity_secs.unwrap_or(DEFAULT_MIN_VALIDITY_SECS)),
            answer: r.answer.unwrap_or_default(),
            cache_dir: crate::paths::cache_dir(),
            config_path: &config.path,
        }),
        _ => Err(HelperError::failed(format_args!(
            "{key} is not a static-bearer registry in {}; add [registries.\"{key}\"] with mode = \"static-bearer\" and an [identity] table",
            config.path.display()
        ))),
    }
}

/// The device source for `key`, if the config gives it that mode (`login`, `logout`).
pub fn device<'a>(config: &'a Config, key: &'a RegistryKey) -> Result<DeviceSource<'a>, HelperError> {
    match config.registries.get(key) {
        Some(r) if r.mode == Mode::Device => Ok(DeviceSource {
            key,
            config: r.device.clone().unwrap_or_default(),
            cache_dir: crate::paths::cache_dir(),
            config_path: &config.path,
        }),
        _ => Err(HelperError::failed(format_args!(
            "{key} is not a device-login registry in {}; add [registries.\"{key}\"] with mode = \"device\"",
            config.path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::LazyStore;
    use latchkey_store::{StoreKind, StoredCredential};

    fn config() -> Config {
        Config::parse(
            Path::new("c.toml"),
            r#"
[registries."ghcr.io"]
mode = "stored"
[registries."bearer.example"]
mode = "static-bearer"
[registries."bearer.example".identity]
source = "file"
path = "/nonexistent/latchkey-test-token"
[registries."device.example"]
mode = "device"
"#,
        )
        .unwrap()
    }

    #[test]
    fn the_config_picks_each_registry_s_source() {
        let config = config();
        let mode = |host: &str| source_for(&config, &key(host).unwrap()).map(|s| s.mode()).ok();
        assert_eq!(mode("ghcr.io"), Some(Mode::Stored));
        assert_eq!(mode("unconfigured.example"), Some(Mode::Stored));
        assert_eq!(mode("bearer.example"), Some(Mode::StaticBearer));
        assert_eq!(mode("device.example"), Some(Mode::Device));

        let device_key = key("device.example").unwrap();
        let err = static_bearer(&config, &device_key).err().unwrap().to_string();
        assert!(err.starts_with("device.example is not a static-bearer registry in c.toml"), "{err}");
        let bearer = key("bearer.example").unwrap();
        let err = device(&config, &bearer).err().unwrap().to_string();
        assert!(err.starts_with("bearer.example is not a device-login registry in c.toml"), "{err}");
    }

    #[test]
    fn a_static_bearer_never_opens_the_store() {
        let config = config();
        let bearer = key("bearer.example").unwrap();
        let mut store = LazyStore::new(StoreKind::File).unwrap();
        let source = source_for(&config, &bearer).unwrap();
        assert!(source.get(&mut store).is_err(), "the token file does not exist");
        let credential =
            StoredCredential { server_url: "bearer.example".into(), username: "u".into(), secret: "s".into() };
        let err = source.store(&mut store, &credential).err().unwrap().to_string();
        assert_eq!(
            err,
            "bearer.example is a static-bearer registry in c.toml: its credentials come from its configured source, so there is nothing to store"
        );
        assert!(!store.is_open());
    }
}

//! The TOML config file: which store to use, and how each registry gets its credentials.
//!
//! ```toml
//! store = "auto"            # auto | keyring | file
//!
//! [registries."ghcr.io"]
//! mode = "stored"           # credentials from `docker login` / `store`
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::source::device::DeviceConfig;
use crate::source::static_bearer::IdentitySource;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::StoreKind;

/// Config files are a few KiB; refuse anything absurd before parsing it.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Default)]
pub struct Config {
    /// The file this came from (it may not exist: then everything is default).
    pub path: PathBuf,
    pub exists: bool,
    pub store: StoreKind,
    pub registries: BTreeMap<RegistryKey, RegistryConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    #[serde(default)]
    pub mode: Mode,
    /// Where a static bearer's token comes from (`mode = "static-bearer"`).
    #[serde(default)]
    pub identity: Option<IdentitySource>,
    /// Which convention a static bearer's `get` answers (`static-bearer` or `bearer`).
    #[serde(default)]
    pub answer: Option<crate::source::static_bearer::AnswerConvention>,
    /// Never hand out a token that expires sooner than this (default 120 s).
    #[serde(default)]
    pub min_validity_secs: Option<u64>,
    /// Device-secret endpoints and behaviour (`mode = "device"`; every key has a default).
    #[serde(default)]
    pub device: Option<DeviceConfig>,
}

pub use crate::source::Mode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: StoreKind,
    #[serde(default)]
    registries: BTreeMap<String, RegistryConfig>,
}

/// A config file problem, naming the file and, where known, the line and key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Load the config from its default location (see [`crate::paths::config_file`]).
    /// A missing file is the empty config, except when `$LATCHKEY_CONFIG` names it: the user
    /// asked for that file, so running without it would be a surprise.
    pub fn load_default() -> Result<Config, ConfigError> {
        let path = crate::paths::config_file();
        let config = Config::load(&path)?;
        if !config.exists && crate::paths::config_file_from_env() {
            let env = crate::paths::ENV_CONFIG;
            return Err(ConfigError(format!(
                "{env} names the config file {}, which does not exist: create it, or unset {env} to use {}",
                path.display(),
                crate::paths::default_config_file().display()
            )));
        }
        Ok(config)
    }

    /// Load `path`; a missing file is an empty config, anything unreadable or invalid is an error.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let text = match std::fs::File::open(path) {
            Ok(f) => {
                // It can name programs to run: only a file the user alone could write counts.
                latchkey_fs::trust::check_file_and_ancestors(path, latchkey_fs::trust::Purpose::Config)
                    .map_err(|e| ConfigError(e.to_string()))?;
                let mut text = String::new();
                f.take(MAX_CONFIG_BYTES + 1)
                    .read_to_string(&mut text)
                    .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
                if text.len() as u64 > MAX_CONFIG_BYTES {
                    return Err(ConfigError(format!("config file {} is larger than 1 MiB", path.display())));
                }
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config { path: path.to_path_buf(), ..Config::default() });
            }
            Err(e) => return Err(ConfigError(format!("cannot read config file {}: {e}", path.display()))),
        };
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| line_col(text, key_offset(text, s.start, e.message())))
                .map(|(l, c)| format!(" at line {l}, column {c}"))
                .unwrap_or_default();
            ConfigError(format!("invalid config file {}{at}: {}", path.display(), e.message()))
        })?;
        let mut registries = BTreeMap::new();
        for (name, registry) in raw.registries {
            let key = RegistryKey::parse_host(&name).map_err(|e| {
                ConfigError(format!("invalid config file {}: key registries.{name:?}: {e}", path.display()))
            })?;
            let section = |what: String| {
                ConfigError(format!("invalid config file {}: registries.{name:?}: {what}", path.display()))
            };
            match (registry.mode, &registry.identity) {
                (Mode::StaticBearer, None) => {
                    return Err(section(
                        "mode = \"static-bearer\" needs an [identity] table saying where the token comes from".into(),
                    ));
                }
                (mode, _) if mode != Mode::StaticBearer && registry.answer.is_some() => {
                    return Err(section("answer = ... is only for mode = \"static-bearer\"".into()));
                }
                (Mode::Stored, Some(_)) => {
                    return Err(section(
                        "has an identity table but mode = \"stored\"; set mode = \"static-bearer\" to use it".into(),
                    ));
                }
                (_, Some(identity)) => identity.validate().map_err(|e| section(format!("identity: {e}")))?,
                _ => {}
            }
            match (registry.mode, &registry.device) {
                (Mode::Device, _) if registry.identity.is_some() => {
                    return Err(section(
                        "has an identity table but mode = \"device\"; a device registry's secret comes from `login`"
                            .into(),
                    ));
                }
                (Mode::Device, device) => {
                    device.clone().unwrap_or_default().validate(&key).map_err(|e| section(format!("device: {e}")))?
                }
                (mode, Some(_)) => {
                    return Err(section(format!(
                        "has a device table but mode = \"{}\"; set mode = \"device\" to use it",
                        mode.as_str()
                    )));
                }
                _ => {}
            }
            if registries.insert(key.clone(), registry).is_some() {
                return Err(ConfigError(format!(
                    "invalid config file {}: registries.{name:?} names {key}, which another section already configures",
                    path.display()
                )));
            }
        }
        Ok(Config { path: path.to_path_buf(), exists: true, store: raw.store, registries })
    }

    /// The section for `key`, or the default (stored mode).
    pub fn registry(&self, key: &RegistryKey) -> RegistryConfig {
        self.registries.get(key).cloned().unwrap_or_default()
    }
}

/// The TOML parser reports an error inside an internally tagged table (`[...identity]`, whose
/// `source` picks the variant) at the table's header: point at the unknown key's line in that
/// table instead.
fn key_offset(text: &str, offset: usize, message: &str) -> usize {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    if !text[line_start..].trim_start().starts_with('[') {
        return offset;
    }
    let Some(field) = message.split_once("unknown field `").and_then(|(_, rest)| rest.split_once('`')) else {
        return offset;
    };
    let field = field.0;
    // The table's own lines: after its header, up to the next header.
    let body_start = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i + 1);
    let mut at = body_start;
    for line in text[body_start..].split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            break;
        }
        let indent = line.len() - trimmed.len();
        let key = trimmed.split('=').next().unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
        let hit = key == field;
        if hit {
            return at + indent;
        }
        at += line.len();
    }
    offset
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_keys() {
        let c = Config::parse(
            Path::new("c.toml"),
            "store = \"file\"\n[registries.\"https://GHCR.io/\"]\nmode = \"stored\"\n",
        )
        .unwrap();
        assert_eq!(c.store, StoreKind::File);
        assert!(c.registries.contains_key(&RegistryKey::parse_host("ghcr.io").unwrap()));
    }

    #[test]
    fn static_bearer_sections_parse() {
        let text = r#"
[registries."reg.internal:5000"]
mode = "static-bearer"
min-validity-secs = 300
[registries."reg.internal:5000".identity]
source = "exchange"
url = "https://sts.example/token"
audience = "reg.internal"
subject = { source = "file", path = "/var/run/secrets/token" }
"#;
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        let r = c.registry(&RegistryKey::parse_host("https://reg.internal:5000").unwrap());
        assert_eq!(r.mode, Mode::StaticBearer);
        assert_eq!(r.min_validity_secs, Some(300));
        assert_eq!(r.identity.unwrap().kind(), "exchange");
    }

    #[test]
    fn device_sections_parse_and_validate() {
        let text = r#"
[registries."atcr.example"]
mode = "device"
[registries."atcr.example".device]
client-id = "latchkey-test"
check-interval-secs = 60
allowed-login-hosts = ["login.atcr.example"]
[registries."localhost:5000"]
mode = "device"
"#;
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        let key = RegistryKey::parse_host("atcr.example").unwrap();
        let d = c.registry(&key).device.unwrap();
        assert_eq!(d.check_interval_secs, 60);
        assert_eq!(d.login_wait_secs, 120);
        assert_eq!(d.device_authorization_url(&key), "https://atcr.example/auth/device/code");
        let local = RegistryKey::parse_host("localhost:5000").unwrap();
        assert_eq!(c.registry(&local).mode, Mode::Device);
        assert_eq!(DeviceConfig::default().token_url(&local), "http://localhost:5000/auth/device/token");

        for (body, needle) in [
            ("mode = \"device\"\n[registries.\"r.example\".device]\nrealm = \"http://r.example/token\"", "plain http"),
            (
                "mode = \"device\"\n[registries.\"r.example\".device]\nallowed-login-hosts = [\"https://x\"]",
                "not a host",
            ),
            ("mode = \"device\"\n[registries.\"r.example\".device]\nlogin-wait-secs = 0", "login-wait-secs"),
            ("mode = \"device\"\n[registries.\"r.example\".device]\nclient-secret = \"x\"", "client-secret"),
            ("mode = \"stored\"\n[registries.\"r.example\".device]\n", "mode = \"device\""),
        ] {
            let e = Config::parse(Path::new("c.toml"), &format!("[registries.\"r.example\"]\n{body}\n")).unwrap_err().0;
            assert!(e.contains(needle) && (e.contains("r.example") || e.contains("line 4")), "{needle}: {e}");
        }
    }

    #[test]
    fn errors_inside_identity_name_the_key_line() {
        let head = "[registries.\"r.example\"]\nmode = \"static-bearer\"\n[registries.\"r.example\".identity]\n";
        let e =
            Config::parse(Path::new("c.toml"), &format!("{head}source = \"file\"\n\npth = \"/x\"\n")).unwrap_err().0;
        assert!(e.contains("line 6, column 1") && e.contains("pth"), "{e}");
        let e =
            Config::parse(Path::new("c.toml"), &format!("{head}  source = \"fiel\"\npath = \"/x\"\n")).unwrap_err().0;
        assert!(e.contains("line 4") && e.contains("fiel"), "{e}");
        // Nothing to point at (a missing key): the table's line stays.
        let e = Config::parse(Path::new("c.toml"), &format!("{head}source = \"file\"\n")).unwrap_err().0;
        assert!(e.contains("line 3") && e.contains("path"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e =
            Config::parse(Path::new("/x/c.toml"), "store = \"file\"\n[registries.\"ghcr.io\"]\nmdoe = \"stored\"\n")
                .unwrap_err()
                .0;
        assert!(e.contains("/x/c.toml") && e.contains("line 3") && e.contains("mdoe"), "{e}");
        let e = Config::parse(Path::new("c.toml"), "store = \"floppy\"\n").unwrap_err().0;
        assert!(e.contains("line 1") && e.contains("floppy"), "{e}");
        let e =
            Config::parse(Path::new("c.toml"), "[registries.\"ghcr.io\"]\n[registries.\"GHCR.IO\"]\n").unwrap_err().0;
        assert!(e.contains("already"), "{e}");
    }
}

//! Reading docker's `config.json` and containers' `auth.json` for the resolver.
//!
//! Only the three things that decide credentials are read: `credHelpers`, `credsStore` and
//! `auths`. Everything else in the files is ignored, and the files are never written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bounded::{BoundedReadError, read_bounded};
use crate::secret::Secret;
use crate::server_url::RegistryKey;

/// Config files are a few KiB; anything past this is refused before parsing.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Which kind of file an [`AuthFile`] is: they differ in whether `credsStore` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFileKind {
    /// docker's `config.json`: `credHelpers`, `credsStore`, `auths`.
    Docker,
    /// containers' `auth.json` (podman, skopeo, buildah): `credHelpers` and `auths`; no
    /// `credsStore`, which those tools ignore.
    Containers,
}

/// One parsed credentials file.
#[derive(Clone, Debug)]
pub struct AuthFile {
    /// Where it was read from (for messages); a file given as text has a made-up name.
    pub path: PathBuf,
    pub kind: AuthFileKind,
    /// `credHelpers`: normalised registry -> helper suffix (`latchkey` for
    /// `docker-credential-latchkey`), with the key as written.
    pub cred_helpers: Vec<(RegistryKey, String, String)>,
    /// `credsStore`, for every registry (docker's config.json only).
    pub creds_store: Option<String>,
    /// `auths`: normalised registry -> the entry, with the key as written.
    pub auths: Vec<(RegistryKey, String, AuthEntry)>,
}

/// An `auths` entry, decoded.
#[derive(Clone, Debug, Default)]
pub struct AuthEntry {
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    /// docker's `identitytoken`: an OAuth2 refresh token for the registry's realm.
    pub identity_token: Option<Secret<String>>,
    /// docker's `registrytoken`: a bearer token sent as it is.
    pub registry_token: Option<Secret<String>>,
}

impl AuthEntry {
    /// An entry that holds nothing (docker writes `{}` when a credsStore keeps the secret).
    pub fn is_empty(&self) -> bool {
        self.username.as_deref().unwrap_or("").is_empty()
            && self.password.as_ref().is_none_or(|p| p.expose().is_empty())
            && self.identity_token.as_ref().is_none_or(|t| t.expose().is_empty())
            && self.registry_token.as_ref().is_none_or(|t| t.expose().is_empty())
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// Why a credentials file could not be used. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError(pub String);

impl std::fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigFileError {}

impl AuthFile {
    /// Read `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path, kind: AuthFileKind) -> Result<Option<AuthFile>, ConfigFileError> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigFileError(format!("cannot read {}: {e}", path.display()))),
        };
        let bytes = read_bounded(file, MAX_FILE_BYTES).map_err(|e| match e {
            BoundedReadError::TooLarge { .. } => ConfigFileError(format!("{} is larger than 4 MiB", path.display())),
            BoundedReadError::Io(e) => ConfigFileError(format!("cannot read {}: {e}", path.display())),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            ConfigFileError(format!("cannot read {}: stream did not contain valid UTF-8", path.display()))
        })?;
        AuthFile::parse(path, kind, &text).map(Some)
    }

    /// Parse the text of a file; `path` is only used in messages.
    pub fn parse(path: &Path, kind: AuthFileKind, text: &str) -> Result<AuthFile, ConfigFileError> {
        if text.trim().is_empty() {
            // docker treats an empty config.json as an empty config.
            return Ok(AuthFile {
                path: path.to_path_buf(),
                kind,
                cred_helpers: Vec::new(),
                creds_store: None,
                auths: Vec::new(),
            });
        }
        let raw: RawFile = serde_json::from_str(text).map_err(|e| {
            // serde_json's message names a line and column, never the value.
            ConfigFileError(format!("{} is not a valid credentials file: {e}", path.display()))
        })?;
        let mut cred_helpers = Vec::new();
        for (key, helper) in raw.cred_helpers {
            // A key that names no registry can never match; docker ignores it too.
            if let Ok(registry) = RegistryKey::parse_host(&key)
                && !helper.is_empty()
            {
                cred_helpers.push((registry, key, helper));
            }
        }
        let mut auths = Vec::new();
        for (key, entry) in raw.auths {
            let Ok(registry) = RegistryKey::parse_host(&key) else { continue };
            let decoded = decode_entry(entry)
                .map_err(|why| ConfigFileError(format!("{}: auths entry {key:?}: {why}", path.display())))?;
            auths.push((registry, key, decoded));
        }
        let creds_store = match kind {
            AuthFileKind::Docker => raw.creds_store.filter(|s| !s.is_empty()),
            AuthFileKind::Containers => None,
        };
        Ok(AuthFile { path: path.to_path_buf(), kind, cred_helpers, creds_store, auths })
    }

    /// The `credHelpers` entry for `registry`: an exact key first (`ghcr.io`, or docker's
    /// `https://index.docker.io/v1/` for Docker Hub), then any spelling that normalises to it.
    pub fn helper_for(&self, registry: &RegistryKey) -> Option<&str> {
        pick(&self.cred_helpers, registry).map(String::as_str)
    }

    /// The `auths` entry for `registry`, chosen as [`AuthFile::helper_for`] chooses.
    pub fn auth_for(&self, registry: &RegistryKey) -> Option<&AuthEntry> {
        pick(&self.auths, registry)
    }
}

fn pick<'a, T>(entries: &'a [(RegistryKey, String, T)], registry: &RegistryKey) -> Option<&'a T> {
    let preferred = preferred_keys(registry);
    for want in &preferred {
        if let Some((_, _, v)) = entries.iter().find(|(_, key, _)| key == want) {
            return Some(v);
        }
    }
    // Entries are sorted by key (BTreeMap), so this choice is stable.
    entries.iter().find(|(r, _, _)| r == registry).map(|(_, _, v)| v)
}

/// The spellings docker and skopeo look up, in the order they would find them.
fn preferred_keys(registry: &RegistryKey) -> Vec<String> {
    if registry.as_str() == crate::server_url::DOCKER_HUB {
        vec![crate::DOCKER_HUB_SERVER_URL.to_owned(), "docker.io".to_owned(), "index.docker.io".to_owned()]
    } else {
        vec![registry.as_str().to_owned()]
    }
}

fn decode_entry(raw: RawAuth) -> Result<AuthEntry, String> {
    let mut entry = AuthEntry {
        username: raw.username.filter(|u| !u.is_empty()),
        password: raw.password.filter(|p| !p.is_empty()).map(Secret::new),
        identity_token: raw.identitytoken.filter(|t| !t.is_empty()).map(Secret::new),
        registry_token: raw.registrytoken.filter(|t| !t.is_empty()).map(Secret::new),
    };
    if let Some(auth) = raw.auth.filter(|a| !a.is_empty()) {
        let auth = Secret::new(auth);
        let decoded = data_encoding::BASE64
            .decode(auth.expose().trim().as_bytes())
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(auth.expose().trim().as_bytes()))
            .map_err(|_| "\"auth\" is not base64".to_owned())?;
        let decoded = Secret::new(String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8 text".to_owned())?);
        let (user, password) =
            decoded.expose().split_once(':').ok_or_else(|| "\"auth\" is not base64 of user:password".to_owned())?;
        if entry.username.is_none() && !user.is_empty() {
            entry.username = Some(user.to_owned());
        }
        if entry.password.is_none() && !password.is_empty() {
            entry.password = Some(Secret::new(password.to_owned()));
        }
    }
    Ok(entry)
}

/// The files the resolver reads, in order: docker's `config.json`
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), then containers' auth.json
/// locations (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$XDG_CONFIG_HOME/containers/auth.json` or `~/.config/containers/auth.json`).
pub fn default_files() -> Vec<(PathBuf, AuthFileKind)> {
    let env_path = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    let mut files = Vec::new();
    if let Some(dir) = env_path("DOCKER_CONFIG") {
        files.push((dir.join("config.json"), AuthFileKind::Docker));
    } else if let Some(home) = &home {
        files.push((home.join(".docker").join("config.json"), AuthFileKind::Docker));
    }
    if let Some(file) = env_path("REGISTRY_AUTH_FILE") {
        files.push((file, AuthFileKind::Containers));
    }
    if let Some(dir) = env_path("XDG_RUNTIME_DIR") {
        files.push((dir.join("containers").join("auth.json"), AuthFileKind::Containers));
    }
    let config_home = env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(dir) = config_home {
        files.push((dir.join("containers").join("auth.json"), AuthFileKind::Containers));
    }
    let mut seen = Vec::new();
    files.retain(|(p, _)| {
        let new = !seen.contains(p);
        seen.push(p.clone());
        new
    });
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AuthFile {
        AuthFile::parse(Path::new("config.json"), AuthFileKind::Docker, text).unwrap()
    }

    fn key(s: &str) -> RegistryKey {
        RegistryKey::parse_host(s).unwrap()
    }

    #[test]
    fn helpers_match_any_spelling_exact_first() {
        let f = parse(
            r#"{"credHelpers": {"https://ghcr.io": "b", "ghcr.io": "a", "docker.io": "hub2",
                "https://index.docker.io/v1/": "hub1", "localhost:5000": "l"}}"#,
        );
        assert_eq!(f.helper_for(&key("ghcr.io")), Some("a"));
        assert_eq!(f.helper_for(&key("https://ghcr.io/v2/")), Some("a"));
        assert_eq!(f.helper_for(&key("registry-1.docker.io")), Some("hub1"));
        assert_eq!(f.helper_for(&key("localhost:5000")), Some("l"));
        assert_eq!(f.helper_for(&key("localhost")), None);
        let g = parse(r#"{"credHelpers": {"https://quay.io/v2/": "q", "index.docker.io": "hub"}}"#);
        assert_eq!(g.helper_for(&key("quay.io")), Some("q"));
        assert_eq!(g.helper_for(&key("docker.io")), Some("hub"));
    }

    #[test]
    fn auths_decode_auth_and_tokens() {
        let f = parse(
            r#"{"auths": {
                "a.io": {"auth": "YWxpY2U6cHc6d2l0aDpjb2xvbnM="},
                "b.io": {"identitytoken": "refresh", "username": "bob"},
                "c.io": {"registrytoken": "bearer"},
                "d.io": {}
            }, "credsStore": "desktop"}"#,
        );
        let a = f.auth_for(&key("a.io")).unwrap();
        assert_eq!(a.username.as_deref(), Some("alice"));
        assert_eq!(a.password.as_ref().unwrap().expose(), "pw:with:colons");
        let b = f.auth_for(&key("https://b.io")).unwrap();
        assert_eq!(b.identity_token.as_ref().unwrap().expose(), "refresh");
        assert_eq!(f.auth_for(&key("c.io")).unwrap().registry_token.as_ref().unwrap().expose(), "bearer");
        assert!(f.auth_for(&key("d.io")).unwrap().is_empty());
        assert_eq!(f.creds_store.as_deref(), Some("desktop"));
    }

    #[test]
    fn containers_files_ignore_creds_store() {
        let f = AuthFile::parse(Path::new("auth.json"), AuthFileKind::Containers, r#"{"credsStore": "x"}"#).unwrap();
        assert_eq!(f.creds_store, None);
    }

    #[test]
    fn bad_files_name_the_file_not_the_secret() {
        let err = AuthFile::parse(
            Path::new("/x/config.json"),
            AuthFileKind::Docker,
            r#"{"auths": {"a.io": {"auth": "not base64 s3cret!"}}}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("/x/config.json") && err.0.contains("a.io"), "{err}");
        assert!(!err.0.contains("s3cret"), "{err}");
        assert!(AuthFile::parse(Path::new("c"), AuthFileKind::Docker, "[1]").is_err());
        assert!(AuthFile::parse(Path::new("c"), AuthFileKind::Docker, "  ").unwrap().auths.is_empty());
    }
}

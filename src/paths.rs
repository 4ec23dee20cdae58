//! Where latchkey keeps its files. Every location has an environment override so tests,
//! CI and unusual setups never touch a user's real files.

use std::path::PathBuf;

pub const ENV_CONFIG: &str = "LATCHKEY_CONFIG";
pub const ENV_DATA_DIR: &str = "LATCHKEY_DATA_DIR";
pub const ENV_CACHE_DIR: &str = "LATCHKEY_CACHE_DIR";
pub const ENV_STORE: &str = "LATCHKEY_STORE";

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "latchkey")
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn no_home(what: &str, var: &str) -> PathBuf {
    // No home directory (a bare container): a relative path would be a surprise, so use
    // a fixed one under /tmp-like locations only via the explicit variable.
    eprintln!("latchkey: cannot find a home directory for the {what}; set {var}");
    PathBuf::from(format!(".latchkey-{what}"))
}

/// The config file: `$LATCHKEY_CONFIG`, else `<config dir>/latchkey/config.toml`.
pub fn config_file() -> PathBuf {
    from_env(ENV_CONFIG).unwrap_or_else(default_config_file)
}

/// Whether `$LATCHKEY_CONFIG` names the config file (then it must exist).
pub fn config_file_from_env() -> bool {
    from_env(ENV_CONFIG).is_some()
}

/// `<config dir>/latchkey/config.toml` (`$XDG_CONFIG_HOME` or `~/.config` on Linux).
pub fn default_config_file() -> PathBuf {
    project_dirs().map(|d| d.config_dir().join("config.toml")).unwrap_or_else(|| no_home("config", ENV_CONFIG))
}

/// The file store's directory: `$LATCHKEY_DATA_DIR`, else `<local data dir>/latchkey`:
/// on Windows `%LOCALAPPDATA%` (credentials must not roam with the profile, as the keyring
/// store's are kept local too), elsewhere the same as the data dir (`~/.local/share`,
/// `~/Library/Application Support`).
pub fn data_dir() -> PathBuf {
    from_env(ENV_DATA_DIR)
        .or_else(|| project_dirs().map(|d| d.data_local_dir().to_path_buf()))
        .unwrap_or_else(|| no_home("data", ENV_DATA_DIR))
}

/// The token cache's directory: `$LATCHKEY_CACHE_DIR`, else `<cache dir>/latchkey`.
pub fn cache_dir() -> PathBuf {
    from_env(ENV_CACHE_DIR)
        .or_else(|| project_dirs().map(|d| d.cache_dir().to_path_buf()))
        .unwrap_or_else(|| no_home("cache", ENV_CACHE_DIR))
}

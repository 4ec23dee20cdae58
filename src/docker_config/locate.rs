//! Which files to edit (docker's config.json, containers' auth.json) and which credHelpers keys
//! to write in each.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use latchkey_protocol::server_url::{DOCKER_HUB, RegistryKey};

use super::DOCKER_HUB_CLI_KEY;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    /// docker's config.json: read by docker, skopeo/podman and rules_oci.
    Docker,
    /// containers-auth.json: read by skopeo, podman and buildah only.
    Containers,
}

pub(super) fn config_files(docker_override: Option<&Path>, containers: bool) -> Result<Vec<(PathBuf, FileKind)>> {
    let mut files = vec![(docker_config_path(docker_override)?, FileKind::Docker)];
    if containers {
        files.push((containers_auth_path()?, FileKind::Containers));
    }
    Ok(files)
}

pub(super) fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub(super) fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

/// `--config FILE`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: the
/// file docker reads (an empty DOCKER_CONFIG counts as unset, as in docker).
pub(super) fn docker_config_path(override_path: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = override_path {
        return Ok(path.to_path_buf());
    }
    if let Some(dir) = env_path("DOCKER_CONFIG") {
        return Ok(dir.join("config.json"));
    }
    match home_dir() {
        Some(home) => Ok(home.join(".docker").join("config.json")),
        None => bail!("cannot find a home directory for docker's config.json; set DOCKER_CONFIG or pass --config FILE"),
    }
}

/// containers-auth.json as podman and skopeo write it: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json` on Linux, `~/.config/containers/auth.json` elsewhere.
pub(super) fn containers_auth_path() -> Result<PathBuf> {
    if let Some(path) = env_path("REGISTRY_AUTH_FILE") {
        return Ok(path);
    }
    if cfg!(target_os = "linux") {
        match env_path("XDG_RUNTIME_DIR") {
            Some(dir) => Ok(dir.join("containers").join("auth.json")),
            None => bail!(
                "--containers-auth: neither REGISTRY_AUTH_FILE nor XDG_RUNTIME_DIR is set; set REGISTRY_AUTH_FILE"
            ),
        }
    } else {
        match home_dir() {
            Some(home) => Ok(home.join(".config").join("containers").join("auth.json")),
            None => bail!("--containers-auth: cannot find a home directory; set REGISTRY_AUTH_FILE"),
        }
    }
}

/// The credHelpers keys for these registries in a file of this kind (see the module docs).
pub(super) fn entry_keys(registries: &[RegistryKey], kind: FileKind) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for registry in registries {
        let for_registry: &[&str] = if registry.as_str() == DOCKER_HUB {
            match kind {
                // The docker CLI looks up its index URL, containers/image and rules_oci
                // `docker.io`, crane/go-containerregistry `index.docker.io`.
                FileKind::Docker => &[DOCKER_HUB_CLI_KEY, DOCKER_HUB, "index.docker.io"],
                FileKind::Containers => &[DOCKER_HUB],
            }
        } else {
            &[registry.as_str()]
        };
        for key in for_registry {
            if !keys.iter().any(|k| k == key) {
                keys.push((*key).to_owned());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_config::keys;

    #[test]
    fn docker_hub_gets_both_spellings_in_docker_config() {
        let hub =
            vec![RegistryKey::parse_host("index.docker.io").unwrap(), RegistryKey::parse_host("ghcr.io").unwrap()];
        assert_eq!(
            entry_keys(&hub, FileKind::Docker),
            keys(&[DOCKER_HUB_CLI_KEY, "docker.io", "index.docker.io", "ghcr.io"])
        );
        assert_eq!(entry_keys(&hub, FileKind::Containers), keys(&["docker.io", "ghcr.io"]));
    }
}

//! `configure-docker` and `unconfigure-docker`: their arguments, and the commands.

use std::fs;
use std::path::PathBuf;

use anyhow::Result;

use latchkey_protocol::server_url::RegistryKey;

use super::HELPER_EXE;
use super::edit::{configure_text, unconfigure_text};
use super::locate::{config_files, entry_keys};
use super::plan::{finish, plan};

#[derive(clap::Args, Debug)]
pub struct ConfigureArgs {
    /// Registries to route to latchkey (ghcr.io, localhost:5000, ...)
    #[arg(required = true)]
    pub registries: Vec<String>,
    /// Replace another helper's entry for these registries
    #[arg(long)]
    pub force: bool,
    /// Show the change as a diff without writing it
    #[arg(long)]
    pub dry_run: bool,
    /// docker config file to edit [default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also edit containers-auth.json for podman, skopeo and buildah
    /// ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json)
    #[arg(long)]
    pub containers_auth: bool,
}

#[derive(clap::Args, Debug)]
pub struct UnconfigureArgs {
    /// Registries whose latchkey entries to remove
    #[arg(required = true)]
    pub registries: Vec<String>,
    /// Show the change as a diff without writing it
    #[arg(long)]
    pub dry_run: bool,
    /// docker config file to edit [default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also edit containers-auth.json for podman, skopeo and buildah
    /// ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json)
    #[arg(long)]
    pub containers_auth: bool,
}

pub fn configure(args: &ConfigureArgs) -> Result<()> {
    let registries = parse_registries(&args.registries)?;
    let files = config_files(args.config.as_deref(), args.containers_auth)?;
    let plans = files
        .iter()
        .map(|(path, kind)| {
            let keys = entry_keys(&registries, *kind);
            plan(path, move |text| configure_text(text, &keys, args.force))
        })
        .collect::<Result<Vec<_>>>()?;
    finish(plans, args.dry_run)?;
    if !args.dry_run && !on_path(HELPER_EXE) {
        eprintln!(
            "latchkey: warning: {HELPER_EXE} is not on PATH; docker, skopeo and rules_oci run it from PATH, \
             so they will fail until it is"
        );
    }
    Ok(())
}

pub fn unconfigure(args: &UnconfigureArgs) -> Result<()> {
    let registries = parse_registries(&args.registries)?;
    let files = config_files(args.config.as_deref(), args.containers_auth)?;
    let plans = files
        .iter()
        .map(|(path, _)| plan(path, |text| unconfigure_text(text, &registries)))
        .collect::<Result<Vec<_>>>()?;
    finish(plans, args.dry_run)?;
    Ok(())
}

/// Validate and normalise the command-line registries, in order, without duplicates.
pub(super) fn parse_registries(args: &[String]) -> Result<Vec<RegistryKey>> {
    let mut keys: Vec<RegistryKey> = Vec::new();
    for arg in args {
        let key = RegistryKey::parse_host(arg)?;
        if let Some(path) = repository_path(arg) {
            eprintln!(
                "latchkey: note: credHelpers are per registry, not per repository: using {:?} for {arg:?} (path {path:?} ignored)",
                key.as_str()
            );
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The path part of a registry argument, if it names more than the registry itself
/// (`ghcr.io/org`), so the user can be told it is ignored. `/`, `/v1/` and `/v2/` are API roots.
pub(super) fn repository_path(arg: &str) -> Option<&str> {
    let arg = arg.trim();
    let rest = arg.find("://").map_or(arg, |i| &arg[i + 3..]);
    let path = &rest[rest.find('/')?..];
    let trimmed = path.trim_matches('/');
    (!trimmed.is_empty() && trimmed != "v1" && trimmed != "v2").then_some(path)
}

pub(crate) fn on_path(exe: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    let exe = format!("{exe}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(&exe);
        match fs::metadata(&candidate) {
            #[cfg(unix)]
            Ok(m) => {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            }
            #[cfg(not(unix))]
            Ok(m) => m.is_file(),
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_are_noticed() {
        assert_eq!(repository_path("ghcr.io/org/app"), Some("/org/app"));
        assert_eq!(repository_path("https://index.docker.io/v1/"), None);
        assert_eq!(repository_path("https://ghcr.io/"), None);
        assert_eq!(repository_path("localhost:5000"), None);
    }
}

//! `configure-docker` / `unconfigure-docker`: edit docker's config.json credHelpers.
//!
//! The file belongs to the user and to docker, so it is edited in place, as text: only the
//! `credHelpers` entries latchkey is asked about change, and every other byte (other keys,
//! their order, values, number spellings, escapes, indentation) stays as it was. A file that
//! is not a JSON object is an error and is never rewritten.
//!
//! # Which keys are written
//!
//! Clients look `credHelpers` up by exact key, each with its own spelling:
//!
//! - docker CLI (`cli/config/configfile/file.go`, `getConfiguredCredentialStore`) looks up
//!   the registry's auth-config key: the bare `host[:port]` for every registry, but for Docker
//!   Hub the index server URL `https://index.docker.io/v1/` (`registry.GetAuthConfigKey`, and
//!   the CLI's own `getAuthConfigKey`, map `docker.io` and `index.docker.io` to it).
//! - skopeo/podman (containers/image `pkg/docker/config`, `findCredentialsInFile`) look up
//!   `reference.Domain(ref)`: `host[:port]`, and `docker.io` for Docker Hub. They read
//!   `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`) as well as their own auth.json.
//! - rules_oci (`go/pkg/credhelper`) reads only config.json's `credHelpers`, keyed by the host
//!   containerd resolves: `docker.io` for Docker Hub.
//!
//! So a registry is written as its [`RegistryKey`] (`ghcr.io`, `localhost:5000`), and Docker
//! Hub as both `https://index.docker.io/v1/` (docker) and `docker.io` (skopeo, rules_oci) in
//! config.json, and as `docker.io` alone in containers-auth.json, which docker never reads.
//!
//! One job per module: `commands` (the two subcommands and their arguments), `locate` (which
//! files, which keys), `report` (what `status` shows), `edit` (the edits, on text), `json_text`
//! (a JSON document as spans of text), `plan` (reading and planning a file), `write` (writing it
//! back through symlinks with its mode) and `diff` (the `--dry-run` diff).

mod commands;
mod diff;
mod edit;
mod json_text;
mod locate;
mod plan;
mod report;
mod write;

pub(crate) use commands::on_path;
pub use commands::{ConfigureArgs, UnconfigureArgs, configure, unconfigure};
pub use edit::check_edit_invariants;
pub use report::{DockerReport, report};

/// The helper suffix: docker runs `docker-credential-` + this.
pub const HELPER: &str = "latchkey";
/// The executable docker, skopeo and rules_oci look for on PATH.
pub const HELPER_EXE: &str = "docker-credential-latchkey";
/// The key docker's CLI uses for Docker Hub (`registry.IndexServer`).
pub const DOCKER_HUB_CLI_KEY: &str = "https://index.docker.io/v1/";

#[cfg(test)]
fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

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

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use latchkey_fs as fsutil;
use latchkey_protocol::server_url::{DOCKER_HUB, RegistryKey};

/// The helper suffix: docker runs `docker-credential-` + this.
pub const HELPER: &str = "latchkey";
/// The executable docker, skopeo and rules_oci look for on PATH.
pub const HELPER_EXE: &str = "docker-credential-latchkey";
/// The key docker's CLI uses for Docker Hub (`registry.IndexServer`).
pub const DOCKER_HUB_CLI_KEY: &str = "https://index.docker.io/v1/";

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

/// The fuzz targets' entry (`fuzz/`): edit `text` for `hosts` the way configure-docker and
/// unconfigure-docker do, and panic if an invariant breaks: an edit is JSON, configuring
/// twice changes nothing, and configure then unconfigure gives back the original document when
/// the file had no credHelpers of its own.
#[doc(hidden)]
pub fn check_edit_invariants(text: &str, hosts: &[&str]) {
    let registries: Vec<RegistryKey> = hosts.iter().filter_map(|h| RegistryKey::parse_host(h).ok()).collect();
    if registries.is_empty() {
        return;
    }
    let keys = entry_keys(&registries, FileKind::Docker);
    // Any text: no panic.
    let _ = unconfigure_text(text, &registries);
    let _ = configure_text(text, &keys, true);
    // The editor's scanner only sees what serde_json accepted first (see `run_edit`).
    if !text.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return;
    }
    let Ok(configured) = configure_text(text, &keys, false) else { return };
    serde_json::from_str::<serde_json::Value>(&configured.text).expect("a configured file is JSON");
    let again = configure_text(&configured.text, &keys, false).expect("a configured file configures again");
    assert!(!again.changed && again.text == configured.text, "configure is not idempotent");
    let had_helpers =
        serde_json::from_str::<serde_json::Value>(text).ok().is_some_and(|v| v.get("credHelpers").is_some());
    let restored = unconfigure_text(&configured.text, &registries).expect("a configured file unconfigures");
    if !had_helpers && !text.trim().is_empty() {
        // Same document; byte for byte in the layouts docker and editors write (the property
        // tests check that), but whitespace inside an empty object (`{\n\n}`) comes back as `{}`.
        let value = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("JSON");
        assert_eq!(value(&restored.text), value(text), "configure then unconfigure changes the document");
    }
}

/// What `status` shows about docker's config.json.
#[derive(serde::Serialize, Debug)]
pub struct DockerReport {
    /// The config file docker reads.
    pub path: String,
    /// credHelpers keys routed to latchkey, in file order.
    pub latchkey_registries: Vec<String>,
    /// credHelpers keys routed to other helpers: (key, helper as written).
    pub other_helpers: Vec<(String, String)>,
    /// The default helper for every other registry, if any.
    pub creds_store: Option<String>,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

impl std::fmt::Display for DockerReport {
    /// `PATH: latchkey for ghcr.io, docker.io; other helpers: gcr.io: gcloud; credsStore: pass`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(error) = &self.error {
            return write!(f, "{}: unreadable: {error}", self.path);
        }
        let mut parts = vec![if self.latchkey_registries.is_empty() {
            "no registry uses latchkey (run configure-docker REGISTRY)".to_owned()
        } else {
            format!("latchkey for {}", self.latchkey_registries.join(", "))
        }];
        if !self.other_helpers.is_empty() {
            let others: Vec<String> = self.other_helpers.iter().map(|(k, h)| format!("{k}: {h}")).collect();
            parts.push(format!("other helpers: {}", others.join(", ")));
        }
        if let Some(store) = &self.creds_store {
            parts.push(format!("credsStore: {store}"));
        }
        write!(f, "{}: {}", self.path, parts.join("; "))
    }
}

/// The docker config.json as `status` reports it; `None` if it does not exist (or no home).
pub fn report() -> Option<DockerReport> {
    report_at(&docker_config_path(None).ok()?)
}

fn report_at(path: &Path) -> Option<DockerReport> {
    let mut report = DockerReport {
        path: path.display().to_string(),
        latchkey_registries: Vec::new(),
        other_helpers: Vec::new(),
        creds_store: None,
        error: None,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            report.error = Some(e.to_string());
            return Some(report);
        }
    };
    if is_blank(&bytes) {
        return Some(report);
    }
    let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| format!("not valid JSON: {e}"))
        .and_then(|_| String::from_utf8(bytes).map_err(|e| e.to_string()))
        .and_then(|text| match Doc::parse(&text) {
            Ok(doc) => Ok((text, doc)),
            Err(EditError::Invalid(why)) => Err(why),
            Err(EditError::HelpersNotObject(kind)) => Err(format!("\"credHelpers\" is {kind}, not an object")),
            Err(EditError::Conflicts(_)) => Err("unexpected conflict".to_owned()),
        });
    let (text, doc) = match parsed {
        Ok(parsed) => parsed,
        Err(why) => {
            report.error = Some(why);
            return Some(report);
        }
    };
    if let Some(m) = doc.root.members.iter().rev().find(|m| m.key == "credsStore") {
        report.creds_store = Some(Value::of(&text, m).plain());
    }
    if let Some(helpers) = doc.helpers_object() {
        for m in &helpers.members {
            match Value::of(&text, m) {
                Value::Str(v) if v == HELPER => report.latchkey_registries.push(m.key.clone()),
                other => report.other_helpers.push((m.key.clone(), other.plain())),
            }
        }
    }
    Some(report)
}

// ---------------------------------------------------------------------------------------
// Which files, which keys

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    /// docker's config.json: read by docker, skopeo/podman and rules_oci.
    Docker,
    /// containers-auth.json: read by skopeo, podman and buildah only.
    Containers,
}

fn config_files(docker_override: Option<&Path>, containers: bool) -> Result<Vec<(PathBuf, FileKind)>> {
    let mut files = vec![(docker_config_path(docker_override)?, FileKind::Docker)];
    if containers {
        files.push((containers_auth_path()?, FileKind::Containers));
    }
    Ok(files)
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

/// `--config FILE`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: the
/// file docker reads (an empty DOCKER_CONFIG counts as unset, as in docker).
fn docker_config_path(override_path: Option<&Path>) -> Result<PathBuf> {
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
fn containers_auth_path() -> Result<PathBuf> {
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

/// Validate and normalise the command-line registries, in order, without duplicates.
fn parse_registries(args: &[String]) -> Result<Vec<RegistryKey>> {
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
fn repository_path(arg: &str) -> Option<&str> {
    let arg = arg.trim();
    let rest = arg.find("://").map_or(arg, |i| &arg[i + 3..]);
    let path = &rest[rest.find('/')?..];
    let trimmed = path.trim_matches('/');
    (!trimmed.is_empty() && trimmed != "v1" && trimmed != "v2").then_some(path)
}

/// The credHelpers keys for these registries in a file of this kind (see the module docs).
fn entry_keys(registries: &[RegistryKey], kind: FileKind) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for registry in registries {
        let for_registry: &[&str] = if registry.as_str() == DOCKER_HUB {
            match kind {
                FileKind::Docker => &[DOCKER_HUB_CLI_KEY, DOCKER_HUB],
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

fn on_path(exe: &str) -> bool {
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

// ---------------------------------------------------------------------------------------
// Reading, planning and writing one file

/// The outcome of editing a file's text.
#[derive(Debug)]
struct Edited {
    text: String,
    /// Whether anything changed (a missing file with nothing to add is not created).
    changed: bool,
    /// One line per registry key, for stderr.
    notes: Vec<String>,
}

/// Why an edit cannot be made; the file is left as it is.
#[derive(Debug)]
enum EditError {
    /// The text is not a JSON object (serde_json's message carries the position).
    Invalid(String),
    /// Other helpers own these keys: (key, current value).
    Conflicts(Vec<(String, Value)>),
    /// `credHelpers` exists but is not an object (its JSON type).
    HelpersNotObject(&'static str),
}

/// An edit of a file's text (configure or unconfigure).
type EditFn<'a> = dyn Fn(&str) -> std::result::Result<Edited, EditError> + 'a;

struct Plan<'a> {
    /// The path as given (what the user knows it by).
    path: PathBuf,
    /// The file actually written: `path` with symlinks resolved.
    target: PathBuf,
    /// The bytes read, `None` if the file did not exist.
    original: Option<Vec<u8>>,
    edited: Edited,
    /// The same edit, to redo it if the file changes between reading and writing.
    redo: Box<EditFn<'a>>,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Read `path` (through symlinks) and compute the edit, without writing anything.
fn plan<'a, F>(path: &Path, edit: F) -> Result<Plan<'a>>
where
    F: Fn(&str) -> std::result::Result<Edited, EditError> + 'a,
{
    let target = fsutil::resolve_symlinks(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let original = read_optional(&target)?;
    let edited = run_edit(path, original.as_deref(), &edit)?;
    Ok(Plan { path: path.to_path_buf(), target, original, edited, redo: Box::new(edit) })
}

fn run_edit(path: &Path, original: Option<&[u8]>, edit: &EditFn<'_>) -> Result<Edited> {
    let text = match original {
        None => String::new(),
        Some(bytes) => {
            // Validate with serde_json first: its messages carry line and column.
            if !is_blank(bytes)
                && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            {
                bail!("{} is not valid JSON: {e}; it was left unchanged", path.display());
            }
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text,
                Err(e) => bail!("{} is not UTF-8 text: {e}; it was left unchanged", path.display()),
            }
        }
    };
    edit(&text).map_err(|e| match e {
        EditError::Invalid(why) => anyhow::anyhow!("{}: {why}; it was left unchanged", path.display()),
        EditError::HelpersNotObject(kind) => anyhow::anyhow!(
            "{}: \"credHelpers\" is {kind}, not an object; fix it by hand (the file was left unchanged)",
            path.display()
        ),
        EditError::Conflicts(conflicts) => {
            let list = conflicts
                .iter()
                .map(|(key, value)| match value {
                    Value::Str(helper) => format!("{key:?} uses {helper:?} (docker-credential-{helper})"),
                    Value::Other(raw) => format!("{key:?} is {raw}, not a helper name"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            anyhow::anyhow!(
                "{}: credHelpers {list}; rerun with --force to replace {} with {HELPER:?} (nothing was changed)",
                path.display(),
                if conflicts.len() == 1 { "it" } else { "them" }
            )
        }
    })
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Print the notes and write (or, for a dry run, diff) every planned file. Every file was
/// planned, and so checked, before the first one is written.
fn finish(plans: Vec<Plan<'_>>, dry_run: bool) -> Result<()> {
    for mut plan in plans {
        if !dry_run && plan.edited.changed {
            write_plan(&mut plan)?;
        }
        let shown = plan.path.display().to_string();
        for note in &plan.edited.notes {
            eprintln!("latchkey: {shown}: {note}");
        }
        if !plan.edited.changed {
            eprintln!("latchkey: {shown}: already up to date; nothing changed");
            continue;
        }
        if dry_run {
            let old = plan.original.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let old_name = if plan.original.is_some() { shown.clone() } else { "/dev/null".to_owned() };
            let diff = unified_diff(&old, &plan.edited.text, &old_name, &shown);
            let mut stdout = io::stdout().lock();
            stdout.write_all(diff.as_bytes()).context("cannot write the diff to stdout")?;
            stdout.flush().context("cannot write the diff to stdout")?;
            eprintln!("latchkey: {shown}: dry run, not written");
        } else if plan.target != plan.path {
            eprintln!("latchkey: {shown}: updated (through the symlink, in {})", plan.target.display());
        } else if plan.original.is_none() {
            eprintln!("latchkey: {shown}: created");
        } else {
            eprintln!("latchkey: {shown}: updated");
        }
    }
    Ok(())
}

/// Write a plan's text over its target, atomically, keeping the target's permissions (a new
/// file is 0600, in a directory created 0700). If the file changed since it was read (docker
/// login running at the same time), the edit is redone on the new content.
fn write_plan(plan: &mut Plan<'_>) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let current = read_optional(&plan.target)?;
        if current != plan.original {
            plan.edited = run_edit(&plan.path, current.as_deref(), &*plan.redo)?;
            plan.original = current;
            if !plan.edited.changed {
                return Ok(());
            }
            continue;
        }
        let mode = match &plan.original {
            Some(_) => existing_mode(&plan.target)?,
            None => {
                if let Some(dir) = plan.target.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    fsutil::ensure_private_dir(dir)
                        .with_context(|| format!("cannot create directory {}", dir.display()))?;
                }
                0o600
            }
        };
        fsutil::write_atomic(&plan.target, plan.edited.text.as_bytes(), mode)
            .with_context(|| format!("cannot write {}", plan.target.display()))?;
        restore_mode(&plan.target, mode)?;
        return Ok(());
    }
    bail!("{} keeps changing while latchkey edits it; try again", plan.path.display())
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    Ok(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Result<u32> {
    Ok(0o600)
}

/// `write_atomic` creates the file with `mode` as filtered by the umask; put back the exact
/// mode the file had (e.g. 0644 under a umask of 077).
#[cfg(unix)]
fn restore_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if existing_mode(path)? != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restore_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The edits, on text

/// A new file, or an empty one: docker's own layout (tab indentation).
const EMPTY_DOC: &str = "{}\n";

fn helper_json() -> String {
    json_string(HELPER)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// Set `credHelpers[key] = "latchkey"` for every key. Another helper's entry is a conflict
/// unless `force`; all conflicts are reported at once and nothing is changed.
fn configure_text(text: &str, keys: &[String], force: bool) -> std::result::Result<Edited, EditError> {
    let mut text = if text.trim().is_empty() { EMPTY_DOC.to_owned() } else { text.to_owned() };
    let doc = Doc::parse(&text)?;
    if !force {
        let conflicts: Vec<(String, Value)> = keys
            .iter()
            .filter_map(|key| match doc.helper(&text, key) {
                Some(Entry { value: Value::Str(v), .. }) if v == HELPER => None,
                Some(entry) => Some((key.clone(), entry.value)),
                None => None,
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(EditError::Conflicts(conflicts));
        }
    }
    let mut notes = Vec::new();
    let mut changed = false;
    for key in keys {
        let doc = Doc::parse(&text)?;
        match doc.helper(&text, key) {
            Some(Entry { value: Value::Str(v), .. }) if v == HELPER => {
                notes.push(format!("{key:?} already uses {HELPER:?}"));
            }
            Some(entry) => {
                notes.push(format!("{key:?}: replaced {} with {HELPER:?} (--force)", entry.value.describe()));
                text.replace_range(entry.member.value_start..entry.member.value_end, &helper_json());
                changed = true;
            }
            None => {
                text = doc.insert_helper(&text, key, &helper_json());
                notes.push(format!("{key:?}: added credHelpers entry {HELPER:?}"));
                changed = true;
            }
        }
    }
    Ok(Edited { text, changed, notes })
}

/// Remove every credHelpers entry that names one of `registries` (in any spelling) and whose
/// value is "latchkey". Other helpers' entries stay, with a note. An emptied credHelpers
/// object is removed.
fn unconfigure_text(text: &str, registries: &[RegistryKey]) -> std::result::Result<Edited, EditError> {
    let blank = text.trim().is_empty();
    let mut text = if blank { EMPTY_DOC.to_owned() } else { text.to_owned() };
    let matches = |key: &str| RegistryKey::parse_host(key).ok().filter(|k| registries.contains(k));
    let mut removed: Vec<(RegistryKey, String)> = Vec::new();
    loop {
        let doc = Doc::parse(&text)?;
        let Some(helpers) = doc.helpers_object() else { break };
        let found = helpers.members.iter().enumerate().find_map(|(i, m)| {
            let registry = matches(&m.key)?;
            let is_ours = matches!(Value::of(&text, m), Value::Str(v) if v == HELPER);
            is_ours.then(|| (i, registry, m.key.clone()))
        });
        let Some((index, registry, key)) = found else { break };
        text = doc.remove_helper(&text, index);
        removed.push((registry, key));
    }
    let mut notes = Vec::new();
    let doc = Doc::parse(&text)?;
    for registry in registries {
        let mut said = false;
        for (_, key) in removed.iter().filter(|(r, _)| r == registry) {
            notes.push(format!("{key:?}: removed the {HELPER:?} entry"));
            said = true;
        }
        if let Some(helpers) = doc.helpers_object() {
            for m in helpers.members.iter().filter(|m| matches(&m.key).as_ref() == Some(registry)) {
                notes.push(format!(
                    "note: {:?} uses {}, not {HELPER:?}; left alone",
                    m.key,
                    Value::of(&text, m).describe()
                ));
                said = true;
            }
        }
        if !said {
            notes.push(format!("{:?}: no credHelpers entry; nothing to remove", registry.as_str()));
        }
    }
    let changed = !removed.is_empty();
    Ok(Edited { text, changed, notes })
}

// ---------------------------------------------------------------------------------------
// A JSON document as spans of text

/// One `"key": value` member of an object, by byte offsets.
#[derive(Debug, Clone)]
struct Member {
    /// The decoded key.
    key: String,
    /// Offset of the key's opening quote.
    start: usize,
    /// Offset just past the key's closing quote.
    key_end: usize,
    value_start: usize,
    value_end: usize,
}

#[derive(Debug, Clone)]
struct Object {
    /// Offset of `{`.
    open: usize,
    /// Offset of `}`.
    close: usize,
    members: Vec<Member>,
}

#[derive(Debug)]
enum Helpers {
    Absent,
    /// Present with a `null` value: root member index.
    Null(usize),
    /// Root member index and the object.
    Object(usize, Object),
}

#[derive(Debug)]
struct Doc {
    root: Object,
    helpers: Helpers,
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    /// Any other JSON value, as written.
    Other(String),
}

impl Value {
    fn of(text: &str, m: &Member) -> Value {
        let raw = &text[m.value_start..m.value_end];
        match serde_json::from_str::<String>(raw) {
            Ok(s) => Value::Str(s),
            Err(_) => Value::Other(raw.to_owned()),
        }
    }

    /// A helper name as is, or any other value as its JSON.
    fn plain(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Other(raw) => raw.clone(),
        }
    }

    /// The value as a user would recognise it: a quoted helper name, or the JSON as written.
    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Other(raw) => raw.clone(),
        }
    }
}

struct Entry {
    member: Member,
    value: Value,
}

impl Doc {
    fn parse(text: &str) -> std::result::Result<Doc, EditError> {
        let mut scanner = Scanner { text, bytes: text.as_bytes(), pos: 0 };
        scanner.ws();
        let root = match scanner.peek()? {
            b'{' => scanner.object()?,
            other => {
                let kind = match other {
                    b'[' => "an array",
                    b'"' => "a string",
                    b'n' => "null",
                    b't' | b'f' => "a boolean",
                    _ => "a number",
                };
                return Err(EditError::Invalid(format!("the top level is {kind}, not a JSON object")));
            }
        };
        // Text after the root object would survive every edit and leave a file no JSON parser reads.
        scanner.ws();
        if scanner.pos != text.len() {
            return Err(EditError::Invalid(format!("unexpected text after the JSON object at byte {}", scanner.pos)));
        }
        // The last "credHelpers" wins, as in Go's encoding/json and serde_json.
        let helpers = match root.members.iter().rposition(|m| m.key == "credHelpers") {
            None => Helpers::Absent,
            Some(i) => {
                let m = &root.members[i];
                let mut inner = Scanner { text, bytes: text.as_bytes(), pos: m.value_start };
                match text.as_bytes()[m.value_start] {
                    b'{' => Helpers::Object(i, inner.object()?),
                    b'n' => Helpers::Null(i),
                    b'[' => return Err(EditError::HelpersNotObject("an array")),
                    b'"' => return Err(EditError::HelpersNotObject("a string")),
                    b't' | b'f' => return Err(EditError::HelpersNotObject("a boolean")),
                    _ => return Err(EditError::HelpersNotObject("a number")),
                }
            }
        };
        Ok(Doc { root, helpers })
    }

    fn helpers_object(&self) -> Option<&Object> {
        match &self.helpers {
            Helpers::Object(_, obj) => Some(obj),
            _ => None,
        }
    }

    /// The effective entry for `key` (the last one, if the key is repeated).
    fn helper(&self, text: &str, key: &str) -> Option<Entry> {
        let member = self.helpers_object()?.members.iter().rev().find(|m| m.key == key)?.clone();
        let value = Value::of(text, &member);
        Some(Entry { member, value })
    }

    /// The indentation unit: that of the root's members, else a tab (docker's own).
    fn unit<'t>(&self, text: &'t str) -> &'t str {
        match self.root.members.first().and_then(|m| line_indent(text, m.start)) {
            Some(indent) if !indent.is_empty() => indent,
            _ => "\t",
        }
    }

    /// Insert `"key": value` into credHelpers, creating credHelpers if needed.
    fn insert_helper(&self, text: &str, key: &str, value: &str) -> String {
        let unit = self.unit(text);
        let root_sep = self.root.members.last().map_or(": ", |m| &text[m.key_end..m.value_start]);
        let mut out = text.to_owned();
        match &self.helpers {
            Helpers::Object(_, obj) if !obj.members.is_empty() => {
                let last = obj.members.last().expect("not empty");
                let insertion = format!(",{}{}{}{value}", member_gap(text, obj), json_string(key), sep(text, last));
                out.insert_str(last.value_end, &insertion);
            }
            Helpers::Object(i, obj) => {
                let member = &self.root.members[*i];
                let indent = line_indent(text, member.start);
                let rendered = render_object(indent, unit, root_sep, key, value);
                out.replace_range(obj.open..obj.close + 1, &rendered);
            }
            Helpers::Null(i) => {
                let member = &self.root.members[*i];
                let indent = line_indent(text, member.start);
                let rendered = render_object(indent, unit, root_sep, key, value);
                out.replace_range(member.value_start..member.value_end, &rendered);
            }
            Helpers::Absent => {
                if let Some(last) = self.root.members.last() {
                    let indent = line_indent(text, last.start);
                    let rendered = render_object(indent, unit, root_sep, key, value);
                    let insertion =
                        format!(",{}\"credHelpers\"{}{rendered}", member_gap(text, &self.root), sep(text, last));
                    out.insert_str(last.value_end, &insertion);
                } else {
                    let inner = render_object(Some(unit), unit, ": ", key, value);
                    let rendered = format!("{{\n{unit}\"credHelpers\": {inner}\n}}");
                    out.replace_range(self.root.open..self.root.close + 1, &rendered);
                }
            }
        }
        out
    }

    /// Remove credHelpers member `index`; if it is the only one, remove credHelpers itself.
    fn remove_helper(&self, text: &str, index: usize) -> String {
        let Helpers::Object(root_index, obj) = &self.helpers else { return text.to_owned() };
        if obj.members.len() == 1 {
            remove_member(text, &self.root, *root_index)
        } else {
            remove_member(text, obj, index)
        }
    }
}

/// `{"key": value}` laid out for a member whose line is indented by `indent` (`None`: the
/// member shares its line with others, so the object stays on one line too).
fn render_object(indent: Option<&str>, unit: &str, sep: &str, key: &str, value: &str) -> String {
    let key = json_string(key);
    match indent {
        Some(indent) => format!("{{\n{indent}{unit}{key}{sep}{value}\n{indent}}}"),
        None => format!("{{{key}{sep}{value}}}"),
    }
}

fn remove_member(text: &str, obj: &Object, index: usize) -> String {
    let members = &obj.members;
    let range = if members.len() == 1 {
        obj.open + 1..obj.close
    } else if index + 1 < members.len() {
        members[index].start..members[index + 1].start
    } else {
        members[index - 1].value_end..members[index].value_end
    };
    let mut out = text.to_owned();
    out.replace_range(range, "");
    out
}

/// The separator between a member's key and value, as written (`": "`, `":"`, ...).
fn sep<'t>(text: &'t str, m: &Member) -> &'t str {
    &text[m.key_end..m.value_start]
}

/// The whitespace to put after a comma before a new last member of a non-empty `obj`: what
/// precedes its members (a newline and indentation, or the space after commas on one line).
fn member_gap<'t>(text: &'t str, obj: &Object) -> &'t str {
    let last = obj.members.last().map_or(obj.close, |m| m.start);
    let gap = ws_before(text, last);
    if obj.members.len() > 1 || gap.contains('\n') {
        gap
    } else if obj.members.first().is_some_and(|m| sep(text, m).ends_with(' ')) {
        // `{"a": 1}`: nothing follows `{`, but the file puts spaces around punctuation.
        " "
    } else {
        gap
    }
}

/// The whitespace just before offset `at`.
fn ws_before(text: &str, at: usize) -> &str {
    let start = text[..at].trim_end_matches([' ', '\t', '\n', '\r']).len();
    &text[start..at]
}

/// The indentation of the line holding offset `at`, if only whitespace precedes `at` on it.
fn line_indent(text: &str, at: usize) -> Option<&str> {
    let ws = ws_before(text, at);
    ws.rfind('\n').map(|i| &ws[i + 1..])
}

/// A scanner over text already validated as JSON by serde_json; it only records where
/// things are. It still fails cleanly, never panics, on anything unexpected.
struct Scanner<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn invalid(&self) -> EditError {
        EditError::Invalid(format!("unexpected JSON at byte {}", self.pos))
    }

    fn peek(&self) -> std::result::Result<u8, EditError> {
        self.bytes.get(self.pos).copied().ok_or_else(|| self.invalid())
    }

    fn expect(&mut self, byte: u8) -> std::result::Result<(), EditError> {
        if self.peek()? != byte {
            return Err(self.invalid());
        }
        self.pos += 1;
        Ok(())
    }

    fn ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> std::result::Result<(), EditError> {
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
    }

    fn value(&mut self) -> std::result::Result<(), EditError> {
        match self.peek()? {
            b'{' => self.object().map(drop),
            b'[' => self.array(),
            b'"' => self.string(),
            _ => {
                let start = self.pos;
                while matches!(self.bytes.get(self.pos), Some(b) if !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.pos += 1;
                }
                if self.pos == start { Err(self.invalid()) } else { Ok(()) }
            }
        }
    }

    fn array(&mut self) -> std::result::Result<(), EditError> {
        self.expect(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value()?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.invalid()),
            }
        }
    }

    fn object(&mut self) -> std::result::Result<Object, EditError> {
        let open = self.pos;
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            let close = self.pos;
            self.pos += 1;
            return Ok(Object { open, close, members });
        }
        loop {
            self.ws();
            let start = self.pos;
            self.string()?;
            let key_end = self.pos;
            let key = serde_json::from_str::<String>(&self.text[start..key_end]).map_err(|_| self.invalid())?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value_start = self.pos;
            self.value()?;
            let value_end = self.pos;
            members.push(Member { key, start, key_end, value_start, value_end });
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    let close = self.pos;
                    self.pos += 1;
                    return Ok(Object { open, close, members });
                }
                _ => return Err(self.invalid()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Unified diff, for --dry-run

const CONTEXT: usize = 3;
/// Past this many cells the middle of the diff is shown as replaced whole.
const MAX_LCS_CELLS: usize = 4 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Keep,
    Del,
    Add,
}

/// A unified diff (`---`/`+++`, `@@ -a,b +c,d @@` hunks with 3 lines of context) of two texts.
fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = diff_lines(&a, &b);
    if ops.iter().all(|(op, _)| *op == Op::Keep) {
        return String::new();
    }
    // Line numbers (0-based) in a and b before each op.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut ia, mut ib) = (0usize, 0usize);
    for (op, _) in &ops {
        positions.push((ia, ib));
        match op {
            Op::Keep => {
                ia += 1;
                ib += 1;
            }
            Op::Del => ia += 1,
            Op::Add => ib += 1,
        }
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let changes: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].0 != Op::Keep).collect();
    let mut k = 0;
    while k < changes.len() {
        let first = changes[k];
        let mut last = first;
        while k + 1 < changes.len() && changes[k + 1] - last <= 2 * CONTEXT + 1 {
            k += 1;
            last = changes[k];
        }
        k += 1;
        let start = first.saturating_sub(CONTEXT);
        let end = (last + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let old_count = hunk.iter().filter(|(op, _)| *op != Op::Add).count();
        let new_count = hunk.iter().filter(|(op, _)| *op != Op::Del).count();
        let (pa, pb) = positions[start];
        let old_start = if old_count == 0 { pa } else { pa + 1 };
        let new_start = if new_count == 0 { pb } else { pb + 1 };
        out.push_str(&format!("@@ -{old_start},{old_count} +{new_start},{new_count} @@\n"));
        for (op, line) in hunk {
            out.push(match op {
                Op::Keep => ' ',
                Op::Del => '-',
                Op::Add => '+',
            });
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

fn diff_lines<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<(Op, &'t str)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<(Op, &str)> = a[..prefix].iter().map(|l| (Op::Keep, *l)).collect();
    let (n, m) = (am.len(), bm.len());
    if (n + 1).saturating_mul(m + 1) > MAX_LCS_CELLS {
        ops.extend(am.iter().map(|l| (Op::Del, *l)));
        ops.extend(bm.iter().map(|l| (Op::Add, *l)));
    } else {
        // lcs[i][j]: length of the LCS of am[i..] and bm[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push((Op::Keep, am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
                // Deletions first, as diff(1) shows a replaced line.
                ops.push((Op::Del, am[i]));
                i += 1;
            } else {
                ops.push((Op::Add, bm[j]));
                j += 1;
            }
        }
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| (Op::Keep, *l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn configure(text: &str, list: &[&str]) -> String {
        let edited = configure_text(text, &keys(list), false).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_str::<serde_json::Value>(&edited.text).expect("result is JSON");
        edited.text
    }

    fn unconfigure(text: &str, list: &[&str]) -> Edited {
        let registries: Vec<RegistryKey> = list.iter().map(|s| RegistryKey::parse(s).unwrap()).collect();
        let edited = unconfigure_text(text, &registries).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_str::<serde_json::Value>(&edited.text).expect("result is JSON");
        edited
    }

    #[test]
    fn new_file_uses_docker_layout() {
        assert_eq!(configure("", &["ghcr.io"]), "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t}\n}\n");
        assert_eq!(
            configure("{}", &["a.io", "b.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"a.io\": \"latchkey\",\n\t\t\"b.io\": \"latchkey\"\n\t}\n}"
        );
    }

    #[test]
    fn appends_credhelpers_in_the_files_own_layout() {
        let text = "{\n  \"auths\": {\n    \"x.io\": {}\n  },\n  \"n\": 1.50\n}\n";
        assert_eq!(
            configure(text, &["ghcr.io"]),
            "{\n  \"auths\": {\n    \"x.io\": {}\n  },\n  \"n\": 1.50,\n  \"credHelpers\": {\n    \"ghcr.io\": \"latchkey\"\n  }\n}\n"
        );
        assert_eq!(configure(r#"{"a":1}"#, &["ghcr.io"]), r#"{"a":1,"credHelpers":{"ghcr.io":"latchkey"}}"#);
        assert_eq!(
            configure(r#"{"credHelpers": {"a.io": "x"}}"#, &["ghcr.io"]),
            r#"{"credHelpers": {"a.io": "x", "ghcr.io": "latchkey"}}"#
        );
    }

    #[test]
    fn adds_to_an_existing_credhelpers() {
        let text = "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"x\": \"\\u00e9\"\n}";
        assert_eq!(
            configure(text, &["ghcr.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"ghcr.io\": \"latchkey\"\n\t},\n\t\"x\": \"\\u00e9\"\n}"
        );
        assert_eq!(
            configure("{\n\t\"credHelpers\": {},\n\t\"a\": 1\n}", &["ghcr.io"]),
            "{\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\"\n\t},\n\t\"a\": 1\n}"
        );
        assert_eq!(
            configure("{\n  \"credHelpers\": null\n}", &["ghcr.io"]),
            "{\n  \"credHelpers\": {\n    \"ghcr.io\": \"latchkey\"\n  }\n}"
        );
    }

    #[test]
    fn idempotent() {
        let once = configure("{\"a\": [1, 2]}\n", &["ghcr.io", "localhost:5000"]);
        let edited = configure_text(&once, &keys(&["ghcr.io", "localhost:5000"]), false).unwrap();
        assert!(!edited.changed);
        assert_eq!(edited.text, once);
    }

    #[test]
    fn conflicts_are_all_reported_and_force_replaces() {
        let text = r#"{"credHelpers": {"gcr.io": "gcloud", "ecr.io": "ecr-login", "ghcr.io": "latchkey"}}"#;
        match configure_text(text, &keys(&["gcr.io", "ghcr.io", "ecr.io"]), false) {
            Err(EditError::Conflicts(c)) => {
                assert_eq!(
                    c,
                    vec![
                        ("gcr.io".into(), Value::Str("gcloud".into())),
                        ("ecr.io".into(), Value::Str("ecr-login".into()))
                    ]
                )
            }
            other => panic!("{other:?}"),
        }
        let forced = configure_text(text, &keys(&["gcr.io"]), true).unwrap();
        assert_eq!(
            forced.text,
            r#"{"credHelpers": {"gcr.io": "latchkey", "ecr.io": "ecr-login", "ghcr.io": "latchkey"}}"#
        );
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        assert!(matches!(configure_text("[1]", &keys(&["a.io"]), false), Err(EditError::Invalid(_))));
        assert!(matches!(configure_text("{}\n}", &keys(&["a.io"]), true), Err(EditError::Invalid(_))));
        assert!(matches!(unconfigure_text("{} x", &[RegistryKey::parse("a.io").unwrap()]), Err(EditError::Invalid(_))));
        assert!(matches!(
            configure_text(r#"{"credHelpers": "x"}"#, &keys(&["a.io"]), false),
            Err(EditError::HelpersNotObject("a string"))
        ));
    }

    #[test]
    fn unconfigure_removes_only_latchkey_entries_and_empty_credhelpers() {
        let text = "{\n\t\"a\": 1,\n\t\"credHelpers\": {\n\t\t\"ghcr.io\": \"latchkey\",\n\t\t\"gcr.io\": \"gcloud\"\n\t}\n}\n";
        let edited = unconfigure(text, &["ghcr.io", "gcr.io"]);
        assert_eq!(edited.text, "{\n\t\"a\": 1,\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t}\n}\n");
        assert!(edited.notes.iter().any(|n| n.contains("gcloud") && n.contains("left alone")), "{:?}", edited.notes);

        let text = "{\n\t\"credHelpers\": {\n\t\t\"https://index.docker.io/v1/\": \"latchkey\",\n\t\t\"docker.io\": \"latchkey\"\n\t},\n\t\"a\": 1\n}\n";
        assert_eq!(unconfigure(text, &["docker.io"]).text, "{\n\t\"a\": 1\n}\n");
        let text = "{\"credHelpers\": {\"ghcr.io\": \"latchkey\"}}";
        assert_eq!(unconfigure(text, &["ghcr.io"]).text, "{}");
        let edited = unconfigure("{\"a\": 1}", &["ghcr.io"]);
        assert!(!edited.changed);
    }

    #[test]
    fn docker_hub_gets_both_spellings_in_docker_config() {
        let hub = vec![RegistryKey::parse("index.docker.io").unwrap(), RegistryKey::parse("ghcr.io").unwrap()];
        assert_eq!(entry_keys(&hub, FileKind::Docker), keys(&[DOCKER_HUB_CLI_KEY, "docker.io", "ghcr.io"]));
        assert_eq!(entry_keys(&hub, FileKind::Containers), keys(&["docker.io", "ghcr.io"]));
    }

    #[test]
    fn repository_paths_are_noticed() {
        assert_eq!(repository_path("ghcr.io/org/app"), Some("/org/app"));
        assert_eq!(repository_path("https://index.docker.io/v1/"), None);
        assert_eq!(repository_path("https://ghcr.io/"), None);
        assert_eq!(repository_path("localhost:5000"), None);
    }

    #[test]
    fn status_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(report_at(&path).is_none());
        fs::write(
            &path,
            r#"{"credsStore": "pass", "credHelpers": {"ghcr.io": "latchkey", "gcr.io": "gcloud", "docker.io": "latchkey"}}"#,
        )
        .unwrap();
        let r = report_at(&path).unwrap();
        assert_eq!(r.latchkey_registries, keys(&["ghcr.io", "docker.io"]));
        assert_eq!(r.other_helpers, vec![("gcr.io".to_owned(), "gcloud".to_owned())]);
        assert_eq!(r.creds_store.as_deref(), Some("pass"));
        assert!(r.error.is_none());
        assert!(
            r.to_string().contains("latchkey for ghcr.io, docker.io; other helpers: gcr.io: gcloud; credsStore: pass")
        );
        fs::write(&path, "{,").unwrap();
        let r = report_at(&path).unwrap();
        assert!(r.error.as_deref().unwrap().contains("line 1 column 2"), "{r:?}");
    }

    #[test]
    fn diff_is_unified() {
        let old = "{\n\t\"a\": 1\n}\n";
        let new = "{\n\t\"a\": 1,\n\t\"b\": 2\n}\n";
        assert_eq!(
            unified_diff(old, new, "f", "f"),
            "--- f\n+++ f\n@@ -1,3 +1,4 @@\n {\n-\t\"a\": 1\n+\t\"a\": 1,\n+\t\"b\": 2\n }\n"
        );
        assert_eq!(unified_diff("", "x\n", "/dev/null", "f"), "--- /dev/null\n+++ f\n@@ -0,0 +1,1 @@\n+x\n");
        assert_eq!(
            unified_diff("x", "y", "f", "f"),
            "--- f\n+++ f\n@@ -1,1 +1,1 @@\n-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff("same\n", "same\n", "f", "f"), "");
    }

    #[test]
    fn distant_changes_make_separate_hunks() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new: String = (0..20)
            .map(|i| match i {
                2 => "two\n".to_owned(),
                17 => "seventeen\n".to_owned(),
                _ => format!("{i}\n"),
            })
            .collect();
        let diff = unified_diff(&old, &new, "f", "f");
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+two\n 3\n 4\n 5\n"), "{diff}");
        assert!(diff.contains("@@ -15,6 +15,6 @@\n"), "{diff}");
    }

    /// What the docker_config fuzz target found: both are inputs the invariants must allow
    /// (text serde_json refuses is never edited; `{\n\n}` comes back as `{}`).
    #[test]
    fn fuzz_findings_hold() {
        for text in ["{\n\t\"auths\":l{},\n\t\"credsStass\"\n}\n", "{\n\n}", "", "{\"a\":1 }", "[]"] {
            check_edit_invariants(text, &["ghcr.io", "docker.io", "localhost:5000"]);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A JSON object in one of the layouts people and tools write: compact, tab- or
        /// space-indented, with or without a final newline; no credHelpers of its own.
        fn document() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,12}".prop_map(serde_json::Value::from),
            ];
            let value = leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                    proptest::collection::btree_map("\\PC{0,8}", inner, 0..3)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            });
            let object = proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9]{0,10}", value, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().filter(|(k, _)| k != "credHelpers").collect()));
            (object, 0usize..4, any::<bool>()).prop_map(|(object, layout, newline)| {
                use serde::Serialize;
                let mut text = match layout {
                    0 => serde_json::to_string(&object).unwrap(),
                    1 => serde_json::to_string_pretty(&object).unwrap(),
                    indent => {
                        let indent: &[u8] = if indent == 2 { b"\t" } else { b"    " };
                        let mut out = Vec::new();
                        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
                        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
                        object.serialize(&mut ser).unwrap();
                        String::from_utf8(out).unwrap()
                    }
                };
                if newline {
                    text.push('\n');
                }
                text
            })
        }

        fn registries() -> impl Strategy<Value = Vec<RegistryKey>> {
            proptest::collection::btree_set("[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4})?(:[1-9][0-9]{0,3})?", 1..4)
                .prop_map(|set| set.iter().map(|h| RegistryKey::parse(h).unwrap()).collect::<Vec<_>>())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn configure_then_unconfigure_restores_the_original_bytes(
                text in document(),
                registries in registries(),
                hub in any::<bool>(),
            ) {
                let mut registries = registries;
                if hub {
                    registries.push(RegistryKey::parse("docker.io").unwrap());
                }
                let keys = entry_keys(&registries, FileKind::Docker);
                let configured = configure_text(&text, &keys, false).unwrap();
                prop_assert!(configured.changed);
                let json: serde_json::Value = serde_json::from_str(&configured.text).expect("configured text is JSON");
                for key in &keys {
                    prop_assert_eq!(json["credHelpers"][key].as_str(), Some(HELPER));
                }
                // Configuring again changes nothing.
                let again = configure_text(&configured.text, &keys, false).unwrap();
                prop_assert!(!again.changed);
                prop_assert_eq!(&again.text, &configured.text);
                let restored = unconfigure_text(&configured.text, &registries).unwrap();
                prop_assert_eq!(&restored.text, &text, "configured: {:?}", configured.text);
            }

            #[test]
            fn editing_never_panics_on_arbitrary_text(
                text in "\\PC{0,120}",
                registries in registries(),
                force in any::<bool>(),
            ) {
                let keys = entry_keys(&registries, FileKind::Docker);
                let edited = configure_text(&text, &keys, force);
                // `run_edit` lets only what serde_json accepts reach the editor, whose scanner is
                // lenient inside values (`{"a":tru}`); for such input an edit must be JSON again.
                let valid = text.trim().is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                if let (true, Ok(edited)) = (valid, edited) {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(&edited.text).is_ok(), "edit is not JSON: {:?}", edited.text);
                }
                if let Ok(edited) = unconfigure_text(&text, &registries) {
                    prop_assert!(edited.changed || edited.text == text || text.trim().is_empty());
                }
            }

            #[test]
            fn editing_never_panics_on_json_like_text(
                text in "[\\{\\}\\[\\]\":, \\n\\ta-z0-9\\\\]{0,80}",
                registries in registries(),
            ) {
                let keys = entry_keys(&registries, FileKind::Docker);
                let _ = configure_text(&text, &keys, true);
                let _ = unconfigure_text(&text, &registries);
                let _ = Doc::parse(&text);
            }
        }
    }
}

//! `status`: which store is in use and why, the config, each registry's mode and state.
//! Never prints a secret: tokens are described by their claims, stored credentials by username.

use std::time::Duration;

use latchkey_protocol::server_url::RegistryKey;
use serde::Serialize;

use crate::config::{Config, Mode};
use crate::duration::human_secs;
use crate::registry::source_for;
use crate::store::LazyStore;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exits 1 when it finds a problem (each is a line under \"problems:\", and in \"problems\" with --json)."
)]
pub struct StatusArgs {
    /// Machine-readable output (JSON on stdout)
    #[arg(long)]
    pub json: bool,
    /// Also ask each registry's /v2/ endpoint (anonymously, 5 s at most each) and show its answer
    #[arg(long)]
    pub check: bool,
}

/// How long `--check` waits for each registry.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
pub struct Report {
    pub version: &'static str,
    pub config_file: String,
    pub config_exists: bool,
    pub store: StoreReport,
    pub docker: Option<crate::docker_config::DockerReport>,
    pub registries: Vec<RegistryReport>,
    /// `--check`: each registry's anonymous `/v2/` answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckReport>>,
    /// What is wrong, each saying what to do; `status` exits 1 when there is any.
    pub problems: Vec<String>,
}

#[derive(Serialize)]
pub struct CheckReport {
    pub registry: String,
    pub url: String,
    /// The HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `WWW-Authenticate` challenge, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct StoreReport {
    /// `keyring` or `file`, or `error` when the configured store cannot be opened.
    pub kind: String,
    pub description: String,
    /// Why this store: configured, or the keyring's failure that made `auto` fall back.
    pub why: String,
}

#[derive(Serialize)]
pub struct RegistryReport {
    pub registry: String,
    pub mode: &'static str,
    /// Stored mode: the username stored, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Stored mode: the server URL as it was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// Stored mode: the store it is in, `keyring` or `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenReport>,
    /// Device mode: whether the login session behind the device secret is alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// A problem worth a look (unreadable store, no cached token, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A static bearer's token, by its claims.
pub use crate::source::TokenStatus as TokenReport;

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let config = Config::load_default()?;
    let mut report = collect(config)?;
    if args.check {
        let checks = check_registries(&report);
        for c in &checks {
            if let Some(e) = &c.error {
                report.problems.push(format!("{}: {e}", c.registry));
            }
        }
        report.checks = Some(checks);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    match report.problems.len() {
        0 => Ok(()),
        1 => anyhow::bail!("status found a problem (see above)"),
        n => anyhow::bail!("status found {n} problems (see above)"),
    }
}

pub fn collect(config: Config) -> anyhow::Result<Report> {
    let mut store = LazyStore::new(config.store).map_err(anyhow::Error::msg)?;

    let mut keyring_only = false;
    let (store_report, stored) = match store.open() {
        Ok(opened) => {
            let why = match (&opened.fallback_reason, config.store) {
                (Some(reason), _) => format!("auto: the OS keyring is not usable ({reason})"),
                (None, latchkey_store::StoreKind::Auto) => "auto: the OS keyring answered".to_owned(),
                (None, kind) => format!("configured: store = {kind:?}").to_lowercase(),
            };
            let kind = format!("{:?}", opened.kind).to_lowercase();
            // `store = "keyring"` alone never reads the file store: credentials left there
            // (saved while the keyring was unreachable) are invisible, so say so.
            keyring_only = opened.kind == latchkey_store::StoreKind::Keyring && opened.store.backends().is_none();
            // Each store's entries, labelled with the store: both for `auto` with the keyring.
            let stored: Vec<(String, Result<_, String>)> = match opened.store.backends() {
                Some(backends) => backends
                    .into_iter()
                    .map(|b| (format!("{:?}", b.kind).to_lowercase(), b.entries.map_err(|e| e.0)))
                    .collect(),
                None => vec![(kind.clone(), opened.store.list().map_err(|e| e.0))],
            };
            (StoreReport { kind, description: opened.store.describe(), why }, stored)
        }
        Err(e) => (
            StoreReport { kind: "error".into(), description: e.to_string(), why: String::new() },
            vec![(String::new(), Err(e.to_string()))],
        ),
    };

    // Each configured registry as its source sees it; `None` is the stored source, whose
    // state is the store's listing below.
    let mut configured = Vec::new();
    for key in config.registries.keys() {
        let source = source_for(&config, key).map_err(|e| anyhow::anyhow!("{e}"))?;
        configured.push((key, source.mode(), source.status(&mut store)));
    }

    let mut registries = Vec::new();
    // The first store listed is the one `get` asks first (the keyring).
    let first = stored.first().and_then(|(_, listed)| listed.as_ref().ok());
    for (i, (store_kind, listed)) in stored.iter().enumerate() {
        let store_name = (!store_kind.is_empty()).then(|| store_kind.clone());
        match listed {
            Ok(list) => {
                for (key, credential) in list {
                    if configured.iter().any(|(k, _, status)| *k == key && status.is_some()) {
                        continue;
                    }
                    let shadowed = i > 0 && first.is_some_and(|f| f.iter().any(|(k, _)| k == key));
                    registries.push(RegistryReport {
                        registry: key.to_string(),
                        mode: Mode::Stored.as_str(),
                        username: Some(credential.username.clone()),
                        server_url: Some(credential.server_url.clone()),
                        store: store_name.clone(),
                        source: None,
                        token: None,
                        session: None,
                        note: shadowed.then(|| {
                            format!(
                                "not used while the {} answers: its entry there wins; erase removes both",
                                stored[0].0
                            )
                        }),
                    });
                }
            }
            Err(e) => registries.push(RegistryReport {
                registry: "*".into(),
                mode: Mode::Stored.as_str(),
                username: None,
                server_url: None,
                store: store_name,
                source: None,
                token: None,
                session: None,
                note: Some(format!("cannot list stored credentials: {e}")),
            }),
        }
    }
    for (key, mode, status) in configured {
        let report = match status {
            Some(s) => RegistryReport {
                registry: key.to_string(),
                mode: mode.as_str(),
                username: s.username,
                server_url: None,
                store: None,
                source: s.source,
                token: s.token,
                session: s.session,
                note: s.note,
            },
            None if registries.iter().any(|r| r.registry == key.as_str()) => continue,
            None => RegistryReport {
                registry: key.to_string(),
                mode: mode.as_str(),
                username: None,
                server_url: None,
                store: None,
                source: None,
                token: None,
                session: None,
                note: Some("nothing stored yet: run docker login".into()),
            },
        };
        registries.push(report);
    }
    registries.sort_by(|a, b| a.registry.cmp(&b.registry));
    let docker = crate::docker_config::report();
    let mut problems = Vec::new();
    if store_report.kind == "error" {
        problems.push(format!("the credential store cannot be opened: {}", store_report.description));
    }
    problems.extend(identity_file_problems(&config));
    if keyring_only {
        problems.extend(unused_file_store_problem(&crate::paths::data_dir()));
    }
    if let Some(d) = &docker {
        problems.extend(docker_problems(d));
    }
    Ok(Report {
        version: crate::VERSION_LINE,
        config_file: config.path.display().to_string(),
        config_exists: config.exists,
        store: store_report,
        docker,
        registries,
        checks: None,
        problems,
    })
}

/// Files a static bearer's identity reads that cannot be read now (every `get` would fail).
/// Credentials in the file store while only the keyring is used: invisible to every client.
fn unused_file_store_problem(data_dir: &std::path::Path) -> Option<String> {
    let file = latchkey_store::file::FileStore::new(data_dir.to_path_buf());
    if !file.path().exists() {
        return None;
    }
    match latchkey_store::Store::list(&file) {
        Ok(entries) if entries.is_empty() => None,
        Ok(entries) => Some(format!(
            "{} credential(s) in the file store {} are not used while store = \"keyring\" ({}): set store = \"auto\" to use both stores, or see them with `LATCHKEY_STORE=file docker-credential-latchkey list` and erase them",
            entries.len(),
            file.path().display(),
            entries.iter().map(|(_, c)| c.server_url.as_str()).collect::<Vec<_>>().join(", ")
        )),
        Err(e) => Some(format!("the file store {} cannot be read: {e}", file.path().display())),
    }
}

fn identity_file_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, registry) in &config.registries {
        let Some(identity) = &registry.identity else { continue };
        for (what, path) in identity.files() {
            if let Err(e) = std::fs::File::open(path) {
                problems.push(format!(
                    "{key}: {what} {} cannot be read ({e}); fix {what} in [registries.\"{key}\".identity] of {}",
                    path.display(),
                    config.path.display()
                ));
            }
        }
    }
    problems
}

/// docker's config.json names helpers docker cannot run.
fn docker_problems(d: &crate::docker_config::DockerReport) -> Vec<String> {
    use crate::docker_config::{HELPER, HELPER_EXE, on_path};
    let mut problems = Vec::new();
    if let Some(error) = &d.error {
        problems.push(format!("docker's config {} cannot be read: {error}", d.path));
        return problems;
    }
    let mut ours = d.latchkey_registries.clone();
    if d.creds_store.as_deref() == Some(HELPER) {
        ours.push("credsStore".into());
    }
    if !ours.is_empty() && !on_path(HELPER_EXE) {
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.display().to_string()))
            .unwrap_or_else(|| "its directory".into());
        problems.push(format!(
            "{HELPER_EXE} is not on PATH, so docker cannot run it for {}: add {here} to PATH (or install it with ./install.sh)",
            ours.join(", ")
        ));
    }
    let mut named: Vec<(String, &str)> =
        d.other_helpers.iter().map(|(k, h)| (format!("credHelpers[{k:?}]"), h.as_str())).collect();
    if let Some(store) = d.creds_store.as_deref().filter(|s| *s != HELPER) {
        named.push(("credsStore".into(), store));
    }
    for (entry, helper) in named {
        if helper.is_empty() || helper.contains('/') || on_path(&format!("docker-credential-{helper}")) {
            continue;
        }
        let mut line =
            format!("{entry} = {helper:?} in {}: docker runs docker-credential-{helper}, which is not on PATH", d.path);
        if looks_like_latchkey(helper) {
            let registry = entry.strip_prefix("credHelpers[").and_then(|r| r.strip_suffix(']'));
            line.push_str(&format!("; the value must be {HELPER:?}"));
            if let Some(r) = registry.and_then(|r| serde_json::from_str::<String>(r).ok()) {
                line.push_str(&format!(" (run: {HELPER_EXE} configure-docker {r})"));
            }
        }
        problems.push(line);
    }
    problems
}

/// `docker-credential-latchkey`, `latchky`, `Latchkey`, ...: meant to be latchkey.
fn looks_like_latchkey(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    let v = v.strip_prefix("docker-credential-").unwrap_or(&v);
    v.contains(crate::docker_config::HELPER) || edit_distance(v, crate::docker_config::HELPER) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// `--check`: each configured or docker-routed registry's anonymous `/v2/` answer.
fn check_registries(report: &Report) -> Vec<CheckReport> {
    let mut keys: Vec<RegistryKey> =
        report.registries.iter().filter_map(|r| RegistryKey::parse_host(&r.registry).ok()).collect();
    if let Some(d) = &report.docker {
        keys.extend(d.latchkey_registries.iter().filter_map(|r| RegistryKey::parse_host(r).ok()));
    }
    keys.sort();
    keys.dedup();
    let client = latchkey_http::Client::new("registry", CHECK_TIMEOUT);
    keys.into_iter()
        .map(|key| {
            let host = key.api_host();
            let scheme = if latchkey_http::is_loopback_host(host) { "http" } else { "https" };
            let url = format!("{scheme}://{host}/v2/");
            let mut check =
                CheckReport { registry: key.to_string(), url: url.clone(), status: None, challenge: None, error: None };
            let answer = client.as_ref().map_err(Clone::clone).and_then(|c| c.send(c.get(&url), &url));
            match answer {
                Ok(r) => {
                    check.status = Some(r.status);
                    check.challenge = r
                        .headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.chars().take(300).collect());
                    if !matches!(r.status, 200 | 401) {
                        check.error = Some(format!(
                            "{url} answered {} (a registry answers 200 or 401): is {host} a registry?",
                            r.status
                        ));
                    }
                }
                Err(e) => {
                    let hint = if scheme == "https" && e.contains("InvalidContentType") {
                        "; it answered plain HTTP: clients need it listed as an insecure registry"
                    } else {
                        ""
                    };
                    check.error = Some(format!("{e}{hint}"));
                }
            }
            check
        })
        .collect()
}

fn print_problems(r: &Report) {
    if let Some(checks) = &r.checks {
        println!("checks:");
        for c in checks {
            let answer = match (c.status, &c.challenge) {
                (Some(s), Some(ch)) => format!("{s}, {ch}"),
                (Some(s), None) => s.to_string(),
                (None, _) => "no answer (see problems)".to_owned(),
            };
            println!("  {:<28} GET {}: {answer}", c.registry, c.url);
        }
    }
    if r.problems.is_empty() {
        println!("problems: none found");
    } else {
        println!("problems:");
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}

fn print_human(r: &Report) {
    print_registries(r);
    print_problems(r);
}

fn print_registries(r: &Report) {
    println!("{}", r.version);
    println!("config:  {}{}", r.config_file, if r.config_exists { "" } else { " (not present: defaults)" });
    println!("store:   {} ({})", r.store.description, r.store.why);
    match &r.docker {
        Some(d) => println!("docker:  {d}"),
        None => println!("docker:  no docker config found"),
    }
    if r.registries.is_empty() {
        println!("registries: none stored or configured");
        return;
    }
    println!("registries:");
    for reg in &r.registries {
        let mut line = format!("  {:<28} {:<14}", reg.registry, reg.mode);
        if let Some(u) = &reg.username {
            line.push_str(&format!(" user {u}"));
        }
        if let Some(s) = &reg.store {
            line.push_str(&format!(" in {s} store"));
        }
        if let Some(s) = &reg.source {
            line.push_str(&format!(" from {s}"));
        }
        if let Some(t) = &reg.token {
            line.push_str(&format!(
                "; token sub={} aud={} {}",
                t.subject.as_deref().unwrap_or("-"),
                t.audience.join(","),
                if t.expires_in_secs > 0 {
                    format!("expires in {}", human_secs(t.expires_in_secs))
                } else {
                    format!("expired {} ago", human_secs(-t.expires_in_secs))
                }
            ));
        }
        if let Some(s) = &reg.session {
            line.push_str(&format!("; session {s}"));
        }
        if let Some(n) = &reg.note {
            line.push_str(&format!(" ({n})"));
        }
        println!("{line}");
    }
}

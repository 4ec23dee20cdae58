//! `status`: which store is in use and why, the config, each registry's mode and state.
//! Never prints a secret: tokens are described by their claims, stored credentials by username.

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::duration::human_secs;
use crate::registry::source_for;
use crate::store::LazyStore;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Machine-readable output (JSON on stdout)
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Report {
    pub version: &'static str,
    pub config_file: String,
    pub config_exists: bool,
    pub store: StoreReport,
    pub docker: Option<crate::docker_config::DockerReport>,
    pub registries: Vec<RegistryReport>,
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
    let report = collect(config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

pub fn collect(config: Config) -> anyhow::Result<Report> {
    let mut store = LazyStore::new(config.store).map_err(anyhow::Error::msg)?;

    let (store_report, stored) = match store.open() {
        Ok(opened) => {
            let why = match (&opened.fallback_reason, config.store) {
                (Some(reason), _) => format!("auto: the OS keyring is not usable ({reason})"),
                (None, latchkey_store::StoreKind::Auto) => "auto: the OS keyring answered".to_owned(),
                (None, kind) => format!("configured: store = {kind:?}").to_lowercase(),
            };
            let kind = format!("{:?}", opened.kind).to_lowercase();
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
    Ok(Report {
        version: crate::VERSION_LINE,
        config_file: config.path.display().to_string(),
        config_exists: config.exists,
        store: store_report,
        docker: crate::docker_config::report(),
        registries,
    })
}

fn print_human(r: &Report) {
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

//! `status`: which store is in use and why, the config, each registry's mode and state.
//! Never prints a secret: tokens are described by their claims, stored credentials by username.

use std::time::SystemTime;

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::duration::human_secs;
use crate::helper::Latchkey;
use crate::token_cache::unix;

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

#[derive(Serialize)]
pub struct TokenReport {
    pub subject: Option<String>,
    pub audience: Vec<String>,
    pub expires_at: u64,
    pub expires_in_secs: i64,
    pub cached: bool,
}

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
    let config_file = config.path.display().to_string();
    let config_exists = config.exists;
    let configured: Vec<_> = config.registries.iter().map(|(k, r)| (k.clone(), r.mode)).collect();
    let store_kind = config.store;
    let mut helper = Latchkey::new(config).map_err(anyhow::Error::msg)?;

    let (store, stored) = match helper.store() {
        Ok(opened) => {
            let why = match (&opened.fallback_reason, store_kind) {
                (Some(reason), _) => format!("auto: the OS keyring is not usable ({reason})"),
                (None, latchkey_store::StoreKind::Auto) => "auto: the OS keyring answered".to_owned(),
                (None, kind) => format!("configured: store = {kind:?}").to_lowercase(),
            };
            let kind = format!("{:?}", opened.kind).to_lowercase();
            let stored = opened.store.list().map_err(|e| e.0);
            (StoreReport { kind, description: opened.store.describe(), why }, stored)
        }
        Err(e) => {
            (StoreReport { kind: "error".into(), description: e.to_string(), why: String::new() }, Err(e.to_string()))
        }
    };

    let mut registries = Vec::new();
    let now = unix(SystemTime::now()) as i64;
    match &stored {
        Ok(list) => {
            for (key, credential) in list {
                if configured.iter().any(|(k, m)| k == key && *m != Mode::Stored) {
                    continue;
                }
                registries.push(RegistryReport {
                    registry: key.to_string(),
                    mode: Mode::Stored.as_str(),
                    username: Some(credential.username.clone()),
                    source: None,
                    token: None,
                    session: None,
                    note: None,
                });
            }
        }
        Err(e) => registries.push(RegistryReport {
            registry: "*".into(),
            mode: Mode::Stored.as_str(),
            username: None,
            source: None,
            token: None,
            session: None,
            note: Some(format!("cannot list stored credentials: {e}")),
        }),
    }
    for (key, mode) in &configured {
        match mode {
            Mode::Stored => {
                if !registries.iter().any(|r| r.registry == key.as_str()) {
                    registries.push(RegistryReport {
                        registry: key.to_string(),
                        mode: mode.as_str(),
                        username: None,
                        source: None,
                        token: None,
                        session: None,
                        note: Some("nothing stored yet: run docker login".into()),
                    });
                }
            }
            Mode::StaticBearer => {
                let source = helper.static_bearer(key).map_err(|e| anyhow::anyhow!("{e}"))?;
                let token = source.cached().map(|t| TokenReport {
                    subject: t.subject.clone(),
                    audience: t.audience.clone(),
                    expires_at: t.expires_at,
                    expires_in_secs: t.expires_at as i64 - now,
                    cached: source.identity.refreshable(),
                });
                let note = token.is_none().then(|| {
                    if source.identity.refreshable() {
                        "no cached token; the next get obtains one".to_owned()
                    } else {
                        "no usable token at the source right now (run `token` for the reason)".to_owned()
                    }
                });
                registries.push(RegistryReport {
                    registry: key.to_string(),
                    mode: mode.as_str(),
                    username: None,
                    source: Some(source.identity.describe()),
                    token,
                    session: None,
                    note,
                });
            }
            Mode::Device => {
                let config = helper.device_config(key).map_err(|e| anyhow::anyhow!("{e}"))?;
                let device = match helper.store() {
                    Ok(opened) => crate::source::device::DeviceSource {
                        key,
                        config: &config,
                        store: opened.store.as_ref(),
                        cache_dir: crate::paths::cache_dir(),
                    }
                    .status(),
                    Err(e) => crate::source::device::DeviceStatus {
                        account: None,
                        session: "unknown".into(),
                        note: Some(e.to_string()),
                    },
                };
                registries.push(RegistryReport {
                    registry: key.to_string(),
                    mode: mode.as_str(),
                    username: device.account,
                    source: Some("device login".into()),
                    token: None,
                    session: Some(device.session),
                    note: device.note,
                });
            }
        }
    }
    registries.sort_by(|a, b| a.registry.cmp(&b.registry));
    Ok(Report {
        version: crate::VERSION_LINE,
        config_file,
        config_exists,
        store,
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

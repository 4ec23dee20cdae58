//! Command-line entry: protocol verbs go straight to [`latchkey_protocol::helper::serve`] (the hot
//! path: no clap, no extra work); everything else is a clap subcommand for humans.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::helper::Latchkey;
use crate::registry;
use crate::store::LazyStore;
use latchkey_protocol::helper as protocol;

#[derive(Parser, Debug)]
#[command(
    name = "docker-credential-latchkey",
    version,
    about = "A Docker credential helper for container registries",
    long_about = "A Docker credential helper for container registries.\n\n\
        docker, skopeo, podman and rules_oci call it with one verb (get, store, erase, list, version) \
        and JSON on stdin/stdout; the other subcommands are for people and scripts.",
    disable_help_subcommand = true,
    after_help = "Config file: $LATCHKEY_CONFIG or ~/.config/latchkey/config.toml. Store: LATCHKEY_STORE=auto|keyring|file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Protocol: print the credentials for the server URL on stdin as JSON
    Get,
    /// Protocol: store {"ServerURL","Username","Secret"} read from stdin
    Store,
    /// Protocol: erase the credentials for the server URL on stdin
    Erase,
    /// Protocol: print {server URL: username} of everything stored
    List,
    /// Protocol: print the version
    Version,
    /// Point docker's config.json credHelpers at latchkey for REGISTRY...
    ConfigureDocker(crate::docker_config::ConfigureArgs),
    /// Remove latchkey's credHelpers entries for REGISTRY... from docker's config.json
    UnconfigureDocker(crate::docker_config::UnconfigureArgs),
    /// Show the store in use and why, the config, and each registry's mode
    Status(crate::status::StatusArgs),
    /// Print the bearer token for a static-bearer REGISTRY (for scripts)
    Token {
        /// Registry host as configured (ghcr.io, localhost:5000, https://host)
        registry: String,
    },
    /// Print `Authorization: Bearer <token>` for a static-bearer REGISTRY (curl -H @-)
    Header {
        /// Registry host as configured
        registry: String,
    },
    /// Log in to a device-mode REGISTRY in the browser (RFC 8628) and store its device secret
    Login {
        /// Registry host as configured
        registry: String,
    },
    /// Revoke (where configured) and erase the device secret of REGISTRY
    Logout {
        /// Registry host as configured
        registry: String,
    },
    /// Pull an image into an OCI image layout, with credentials resolved from docker's config
    Pull(crate::resolver_command::PullArgs),
    /// Print (or --write) a containerd hosts.toml carrying a static-bearer registry's header
    HostsToml(crate::resolver_command::HostsTomlArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let program =
        args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_else(|| "docker-credential-latchkey".into());
    let first = args.get(1).and_then(|a| a.to_str());
    match first {
        Some("-v" | "--version") if args.len() == 2 => {
            println!("{}", crate::VERSION_LINE);
            ExitCode::SUCCESS
        }
        // Protocol verbs, unknown verbs and wrong argument counts answer exactly as
        // docker-credential-helpers does: on stdout, exit 1 on error.
        None => serve_protocol(&program, &[]),
        Some(verb) if protocol::VERBS.contains(&verb) || (!verb.starts_with('-') && !is_subcommand(verb)) => {
            let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
            serve_protocol(&program, &rest)
        }
        _ => run_subcommand(Cli::parse_from(args)),
    }
}

fn is_subcommand(name: &str) -> bool {
    command().get_subcommands().any(|c| c.get_name() == name)
}

fn serve_protocol(program: &str, args: &[String]) -> ExitCode {
    // Bazel's credential-helper protocol shares `get`: its stdin is JSON, docker's never is.
    let mut input = Vec::new();
    if args == ["get"] {
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin().lock(), 1 << 20), &mut input);
        if crate::bazel::is_bazel_request(&input) {
            return crate::bazel::serve(&input);
        }
    }
    let mut stdout = std::io::stdout().lock();
    let mut stdin = std::io::Read::chain(&input[..], std::io::stdin().lock());
    // A bad config must not be a silent anonymous pull: it is an error on stdout (exit 1)
    // for get/store/erase/list; `version` and usage answer regardless.
    let helper = Config::load_default().map_err(|e| e.0).and_then(Latchkey::new);
    let code = match helper {
        Ok(mut helper) => protocol::serve(program, args, crate::VERSION_LINE, &mut stdin, &mut stdout, &mut helper),
        Err(message) => {
            let mut broken = BrokenConfig(message);
            protocol::serve(program, args, crate::VERSION_LINE, &mut stdin, &mut stdout, &mut broken)
        }
    };
    let _ = stdout.flush();
    ExitCode::from(code as u8)
}

/// Answers every verb with the config error, so `version` and usage still work.
struct BrokenConfig(String);

impl protocol::Helper for BrokenConfig {
    fn get(&mut self, _: &str) -> Result<(String, latchkey_protocol::secret::Secret<String>), protocol::HelperError> {
        Err(protocol::HelperError::Failed(self.0.clone()))
    }
    fn store(&mut self, _: protocol::Credentials) -> Result<(), protocol::HelperError> {
        Err(protocol::HelperError::Failed(self.0.clone()))
    }
    fn erase(&mut self, _: &str) -> Result<(), protocol::HelperError> {
        Err(protocol::HelperError::Failed(self.0.clone()))
    }
    fn list(&mut self) -> Result<std::collections::BTreeMap<String, String>, protocol::HelperError> {
        Err(protocol::HelperError::Failed(self.0.clone()))
    }
}

fn print_token(registry: &str, prefix: &str) -> anyhow::Result<()> {
    let config = Config::load_default()?;
    // The token never comes from the store, but a bad LATCHKEY_STORE is an error here as elsewhere.
    LazyStore::new(config.store).map_err(anyhow::Error::msg)?;
    let key = registry::key(registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = registry::static_bearer(&config, &key).and_then(|s| s.token().map_err(protocol::HelperError::Failed));
    let token = token.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{prefix}{}", token.secret().expose())?;
    Ok(())
}

fn device_command(registry: &str, login: bool) -> anyhow::Result<()> {
    let config = Config::load_default()?;
    let mut store = LazyStore::new(config.store).map_err(anyhow::Error::msg)?;
    let key = registry::key(registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let source = registry::device(&config, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opened = store.open().map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = if login { source.login(opened) } else { source.logout(opened.store.as_ref(), true) };
    result.map_err(anyhow::Error::msg)
}

fn run_subcommand(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Get | Command::Store | Command::Erase | Command::List | Command::Version => {
            unreachable!("protocol verbs are served before clap runs")
        }
        Command::ConfigureDocker(args) => crate::docker_config::configure(&args),
        Command::UnconfigureDocker(args) => crate::docker_config::unconfigure(&args),
        Command::Status(args) => crate::status::run(&args),
        Command::Token { registry } => print_token(&registry, ""),
        Command::Header { registry } => print_token(&registry, "Authorization: Bearer "),
        Command::Login { registry } => device_command(&registry, true),
        Command::Logout { registry } => device_command(&registry, false),
        Command::Pull(args) => crate::resolver_command::pull(&args),
        Command::HostsToml(args) => crate::resolver_command::hosts_toml(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "docker-credential-latchkey", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(command()).render(&mut std::io::stdout()).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

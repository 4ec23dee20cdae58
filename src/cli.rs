//! Command-line entry: protocol verbs go straight to [`latchkey_protocol::helper::serve`] (the hot
//! path: no clap, no extra work); everything else is a clap subcommand for humans.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
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
    ///
    /// Reads a server URL on stdin (ghcr.io, https://ghcr.io/v2/, localhost:5000) and prints
    /// {"ServerURL","Username","Secret"} on stdout, or an error on stdout with exit 1
    /// ("credentials not found in native keychain" when nothing is stored or configured).
    ///
    /// Example: echo ghcr.io | docker-credential-latchkey get
    #[command(verbatim_doc_comment)]
    Get,
    /// Protocol: store {"ServerURL","Username","Secret"} read from stdin
    ///
    /// Reads one JSON object {"ServerURL","Username","Secret"} on stdin and stores it
    /// (what `docker login` does through the helper). Prints nothing on success.
    ///
    /// Example: echo '{"ServerURL":"ghcr.io","Username":"me","Secret":"..."}' | docker-credential-latchkey store
    #[command(verbatim_doc_comment)]
    Store,
    /// Protocol: erase the credentials for the server URL on stdin
    ///
    /// Reads a server URL on stdin and erases what is stored for it (what `docker logout`
    /// does). Erasing nothing succeeds.
    ///
    /// Example: echo ghcr.io | docker-credential-latchkey erase
    #[command(verbatim_doc_comment)]
    Erase,
    /// Protocol: print {server URL: username} of everything stored
    ///
    /// Prints a JSON object {server URL: username} of everything stored; reads nothing.
    ///
    /// Example: docker-credential-latchkey list
    #[command(verbatim_doc_comment)]
    List,
    /// Protocol: print the version
    ///
    /// Prints the version line (the same as -V and --version).
    #[command(verbatim_doc_comment)]
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
    let second = args.get(2).and_then(|a| a.to_str());
    // Programs (docker, skopeo, ...) give the verbs a pipe on stdin; a person types them at a
    // terminal, and gets help where a program gets the protocol's terse answers.
    let person = std::io::stdin().is_terminal();
    match first {
        Some("-v" | "-V" | "--version") if args.len() == 2 => {
            println!("{}", crate::VERSION_LINE);
            ExitCode::SUCCESS
        }
        // `help`, `help VERB`, `VERB --help`, `VERB -h`: help on stdout, exit 0.
        Some("help") if args.len() <= 3 => print_help(second),
        Some(verb) if protocol::VERBS.contains(&verb) && args.len() == 3 && matches!(second, Some("--help" | "-h")) => {
            print_help(Some(verb))
        }
        // A person with no verb: the help, not just the protocol's usage line.
        None if person => {
            let _ = command().print_help();
            ExitCode::FAILURE
        }
        // Protocol verbs, unknown verbs and wrong argument counts answer exactly as
        // docker-credential-helpers does: on stdout, exit 1 on error.
        None => serve_protocol(&program, &[]),
        Some(verb) if protocol::VERBS.contains(&verb) => {
            if person
                && args.len() == 2
                && let Some(hint) = stdin_hint(verb)
            {
                eprintln!("{hint}");
            }
            let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
            serve_protocol(&program, &rest)
        }
        // A mistyped subcommand from a person: clap's error, with its suggestion.
        Some(verb) if !verb.starts_with('-') && !is_subcommand(verb) && !person => {
            let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
            serve_protocol(&program, &rest)
        }
        _ => run_subcommand(Cli::parse_from(args)),
    }
}

/// What a protocol verb waits for on stdin, said before it waits on a terminal.
pub fn stdin_hint(verb: &str) -> Option<String> {
    let what = match verb {
        "get" | "erase" => format!("a server URL from stdin (e.g. `echo ghcr.io | docker-credential-latchkey {verb}`)"),
        "store" => "{\"ServerURL\",\"Username\",\"Secret\"} JSON from stdin (e.g. `echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"me\",\"Secret\":\"...\"}' | docker-credential-latchkey store`)".to_owned(),
        _ => return None,
    };
    Some(format!(
        "docker-credential-latchkey {verb}: reading {what}; Ctrl-D to end (docker calls this itself; `docker-credential-latchkey help` for the rest)"
    ))
}

/// `help [NAME]`: the whole help, or one subcommand's (protocol verbs included), on stdout.
fn print_help(name: Option<&str>) -> ExitCode {
    let mut cmd = command();
    cmd.build();
    let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let result = match name {
        None => cmd.print_long_help(),
        Some(name) => match cmd.find_subcommand_mut(name) {
            Some(sub) => sub.print_long_help(),
            None => {
                eprintln!("latchkey: no command {name:?}; the commands are {}", names.join(", "));
                return ExitCode::FAILURE;
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "docker-credential-latchkey", &mut out);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 escapes the hyphens of the program name one way where it works out
        // which subcommand is being completed (`docker__credential__latchkey__subcmd__pull`) and
        // another in the `case` that completes its options
        // (`docker__subcmd__credential__subcmd__latchkey__subcmd__pull`), so nothing past the
        // subcommand name ever completed. Use one spelling.
        let text = String::from_utf8_lossy(&out)
            .replace("docker__subcmd__credential__subcmd__latchkey", "docker__credential__latchkey");
        out = text.into_bytes();
    }
    out
}

fn is_subcommand(name: &str) -> bool {
    command().get_subcommands().any(|c| c.get_name() == name)
}

fn serve_protocol(program: &str, args: &[String]) -> ExitCode {
    // Bazel's credential-helper protocol shares `get`: its stdin is JSON, docker's never is.
    let mut input = Vec::new();
    let mut input_ended = false;
    if args == ["get"] {
        let limit = latchkey_protocol::helper::MAX_STDIN_BYTES;
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin().lock(), limit + 1), &mut input);
        // Within the bound, stdin has ended: reading it again would wait for a second EOF at a
        // terminal (a person types Ctrl-D once).
        input_ended = input.len() as u64 <= limit;
        if crate::bazel::is_bazel_request(&input) {
            return crate::bazel::serve(&input);
        }
    }
    let mut stdout = std::io::stdout().lock();
    let rest: Box<dyn std::io::Read> =
        if input_ended { Box::new(std::io::empty()) } else { Box::new(std::io::stdin().lock()) };
    let mut stdin = std::io::Read::chain(&input[..], rest);
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
        Command::Completions { shell } => std::io::stdout().write_all(&completions(shell)).map_err(anyhow::Error::from),
        Command::Man => crate::manpage::render(&mut std::io::stdout().lock()).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `pull` and `hosts-toml` subcommands: argument structs for clap and their logic. The
//! async runtime is built here, for these commands only; the protocol verbs never see it.
// The argument docs are clap help texts (`[default: ...]`, `<registry>`), not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use latchkey_resolver::client::{ClientOptions, PlainHttp, RegistryClient};
use latchkey_resolver::pull::{PlatformSelector, PlatformSpec, Progress, PullOptions, Quiet};
use latchkey_resolver::{Reference, Resolver};

#[derive(clap::Args, Debug)]
pub struct ConnectionArgs {
    /// Use plain HTTP for every registry. Without it, only registries named as this machine
    /// get plain HTTP: localhost, *.localhost, 127.0.0.0/8 and [::1] (by name, no DNS lookup:
    /// another name for 127.0.0.1 gets HTTPS); every other registry gets HTTPS
    #[arg(long, conflicts_with = "https_only")]
    pub plain_http: bool,
    /// Use HTTPS for every registry, those on this machine (localhost, *.localhost,
    /// 127.0.0.0/8, [::1]) too
    #[arg(long)]
    pub https_only: bool,
    /// Stop a credential helper that takes longer than this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub helper_timeout: u64,
}

impl ConnectionArgs {
    fn options(&self) -> ClientOptions {
        let plain_http = if self.plain_http {
            PlainHttp::Always
        } else if self.https_only {
            PlainHttp::Never
        } else {
            PlainHttp::Loopback
        };
        ClientOptions { plain_http, ..ClientOptions::default() }
    }

    fn resolver(&self) -> Result<Resolver> {
        Ok(Resolver::from_env()?.with_helper_timeout(Duration::from_secs(self.helper_timeout.max(1))))
    }
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Image reference: [REGISTRY/]REPOSITORY[:TAG][@DIGEST]
    pub image: String,
    /// OCI image layout directory to write (created if missing; an existing layout is added to)
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// Platform to pull from a multi-platform image [default: linux/<this machine>]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with = "all_platforms")]
    pub platform: Option<String>,
    /// Pull every platform of a multi-platform image, and the index itself
    #[arg(long)]
    pub all_platforms: bool,
    /// Blobs to fetch at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// Stop when, for this many seconds, no manifest or blob finished and less than 64 KiB
    /// arrived (a stalled or trickling server); 0 waits forever
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub stall_timeout: u64,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
    /// No progress bars, even on a terminal
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct HostsTomlArgs {
    /// Registry host (ghcr.io, localhost:5000, docker.io)
    pub registry: String,
    /// Write DIR/<registry>/hosts.toml (mode 0600) instead of printing it; DIR is containerd's
    /// config_path, usually /etc/containerd/certs.d
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `pull`.
pub fn pull(args: &PullArgs) -> Result<()> {
    let reference: Reference = args.image.parse()?;
    let platforms = match (&args.platform, args.all_platforms) {
        (_, true) => PlatformSelector::All,
        (Some(p), false) => PlatformSelector::One(p.parse::<PlatformSpec>().map_err(anyhow::Error::msg)?),
        (None, false) => PlatformSelector::Host,
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let resolver = Arc::new(args.connection.resolver()?);
    let client = RegistryClient::new(resolver, args.connection.options())?;
    let options = PullOptions {
        output: args.output.clone(),
        platforms,
        concurrency: args.concurrency,
        stall_timeout: (args.stall_timeout > 0).then(|| Duration::from_secs(args.stall_timeout)),
    };
    let progress: Arc<dyn Progress> =
        if !args.quiet && std::io::stderr().is_terminal() { Arc::new(bars::Bars::new()) } else { Arc::new(Quiet) };
    // One async thread drives the sockets; hashing and writing run on blocking threads, so
    // every core works. (tokio's multi-thread scheduler would link libm into the binary and
    // slow every `get` by loading it.)
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let summary = runtime.block_on(async {
        tokio::select! {
            result = latchkey_resolver::pull(&client, &reference, &options, progress.clone()) => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; nothing partial was left in {}", options.output.display())),
        }
    });
    // Downloads still running in blocking threads end when their channels close.
    runtime.shutdown_timeout(Duration::from_secs(5));
    // Clear the bars before anything else is printed.
    drop(progress);
    let summary = summary?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        let platforms: Vec<&str> = summary.manifests.iter().filter_map(|m| m.platform.as_deref()).collect();
        let mib = summary.bytes_fetched as f64 / (1024.0 * 1024.0);
        eprintln!(
            "pulled {} ({}{}) into {}: {} blobs, {} fetched ({mib:.1} MiB in {:.2} s), {} already present",
            summary.reference,
            summary.digest,
            if platforms.is_empty() { String::new() } else { format!("; {}", platforms.join(", ")) },
            summary.output.display(),
            summary.blobs,
            summary.blobs_fetched,
            summary.elapsed_secs,
            summary.blobs_present
        );
    }
    Ok(())
}

/// `hosts-toml`.
pub fn hosts_toml(args: &HostsTomlArgs) -> Result<()> {
    let resolver = args.connection.resolver()?;
    let resolved = resolver.resolve(&args.registry)?;
    let rendered = latchkey_resolver::hosts_toml::render(&resolved, &args.connection.options(), SystemTime::now())
        .map_err(anyhow::Error::msg)?;
    match &args.write {
        Some(dir) => {
            // The file's own "rewrite it" line names the directory it was written to, not the
            // usual one, so a timer copied from it rewrites this file.
            let mut rendered = rendered;
            let rewrite = rewrite_command(resolved.registry.as_str(), &args.connection, dir);
            rendered.text = rendered
                .text
                .lines()
                .map(|line| if is_rewrite_example(line) { format!("#   {rewrite}\n") } else { format!("{line}\n") })
                .collect();
            let path = latchkey_resolver::hosts_toml::write(&rendered, dir)
                .with_context(|| format!("cannot write hosts.toml under {}", dir.display()))?;
            let until = rendered
                .expires_at
                .map(|e| {
                    format!("; its token expires at {}, rewrite it before then: {rewrite}", latchkey_jwt::rfc3339(e))
                })
                .unwrap_or_default();
            eprintln!("wrote {}{until}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(rendered.text.as_bytes())?;
        }
    }
    Ok(())
}

/// The example line hosts_toml::render puts in a file whose token expires, which names the usual
/// directory; `--write DIR` replaces it with the command that rewrites the file actually written.
fn is_rewrite_example(line: &str) -> bool {
    line.starts_with("#   docker-credential-latchkey hosts-toml ") && line.ends_with(" --write /etc/containerd/certs.d")
}

/// The command that rewrites `DIR/<registry>/hosts.toml` as it was written: DIR absolute (a
/// timer runs elsewhere) and shell-quoted, with the same connection flags.
fn rewrite_command(registry: &str, connection: &ConnectionArgs, dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut command = format!("docker-credential-latchkey hosts-toml {}", shell_quote(registry));
    if connection.plain_http {
        command.push_str(" --plain-http");
    }
    if connection.https_only {
        command.push_str(" --https-only");
    }
    command.push_str(" --write ");
    command.push_str(&shell_quote(&dir.to_string_lossy()));
    command
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

mod bars {
    //! Progress bars on stderr, drawn by a small thread every 100 ms: one line per blob being
    //! fetched (at most 8) and a total. Hand-rolled rather than indicatif, which pulls libm
    //! into the binary and so slows every `get` (an extra shared library to load).

    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const WIDTH: u64 = 30;
    const MAX_LINES: usize = 8;

    #[derive(Default)]
    struct State {
        count: usize,
        total: u64,
        done: u64,
        /// digest -> (size, position), in start order.
        active: BTreeMap<u64, (String, u64, u64)>,
        next: u64,
    }

    pub struct Bars {
        state: Arc<Mutex<State>>,
        stop: Arc<AtomicBool>,
        drawer: Option<std::thread::JoinHandle<()>>,
    }

    impl Bars {
        pub fn new() -> Bars {
            let state = Arc::new(Mutex::new(State::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let (s, halt) = (state.clone(), stop.clone());
            let drawer = std::thread::spawn(move || {
                let started = Instant::now();
                let mut drawn = 0usize;
                loop {
                    let stopping = halt.load(Ordering::Relaxed);
                    drawn = draw(&s.lock().unwrap_or_else(|p| p.into_inner()), drawn, started, stopping);
                    if stopping {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            Bars { state, stop, drawer: Some(drawer) }
        }

        fn with(&self, f: impl FnOnce(&mut State)) {
            f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    fn bar(pos: u64, len: u64) -> String {
        let filled = (pos.min(len) * WIDTH).checked_div(len).unwrap_or(0).min(WIDTH);
        let mut s = "=".repeat(filled as usize);
        if filled < WIDTH {
            s.push('>');
            s.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
        }
        s
    }

    fn mib(bytes: u64) -> String {
        format!("{}.{} MiB", bytes >> 20, ((bytes & 0xFFFFF) * 10) >> 20)
    }

    /// Redraw in place (cursor up over the previous drawing); clear it all when `last`.
    fn draw(state: &State, previous: usize, started: Instant, last: bool) -> usize {
        let mut out = String::new();
        if previous > 0 {
            out.push_str(&format!("\x1b[{previous}A"));
        }
        let mut lines = 0;
        if !last {
            for (digest, size, pos) in state.active.values().take(MAX_LINES) {
                let short: String =
                    digest.split_once(':').map_or(digest.as_str(), |(_, h)| h).chars().take(12).collect();
                out.push_str(&format!("\x1b[2K{short:>12} [{}] {} / {}\n", bar(*pos, *size), mib(*pos), mib(*size)));
                lines += 1;
            }
            let ms = started.elapsed().as_millis().max(1) as u64;
            let rate = state.done.saturating_mul(1000) / ms;
            out.push_str(&format!(
                "\x1b[2K{:>12} [{}] {} / {}  {}/s  {} blobs\n",
                "total",
                bar(state.done, state.total),
                mib(state.done),
                mib(state.total),
                mib(rate),
                state.count
            ));
            lines += 1;
        }
        for _ in lines..previous {
            out.push_str("\x1b[2K\n");
        }
        if previous > lines {
            out.push_str(&format!("\x1b[{}A", previous - lines));
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
        lines
    }

    impl latchkey_resolver::pull::Progress for Bars {
        fn planned(&self, count: usize, bytes: u64) {
            self.with(|s| {
                s.count = count;
                s.total = bytes;
            });
        }
        fn blob_started(&self, digest: &str, size: u64) {
            self.with(|s| {
                let n = s.next;
                s.next += 1;
                s.active.insert(n, (digest.to_owned(), size, 0));
            });
        }
        fn blob_advanced(&self, digest: &str, bytes: u64) {
            self.with(|s| {
                s.done += bytes;
                if let Some(entry) = s.active.values_mut().find(|(d, _, _)| d == digest) {
                    entry.2 += bytes;
                }
            });
        }
        fn blob_restarted(&self, digest: &str, offset: u64) {
            self.with(|s| {
                if let Some(entry) = s.active.values_mut().find(|(d, _, _)| d == digest) {
                    let lost = entry.2.saturating_sub(offset);
                    entry.2 = offset;
                    s.done = s.done.saturating_sub(lost);
                }
            });
        }
        fn blob_finished(&self, digest: &str, size: u64, fetched: bool) {
            self.with(|s| {
                s.active.retain(|_, (d, _, _)| d != digest);
                if !fetched {
                    s.done += size;
                }
            });
        }
    }

    impl Drop for Bars {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.drawer.take() {
                let _ = t.join();
            }
        }
    }
}

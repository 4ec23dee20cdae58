//! The `pull` and `hosts-toml` subcommands: argument structs for clap and their logic. The
//! async runtime is built here, for these commands only; the protocol verbs never see it.
// The argument docs are clap help texts (`[default: ...]`, `<registry>`), not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::client::{ClientOptions, PlainHttp, RegistryClient};
use super::pull::{PlatformSelector, PlatformSpec, Progress, PullOptions, Quiet};
use super::{Reference, Resolver};

#[derive(clap::Args, Debug)]
pub struct ConnectionArgs {
    /// Use plain HTTP for every registry (default: HTTPS, plain HTTP only for localhost/127.0.0.1/[::1])
    #[arg(long, conflicts_with = "https_only")]
    pub plain_http: bool,
    /// Use HTTPS even for loopback registries
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
    let options = PullOptions { output: args.output.clone(), platforms, concurrency: args.concurrency };
    let progress: Arc<dyn Progress> =
        if !args.quiet && std::io::stderr().is_terminal() { Arc::new(bars::Bars::new()) } else { Arc::new(Quiet) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = runtime.block_on(async {
        tokio::select! {
            result = super::pull(&client, &reference, &options, progress.clone()) => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; nothing partial was left in {}", options.output.display())),
        }
    });
    // Downloads still running in blocking threads end when their channels close.
    runtime.shutdown_timeout(Duration::from_secs(5));
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
    let rendered = super::hosts_toml::render(&resolved, &args.connection.options(), SystemTime::now())
        .map_err(anyhow::Error::msg)?;
    match &args.write {
        Some(dir) => {
            let path = super::hosts_toml::write(&rendered, dir)
                .with_context(|| format!("cannot write hosts.toml under {}", dir.display()))?;
            let until = rendered
                .expires_at
                .map(|e| format!("; its token expires at {}, rewrite it before then", crate::jwt::rfc3339(e)))
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

mod bars {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

    /// Per-blob bars and a total, on stderr (only used on a terminal).
    pub struct Bars {
        multi: MultiProgress,
        total: ProgressBar,
        blobs: Mutex<HashMap<String, ProgressBar>>,
    }

    impl Bars {
        pub fn new() -> Bars {
            let multi = MultiProgress::new();
            let total = multi.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            total.set_prefix("total");
            Bars { multi, total, blobs: Mutex::new(HashMap::new()) }
        }
    }

    fn short(digest: &str) -> String {
        digest.split_once(':').map_or(digest, |(_, h)| h).chars().take(12).collect()
    }

    impl super::Progress for Bars {
        fn planned(&self, count: usize, bytes: u64) {
            self.total.set_length(bytes);
            self.total.set_message(format!("{count} blobs"));
        }
        fn blob_started(&self, digest: &str, size: u64) {
            let bar = self.multi.insert_before(&self.total, ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(short(digest));
            self.blobs.lock().unwrap_or_else(|p| p.into_inner()).insert(digest.to_owned(), bar);
        }
        fn blob_advanced(&self, digest: &str, bytes: u64) {
            if let Some(bar) = self.blobs.lock().unwrap_or_else(|p| p.into_inner()).get(digest) {
                bar.inc(bytes);
            }
            self.total.inc(bytes);
        }
        fn blob_restarted(&self, digest: &str, offset: u64) {
            if let Some(bar) = self.blobs.lock().unwrap_or_else(|p| p.into_inner()).get(digest) {
                let lost = bar.position().saturating_sub(offset);
                bar.set_position(offset);
                self.total.set_position(self.total.position().saturating_sub(lost));
            }
        }
        fn blob_finished(&self, digest: &str, size: u64, fetched: bool) {
            if let Some(bar) = self.blobs.lock().unwrap_or_else(|p| p.into_inner()).remove(digest) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            if !fetched {
                self.total.inc(size);
            }
        }
    }

    impl Drop for Bars {
        fn drop(&mut self) {
            self.total.finish_and_clear();
        }
    }
}

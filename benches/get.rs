//! `get` process wall time: latchkey (file store, keyring store, cached static bearer, cold
//! ES256 mint) against /bin/true, docker-credential-secretservice and docker-credential-pass,
//! interleaved round by round in one run so machine noise hits every command alike.
//!
//!     cargo bench --bench get                 # or ./scripts/bench.sh (adds the static musl build)
//!     LATCHKEY_BENCH_BIN=path/to/docker-credential-latchkey LATCHKEY_BENCH_ROUNDS=500 cargo bench --bench get
//!     LATCHKEY_BENCH_BASELINE=path/to/older/docker-credential-latchkey cargo bench --bench get
//!
//! With LATCHKEY_BENCH_BASELINE, the keyring `get` of that binary is measured too, in the same
//! rounds (e.g. before and after a change to the keyring backend).
//!
//! Prints a Markdown table of medians and ratios (docs/benchmarks.md is this output).

// The integration tests' support kit; the benchmark uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KeyringSession, TestEnv};

struct Case {
    name: String,
    command: Command,
    stdin: Vec<u8>,
    /// Run before each timed run, untimed (e.g. drop a cache to measure the cold path).
    reset: Option<Box<dyn Fn()>>,
    samples: Vec<Duration>,
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rounds: usize = std::env::var("LATCHKEY_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let latchkey = std::env::var_os("LATCHKEY_BENCH_BIN").map(PathBuf::from).unwrap_or_else(common::latchkey);
    let session = KeyringSession::start();
    let mut file_env = TestEnv::new();
    file_env.store("file");
    let mut keyring_env = TestEnv::new();
    keyring_env.with_keyring(&session);

    let server = "bench.example:5000";
    let stored = common::store_json(server, "bench-user", "bench-secret-0123456789");
    must(file_env.command(&latchkey).arg("store"), &stored);
    must(keyring_env.command(&latchkey).arg("store"), &stored);
    let secretservice = common::require(common::SECRETSERVICE_HELPER);
    must(keyring_env.command(&secretservice).arg("store"), &stored);

    // Static bearer, minted with ES256 and cached.
    let mut bearer_env = TestEnv::new();
    let key = bearer_env.path("signing.key");
    let ok = Command::new("openssl")
        .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
        .arg(&key)
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(ok.success());
    // latchkey refuses a private key others can read, as ssh does.
    #[cfg(unix)]
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = format!(
        "[registries.\"{server}\"]\nmode = \"static-bearer\"\n[registries.\"{server}\".identity]\nsource = \"mint\"\n\
         algorithm = \"ES256\"\nprivate-key-file = {key:?}\nissuer = \"bench\"\nsubject = \"bench\"\naudience = \"bench\"\n\
         lifetime-secs = 3600\n"
    );
    std::fs::create_dir_all(bearer_env.config_path().parent().unwrap()).unwrap();
    std::fs::write(bearer_env.config_path(), config).unwrap();
    bearer_env.store("file");
    must(bearer_env.command(&latchkey).arg("get"), server.as_bytes());
    let cache_dir = PathBuf::from(bearer_env.var("LATCHKEY_CACHE_DIR").unwrap());

    let mut cases = vec![
        case("/bin/true", Command::new("/bin/true"), b""),
        case("latchkey get, file store", with_arg(file_env.command(&latchkey), "get"), server.as_bytes()),
        case("latchkey get, static bearer (cached)", with_arg(bearer_env.command(&latchkey), "get"), server.as_bytes()),
        case(
            "latchkey get, keyring (Secret Service)",
            with_arg(keyring_env.command(&latchkey), "get"),
            server.as_bytes(),
        ),
        case(
            "docker-credential-secretservice get",
            with_arg(keyring_env.command(&secretservice), "get"),
            server.as_bytes(),
        ),
    ];
    if let Some(baseline) = std::env::var_os("LATCHKEY_BENCH_BASELINE").map(PathBuf::from) {
        cases.push(case(
            &format!("latchkey get, keyring (Secret Service), baseline {}", baseline.display()),
            with_arg(keyring_env.command(&baseline), "get"),
            server.as_bytes(),
        ));
    }
    let mut cold = case(
        "latchkey get, static bearer (cold ES256 mint)",
        with_arg(bearer_env.command(&latchkey), "get"),
        server.as_bytes(),
    );
    let tokens = cache_dir.join("tokens");
    cold.reset = Some(Box::new(move || {
        let _ = std::fs::remove_dir_all(&tokens);
    }));
    cases.push(cold);
    if let Some(pass) = pass_case(&file_env, server) {
        cases.push(pass);
    }

    for case in cases.iter_mut() {
        for _ in 0..10 {
            time(case); // warm up page cache and the keyring daemon
        }
        case.samples.clear();
    }
    for round in 0..rounds {
        // Rotate the order each round so no command always follows another.
        let n = cases.len();
        for i in 0..n {
            let case = &mut cases[(i + round) % n];
            let d = time(case);
            case.samples.push(d);
        }
    }

    let median = |c: &Case| {
        let mut s = c.samples.clone();
        s.sort();
        s[s.len() / 2]
    };
    let find = |name: &str| cases.iter().find(|c| c.name.starts_with(name)).map(median);
    let truth = find("/bin/true").unwrap();
    let secretservice = find("docker-credential-secretservice").unwrap();
    println!("`get` wall time, median of {rounds} interleaved runs each; binary: {}\n", latchkey.display());
    println!("| command | median | p90 | vs /bin/true | vs secretservice |");
    println!("|---|---:|---:|---:|---:|");
    for c in &cases {
        let mut s = c.samples.clone();
        s.sort();
        let m = median(c);
        let p90 = s[s.len() * 9 / 10];
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2}x | {:.2}x |",
            c.name,
            ms(m),
            ms(p90),
            ms(m) / ms(truth),
            ms(m) / ms(secretservice)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn case(name: &str, command: Command, stdin: &[u8]) -> Case {
    Case { name: name.to_owned(), command, stdin: stdin.to_vec(), reset: None, samples: Vec::new() }
}

fn with_arg(mut c: Command, arg: &str) -> Command {
    c.arg(arg);
    c
}

fn time(case: &mut Case) -> Duration {
    if let Some(reset) = &case.reset {
        reset();
    }
    let start = Instant::now();
    let mut child = case
        .command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    child.stdin.take().unwrap().write_all(&case.stdin).unwrap();
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    assert!(status.success() || case.name == "/bin/true", "{} failed", case.name);
    elapsed
}

fn must(command: &mut Command, stdin: &[u8]) {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "setup failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// docker-credential-pass needs a gpg key and an initialised password store; set both up in the
/// bench's own HOME. Skipped (with a note) when gpg/pass are missing.
fn pass_case(env: &TestEnv, server: &str) -> Option<Case> {
    let helper = Path::new("/usr/bin/docker-credential-pass");
    if !helper.exists() || Command::new("pass").arg("version").output().is_err() {
        eprintln!(
            "note: docker-credential-pass or pass missing (apt-get install golang-docker-credential-helpers pass); not measured"
        );
        return None;
    }
    let run = |program: &str, args: &[&str]| {
        let out = env.command(program).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "latchkey-bench@example.invalid",
            "default",
            "default",
            "never",
        ],
    );
    run("pass", &["init", "latchkey-bench@example.invalid"]);
    must(env.command(helper).arg("store"), &common::store_json(server, "bench-user", "bench-secret"));
    Some(case("docker-credential-pass get", with_arg(env.command(helper), "get"), server.as_bytes()))
}

//! Shared harness for the integration tests that drive the real binary and real peers.
//!
//! Everything a test starts runs with a cleared environment rooted in temp dirs
//! ([`TestEnv`]), under a timeout ([`run`]), and is killed when its guard drops
//! ([`KeyringSession`], [`Registry`]). A system tool that is missing fails the test with
//! the Debian package to install ([`require`]); nothing is skipped silently.
//!
//! Each test binary compiles this module separately, so not every item is used by each.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const LATCHKEY: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");
/// What every docker-credential helper prints when nothing is stored.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// Long enough for a debug build on a loaded 2-core machine; short enough that a hung
/// child fails the test instead of hanging CI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn latchkey() -> PathBuf {
    PathBuf::from(LATCHKEY)
}

// ---------------------------------------------------------------------------------------
// System tools
// ---------------------------------------------------------------------------------------

/// A program from a Debian package that a test needs.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

pub const DBUS_DAEMON: Tool = Tool { name: "dbus-daemon", package: "dbus" };
pub const DBUS_SEND: Tool = Tool { name: "dbus-send", package: "dbus" };
pub const GNOME_KEYRING: Tool = Tool { name: "gnome-keyring-daemon", package: "gnome-keyring" };
pub const SECRETSERVICE_HELPER: Tool =
    Tool { name: "docker-credential-secretservice", package: "golang-docker-credential-helpers" };
pub const DOCKER_REGISTRY: Tool = Tool { name: "docker-registry", package: "docker-registry" };
pub const SKOPEO: Tool = Tool { name: "skopeo", package: "skopeo" };
pub const HTPASSWD: Tool = Tool { name: "htpasswd", package: "apache2-utils" };

/// The path of `tool`, or a test failure that says which package to install.
pub fn require(tool: Tool) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(tool.name);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "`{}` is not installed; this test needs it. Install it with `apt-get install -y {}` \
         (./scripts/test.sh installs every test dependency)",
        tool.name, tool.package
    );
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

// ---------------------------------------------------------------------------------------
// Running a program
// ---------------------------------------------------------------------------------------

/// What a finished child did.
pub struct Output {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Exit 0, or a failure showing everything.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    /// A controlled exit: not a Rust panic (101, "panicked"), not an abort (134) or any
    /// other signal.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(self.signal.is_none(), "killed by signal {:?}:\n{self}", self.signal);
        assert!(
            !matches!(self.code, Some(101 | 134)),
            "exit code {:?} looks like a panic or abort:\n{self}",
            self.code
        );
        assert!(!self.stderr_str().contains("panicked"), "stderr shows a panic:\n{self}");
        self
    }

    /// The protocol's error shape: exit 1 with a one-line message on stdout, no panic.
    /// Returns the message without its newline.
    pub fn assert_protocol_error(&self) -> String {
        self.assert_no_panic();
        assert_eq!(self.code, Some(1), "expected exit 1:\n{self}");
        let out = self.stdout_str();
        assert!(out.ends_with('\n') && out.trim_end().lines().count() == 1, "expected one line on stdout:\n{self}");
        out.trim_end().to_owned()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.command)?;
        writeln!(f, "  exit: code {:?}, signal {:?}", self.code, self.signal)?;
        writeln!(f, "  stdout: {:?}", String::from_utf8_lossy(&self.stdout))?;
        write!(f, "  stderr: {:?}", String::from_utf8_lossy(&self.stderr))
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{:?}", a.to_string_lossy()));
    }
    s
}

fn read_all_in_thread(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Run `cmd` with `stdin` fed to it, stdout and stderr captured, and a deadline: a child
/// still running after `timeout` is killed and the test fails with what it printed.
pub fn run_command(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let command = describe(&cmd);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let mut child_stdin = child.stdin.take().expect("piped");
    let input = stdin.to_vec();
    // The child may exit without reading everything (that is a valid answer to a huge
    // input); a broken pipe here is not the test's concern.
    std::thread::spawn(move || {
        let _ = child_stdin.write_all(&input);
    });
    wait_child(child, &command, timeout)
}

/// Wait for a child spawned with piped stdout and stderr (its stdin already dealt with),
/// capturing both, with a deadline: past `timeout` it is killed and the test fails.
pub fn wait_child(mut child: Child, command: &str, timeout: Duration) -> Output {
    let command = command.to_owned();
    let out_rx = read_all_in_thread(child.stdout.take().expect("piped"));
    let err_rx = read_all_in_thread(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let grace = Duration::from_secs(2);
                let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
                let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
                let out = Output { command, code: None, signal: Some(9), stdout, stderr };
                panic!("timed out after {timeout:?} and was killed:\n{out}");
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("waiting for {command}: {e}"),
        }
    };
    // A grandchild that kept our pipes open would block these forever.
    let rest = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
    let stdout = out_rx
        .recv_timeout(rest)
        .unwrap_or_else(|_| panic!("{command} exited but something it started keeps its stdout open"));
    let stderr = err_rx
        .recv_timeout(rest)
        .unwrap_or_else(|_| panic!("{command} exited but something it started keeps its stderr open"));
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    Output { command, code: status.code(), signal, stdout, stderr }
}

/// Run `program args` in `env` (and nothing else of the test's environment) with `stdin`.
pub fn run(program: impl AsRef<Path>, args: &[&str], stdin: &[u8], env: &TestEnv) -> Output {
    let mut cmd = env.command(program);
    cmd.args(args);
    run_command(cmd, stdin, DEFAULT_TIMEOUT)
}

/// Poll `ready` until it returns `Some`, failing the test with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// An isolated environment
// ---------------------------------------------------------------------------------------

/// A cleared environment whose HOME, XDG dirs and LATCHKEY_* all point into one temp
/// dir, so nothing a test runs can read or write a real user's files or keyring.
/// The store defaults to `file`; the latchkey data dir is not created, so the binary
/// must create it with the right permissions.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    vars: BTreeMap<OsString, OsString>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::Builder::new().prefix("latchkey-test-").tempdir().expect("temp dir");
        let r = root.path();
        let mut vars = BTreeMap::new();
        let mut set = |k: &str, v: &Path| {
            vars.insert(OsString::from(k), v.as_os_str().to_owned());
        };
        for (var, sub) in [
            ("HOME", "home"),
            ("XDG_CONFIG_HOME", "home/.config"),
            ("XDG_DATA_HOME", "home/.local/share"),
            ("XDG_CACHE_HOME", "home/.cache"),
            ("XDG_STATE_HOME", "home/.local/state"),
            ("XDG_RUNTIME_DIR", "run"),
            ("TMPDIR", "tmp"),
        ] {
            let dir = r.join(sub);
            fs::create_dir_all(&dir).expect("create temp sub dir");
            set(var, &dir);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(r.join("run"), fs::Permissions::from_mode(0o700)).expect("chmod run dir");
        }
        set("LATCHKEY_DATA_DIR", &r.join("latchkey/data"));
        set("LATCHKEY_CACHE_DIR", &r.join("latchkey/cache"));
        vars.insert("LATCHKEY_STORE".into(), "file".into());
        // The binary's own directory first: clients (skopeo) find the helper on PATH.
        let bin_dir = latchkey().parent().expect("binary has a directory").to_path_buf();
        let inherited = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&inherited)))
            .expect("PATH joins");
        vars.insert("PATH".into(), path);
        vars.insert("LANG".into(), "C.UTF-8".into());
        TestEnv { root, vars }
    }

    /// A path inside the temp root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn set(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.vars.insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    pub fn remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.vars.remove(key.as_ref());
        self
    }

    pub fn var(&self, key: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(key)).map(OsString::as_os_str)
    }

    /// LATCHKEY_STORE.
    pub fn store(&mut self, kind: &str) -> &mut Self {
        self.set("LATCHKEY_STORE", kind)
    }

    /// Talk to `session`'s Secret Service (and use the keyring store).
    pub fn with_keyring(&mut self, session: &KeyringSession) -> &mut Self {
        self.set("DBUS_SESSION_BUS_ADDRESS", &session.address);
        self.store("keyring")
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.var("LATCHKEY_DATA_DIR").expect("set in new()"))
    }

    /// The default config location under the temp home (no LATCHKEY_CONFIG: naming a missing
    /// file there is an error, and most tests have no config).
    pub fn config_path(&self) -> PathBuf {
        PathBuf::from(self.var("XDG_CONFIG_HOME").expect("set in new()")).join("latchkey/config.toml")
    }

    /// The file store's credentials file.
    pub fn store_file(&self) -> PathBuf {
        self.data_dir().join("credentials.json")
    }

    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// `program` with exactly this environment, run from the temp root.
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new(program.as_ref());
        cmd.env_clear().envs(self.vars()).current_dir(self.root.path());
        cmd
    }

    /// Run latchkey with `args` and `stdin`.
    pub fn latchkey(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(LATCHKEY, args, stdin, self)
    }
}

// ---------------------------------------------------------------------------------------
// Protocol helpers
// ---------------------------------------------------------------------------------------

/// A copy of the key file `source` inside `env`, mode 0600: latchkey refuses a private key
/// others can read (as ssh does), and the repository's test keys are checked out 0644.
pub fn private_copy(env: &TestEnv, source: &Path, name: &str) -> PathBuf {
    let copy = env.path(name);
    fs::copy(source, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).expect("chmod 600 the key copy");
    }
    copy
}

/// `store` input, JSON-encoded.
pub fn store_json(server_url: &str, username: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({"ServerURL": server_url, "Username": username, "Secret": secret}).to_string().into_bytes()
}

/// Parse a successful `get` answer into (ServerURL, Username, Secret).
pub fn parse_get(out: &Output) -> (String, String, String) {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("get answer is not JSON ({e}):\n{out}"));
    let field = |name: &str| {
        v.get(name).and_then(|f| f.as_str()).unwrap_or_else(|| panic!("get answer lacks {name}:\n{out}")).to_owned()
    };
    (field("ServerURL"), field("Username"), field("Secret"))
}

// ---------------------------------------------------------------------------------------
// A private D-Bus session with a real gnome-keyring Secret Service
// ---------------------------------------------------------------------------------------

/// A session bus of our own (no service activation, nothing else on it) and an unlocked
/// gnome-keyring-daemon serving `org.freedesktop.secrets` on it, with its keyrings in a
/// temp dir. Both processes are killed on drop.
pub struct KeyringSession {
    pub address: String,
    dir: tempfile::TempDir,
    dbus: Child,
    keyring: Child,
    _dbus_stdout: BufReader<ChildStdout>,
}

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl KeyringSession {
    pub fn start() -> Self {
        let dbus_daemon = require(DBUS_DAEMON);
        require(DBUS_SEND);
        let gnome_keyring = require(GNOME_KEYRING);
        let dir = tempfile::Builder::new().prefix("latchkey-keyring-").tempdir().expect("temp dir");
        let d = dir.path();
        for sub in ["home", "data", "config", "cache", "run"] {
            fs::create_dir_all(d.join(sub)).expect("create keyring sub dir");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(d.join("run"), fs::Permissions::from_mode(0o700)).expect("chmod run dir");
        }
        let config = d.join("bus.conf");
        fs::write(&config, BUS_CONFIG.replace("@SOCKET@", &d.join("bus").display().to_string()))
            .expect("write bus config");

        let mut dbus = Command::new(&dbus_daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(d.join("dbus.log")).expect("dbus log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", dbus_daemon.display()));
        let (tx, rx) = mpsc::channel();
        let stdout = dbus.stdout.take().expect("piped");
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let (address, dbus_stdout) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((line, reader)) if !line.trim().is_empty() => (line.trim().to_owned(), reader),
            _ => {
                let _ = dbus.kill();
                let _ = dbus.wait();
                panic!(
                    "dbus-daemon did not print its address; its log:\n{}",
                    fs::read_to_string(d.join("dbus.log")).unwrap_or_default()
                );
            }
        };

        let keyring = Command::new(&gnome_keyring)
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", d.join("home"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .stdin(Stdio::piped())
            .stdout(fs::File::create(d.join("keyring.out")).expect("keyring log"))
            .stderr(fs::File::create(d.join("keyring.log")).expect("keyring log"))
            .spawn();
        let mut keyring = match keyring {
            Ok(k) => k,
            Err(e) => {
                let _ = dbus.kill();
                let _ = dbus.wait();
                panic!("cannot start {}: {e}", gnome_keyring.display());
            }
        };
        {
            // The login keyring's password: non-empty, then EOF.
            let mut stdin = keyring.stdin.take().expect("piped");
            let _ = stdin.write_all(b"latchkey-test-password");
        }
        let mut session = KeyringSession { address, dir, dbus, keyring, _dbus_stdout: dbus_stdout };
        session.wait_ready();
        session
    }

    /// Wait until the Secret Service owns its name and has a default collection.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.keyring.try_wait() {
                panic!("gnome-keyring-daemon exited ({status}) before serving secrets:\n{}", self.logs());
            }
            let owned = self.dbus_send(&[
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]);
            if owned.code == Some(0) && owned.stdout_str().contains("boolean true") {
                let alias = self.dbus_send(&[
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.ReadAlias",
                    "string:default",
                ]);
                if alias.code == Some(0) && alias.stdout_str().contains("/org/freedesktop/secrets/collection/") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the Secret Service did not come up in 30 s:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `dbus-send --session --print-reply ARGS` on this bus. gnome-keyring can answer a brand-new
    /// client's first call with UnknownMethod before it has registered the client (the race
    /// src/store/keyring/linux.rs works around for latchkey); that answer is retried.
    pub fn dbus_send(&self, args: &[&str]) -> Output {
        let mut attempt = 0;
        loop {
            let mut cmd = Command::new(require(DBUS_SEND));
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args(["--session", "--print-reply"])
                .args(args);
            let out = run_command(cmd, b"", Duration::from_secs(20));
            attempt += 1;
            let raced = out.code != Some(0) && out.stderr_str().contains("org.freedesktop.DBus.Error.UnknownMethod");
            if !raced || attempt == 5 {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Object paths of the Secret Service items whose attributes include all of `attrs`.
    pub fn search_items(&self, attrs: &[(&str, &str)]) -> Vec<String> {
        let dict = attrs.iter().map(|(k, v)| format!("{k},{v}")).collect::<Vec<_>>().join(",");
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.SearchItems",
            &format!("dict:string:string:{dict}"),
        ]);
        out.assert_success();
        out.stdout_str()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("object path \"").and_then(|p| p.strip_suffix('"')))
            .filter(|p| p.starts_with("/org/freedesktop/secrets/collection/"))
            .map(str::to_owned)
            .collect()
    }

    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "dbus-daemon log:\n{}\ngnome-keyring-daemon log:\n{}{}",
            read("dbus.log"),
            read("keyring.out"),
            read("keyring.log")
        )
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A Distribution registry on loopback
// ---------------------------------------------------------------------------------------

/// How the test registry authenticates clients.
#[derive(Clone, Debug)]
pub enum RegistryAuth {
    /// Anonymous access.
    None,
    /// Basic auth against an htpasswd file of bcrypt entries made from these users.
    Htpasswd { users: Vec<(String, String)> },
    /// Bearer tokens from an external token service (see NOTES.md §3).
    Token { realm: String, service: String, issuer: String, root_cert_bundle: PathBuf },
}

/// A loopback address that refuses connections for as long as this lives: a TCP socket bound
/// to it that never listens, so no server of a test running alongside can be given the port.
#[cfg(unix)]
pub struct RefusingPort {
    _socket: std::os::fd::OwnedFd,
    pub port: u16,
}

#[cfg(unix)]
impl RefusingPort {
    pub fn new() -> RefusingPort {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket calls on a descriptor this function owns; the address structs
        // are zeroed and sized as the calls expect.
        unsafe {
            #[cfg(target_os = "linux")]
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            // No SOCK_CLOEXEC on macOS: close-on-exec is set right after instead.
            #[cfg(not(target_os = "linux"))]
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = std::os::fd::OwnedFd::from_raw_fd(fd);
            #[cfg(not(target_os = "linux"))]
            assert_ne!(
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
                -1,
                "fcntl: {}",
                std::io::Error::last_os_error()
            );
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, (&raw const addr).cast(), len);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut len = len;
            let named = libc::getsockname(fd, (&raw mut addr).cast(), &mut len);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            RefusingPort { _socket: socket, port: u16::from_be(addr.sin_port) }
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a caller that loses the race retries).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// How a test starts its registry: [`RegistryOptions::new`] gives the defaults [`Registry::start`] uses.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub auth: RegistryAuth,
    /// Distribution's access log (its stdout) in `access.log`, emptied of the readiness probes.
    pub access_log: bool,
    /// `log.level` of the application log (stderr, in `registry.err`).
    pub log_level: &'static str,
    /// Distribution's storage driver health check: as Distribution configures it by default, or
    /// disabled (`health.storagedriver.enabled: false`).
    pub storage_health_check: bool,
}

impl RegistryOptions {
    pub fn new(auth: RegistryAuth) -> RegistryOptions {
        RegistryOptions { auth, access_log: false, log_level: "info", storage_health_check: true }
    }
}

/// Debian's Distribution registry (`docker-registry serve config.yml`) on a free loopback
/// port, plain HTTP, storage in a temp dir, cleared environment. Killed on drop; its logs are
/// printed if the test is failing.
///
/// Ready only once `/v2/` answers with a response header whose value is unique to this
/// instance (set through `http.headers`), so a server of another test that happens to hold
/// the port is never taken for it. A child that exits (the port was taken before it could
/// bind) is restarted on another port, up to 5 times.
pub struct Registry {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// The header that names a registry instance.
const INSTANCE_HEADER: &str = "X-Latchkey-Test-Instance";

impl Registry {
    pub fn start(auth: RegistryAuth) -> Registry {
        Registry::start_with(RegistryOptions::new(auth))
    }

    pub fn start_with(options: RegistryOptions) -> Registry {
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let binary = require(DOCKER_REGISTRY);
        let dir = tempfile::Builder::new().prefix("latchkey-registry-").tempdir().expect("temp dir");
        let d = dir.path();
        let auth_yaml = auth_yaml(&options.auth, d);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let instance = format!(
                "{}-{}-{}",
                std::process::id(),
                INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                nanos.as_nanos()
            );
            let config = format!(
                "version: 0.1\nlog:\n  level: {level}\n  formatter: text\n  accesslog:\n    disabled: {no_access_log}\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: latchkey-test-secret\n  headers:\n    {INSTANCE_HEADER}: [{instance}]\n\
                 {health}{auth_yaml}",
                level = options.log_level,
                no_access_log = !options.access_log,
                storage = yaml_str(&d.join("storage").display().to_string()),
                instance = yaml_str(&instance),
                health =
                    if options.storage_health_check { "" } else { "health:\n  storagedriver:\n    enabled: false\n" },
            );
            fs::write(d.join("config.yml"), config).expect("write registry config");
            // Emptied, then appended to, so that emptying access.log later leaves no gap before the next line.
            let log = |name: &str| {
                fs::write(d.join(name), b"").expect("registry log");
                fs::OpenOptions::new().append(true).open(d.join(name)).expect("registry log")
            };
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(d.join("config.yml"))
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", d)
                .stdin(Stdio::null())
                .stdout(log("access.log"))
                .stderr(log("registry.err"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    // Most likely someone took the port between free_port() and bind.
                    last_log = read_logs(d);
                    break;
                }
                let answer = http_exchange(port, "GET", "/v2/", &[]);
                if answer.is_some_and(|a| a.header(INSTANCE_HEADER) == Some(&instance)) {
                    if options.access_log {
                        fs::write(d.join("access.log"), b"").expect("forget the readiness probes");
                    }
                    return Registry { port, dir, child };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the registry did not answer on 127.0.0.1:{port} in 30 s:\n{}", read_logs(d));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("the registry would not start after 5 tries; last log:\n{last_log}");
    }

    /// `127.0.0.1:PORT`, the host as clients name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.host())
    }

    /// A log file in the registry's dir: `access.log` (stdout) or `registry.err` (stderr).
    pub fn log_file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        read_logs(self.dir.path())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- registry log ({}) -----\n{}\n----- end -----", self.host(), self.logs());
        }
    }
}

/// The `auth:` section for `auth`, writing what it refers to (an htpasswd file) into `d`.
fn auth_yaml(auth: &RegistryAuth, d: &Path) -> String {
    match auth {
        RegistryAuth::None => String::new(),
        RegistryAuth::Htpasswd { users } => {
            let htpasswd = require(HTPASSWD);
            let mut file = String::new();
            for (user, password) in users {
                let mut cmd = Command::new(&htpasswd);
                cmd.args(["-B", "-b", "-n", user, password]);
                let out = run_command(cmd, b"", DEFAULT_TIMEOUT);
                out.assert_success();
                file.push_str(out.stdout_str().trim_end());
                file.push('\n');
            }
            fs::write(d.join("htpasswd"), file).expect("write htpasswd");
            format!(
                "auth:\n  htpasswd:\n    realm: latchkey-test\n    path: {}\n",
                yaml_str(&d.join("htpasswd").display().to_string())
            )
        }
        RegistryAuth::Token { realm, service, issuer, root_cert_bundle } => format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            yaml_str(realm),
            yaml_str(service),
            yaml_str(issuer),
            yaml_str(&root_cert_bundle.display().to_string())
        ),
    }
}

fn read_logs(d: &Path) -> String {
    let read = |name: &str| fs::read_to_string(d.join(name)).unwrap_or_default();
    format!("{}{}", read("access.log"), read("registry.err"))
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises") // JSON strings are YAML strings
}

/// An HTTP answer: status and headers (names as sent).
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl HttpAnswer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.0 request to 127.0.0.1:`port`; `Some(status)` when something answered.
pub fn http_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    http_exchange(port, method, path, headers).map(|a| a.status)
}

/// [`http_request`], answering the status and the response headers.
pub fn http_exchange(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<HttpAnswer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let (head, _body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Some(HttpAnswer { status, headers })
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A tiny OCI image
// ---------------------------------------------------------------------------------------

/// An OCI image layout on disk with one tagged image.
pub struct OciImage {
    pub layout: PathBuf,
    pub tag: String,
    pub config_digest: String,
    pub manifest_digest: String,
}

impl OciImage {
    /// `oci:LAYOUT:TAG`, the reference skopeo takes.
    pub fn reference(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.tag)
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Write an OCI layout at `layout` holding one image tagged `tag` whose single
/// uncompressed layer contains `files` (name, contents).
pub fn build_oci_image(layout: &Path, tag: &str, files: &[(&str, &[u8])]) -> OciImage {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("create blobs dir");
    let put = |data: &[u8]| -> (String, usize) {
        let digest = sha256_hex(data);
        fs::write(blobs.join(&digest), data).expect("write blob");
        (format!("sha256:{digest}"), data.len())
    };
    let (layer_digest, layer_size) = put(&tar(files));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    OciImage { layout: layout.to_path_buf(), tag: tag.to_owned(), config_digest, manifest_digest }
}

/// A ustar archive of regular files (mode 0644, owner 0, mtime 0).
pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        assert!(name.len() < 100, "tar(): name too long for a plain ustar header");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, width: usize, value: u64| {
            let s = format!("{value:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, 0o644);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

//! A Distribution registry on loopback.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

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

/// [`http_request`], answering the status and the response headers (no proxy, 10 s bound).
pub fn http_exchange(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<HttpAnswer> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = agent.run(request.body(()).ok()?).ok()?;
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Some(HttpAnswer { status: response.status().as_u16(), headers })
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

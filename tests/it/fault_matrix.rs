//! The fault matrix: every network peer latchkey talks to (identity endpoint, token exchange
//! service, device authorization endpoint, device token endpoint while polling, token endpoint
//! for the session check, the registry's `/v2/` challenge) under every fault (refused
//! connection, DNS failure, TLS failure against a self-signed listener, stall, slow trickle
//! body, 5xx, HTML instead of JSON, truncated JSON, oversize body, redirect loop).
//!
//! Each cell must end in bounded time with exit 1, a message naming the peer, and the store
//! file and token cache exactly as they were. Per-request timeouts are 4 s; the only bound
//! asserted is the harness's generous one, so a hang fails rather than hangs CI.
//! (Finer cases per peer live in static_bearer_sources.rs and device_login.rs.)

// Unix only: RefusingPort (a bound, never-listening socket) and /bin/sh stand-ins.
#![cfg(unix)]

use crate::common;
use crate::device_auth;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Output, TestEnv};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Refused,
    Dns,
    Tls,
    Stall,
    Trickle,
    ServerError,
    Html,
    TruncatedJson,
    Oversize,
    RedirectLoop,
}

const FAULTS: [Fault; 10] = [
    Fault::Refused,
    Fault::Dns,
    Fault::Tls,
    Fault::Stall,
    Fault::Trickle,
    Fault::ServerError,
    Fault::Html,
    Fault::TruncatedJson,
    Fault::Oversize,
    Fault::RedirectLoop,
];

impl Fault {
    /// Words of which at least one must be in the message (lower-cased), besides the peer.
    fn hints(self) -> &'static [&'static str] {
        match self {
            Fault::Refused => &["cannot connect"],
            // A resolver that never answers (no DNS in a sandbox) is a timeout.
            Fault::Dns => &["cannot connect", "dns", "resolve", "lookup", "name", "timed out"],
            Fault::Tls => &["certificate", "tls", "handshake"],
            Fault::Stall => &["timed out"],
            Fault::Trickle => &["timed out", "too slow"],
            Fault::ServerError => &["http 503"],
            Fault::Html => &["html"],
            Fault::TruncatedJson => &["json", "eof"],
            Fault::Oversize => &["256 kib"],
            Fault::RedirectLoop => &["redirect"],
        }
    }
}

/// A loopback server that answers every request with one fault, or nothing at all.
struct FaultServer {
    /// `scheme://host:port` to put in the config.
    base: String,
    _listener: Option<Arc<TcpListener>>,
    /// Holds a refused port for the cell's lifetime.
    _refusing: Option<common::RefusingPort>,
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    Some(first.split_whitespace().nth(1).unwrap_or("/").to_owned())
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]) {
    let head = format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

impl FaultServer {
    fn start(fault: Fault) -> FaultServer {
        match fault {
            Fault::Refused => {
                let refusing = common::RefusingPort::new();
                return FaultServer { base: refusing.base(), _listener: None, _refusing: Some(refusing) };
            }
            Fault::Dns => {
                return FaultServer { base: "https://latchkey-fault.invalid".into(), _listener: None, _refusing: None };
            }
            _ => {}
        }
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let scheme = if fault == Fault::Tls { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let l = listener.clone();
        let tls = (fault == Fault::Tls).then(tls_config);
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut stream) = stream else { break };
                let tls = tls.clone();
                std::thread::spawn(move || {
                    if let Some(config) = tls {
                        // Handshake with a certificate nobody trusts; the client must give up.
                        let mut conn = rustls::ServerConnection::new(config).unwrap();
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut tls = rustls::Stream::new(&mut conn, &mut stream);
                        let mut buf = [0u8; 1024];
                        let _ = tls.read(&mut buf);
                        return;
                    }
                    let Some(path) = read_request(&mut stream) else { return };
                    match fault {
                        Fault::Stall => std::thread::sleep(Duration::from_secs(30)),
                        Fault::Trickle => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
                            );
                            for _ in 0..60 {
                                if stream.write_all(b" ").is_err() {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(500));
                            }
                        }
                        Fault::ServerError => {
                            respond(&mut stream, "503 Service Unavailable", "", b"upstream unavailable")
                        }
                        Fault::Html => respond(
                            &mut stream,
                            "200 OK",
                            "Content-Type: text/html\r\n",
                            b"<!DOCTYPE html><html><body>Sign in</body></html>",
                        ),
                        Fault::TruncatedJson => respond(
                            &mut stream,
                            "200 OK",
                            "Content-Type: application/json\r\n",
                            br#"{"value":"eyJ","access_token":"eyJ","device_code":"#,
                        ),
                        Fault::Oversize => {
                            let mut body = br#"{"value":""#.to_vec();
                            body.resize(300 * 1024, b'x');
                            respond(&mut stream, "200 OK", "Content-Type: application/json\r\n", &body)
                        }
                        Fault::RedirectLoop => respond(&mut stream, "302 Found", &format!("Location: {path}\r\n"), b""),
                        Fault::Refused | Fault::Dns | Fault::Tls => unreachable!(),
                    }
                });
            }
        });
        FaultServer { base, _listener: Some(listener), _refusing: None }
    }
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_registry/keys");
    let cert = CertificateDer::from_pem_file(keys.join("p256_cert.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(keys.join("p256_pkcs8.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------
// Peers

#[derive(Clone, Copy, Debug)]
enum Peer {
    IdentityEndpoint,
    TokenExchange,
    DeviceAuthorization,
    DeviceTokenPolling,
    TokenEndpointCheck,
    RegistryChallenge,
}

const REGISTRY: &str = "reg.test:5000";
const DEVICE_SECRET: &str = "atcr_device_faultmatrix0001";

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::IdentityEndpoint => "identity endpoint",
            Peer::TokenExchange => "token exchange service",
            Peer::DeviceAuthorization => "device authorization endpoint",
            Peer::DeviceTokenPolling | Peer::TokenEndpointCheck => "token endpoint",
            Peer::RegistryChallenge => "registry",
        }
    }

    /// The config for `base` as this peer, and the command to run.
    fn config(self, base: &str, auth: &device_auth::AuthServer) -> (String, Vec<&'static str>) {
        let reg = format!("[registries.\"{REGISTRY}\"]\n");
        let device = |table: String| -> (String, Vec<&'static str>) {
            (
                format!(
                    "store = \"file\"\n{reg}mode = \"device\"\n[registries.\"{REGISTRY}\".device]\ntimeout-secs = 4\ncheck-interval-secs = 0\nlogin-wait-secs = 5\nlogin-timeout-secs = 30\n{table}"
                ),
                vec![],
            )
        };
        let (config, args) = match self {
            Peer::IdentityEndpoint => (
                format!(
                    "{reg}mode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\nsource = \"http\"\nurl = \"{base}/token\"\nfield = \"value\"\ntimeout-secs = 4\n"
                ),
                vec!["get"],
            ),
            Peer::TokenExchange => (
                format!(
                    "{reg}mode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\nsource = \"exchange\"\nurl = \"{base}/sts\"\ntimeout-secs = 4\nsubject = {{ source = \"env\", var = \"SUBJECT_TOKEN\" }}\n"
                ),
                vec!["get"],
            ),
            Peer::DeviceAuthorization => {
                let (c, _) = device(format!(
                    "device-authorization-url = \"{base}/auth/device/code\"\ntoken-url = \"{}/auth/device/token\"\nregistry-url = \"{}\"\n",
                    auth.base, auth.base
                ));
                (c, vec!["login", REGISTRY])
            }
            Peer::DeviceTokenPolling => {
                let (c, _) = device(format!(
                    "device-authorization-url = \"{}/auth/device/code\"\ntoken-url = \"{base}/auth/device/token\"\nregistry-url = \"{}\"\n",
                    auth.base, auth.base
                ));
                (c, vec!["login", REGISTRY])
            }
            Peer::TokenEndpointCheck => {
                let (c, _) = device(format!(
                    "realm = \"{base}/auth/token\"\nservice = \"{}\"\nregistry-url = \"{}\"\n",
                    device_auth::SERVICE,
                    auth.base
                ));
                (c, vec!["get"])
            }
            Peer::RegistryChallenge => {
                let (c, _) = device(format!("registry-url = \"{base}\"\n"));
                (c, vec!["get"])
            }
        };
        (config, args)
    }
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !name.ends_with(".lock") && !d.ends_with("device") {
                // Lock files and the device session/outcome records are bookkeeping, not data.
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

fn run_matrix(peer: Peer) {
    let auth = device_auth::AuthServer::start();
    // The device endpoints approve at the first poll, so only the faulty peer can fail a login.
    auth.with(|s| {
        s.auto_approve_at = Some(0);
        s.interval = 1;
    });
    let mut failures = Vec::new();
    for fault in FAULTS {
        let server = FaultServer::start(fault);
        let mut env = TestEnv::new();
        env.set("SUBJECT_TOKEN", "subject-token-value").set("LATCHKEY_INTERACTIVE", "0").set("BROWSER", "/bin/false");
        let (config, args) = peer.config(&server.base, &auth);
        std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
        std::fs::write(env.config_path(), config).unwrap();
        // Stored data that must survive: a bystander and (for device mode) a device secret.
        let data = env.data_dir();
        std::fs::create_dir_all(&data).unwrap();
        let store = serde_json::json!({"version": 1, "credentials": {
            "other.example": {"ServerURL": "other.example", "Username": "u", "Secret": "keep"},
            REGISTRY: {"ServerURL": REGISTRY, "Username": device_auth::ACCOUNT, "Secret": DEVICE_SECRET},
        }});
        std::fs::write(env.store_file(), serde_json::to_vec_pretty(&store).unwrap()).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::set_permissions(env.store_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let before = (snapshot(&data), snapshot(&env.path("latchkey/cache/tokens")));

        let started = Instant::now();
        let mut cmd = env.command(common::LATCHKEY);
        cmd.args(&args);
        let out: Output = common::run_command(cmd, REGISTRY.as_bytes(), Duration::from_secs(90));
        let took = started.elapsed();
        let after = (snapshot(&data), snapshot(&env.path("latchkey/cache/tokens")));

        out.assert_no_panic();
        // Protocol verbs answer on stdout; login speaks to a person on stderr.
        let message = if args[0] == "get" { out.stdout_str() } else { out.stderr_str() };
        let lower = message.to_ascii_lowercase();
        // The last line is the verdict (login prints its progress first).
        let verdict = message.trim().lines().last().unwrap_or("");
        eprintln!("{peer:?} / {fault:?} ({took:.1?}): exit {:?}: {verdict}", out.code);
        let mut problems = Vec::new();
        if out.code != Some(1) {
            problems.push(format!("exit {:?}", out.code));
        }
        if !lower.contains(peer.name()) {
            problems.push(format!("no {:?} in the message", peer.name()));
        }
        // `/v2/` answering 200 means "no auth here": its body is never read, so the message is
        // about the 200, whatever the body.
        let body_ignored =
            matches!(peer, Peer::RegistryChallenge) && matches!(fault, Fault::Html | Fault::TruncatedJson);
        if body_ignored && !lower.contains("without asking for credentials") {
            problems.push("a /v2/ 200 is not explained".into());
        } else if !body_ignored && !fault.hints().iter().any(|h| lower.contains(h)) {
            problems.push(format!("none of {:?} in the message", fault.hints()));
        }
        if before != after {
            problems.push("stored data changed".into());
        }
        if message.contains(DEVICE_SECRET) || message.contains("subject-token-value") {
            problems.push("a secret in the message".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{peer:?} / {fault:?}: {}\n{out}", problems.join(", ")));
        }
    }
    assert!(failures.is_empty(), "{} cell(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn identity_endpoint_faults() {
    run_matrix(Peer::IdentityEndpoint);
}

#[test]
fn token_exchange_faults() {
    run_matrix(Peer::TokenExchange);
}

#[test]
fn device_authorization_endpoint_faults() {
    run_matrix(Peer::DeviceAuthorization);
}

#[test]
fn device_token_endpoint_faults_while_polling() {
    run_matrix(Peer::DeviceTokenPolling);
}

#[test]
fn token_endpoint_faults_on_the_session_check() {
    run_matrix(Peer::TokenEndpointCheck);
}

#[test]
fn registry_challenge_faults() {
    run_matrix(Peer::RegistryChallenge);
}

//! Issue 9, classes 1 and 3: every request latchkey sends that carries a secret, against a
//! hostile peer that tries, on that very request,
//!
//! * a 307 and a 308 to another origin (a second, recording server on another port): the
//!   secret-carrying request is not replayed there (the recorder receives nothing; for a
//!   registry GET, which may be sent on to blob storage without its `Authorization`, nothing
//!   that carries a secret);
//! * a redirect to plain http on a name that is not this machine (`http://example.invalid/`):
//!   refused, by the transport policy and not by a failed DNS lookup;
//! * an echo of every spelling of every secret in play in its error answer (plain, base64 of
//!   `user:secret` in both alphabets with and without padding, percent-encoded, `\u`-escaped,
//!   JSON-escaped, and one placed across the 200-character truncation boundary).
//!
//! After each attempt no spelling of any secret may appear on stdout, stderr, in `status`, or
//! in any file under the test's directories (other than the credential store and the docker
//! config that hold the secrets on purpose). A failed revocation never says "revoked".
//!
//! The calls: identity endpoint with a request bearer, RFC 8693 exchange (`subject_token`),
//! device code request, device token polling (`device_code`), device session check (Basic),
//! revocation, the token realm a real Distribution names during `pull` (password GET with
//! Basic, refresh-token POST), registry requests with Basic and with a realm's Bearer token.
//! No timing is asserted; each run has the harness's generous bound only.

use crate::common;
use crate::resolver_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Output, TestEnv};
use data_encoding_like::*;

/// Every secret starts with this marker: any four leading characters of one (a half left by
/// a truncation) are caught by looking for it.
const MARK: &str = "Zq7x";
const BEARER: &str = "Zq7xBearer+/=Sekr3t!ab";
const SUBJECT: &str = "Zq7xSubject+/=Sekr3t!cd";
const DEVICE_CODE: &str = "Zq7xDevCode+/=Sekr3t!ef";
const DEVICE_SECRET: &str = "Zq7xDevice+/=Sekr3t!gh";
const PASSWORD: &str = "Zq7xPassw+/=Sekr3t!ij";
const REFRESH: &str = "Zq7xRefresh+/=Sekr3t!kl";
const REALM_TOKEN: &str = "Zq7xRealmTok+/=Sekr3t!mn";
const ACCOUNT: &str = "alice.test";
const USER: &str = "bob";
const REGISTRY: &str = "reg.test:5000";

/// (user for Basic, secret) pairs in play anywhere in these tests.
const SECRETS: [(&str, &str); 7] = [
    ("", BEARER),
    ("", SUBJECT),
    ("", DEVICE_CODE),
    (ACCOUNT, DEVICE_SECRET),
    (USER, PASSWORD),
    ("", REFRESH),
    ("", REALM_TOKEN),
];

/// base64 and percent-encoding without pulling in a crate the tests do not have.
mod data_encoding_like {
    pub fn b64(data: &[u8], url: bool, pad: bool) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        match (url, pad) {
            (false, true) => STANDARD.encode(data),
            (false, false) => STANDARD_NO_PAD.encode(data),
            (true, true) => URL_SAFE.encode(data),
            (true, false) => URL_SAFE_NO_PAD.encode(data),
        }
    }

    pub fn percent_all(s: &str, upper: bool) -> String {
        s.bytes().map(|b| if upper { format!("%{b:02X}") } else { format!("%{b:02x}") }).collect()
    }

    pub fn percent_reserved(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    pub fn u_escaped(s: &str, upper: bool) -> String {
        s.encode_utf16().map(|u| if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") }).collect()
    }
}

/// Every spelling of `secret` (and of `user:secret` when sent as Basic) a server might echo.
fn spellings(user: &str, secret: &str) -> Vec<String> {
    let mut out = vec![
        secret.to_owned(),
        serde_json::to_string(secret).unwrap().trim_matches('"').to_owned(),
        percent_reserved(secret),
        percent_all(secret, true),
        percent_all(secret, false),
        u_escaped(secret, false),
        u_escaped(secret, true),
    ];
    for material in [secret.to_owned(), format!("{user}:{secret}")] {
        for url in [false, true] {
            for pad in [false, true] {
                out.push(b64(material.as_bytes(), url, pad));
            }
        }
    }
    out
}

/// Which spellings of which secrets `text` holds (the marker counts as a spelling).
fn leaks(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    if text.contains(MARK) {
        found.push(MARK.to_owned());
    }
    for (user, secret) in SECRETS {
        for s in spellings(user, secret) {
            // Percent and \u escapes are case-insensitive in their hex digits.
            let hit = if s.contains('%') || s.contains("\\u") {
                lower.contains(&s.to_ascii_lowercase())
            } else {
                text.contains(&s)
            };
            if hit {
                found.push(s);
            }
        }
    }
    found
}

/// An error body that echoes every spelling of `secrets` in every field meant for people, one
/// of them across the truncation boundary, and the plain secret as a raw `\u`-escaped JSON
/// string (which decodes to it).
fn echo_body(secrets: &[(&str, &str)], error: &str) -> String {
    let mut all = Vec::new();
    for (user, secret) in secrets {
        all.extend(spellings(user, secret));
    }
    let list = all.join(" | ");
    let first = secrets[0].1;
    // "DENIED " + pad puts `first` at characters 193.., across the 200-character cut.
    let across = format!("{}{first} and more", "x".repeat(186));
    let raw_escaped = u_escaped(first, false);
    format!(
        r#"{{"errors":[{{"code":"DENIED","message":{across}}},{{"code":"DENIED","message":"{raw_escaped}"}},{{"code":"DENIED","message":{list}}}],"error":{error},"error_description":{list},"message":{list},"detail":{list},"login_url":{login}}}"#,
        across = serde_json::to_string(&across).unwrap(),
        list = serde_json::to_string(&list).unwrap(),
        error = serde_json::to_string(error).unwrap(),
        login = serde_json::to_string(&format!("http://127.0.0.1:1/login?x={}", b64(first.as_bytes(), false, true)))
            .unwrap(),
    )
}

// ---------------------------------------------------------------------------------------
// Servers

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    headers: String,
    body: String,
}

impl Seen {
    fn text(&self) -> String {
        format!("{} {}\n{}\n{}", self.method, self.url, self.headers, self.body)
    }
    fn authorization(&self) -> bool {
        self.headers.to_ascii_lowercase().contains("authorization:")
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.into() }
    }
    fn with(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A loopback HTTP server answering with whatever its handler says, recording every request.
struct Server {
    base: String,
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    handler: Arc<Mutex<Handler>>,
    server: Arc<tiny_http::Server>,
}

impl Server {
    fn start(handler: Handler) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let host = format!("127.0.0.1:{}", server.server_addr().to_ip().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(Mutex::new(handler));
        let (s, seen2, h) = (server.clone(), seen.clone(), handler.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
                let headers = request
                    .headers()
                    .iter()
                    .map(|h| format!("{}: {}", h.field, h.value))
                    .collect::<Vec<_>>()
                    .join("\n");
                let req = Seen { method: request.method().to_string(), url: request.url().to_owned(), headers, body };
                seen2.lock().unwrap().push(req.clone());
                let handler = h.lock().unwrap().clone();
                let reply = handler(&req);
                let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
                for (name, value) in reply.headers {
                    response =
                        response.with_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
                }
                let _ = request.respond(response);
            }
        });
        Server { base: format!("http://{host}"), host, seen, handler, server }
    }

    fn set(&self, handler: Handler) {
        *self.handler.lock().unwrap() = handler;
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

// ---------------------------------------------------------------------------------------
// Attacks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    Redirect307,
    Redirect308,
    HttpDowngrade,
    Echo,
    /// For the session check: a 401 `oauth_session_expired` whose message and login URL echo.
    EchoExpired,
}

const ATTACKS: [Attack; 4] = [Attack::Redirect307, Attack::Redirect308, Attack::HttpDowngrade, Attack::Echo];

fn attack_reply(attack: Attack, recorder: &Server, secrets: &[(&str, &str)], echo_status: u16) -> Reply {
    match attack {
        Attack::Redirect307 => Reply::json(307, "").with("Location", &format!("{}/elsewhere", recorder.base)),
        Attack::Redirect308 => Reply::json(308, "").with("Location", &format!("{}/elsewhere", recorder.base)),
        Attack::HttpDowngrade => Reply::json(307, "").with("Location", "http://example.invalid/elsewhere"),
        Attack::Echo => Reply::json(echo_status, echo_body(secrets, "invalid_request")),
        Attack::EchoExpired => Reply::json(401, echo_body(secrets, "oauth_session_expired")),
    }
}

// ---------------------------------------------------------------------------------------
// Running one call under one attack

struct Case {
    env: TestEnv,
    args: Vec<String>,
    stdin: Vec<u8>,
    /// Whether the call's request carries its secret in a body or a header that must not
    /// reach another origin at all (all but registry GETs, which may be sent on without it).
    strict: bool,
    /// Files that hold secrets on purpose.
    keep: Vec<PathBuf>,
}

fn write_config(env: &TestEnv, text: &str) {
    std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    std::fs::write(env.config_path(), text).unwrap();
}

fn store_device_secret(env: &TestEnv) {
    let data = env.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    let store = serde_json::json!({"version": 1, "credentials": {
        REGISTRY: {"ServerURL": REGISTRY, "Username": ACCOUNT, "Secret": DEVICE_SECRET},
    }});
    std::fs::write(env.store_file(), serde_json::to_vec_pretty(&store).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(env.store_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn files_under(dir: &Path, keep: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !keep.iter().any(|k| p.starts_with(k)) {
                out.push((p.clone(), String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned()));
            }
        }
    }
    out
}

fn run(env: &TestEnv, args: &[String], stdin: &[u8]) -> Output {
    let mut cmd = env.command(common::LATCHKEY);
    cmd.args(args);
    common::run_command(cmd, stdin, Duration::from_secs(120))
}

/// Run `case` once, with `status` after it; the problems found.
fn check(name: &str, attack: Attack, case: Case, recorder: &Server) -> Vec<String> {
    let mut problems = Vec::new();
    let out = run(&case.env, &case.args, &case.stdin);
    let status = run(&case.env, &["status".to_owned()], b"");
    out.assert_no_panic();
    status.assert_no_panic();
    let said = format!("{}\n{}", out.stdout_str(), out.stderr_str());
    eprintln!("{name} / {attack:?}: exit {:?}: {}", out.code, said.trim().lines().last().unwrap_or(""));
    for (what, text) in [("stdout", out.stdout_str()), ("stderr", out.stderr_str())]
        .into_iter()
        .chain([("status", format!("{}{}", status.stdout_str(), status.stderr_str()))])
    {
        let found = leaks(&text);
        if !found.is_empty() {
            problems.push(format!("{what} holds {found:?}:\n{text}"));
        }
    }
    for (path, text) in files_under(case.env.root.path(), &case.keep) {
        let found = leaks(&text);
        if !found.is_empty() {
            problems.push(format!("{} holds {found:?}", path.display()));
        }
    }
    let is_logout = case.args.first().is_some_and(|a| a == "logout");
    if is_logout {
        if out.stderr_str().contains("revoked the device secret") {
            problems.push(format!("a failed revocation says \"revoked\":\n{out}"));
        }
    } else if out.code == Some(0) {
        problems.push(format!("the call succeeded:\n{out}"));
    }
    let elsewhere = recorder.take();
    if case.strict && !elsewhere.is_empty() {
        problems.push(format!("the other origin received {} request(s): {:?}", elsewhere.len(), elsewhere));
    }
    for seen in &elsewhere {
        if seen.authorization() || !leaks(&seen.text()).is_empty() {
            problems.push(format!("the other origin received a secret: {seen:?}"));
        }
    }
    match attack {
        Attack::Redirect307 | Attack::Redirect308 => {
            if case.strict && !said.contains("redirect") {
                problems.push(format!("the redirect is not named:\n{said}"));
            }
        }
        Attack::HttpDowngrade => {
            // Refused by policy, not by a failed lookup of the name.
            let lower = said.to_ascii_lowercase();
            if !(lower.contains("redirect") && (lower.contains("plain http") || lower.contains("another origin"))) {
                problems.push(format!("the downgrade is not refused as such:\n{said}"));
            }
        }
        Attack::Echo | Attack::EchoExpired => {}
    }
    problems
        .into_iter()
        .map(|p| format!("{name} / {attack:?}: {p}\n--- output ---\n{out}\n--- status ---\n{status}"))
        .collect()
}

fn run_all(name: &str, attacks: &[Attack], mut make: impl FnMut(Attack) -> Case, recorder: &Server) {
    let mut failures = Vec::new();
    for &attack in attacks {
        let case = make(attack);
        failures.extend(check(name, attack, case, recorder));
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n\n"));
}

fn recorder() -> Server {
    Server::start(Arc::new(|_| Reply::json(200, r#"{"token":"t","access_token":"t","value":"t"}"#)))
}

fn static_bearer_config(identity: &str) -> String {
    format!("[registries.\"{REGISTRY}\"]\nmode = \"static-bearer\"\n[registries.\"{REGISTRY}\".identity]\n{identity}")
}

fn device_config(table: &str) -> String {
    format!(
        "store = \"file\"\n[registries.\"{REGISTRY}\"]\nmode = \"device\"\n[registries.\"{REGISTRY}\".device]\ntimeout-secs = 4\ncheck-interval-secs = 0\nlogin-wait-secs = 5\nlogin-timeout-secs = 20\n{table}"
    )
}

fn device_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set("LATCHKEY_INTERACTIVE", "0").set("BROWSER", "/bin/false");
    env
}

// ---------------------------------------------------------------------------------------
// The calls

#[test]
fn identity_endpoint_with_a_request_bearer() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "identity endpoint",
        &ATTACKS,
        |attack| {
            peer.set(always(attack_reply(attack, &other, &[("", BEARER)], 403)));
            let mut env = TestEnv::new();
            env.set("REQUEST_BEARER", BEARER);
            write_config(
                &env,
                &static_bearer_config(&format!(
                    "source = \"http\"\nurl = \"{}/identity\"\nbearer-env = \"REQUEST_BEARER\"\nfield = \"value\"\ntimeout-secs = 4\n",
                    peer.base
                )),
            );
            Case { env, args: vec!["get".into()], stdin: REGISTRY.as_bytes().to_vec(), strict: true, keep: vec![] }
        },
        &other,
    );
}

/// Answers `reply` for every request (the hostile part), cloned per request.
fn always(reply: Reply) -> Handler {
    let (status, headers, body) = (reply.status, reply.headers, reply.body);
    Arc::new(move |_| Reply { status, headers: headers.clone(), body: body.clone() })
}

#[test]
fn token_exchange_with_a_subject_token() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "token exchange",
        &ATTACKS,
        |attack| {
            peer.set(always(attack_reply(attack, &other, &[("", SUBJECT)], 400)));
            let mut env = TestEnv::new();
            env.set("SUBJECT_TOKEN", SUBJECT);
            write_config(
                &env,
                &static_bearer_config(&format!(
                    "source = \"exchange\"\nurl = \"{}/sts\"\ntimeout-secs = 4\nsubject = {{ source = \"env\", var = \"SUBJECT_TOKEN\" }}\n",
                    peer.base
                )),
            );
            Case { env, args: vec!["get".into()], stdin: REGISTRY.as_bytes().to_vec(), strict: true, keep: vec![] }
        },
        &other,
    );
}

/// A device authorization answer with our device code, its pages on the peer itself.
fn device_authorization(base: &str) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "device_code": DEVICE_CODE,
            "user_code": "WDJB-MJHT",
            "verification_uri": format!("{base}/device"),
            "expires_in": 60,
            "interval": 1,
        })
        .to_string(),
    )
}

#[test]
fn device_code_request() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    let mut attacks = ATTACKS.to_vec();
    attacks.retain(|a| *a != Attack::Echo);
    let run_case = |attack: Attack| {
        let reply = match attack {
            // The request carries no secret, the answer does: a 200 holding the device code in
            // a shape latchkey cannot use must not get it quoted.
            Attack::Echo => Reply::json(
                200,
                format!(
                    r#"{{"device_code":{},"user_code":7,"verification_uri":{},"error_description":{}}}"#,
                    serde_json::to_string(DEVICE_CODE).unwrap(),
                    serde_json::to_string(&format!("{}/device", peer.base)).unwrap(),
                    serde_json::to_string(&spellings("", DEVICE_CODE).join(" ")).unwrap()
                ),
            ),
            _ => attack_reply(attack, &other, &[("", DEVICE_CODE)], 400),
        };
        peer.set(always(reply));
        let env = device_env();
        write_config(
            &env,
            &device_config(&format!(
                "device-authorization-url = \"{0}/auth/device/code\"\ntoken-url = \"{0}/auth/device/token\"\nregistry-url = \"{0}\"\n",
                peer.base
            )),
        );
        Case { env, args: vec!["login".into(), REGISTRY.into()], stdin: vec![], strict: true, keep: vec![] }
    };
    attacks.push(Attack::Echo);
    run_all("device code request", &attacks, run_case, &other);
}

#[test]
fn device_token_polling_with_the_device_code() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "device token polling",
        &ATTACKS,
        |attack| {
            let hostile = attack_reply(attack, &other, &[("", DEVICE_CODE)], 400);
            let authorization = device_authorization(&peer.base);
            let (a_status, a_body) = (authorization.status, authorization.body);
            let (h_status, h_headers, h_body) = (hostile.status, hostile.headers, hostile.body);
            peer.set(Arc::new(move |seen: &Seen| {
                if seen.url.starts_with("/auth/device/code") {
                    Reply::json(a_status, a_body.clone())
                } else {
                    Reply { status: h_status, headers: h_headers.clone(), body: h_body.clone() }
                }
            }));
            let env = device_env();
            write_config(
                &env,
                &device_config(&format!(
                    "device-authorization-url = \"{0}/auth/device/code\"\ntoken-url = \"{0}/auth/device/token\"\nregistry-url = \"{0}\"\n",
                    peer.base
                )),
            );
            Case { env, args: vec!["login".into(), REGISTRY.into()], stdin: vec![], strict: true, keep: vec![] }
        },
        &other,
    );
}

#[test]
fn device_session_check_with_basic() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    let mut attacks = ATTACKS.to_vec();
    attacks.push(Attack::EchoExpired);
    run_all(
        "device session check",
        &attacks,
        |attack| {
            peer.set(always(attack_reply(attack, &other, &[(ACCOUNT, DEVICE_SECRET)], 401)));
            let env = device_env();
            write_config(
                &env,
                &device_config(&format!(
                    "realm = \"{0}/auth/token\"\nservice = \"svc\"\nregistry-url = \"{0}\"\n",
                    peer.base
                )),
            );
            store_device_secret(&env);
            Case {
                keep: vec![env.store_file()],
                env,
                args: vec!["get".into()],
                stdin: REGISTRY.as_bytes().to_vec(),
                strict: true,
            }
        },
        &other,
    );
}

#[test]
fn revocation_of_the_device_secret() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "revocation",
        &ATTACKS,
        |attack| {
            peer.set(always(attack_reply(attack, &other, &[("", DEVICE_SECRET)], 400)));
            let env = device_env();
            write_config(
                &env,
                &device_config(&format!(
                    "realm = \"{0}/auth/token\"\nregistry-url = \"{0}\"\nrevocation-url = \"{0}/revoke\"\n",
                    peer.base
                )),
            );
            store_device_secret(&env);
            Case {
                keep: vec![env.store_file()],
                env,
                args: vec!["logout".into(), REGISTRY.into()],
                stdin: vec![],
                strict: true,
            }
        },
        &other,
    );
}

// ---------------------------------------------------------------------------------------
// The resolver: token realms named by a real Distribution, and registry requests

fn pull_case(host: &str, auths: serde_json::Value, strict: bool) -> Case {
    let mut env = TestEnv::new();
    let docker = resolver_support::docker_config(&mut env, serde_json::json!({ "auths": { host: auths } }));
    let out = env.path("layout");
    Case {
        keep: vec![docker],
        args: vec![
            "pull".into(),
            format!("{host}/app:v1"),
            "--output".into(),
            out.display().to_string(),
            "--platform".into(),
            "linux/amd64".into(),
        ],
        env,
        stdin: vec![],
        strict,
    }
}

fn basic_auths() -> serde_json::Value {
    serde_json::json!({ "auth": b64(format!("{USER}:{PASSWORD}").as_bytes(), false, true) })
}

#[test]
fn realm_named_by_distribution_with_a_password() {
    let other = recorder();
    let realm = Server::start(Arc::new(|_| Reply::json(500, "")));
    let registry =
        resolver_support::Distribution::start(resolver_support::Auth::Token { realm: format!("{}/token", realm.base) });
    run_all(
        "realm (password, GET with Basic)",
        &ATTACKS,
        |attack| {
            realm.set(always(attack_reply(attack, &other, &[(USER, PASSWORD)], 401)));
            pull_case(&registry.host(), basic_auths(), true)
        },
        &other,
    );
}

#[test]
fn realm_named_by_distribution_with_a_refresh_token() {
    let other = recorder();
    let realm = Server::start(Arc::new(|_| Reply::json(500, "")));
    let registry =
        resolver_support::Distribution::start(resolver_support::Auth::Token { realm: format!("{}/token", realm.base) });
    run_all(
        "realm (refresh-token grant, POST)",
        &ATTACKS,
        |attack| {
            realm.set(always(attack_reply(attack, &other, &[("", REFRESH)], 400)));
            pull_case(&registry.host(), serde_json::json!({ "identitytoken": REFRESH }), true)
        },
        &other,
    );
}

/// A hostile registry: challenges requests without credentials (`Basic`, or `Bearer` with
/// itself as the realm, issuing [`REALM_TOKEN`]), and attacks those that carry them.
fn hostile_registry(peer: &Server, bearer: bool, hostile: Reply) {
    let base = peer.base.clone();
    let (status, headers, body) = (hostile.status, hostile.headers, hostile.body);
    peer.set(Arc::new(move |seen: &Seen| {
        if seen.url.starts_with("/token") {
            return Reply::json(200, serde_json::json!({ "token": REALM_TOKEN, "expires_in": 300 }).to_string());
        }
        if !seen.authorization() {
            let challenge = if bearer {
                format!("Bearer realm=\"{base}/token\",service=\"hostile\"")
            } else {
                "Basic realm=\"hostile\"".into()
            };
            return Reply::json(401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
                .with("WWW-Authenticate", &challenge);
        }
        Reply { status, headers: headers.clone(), body: body.clone() }
    }));
}

#[test]
fn registry_requests_with_basic() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "registry (Basic)",
        &ATTACKS,
        |attack| {
            hostile_registry(&peer, false, attack_reply(attack, &other, &[(USER, PASSWORD)], 403));
            pull_case(&peer.host, basic_auths(), false)
        },
        &other,
    );
}

#[test]
fn registry_requests_with_a_realm_bearer() {
    let other = recorder();
    let peer = Server::start(Arc::new(|_| Reply::json(500, "")));
    run_all(
        "registry (Bearer from the realm)",
        &ATTACKS,
        |attack| {
            hostile_registry(&peer, true, attack_reply(attack, &other, &[("", REALM_TOKEN), (USER, PASSWORD)], 403));
            pull_case(&peer.host, basic_auths(), false)
        },
        &other,
    );
}

#[test]
fn the_spellings_the_tests_look_for_are_found() {
    // The checker itself: each spelling of each secret is seen.
    for (user, secret) in SECRETS {
        for s in spellings(user, secret) {
            assert!(!leaks(&format!("x {s} y")).is_empty(), "{s}");
        }
    }
    assert!(leaks("nothing here").is_empty());
}

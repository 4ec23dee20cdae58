//! Bazel's credential-helper protocol (EngFlow credential-helper-spec) against a real
//! Distribution (Debian `docker-registry`) on loopback. Bazel >= 7 cannot be installed here, so
//! the Bazel side is a client written from the spec: run `docker-credential-latchkey get` with
//! `{"uri":..}` on stdin, parse the JSON answer, then fetch the URI with exactly the headers it
//! names and check the digest of what comes back.
//!
//! Also the `Bearer` answer convention (`answer = "bearer"`): `get` answers `Username: "Bearer"`,
//! and latchkey's own `pull` presents the JWT at the realm for a scoped token.

use crate::common;
use crate::resolver_support;

use std::fs;
use std::time::{Duration, SystemTime};

use common::{TestEnv, sha256_hex};
use resolver_support::*;
use serde_json::{Value, json};

const REPO: &str = "multi/app";
const TAG: &str = "v1";
const PARALLEL: usize = 64;
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

fn token_registry(realm: &str, image: &TestImage) -> Distribution {
    let registry = Distribution::start(Auth::Token { realm: realm.to_owned() });
    let push = registry_jwt(REPO, &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), REPO, TAG, Some(&format!("Bearer {push}")));
    registry
}

/// Bazel's side of the protocol: the helper's answer for `uri` (exit 0 and one JSON object).
fn bazel_get(env: &TestEnv, request: &Value) -> Value {
    let out = env.latchkey(&["get"], request.to_string().as_bytes());
    out.assert_success();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("the answer is not JSON ({e}):\n{out}"))
}

fn ask(env: &TestEnv, uri: &str) -> Value {
    bazel_get(env, &json!({ "uri": uri }))
}

/// Fetch `uri` with exactly the headers of `answer` (plus the Accept a manifest fetch sends).
fn fetch(uri: &str, answer: &Value) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(uri).header("Accept", ACCEPT);
    if let Some(headers) = answer.get("headers").and_then(Value::as_object) {
        for (name, values) in headers {
            for value in values.as_array().expect("header values are a list") {
                request = request.header(name.as_str(), value.as_str().expect("a header value is a string"));
            }
        }
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    (status, body)
}

/// Every manifest (the index and each platform's) and blob URI of `image` in `registry`.
fn image_uris(registry: &Distribution, image: &TestImage) -> Vec<(String, String)> {
    let base = registry.base();
    let mut uris = vec![(format!("{base}/v2/{REPO}/manifests/{}", image.index_digest), image.index_digest.clone())];
    for (_, digest, _) in &image.manifests {
        uris.push((format!("{base}/v2/{REPO}/manifests/{digest}"), digest.clone()));
    }
    for digest in image.blobs.keys() {
        uris.push((format!("{base}/v2/{REPO}/blobs/{digest}"), digest.clone()));
    }
    uris
}

/// Ask for every URI of `image`, fetch each with the answer's headers, check each digest.
/// Returns the answers.
fn fetch_all_checked(env: &TestEnv, registry: &Distribution, image: &TestImage) -> Vec<Value> {
    let mut answers = Vec::new();
    for (uri, digest) in image_uris(registry, image) {
        let answer = ask(env, &uri);
        assert!(answer["headers"]["Authorization"][0].is_string(), "no Authorization for {uri}: {answer}");
        let (status, body) = fetch(&uri, &answer);
        assert_eq!(status, 200, "GET {uri} with the helper's headers");
        assert_eq!(format!("sha256:{}", sha256_hex(&body)), digest, "{uri}");
        answers.push(answer);
    }
    assert_eq!(answers.len(), 1 + image.manifests.len() + image.blobs.len());
    answers
}

/// `PARALLEL` helper runs for `uri` at once; their answers (all must agree).
fn parallel(env: &TestEnv, uri: &str) -> Value {
    let answers: Vec<Value> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..PARALLEL).map(|_| s.spawn(|| ask(env, uri))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a["headers"] == answers[0]["headers"]), "parallel answers differ: {answers:#?}");
    answers[0].clone()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// `expires` as unix seconds (the test parses RFC 3339 UTC itself: `YYYY-MM-DDTHH:MM:SSZ`).
fn expires(answer: &Value) -> u64 {
    let text = answer["expires"].as_str().unwrap_or_else(|| panic!("no expires: {answer}"));
    assert!(text.len() == 20 && text.ends_with('Z') && &text[10..11] == "T", "{text}");
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // days_from_civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as u64
}

fn pings(registry: &Distribution) -> usize {
    registry.latchkey_requests().iter().filter(|a| a.path == "/v2/").count()
}

#[test]
fn stored_password_one_token_request_per_scope_and_every_digest_checks() {
    let tokens =
        TokenServer::issuing(TokenPolicy { users: vec![("alice".into(), "wonderland".into())], ..Default::default() });
    let image = TestImage::build(11, &["linux/amd64", "linux/arm64"], 16 * 1024, false);
    let registry = token_registry(&tokens.url, &image);
    let env = TestEnv::new();
    env.latchkey(&["store"], &common::store_json(&registry.host(), "alice", "wonderland")).assert_success();

    let index_uri = format!("{}/v2/{REPO}/manifests/{}", registry.base(), image.index_digest);
    let first = parallel(&env, &index_uri);
    let header = first["headers"]["Authorization"][0].as_str().unwrap().to_owned();
    assert!(header.starts_with("Bearer ") && header.len() > 40, "{first}");
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{PARALLEL} parallel runs, one token request: {requests:#?}");
    assert!(requests[0].url.contains("scope=repository%3Amulti%2Fapp%3Apull"), "{:?}", requests[0].url);
    assert_eq!(requests[0].authorization.as_deref(), Some(common::basic_auth("alice", "wonderland").as_str()));
    assert_eq!(pings(&registry), 1, "one challenge ping for the whole burst");
    let at = expires(&first);
    let now = unix_now();
    assert!(at > now + 200 && at <= now + 300, "expires {at} follows the token's 300 s lifetime (now {now})");

    // Every manifest and blob, same scope: the cached token, no further token request.
    let answers = fetch_all_checked(&env, &registry, &image);
    assert!(answers.iter().all(|a| a["headers"]["Authorization"][0] == header.as_str()));
    assert_eq!(tokens.requests().len(), 1);

    // Another repository is another scope.
    let other = registry_jwt("other/app", &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), "other/app", TAG, Some(&format!("Bearer {other}")));
    let uri = format!("{}/v2/other/app/manifests/{}", registry.base(), image.index_digest);
    let answer = parallel(&env, &uri);
    assert_eq!(fetch(&uri, &answer).0, 200);
    assert_eq!(tokens.requests().len(), 2);

    // Not a registry API path, or another host (a CDN after a redirect): `{}`.
    for uri in [
        format!("{}/v2/", registry.base()),
        format!("{}/v2/_catalog", registry.base()),
        format!("{}/v2/{REPO}/blobs/uploads/", registry.base()),
        format!("http://localhost:{}/v2/{REPO}/blobs/{}", common::free_port(), image.index_digest),
        format!("https://cdn.example.com/blobs/{}", image.index_digest),
        format!("https://cdn.example.com/v2/{REPO}/blobs/{}", image.index_digest),
    ] {
        assert_eq!(ask(&env, &uri), json!({}), "{uri}");
    }
    // Unknown fields are ignored.
    let answer = bazel_get(&env, &json!({"uri": index_uri, "future": {"x": [1, 2]}, "method": "GET"}));
    assert_eq!(answer["headers"]["Authorization"][0], header.as_str());
    // Not a request Bazel would send: exit 1 with the reason on stderr, nothing on stdout.
    let bad = env.latchkey(&["get"], br#"{"url": "https://x"}"#);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stdout.is_empty() && bad.stderr_str().contains("uri"), "{bad}");
    // docker's protocol on the same verb is untouched.
    let (_, username, secret) = common::parse_get(&env.latchkey(&["get"], registry.host().as_bytes()));
    assert_eq!((username.as_str(), secret.as_str()), ("alice", "wonderland"));
}

#[test]
fn identity_token_one_refresh_grant_for_a_burst() {
    let tokens = TokenServer::issuing(TokenPolicy { refresh_tokens: vec!["rt-bazel".into()], ..Default::default() });
    let image = TestImage::build(12, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    let registry = token_registry(&tokens.url, &image);
    let env = TestEnv::new();
    env.latchkey(&["store"], &common::store_json(&registry.host(), "<token>", "rt-bazel")).assert_success();

    let uri = format!("{}/v2/{REPO}/manifests/{}", registry.base(), image.index_digest);
    parallel(&env, &uri);
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "POST");
    assert!(
        requests[0].body.contains("grant_type=refresh_token") && requests[0].body.contains("refresh_token=rt-bazel")
    );
    fetch_all_checked(&env, &registry, &image);
    assert_eq!(tokens.requests().len(), 1);
}

#[test]
fn static_bearer_answers_its_jwt_with_exp_minus_min_validity_and_one_identity_call() {
    let realm = TokenServer::recorder();
    let image = TestImage::build(13, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    let registry = token_registry(&realm.url, &image);
    let env = TestEnv::new();
    // A command identity source that logs each call and prints a registry JWT.
    let jwt = registry_jwt(REPO, &["pull"], Duration::from_secs(600));
    let jwt_file = env.path("jwt");
    fs::write(&jwt_file, &jwt).unwrap();
    let calls = env.path("identity-calls");
    let script = env.path("identity.sh");
    fs::write(&script, format!("#!/bin/sh\necho call >> {calls:?}\ncat {jwt_file:?}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = format!(
        "[registries.\"{host}\"]\nmode = \"static-bearer\"\nmin-validity-secs = 100\n[registries.\"{host}\".identity]\nsource = \"command\"\nargv = [{script:?}]\n",
        host = registry.host(),
        script = script.display().to_string(),
    );
    fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    fs::write(env.config_path(), config).unwrap();

    let uri = format!("{}/v2/{REPO}/manifests/{}", registry.base(), image.index_digest);
    let answer = parallel(&env, &uri);
    assert_eq!(answer["headers"]["Authorization"][0], format!("Bearer {jwt}").as_str());
    assert_eq!(fs::read_to_string(&calls).unwrap().lines().count(), 1, "one identity call for {PARALLEL} runs");
    let exp = latchkey_jwt::inspect(&jwt).unwrap().expires_at.unwrap();
    assert_eq!(expires(&answer), exp - 100, "expires = exp - min-validity-secs");

    fetch_all_checked(&env, &registry, &image);
    assert!(realm.requests().is_empty(), "a static bearer needs no token request");
    assert_eq!(pings(&registry), 0, "nor a challenge ping");
    assert_eq!(fs::read_to_string(&calls).unwrap().lines().count(), 1);
}

#[test]
fn htpasswd_registry_gets_basic() {
    let registry = Distribution::start(Auth::Htpasswd(vec![("bob", "builder")]));
    let image = TestImage::build(14, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    image.push(&registry.base(), REPO, TAG, Some(&common::basic_auth("bob", "builder")));
    let env = TestEnv::new();
    env.latchkey(&["store"], &common::store_json(&registry.host(), "bob", "builder")).assert_success();

    let answers = fetch_all_checked(&env, &registry, &image);
    assert!(answers.iter().all(|a| a["headers"]["Authorization"][0] == common::basic_auth("bob", "builder").as_str()));
    assert!(expires(&answers[0]) > unix_now());
    // The Basic header is built from the store on each answer; the cache never holds the password.
    let cache = env.path("latchkey/cache");
    for entry in walk(&cache) {
        let text = fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains("builder") && !text.contains(&common::basic_auth("bob", "builder")), "{entry:?}");
    }
    // Without the header the registry refuses: the helper's answer is what made it work.
    assert_eq!(fetch(&format!("{}/v2/{REPO}/manifests/{TAG}", registry.base()), &json!({})).0, 401);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `answer = "bearer"`: docker's `get` answers `Username: "Bearer"`; latchkey's own `pull`
/// presents the JWT at the realm for a scoped token; Bazel gets that scoped token.
#[test]
fn bearer_convention_exchanges_the_jwt_at_the_realm() {
    let tokens =
        TokenServer::issuing(TokenPolicy { bearer_subject: Some("resolver-test".into()), ..Default::default() });
    let image = TestImage::build(15, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    let registry = token_registry(&tokens.url, &image);
    let mut env = TestEnv::new();
    latchkey_mint_config(&env, &registry.host(), &[REPO]);
    let text = fs::read_to_string(env.config_path()).unwrap();
    fs::write(
        env.config_path(),
        text.replacen("mode = \"static-bearer\"\n", "mode = \"static-bearer\"\nanswer = \"bearer\"\n", 1),
    )
    .unwrap();

    let (_, username, jwt) = common::parse_get(&env.latchkey(&["get"], registry.host().as_bytes()));
    assert_eq!(username, "Bearer");
    assert_eq!(latchkey_jwt::inspect(&jwt).unwrap().subject.as_deref(), Some("resolver-test"));

    // latchkey's resolver and pull, through docker's config, as any helper answering `Bearer`.
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "latchkey"}}));
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let out =
        env.latchkey(&["pull", &image_ref, "--output", out_dir.to_str().unwrap(), "--all-platforms", "--json"], b"");
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].authorization.as_deref(), Some(format!("Bearer {jwt}").as_str()));
    assert!(requests[0].url.contains("scope=repository%3Amulti%2Fapp%3Apull"), "{:?}", requests[0].url);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["http"]["token_requests"], 1);

    // Bazel: the scoped token the realm answered, not the JWT itself.
    let answers = fetch_all_checked(&env, &registry, &image);
    let header = answers[0]["headers"]["Authorization"][0].as_str().unwrap();
    assert!(header.starts_with("Bearer ") && header != format!("Bearer {jwt}"), "{header}");
    assert_eq!(tokens.requests().len(), 2, "one more token request, for Bazel's cache");

    // A JWT the realm does not accept is the realm's refusal, said on stderr.
    let refusing =
        TokenServer::issuing(TokenPolicy { bearer_subject: Some("someone-else".into()), ..Default::default() });
    let registry = token_registry(&refusing.url, &image);
    latchkey_mint_config(&env, &registry.host(), &[REPO]);
    let text = fs::read_to_string(env.config_path()).unwrap();
    fs::write(
        env.config_path(),
        text.replacen("mode = \"static-bearer\"\n", "mode = \"static-bearer\"\nanswer = \"bearer\"\n", 1),
    )
    .unwrap();
    let out = env.latchkey(
        &["get"],
        json!({"uri": format!("{}/v2/{REPO}/manifests/{TAG}", registry.base())}).to_string().as_bytes(),
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("refused the bearer JWT"), "{out}");
    assert!(!out.stderr_str().contains(&jwt[..20]), "no token in errors: {out}");
}

//! `pull` when things go wrong: a proxy that corrupts, drops or stalls a blob, blob storage on
//! another host, a static bearer the registry refuses, a helper that hangs, an interrupted
//! pull. Every wait is bounded; no assertion is about timing.

use crate::common;
use crate::resolver_support;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestEnv;
use resolver_support::*;
use serde_json::json;

const REPO: &str = "multi/app";
const TAG: &str = "v1";

/// An anonymous registry with a two-platform image, and a fault proxy in front of it.
fn behind_proxy(seed: u64, fault: impl FnOnce(&TestImage) -> Fault) -> (Distribution, TestImage, FaultProxy) {
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(seed, &["linux/amd64", "linux/arm64"], 256 * 1024, false);
    image.push(&registry.base(), REPO, TAG, None);
    let proxy = FaultProxy::start(registry.port, fault(&image));
    (registry, image, proxy)
}

/// `pull` of the test image; linux/amd64 unless `extra` picks platforms (the images have it,
/// and the host's own platform need not be it).
fn pull(env: &TestEnv, host: &str, out: &std::path::Path, extra: &[&str]) -> common::Output {
    let image = format!("{host}/{REPO}:{TAG}");
    let mut args = vec!["pull", image.as_str(), "--output", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    if !extra.iter().any(|a| a.contains("platform")) {
        args.extend_from_slice(&["--platform", "linux/amd64"]);
    }
    env.latchkey(&args, b"")
}

#[test]
fn a_corrupted_blob_is_refused_and_never_lands_in_blobs() {
    let (_registry, image, proxy) = behind_proxy(11, |i| Fault::Corrupt(i.a_layer("linux/amd64")));
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let out = pull(&env, &proxy.host(), &out_dir, &["--all-platforms"]);
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{out}");
    let bad = image.a_layer("linux/amd64");
    let err = out.stderr_str();
    assert!(err.contains(&format!("blob {bad} arrived with digest sha256:")), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    // Whatever else was fetched is intact; the bad blob, the manifests and index.json are not there.
    let present = check_layout(&out_dir);
    assert!(!present.contains(&bad), "{present:?}");
    assert!(!present.contains(&image.index_digest));
    assert!(!out_dir.join("index.json").exists());
}

#[test]
fn a_body_that_breaks_off_is_resumed_with_a_range_request() {
    let (_registry, image, proxy) = behind_proxy(12, |i| Fault::DropBody(i.a_layer("linux/arm64"), 1));
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let out = pull(&env, &proxy.host(), &out_dir, &["--all-platforms", "--json"]);
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());
    let layer = image.a_layer("linux/arm64");
    let tries: Vec<ProxyRequest> = proxy.requests().into_iter().filter(|r| r.path.ends_with(&layer)).collect();
    assert_eq!(tries.len(), 2, "{tries:#?}");
    assert_eq!(tries[0].range, None);
    let range = tries[1].range.as_deref().expect("the second request resumes with Range");
    let offset: u64 = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(offset > 0, "{range}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["http"]["retries"], 1);
}

#[test]
fn a_body_that_always_breaks_off_is_a_clear_error_with_no_partial_file() {
    let (_registry, image, proxy) = behind_proxy(13, |i| Fault::DropBody(i.a_layer("linux/amd64"), usize::MAX));
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let out = pull(&env, &proxy.host(), &out_dir, &[]);
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{out}");
    let layer = image.a_layer("linux/amd64");
    let err = out.stderr_str();
    assert!(err.contains(&format!("blob {layer}")) && err.contains("4 attempts"), "{err}");
    assert!(!check_layout(&out_dir).contains(&layer));
    assert!(!out_dir.join("index.json").exists());
    let tries = proxy.requests().into_iter().filter(|r| r.path.ends_with(&layer)).count();
    assert_eq!(tries, 4, "one try and three retries");
}

#[test]
fn authorization_never_follows_a_redirect_to_another_host() {
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(14, &["linux/amd64", "linux/arm64"], 32 * 1024, false);
    image.push(&registry.base(), REPO, TAG, None);
    let cdn = Cdn::start(image.blobs.clone());
    let proxy = FaultProxy::start(registry.port, Fault::RedirectBlobs(cdn.base.clone()));

    // A static bearer for the registry (the proxy's host:port), from a third-party helper.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    helper_script(
        &helpers,
        "static",
        r#"read -r url; printf '{"ServerURL":"%s","Username":"<static_bearer>","Secret":"registry-only-token"}' "$url""#,
    );
    docker_config(&mut env, json!({"credHelpers": {proxy.host(): "static"}}));
    let out_dir = env.path("layout");
    let out = pull(&env, &proxy.host(), &out_dir, &["--all-platforms", "--json"]);
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());

    // The registry got the token on every request, blob requests included...
    let at_registry = proxy.requests();
    assert!(at_registry.iter().any(|r| r.path.contains("/blobs/")));
    for r in &at_registry {
        assert_eq!(r.authorization.as_deref(), Some("Bearer registry-only-token"), "{r:?}");
    }
    // ...and blob storage on another port never saw it.
    let at_cdn = cdn.requests();
    assert_eq!(at_cdn.len(), image.blobs.len(), "{at_cdn:#?}");
    for r in &at_cdn {
        assert_eq!(r.authorization, None, "Authorization leaked to another host: {r:?}");
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["http"]["redirects"], image.blobs.len());
}

/// A registry in token mode whose realm records requests, with a one-platform image pushed.
fn token_registry_with_image(seed: u64) -> (TokenServer, Distribution, TestImage) {
    let realm = TokenServer::recorder();
    let registry = Distribution::start(Auth::Token { realm: realm.url.clone() });
    let image = TestImage::build(seed, &["linux/amd64"], 8 * 1024, false);
    let push = registry_jwt(REPO, &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), REPO, TAG, Some(&format!("Bearer {push}")));
    (realm, registry, image)
}

#[test]
fn a_refused_static_bearer_is_asked_for_once_more_then_is_a_clear_error() {
    let (realm, registry, image) = token_registry_with_image(15);

    // First answer: a token the registry refuses (no access to this repository); second: a good one.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    let good = env.path("good-token");
    fs::write(&good, registry_jwt(REPO, &["pull"], Duration::from_secs(300))).unwrap();
    fs::write(env.path("bad-token"), registry_jwt("someone/else", &["pull"], Duration::from_secs(300))).unwrap();
    let count = env.path("count");
    helper_script(
        &helpers,
        "rotating",
        &format!(
            "echo \"x $LATCHKEY_REJECTED_TOKEN_SHA256\" >> {count:?}\nif [ $(wc -l < {count:?}) -eq 1 ]; then t=$(cat {bad:?}); else t=$(cat {good:?}); fi\nprintf '{{\"Username\":\"<static_bearer>\",\"Secret\":\"%s\"}}' \"$t\"",
            bad = env.path("bad-token"),
        ),
    );
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "rotating"}}));
    let before = registry.access_log().len();
    let out_dir = env.path("layout");
    pull(&env, &registry.host(), &out_dir, &[]).assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/amd64"));
    let calls = fs::read_to_string(&count).unwrap();
    let bad_sha256 = sha256_hex(fs::read_to_string(env.path("bad-token")).unwrap().as_bytes());
    // The second ask names the refused token (other helpers ignore it; latchkey replaces it).
    assert_eq!(calls, format!("x \nx {bad_sha256}\n"), "asked exactly twice");
    let log: Vec<Access> = registry.access_log()[before..].to_vec();
    assert_eq!(log.iter().filter(|a| a.status == 401).count(), 1, "{log:#?}");

    // Always refused (a different bad token each time): one more ask, one retry, then an error.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    let count = env.path("count");
    helper_script(
        &helpers,
        "refused",
        &format!(
            "echo x >> {count:?}\nprintf '{{\"Username\":\"<static_bearer>\",\"Secret\":\"not-a-jwt-%s\"}}' $(wc -l < {count:?})"
        ),
    );
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "refused"}}));
    let before = registry.access_log().len();
    let out = pull(&env, &registry.host(), &env.path("layout"), &[]);
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("refused the static bearer token from docker-credential-refused"), "{err}");
    assert!(err.contains("already asked for a new token once"), "{err}");
    assert_eq!(fs::read_to_string(&count).unwrap().lines().count(), 2);
    let log: Vec<Access> = registry.access_log()[before..].to_vec();
    assert_eq!(log.iter().filter(|a| a.status == 401).count(), 2, "{log:#?}");
    assert!(realm.requests().is_empty(), "a static bearer never goes to the realm");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// latchkey as the helper, with a cached token the registry refuses: the resolver's second ask
/// names it, so latchkey asks its source again instead of answering the cached token.
#[test]
fn latchkey_replaces_a_cached_token_the_registry_refused() {
    let (realm, registry, image) = token_registry_with_image(16);

    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    let (good, bad, count) = (env.path("good-token"), env.path("bad-token"), env.path("source-calls"));
    fs::write(&good, registry_jwt(REPO, &["pull"], Duration::from_secs(600))).unwrap();
    fs::write(&bad, registry_jwt("someone/else", &["pull"], Duration::from_secs(600))).unwrap();
    // latchkey's identity source: a program that hands out the refused token first.
    let source = helpers.join("identity-source");
    fs::write(
        &source,
        format!("#!/bin/sh\necho x >> {count:?}\nif [ $(wc -l < {count:?}) -eq 1 ]; then cat {bad:?}; else cat {good:?}; fi\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&source, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let host = registry.host();
    let config = format!(
        "[registries.\"{host}\"]\nmode = \"static-bearer\"\n[registries.\"{host}\".identity]\nsource = \"command\"\nargv = [{source:?}]\n"
    );
    fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    fs::write(env.config_path(), config).unwrap();
    let asks = env.path("helper-calls");
    counting_latchkey(&helpers, &asks);
    docker_config(&mut env, json!({"credHelpers": {&host: "counting"}}));

    let out_dir = env.path("layout");
    let before = registry.access_log().len();
    pull(&env, &host, &out_dir, &[]).assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/amd64"));
    assert_eq!(fs::read_to_string(&asks).unwrap().lines().count(), 2, "the helper was asked twice");
    assert_eq!(fs::read_to_string(&count).unwrap().lines().count(), 2, "the source ran again for the refused token");
    let log: Vec<Access> = registry.access_log()[before..].to_vec();
    assert_eq!(log.iter().filter(|a| a.status == 401).count(), 1, "{log:#?}");
    assert!(realm.requests().is_empty(), "a static bearer never goes to the realm");

    // The replacement is what latchkey caches now: a plain get answers it without the source.
    let answer: serde_json::Value =
        serde_json::from_str(&env.latchkey(&["get"], host.as_bytes()).stdout_str()).unwrap();
    assert_eq!(answer["Secret"], fs::read_to_string(&good).unwrap().trim());
    assert_eq!(fs::read_to_string(&count).unwrap().lines().count(), 2);
}

#[test]
fn a_hanging_helper_is_stopped_and_named() {
    let registry = Distribution::start(Auth::Htpasswd(vec![("bob", "builder")]));
    let image = TestImage::build(16, &["linux/amd64"], 8 * 1024, false);
    image.push(&registry.base(), REPO, TAG, Some(&common::basic_auth("bob", "builder")));
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    helper_script(&helpers, "hang", "exec sleep 600");
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "hang"}}));
    let out = pull(&env, &registry.host(), &env.path("layout"), &["--helper-timeout", "2"]);
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("docker-credential-hang did not answer within 2 s and was stopped"), "{err}");
    assert!(err.contains("401 Unauthorized"), "{err}");
}

/// Start `latchkey pull` in the background against a proxy that stalls one blob halfway, wait
/// until it stalls, signal it, and return what it left.
fn interrupt_mid_blob(signal: &str) -> (TestEnv, std::path::PathBuf, String, std::process::ExitStatus, String) {
    let (_registry, image, proxy) = behind_proxy(17, |i| Fault::Stall(i.a_layer("linux/amd64")));
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", proxy.host());
    let mut cmd = env.command(common::LATCHKEY);
    cmd.args(["pull", &image_ref, "--output", out_dir.to_str().unwrap(), "--platform", "linux/amd64"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(env.path("stderr")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.stalled.load(std::sync::atomic::Ordering::SeqCst) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the pull never reached the stalled blob: {}", fs::read_to_string(env.path("stderr")).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Our own child, by its pid.
    let kill = std::process::Command::new(common::require(common::Tool { name: "kill", package: "procps" }))
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("latchkey did not stop within 30 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = fs::read_to_string(env.path("stderr")).unwrap();
    (env, out_dir, image.a_layer("linux/amd64"), status, stderr)
}

#[test]
fn an_interrupted_pull_leaves_no_partial_blob() {
    // Ctrl-C: the pull stops, its temp files are removed, the layout is clean.
    let (_env, out_dir, layer, status, stderr) = interrupt_mid_blob("-INT");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!check_layout(&out_dir).contains(&layer));
    assert!(!out_dir.join("index.json").exists());

    // SIGKILL: nothing can clean up, yet blobs/ still holds only complete, verified blobs.
    let (_env, out_dir, layer, status, _) = interrupt_mid_blob("-KILL");
    assert_eq!(status.code(), None);
    let blobs = out_dir.join("blobs/sha256");
    for entry in fs::read_dir(&blobs).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert_ne!(format!("sha256:{name}"), layer);
        assert_eq!(common::sha256_hex(&fs::read(entry.path()).unwrap()), name, "partial file in blobs/");
    }
    assert!(!out_dir.join("index.json").exists());
}

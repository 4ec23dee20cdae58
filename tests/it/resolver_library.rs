//! The resolver as a library (no binary), and `hosts-toml` through the binary, against a real
//! Distribution in token-auth mode.

use crate::common;
use crate::resolver_support;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use common::TestEnv;
use latchkey_resolver::pull::{PlatformSelector, PullOptions, Quiet};
use latchkey_resolver::{ClientOptions, Credential, Reference, RegistryClient, Resolver};
use resolver_support::*;
use serde_json::json;

const REPO: &str = "lib/app";

#[test]
fn library_pull_with_a_registrytoken_from_auths() {
    let realm = TokenServer::recorder();
    let registry = Distribution::start(Auth::Token { realm: realm.url.clone() });
    let image = TestImage::build(21, &["linux/amd64", "linux/arm64"], 16 * 1024, false);
    let push = registry_jwt(REPO, &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), REPO, "v2", Some(&format!("Bearer {push}")));

    // docker's `registrytoken`: a bearer sent as it is, like `<static_bearer>`.
    let token = registry_jwt(REPO, &["pull"], Duration::from_secs(300));
    let config = json!({"auths": {registry.host(): {"registrytoken": token}}}).to_string();
    let resolver = Arc::new(Resolver::from_json(&config).unwrap());
    assert!(matches!(resolver.resolve(&registry.host()).unwrap().credential, Credential::StaticBearer(_)));

    let client = RegistryClient::new(resolver, ClientOptions::default()).unwrap();
    let reference: Reference = format!("{}/{REPO}:v2", registry.host()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = PullOptions {
        platforms: PlatformSelector::One("linux/arm64".parse().unwrap()),
        concurrency: 2,
        ..PullOptions::new(dir.path().join("layout"))
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let summary = runtime
        .block_on(latchkey_resolver::pull(&client, &reference, &options, Arc::new(Quiet)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.digest, image.manifest_digest("linux/arm64"));
    assert_eq!(check_layout(&options.output), image.platform_digests("linux/arm64"));
    assert_eq!(summary.http.unauthorized, 0);
    assert_eq!(summary.http.token_requests, 0);
    assert!(realm.requests().is_empty());
    assert!(registry.latchkey_requests().iter().all(|a| a.status == 200));
}

#[test]
fn hosts_toml_carries_a_working_header_and_its_expiry() {
    let realm = TokenServer::recorder();
    let registry = Distribution::start(Auth::Token { realm: realm.url.clone() });
    let image = TestImage::build(22, &["linux/amd64"], 4 * 1024, false);
    let push = registry_jwt(REPO, &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), REPO, "v1", Some(&format!("Bearer {push}")));

    let mut env = TestEnv::new();
    latchkey_mint_config(&env, &registry.host(), &[REPO]);
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "latchkey"}}));
    let out = env.latchkey(&["hosts-toml", &registry.host()], b"");
    out.assert_success();
    let text = out.stdout_str();
    let parsed: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}"));
    let server = format!("http://{}", registry.host());
    assert_eq!(parsed["server"].as_str(), Some(server.as_str()));
    let header = parsed["host"][&server]["header"]["Authorization"].as_str().unwrap().to_owned();
    let token = header.strip_prefix("Bearer ").unwrap();
    let claims = latchkey_jwt::inspect(token).unwrap();
    let exp = latchkey_jwt::rfc3339(claims.expires_at.unwrap());
    assert!(text.contains(&format!("WARNING: the bearer token below EXPIRES at {exp}")), "{text}");
    assert!(text.contains("Rewrite this file before then"), "{text}");
    assert_eq!(parsed["host"][&server]["capabilities"].as_array().unwrap().len(), 2);

    // The header works as containerd would send it: straight to the manifest, no challenge.
    let status = common::http_request(
        registry.port,
        "GET",
        &format!("/v2/{REPO}/manifests/v1"),
        &[("Authorization", &header), ("Accept", OCI_INDEX)],
    );
    assert_eq!(status, Some(200));
    assert!(realm.requests().is_empty());

    // --write: DIR/<host>/hosts.toml, private.
    let dir = env.path("certs.d");
    let out = env.latchkey(&["hosts-toml", &registry.host(), "--write", dir.to_str().unwrap()], b"");
    out.assert_success();
    let path = dir.join(registry.host()).join("hosts.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(fs::read_to_string(&path).unwrap().contains("[host.\"http://127.0.0.1:"));
    assert!(out.stderr_str().contains("rewrite it before then"), "{out}");

    // A registry whose credential is not a static bearer: refused, with the reason.
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"auths": {"ghcr.io": {"auth": common::base64(b"u:p")}}}));
    let out = env.latchkey(&["hosts-toml", "ghcr.io"], b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("not a static bearer"), "{out}");
}

//! `pull` and the resolver against a real Distribution (Debian `docker-registry`) on loopback,
//! through the built binary, with a multi-platform image the test pushes (and indexes of it).
//!
//! Needs `docker-registry`, `skopeo` and `htpasswd` (apache2-utils); a missing one fails the
//! test saying which package to install.

use crate::common;
use crate::resolver_support;

use std::fs;
use std::time::Duration;

use common::{TestEnv, require};
use resolver_support::*;
use serde_json::json;

const REPO: &str = "multi/app";
const TAG: &str = "v1";

/// `pull` arguments; linux/amd64 unless `extra` picks platforms (every test image has it, and
/// the host's own platform need not be it).
fn pull_args<'a>(image: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pull", image, "--output", out];
    args.extend_from_slice(extra);
    if !extra.iter().any(|a| a.contains("platform")) {
        args.extend_from_slice(&["--platform", "linux/amd64"]);
    }
    args
}

fn summary(out: &common::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{out}"))
}

/// A token-auth registry with `image` pushed (using a directly minted push token).
fn token_registry(realm: &str, image: &TestImage) -> Distribution {
    let registry = Distribution::start(Auth::Token { realm: realm.to_owned() });
    let push = registry_jwt(REPO, &["pull", "push"], Duration::from_secs(300));
    image.push(&registry.base(), REPO, TAG, Some(&format!("Bearer {push}")));
    registry
}

#[test]
fn static_bearer_pull_all_platforms_makes_no_token_request_and_gets_no_401() {
    require(common::SKOPEO);
    let realm = TokenServer::recorder();
    let image = TestImage::build(1, &["linux/amd64", "linux/arm64"], 64 * 1024, false);
    let registry = token_registry(&realm.url, &image);
    let before = registry.access_log().len();

    let mut env = TestEnv::new();
    latchkey_mint_config(&env, &registry.host(), &[REPO]);
    let helpers = helper_dir(&mut env);
    let calls = env.path("helper-calls");
    counting_latchkey(&helpers, &calls);
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "counting"}}));

    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let out_dir = env.path("layout");
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    out.assert_success();
    let s = summary(&out);

    // Zero token-endpoint calls, zero 401s: from the realm's and the registry's own records.
    assert!(realm.requests().is_empty(), "the token realm was called: {:?}", realm.requests());
    let pulled: Vec<Access> = registry.access_log()[before..].to_vec();
    assert!(!pulled.is_empty());
    for a in &pulled {
        assert_eq!(a.status, 200, "every request of the pull is answered 200: {a:?}\nall: {pulled:#?}");
        assert!(a.user_agent.starts_with("latchkey/"), "{a:?}");
    }
    assert!(!pulled.iter().any(|a| a.path == "/v2/"), "no /v2/ ping with a static bearer: {pulled:#?}");
    // One helper call for the whole pull.
    assert_eq!(fs::read_to_string(&calls).unwrap(), format!("{}\n", registry.host()));
    assert_eq!(s["http"]["unauthorized"], 0);
    assert_eq!(s["http"]["token_requests"], 0);
    assert_eq!(s["http"]["helper_calls"], 1);

    // The layout holds exactly what was pushed, digests equal.
    assert_eq!(check_layout(&out_dir), image.all_digests());
    let entries = index_entries(&out_dir);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], image.index_digest.as_str());
    assert_eq!(entries[0]["mediaType"], OCI_INDEX);
    assert_eq!(entries[0]["annotations"]["org.opencontainers.image.ref.name"], TAG);
    assert_eq!(s["digest"], image.index_digest.as_str());
    assert_eq!(s["blobs_fetched"], image.blobs.len());

    // skopeo reads it: inspect (picks linux/amd64) and copy (all platforms) to another layout.
    let inspect = skopeo(&env, &["inspect", &format!("oci:{}:{TAG}", out_dir.display())]);
    inspect.assert_success();
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], image.index_digest.as_str(), "{inspect}");
    assert_eq!(inspected["Architecture"], "amd64", "{inspect}");
    let copy_dir = env.path("copied");
    skopeo(
        &env,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-oci-accept-uncompressed-layers",
            &format!("oci:{}:{TAG}", out_dir.display()),
            &format!("oci:{}:{TAG}", copy_dir.display()),
        ],
    )
    .assert_success();
    assert_eq!(check_layout(&copy_dir), image.all_digests(), "skopeo copied every blob, byte for byte");

    // Pulling again fetches no blob: the registry sees manifest requests only.
    let before = registry.access_log().len();
    let again = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    again.assert_success();
    assert_eq!(summary(&again)["blobs_fetched"], 0);
    let second: Vec<Access> = registry.access_log()[before..].to_vec();
    assert!(second.iter().all(|a| a.path.contains("/manifests/") && a.status == 200), "{second:#?}");
    assert!(realm.requests().is_empty());
}

#[test]
fn username_password_goes_through_the_challenge_once_per_scope() {
    let tokens =
        TokenServer::issuing(TokenPolicy { users: vec![("alice".into(), "wonderland".into())], ..Default::default() });
    let image = TestImage::build(2, &["linux/amd64", "linux/arm64"], 16 * 1024, false);
    let registry = token_registry(&tokens.url, &image);
    let before = registry.access_log().len();

    // Stored in latchkey's file store, found through credHelpers: any helper's user/password.
    let mut env = TestEnv::new();
    env.latchkey(&["store"], &common::store_json(&registry.host(), "alice", "wonderland")).assert_success();
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "latchkey"}}));
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());

    // One 401 (the first request learns the challenge), one token for the repository scope,
    // reused for every manifest and blob.
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert!(requests[0].url.contains("scope=repository%3Amulti%2Fapp%3Apull"), "{:?}", requests[0].url);
    assert_eq!(requests[0].authorization.as_deref(), Some(common::basic_auth("alice", "wonderland").as_str()));
    let pulled: Vec<Access> = registry.access_log()[before..].to_vec();
    assert_eq!(pulled.iter().filter(|a| a.status == 401).count(), 1, "{pulled:#?}");
    let s = summary(&out);
    assert_eq!((s["http"]["unauthorized"].as_u64(), s["http"]["token_requests"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn identity_token_uses_the_refresh_token_grant() {
    let tokens = TokenServer::issuing(TokenPolicy { refresh_tokens: vec!["rt-123".into()], ..Default::default() });
    let image = TestImage::build(3, &["linux/amd64"], 8 * 1024, false);
    let registry = token_registry(&tokens.url, &image);

    let mut env = TestEnv::new();
    // docker's own spelling: an auths entry with an identitytoken.
    docker_config(
        &mut env,
        json!({"auths": {registry.host(): {"identitytoken": "rt-123", "auth": common::base64(b"alice:")}}}),
    );
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &[]), b"").assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/amd64"));

    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "POST");
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&requests[0].body).unwrap();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("refresh_token"));
    assert_eq!(get("refresh_token"), Some("rt-123"));
    assert_eq!(get("service"), Some(SERVICE));
    assert_eq!(get("scope"), Some("repository:multi/app:pull"));

    // A refresh token the service does not know: the error says who refused what.
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"auths": {registry.host(): {"identitytoken": "stale"}}}));
    let out_dir = env.path("layout");
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &[]), b"");
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("refused the refresh-token grant") && err.contains("identity token from auths in"), "{err}");
    assert!(!err.contains("stale"), "no secret in errors: {err}");
}

#[test]
fn htpasswd_basic_through_creds_store_and_helper_failures() {
    let registry = Distribution::start(Auth::Htpasswd(vec![("bob", "builder")]));
    let image = TestImage::build(4, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    image.push(&registry.base(), REPO, TAG, Some(&common::basic_auth("bob", "builder")));
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());

    // credsStore: a third-party helper answering a user name and password.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    helper_script(
        &helpers,
        "fake",
        r#"read -r url; printf '{"ServerURL":"%s","Username":"bob","Secret":"builder"}' "$url""#,
    );
    docker_config(&mut env, json!({"credsStore": "fake"}));
    let out_dir = env.path("layout");
    env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--platform", "linux/arm64"]), b"")
        .assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/arm64"));
    let entries = index_entries(&out_dir);
    assert_eq!(entries[0]["digest"], image.manifest_digest("linux/arm64").as_str());
    assert_eq!(entries[0]["platform"]["architecture"], "arm64");

    // The helper has nothing: anonymous, and the 401 names the helper's answer.
    let mut env = TestEnv::new();
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "latchkey"}}));
    let out_dir = env.path("layout");
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("401 Unauthorized") && err.contains("no credentials were sent"), "{err}");
    assert!(
        err.contains("docker-credential-latchkey has no credentials for it (credentials not found in native keychain)"),
        "{err}"
    );
    assert!(check_layout(&out_dir).is_empty());

    // A helper that fails: its stderr reaches the user, and the 401 quotes its message.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    helper_script(&helpers, "broken", "echo 'keyring is locked'; echo 'hint: unlock it' >&2; exit 1");
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "broken"}}));
    let out = env.latchkey(&pull_args(&image_ref, env.path("l").to_str().unwrap(), &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("hint: unlock it"), "helper stderr passes through: {err}");
    assert!(err.contains("docker-credential-broken failed (exit status: 1): keyring is locked"), "{err}");
}

#[test]
fn anonymous_docker_schema2_list_and_a_failing_helper_still_pulls_public_images() {
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(5, &["linux/amd64", "linux/arm64"], 8 * 1024, true);
    image.push(&registry.base(), REPO, TAG, None);
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());

    // No docker config at all.
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms"]), b"").assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());
    // Kept byte for byte, so index.json names the Docker list by its own media type (the
    // registry's digests stay valid). skopeo 1.9 skips such entries; containerd reads them.
    assert_eq!(index_entries(&out_dir)[0]["mediaType"], DOCKER_LIST);
    assert_eq!(index_entries(&out_dir)[0]["digest"], image.index_digest.as_str());

    // By digest, one platform, with a helper that fails: a warning, and the public image pulls.
    let mut env = TestEnv::new();
    let helpers = helper_dir(&mut env);
    helper_script(&helpers, "broken", "echo 'cannot reach the vault'; exit 2");
    docker_config(&mut env, json!({"credHelpers": {registry.host(): "broken"}}));
    let by_digest = format!("{}/{REPO}@{}", registry.host(), image.manifest_digest("linux/arm64"));
    let out_dir = env.path("layout");
    let out = env.latchkey(&pull_args(&by_digest, out_dir.to_str().unwrap(), &["--json"]), b"");
    out.assert_success();
    assert!(out.stderr_str().contains("docker-credential-broken failed"), "{out}");
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/arm64"));
    let entries = index_entries(&out_dir);
    assert_eq!(entries[0]["mediaType"], DOCKER_MANIFEST);
    assert!(entries[0]["annotations"].get("org.opencontainers.image.ref.name").is_none());

    // A digest the registry does not have: a clear error, nothing written.
    let missing = format!("{}/{REPO}@sha256:{}", registry.host(), "0".repeat(64));
    let out = env.latchkey(&pull_args(&missing, env.path("w").to_str().unwrap(), &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("404"), "{out}");
    assert!(check_layout(&env.path("w")).is_empty());
}

#[test]
fn anonymous_token_from_the_realm_for_a_public_repository() {
    // Docker Hub's shape: every request needs a token, and the realm hands out pull tokens to
    // anyone. No credentials configured at all.
    let tokens = TokenServer::issuing(TokenPolicy { anonymous_pull: true, ..Default::default() });
    let image = TestImage::build(6, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    let registry = token_registry(&tokens.url, &image);
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "one anonymous token for the scope: {requests:#?}");
    assert_eq!((requests[0].method.as_str(), requests[0].authorization.as_deref()), ("GET", None));
    assert_eq!(summary(&out)["http"]["unauthorized"], 1);
}

#[test]
fn an_index_of_indexes_is_walked_to_the_platform_and_kept_whole_with_all_platforms() {
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(7, &["linux/amd64", "linux/arm64"], 8 * 1024, false);
    image.push(&registry.base(), REPO, "inner", None);
    // outer -> middle -> the image's index -> manifests.
    let middle = index_of(&[(OCI_INDEX, &image.index_digest, image.index.len())]);
    let middle_digest = push_manifest(&registry.base(), REPO, "middle", OCI_INDEX, &middle, None);
    let outer = index_of(&[(OCI_INDEX, &middle_digest, middle.len())]);
    let outer_digest = push_manifest(&registry.base(), REPO, TAG, OCI_INDEX, &outer, None);
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let env = TestEnv::new();

    // One platform: found two levels down, and only it is written and named.
    let out_dir = env.path("arm64");
    env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--platform", "linux/arm64"]), b"")
        .assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/arm64"));
    assert_eq!(index_entries(&out_dir)[0]["digest"], image.manifest_digest("linux/arm64").as_str());

    // Every platform: all three indexes and everything below them; index.json names the outer one.
    let out_dir = env.path("all");
    let out = env.latchkey(&pull_args(&image_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    out.assert_success();
    let mut expected = image.all_digests();
    expected.extend([middle_digest.clone(), outer_digest.clone()]);
    expected.sort();
    assert_eq!(check_layout(&out_dir), expected);
    assert_eq!(index_entries(&out_dir)[0]["digest"], outer_digest.as_str());
    assert_eq!(summary(&out)["manifests"][0]["digest"], outer_digest.as_str(), "{out}");

    // A platform nowhere in the tree names what there is.
    let out =
        env.latchkey(&pull_args(&image_ref, env.path("none").to_str().unwrap(), &["--platform", "linux/s390x"]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("it has: linux/amd64, linux/arm64"), "{out}");

    // Five levels is past the bound: a clear error, nothing written.
    let mut top = (outer_digest, outer.len());
    for level in 0..2 {
        let wrapper = index_of(&[(OCI_INDEX, &top.0, top.1)]);
        top =
            (push_manifest(&registry.base(), REPO, &format!("wrap{level}"), OCI_INDEX, &wrapper, None), wrapper.len());
    }
    // Four levels (wrap0 -> outer -> middle -> the image's index) is the most that is walked.
    let four = format!("{}/{REPO}:wrap0", registry.host());
    env.latchkey(&pull_args(&four, env.path("four").to_str().unwrap(), &["--platform", "linux/amd64"]), b"")
        .assert_success();
    let deep_ref = format!("{}/{REPO}:wrap1", registry.host());
    let out = env.latchkey(&pull_args(&deep_ref, env.path("deep").to_str().unwrap(), &["--all-platforms"]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("nested more than 4 deep"), "{out}");
    assert!(check_layout(&env.path("deep")).is_empty());

    // For one platform, an entry whose platform is known and not wanted is not followed (here
    // it would lead past the depth bound), and the first match in index order wins: the arm64
    // manifest two levels down, before a direct arm64 entry of another image.
    let other = TestImage::build(8, &["linux/arm64"], 8 * 1024, false);
    other.push(&registry.base(), REPO, "other", None);
    let entry = |t: &str, d: &str, size: usize, platform: Option<&str>| {
        let mut v = json!({"mediaType": t, "digest": d, "size": size});
        if let Some((os, arch)) = platform.and_then(|p| p.split_once('/')) {
            v["platform"] = json!({"os": os, "architecture": arch});
        }
        v
    };
    let (other_digest, other_len) = (other.manifest_digest("linux/arm64"), other.manifests[0].2.len());
    let mixed = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        entry(OCI_INDEX, &top.0, top.1, Some("linux/s390x")),
        entry(OCI_INDEX, &middle_digest, middle.len(), None),
        entry(OCI_MANIFEST, &other_digest, other_len, Some("linux/arm64")),
    ]})
    .to_string();
    push_manifest(&registry.base(), REPO, "mixed", OCI_INDEX, mixed.as_bytes(), None);
    let mixed_ref = format!("{}/{REPO}:mixed", registry.host());
    let out_dir = env.path("mixed");
    env.latchkey(&pull_args(&mixed_ref, out_dir.to_str().unwrap(), &["--platform", "linux/arm64"]), b"")
        .assert_success();
    assert_eq!(index_entries(&out_dir)[0]["digest"], image.manifest_digest("linux/arm64").as_str());

    // Named twice (directly and through another index): fetched and kept once.
    let twice = index_of(&[
        (OCI_INDEX, &image.index_digest, image.index.len()),
        (OCI_INDEX, &middle_digest, middle.len()),
        (OCI_INDEX, &image.index_digest, image.index.len()),
    ]);
    let twice_digest = push_manifest(&registry.base(), REPO, "twice", OCI_INDEX, &twice, None);
    let before = registry.access_log().len();
    let out_dir = env.path("twice");
    let twice_ref = format!("{}/{REPO}:twice", registry.host());
    let out = env.latchkey(&pull_args(&twice_ref, out_dir.to_str().unwrap(), &["--all-platforms", "--json"]), b"");
    out.assert_success();
    let listed: Vec<String> = summary(&out)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec![twice_digest.clone(), middle_digest.clone(), image.index_digest.clone()];
    expected.extend(image.manifests.iter().map(|(_, d, _)| d.clone()));
    let (mut sorted, mut want) = (listed.clone(), expected);
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "each index and manifest once: {listed:?}");
    let inner_gets = registry.access_log()[before..]
        .iter()
        .filter(|a| a.method == "GET" && a.path.ends_with(&format!("/manifests/{}", image.index_digest)))
        .count();
    assert_eq!(inner_gets, 1, "the twice-named index is fetched once");

    // An empty index is legal: --all-platforms pulls it as it is; one platform is no match.
    let empty = index_of(&[]);
    let empty_digest = push_manifest(&registry.base(), REPO, "empty", OCI_INDEX, &empty, None);
    let empty_ref = format!("{}/{REPO}:empty", registry.host());
    let out_dir = env.path("empty");
    env.latchkey(&pull_args(&empty_ref, out_dir.to_str().unwrap(), &["--all-platforms"]), b"").assert_success();
    assert_eq!(check_layout(&out_dir), [empty_digest]);
    let out = env.latchkey(&pull_args(&empty_ref, env.path("empty1").to_str().unwrap(), &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("has no manifest for linux/amd64"), "{out}");
}

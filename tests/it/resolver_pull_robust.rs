//! `pull` that is bounded, resumable and verified (issue 9, class 5): a pull killed at random
//! points and run again into the same directory, a wrong tag then the right one, a damaged blob
//! already in the layout, `blobs` symlinks, a server trickling bytes, an index of many large
//! entries measured for memory. The real Distribution where it can play the part, a hostile
//! server ([`Hostile`]) where it cannot. Every wait is bounded; no assertion is about timing.

use crate::common;
use crate::resolver_support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{TestEnv, require};
use resolver_support::*;
use serde_json::json;

const REPO: &str = "multi/app";
const TAG: &str = "v1";

fn pull_args<'a>(image: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pull", image, "--output", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    if !extra.iter().any(|a| a.contains("platform")) {
        args.extend_from_slice(&["--platform", "linux/amd64"]);
    }
    args
}

fn summary(out: &common::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{out}"))
}

/// What any pull, however it ended, may leave: only complete blobs that hash to their names,
/// an `index.json` naming only blobs that are there, and nothing but latchkey's temp directory
/// beside them.
fn assert_never_partial(dir: &Path) {
    if !dir.exists() {
        return;
    }
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            ["blobs", "index.json", "oci-layout", ".latchkey-partial"].contains(&name.as_str()),
            "unexpected file in the layout: {name}"
        );
    }
    let blobs = dir.join("blobs/sha256");
    if blobs.exists() {
        for entry in fs::read_dir(&blobs).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert_eq!(common::sha256_hex(&fs::read(entry.path()).unwrap()), name, "partial file in blobs/");
        }
    }
    if dir.join("index.json").exists() {
        for entry in index_entries(dir) {
            let digest = entry["digest"].as_str().unwrap();
            assert!(dir.join("blobs/sha256").join(&digest[7..]).is_file(), "index.json names a missing {digest}");
        }
    }
}

/// skopeo reads the layout: inspect finds `digest`, and a copy of every platform succeeds.
fn skopeo_accepts(env: &TestEnv, dir: &Path, digest: &str) {
    let inspect = skopeo(env, &["inspect", &format!("oci:{}:{TAG}", dir.display())]);
    inspect.assert_success();
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest, "{inspect}");
    let copy = env.path("skopeo-copy");
    let _ = fs::remove_dir_all(&copy);
    skopeo(
        env,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-oci-accept-uncompressed-layers",
            &format!("oci:{}:{TAG}", dir.display()),
            &format!("oci:{}:{TAG}", copy.display()),
        ],
    )
    .assert_success();
}

#[test]
fn a_pull_killed_at_random_points_is_taken_up_by_the_next_one() {
    require(common::SKOPEO);
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(21, &["linux/amd64", "linux/arm64"], 1 << 20, false);
    image.push(&registry.base(), REPO, TAG, None);
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let direct = format!("{}/{REPO}:{TAG}", registry.host());

    // Killed for sure in the middle of a blob: a proxy holds one layer halfway.
    let proxy = FaultProxy::start(registry.port, Fault::Stall(image.a_layer("linux/amd64")));
    let proxied = format!("{}/{REPO}:{TAG}", proxy.host());
    let mut child = spawn_latchkey(&env, &pull_args(&proxied, &out_dir, &["--all-platforms"]), "stalled");
    common::wait_for("the pull to reach the stalled blob", Duration::from_secs(60), || {
        proxy.stalled.load(std::sync::atomic::Ordering::SeqCst).then_some(())
    });
    // While it runs, the directory is its own: a second pull into it is refused.
    let second = env.latchkey(&pull_args(&direct, &out_dir, &[]), b"");
    assert_eq!(second.code, Some(1), "{second}");
    assert!(second.stderr_str().contains("another pull is writing into"), "{second}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(out_dir.join(".latchkey-partial").is_dir(), "kill -9 leaves its temp files behind");
    assert!(out_dir.join("oci-layout").is_file(), "oci-layout is written first");
    assert_never_partial(&out_dir);
    drop(proxy);

    // Then killed after seeded pseudo-random delays (wherever they land: before the first
    // request, mid-blob, between blobs, after the end).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(x % 400);
        let mut child =
            spawn_latchkey(&env, &pull_args(&direct, &out_dir, &["--all-platforms"]), &format!("round{round}"));
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_never_partial(&out_dir);
    }

    // Run to the end into the same directory: it succeeds, leaves no temp data, skopeo reads it.
    let out = env.latchkey(&pull_args(&direct, &out_dir, &["--all-platforms", "--json"]), b"");
    out.assert_success();
    assert_eq!(check_layout(&out_dir), image.all_digests());
    assert_eq!(summary(&out)["digest"], image.index_digest.as_str());
    skopeo_accepts(&env, &out_dir, &image.index_digest);
}

#[test]
fn a_failed_pull_leaves_a_directory_the_next_pull_takes_up() {
    require(common::SKOPEO);
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(22, &["linux/amd64", "linux/arm64"], 64 * 1024, false);
    image.push(&registry.base(), REPO, TAG, None);
    let env = TestEnv::new();
    let out_dir = env.path("layout");

    // A wrong tag: an error, and a directory that is an (empty) layout already.
    let wrong = format!("{}/{REPO}:nope", registry.host());
    let out = env.latchkey(&pull_args(&wrong, &out_dir, &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("404"), "{out}");
    assert!(check_layout(&out_dir).is_empty());
    assert!(out_dir.join("oci-layout").is_file());

    // The right tag into the same directory.
    let right = format!("{}/{REPO}:{TAG}", registry.host());
    env.latchkey(&pull_args(&right, &out_dir, &["--platform", "linux/arm64"]), b"").assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/arm64"));
    skopeo_accepts(&env, &out_dir, &image.manifest_digest("linux/arm64"));

    // What kill -9 left (temp files, here and from older versions) is cleaned by the next pull.
    fs::create_dir_all(out_dir.join(".latchkey-partial")).unwrap();
    fs::write(out_dir.join(".latchkey-partial/blob-stale"), b"half a blob").unwrap();
    fs::create_dir_all(out_dir.join(".latchkey-tmp-Ab12Cd")).unwrap();
    fs::write(out_dir.join(".latchkey-tmp-Ab12Cd/.tmpXYZ"), b"half a blob").unwrap();
    env.latchkey(&pull_args(&right, &out_dir, &["--platform", "linux/arm64"]), b"").assert_success();
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/arm64"), "temp data cleaned");

    // A directory an older latchkey left after a failure (blobs/sha256 and a temp directory, no
    // oci-layout) is taken up too, its blob checked and reused.
    let old = env.path("old");
    let layer = image.a_layer("linux/amd64");
    fs::create_dir_all(old.join("blobs/sha256")).unwrap();
    fs::write(old.join("blobs/sha256").join(&layer[7..]), &image.blobs[&layer]).unwrap();
    fs::create_dir_all(old.join(".latchkey-tmp-Zz99Yy")).unwrap();
    let out = env.latchkey(&pull_args(&right, &old, &["--json"]), b"");
    out.assert_success();
    assert_eq!(check_layout(&old), image.platform_digests("linux/amd64"));
    assert_eq!(summary(&out)["blobs_present"], 1);

    // Anything else in a directory without oci-layout is still not written into.
    let foreign = env.path("foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let out = env.latchkey(&pull_args(&right, &foreign, &[]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("neither empty nor an OCI image layout"), "{out}");
    assert_eq!(fs::read_dir(&foreign).unwrap().count(), 1, "nothing was written");
}

#[test]
fn a_damaged_blob_already_in_the_layout_is_fetched_again() {
    require(common::SKOPEO);
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(23, &["linux/amd64"], 64 * 1024, false);
    image.push(&registry.base(), REPO, TAG, None);
    let env = TestEnv::new();
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    env.latchkey(&pull_args(&image_ref, &out_dir, &[]), b"").assert_success();
    let expected = image.platform_digests("linux/amd64");
    assert_eq!(check_layout(&out_dir), expected);

    let path = |digest: &str| out_dir.join("blobs/sha256").join(&digest[7..]);
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifests[0].2).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let layer = image.a_layer("linux/amd64");
    // A layer with one byte flipped (same size), the config replaced by a symlink to a correct
    // copy elsewhere (not latchkey's to trust), the manifest overwritten with same-size junk.
    let mut bytes = fs::read(path(&layer)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(path(&layer), &bytes).unwrap();
    let outside = env.path("config-copy");
    fs::write(&outside, &image.blobs[&config]).unwrap();
    fs::remove_file(path(&config)).unwrap();
    std::os::unix::fs::symlink(&outside, path(&config)).unwrap();
    let manifest_digest = image.manifest_digest("linux/amd64");
    fs::write(path(&manifest_digest), vec![b'x'; image.manifests[0].2.len()]).unwrap();

    let out = env.latchkey(&pull_args(&image_ref, &out_dir, &["--json"]), b"");
    out.assert_success();
    let s = summary(&out);
    assert_eq!((s["blobs_fetched"].as_u64(), s["blobs_present"].as_u64()), (Some(2), Some(1)), "{out}");
    assert_eq!(check_layout(&out_dir), expected, "every blob hashes to its name again");
    assert!(!fs::symlink_metadata(path(&config)).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&outside).unwrap(), image.blobs[&config], "the symlink's target was not touched");
    skopeo_accepts(&env, &out_dir, &manifest_digest);
}

#[test]
fn blobs_that_are_symlinks_are_refused() {
    let registry = Distribution::start(Auth::None);
    let image = TestImage::build(24, &["linux/amd64"], 8 * 1024, false);
    image.push(&registry.base(), REPO, TAG, None);
    let env = TestEnv::new();
    let image_ref = format!("{}/{REPO}:{TAG}", registry.host());
    let elsewhere = env.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();

    for (name, link) in [("a", "blobs"), ("b", "blobs/sha256")] {
        let out_dir = env.path(name);
        fs::create_dir_all(out_dir.join("blobs")).unwrap();
        fs::write(out_dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        if link == "blobs" {
            fs::remove_dir(out_dir.join("blobs")).unwrap();
        }
        std::os::unix::fs::symlink(&elsewhere, out_dir.join(link)).unwrap();
        let out = env.latchkey(&pull_args(&image_ref, &out_dir, &[]), b"");
        out.assert_no_panic();
        assert_eq!(out.code, Some(1), "{out}");
        let err = out.stderr_str();
        assert!(err.contains(&format!("{} is a symlink", out_dir.join(link).display())), "{err}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the symlink");
        assert!(!out_dir.join("index.json").exists());
    }
}

#[test]
fn a_trickling_server_hits_the_stall_deadline_and_a_huge_index_is_refused() {
    let image = TestImage::build(25, &["linux/amd64"], 256 * 1024, false);
    let (_, manifest_digest, manifest) = image.manifests[0].clone();
    let layer = image.a_layer("linux/amd64");
    let entries: Vec<(&str, String, usize)> =
        (0..1025u32).map(|i| (OCI_MANIFEST, digest_of(&i.to_le_bytes()), 100)).collect();
    let refs: Vec<(&str, &str, usize)> = entries.iter().map(|(t, d, s)| (*t, d.as_str(), *s)).collect();
    let wide = index_of(&refs);
    let blobs = image.blobs.clone();
    let trickled = layer.clone();
    let server = Hostile::start(move |path| {
        let Some(rest) = path.strip_prefix(&format!("/v2/{REPO}/")) else { return Answer::not_found() };
        match rest.split_once('/') {
            Some(("manifests", "v1")) => Answer::ok(OCI_MANIFEST, manifest.clone()),
            Some(("manifests", d)) if d == manifest_digest => Answer::ok(OCI_MANIFEST, manifest.clone()),
            Some(("manifests", "wide")) => Answer::ok(OCI_INDEX, wide.clone()),
            Some(("blobs", d)) if d == trickled => Answer {
                status: 200,
                content_type: "application/octet-stream",
                body: Body::Trickle(blobs[d].clone(), Duration::from_millis(50)),
            },
            Some(("blobs", d)) if blobs.contains_key(d) => Answer::ok("application/octet-stream", blobs[d].clone()),
            _ => Answer::not_found(),
        }
    });
    let env = TestEnv::new();

    // One byte every 50 ms keeps every read alive; the stall deadline (2 s here) ends it.
    let out_dir = env.path("layout");
    let image_ref = format!("{}/{REPO}:{TAG}", server.host());
    let out = env.latchkey(&pull_args(&image_ref, &out_dir, &["--stall-timeout", "2"]), b"");
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains("stalled") && err.contains("in 2 s (the stall timeout)"), "{err}");
    assert!(!check_layout(&out_dir).contains(&layer), "no partial blob, no temp data left");

    // An index with more entries than latchkey follows: a clear error, nothing fetched.
    let wide_ref = format!("{}/{REPO}:wide", server.host());
    let out = env.latchkey(&pull_args(&wide_ref, &env.path("wide"), &["--all-platforms"]), b"");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("has 1025 entries; latchkey follows at most 1024 per index"), "{out}");
}

/// The "many large entries" index: `N` nested indexes of about 4 MiB each (a big annotation),
/// each naming one small manifest; all but the last for linux/s390x, the last for linux/amd64.
const N: usize = 40;
const PAD: usize = 4_000_000;

fn nested_index(i: usize, entry: &serde_json::Value) -> Vec<u8> {
    let pad = char::from(b'a' + (i % 26) as u8).to_string().repeat(PAD);
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry],
        "annotations": {"n": i.to_string(), "pad": pad}})
    .to_string()
    .into_bytes()
}

#[test]
fn an_index_of_many_large_entries_is_pulled_in_bounded_memory() {
    let image = TestImage::build(26, &["linux/amd64"], 8 * 1024, false);
    let amd64: serde_json::Value = serde_json::from_slice(&image.manifests[0].2).unwrap();
    // Small manifests (served from memory) and the nested indexes' entries (generated again
    // for each request, so the test itself holds none of the 4 MiB bodies).
    let mut manifests: HashMap<String, Vec<u8>> = HashMap::new();
    let mut entries = Vec::new();
    for i in 0..N {
        let (bytes, platform) = if i + 1 < N {
            let mut m = amd64.clone();
            m["annotations"] = json!({"n": i.to_string()});
            (m.to_string().into_bytes(), json!({"os": "linux", "architecture": "s390x"}))
        } else {
            (image.manifests[0].2.clone(), json!({"os": "linux", "architecture": "amd64"}))
        };
        let digest = digest_of(&bytes);
        entries.push(json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len(), "platform": platform}));
        manifests.insert(digest, bytes);
    }
    let mut nested: HashMap<String, usize> = HashMap::new();
    let mut top = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let bytes = nested_index(i, entry);
        let digest = digest_of(&bytes);
        top.push((OCI_INDEX, digest.clone(), bytes.len()));
        nested.insert(digest, i);
    }
    let refs: Vec<(&str, &str, usize)> = top.iter().map(|(t, d, s)| (*t, d.as_str(), *s)).collect();
    let top = index_of(&refs);
    let top_digest = digest_of(&top);
    let blobs = image.blobs.clone();
    let server = Hostile::start(move |path| {
        let Some(rest) = path.strip_prefix(&format!("/v2/{REPO}/")) else { return Answer::not_found() };
        match rest.split_once('/') {
            Some(("manifests", "v1")) => Answer::ok(OCI_INDEX, top.clone()),
            Some(("manifests", d)) if nested.contains_key(d) => {
                Answer::ok(OCI_INDEX, nested_index(nested[d], &entries[nested[d]]))
            }
            Some(("manifests", d)) if manifests.contains_key(d) => Answer::ok(OCI_MANIFEST, manifests[d].clone()),
            Some(("blobs", d)) if blobs.contains_key(d) => Answer::ok("application/octet-stream", blobs[d].clone()),
            _ => Answer::not_found(),
        }
    });
    let env = TestEnv::new();
    let image_ref = format!("{}/{REPO}:{TAG}", server.host());
    // The old code kept every index and manifest until the end: about 4 MiB per entry, over
    // 160 MiB here. Now one body at a time is in memory.
    const BOUND_KIB: u64 = 64 * 1024;

    // One platform: found in the last nested index; nothing on the way is kept.
    let out_dir = env.path("one");
    let args = pull_args(&image_ref, &out_dir, &["--platform", "linux/amd64"]);
    let (code, one_kib) = max_rss_of_latchkey(&env, &args, "one", Duration::from_secs(120));
    let stderr = fs::read_to_string(env.path("one.stderr")).unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(check_layout(&out_dir), image.platform_digests("linux/amd64"));

    // Every platform: all of it is written to the layout, still one body in memory at a time.
    let out_dir = env.path("all");
    let args = pull_args(&image_ref, &out_dir, &["--all-platforms"]);
    let (code, all_kib) = max_rss_of_latchkey(&env, &args, "all", Duration::from_secs(120));
    let stderr = fs::read_to_string(env.path("all.stderr")).unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let written = check_layout(&out_dir);
    assert_eq!(written.len(), 1 + N + N + image.blobs.len(), "top, nested indexes, manifests, blobs");
    assert_eq!(index_entries(&out_dir)[0]["digest"], top_digest.as_str());

    eprintln!("max RSS: one platform {one_kib} KiB, all platforms {all_kib} KiB");
    assert!(one_kib < BOUND_KIB, "one platform used {one_kib} KiB");
    assert!(all_kib < BOUND_KIB, "all platforms used {all_kib} KiB");
}

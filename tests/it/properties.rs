//! Property tests for every parser that reads what other programs and servers send:
//! protocol stdin, server URLs, JWTs, `WWW-Authenticate` challenges, the latchkey config and the
//! OCI/Docker manifests and indexes `pull` reads, and the numbers servers send (`expires_in`,
//! `interval`, `Retry-After`, JWT dates, descriptor sizes).
//! (docker config editing has its own, in `src/docker_config/edit.rs`, beside the editor.)
//! Each parser must never panic on arbitrary input and must round-trip what it accepts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey::config::Config;
use latchkey_jwt as jwt;
use latchkey_protocol::challenge::parse_challenge;
use latchkey_protocol::helper::{self as protocol, HelperError};
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_resolver::client::{Challenge, parse_challenge as answerable_challenge};
use proptest::prelude::*;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// Host names as clients send them: names, IPv4, IPv6 in brackets, ports, any case.
fn host() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z0-9][a-zA-Z0-9-]{0,12}(\\.[a-zA-Z0-9-]{1,8}){0,3}";
    let ipv6 = "\\[[0-9a-f:]{2,20}\\]";
    (prop_oneof![name, ipv6], proptest::option::of(1u16..)).prop_map(|(h, port)| match port {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

/// A server URL spelling of `host`: bare, with scheme, path, whitespace.
fn spelling(host: String) -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("https://"), Just("http://"), Just("HTTPS://")],
        prop_oneof![Just(""), Just("/"), Just("/v2/"), Just("/v1/"), Just("/org/app?x=1#f")],
        prop_oneof![Just(""), Just("\n"), Just(" \t")],
    )
        .prop_map(move |(scheme, path, ws)| format!("{ws}{scheme}{host}{path}{ws}"))
}

proptest! {
    #![proptest_config(cases(2000))]

    // -----------------------------------------------------------------------------------
    // protocol stdin

    #[test]
    fn store_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = protocol::parse_store_input(&input);
    }

    #[test]
    fn store_input_never_panics_on_json_like_text(input in "[\\{\\}\\[\\]\":,a-zA-Z0-9 \\\\nul]{0,80}") {
        let _ = protocol::parse_store_input(input.as_bytes());
    }

    #[test]
    fn what_get_prints_store_reads_back(
        server_url in "\\PC{1,40}",
        username in "\\PC{1,40}",
        secret in "\\PC{0,80}",
        trailing in prop_oneof![Just(""), Just("\n"), Just("garbage")],
    ) {
        let wire = protocol::encode_credentials(&server_url, &username, &secret);
        let parsed = protocol::parse_store_input(format!("{}{trailing}", wire.trim_end()).as_bytes()).unwrap();
        prop_assert_eq!(parsed.server_url, server_url);
        prop_assert_eq!(parsed.username, username);
        prop_assert_eq!(parsed.secret.expose(), &secret);
    }

    #[test]
    fn store_field_names_match_case_insensitively(
        names in (prop_oneof![Just("ServerURL"), Just("serverurl"), Just("SERVERURL"), Just("serverUrl")],
                  prop_oneof![Just("Username"), Just("username"), Just("USERNAME")],
                  prop_oneof![Just("Secret"), Just("secret"), Just("SeCrEt")]),
        url in "[a-z]{1,10}\\.io",
    ) {
        let json = serde_json::json!({names.0: url, names.1: "u", names.2: "s", "Extra": [1, 2]});
        let parsed = protocol::parse_store_input(json.to_string().as_bytes()).unwrap();
        prop_assert_eq!(parsed.server_url, url);
        prop_assert_eq!(parsed.username, "u");
    }

    // -----------------------------------------------------------------------------------
    // server URL normalisation

    #[test]
    fn server_url_parse_never_panics(input in "\\PC{0,64}") {
        let _ = RegistryKey::parse(&input);
    }

    #[test]
    fn server_url_parse_never_panics_on_bytes(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = RegistryKey::parse(&String::from_utf8_lossy(&input));
    }

    #[test]
    fn server_url_normalisation_is_idempotent(input in prop_oneof!["\\PC{0,40}", host().prop_flat_map(spelling)]) {
        if let Ok(key) = RegistryKey::parse_host(&input) {
            let again = RegistryKey::parse_host(key.as_str()).expect("an accepted key parses again");
            prop_assert_eq!(&again, &key);
            prop_assert_eq!(again.as_str(), key.as_str());
            prop_assert_eq!(key.as_str(), key.as_str().to_ascii_lowercase());
            prop_assert!(!key.as_str().contains(['/', '@', ' ']), "{:?}", key);
        }
        // A server URL keeps a path that is more than the API's (Docker Hub's token entries):
        // the host part obeys the same rules, and the key parses back to itself.
        if let Ok(key) = RegistryKey::parse(&input) {
            let again = RegistryKey::parse(key.as_str()).expect("an accepted key parses again");
            prop_assert_eq!(&again, &key);
            prop_assert_eq!(key.host(), key.host().to_ascii_lowercase());
            prop_assert!(!key.host().contains(['/', '@', ' ']), "{:?}", key);
            prop_assert!(!key.as_str().contains(char::is_whitespace), "{:?}", key);
            let host_only = RegistryKey::parse_host(&input).expect("a server URL's host parses alone");
            prop_assert_eq!(host_only.as_str(), key.host());
        }
    }

    #[test]
    fn every_spelling_of_a_host_is_one_key(h in host(), a in 0usize..3, b in 0usize..3) {
        let spell = |i: usize| match i {
            0 => h.clone(),
            1 => format!("https://{h}/v2/"),
            _ => format!(" http://{}/\n", h.to_ascii_uppercase()),
        };
        let (x, y) = (RegistryKey::parse(&spell(a)), RegistryKey::parse(&spell(b)));
        prop_assert!(x.is_ok(), "{:?} refused", spell(a));
        prop_assert_eq!(x, y);
    }

    #[test]
    fn userinfo_is_refused_and_never_echoed(user in "[a-z]{1,8}", pw in "[A-Za-z0-9]{8,16}", h in host()) {
        let url = format!("https://{user}:{pw}@{h}/v2/");
        let err = RegistryKey::parse(&url).unwrap_err();
        prop_assert!(!err.to_string().contains(&pw), "{}", err);
    }

    // -----------------------------------------------------------------------------------
    // JWT inspection

    #[test]
    fn inspect_never_panics(input in "\\PC{0,200}") {
        let _ = jwt::inspect(&input);
    }

    #[test]
    fn inspect_never_panics_on_base64url_segments(
        segments in proptest::collection::vec("[A-Za-z0-9_=-]{0,60}", 0..5),
    ) {
        let _ = jwt::inspect(&segments.join("."));
    }

    #[test]
    fn inspect_never_panics_on_encoded_json(
        header in json_value(),
        claims in json_value(),
        sig in "[A-Za-z0-9_-]{0,20}",
    ) {
        let enc = |v: &serde_json::Value| base64url(v.to_string().as_bytes());
        let token = format!("{}.{}.{sig}", enc(&header), enc(&claims));
        if let Ok(c) = jwt::inspect(&token) {
            prop_assert!(!c.algorithm.is_empty());
            let _ = jwt::check_usable(&c, SystemTime::now(), Duration::from_secs(60), Some("aud"));
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn mint_then_inspect_round_trips(
        issuer in "\\PC{1,30}",
        subject in "\\PC{0,30}",
        audience in "\\PC{1,30}",
        lifetime in 1u64..100_000,
        key in 0usize..4,
        now in 1_000_000_000u64..4_000_000_000,
    ) {
        let (algorithm, pem) = [
            (jwt::Algorithm::ES256, include_str!("../support_registry/keys/p256_pkcs8.pem")),
            (jwt::Algorithm::ES384, include_str!("../support_registry/keys/p384.pem")),
            (jwt::Algorithm::RS256, include_str!("../support_registry/keys/rsa_pkcs8.pem")),
            (jwt::Algorithm::EdDSA, include_str!("../support_registry/keys/ed25519.pem")),
        ][key];
        let spec = jwt::MintSpec {
            algorithm,
            private_key_pem: Secret::from(pem),
            key_id: jwt::KeyIdHeader::Libtrust,
            issuer: issuer.clone(),
            subject: subject.clone(),
            audience: audience.clone(),
            lifetime: Duration::from_secs(lifetime),
            not_before_skew: Duration::from_secs(30),
            extra_claims: Default::default(),
        };
        let now = UNIX_EPOCH + Duration::from_secs(now);
        let token = jwt::mint(&spec, now).unwrap();
        let claims = jwt::inspect(token.expose()).unwrap();
        prop_assert_eq!(claims.algorithm, algorithm.as_str());
        prop_assert_eq!(claims.issuer.as_deref(), Some(issuer.as_str()));
        prop_assert_eq!(claims.subject.as_deref(), Some(subject.as_str()));
        prop_assert_eq!(claims.audience, vec![audience.clone()]);
        prop_assert!(!claims.audience_is_list);
        let t = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        prop_assert_eq!(claims.issued_at, Some(t));
        prop_assert_eq!(claims.expires_at, Some(t + lifetime));
        prop_assert_eq!(claims.not_before, Some(t - 30));
        prop_assert!(claims.key_id.is_some());
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    // -----------------------------------------------------------------------------------
    // WWW-Authenticate

    #[test]
    fn challenge_parse_never_panics(input in "\\PC{0,120}") {
        let _ = parse_challenge(&input);
    }

    #[test]
    fn challenge_parse_never_panics_on_quotes_and_escapes(input in "[a-zA-Z =,\"\\\\]{0,60}") {
        let _ = parse_challenge(&input);
    }

    #[test]
    fn the_registry_client_answers_what_the_parser_reads(
        scheme in prop_oneof![Just("Basic"), Just("bearer"), Just("Bearer"), Just("Negotiate"), Just("")],
        params in proptest::collection::vec(
            (prop_oneof![Just("realm"), Just("Service"), Just("REALM"), Just("error"), Just("x")], "[a-z:/ ,=\"\\\\]{0,10}"),
            0..4,
        ),
    ) {
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let input = format!("{scheme} {}", rendered.join(","));
        // The resolver's client and the device session check read the same parse: a `basic`
        // scheme, or a `bearer` one with its realm (and service).
        let expected = parse_challenge(&input).and_then(|(scheme, params)| {
            if scheme.eq_ignore_ascii_case("basic") {
                Some(Challenge::Basic)
            } else if scheme.eq_ignore_ascii_case("bearer") {
                Some(Challenge::Bearer { realm: params.get("realm")?.clone(), service: params.get("service").cloned() })
            } else {
                None
            }
        });
        prop_assert_eq!(answerable_challenge(&[input.as_str()]), expected);
    }

    #[test]
    fn challenge_round_trips(
        scheme in "[A-Za-z][A-Za-z0-9_-]{0,10}",
        params in proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9_-]{0,10}", "\\PC{0,30}", 0..5),
        quote_all in any::<bool>(),
        sep in prop_oneof![Just(","), Just(", "), Just(" , ")],
    ) {
        // Lower-case names (the parser folds them); distinct after folding.
        let params: BTreeMap<String, String> = params.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let rendered: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                let token_ok = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/:".contains(c));
                if quote_all || !token_ok {
                    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let header = format!("{scheme} {}", rendered.join(sep));
        let (s, p) = parse_challenge(&header).expect("a challenge with a scheme parses");
        prop_assert_eq!(s, scheme);
        // Values are compared trimmed of the whitespace the header format cannot keep.
        let want: BTreeMap<String, String> = params.into_iter().collect();
        prop_assert_eq!(p, want, "header {:?}", header);
    }

    // -----------------------------------------------------------------------------------
    // latchkey config

    #[test]
    fn config_parse_never_panics(text in "\\PC{0,200}") {
        let _ = Config::parse(Path::new("config.toml"), &text);
    }

    #[test]
    fn config_parse_never_panics_on_toml_like_text(text in toml_like()) {
        let _ = Config::parse(Path::new("config.toml"), &text);
    }

    #[test]
    fn config_errors_name_the_file(text in toml_like()) {
        if let Err(e) = Config::parse(Path::new("/etc/lk.toml"), &text) {
            prop_assert!(e.0.contains("/etc/lk.toml"), "{}", e.0);
        }
    }

    #[test]
    fn config_registry_keys_are_normalised(h in host(), mode in prop_oneof![Just("stored"), Just("device")]) {
        let text = format!("[registries.\"https://{h}/v2/\"]\nmode = \"{mode}\"\n");
        match Config::parse(Path::new("c.toml"), &text) {
            Ok(c) => {
                let key = RegistryKey::parse(&h).unwrap();
                prop_assert!(c.registries.contains_key(&key), "{:?}", c.registries.keys().collect::<Vec<_>>());
            }
            // Device mode validates its endpoints; a host it refuses is an error, not a panic.
            Err(e) => prop_assert!(mode == "device", "{}", e.0),
        }
    }
}

#[test]
fn config_parse_handles_every_mode_and_source() {
    let modes = ["stored", "static-bearer", "device", "bogus"];
    let sources = [
        "source = \"env\"\nvar = \"X\"",
        "source = \"file\"\npath = \"/x\"",
        "source = \"command\"\nargv = []",
        "source = \"http\"\nurl = \"not a url\"",
        "source = \"exchange\"\nurl = \"https://sts\"\nsubject = { source = \"exchange\", url = \"x\", subject = { source = \"env\", var = \"Y\" } }",
        "source = \"mint\"\nalgorithm = \"HS256\"\nprivate-key-file = \"/k\"\nissuer = \"\"\nsubject = \"\"\naudience = \"\"",
        "source = \"github-actions\"",
        "source = \"gitlab\"",
    ];
    for mode in modes {
        for source in sources {
            let text = format!("[registries.\"r.io\"]\nmode = \"{mode}\"\n[registries.\"r.io\".identity]\n{source}\n");
            let _ = Config::parse(Path::new("c.toml"), &text);
        }
    }
}

fn toml_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("store".to_owned()),
        Just("mode".to_owned()),
        Just("source".to_owned()),
        Just("url".to_owned()),
        Just("var".to_owned()),
        Just("argv".to_owned()),
        Just("timeout-secs".to_owned()),
        Just("min-validity-secs".to_owned()),
        Just("realm".to_owned()),
        Just("login-wait-secs".to_owned()),
        "[a-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just("\"auto\"".to_owned()),
        Just("\"file\"".to_owned()),
        Just("\"static-bearer\"".to_owned()),
        Just("\"device\"".to_owned()),
        Just("\"env\"".to_owned()),
        Just("\"http\"".to_owned()),
        Just("\"https://x.test/t\"".to_owned()),
        Just("[\"/bin/true\"]".to_owned()),
        Just("{ source = \"env\", var = \"A\" }".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"\\PC{0,12}\"",
        Just("true".to_owned()),
    ];
    let header = prop_oneof![
        Just("[registries.\"r.io\"]".to_owned()),
        Just("[registries.\"r.io\".identity]".to_owned()),
        Just("[registries.\"r.io\".device]".to_owned()),
        Just("[registries.\"https://R.io:5000/v2/\"]".to_owned()),
        "\\[registries\\.\"\\PC{0,10}\"\\]",
    ];
    let line = prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => header,
    ];
    proptest::collection::vec(line, 0..10).prop_map(|lines| lines.join("\n"))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("none")),
        Just(serde_json::Value::from("ES256")),
    ];
    let key = prop_oneof![
        Just("alg".to_owned()),
        Just("aud".to_owned()),
        Just("exp".to_owned()),
        Just("nbf".to_owned()),
        Just("iat".to_owned()),
        Just("kid".to_owned()),
        Just("x5c".to_owned()),
        Just("iss".to_owned()),
        Just("sub".to_owned()),
        "[a-z]{1,4}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn base64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[test]
fn helper_error_not_found_is_the_exact_string() {
    assert_eq!(HelperError::NotFound.to_string(), protocol::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------
// OCI/Docker manifests and indexes, as `pull` reads what a registry sends

/// Digests as registries (and hostile ones) write them.
fn digest_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
        "[a-z0-9]{1,8}:[0-9a-zA-Z./_=-]{0,70}",
        "\\PC{0,20}",
    ]
}

/// A descriptor, sometimes with a platform.
fn descriptor() -> impl Strategy<Value = serde_json::Value> {
    let media_type = prop_oneof![
        Just("application/vnd.oci.image.manifest.v1+json".to_owned()),
        Just("application/vnd.oci.image.index.v1+json".to_owned()),
        Just("application/vnd.docker.distribution.manifest.v2+json".to_owned()),
        "[a-z./+-]{0,30}",
    ];
    let platform = proptest::option::of(("[a-z0-9/]{0,8}", "[a-z0-9/]{0,8}", proptest::option::of("[a-z0-9/]{0,4}")));
    let size = prop_oneof![0u64..(8 << 20), any::<u64>(), Just(u64::MAX), Just(1u64 << 63)];
    (media_type, digest_like(), size, platform).prop_map(|(t, d, size, platform)| {
        let mut v = serde_json::json!({"mediaType": t, "digest": d, "size": size});
        if let Some((os, arch, variant)) = platform {
            v["platform"] = serde_json::json!({"os": os, "architecture": arch, "variant": variant});
        }
        v
    })
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn manifest_reading_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        header in proptest::option::of("[a-z./+-]{0,40}"),
    ) {
        latchkey_resolver::pull::check_manifest_invariants(&bytes, header.as_deref());
    }

    #[test]
    fn manifest_reading_keeps_its_invariants_on_index_and_manifest_shapes(
        descriptors in proptest::collection::vec(descriptor(), 0..5),
        index in any::<bool>(),
        media_type in proptest::option::of(prop_oneof![
            Just("application/vnd.oci.image.index.v1+json"),
            Just("application/vnd.docker.distribution.manifest.list.v2+json"),
            Just("application/vnd.oci.image.manifest.v1+json"),
            Just("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        ]),
    ) {
        let mut doc = if index {
            serde_json::json!({"schemaVersion": 2, "manifests": descriptors})
        } else {
            let mut all = descriptors.into_iter();
            let config = all.next().unwrap_or(serde_json::json!({}));
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": all.collect::<Vec<_>>()})
        };
        if let Some(t) = media_type {
            doc["mediaType"] = t.into();
        }
        latchkey_resolver::pull::check_manifest_invariants(doc.to_string().as_bytes(), None);
    }
}

// ---------------------------------------------------------------------------------------
// Numbers from servers (latchkey_protocol::server_numbers, JWT dates): whatever a server
// sends, no panic, and what comes out is inside its bounds.

/// A JSON value a hostile server may put where a number of seconds belongs.
fn server_number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        (-1000i64..100_000).prop_map(serde_json::Value::from),
        "-?[0-9]{1,30}(\\.[0-9]{0,3})?".prop_map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)),
        "-?[0-9]{1,30}".prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!(true)),
    ]
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn token_and_device_numbers_are_clamped(value in server_number(), absent in any::<bool>(), login in 0u64..100_000) {
        use latchkey_protocol::server_numbers as n;
        let value = (!absent).then_some(&value);
        let lifetime = n::token_lifetime(value);
        prop_assert!((n::DEFAULT_TOKEN_LIFETIME..=n::MAX_TOKEN_LIFETIME).contains(&lifetime));
        let login = Duration::from_secs(login);
        let code = n::device_code_lifetime(value, login);
        prop_assert!(code >= Duration::from_secs(1) && code <= login.max(Duration::from_secs(1)));
        let interval = n::poll_interval(value);
        prop_assert!((n::MIN_POLL_INTERVAL..=n::MAX_POLL_INTERVAL).contains(&interval));
        let slowed = n::slowed_down(interval);
        prop_assert!(slowed >= interval && slowed <= n::MAX_POLL_INTERVAL);
        let now = std::time::Instant::now();
        prop_assert!(n::deadline_after(now, code) <= now + n::MAX_DEADLINE);
        // absent, unreadable or <= 0 is the default, as docker does.
        if n::whole_seconds(value.unwrap_or(&serde_json::Value::Null)).is_none_or(|s| s <= 0) {
            prop_assert_eq!(lifetime, n::DEFAULT_TOKEN_LIFETIME);
            prop_assert_eq!(interval, n::DEFAULT_POLL_INTERVAL);
        }
    }

    #[test]
    fn retry_after_is_bounded(header in prop_oneof!["[0-9]{0,40}", "\\PC{0,30}", any::<u64>().prop_map(|n| n.to_string())]) {
        use latchkey_protocol::server_numbers as n;
        if let Some(wait) = n::retry_after(&header) {
            prop_assert!(wait <= n::MAX_RETRY_AFTER);
            prop_assert!(header.trim().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn jwt_dates_that_do_not_fit_are_malformed_never_expired(
        exp in server_number(),
        nbf in proptest::option::of(server_number()),
    ) {
        let mut claims = serde_json::json!({"exp": exp, "aud": "aud"});
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf;
        }
        let token = format!("{}.{}.c2ln", base64url(br#"{"alg":"ES256"}"#), base64url(claims.to_string().as_bytes()));
        match jwt::inspect(&token) {
            Ok(c) => {
                for date in [c.expires_at, c.not_before].into_iter().flatten() {
                    prop_assert!(date <= jwt::MAX_NUMERIC_DATE);
                    prop_assert!(i64::try_from(date).is_ok());
                }
                prop_assert_eq!(c.expires_at_time().is_some(), c.expires_at.is_some());
                let _ = jwt::check_usable(&c, SystemTime::now(), Duration::from_secs(60), Some("aud"));
            }
            Err(e) => prop_assert!(matches!(e, jwt::JwtError::Malformed(_)), "{e}"),
        }
    }
}

#[test]
fn a_jwt_exp_at_or_beyond_2_pow_63_is_refused_not_expired() {
    for exp in ["9223372036854775808", "18446744073709551615", "1e300", "9999999999999999999999"] {
        let claims = format!(r#"{{"exp":{exp},"aud":"aud"}}"#);
        let token = format!("{}.{}.c2ln", base64url(br#"{"alg":"ES256"}"#), base64url(claims.as_bytes()));
        let e = jwt::inspect(&token).unwrap_err();
        assert!(e.to_string().contains("\"exp\" is a date after year 9999"), "{exp}: {e}");
    }
}

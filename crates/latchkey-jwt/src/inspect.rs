//! Inspecting: [`inspect`] decodes a JWT handed to us by a source without verifying its signature,
//! with a strict structure check, into [`Claims`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD;
use serde_json::{Map, Value};

use crate::JwtError;
use crate::time::unix_secs;

/// Tokens longer than this are refused before any decoding (registries cap header sizes anyway;
/// a JWT with a long x5c chain is a few KiB).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// What [`inspect`] read from a JWT (unverified). Times are Unix seconds (JWT NumericDate,
/// fractions dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Header `alg`.
    pub algorithm: String,
    /// Header `kid`, if any.
    pub key_id: Option<String>,
    /// Whether the header carries an `x5c` chain.
    pub has_x5c: bool,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    /// `aud`, whether it was one string or a list.
    pub audience: Vec<String>,
    /// `aud` was a JSON list. Distribution 2.8 rejects such a token even when the list holds its
    /// service name; callers aiming at it may want to warn.
    pub audience_is_list: bool,
    pub expires_at: Option<u64>,
    pub not_before: Option<u64>,
    pub issued_at: Option<u64>,
}

impl Claims {
    /// `exp` as a `SystemTime`, if present.
    pub fn expires_at_time(&self) -> Option<SystemTime> {
        self.expires_at.and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    }

    /// How long until `exp`; `None` without `exp`, zero once expired.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        let now = unix_secs(now).unwrap_or(0);
        self.expires_at.map(|exp| Duration::from_secs(exp.saturating_sub(now)))
    }
}

fn b64url_segment(seg: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    // JWS uses unpadded base64url; correct padding is tolerated, as Go's decoders (Distribution)
    // tolerate it.
    let decoded = if seg.contains('=') {
        let trimmed = seg.trim_end_matches('=');
        if seg.len() - trimmed.len() > 2 || trimmed.contains('=') || !seg.len().is_multiple_of(4) {
            return Err(JwtError::Malformed(format!("the {what} has misplaced '=' padding")));
        }
        data_encoding::BASE64URL.decode(seg.as_bytes())
    } else {
        BASE64URL_NOPAD.decode(seg.as_bytes())
    };
    decoded.map_err(|_| JwtError::Malformed(format!("the {what} is not valid base64url")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, JwtError> {
    // serde_json's messages can quote input, so only the position is reported.
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwtError::Malformed(format!("the {what} is JSON but not an object"))),
        Err(e) => {
            Err(JwtError::Malformed(format!("the {what} is not valid JSON (line {}, column {})", e.line(), e.column())))
        }
    }
}

fn string_claim(map: &Map<String, Value>, name: &str, part: &str) -> Result<Option<String>, JwtError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Malformed(format!("{part} field {name:?} is not a string"))),
    }
}

/// A JWT NumericDate (RFC 7519 §2): a non-negative JSON number of seconds, fractions dropped
/// (the RFC allows them). A date that is negative, not a number, or after year 9999
/// ([`crate::MAX_NUMERIC_DATE`], which also keeps it far below 2^63) makes the token malformed:
/// such a token is refused with a message, never read as "expired" or "valid forever".
fn numeric_date(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, JwtError> {
    let beyond =
        || JwtError::Malformed(format!("claim {name:?} is a date after year 9999 (a JWT NumericDate is Unix seconds)"));
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = if let Some(v) = n.as_u64() {
                v
            } else if n.is_i64() {
                return Err(JwtError::Malformed(format!("claim {name:?} is negative")));
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => {
                        if f >= (crate::MAX_NUMERIC_DATE + 1) as f64 {
                            return Err(beyond());
                        }
                        f.floor() as u64
                    }
                    Some(f) if f.is_finite() => return Err(JwtError::Malformed(format!("claim {name:?} is negative"))),
                    _ => return Err(beyond()),
                }
            };
            if secs > crate::MAX_NUMERIC_DATE { Err(beyond()) } else { Ok(Some(secs)) }
        }
        Some(_) => Err(JwtError::Malformed(format!("claim {name:?} is not a number (JWT NumericDate)"))),
    }
}

/// Decodes a JWS compact JWT WITHOUT verifying its signature, with a strict structure check:
/// three base64url segments, a JSON object header with a string `alg` (not `none`), a JSON object
/// claims set, a non-empty signature. `aud` may be a string or a list of strings.
pub fn inspect(token: &str) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge { len: token.len() });
    }
    if token.is_empty() {
        return Err(JwtError::Malformed("the token is empty".into()));
    }
    if token.len() >= 7 && token.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ") {
        return Err(JwtError::Malformed("the token starts with \"Bearer \"; give the bare JWT".into()));
    }
    if let Some(i) = token.bytes().position(|b| !(b.is_ascii_alphanumeric() || b"-_.=".contains(&b))) {
        let b = token.as_bytes()[i];
        let what = if b.is_ascii_whitespace() {
            "whitespace (trim the token)"
        } else if b == b'+' || b == b'/' {
            "a '+' or '/' (standard base64, not base64url)"
        } else {
            "a character that is not base64url or '.'"
        };
        return Err(JwtError::Malformed(format!("the token contains {what} at byte {i}")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(JwtError::Malformed(
                "the token has 5 parts: an encrypted JWE, whose lifetime latchkey cannot read".into(),
            ));
        }
        n => {
            return Err(JwtError::Malformed(format!("the token has {n} part(s) separated by '.', a JWT has 3")));
        }
    }
    let header = json_object(&b64url_segment(parts[0], "header")?, "header")?;
    let claims = json_object(&b64url_segment(parts[1], "claims part")?, "claims part")?;
    let signature = b64url_segment(parts[2], "signature")?;

    let algorithm = match header.get("alg") {
        Some(Value::String(alg)) if alg.is_empty() => {
            return Err(JwtError::Malformed("the header's alg is empty".into()));
        }
        Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => {
            return Err(JwtError::Malformed("the token is unsigned (alg none); no registry accepts it".into()));
        }
        Some(Value::String(alg)) => alg.clone(),
        Some(_) => return Err(JwtError::Malformed("the header's alg is not a string".into())),
        None => return Err(JwtError::Malformed("the header has no alg".into())),
    };
    if signature.is_empty() {
        return Err(JwtError::Malformed("the signature part is empty".into()));
    }
    let key_id = string_claim(&header, "kid", "header")?;
    let has_x5c = header.get("x5c").is_some_and(|v| !v.is_null());

    let (audience, audience_is_list) = match claims.get("aud") {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::String(s)) => (vec![s.clone()], false),
        Some(Value::Array(items)) => {
            let auds = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| JwtError::Malformed("claim \"aud\" is a list with a non-string item".into()))?;
            (auds, true)
        }
        Some(_) => return Err(JwtError::Malformed("claim \"aud\" is neither a string nor a list of strings".into())),
    };

    Ok(Claims {
        algorithm,
        key_id,
        has_x5c,
        issuer: string_claim(&claims, "iss", "claim")?,
        subject: string_claim(&claims, "sub", "claim")?,
        audience,
        audience_is_list,
        expires_at: numeric_date(&claims, "exp")?,
        not_before: numeric_date(&claims, "nbf")?,
        issued_at: numeric_date(&claims, "iat")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::{Algorithm, mint};
    use data_encoding::BASE64;
    use serde_json::json;

    // --- inspect ------------------------------------------------------------------------------

    fn b64(v: &Value) -> String {
        BASE64URL_NOPAD.encode(v.to_string().as_bytes())
    }

    fn token_of(header: &Value, claims: &Value) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), BASE64URL_NOPAD.encode(b"not-a-real-signature"))
    }

    fn hs(claims: Value) -> String {
        token_of(&json!({"alg": "RS256", "typ": "JWT"}), &claims)
    }

    fn malformed(token: &str) -> String {
        match inspect(token) {
            Err(e @ JwtError::Malformed(_)) => e.to_string(),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn inspect_reads_aud_in_both_forms_and_numeric_dates() {
        let c = inspect(&hs(json!({"aud": ["a", "b"], "exp": 1.9e9, "nbf": 12, "iat": 11.5}))).unwrap();
        assert_eq!(c.audience, ["a", "b"]);
        assert!(c.audience_is_list);
        assert_eq!((c.expires_at, c.not_before, c.issued_at), (Some(1_900_000_000), Some(12), Some(11)));
        let c = inspect(&hs(json!({"aud": "a", "iss": null}))).unwrap();
        assert_eq!((c.audience, c.audience_is_list, c.issuer, c.expires_at), (vec!["a".to_owned()], false, None, None));
        let c = inspect(&hs(json!({"exp": 253_402_300_799u64, "nbf": 0, "iat": 0.999}))).unwrap();
        assert_eq!((c.expires_at, c.not_before, c.issued_at), (Some(253_402_300_799), Some(0), Some(0)));
        assert!(malformed(&hs(json!({"aud": 5}))).contains("neither a string nor a list"));
        assert!(malformed(&hs(json!({"aud": ["a", 5]}))).contains("non-string item"));
        assert!(malformed(&hs(json!({"exp": "tomorrow"}))).contains("\"exp\" is not a number"));
        assert!(malformed(&hs(json!({"exp": -5}))).contains("\"exp\" is negative"));
        assert!(malformed(&hs(json!({"iss": 7}))).contains("claim field \"iss\" is not a string"));
        let c = inspect(&token_of(&json!({"alg": "ES256", "kid": "K", "x5c": ["AAAA"]}), &json!({}))).unwrap();
        assert_eq!((c.algorithm.as_str(), c.key_id.as_deref(), c.has_x5c), ("ES256", Some("K"), true));
    }

    #[test]
    fn inspect_refuses_dates_that_do_not_fit() {
        // Past year 9999, at or beyond 2^63, as a float beyond any integer: malformed, with the
        // claim named, for each of exp, nbf and iat.
        for claim in ["exp", "nbf", "iat"] {
            for value in [
                json!(253_402_300_800u64),
                json!(1u64 << 63),
                json!(u64::MAX),
                json!(1e300),
                json!(253_402_300_800.5),
                json!(f64::MAX),
            ] {
                let message = malformed(&hs(json!({ claim: value.clone() })));
                assert!(message.contains(&format!("claim {claim:?} is a date after year 9999")), "{value}: {message}");
            }
            for value in [json!(-1), json!(i64::MIN), json!(-0.5), json!(-1e300)] {
                let message = malformed(&hs(json!({ claim: value.clone() })));
                assert!(message.contains(&format!("claim {claim:?} is negative")), "{value}: {message}");
            }
            for value in [json!("9999999999999999999999"), json!(true), json!([1]), json!({"n": 1})] {
                let message = malformed(&hs(json!({ claim: value.clone() })));
                assert!(message.contains(&format!("claim {claim:?} is not a number")), "{value}: {message}");
            }
        }
        // A JSON literal too large for any integer type is still only "after year 9999".
        let claims = BASE64URL_NOPAD.encode(br#"{"exp":9999999999999999999999}"#);
        let header = BASE64URL_NOPAD.encode(br#"{"alg":"HS256"}"#);
        let message = malformed(&format!("{header}.{claims}.c2ln"));
        assert!(message.contains("\"exp\" is a date after year 9999"), "{message}");
        // What is accepted fits a SystemTime and an i64.
        let c = inspect(&hs(json!({"exp": 253_402_300_799.9}))).unwrap();
        assert!(c.expires_at_time().is_some() && i64::try_from(c.expires_at.unwrap()).is_ok());
    }

    #[test]
    fn inspect_refuses_malformed_structure() {
        let sig = BASE64URL_NOPAD.encode(b"sig");
        let claims = b64(&json!({"exp": 1}));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("Bearer abc.def.ghi".into(), "starts with \"Bearer \""),
            (format!("{}\n", hs(json!({}))), "whitespace (trim the token) at byte"),
            ("ab+c.def.ghi".into(), "standard base64"),
            ("abc.déf.ghi".into(), "not base64url or '.'"),
            ("abc.def".into(), "2 part(s)"),
            ("abc".into(), "1 part(s)"),
            ("a.b.c.d".into(), "4 part(s)"),
            ("a.b.c.d.e".into(), "encrypted JWE"),
            (format!("{}.{claims}.{sig}", b64(&json!({}))), "no alg"),
            (format!("{}.{claims}.{sig}", b64(&json!({"alg": 1}))), "alg is not a string"),
            (format!("{}.{claims}.{sig}", b64(&json!({"alg": ""}))), "alg is empty"),
            (format!("{}.{claims}.", b64(&json!({"alg": "none"}))), "unsigned (alg none)"),
            (format!("{}.{claims}.", b64(&json!({"alg": "ES256"}))), "signature part is empty"),
            (format!("{}.{claims}.{sig}", b64(&json!(["alg"]))), "header is JSON but not an object"),
            (
                format!("{}.{}.{sig}", b64(&json!({"alg": "ES256"})), b64(&json!(42))),
                "claims part is JSON but not an object",
            ),
            (
                format!("{}.{claims}.{sig}", BASE64URL_NOPAD.encode(b"{\"alg\":")),
                "header is not valid JSON (line 1, column 7)",
            ),
            (format!("A.{claims}.{sig}"), "header is not valid base64url"),
            (format!("{}.{claims}.A", b64(&json!({"alg": "ES256"}))), "signature is not valid base64url"),
            (format!("{}.{claims}=.{sig}", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.{sig}===", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.s=ig", b64(&json!({"alg": "ES256"}))), "misplaced '=' padding"),
            (format!("{}.{claims}.{sig}", BASE64URL_NOPAD.encode(&[0xff, 0xfe, 0x7b])), "header is not valid JSON"),
        ];
        for (token, want) in cases {
            let msg = malformed(&token);
            assert!(msg.contains(want), "{token:?}: {msg:?} lacks {want:?}");
        }
        // Padding is tolerated, as Go's decoders tolerate it.
        let padded =
            format!("{}.{}.{}", b64(&json!({"alg":"ES256"})), claims, BASE64.encode(b"sigs").replace('+', "-"));
        assert!(inspect(&padded).is_ok(), "{padded}");
    }

    #[test]
    fn inspect_bounds_sizes_and_nesting() {
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(inspect(&huge), Err(JwtError::TooLarge { len: MAX_TOKEN_LEN + 1 }));
        // Huge segments within the bound: a 60 KiB claims part is fine.
        let big = hs(json!({"exp": 5, "pad": "x".repeat(40_000)}));
        assert!(big.len() < MAX_TOKEN_LEN);
        assert_eq!(inspect(&big).unwrap().expires_at, Some(5));
        // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let token = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": "ES256"})),
            BASE64URL_NOPAD.encode(format!("{{\"a\":{deep}}}").as_bytes())
        );
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert!(malformed(&token).contains("claims part is not valid JSON"));
    }

    /// Deterministic xorshift, so the fuzz cases are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn assert_no_leak(err: &JwtError, secret_part: &str) {
        let shown = format!("{err} {err:?}");
        for window in secret_part.as_bytes().windows(12) {
            let w = std::str::from_utf8(window).unwrap();
            assert!(!shown.contains(w), "message {shown:?} leaks token text {w:?}");
        }
    }

    #[test]
    fn inspect_never_panics_nor_leaks() {
        let token = mint(&spec(Algorithm::ES256, P256_SEC1), at(T0)).unwrap();
        let token = token.expose().as_str();
        let signature = token.rsplit('.').next().unwrap();
        // Every truncation, and every single-byte corruption.
        for i in 0..token.len() {
            if let Err(e) = inspect(&token[..i]) {
                assert_no_leak(&e, signature);
            }
            for b in [b'.', b'=', b' ', b'+', 0u8, b'A', 0x80] {
                let mut bytes = token.as_bytes().to_vec();
                bytes[i] = b;
                let s = String::from_utf8_lossy(&bytes);
                if let Err(e) = inspect(&s) {
                    assert_no_leak(&e, signature);
                }
            }
        }
        // Random strings over an alphabet biased towards the JWT one, and random JSON segments.
        let alphabet: Vec<char> = "ABCDEFabcdef0123456789-_..==+/ \n{}\"é\u{0}".chars().collect();
        let mut rng = Rng(0x5eed_1a7c_4e11_0001);
        for _ in 0..5_000 {
            let len = rng.below(200);
            let s: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let _ = inspect(&s);
        }
        let fragments =
            ["{", "}", "\"alg\"", ":", "\"ES256\"", ",", "\"exp\"", "1e999", "-1", "[", "]", "null", "\"aud\""];
        for _ in 0..5_000 {
            let json: String = (0..rng.below(12)).map(|_| fragments[rng.below(fragments.len())]).collect();
            let seg = BASE64URL_NOPAD.encode(json.as_bytes());
            let t = match rng.below(3) {
                0 => format!("{seg}.{seg}.{}", &signature[..rng.below(signature.len())]),
                1 => format!("{}.{seg}.{signature}", b64(&json!({"alg": "ES256"}))),
                _ => format!("{seg}.{}.{signature}", b64(&json!({"exp": 1}))),
            };
            if let Err(e) = inspect(&t) {
                assert_no_leak(&e, signature);
            }
        }
    }
}

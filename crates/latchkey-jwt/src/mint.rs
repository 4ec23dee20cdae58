//! Minting: [`mint`] signs a fresh JWT shaped the way Docker Distribution's `auth: token` wants a
//! directly sent bearer.

use std::time::{Duration, SystemTime};

use data_encoding::{BASE64, HEXLOWER};
use serde_json::{Map, Value};

use latchkey_protocol::secret::Secret;

use crate::keys::{SigningKey, check_x5c};
use crate::time::unix_secs;
use crate::{Algorithm, JwtError, KeyIdHeader, libtrust_key_id};

/// The claims [`mint`] sets itself; `extra_claims` may not override them.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"];

/// Everything [`mint`] needs.
#[derive(Clone, Debug)]
pub struct MintSpec {
    pub algorithm: Algorithm,
    /// PEM text: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1),
    /// unencrypted. Other PEM blocks in the same text (e.g. `EC PARAMETERS`) are skipped.
    pub private_key_pem: Secret<String>,
    pub key_id: KeyIdHeader,
    /// `iss`; must equal the registry's `auth.token.issuer`.
    pub issuer: String,
    /// `sub`; informational for Distribution.
    pub subject: String,
    /// `aud`, written as a single JSON string (Distribution rejects a list); must equal the
    /// registry's `auth.token.service`.
    pub audience: String,
    /// `exp = now + lifetime` (whole seconds; shortened to the x5c chain's earliest `notAfter`).
    pub lifetime: Duration,
    /// `nbf = now - not_before_skew`, to tolerate a registry whose clock is behind ours.
    pub not_before_skew: Duration,
    /// More claims, e.g. Distribution's `access` list. They may not set any of [`REGISTERED_CLAIMS`].
    pub extra_claims: Map<String, Value>,
}

/// Signs a fresh JWT: header `alg`, `typ: JWT` and the configured `kid`/`x5c`; claims `iss`, `sub`,
/// `aud` (one string), `iat = now`, `nbf = now - not_before_skew`, `exp = now + lifetime` (never
/// past the x5c chain's earliest `notAfter`), `jti` (128 random bits, hex), then `extra_claims`.
/// ECDSA signatures are raw `r || s`, as JWS requires.
pub fn mint(spec: &MintSpec, now: SystemTime) -> Result<Secret<String>, JwtError> {
    if spec.issuer.is_empty() {
        return Err(JwtError::Spec("the JWT issuer (iss) is empty; set it to the registry's token issuer".into()));
    }
    if spec.audience.is_empty() {
        return Err(JwtError::Spec(
            "the JWT audience (aud) is empty; set it to the registry's token service name".into(),
        ));
    }
    if spec.lifetime.as_secs() == 0 {
        return Err(JwtError::Spec("the JWT lifetime must be at least 1s".into()));
    }
    if let Some(name) = REGISTERED_CLAIMS.iter().find(|c| spec.extra_claims.contains_key(**c)) {
        return Err(JwtError::ReservedClaim((*name).to_owned()));
    }
    let now = unix_secs(now).ok_or_else(|| JwtError::Spec("the system clock is before 1970".into()))?;
    let mut exp = now
        .checked_add(spec.lifetime.as_secs())
        .filter(|e| *e <= crate::MAX_NUMERIC_DATE)
        .ok_or_else(|| JwtError::Spec("the JWT lifetime is absurdly long".into()))?;
    let nbf = now.saturating_sub(spec.not_before_skew.as_secs());

    let key = SigningKey::from_pem(spec.private_key_pem.expose())?;
    key.check_fits(spec.algorithm)?;

    let mut header = jsonwebtoken::Header::new(spec.algorithm.to_jsonwebtoken());
    match &spec.key_id {
        KeyIdHeader::None => {}
        KeyIdHeader::Kid(kid) => header.kid = Some(kid.clone()),
        KeyIdHeader::Libtrust => header.kid = Some(libtrust_key_id(&key.public_key_der()?)),
        KeyIdHeader::X5c(chain) => {
            let not_after = check_x5c(chain, &key.public_key_der()?, now)?;
            exp = exp.min(not_after);
            header.x5c = Some(chain.iter().map(|der| BASE64.encode(der)).collect());
        }
    }

    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| JwtError::Sign(format!("no randomness for jti: {e}")))?;

    let mut claims = spec.extra_claims.clone();
    claims.insert("iss".into(), Value::from(spec.issuer.as_str()));
    claims.insert("sub".into(), Value::from(spec.subject.as_str()));
    claims.insert("aud".into(), Value::from(spec.audience.as_str()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("nbf".into(), Value::from(nbf));
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("jti".into(), Value::from(HEXLOWER.encode(&jti)));

    let encoding_key = key.encoding_key()?;
    let token = jsonwebtoken::encode(&header, &claims, &encoding_key).map_err(|e| JwtError::Sign(e.to_string()))?;
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::{Claims, check_usable, inspect, load_pem_chain};
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    // --- minting ------------------------------------------------------------------------------

    #[test]
    fn es256_token_verifies_and_has_the_distribution_shape() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.extra_claims
            .insert("access".into(), json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]));
        let token = mint(&s, at(T0)).unwrap();
        let token = token.expose();
        let claims = verify(token, P256_SEC1, Algorithm::ES256);
        assert_eq!(claims["access"][0]["name"], "team/app");

        let (header, payload, sig) = segments(token);
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": KID_P256}));
        assert_eq!(sig.len(), 64, "ES256 signatures are raw r||s, not DER");
        assert_eq!(payload["aud"], json!("registry.test"), "aud must be a single string for Distribution");
        assert_eq!(payload["iss"], "latchkey-test-issuer");
        assert_eq!(payload["sub"], "ci-bot");
        assert_eq!(payload["iat"], T0);
        assert_eq!(payload["nbf"], T0 - 30);
        assert_eq!(payload["exp"], T0 + 300);
        let jti = payload["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(payload.as_object().unwrap().len(), 8);

        // An independent verification with the p256 crate over the raw r||s.
        use p256::ecdsa::signature::Verifier as _;
        let vk = p256::ecdsa::VerifyingKey::from(p256::SecretKey::from_sec1_pem(P256_SEC1).unwrap().public_key());
        let (signed, _) = token.rsplit_once('.').unwrap();
        vk.verify(signed.as_bytes(), &p256::ecdsa::Signature::from_slice(&sig).unwrap()).unwrap();

        // A fresh jti every time.
        let again = mint(&s, at(T0)).unwrap();
        assert_ne!(segments(again.expose()).1["jti"], payload["jti"]);
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for (algorithm, pem, kid, sig_len) in [
            (Algorithm::ES256, P256_PKCS8, KID_P256, 64),
            (Algorithm::ES384, P384, KID_P384, 96),
            (Algorithm::RS256, RSA_PKCS1, KID_RSA, 256),
            (Algorithm::RS384, RSA_PKCS8, KID_RSA, 256),
            (Algorithm::RS512, RSA_PKCS1, KID_RSA, 256),
            (Algorithm::EdDSA, ED25519, KID_ED25519, 64),
        ] {
            let token = mint(&spec(algorithm, pem), at(T0)).unwrap();
            verify(token.expose(), pem, algorithm);
            let (header, _, sig) = segments(token.expose());
            assert_eq!(header["alg"], algorithm.as_str());
            assert_eq!(header["kid"], kid);
            assert_eq!(sig.len(), sig_len, "{algorithm}");
            // Signed with another key of the same type, it does not verify.
            if algorithm == Algorithm::ES256 {
                let other = mint(&spec(algorithm, pem), at(T0)).unwrap();
                assert!(
                    jsonwebtoken::decode::<Value>(
                        other.expose(),
                        &decoding_key(RSA_PKCS1, Algorithm::RS256),
                        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256)
                    )
                    .is_err()
                );
            }
        }
    }

    #[test]
    fn key_id_header_variants() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.key_id = KeyIdHeader::None;
        let (header, _, _) = segments(mint(&s, at(T0)).unwrap().expose());
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT"}));
        s.key_id = KeyIdHeader::Kid("my-key-1".into());
        let (header, _, _) = segments(mint(&s, at(T0)).unwrap().expose());
        assert_eq!(header["kid"], "my-key-1");
    }

    #[test]
    fn inspect_round_trips_mint() {
        let mut s = spec(Algorithm::RS256, RSA_PKCS1);
        s.key_id = KeyIdHeader::Kid("k1".into());
        let token = mint(&s, at(T0)).unwrap();
        let claims = inspect(token.expose()).unwrap();
        assert_eq!(
            claims,
            Claims {
                algorithm: "RS256".into(),
                key_id: Some("k1".into()),
                has_x5c: false,
                issuer: Some("latchkey-test-issuer".into()),
                subject: Some("ci-bot".into()),
                audience: vec!["registry.test".into()],
                audience_is_list: false,
                expires_at: Some(T0 + 300),
                not_before: Some(T0 - 30),
                issued_at: Some(T0),
            }
        );
        assert_eq!(claims.expires_at_time(), Some(at(T0 + 300)));
        assert_eq!(claims.time_left(at(T0 + 100)), Some(Duration::from_secs(200)));
        assert_eq!(claims.time_left(at(T0 + 1000)), Some(Duration::ZERO));
        check_usable(&claims, at(T0), Duration::from_secs(60), Some("registry.test")).unwrap();
    }

    #[test]
    fn registered_claims_cannot_be_overridden() {
        for name in REGISTERED_CLAIMS {
            let mut s = spec(Algorithm::ES256, P256_SEC1);
            s.extra_claims.insert(name.into(), json!("x"));
            let err = mint(&s, at(T0)).unwrap_err();
            assert_eq!(err, JwtError::ReservedClaim(name.into()));
            assert!(err.to_string().contains(&format!("{name:?}")));
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.issuer.clear();
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("issuer (iss) is empty"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.audience.clear();
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("audience (aud) is empty"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.lifetime = Duration::from_millis(999);
        assert!(mint(&s, at(T0)).unwrap_err().to_string().contains("at least 1s"));
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.lifetime = Duration::from_secs(u64::MAX);
        assert!(matches!(mint(&s, at(T0)), Err(JwtError::Spec(_))));
        let s = spec(Algorithm::ES256, P256_SEC1);
        assert!(mint(&s, UNIX_EPOCH - Duration::from_secs(1)).unwrap_err().to_string().contains("before 1970"));
        // A skew larger than now saturates at 0 instead of wrapping.
        let mut s = spec(Algorithm::ES256, P256_SEC1);
        s.not_before_skew = Duration::from_secs(u64::MAX);
        assert_eq!(segments(mint(&s, at(T0)).unwrap().expose()).1["nbf"], 0);
    }

    #[test]
    fn debug_never_shows_key_or_token() {
        let s = spec(Algorithm::ES256, P256_SEC1);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("PRIVATE KEY") && dbg.contains("<redacted>"), "{dbg}");
        let token = mint(&s, at(T0)).unwrap();
        assert_eq!(format!("{token:?}"), "Secret(<redacted>)");
        let chain = KeyIdHeader::X5c(load_pem_chain(P256_CERT).unwrap());
        assert_eq!(format!("{chain:?}"), "X5c(<1 certificate(s)>)");
    }

    #[test]
    fn x5c_header_carries_the_chain() {
        let chain = load_pem_chain(P256_CERT).unwrap();
        let mut s = spec(Algorithm::ES256, P256_PKCS8);
        s.key_id = KeyIdHeader::X5c(chain.clone());
        let now = P256_CERT_NOT_BEFORE + 10;
        let token = mint(&s, at(now)).unwrap();
        verify(token.expose(), P256_PKCS8, Algorithm::ES256);
        let (header, payload, _) = segments(token.expose());
        assert_eq!(header["x5c"], json!([BASE64.encode(&chain[0])]));
        assert!(header.get("kid").is_none());
        assert_eq!(payload["exp"], now + 300);
        assert!(inspect(token.expose()).unwrap().has_x5c);
    }
}

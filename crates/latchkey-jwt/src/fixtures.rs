//! Keys, key ids, times and helpers shared by the unit tests of several modules.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD;
use serde_json::{Map, Value};
use x509_cert::der::Decode as _;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use latchkey_protocol::secret::Secret;

use crate::{Algorithm, KeyIdHeader, MintSpec, public_key_der_from_pem};

macro_rules! key {
    ($name:literal) => {
        include_str!(concat!("../../../tests/support_registry/keys/", $name))
    };
}

pub(crate) const P256_SEC1: &str = key!("p256_sec1.pem");
pub(crate) const P256_PKCS8: &str = key!("p256_pkcs8.pem");
pub(crate) const P384: &str = key!("p384.pem");
pub(crate) const P521: &str = key!("p521.pem");
pub(crate) const RSA_PKCS1: &str = key!("rsa_pkcs1.pem");
pub(crate) const RSA_PKCS8: &str = key!("rsa_pkcs8.pem");
pub(crate) const RSA_1024: &str = key!("rsa1024_pkcs1.pem");
pub(crate) const ED25519: &str = key!("ed25519.pem");
pub(crate) const P256_CERT: &str = key!("p256_cert.pem");
pub(crate) const P384_CERT: &str = key!("p384_cert.pem");
pub(crate) const P256_LEGACY_ENCRYPTED: &str = key!("p256_sec1_legacy_encrypted.pem");
pub(crate) const P256_PKCS8_ENCRYPTED: &str = key!("p256_pkcs8_encrypted.pem");

// Independently computed with openssl + python (tests/support_registry/keys/README.md).
pub(crate) const KID_P256: &str = "WTXG:KP2F:YKHH:3X7K:52BY:OZKL:SOJI:EMZW:GUXU:WNYM:T2A6:PD4L";
pub(crate) const KID_P384: &str = "ACJO:4EKI:PEPS:NLB2:W36G:VAPX:JDWO:4KPQ:55K7:EAD4:XGQZ:PXQM";
pub(crate) const KID_RSA: &str = "SEKN:4TKJ:P6D5:6KLY:FIQQ:EAIP:VP5G:PZAJ:QTV6:TUC7:P3RG:GX7Q";
pub(crate) const KID_ED25519: &str = "KD6G:USI7:A54L:MHCL:BCWL:3GQM:HKNA:BI5V:ERQP:KN7I:RL6L:BUXA";

/// 2026-11-22T22:00:00Z
pub(crate) const T0: u64 = 1_795_384_800;
/// p256_cert.pem validity.
pub(crate) const P256_CERT_NOT_BEFORE: u64 = 1_795_388_802;
pub(crate) const P256_CERT_NOT_AFTER: u64 = 4_948_988_802;

pub(crate) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub(crate) fn spec(algorithm: Algorithm, pem: &str) -> MintSpec {
    MintSpec {
        algorithm,
        private_key_pem: Secret::from(pem),
        key_id: KeyIdHeader::Libtrust,
        issuer: "latchkey-test-issuer".into(),
        subject: "ci-bot".into(),
        audience: "registry.test".into(),
        lifetime: Duration::from_secs(300),
        not_before_skew: Duration::from_secs(30),
        extra_claims: Map::new(),
    }
}

pub(crate) fn segments(token: &str) -> (Value, Value, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let dec = |s: &str| BASE64URL_NOPAD.decode(s.as_bytes()).unwrap();
    (serde_json::from_slice(&dec(parts[0])).unwrap(), serde_json::from_slice(&dec(parts[1])).unwrap(), dec(parts[2]))
}

/// The public key in the form jsonwebtoken's RustCrypto verifiers take: the SPKI's bit string
/// (SEC1 point, PKCS#1 RSAPublicKey, or raw Ed25519 key).
pub(crate) fn decoding_key(pem: &str, algorithm: Algorithm) -> jsonwebtoken::DecodingKey {
    let spki = SubjectPublicKeyInfoOwned::from_der(&public_key_der_from_pem(pem).unwrap()).unwrap();
    let bits = spki.subject_public_key.raw_bytes();
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::DecodingKey::from_ec_der(bits),
        Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_der(bits),
        _ => jsonwebtoken::DecodingKey::from_rsa_der(bits),
    }
}

pub(crate) fn verify(token: &str, pem: &str, algorithm: Algorithm) -> Map<String, Value> {
    let mut validation = jsonwebtoken::Validation::new(algorithm.to_jsonwebtoken());
    validation.set_audience(&["registry.test"]);
    validation.set_issuer(&["latchkey-test-issuer"]);
    validation.validate_exp = false; // the tokens are minted at fixed times in 2026
    validation.validate_nbf = false;
    jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key(pem, algorithm), &validation)
        .unwrap_or_else(|e| panic!("{algorithm} token does not verify: {e}"))
        .claims
}

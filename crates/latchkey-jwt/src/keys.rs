//! Private signing keys (PKCS#8, SEC1, PKCS#1 PEM), public key DER, libtrust key ids, PEM
//! certificate chains and the x5c chain check.

use std::fmt;
use std::time::Duration;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use p256::pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use crate::{Algorithm, JwtError, human_duration, rfc3339};

/// PEM inputs (keys, certificate chains) larger than this are refused before parsing.
pub const MAX_PEM_LEN: usize = 1024 * 1024;

/// RSA keys shorter than this are refused for signing.
pub const MIN_RSA_BITS: usize = 2048;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// A parsed private signing key.
pub(crate) enum SigningKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl SigningKey {
    fn describe(&self) -> String {
        match self {
            SigningKey::P256(_) => "an EC P-256 key".into(),
            SigningKey::P384(_) => "an EC P-384 key".into(),
            SigningKey::Rsa(k) => format!("a {}-bit RSA key", k.size() * 8),
            SigningKey::Ed25519(_) => "an Ed25519 key".into(),
        }
    }

    pub(crate) fn from_pem(text: &str) -> Result<SigningKey, JwtError> {
        if text.len() > MAX_PEM_LEN {
            return Err(JwtError::Key(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", text.len())));
        }
        let blocks = pem::parse_many(text).map_err(|e| JwtError::Key(pem_error("the private key", &e)))?;
        if blocks.is_empty() {
            return Err(JwtError::Key(
                "no PEM block found (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY)".into(),
            ));
        }
        let mut seen = Vec::new();
        for block in blocks {
            let tag = block.tag().to_owned();
            let encrypted = block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
            match tag.as_str() {
                "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" if encrypted => {
                    return Err(JwtError::Key(format!(
                        "the {tag} is encrypted; decrypt it first, e.g. `openssl pkey -in KEY -out PLAIN.pem`"
                    )));
                }
                "PRIVATE KEY" => return Self::from_pkcs8(&Zeroizing::new(block.into_contents())),
                "EC PRIVATE KEY" => return Self::from_sec1(&Zeroizing::new(block.into_contents())),
                "RSA PRIVATE KEY" => {
                    let der = Zeroizing::new(block.into_contents());
                    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                        .map_err(|e| JwtError::Key(format!("RSA PRIVATE KEY (PKCS#1) is invalid: {e}")))?;
                    return Ok(SigningKey::Rsa(Box::new(key)));
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(JwtError::Key(
                        "the key is encrypted (ENCRYPTED PRIVATE KEY); decrypt it first, \
                         e.g. `openssl pkey -in KEY -out PLAIN.pem`"
                            .into(),
                    ));
                }
                "OPENSSH PRIVATE KEY" => {
                    return Err(JwtError::Key(
                        "OpenSSH key format is not supported; convert a copy with \
                         `ssh-keygen -p -m PKCS8 -f COPY`"
                            .into(),
                    ));
                }
                _ => {
                    // Drop the block without keeping its contents; its label is not secret.
                    seen.push(tag);
                }
            }
        }
        Err(JwtError::Key(format!(
            "no private key among the PEM blocks (found: {}); expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
            seen.join(", ")
        )))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, JwtError> {
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| JwtError::Key(format!("PRIVATE KEY (PKCS#8) is invalid: {e}")))?;
        let invalid = |e: &dyn fmt::Display| JwtError::Key(format!("PRIVATE KEY (PKCS#8) is invalid: {e}"));
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                Ok(OID_P256) => Ok(SigningKey::P256(p256::SecretKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?)),
                Ok(OID_P384) => Ok(SigningKey::P384(p384::SecretKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?)),
                Ok(OID_P521) => {
                    Err(JwtError::Key("EC P-521 keys (ES512) are not supported; use P-256 or P-384".into()))
                }
                Ok(other) => Err(JwtError::Key(format!("unsupported EC curve {other}; use P-256 or P-384"))),
                Err(_) => Err(JwtError::Key("EC key without a named curve; use P-256 or P-384".into())),
            },
            OID_RSA => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?;
                Ok(SigningKey::Rsa(Box::new(key)))
            }
            OID_ED25519 => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?;
                Ok(SigningKey::Ed25519(Box::new(key)))
            }
            OID_RSA_PSS => Err(JwtError::Key(
                "RSASSA-PSS keys are not supported; use a plain RSA key (openssl genpkey -algorithm RSA)".into(),
            )),
            OID_ED448 => Err(JwtError::Key("Ed448 keys are not supported; use Ed25519".into())),
            other => Err(JwtError::Key(format!("unsupported key algorithm (OID {other})"))),
        }
    }

    fn from_sec1(der: &[u8]) -> Result<SigningKey, JwtError> {
        // Each curve checks the named-curve parameter and the scalar length, so trying them in
        // turn cannot mistake one for the other.
        if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
            return Ok(SigningKey::P256(key));
        }
        if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
            return Ok(SigningKey::P384(key));
        }
        Err(JwtError::Key(
            "EC PRIVATE KEY (SEC1) is invalid or not on P-256/P-384 (P-521 and other curves are not supported)".into(),
        ))
    }

    /// DER SubjectPublicKeyInfo of the public half, encoded as Go's `x509.MarshalPKIXPublicKey`
    /// does (named curve, uncompressed point; rsaEncryption with NULL parameters).
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>, JwtError> {
        let der = match self {
            SigningKey::P256(k) => {
                p256::pkcs8::EncodePublicKey::to_public_key_der(&k.public_key()).map(|d| d.into_vec())
            }
            SigningKey::P384(k) => {
                p384::pkcs8::EncodePublicKey::to_public_key_der(&k.public_key()).map(|d| d.into_vec())
            }
            SigningKey::Rsa(k) => {
                rsa::pkcs8::EncodePublicKey::to_public_key_der(&k.to_public_key()).map(|d| d.into_vec())
            }
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_der().map(|d| d.into_vec()),
        };
        der.map_err(|e| JwtError::Key(format!("cannot encode the public key: {e}")))
    }

    pub(crate) fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, JwtError> {
        let fail = |e: &dyn fmt::Display| JwtError::Key(format!("cannot re-encode the key for signing: {e}"));
        Ok(match self {
            SigningKey::P256(k) => {
                let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k).map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            SigningKey::P384(k) => {
                let der = p384::pkcs8::EncodePrivateKey::to_pkcs8_der(k).map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            SigningKey::Rsa(k) => {
                let der = k.to_pkcs1_der().map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())
            }
            SigningKey::Ed25519(k) => {
                let der = k.to_pkcs8_der().map_err(|e| fail(&e))?;
                jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
            }
        })
    }

    pub(crate) fn check_fits(&self, algorithm: Algorithm) -> Result<(), JwtError> {
        use Algorithm::*;
        match (algorithm, self) {
            (ES256, SigningKey::P256(_)) | (ES384, SigningKey::P384(_)) | (EdDSA, SigningKey::Ed25519(_)) => Ok(()),
            (RS256 | RS384 | RS512, SigningKey::Rsa(k)) => {
                let bits = k.size() * 8;
                if bits < MIN_RSA_BITS {
                    Err(JwtError::Key(format!(
                        "the RSA key has {bits} bits; {algorithm} signing needs at least {MIN_RSA_BITS}"
                    )))
                } else {
                    Ok(())
                }
            }
            _ => Err(JwtError::KeyMismatch { algorithm, key: self.describe() }),
        }
    }
}

/// A PEM parse error, without echoing anything from inside the PEM.
fn pem_error(what: &str, e: &pem::PemError) -> String {
    let cause = match e {
        pem::PemError::MismatchedTags(begin, end) => {
            format!("its BEGIN ({begin:?}) and END ({end:?}) labels differ")
        }
        pem::PemError::MissingBeginTag => "a -----BEGIN line is missing".into(),
        pem::PemError::MissingEndTag => "an -----END line is missing".into(),
        pem::PemError::InvalidData(_) => "a block has invalid base64".into(),
        pem::PemError::InvalidHeader(_) => "a block has an invalid header line".into(),
        pem::PemError::NotUtf8(_) => "it is not UTF-8".into(),
        _ => "its framing is malformed".into(),
    };
    format!("{what} is not valid PEM: {cause}")
}

/// The libtrust key id of a DER SubjectPublicKeyInfo, as Distribution computes it for the keys
/// of its `rootcertbundle`: SHA-256 of the DER, first 240 bits, base32 (RFC 4648 alphabet, no
/// padding), 12 groups of 4 characters joined by ':'.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    let groups: Vec<&str> = b32.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    groups.join(":")
}

/// The DER SubjectPublicKeyInfo of the first key found in `pem_text`: the public half of a
/// private key (any form [`MintSpec::private_key_pem`](crate::MintSpec::private_key_pem) accepts), a `PUBLIC KEY`, or the key of a
/// `CERTIFICATE`.
pub fn public_key_der_from_pem(pem_text: &str) -> Result<Vec<u8>, JwtError> {
    if pem_text.len() > MAX_PEM_LEN {
        return Err(JwtError::Key(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", pem_text.len())));
    }
    let blocks = pem::parse_many(pem_text).map_err(|e| JwtError::Key(pem_error("the PEM text", &e)))?;
    let has_private = blocks.iter().any(|b| b.tag().contains("PRIVATE KEY"));
    if has_private {
        return SigningKey::from_pem(pem_text)?.public_key_der();
    }
    for block in &blocks {
        match block.tag() {
            "PUBLIC KEY" => {
                SubjectPublicKeyInfoOwned::from_der(block.contents())
                    .map_err(|e| JwtError::Key(format!("PUBLIC KEY is invalid: {e}")))?;
                return Ok(block.contents().to_vec());
            }
            "CERTIFICATE" => {
                let cert = Certificate::from_der(block.contents())
                    .map_err(|e| JwtError::Certificate(format!("CERTIFICATE is invalid: {e}")))?;
                return cert
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(|e| JwtError::Certificate(format!("cannot re-encode its public key: {e}")));
            }
            _ => {}
        }
    }
    Err(JwtError::Key("no PRIVATE KEY, PUBLIC KEY or CERTIFICATE block found".into()))
}

/// The libtrust key id (see [`libtrust_key_id`]) of the key in `pem_text` (see
/// [`public_key_der_from_pem`]). Handy to check a `kid` against a registry's certificate bundle.
pub fn libtrust_key_id_from_pem(pem_text: &str) -> Result<String, JwtError> {
    Ok(libtrust_key_id(&public_key_der_from_pem(pem_text)?))
}

/// The DER certificates of a PEM chain file, in file order (put the leaf first). Non-certificate
/// blocks are ignored; at least one certificate is required and each must parse as X.509.
pub fn load_pem_chain(pem_text: &str) -> Result<Vec<Vec<u8>>, JwtError> {
    if pem_text.len() > MAX_PEM_LEN {
        return Err(JwtError::Certificate(format!("PEM text is {} bytes, more than {MAX_PEM_LEN}", pem_text.len())));
    }
    let blocks = pem::parse_many(pem_text).map_err(|e| JwtError::Certificate(pem_error("the chain", &e)))?;
    let mut chain = Vec::new();
    for block in blocks {
        if block.tag() != "CERTIFICATE" {
            continue;
        }
        let der = block.into_contents();
        Certificate::from_der(&der)
            .map_err(|e| JwtError::Certificate(format!("certificate #{} is not valid X.509: {e}", chain.len() + 1)))?;
        chain.push(der);
    }
    if chain.is_empty() {
        return Err(JwtError::Certificate("no -----BEGIN CERTIFICATE----- block found".into()));
    }
    Ok(chain)
}

/// Checks an x5c chain against the signing key and `now`; returns the earliest `notAfter`.
pub(crate) fn check_x5c(chain: &[Vec<u8>], key_spki_der: &[u8], now: u64) -> Result<u64, JwtError> {
    if chain.is_empty() {
        return Err(JwtError::Certificate("x5c is configured but the chain is empty".into()));
    }
    let key_spki = SubjectPublicKeyInfoOwned::from_der(key_spki_der)
        .map_err(|e| JwtError::Key(format!("cannot decode our own public key: {e}")))?;
    let mut not_after_min = u64::MAX;
    let mut key_found_at = None;
    for (i, der) in chain.iter().enumerate() {
        let cert = Certificate::from_der(der)
            .map_err(|e| JwtError::Certificate(format!("certificate #{} is not valid X.509: {e}", i + 1)))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid == key_spki.algorithm.oid && spki.subject_public_key == key_spki.subject_public_key {
            key_found_at.get_or_insert(i);
        }
        let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
        let name = tbs.subject.to_string();
        if now < not_before {
            return Err(JwtError::Certificate(format!(
                "certificate #{} ({name}) is not valid until {}",
                i + 1,
                rfc3339(not_before)
            )));
        }
        if now >= not_after {
            return Err(JwtError::Certificate(format!(
                "certificate #{} ({name}) expired {} ago ({}); renew it",
                i + 1,
                human_duration(Duration::from_secs(now - not_after)),
                rfc3339(not_after)
            )));
        }
        not_after_min = not_after_min.min(not_after);
    }
    match key_found_at {
        Some(0) => Ok(not_after_min),
        Some(i) => Err(JwtError::Certificate(format!(
            "the signing key's certificate is #{} in the chain, but x5c must start with it (leaf first)",
            i + 1
        ))),
        None => Err(JwtError::Certificate(
            "the first certificate does not hold the signing key's public key (wrong key or wrong chain file)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::{KeyIdHeader, inspect, mint};

    // --- keys and key ids ---------------------------------------------------------------------

    #[test]
    fn libtrust_kid_matches_independent_computation() {
        for (pem, kid) in [
            (P256_SEC1, KID_P256),
            (P256_PKCS8, KID_P256),
            (P256_CERT, KID_P256),
            (P384, KID_P384),
            (P384_CERT, KID_P384),
            (RSA_PKCS1, KID_RSA),
            (RSA_PKCS8, KID_RSA),
            (ED25519, KID_ED25519),
        ] {
            assert_eq!(libtrust_key_id_from_pem(pem).unwrap(), kid);
        }
        // The same key as a PUBLIC KEY block.
        let spki = public_key_der_from_pem(P256_SEC1).unwrap();
        let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.clone()));
        assert_eq!(libtrust_key_id_from_pem(&public_pem).unwrap(), KID_P256);
        // Shape: 12 groups of 4 base32 characters.
        let kid = libtrust_key_id(&spki);
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert!(
            kid.split(':').all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_uppercase() || b"234567".contains(&b)))
        );
    }

    #[test]
    fn key_forms_agree() {
        let spki = public_key_der_from_pem(P256_SEC1).unwrap();
        assert_eq!(public_key_der_from_pem(P256_PKCS8).unwrap(), spki);
        // `openssl ecparam -genkey` without -noout writes an EC PARAMETERS block first.
        let with_params =
            format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{P256_SEC1}");
        assert_eq!(public_key_der_from_pem(&with_params).unwrap(), spki);
        // CRLF line endings and surrounding text.
        let crlf = format!("subject=whatever\r\n{}", P256_SEC1.replace('\n', "\r\n"));
        assert_eq!(public_key_der_from_pem(&crlf).unwrap(), spki);
        assert_eq!(public_key_der_from_pem(RSA_PKCS1).unwrap(), public_key_der_from_pem(RSA_PKCS8).unwrap());
    }

    fn key_err(pem: &str) -> String {
        let err = mint(&spec(Algorithm::ES256, pem), at(T0)).unwrap_err();
        err.to_string()
    }

    #[test]
    fn unusable_keys_are_refused_with_reasons() {
        assert!(key_err("").contains("no PEM block"), "{}", key_err(""));
        assert!(key_err("hello").contains("no PEM block"));
        assert!(key_err(P256_CERT).contains("no private key among the PEM blocks (found: CERTIFICATE)"));
        assert!(key_err(P256_LEGACY_ENCRYPTED).contains("encrypted"), "{}", key_err(P256_LEGACY_ENCRYPTED));
        assert!(key_err(P256_PKCS8_ENCRYPTED).contains("encrypted"));
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert!(key_err(ssh).contains("ssh-keygen -p -m PKCS8"));
        assert!(key_err(P521).contains("P-521"));
        let bad_der = "-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n";
        assert!(key_err(bad_der).contains("PKCS#8) is invalid"), "{}", key_err(bad_der));
        let bad_sec1 = "-----BEGIN EC PRIVATE KEY-----\nMIIBAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(key_err(bad_sec1).contains("SEC1"));
        let bad_rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIBAAAA\n-----END RSA PRIVATE KEY-----\n";
        let msg = mint(&spec(Algorithm::RS256, bad_rsa), at(T0)).unwrap_err().to_string();
        assert!(msg.contains("PKCS#1) is invalid"), "{msg}");
        let bad_b64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert!(key_err(bad_b64).contains("invalid base64"), "{}", key_err(bad_b64));
        let mismatched = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(key_err(mismatched).contains("labels differ"), "{}", key_err(mismatched));
        // Truncations of a real key never panic.
        for i in 0..P256_SEC1.len() {
            let _ = mint(&spec(Algorithm::ES256, &P256_SEC1[..i]), at(T0));
        }
        // Key material never shows up in a message.
        let body_line = P256_SEC1.lines().nth(1).unwrap();
        for pem in [P256_SEC1, P256_PKCS8_ENCRYPTED, bad_der] {
            let err = mint(&spec(Algorithm::RS256, pem), at(T0)).unwrap_err();
            assert!(!err.to_string().contains(&body_line[..16]) && !format!("{err:?}").contains(&body_line[..16]));
        }
    }

    #[test]
    fn key_must_fit_the_algorithm() {
        let err = mint(&spec(Algorithm::ES256, RSA_PKCS1), at(T0)).unwrap_err();
        assert_eq!(err, JwtError::KeyMismatch { algorithm: Algorithm::ES256, key: "a 2048-bit RSA key".into() });
        assert_eq!(err.to_string(), "algorithm ES256 needs an EC P-256 key, but the private key is a 2048-bit RSA key");
        let err = mint(&spec(Algorithm::ES384, P256_SEC1), at(T0)).unwrap_err();
        assert!(matches!(err, JwtError::KeyMismatch { .. }), "{err}");
        let err = mint(&spec(Algorithm::RS256, ED25519), at(T0)).unwrap_err();
        assert_eq!(err.to_string(), "algorithm RS256 needs an RSA key, but the private key is an Ed25519 key");
        let err = mint(&spec(Algorithm::EdDSA, P384), at(T0)).unwrap_err();
        assert!(matches!(err, JwtError::KeyMismatch { .. }));
        let err = mint(&spec(Algorithm::RS256, RSA_1024), at(T0)).unwrap_err();
        assert_eq!(err.to_string(), "private key: the RSA key has 1024 bits; RS256 signing needs at least 2048");
    }

    #[test]
    fn x5c_is_checked_against_key_and_clock() {
        let p256 = load_pem_chain(P256_CERT).unwrap();
        let p384 = load_pem_chain(P384_CERT).unwrap();
        let now = at(P256_CERT_NOT_BEFORE + 3600);
        let mut s = spec(Algorithm::ES256, P256_SEC1);

        s.key_id = KeyIdHeader::X5c(p384.clone());
        let msg = mint(&s, now).unwrap_err().to_string();
        assert!(msg.contains("does not hold the signing key"), "{msg}");

        s.key_id = KeyIdHeader::X5c(vec![p384[0].clone(), p256[0].clone()]);
        let msg = mint(&s, now).unwrap_err().to_string();
        assert!(msg.contains("#2 in the chain") && msg.contains("leaf first"), "{msg}");

        s.key_id = KeyIdHeader::X5c(Vec::new());
        assert!(mint(&s, now).unwrap_err().to_string().contains("empty"));

        s.key_id = KeyIdHeader::X5c(vec![b"not a certificate".to_vec()]);
        assert!(mint(&s, now).unwrap_err().to_string().contains("not valid X.509"));

        s.key_id = KeyIdHeader::X5c(p256.clone());
        let msg = mint(&s, at(P256_CERT_NOT_BEFORE - 1)).unwrap_err().to_string();
        assert_eq!(
            msg,
            "x5c certificate chain: certificate #1 (CN=latchkey-unit-p256) is not valid until 2026-11-22T23:06:42Z"
        );
        let msg = mint(&s, at(P256_CERT_NOT_AFTER + 90)).unwrap_err().to_string();
        assert_eq!(
            msg,
            "x5c certificate chain: certificate #1 (CN=latchkey-unit-p256) expired 1m 30s ago \
             (2126-10-29T23:06:42Z); renew it"
        );
        // A token never outlives its certificate.
        let token = mint(&s, at(P256_CERT_NOT_AFTER - 100)).unwrap();
        assert_eq!(inspect(token.expose()).unwrap().expires_at, Some(P256_CERT_NOT_AFTER));
    }

    #[test]
    fn pem_chains() {
        let two = format!("leaf:\n{P256_CERT}\nroot:\n{P384_CERT}{P256_SEC1}");
        let chain = load_pem_chain(&two).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0], pem::parse(P256_CERT).unwrap().contents());
        assert_eq!(chain[1], pem::parse(P384_CERT).unwrap().contents());
        assert!(load_pem_chain(P256_SEC1).unwrap_err().to_string().contains("no -----BEGIN CERTIFICATE"));
        assert!(load_pem_chain("").is_err());
        let junk = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
        assert!(load_pem_chain(junk).unwrap_err().to_string().contains("certificate #1 is not valid X.509"));
        assert!(load_pem_chain(&"A".repeat(MAX_PEM_LEN + 1)).is_err());
    }
}

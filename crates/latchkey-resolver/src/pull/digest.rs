//! Content digests by algorithm (`sha256:`, `sha512:`), computed incrementally so a blob is
//! hashed as it streams in.

use sha2::Digest as _;

pub(super) fn digest_of(algorithm: &str, bytes: &[u8]) -> String {
    let mut h = Hasher::new(algorithm);
    h.update(bytes);
    h.finish()
}

pub(super) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(super) fn new(algorithm: &str) -> Hasher {
        if algorithm == "sha512" { Hasher::Sha512(sha2::Sha512::new()) } else { Hasher::Sha256(sha2::Sha256::new()) }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(super) fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", data_encoding::HEXLOWER.encode(&h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", data_encoding::HEXLOWER.encode(&h.finalize())),
        }
    }
}

//! JSON Web Tokens for the static bearer mode: minting our own, and inspecting other people's.
//!
//! * [`mint`] signs a JWT with a configured private key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1
//!   `RSA PRIVATE KEY` PEM), shaped the way Docker Distribution's `auth: token` wants a directly
//!   sent bearer: `aud` as one JSON string, `exp`, and either a `kid` (an explicit one, or the
//!   libtrust key id Distribution derives from the certificates in its `rootcertbundle`) or an
//!   `x5c` chain that ends at that bundle.
//! * [`inspect`] decodes a JWT handed to us by a source *without* verifying its signature: latchkey
//!   is not the token's audience, it only has to know when the token stops working, so that it
//!   never hands out a dead one. [`check_usable`] turns that into a yes or a precise reason.
//!
//! No error message or `Debug` output ever contains a token, a part of its signature, or key
//! material.
//!
//! One job per module: `algorithm` (JWA names, the key id header), `keys` (PEM keys, libtrust key
//! ids, x5c chains), `mint`, `inspect`, `usable` (whether inspected claims can be used now),
//! `error` and `time` (dates and durations for messages). Everything public is re-exported here.

mod algorithm;
mod error;
mod inspect;
mod keys;
mod mint;
mod time;
mod usable;

#[cfg(test)]
mod fixtures;

pub use algorithm::{Algorithm, KeyIdHeader};
pub use error::JwtError;
pub use inspect::{Claims, MAX_TOKEN_LEN, inspect};
pub use keys::{
    MAX_PEM_LEN, MIN_RSA_BITS, libtrust_key_id, libtrust_key_id_from_pem, load_pem_chain, public_key_der_from_pem,
};
pub use mint::{MintSpec, REGISTERED_CLAIMS, mint};
pub use time::{MAX_NUMERIC_DATE, human_duration, rfc3339};
pub use usable::{NOT_BEFORE_LEEWAY, Usability, check_usable, check_usable_with};

//! TEMPORARY stub; replaced by the jwt branch.
use std::time::{Duration, SystemTime};
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Algorithm {
    ES256,
    RS256,
}
pub enum KeyIdHeader {
    None,
    Kid(String),
    Libtrust,
    X5c(Vec<Vec<u8>>),
}
pub struct MintSpec {
    pub algorithm: Algorithm,
    pub private_key_pem: crate::secret::Secret<String>,
    pub key_id: KeyIdHeader,
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub lifetime: Duration,
    pub not_before_skew: Duration,
    pub extra_claims: serde_json::Map<String, serde_json::Value>,
}
#[derive(Debug)]
pub struct JwtError(String);
impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
pub struct Claims {
    pub subject: Option<String>,
    pub audience: Vec<String>,
    pub expires_at: Option<u64>,
}
pub fn inspect(_t: &str) -> Result<Claims, JwtError> {
    Err(JwtError("stub".into()))
}
pub fn check_usable(_c: &Claims, _now: SystemTime, _m: Duration, _a: Option<&str>) -> Result<(), JwtError> {
    Ok(())
}
pub fn mint(_s: &MintSpec, _now: SystemTime) -> Result<crate::secret::Secret<String>, JwtError> {
    Err(JwtError("stub".into()))
}
pub fn load_pem_chain(_p: &str) -> Result<Vec<Vec<u8>>, JwtError> {
    Ok(vec![])
}

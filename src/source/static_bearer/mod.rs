//! Static bearer: `get` answers `<static_bearer>` and a JWT the client sends verbatim as
//! `Authorization: Bearer`. The JWT comes from an [`IdentitySource`]; refreshable sources go
//! through the [`TokenCache`], and no token that expires within the safety margin is handed out.

pub mod identity;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use identity::IdentitySource;

use super::{Answer, CredentialSource, Mode, SourceStatus, TokenStatus};
use crate::store::LazyStore;
use crate::token_cache::{CachedToken, TokenCache, unix};
use latchkey_jwt as jwt;
use latchkey_protocol::helper::HelperError;
use latchkey_protocol::server_url::RegistryKey;
use latchkey_store::StoredCredential;

pub use latchkey_protocol::{BEARER_USERNAME, ENV_REJECTED_TOKEN_SHA256, STATIC_BEARER_USERNAME};

/// Which of the two conventions for "the Secret is a bearer JWT" `get` answers (`answer =` in
/// the registry's table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerConvention {
    /// `Username: "<static_bearer>"`: the client sends the JWT on every request, no challenge.
    #[default]
    StaticBearer,
    /// `Username: "Bearer"`: the client presents the JWT at the registry's token endpoint and
    /// uses the scoped token it answers.
    Bearer,
}

impl AnswerConvention {
    pub fn username(self) -> &'static str {
        match self {
            AnswerConvention::StaticBearer => STATIC_BEARER_USERNAME,
            AnswerConvention::Bearer => BEARER_USERNAME,
        }
    }
}
/// Default safety margin: a token must stay valid this long after we hand it out.
pub const DEFAULT_MIN_VALIDITY_SECS: u64 = 120;

pub struct StaticBearer<'a> {
    pub key: &'a RegistryKey,
    pub identity: &'a IdentitySource,
    pub min_validity: Duration,
    pub answer: AnswerConvention,
    pub cache_dir: PathBuf,
    /// The config file that made this a static-bearer registry (for messages).
    pub config_path: &'a Path,
}

impl CredentialSource for StaticBearer<'_> {
    fn mode(&self) -> Mode {
        Mode::StaticBearer
    }

    /// Never opens the store: the token comes from the cache or the identity source.
    fn get(&self, _store: &mut LazyStore) -> Result<Answer, HelperError> {
        let token = self.token().map_err(HelperError::Failed)?;
        Ok(Answer { username: self.answer.username().to_owned(), secret: token.secret() })
    }

    fn store(&self, _store: &mut LazyStore, _credential: &StoredCredential) -> Result<(), HelperError> {
        Err(super::nothing_to("store", self.key, self.mode(), self.config_path))
    }

    /// `docker logout`: forget the cached token; the source itself stays configured.
    fn erase(&self, _store: &mut LazyStore) -> Result<(), HelperError> {
        self.forget().map_err(HelperError::Failed)
    }

    fn status(&self, _store: &mut LazyStore) -> Option<SourceStatus> {
        let now = unix(SystemTime::now()) as i64;
        let token = self.cached().map(|t| TokenStatus {
            subject: t.subject.clone(),
            audience: t.audience.clone(),
            expires_at: t.expires_at,
            // A cache file is data on disk: an exp past i64 is "far ahead", never "expired".
            expires_in_secs: i64::try_from(t.expires_at).unwrap_or(i64::MAX).saturating_sub(now),
            cached: self.identity.refreshable(),
        });
        let note = token.is_none().then(|| {
            if self.identity.refreshable() {
                "no cached token; the next get obtains one".to_owned()
            } else {
                "no usable token at the source right now (run `token` for the reason)".to_owned()
            }
        });
        Some(SourceStatus { source: Some(self.identity.describe()), token, note, ..SourceStatus::default() })
    }
}

impl StaticBearer<'_> {
    fn cache(&self) -> TokenCache {
        // Any change to the source's config is a different token: key the cache by all of it.
        TokenCache::new(&self.cache_dir, &format!("{}|{:?}", self.key, self.identity))
    }

    /// A token valid for at least `min_validity`, from the cache or the source.
    pub fn token(&self) -> Result<CachedToken, String> {
        let context = |e: String| format!("static bearer for {} ({}): {e}", self.key, self.identity.describe());
        if !self.identity.refreshable() {
            return self.obtain().map_err(context);
        }
        let wait = Duration::from_secs(30);
        let rejected = rejected_from_env();
        // A cached entry is served only while it is still a usable JWT for this source: the
        // cache file is data on disk, not proof of what the source issued.
        let still_usable = |cached: &CachedToken| {
            jwt::inspect(&cached.token).is_ok_and(|claims| {
                jwt::check_usable(&claims, SystemTime::now(), self.min_validity, self.identity.expected_audience())
                    .is_ok()
            })
        };
        self.cache()
            .get_or_refresh(self.min_validity, wait, rejected.as_ref(), still_usable, || self.obtain())
            .map_err(context)
    }

    /// Drop the cached token so the next `get` asks the source again.
    pub fn forget(&self) -> Result<(), String> {
        self.cache().clear().map_err(|e| format!("cannot remove the cached token for {}: {e}", self.key))
    }

    /// The cached token, without refreshing (for `status`).
    pub fn cached(&self) -> Option<CachedToken> {
        if self.identity.refreshable() { self.cache().read() } else { self.obtain().ok() }
    }

    /// Ask the source (or sign) now, and check the result before anyone sees it.
    fn obtain(&self) -> Result<CachedToken, String> {
        let now = SystemTime::now();
        let token = match self.identity {
            IdentitySource::Mint { .. } => mint(self.identity, now)?,
            other => other.fetch()?,
        };
        let claims = jwt::inspect(token.expose()).map_err(|e| match e {
            // Its text already says "not a usable JWT".
            jwt::JwtError::Malformed(_) => format!("the token is {e}"),
            e => format!("the token is not a usable JWT: {e}"),
        })?;
        jwt::check_usable(&claims, now, self.min_validity, self.identity.expected_audience())
            .map_err(|e| self.explain_unusable(e))?;
        Ok(CachedToken {
            token: token.expose().clone(),
            expires_at: claims.expires_at.unwrap_or(0),
            subject: claims.subject.clone(),
            audience: claims.audience.clone(),
            obtained_at: unix(now),
        })
    }

    fn explain_unusable(&self, e: jwt::JwtError) -> String {
        if self.identity.refreshable() {
            format!(
                "{e}; the source was just asked, so it issues tokens that are already unusable (check its clock and lifetime against min-validity-secs = {})",
                self.min_validity.as_secs()
            )
        } else {
            format!("{e}; put a fresh token there (a {} token is not refreshed by latchkey)", self.identity.kind())
        }
    }
}

/// [`ENV_REJECTED_TOKEN_SHA256`], if set. A malformed value is ignored with a warning: the
/// answer is then what it would have been without it.
fn rejected_from_env() -> Option<[u8; 32]> {
    let value = std::env::var_os(ENV_REJECTED_TOKEN_SHA256)?;
    let digest = value.to_str().and_then(|v| data_encoding::HEXLOWER_PERMISSIVE.decode(v.trim().as_bytes()).ok());
    match digest.and_then(|d| <[u8; 32]>::try_from(d).ok()) {
        Some(d) => Some(d),
        None => {
            eprintln!("latchkey: warning: ignoring {ENV_REJECTED_TOKEN_SHA256}: not 64 hex digits");
            None
        }
    }
}

fn mint(identity: &IdentitySource, now: SystemTime) -> Result<latchkey_protocol::secret::Secret<String>, String> {
    let IdentitySource::Mint {
        algorithm,
        private_key_file,
        certificate_chain_file,
        kid,
        issuer,
        subject,
        audience,
        lifetime_secs,
        access,
        extra_claims,
    } = identity
    else {
        unreachable!("only called for mint sources")
    };
    let read = |path: &PathBuf, what: &str| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
    };
    // Whoever can write the key can sign as us; whoever can read it can too (ssh's rule).
    latchkey_fs::trust::check_file_and_ancestors(private_key_file, latchkey_fs::trust::Purpose::PrivateKey)
        .map_err(|e| e.to_string())?;
    let private_key_pem = latchkey_protocol::secret::Secret::new(read(private_key_file, "private key file")?);
    let key_id = match (kid.as_deref(), certificate_chain_file) {
        (Some("none"), None) => jwt::KeyIdHeader::None,
        (Some("libtrust"), None) | (None, None) => jwt::KeyIdHeader::Libtrust,
        (Some(literal), None) => jwt::KeyIdHeader::Kid(literal.to_owned()),
        (None, Some(chain)) => {
            let pem = read(chain, "certificate chain file")?;
            jwt::KeyIdHeader::X5c(jwt::load_pem_chain(&pem).map_err(|e| format!("{}: {e}", chain.display()))?)
        }
        (Some(_), Some(_)) => {
            return Err("set either kid or certificate-chain-file (x5c), not both".into());
        }
    };
    let mut extra = serde_json::Map::new();
    for (name, value) in extra_claims {
        extra.insert(name.clone(), serde_json::to_value(value).map_err(|e| format!("extra claim {name:?}: {e}"))?);
    }
    if let Some(access) = access {
        extra.insert("access".into(), serde_json::to_value(access).map_err(|e| format!("access claim: {e}"))?);
    }
    let spec = jwt::MintSpec {
        algorithm: *algorithm,
        private_key_pem,
        key_id,
        issuer: issuer.clone(),
        subject: subject.clone(),
        audience: audience.clone(),
        lifetime: Duration::from_secs(*lifetime_secs),
        not_before_skew: Duration::from_secs(30),
        extra_claims: extra,
    };
    jwt::mint(&spec, now).map_err(|e| format!("cannot sign the token: {e}"))
}

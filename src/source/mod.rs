//! Credential sources: where a `get` answer comes from. Each registry's mode picks one;
//! they are peers behind [`CredentialSource`].

use latchkey_protocol::helper::HelperError;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

pub mod device;
pub mod static_bearer;
pub mod stored;

/// An answer to `get`: the username (or a convention such as `<token>`) and the secret.
pub struct Answer {
    pub username: String,
    pub secret: Secret<String>,
}

pub trait CredentialSource {
    /// The credentials for `key`; `Err(HelperError::NotFound)` when there are none.
    fn get(&mut self, key: &RegistryKey) -> Result<Answer, HelperError>;
}

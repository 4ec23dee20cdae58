//! The client's one error type: a kind callers branch on, and a message that names the
//! registry and the request.

use std::fmt;

/// What went wrong, by kind, with a message that names the registry and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The registry refused the credentials (or their absence).
    Unauthorized,
    /// 404: no such repository, tag or blob.
    NotFound,
    /// Connection, TLS or timeout trouble that retries did not cure.
    Transport,
    /// Another unexpected status.
    Status(u16),
    /// The registry's answer is malformed (bad JSON, unsupported media type, too large), or
    /// is plain HTTP where TLS was spoken.
    Protocol,
    /// Content does not match its digest or size.
    DigestMismatch,
    /// Local file trouble.
    Io,
    /// Nothing matches the requested platform.
    NoMatch,
}

#[derive(Debug, Clone)]
pub struct RegistryError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegistryError { kind, message: message.into() }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

//! Messages that say what went wrong in the user's terms and what to do about it, where the
//! raw failure points elsewhere: a TLS error that is really a plain-HTTP server, a refusal that
//! is really a registry nobody configured credentials for, a token service's 401 that is
//! really a credential helper that failed.

use std::path::PathBuf;

use latchkey_http::error_chain;

use crate::{HelperCallError, Resolved, Resolver, Source};

/// Whether a connection failed because the server answered plain HTTP to a TLS handshake:
/// rustls reads the first bytes of `HTTP/1.x 400 ...` as a record of an unknown content type.
pub(super) fn answered_plain_http(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if is_invalid_content_type(err) {
            return true;
        }
        // io::Error's `source` skips the error it wraps: look inside it.
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && (is_invalid_content_type(inner) || answered_plain_http(inner))
        {
            return true;
        }
        next = err.source();
    }
    // Whatever the wrapping, rustls's words for it.
    error_chain(e).contains("InvalidContentType")
}

fn is_invalid_content_type(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType))
    )
}

/// Why a request went without credentials, when that is the likely reason it was refused and
/// the user can do something about it: a credential helper that failed, or a registry that no
/// file configures. `None` when credentials were sent, or the helper merely had none.
pub(super) struct MissingCredentials {
    /// What happened, leading the message.
    what: String,
    /// What to do, ending it.
    todo: String,
}

impl MissingCredentials {
    pub(super) fn of(resolved: &Resolved, resolver: &Resolver) -> Option<MissingCredentials> {
        let registry = resolved.registry.to_string();
        match (&resolved.helper_error, &resolved.source) {
            (Some(HelperCallError::NotFound { .. }), _) => None,
            (Some(e), source) => Some(helper_failed(e, &registry, source)),
            (None, Source::Unconfigured) => Some(unconfigured(&registry, resolver)),
            (None, _) => None,
        }
    }

    /// The whole message: what happened; `refusal` (what refused the credential-less request,
    /// with what it said); what to do.
    pub(super) fn explain(&self, refusal: &str) -> String {
        format!("{}; without credentials, {refusal}. {}", self.what, self.todo)
    }
}

/// "the credential helper docker-credential-NAME failed for REGISTRY (...): ..."
fn helper_failed(e: &HelperCallError, registry: &str, source: &Source) -> MissingCredentials {
    let named_by = match source {
        Source::Helper { file, per_registry, .. } => {
            format!(", named by {} in {}", if *per_registry { "credHelpers" } else { "credsStore" }, file.display())
        }
        _ => String::new(),
    };
    let what = match e {
        HelperCallError::Failed { program, status, message } if message.is_empty() => {
            format!("the credential helper {program} failed for {registry} ({status}{named_by}) without a message")
        }
        HelperCallError::Failed { program, status, message } => {
            format!("the credential helper {program} failed for {registry} ({status}{named_by}): {message}")
        }
        other => format!("the credential helper for {registry} failed{named_by}: {other}"),
    };
    let todo = format!("Fix what the helper reports; to see it fail alone: echo {registry} | {} get", e.program());
    MissingCredentials { what, todo }
}

/// "no credentials for REGISTRY were found in docker's config (...)"; run configure-docker.
fn unconfigured(registry: &str, resolver: &Resolver) -> MissingCredentials {
    MissingCredentials {
        what: format!(
            "no credentials for {registry} were found in docker's config (no credHelpers, credsStore or auths entry for it in {})",
            looked_in(resolver)
        ),
        todo: format!(
            "To have latchkey supply them, run `docker-credential-latchkey configure-docker {registry}`; \
             for a user name and password, `docker login {registry}`"
        ),
    }
}

/// The files the resolver read, then the default locations it found no file at, each once.
fn looked_in(resolver: &Resolver) -> String {
    let mut shown: Vec<String> = resolver.files().iter().map(|f| f.path.display().to_string()).collect();
    let read: Vec<PathBuf> = resolver.files().iter().map(|f| f.path.clone()).collect();
    for (path, _) in latchkey_protocol::auth_files::default_files() {
        if !read.contains(&path) && !path.exists() {
            shown.push(format!("{} (no such file)", path.display()));
        }
    }
    if shown.is_empty() {
        return "any file (no docker config location is known: set DOCKER_CONFIG or HOME)".to_owned();
    }
    shown.join(", ")
}

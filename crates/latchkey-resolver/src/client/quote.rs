//! Quoting what a server answered, safely: only the fields of its answer meant for people
//! (OCI `errors[].code`/`message`, OAuth `error`/`error_description`), with every spelling of
//! every secret in play taken out before anything is cut. The one redaction module is
//! [`latchkey_http::redact`]; this file only says which secrets are in play.

use latchkey_http::Redactor;
use latchkey_protocol::secret::Secret;

use crate::Credential;

/// Every secret a credential puts on the wire, in every spelling (a password also as the
/// base64 of `user:password`, which a server echoing the Basic header sends back).
pub(super) fn credential_secrets(credential: &Credential) -> Redactor {
    match credential {
        Credential::StaticBearer(t) | Credential::BearerJwt(t) | Credential::IdentityToken { token: t, .. } => {
            Redactor::new().secret(t.expose())
        }
        Credential::UsernamePassword { username, password } => Redactor::new().basic(username, password.expose()),
        Credential::Anonymous => Redactor::new(),
    }
}

/// The secrets in play for one registry request: the `Authorization` value sent (without its
/// scheme) and the credential it was made from.
pub(super) fn request_secrets(authorization: Option<&Secret<String>>, credential: Option<&Credential>) -> Redactor {
    let mut redactor = credential.map(credential_secrets).unwrap_or_default();
    if let Some(a) = authorization {
        let value = a.expose().split_once(' ').map_or(a.expose().as_str(), |(_, v)| v);
        redactor.add_secret(value);
    }
    redactor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_secrets_are_redacted() {
        let body = br#"{"errors":[{"code":"DENIED","message":"bad token s3cr+t/1 (s3cr%2Bt%2F1)"}]}"#;
        let credential = Credential::IdentityToken { token: Secret::new("s3cr+t/1".into()), username: None };
        let text = credential_secrets(&credential).server_message(body);
        assert_eq!(text, "\"DENIED bad token <redacted> (<redacted>)\"");
    }

    #[test]
    fn a_403_repeating_the_password_or_the_basic_header_is_redacted() {
        let credential =
            Credential::UsernamePassword { username: "alice".into(), password: Secret::new("pa55word!".into()) };
        let basic = data_encoding::BASE64.encode(b"alice:pa55word!");
        let body = format!(
            r#"{{"errors":[{{"code":"DENIED","message":"pa55word! / Basic {basic} / pa55word%21 / \u0070a55word!"}}]}}"#
        );
        let sent = Secret::new("Bearer realm-token-123".to_owned());
        let text = request_secrets(Some(&sent), Some(&credential)).server_message(body.as_bytes());
        assert!(!text.contains("pa55") && !text.contains(&basic), "{text}");
    }

    #[test]
    fn registry_error_excerpts() {
        let r = Redactor::new();
        assert_eq!(
            r.server_message(
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#
            ),
            "\"UNAUTHORIZED authentication required\""
        );
        assert_eq!(r.server_message(b""), "an empty body");
        assert!(r.server_message(b"oops\nmore").contains("not JSON"));
    }
}

//! Quoting what a server answered, safely: the registry's own error message (or the first
//! line of its body) for our messages, with every secret the request carried taken out first
//! (a server may echo what it was sent).

use crate::Credential;

/// The secrets a token request carries, as they could be echoed back.
pub(super) fn credential_secrets(credential: &Credential) -> Vec<&str> {
    match credential {
        Credential::StaticBearer(t) | Credential::BearerJwt(t) | Credential::IdentityToken { token: t, .. } => {
            vec![t.expose().as_str()]
        }
        Credential::UsernamePassword { password, .. } => vec![password.expose().as_str()],
        Credential::Anonymous => Vec::new(),
    }
}

/// `body` with each secret replaced in its plain, form-encoded, JSON-escaped and (for Basic)
/// base64 spellings, before anything of it is quoted.
pub(super) fn redact_secrets(body: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let form = serde_urlencoded::to_string([("", secret)]).unwrap_or_default();
        let form = form.trim_start_matches('=').to_owned();
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        for spelling in [secret.to_string(), form, json] {
            if !spelling.is_empty() {
                text = text.replace(&spelling, "<redacted>");
            }
        }
    }
    text.into_bytes()
}

/// The registry's error message: `errors[0].message` of its JSON, else the first line.
pub(super) fn excerpt(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && let Some(first) = e.errors.first()
    {
        return format!("{} {}", first.code, first.message).trim().to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let line: String = text.trim().lines().next().unwrap_or("").chars().take(200).collect();
    if line.is_empty() { "(no body)".to_owned() } else { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_secrets_are_redacted() {
        let body = br#"{"errors":[{"code":"DENIED","message":"bad token s3cr+t/1 (s3cr%2Bt%2F1)"}]}"#;
        let text = excerpt(&redact_secrets(body, &["s3cr+t/1"]));
        assert_eq!(text, "DENIED bad token <redacted> (<redacted>)");
    }

    #[test]
    fn registry_error_excerpts() {
        assert_eq!(
            excerpt(br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#),
            "UNAUTHORIZED authentication required"
        );
        assert_eq!(excerpt(b""), "(no body)");
        assert_eq!(excerpt(b"oops\nmore"), "oops");
    }
}

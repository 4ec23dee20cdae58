//! Which credential a request carries, and what a 401 does next: a static bearer is sent from
//! the first request and, once refused, the helper is asked once more (told which token was
//! refused); otherwise the first 401's `WWW-Authenticate` challenge decides between a token
//! (`token.rs`) and Basic. A second refusal is an error that says why and where the
//! credential came from.

use std::sync::atomic::Ordering;

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{StatusCode, Url};

use super::advice::MissingCredentials;
use super::quote::request_secrets;
use super::{Answer, ErrorKind, Host, RegistryClient, RegistryError};
use crate::{Credential, Resolved};
use latchkey_protocol::challenge;
use latchkey_protocol::secret::Secret;

/// A WWW-Authenticate challenge we know how to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// The first challenge we can answer among `WWW-Authenticate` values: `Basic`, or `Bearer`
/// with a realm. Each value is read by [`latchkey_protocol::challenge::parse_challenge`].
pub fn parse_challenge(values: &[&str]) -> Option<Challenge> {
    values.iter().filter_map(|v| challenge::parse_challenge(v)).find_map(|(scheme, params)| {
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        let realm = params.get("realm").filter(|_| scheme.eq_ignore_ascii_case("bearer"))?;
        Some(Challenge::Bearer { realm: realm.clone(), service: params.get("service").cloned() })
    })
}

/// `error` of a challenge (`insufficient_scope`, `invalid_token`), if any. It is quoted in
/// messages, so only an RFC 6750 error code (a short word) is taken, never free server text.
fn challenge_error(values: &[&str]) -> Option<String> {
    values
        .iter()
        .filter_map(|v| challenge::parse_challenge(v))
        .find_map(|(_, mut params)| params.remove("error"))
        .filter(|e| e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Used {
    Nothing,
    Static(u64),
    Basic,
    Token,
}

impl RegistryClient {
    pub(super) async fn get_authorized(
        &self,
        host: &Host,
        scope: &str,
        url: &Url,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<Answer, RegistryError> {
        let mut challenged = false;
        loop {
            let (authorization, used) = self.authorization(host, scope).await?;
            let (response, same_origin) = self.send_following(url, authorization.as_ref(), accept, range_from).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(Answer { response, url: url.clone() });
            }
            if status != StatusCode::UNAUTHORIZED || !same_origin {
                let secrets = {
                    let auth = host.auth.lock().await;
                    request_secrets(authorization.as_ref(), auth.resolved.as_ref().map(|r| &r.credential))
                };
                return Err(self.status_error(url, response, &secrets).await);
            }
            self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            let values: Vec<String> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let challenge = parse_challenge(&values);
            let error = challenge_error(&values);
            match used {
                Used::Static(generation) => {
                    if let Err(why) = self.refresh_static(host, generation).await {
                        let auth = host.auth.lock().await;
                        let source = auth.resolved.as_ref().map(|r| r.source.to_string()).unwrap_or_default();
                        return Err(RegistryError::new(
                            ErrorKind::Unauthorized,
                            format!(
                                "{} refused the static bearer token from {source} for GET {} (401 Unauthorized{}); {why}. Check the token's audience, issuer, access and expiry (docker-credential-latchkey status shows latchkey's)",
                                host.key,
                                url.path(),
                                error.map(|e| format!(", {e}")).unwrap_or_default(),
                            ),
                        ));
                    }
                }
                Used::Nothing if !challenged => {
                    challenged = true;
                    let mut auth = host.auth.lock().await;
                    auth.challenge = challenge.clone();
                    let resolved = self.resolved(host, &mut auth).await;
                    match (&challenge, &resolved.credential) {
                        (None, _) => {
                            return Err(self.unauthorized(host, &resolved, url, "with no challenge it can answer"));
                        }
                        (
                            Some(Challenge::Basic),
                            Credential::Anonymous | Credential::IdentityToken { .. } | Credential::BearerJwt(_),
                        ) => {
                            return Err(self.unauthorized(host, &resolved, url, "and asks for Basic authentication"));
                        }
                        _ => {}
                    }
                }
                Used::Token if !challenged && error.as_deref() != Some("insufficient_scope") => {
                    // A cached token the registry no longer takes (expired early, revoked): once more.
                    challenged = true;
                    host.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(scope);
                }
                _ => {
                    let mut auth = host.auth.lock().await;
                    let resolved = self.resolved(host, &mut auth).await;
                    let why = match error {
                        Some(e) => format!("({e})"),
                        None => "to the credentials it was given".to_owned(),
                    };
                    return Err(self.unauthorized(host, &resolved, url, &why));
                }
            }
        }
    }

    fn unauthorized(&self, host: &Host, resolved: &Resolved, url: &Url, why: &str) -> RegistryError {
        let refusal = format!("{} answered 401 Unauthorized to GET {} {why}", host.key, url.path());
        // Nothing was sent because nothing is configured, or the helper failed: say that first.
        if matches!(resolved.credential, Credential::Anonymous)
            && let Some(missing) = MissingCredentials::of(resolved, &self.resolver)
        {
            return RegistryError::new(ErrorKind::Unauthorized, missing.explain(&refusal));
        }
        let sent = match &resolved.credential {
            Credential::Anonymous => "no credentials were sent".to_owned(),
            c => format!("it was sent the {} from {}", c.kind(), resolved.source),
        };
        let cause = match (&resolved.helper_error, &resolved.credential) {
            (Some(e), _) => format!("; likely cause: {e} [{}]", resolved.source),
            (None, Credential::Anonymous) => format!("; {}", resolved.describe()),
            _ => String::new(),
        };
        RegistryError::new(ErrorKind::Unauthorized, format!("{refusal}; {sent}{cause}"))
    }

    /// After a static bearer's 401: ask the helper again, once per host. `Ok` if there is a
    /// different credential to retry with, else why not.
    async fn refresh_static(&self, host: &Host, used_generation: u64) -> Result<(), &'static str> {
        let mut auth = host.auth.lock().await;
        if auth.generation != used_generation {
            // Someone else refreshed meanwhile: retry with what they got.
            return Ok(());
        }
        if auth.refreshed {
            return Err("it was already asked for a new token once and the new one was refused too");
        }
        auth.refreshed = true;
        let old = auth.resolved.clone();
        let resolver = self.resolver.clone();
        let key = host.key.clone();
        let refused = old.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            let rejected = match refused.as_ref().map(|r| &r.credential) {
                Some(Credential::StaticBearer(token)) => Some(token),
                _ => None,
            };
            resolver.refresh(&key, rejected)
        })
        .await
        .expect("resolver panicked");
        let changed = match (&old.as_ref().map(|r| &r.credential), &fresh.credential) {
            (Some(Credential::StaticBearer(a)), Credential::StaticBearer(b)) => a.expose() != b.expose(),
            _ => true,
        };
        if let Some(e) = &fresh.helper_error {
            eprintln!("latchkey: warning: asking again after a 401: {e}");
        }
        auth.resolved = Some(fresh);
        auth.generation += 1;
        if changed { Ok(()) } else { Err("asked again, the helper answered the same token") }
    }

    /// The Authorization value for a request in `scope`, and what it is.
    async fn authorization(&self, host: &Host, scope: &str) -> Result<(Option<Secret<String>>, Used), RegistryError> {
        let (resolved, challenge, generation) = {
            let mut auth = host.auth.lock().await;
            let resolved = self.resolved(host, &mut auth).await;
            (resolved, auth.challenge.clone(), auth.generation)
        };
        match (&resolved.credential, challenge) {
            (Credential::StaticBearer(token), _) => {
                Ok((Some(Secret::new(format!("Bearer {}", token.expose()))), Used::Static(generation)))
            }
            (_, None) => Ok((None, Used::Nothing)),
            (Credential::UsernamePassword { username, password }, Some(Challenge::Basic)) => {
                Ok((Some(basic(username, password.expose())), Used::Basic))
            }
            (_, Some(Challenge::Basic)) => Ok((None, Used::Nothing)),
            (credential, Some(Challenge::Bearer { realm, service })) => {
                let token = self.token(host, scope, &realm, service.as_deref(), credential, &resolved).await?;
                Ok((Some(Secret::new(format!("Bearer {}", token.expose()))), Used::Token))
            }
        }
    }
}

pub(super) fn basic(username: &str, password: &str) -> Secret<String> {
    let raw = Secret::new(format!("{username}:{password}"));
    Secret::new(format!("Basic {}", data_encoding::BASE64.encode(raw.expose().as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(&[
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#
            ]),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(parse_challenge(&[r#"Basic realm="Registry Realm""#]), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(&["Negotiate", r#"bearer realm=http://r/t"#]),
            Some(Challenge::Bearer { realm: "http://r/t".into(), service: None })
        );
        assert_eq!(parse_challenge(&["Bearer service=\"x\""]), None);
        assert_eq!(
            challenge_error(&[r#"Bearer realm="r",error="insufficient_scope",scope="a,b""#]).as_deref(),
            Some("insufficient_scope")
        );
    }
}

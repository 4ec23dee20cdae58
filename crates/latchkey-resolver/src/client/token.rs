//! Tokens from a registry's token service (the realm of its `Bearer` challenge): a
//! refresh-token grant for an identity token, a Basic-authenticated GET for a user name and
//! password, an anonymous GET otherwise; cached per repository scope for the client's
//! lifetime, one request per scope at a time.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;
use reqwest::{StatusCode, Url};

use super::advice::{MissingCredentials, answered_plain_http};
use super::auth::basic;
use super::quote::credential_secrets;
use super::transport::{header, origin_text, read_small, redact};
use super::{ErrorKind, Host, PlainHttp, RegistryClient, RegistryError};
use crate::{Credential, Resolved};
use latchkey_http::error_chain;
use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_numbers;

/// A token from a realm, valid until `expires`.
#[derive(Clone)]
pub(super) struct Token {
    value: Secret<String>,
    expires: Instant,
}

impl RegistryClient {
    /// A realm is spoken to over https; plain http only on this machine (and, with
    /// [`PlainHttp::Always`], on the registry's own host, which the user chose plain http
    /// for), or for an anonymous request; never with [`PlainHttp::Never`] (`--https-only`).
    fn check_realm(&self, host: &Host, realm: &Url, credential: &Credential) -> Result<(), RegistryError> {
        if realm.scheme() == "https" {
            return Ok(());
        }
        let shown = redact(realm);
        let refuse = |why: String| {
            Err(RegistryError::new(ErrorKind::Protocol, format!("{} names the token realm {shown}, {why}", host.key)))
        };
        if self.options.plain_http == PlainHttp::Never {
            return refuse("which is plain http; refused: https only".into());
        }
        let loopback = realm.host_str().is_some_and(latchkey_http::is_loopback_host);
        let carries_secret = !matches!(credential, Credential::Anonymous);
        let chosen = self.options.plain_http == PlainHttp::Always && realm.host_str() == host.base.host_str();
        if loopback || !carries_secret || chosen {
            return Ok(());
        }
        refuse(format!(
            "which is plain http on a host that is not this machine; latchkey does not send the {} there (use https)",
            credential.kind()
        ))
    }

    /// A token for `scope`, from the cache or the realm (one request per scope at a time).
    pub(super) async fn token(
        &self,
        host: &Host,
        scope: &str,
        realm: &str,
        service: Option<&str>,
        credential: &Credential,
        resolved: &Resolved,
    ) -> Result<Secret<String>, RegistryError> {
        let slot = host.tokens.lock().unwrap_or_else(|p| p.into_inner()).entry(scope.to_owned()).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(token) = slot.as_ref()
            && token.expires > Instant::now()
        {
            return Ok(token.value.clone());
        }
        let fetched = self.fetch_token(host, scope, realm, service, credential, resolved).await?;
        let value = fetched.value.clone();
        *slot = Some(fetched);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        host: &Host,
        scope: &str,
        realm: &str,
        service: Option<&str>,
        credential: &Credential,
        resolved: &Resolved,
    ) -> Result<Token, RegistryError> {
        let realm_url = Url::parse(realm).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("{} sent a token realm that is not an http(s) URL", host.key),
            )
        })?;
        self.check_realm(host, &realm_url, credential)?;
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        params.push(("scope", scope));
        let what = match credential {
            Credential::IdentityToken { .. } => "refresh-token grant",
            Credential::BearerJwt(_) => "token request with a bearer JWT",
            Credential::UsernamePassword { .. } => "token request with Basic credentials",
            _ => "anonymous token request",
        };
        let request = match credential {
            Credential::IdentityToken { token, .. } => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose().as_str()),
                    ("client_id", "latchkey"),
                ];
                form.extend(params.iter().copied());
                let body = serde_urlencoded::to_string(&form).expect("strings encode");
                self.http
                    .post(realm_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            Credential::UsernamePassword { username, password } => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(params.iter()).append_pair("account", username);
                self.http.get(url).header(AUTHORIZATION, header(&basic(username, password.expose())))
            }
            Credential::BearerJwt(jwt) => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(params.iter());
                self.http.get(url).header(AUTHORIZATION, header(&Secret::new(format!("Bearer {}", jwt.expose()))))
            }
            _ => {
                let mut url = realm_url.clone();
                url.query_pairs_mut().extend_pairs(params.iter());
                self.http.get(url)
            }
        };
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.token_requests.fetch_add(1, Ordering::Relaxed);
        let endpoint = format!("{}{}", origin_text(&realm_url), realm_url.path());
        let response = request.send().await.map_err(|e| {
            if answered_plain_http(&e) {
                // The realm is the registry's to name: --plain-http does not change it.
                return RegistryError::new(
                    ErrorKind::Protocol,
                    format!(
                        "the token service of {} at {endpoint} answered plain HTTP on an https connection; \
                         the registry names an https token realm that serves plain http: its token realm setting is wrong",
                        host.key
                    ),
                );
            }
            RegistryError::new(
                ErrorKind::Transport,
                format!("the token service of {} at {endpoint} did not answer: {}", host.key, error_chain(&e)),
            )
        })?;
        let status = response.status();
        let secrets = credential_secrets(credential);
        // Redirects are not followed (the client follows none): a token request carries the
        // credential in its body or its Authorization header, and is never replayed elsewhere.
        if status.is_redirection()
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
        {
            let target = location.to_str().ok().and_then(|l| realm_url.join(l).ok());
            let (shown, why) = match &target {
                Some(t) if latchkey_http::check_transport(t).is_err() => {
                    (redact(t), "plain http to a host that is not this machine, another origin")
                }
                Some(t) if t.origin() != realm_url.origin() => (redact(t), "another origin"),
                Some(t) => (redact(t), "the same origin, but a token request is never replayed"),
                None => ("an invalid URL".to_owned(), "not followed"),
            };
            return Err(RegistryError::new(
                ErrorKind::Protocol,
                format!(
                    "the token service of {} at {endpoint} redirected the {what} to {} ({status}), {why}; latchkey does not send credentials there",
                    host.key,
                    secrets.quote(&shown, 120)
                ),
            ));
        }
        let body = read_small(response).await.unwrap_or_default();
        if !status.is_success() {
            let kind = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                ErrorKind::Unauthorized
            } else {
                ErrorKind::Status(status.as_u16())
            };
            let refusal = format!(
                "the token service of {} at {endpoint} refused the {what} for {scope}: {status} {}",
                host.key,
                secrets.server_message(&body)
            );
            // Nothing was sent because nothing is configured, or the helper failed: say that first.
            if kind == ErrorKind::Unauthorized
                && matches!(credential, Credential::Anonymous)
                && let Some(missing) = MissingCredentials::of(resolved, &self.resolver)
            {
                return Err(RegistryError::new(kind, missing.explain(&refusal)));
            }
            let cause = match (&resolved.helper_error, credential) {
                (Some(e), _) => format!("; likely cause: {e} [{}]", resolved.source),
                (None, Credential::Anonymous) => format!("; {}", resolved.describe()),
                (None, c) => format!(" ({} from {})", c.kind(), resolved.source),
            };
            return Err(RegistryError::new(kind, format!("{refusal}{cause}")));
        }
        let (value, lifetime) =
            parse_token_answer(&body, &endpoint).map_err(|e| RegistryError::new(ErrorKind::Protocol, e))?;
        // Keep a margin so a token never dies in flight.
        let expires = server_numbers::deadline_after(Instant::now(), lifetime.saturating_sub(Duration::from_secs(10)));
        Ok(Token { value, expires })
    }
}

/// A token service's answer (`token` or `access_token`, and `expires_in`), as the registry
/// client and Bazel's scoped tokens both read it: the lifetime follows [`server_numbers`]
/// (60 s when absent or <= 0, at most a day), and an error never quotes the answer, which
/// holds a token.
pub(crate) fn parse_token_answer(body: &[u8], endpoint: &str) -> Result<(Secret<String>, Duration), String> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        /// Any JSON: a negative, fractional or absurd lifetime is clamped, not an error.
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
        let why = if e.is_data() {
            "a field of the wrong type".to_owned()
        } else {
            format!("not JSON (line {}, column {})", e.line(), e.column())
        };
        format!("the token service at {endpoint} answered no JSON token: {why}")
    })?;
    let value = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("the token service at {endpoint} answered without a token"))?;
    Ok((Secret::new(value), server_numbers::token_lifetime(answer.expires_in.as_ref())))
}

//! Sending one GET: redirects followed by us, not by reqwest, so `Authorization` only goes to
//! the registry's own origin (scheme, host and port), never to blob storage or a CDN; small
//! bodies read with a bound; a failed answer turned into a [`RegistryError`] that quotes the
//! server without the secrets it was sent.

use std::sync::atomic::Ordering;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, RANGE};
use reqwest::{StatusCode, Url};

use super::advice::answered_plain_http;
use super::{ErrorKind, PlainHttp, RegistryClient, RegistryError};
use latchkey_http::{Redactor, error_chain};
use latchkey_protocol::secret::Secret;

/// Redirect hops followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Token endpoint and error bodies are small.
const MAX_SMALL_BODY: usize = 256 * 1024;

impl RegistryClient {
    /// Send a GET, following redirects ourselves. Authorization goes only to `url`'s origin.
    /// Returns the final response and whether it came from that origin.
    pub(super) async fn send_following(
        &self,
        url: &Url,
        authorization: Option<&Secret<String>>,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<(reqwest::Response, bool), RegistryError> {
        let origin = url.origin();
        let mut current = url.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let same_origin = current.origin() == origin;
            let mut request = self.http.get(current.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if range_from > 0 {
                request = request.header(RANGE, format!("bytes={range_from}-"));
            }
            if same_origin && let Some(value) = authorization {
                request = request.header(AUTHORIZATION, header(value));
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = request.send().await.map_err(|e| self.send_error(&current, &e))?;
            if response.status().is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                let location = location.to_str().ok().and_then(|l| current.join(l).ok()).ok_or_else(|| {
                    RegistryError::new(
                        ErrorKind::Protocol,
                        format!("GET {} redirected to an invalid URL", redact(&current)),
                    )
                })?;
                if !matches!(location.scheme(), "http" | "https") {
                    return Err(RegistryError::new(
                        ErrorKind::Protocol,
                        format!("GET {} redirected to a {} URL", redact(&current), location.scheme()),
                    ));
                }
                // `Authorization` never leaves the first origin (below); and no request leaves
                // https for plain http off this machine (nor at all with --https-only), unless
                // plain http was asked for everywhere (--plain-http).
                let downgrade = location.scheme() == "http"
                    && match self.options.plain_http {
                        PlainHttp::Never => true,
                        PlainHttp::Loopback => !location.host_str().is_some_and(latchkey_http::is_loopback_host),
                        PlainHttp::Always => false,
                    };
                if downgrade {
                    return Err(RegistryError::new(
                        ErrorKind::Protocol,
                        format!(
                            "GET {} redirected to plain http at {}, another origin; latchkey does not follow it",
                            redact(&current),
                            redact(&location)
                        ),
                    ));
                }
                self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                current = location;
                continue;
            }
            return Ok((response, same_origin));
        }
        Err(RegistryError::new(
            ErrorKind::Protocol,
            format!("GET {} was redirected more than {MAX_REDIRECTS} times", redact(url)),
        ))
    }

    /// A request that got no answer. A server that answered plain HTTP to https is not a
    /// transient failure (a Protocol error, not retried) and is said in the user's terms.
    fn send_error(&self, url: &Url, e: &reqwest::Error) -> RegistryError {
        if answered_plain_http(e) {
            let server = url.host_str().map(|h| match url.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            });
            let instead = if self.options.plain_http == PlainHttp::Never { " instead of --https-only" } else { "" };
            return RegistryError::new(
                ErrorKind::Protocol,
                format!(
                    "{} answered plain HTTP on an https connection (GET {}); if it really serves plain http, use --plain-http{instead}",
                    server.unwrap_or_default(),
                    redact(url)
                ),
            );
        }
        let why = if e.is_timeout() { "timed out".to_owned() } else { error_chain(e) };
        RegistryError::new(ErrorKind::Transport, format!("GET {} failed: {why}", redact(url)))
    }

    pub(super) async fn status_error(
        &self,
        url: &Url,
        response: reqwest::Response,
        secrets: &Redactor,
    ) -> RegistryError {
        let status = response.status();
        let final_url = redact(response.url());
        let body = read_small(response).await.unwrap_or_default();
        let kind = match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Unauthorized,
            s => ErrorKind::Status(s.as_u16()),
        };
        let via = if final_url != redact(url) { format!(" (redirected to {final_url})") } else { String::new() };
        // Only the fields meant for people, and no spelling of a secret in play, even if the
        // server echoes one (see latchkey_http::redact).
        RegistryError::new(
            kind,
            format!("GET {}{via} answered {status}: {}", redact(url), secrets.server_message(&body)),
        )
    }
}

pub(super) fn header(value: &Secret<String>) -> HeaderValue {
    let mut v = HeaderValue::from_str(value.expose()).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    v.set_sensitive(true);
    v
}

pub(super) fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL without query or userinfo, for messages (blob storage URLs carry signatures).
pub(super) fn redact(url: &Url) -> String {
    format!("{}{}", origin_text(url), url.path())
}

pub(super) async fn read_small(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_SMALL_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_SMALL_BODY {
            break;
        }
    }
    Ok(body)
}

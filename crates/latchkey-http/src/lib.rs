//! The one place latchkey builds an HTTP client: rustls (ring, no OpenSSL), bounded time,
//! bounded bodies, errors that name the peer. Only cold paths come here; a cached `get`
//! never builds a client.
//!
//! Every request this client sends carries a secret or fetches one (request bearers, subject
//! tokens, device codes and secrets, Basic passwords), so one transport policy holds for all
//! of them, here and nowhere else:
//!
//! * plain `http://` only to this machine ([`is_loopback_host`]); anything else is refused
//!   before a connection is made;
//! * redirects are followed only within the origin (scheme, host and port) of the request;
//!   a redirect anywhere else (another host or port, an `http://` downgrade) is not followed
//!   and is an error, so a body (a form with a secret in it) is never replayed elsewhere on
//!   a 307/308, and a header never follows either;
//! * what the server answered reaches messages only through [`redact::Redactor`].

use std::io::Read;
use std::time::{Duration, Instant};

use latchkey_protocol::secret::Secret;

mod loopback;
pub mod redact;
pub use loopback::is_loopback_host;
pub use redact::Redactor;

/// Redirect hops followed (within one origin) before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Bodies latchkey reads are tokens and small JSON documents.
pub const MAX_BODY_BYTES: u64 = 256 * 1024;

/// A blocking client with a connect timeout and an overall per-request timeout.
/// `peer` names the server in every error ("identity endpoint", "token exchange service").
pub struct Client {
    inner: reqwest::blocking::Client,
    peer: String,
    /// The whole exchange (connect, headers and body) must end within this.
    timeout: Duration,
    /// Secrets this client sends (request bearers, subject tokens, device secrets and codes):
    /// a peer that quotes them back in an error body must not get them into our messages.
    redact: Redactor,
}

/// A response whose body has been read (bounded).
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    redact: Redactor,
}

impl Client {
    pub fn new(peer: &str, timeout: Duration) -> Result<Client, String> {
        // Installing the provider twice is harmless; it only fails if one is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = reqwest::blocking::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(same_origin_redirects())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up an HTTP client for the {peer}: {}", error_chain(&e)))?;
        Ok(Client { inner, peer: peer.to_owned(), timeout, redact: Redactor::new() })
    }

    /// Never let `secret` (which this client sends) into a message made from a response, in
    /// any spelling: see [`Response::server_message`].
    pub fn redacting(mut self, secret: &Secret<String>) -> Client {
        self.redact.add_secret(secret.expose());
        self
    }

    /// Never let `secret`, sent as `user`'s Basic password, into a message, in any spelling
    /// (including the base64 of `user:secret` a server may echo from the header).
    pub fn redacting_basic(mut self, user: &str, secret: &Secret<String>) -> Client {
        self.redact.add_basic(user, secret.expose());
        self
    }

    /// The secrets this client sends, for texts made from its answers by callers.
    pub fn redactor(&self) -> &Redactor {
        &self.redact
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn get(&self, url: &str) -> reqwest::blocking::RequestBuilder {
        self.inner.get(url)
    }

    pub fn post(&self, url: &str) -> reqwest::blocking::RequestBuilder {
        self.inner.post(url)
    }

    /// Send and read at most [`MAX_BODY_BYTES`]. `url_for_errors` must carry no secret.
    /// Refused before any connection: plain http off this machine. Refused after the answer:
    /// a redirect out of the request's origin (it was not followed).
    pub fn send(&self, request: reqwest::blocking::RequestBuilder, url_for_errors: &str) -> Result<Response, String> {
        let peer = &self.peer;
        let (client, request) = request.build_split();
        let request = request
            .map_err(|e| format!("cannot build the request to the {peer} at {url_for_errors}: {}", error_chain(&e)))?;
        check_transport(request.url()).map_err(|why| format!("the {peer} at {url_for_errors} {why}; latchkey does not send secrets there (use https; plain http is allowed only for localhost, 127.0.0.0/8 and [::1])"))?;
        let deadline = Instant::now() + self.timeout;
        let response = client.execute(request).map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                format!("cannot connect ({})", error_chain(&e))
            } else if e.is_redirect() {
                "too many redirects".to_owned()
            } else {
                error_chain(&e)
            };
            format!("the {peer} at {url_for_errors} did not answer: {why}")
        })?;
        if response.status().is_redirection()
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
        {
            let target = location.to_str().ok().and_then(|l| response.url().join(l).ok());
            return Err(match target {
                Some(target) => {
                    let why = match check_transport(&target) {
                        Err(_) if target.scheme() == "http" => {
                            "plain http to a host that is not this machine, another origin"
                        }
                        _ => "another origin",
                    };
                    format!(
                        "the {peer} at {url_for_errors} redirected to {}, {why}; latchkey does not send secrets there",
                        self.redact.quote(&shown_url(&target), 120)
                    )
                }
                None => {
                    format!("the {peer} at {url_for_errors} redirected to an invalid URL; latchkey does not follow it")
                }
            });
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // reqwest's blocking timeout bounds each read, not the body: a peer trickling a byte
        // now and then would hold us for as long as it likes. Check the deadline between reads
        // (so the whole exchange ends within twice the timeout at worst).
        let mut body = Vec::new();
        let mut reader = response.take(MAX_BODY_BYTES + 1);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| format!("the {peer} at {url_for_errors} sent a broken or too slow response body: {e}"))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            if Instant::now() > deadline && body.len() as u64 <= MAX_BODY_BYTES {
                return Err(format!(
                    "the {peer} at {url_for_errors} timed out: its response body was still arriving after {}s",
                    self.timeout.as_secs_f32()
                ));
            }
        }
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(format!(
                "the {peer} at {url_for_errors} sent more than {} KiB; refusing to read further",
                MAX_BODY_BYTES / 1024
            ));
        }
        Ok(Response { status, headers, body, redact: self.redact.clone() })
    }
}

impl Response {
    /// What the server said, for people, with no secret in it: the error fields of a JSON
    /// body, cleaned of every spelling of what the request carried, then truncated; any other
    /// body only described (see [`Redactor::server_message`]).
    pub fn server_message(&self) -> String {
        self.redact.server_message(&self.body)
    }

    /// The secrets the request carried, to clean other texts made from this answer.
    pub fn redactor(&self) -> &Redactor {
        &self.redact
    }
}

/// Follow a redirect only within the origin of the first request; stop (the caller turns the
/// 3xx into an error) at any other origin, and at an http target off this machine.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else { return attempt.stop() };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        if attempt.url().origin() != first.origin() || check_transport(attempt.url()).is_err() {
            return attempt.stop();
        }
        attempt.follow()
    })
}

/// https anywhere; http only to this machine.
pub fn check_transport(url: &reqwest::Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err("uses plain http on a host that is not this machine".to_owned()),
        other => Err(format!("uses the scheme {other:?}")),
    }
}

/// A URL for messages: origin and path, no user info, query or fragment (they may carry
/// signatures or secrets).
pub fn shown_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// reqwest's Display hides the cause ("error sending request"); the chain has the reason.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "https://example.com/x",
            "http://127.0.0.1:5000/",
            "http://localhost/",
            "http://[::1]:1/",
            "http://a.localhost/",
        ] {
            assert!(check_transport(&reqwest::Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://example.invalid/", "http://10.0.0.1/", "ftp://127.0.0.1/", "http://localhost.example.com/"]
        {
            assert!(check_transport(&reqwest::Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_is_refused_before_connecting() {
        let client = Client::new("revocation endpoint", Duration::from_secs(2)).unwrap();
        let err =
            client.send(client.post("http://example.invalid/revoke").body("token=x"), "http://example.invalid/revoke");
        let err = err.err().unwrap();
        assert!(err.contains("plain http") && err.contains("revocation endpoint"), "{err}");
    }

    #[test]
    fn messages_never_quote_what_the_request_carried() {
        let secret = "s3cr\"et+/=&x";
        let response = Response {
            status: 401,
            headers: reqwest::header::HeaderMap::new(),
            body: format!("{{\"error\":\"bad\",\"error_description\":{}}}", serde_json::to_string(secret).unwrap())
                .into_bytes(),
            redact: Redactor::new().secret(secret),
        };
        let message = response.server_message();
        assert_eq!(message, "\"bad: <redacted>\"");
    }
}

//! The one place latchkey builds an HTTP client: rustls (ring, no OpenSSL), bounded time,
//! bounded bodies, errors that name the peer. Only cold paths come here; a cached `get`
//! never builds a client.

use std::io::Read;
use std::time::{Duration, Instant};

use latchkey_protocol::secret::Secret;

mod loopback;
pub use loopback::is_loopback_host;

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
    redact: Vec<Secret<String>>,
}

/// A response whose body has been read (bounded).
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    redact: Vec<Secret<String>>,
}

impl Client {
    pub fn new(peer: &str, timeout: Duration) -> Result<Client, String> {
        // Installing the provider twice is harmless; it only fails if one is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = reqwest::blocking::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up an HTTP client for the {peer}: {}", error_chain(&e)))?;
        Ok(Client { inner, peer: peer.to_owned(), timeout, redact: Vec::new() })
    }

    /// Never let `secret` (which this client sends) into an error message made from a
    /// response: [`Response::body_excerpt`] and [`Response::redact`] replace it.
    pub fn redacting(mut self, secret: &Secret<String>) -> Client {
        if !secret.expose().is_empty() {
            self.redact.push(secret.clone());
        }
        self
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
    pub fn send(&self, request: reqwest::blocking::RequestBuilder, url_for_errors: &str) -> Result<Response, String> {
        let peer = &self.peer;
        let deadline = Instant::now() + self.timeout;
        let response = request.send().map_err(|e| {
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
    /// A short, printable description of the body for error messages: the first line of
    /// text (bounded), or its size when it is not text. Callers must only use this for
    /// bodies that carry no secret (error responses).
    pub fn body_excerpt(&self) -> String {
        let excerpt = match std::str::from_utf8(&self.body) {
            Ok(text) => {
                let trimmed = text.trim();
                if trimmed.starts_with('<') {
                    return "an HTML page".to_owned();
                }
                let line: String = trimmed.lines().next().unwrap_or("").chars().take(200).collect();
                // Redact before quoting (the Debug escapes could split a secret).
                let line = self.redact(line);
                if line.is_empty() { "an empty body".to_owned() } else { format!("{line:?}") }
            }
            Err(_) => format!("{} bytes of binary data", self.body.len()),
        };
        self.redact(excerpt)
    }

    /// `text` (made from this response) with every secret the request carried replaced,
    /// in its plain, form-encoded and JSON-escaped spellings.
    pub fn redact(&self, text: String) -> String {
        let mut text = text;
        for secret in &self.redact {
            let plain = secret.expose().as_str();
            let form: String = url::form_urlencoded::byte_serialize(plain.as_bytes()).collect();
            let json = serde_json::to_string(plain).unwrap_or_default();
            let json = json.trim_matches('"');
            for spelling in [plain, form.as_str(), json] {
                if !spelling.is_empty() && text.contains(spelling) {
                    text = text.replace(spelling, "<redacted>");
                }
            }
        }
        text
    }
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

    fn response(body: &str, secrets: &[&str]) -> Response {
        Response {
            status: 401,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            redact: secrets.iter().map(|s| Secret::from(*s)).collect(),
        }
    }

    #[test]
    fn excerpts_never_quote_what_the_request_carried() {
        let secret = "s3cr\"et+/=&x";
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for body in [
            format!("denied: {secret}"),
            format!("{{\"error\":\"bad\",\"echo\":{}}}", serde_json::to_string(secret).unwrap()),
            format!("subject_token={form}&x=1"),
        ] {
            let excerpt = response(&body, &[secret]).body_excerpt();
            assert!(!excerpt.contains("s3cr"), "{excerpt}");
            assert!(excerpt.contains("<redacted>"), "{excerpt}");
        }
        assert_eq!(response("plain", &[]).body_excerpt(), "\"plain\"");
        assert_eq!(response("a secret here", &["secret"]).redact("the secret".into()), "the <redacted>");
    }
}

//! Redaction by construction: what a server answered reaches people (messages, `status`,
//! files on disk) only through [`Redactor::server_message`] and [`Redactor::quote`].
//!
//! * Raw bodies are never shown. Only the fields meant for people are taken, after decoding
//!   the JSON (so `\u`-escapes are already undone): OCI `errors[].code` and `message`, OAuth
//!   `error` and `error_description`, a top-level `message`. Anything else is described (its
//!   kind and size), never quoted.
//! * Every spelling of every secret in play is replaced before anything is cut: plain,
//!   JSON-escaped (short escapes and `\uXXXX`), percent-encoded (form and URL encodings, upper
//!   and lower case hex, every byte or only the reserved ones), base64 (standard and URL-safe,
//!   with and without padding) of the secret and of `user:secret` (what a server echoing an
//!   `Authorization: Basic` header sends back).
//! * Then the result is checked once more through decoding views (percent-decoded,
//!   JSON-unescaped, base64 runs decoded): if a secret still shows through any of them, the
//!   whole text is withheld.
//! * Only then is it made printable and truncated, so a truncation can never cut a secret in
//!   two and leave a half that was not recognised.

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD};
use latchkey_protocol::secret::Secret;

/// What replaces a secret in a text.
pub const REDACTED: &str = "<redacted>";
/// What replaces a whole text a secret still shows through after replacement.
pub const WITHHELD: &str = "(withheld: it repeats a secret latchkey sent)";
/// Longest server text quoted, in characters.
pub const MAX_QUOTED_CHARS: usize = 200;

/// The secrets in play for one exchange, and every spelling of them.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The secrets themselves (what a decoded view must never contain).
    secrets: Vec<Secret<String>>,
    /// Every spelling, longest first.
    spellings: Vec<Secret<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Also take out `secret` (a token, a device secret or code, a password).
    pub fn secret(mut self, secret: &str) -> Redactor {
        self.add_secret(secret);
        self
    }

    /// Also take out `secret` sent as the password of `user` in `Authorization: Basic`.
    pub fn basic(mut self, user: &str, secret: &str) -> Redactor {
        self.add_basic(user, secret);
        self
    }

    pub fn add_secret(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|s| s.expose() == secret) {
            return;
        }
        self.secrets.push(Secret::new(secret.to_owned()));
        self.add_spellings(secret);
        self.sort();
    }

    pub fn add_basic(&mut self, user: &str, secret: &str) {
        if secret.is_empty() {
            return;
        }
        self.add_secret(secret);
        let pair = Secret::new(format!("{user}:{secret}"));
        self.add_spellings(pair.expose());
        self.sort();
    }

    /// Everything in `other` too.
    pub fn merge(&mut self, other: &Redactor) {
        for s in &other.secrets {
            if !self.secrets.iter().any(|m| m.expose() == s.expose()) {
                self.secrets.push(s.clone());
            }
        }
        for s in &other.spellings {
            self.spellings.push(s.clone());
        }
        self.sort();
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Every spelling of every secret (for checks such as "does this URL carry a secret?").
    pub fn spellings(&self) -> Vec<&str> {
        self.spellings.iter().map(|s| s.expose().as_str()).collect()
    }

    /// Whether `text` carries a secret in any spelling or decoding view.
    pub fn leaks(&self, text: &str) -> bool {
        self.spellings.iter().any(|s| text.contains(s.expose().as_str())) || self.shows_through(text)
    }

    fn add_spellings(&mut self, material: &str) {
        let bytes = material.as_bytes();
        let mut out: Vec<String> = vec![material.to_owned()];
        // JSON: serde's minimal escaping, and every character as \uXXXX (both cases).
        if let Ok(json) = serde_json::to_string(material) {
            out.push(json[1..json.len() - 1].to_owned());
        }
        for upper in [false, true] {
            let mut all = String::new();
            for unit in material.encode_utf16() {
                if upper {
                    all.push_str(&format!("\\u{unit:04X}"));
                } else {
                    all.push_str(&format!("\\u{unit:04x}"));
                }
            }
            out.push(all);
        }
        // Percent-encodings: form (`+` for space), reserved-only and every byte, both cases.
        out.push(url::form_urlencoded::byte_serialize(bytes).collect());
        for upper in [false, true] {
            let mut reserved = String::new();
            let mut every = String::new();
            for &b in bytes {
                let hex = if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    reserved.push(b as char);
                } else {
                    reserved.push_str(&hex);
                }
                every.push_str(&hex);
            }
            out.push(reserved);
            out.push(every);
        }
        // base64, both alphabets, with and without padding.
        for encoding in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
            out.push(encoding.encode(bytes));
        }
        for s in out {
            if !s.is_empty() && !self.spellings.iter().any(|m| m.expose() == &s) {
                self.spellings.push(Secret::new(s));
            }
        }
    }

    fn sort(&mut self) {
        self.spellings.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    }

    /// `text` with every spelling of every secret replaced, or [`WITHHELD`] if a secret still
    /// shows through a decoding of what is left. Not truncated.
    pub fn clean(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_owned();
        }
        let mut text = text.to_owned();
        for spelling in &self.spellings {
            let s = spelling.expose().as_str();
            if text.contains(s) {
                text = text.replace(s, REDACTED);
            }
        }
        if self.shows_through(&text) { WITHHELD.to_owned() } else { text }
    }

    /// `text` from a server, ready for a message: cleaned, made printable (control characters
    /// replaced), then cut to `max_chars`.
    pub fn quote(&self, text: &str, max_chars: usize) -> String {
        let clean = self.clean(text);
        let trimmed = clean.trim();
        let mut out: String =
            trimmed.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).take(max_chars).collect();
        if trimmed.chars().count() > max_chars {
            out.push('…');
        }
        out
    }

    /// Does a secret show through a decoding of `text`?
    fn shows_through(&self, text: &str) -> bool {
        let views = decoded_views(text);
        self.secrets.iter().any(|s| {
            let s = s.expose().as_str();
            views.iter().any(|v| v.contains(s))
        })
    }

    /// What a server's answer says, for people: the error fields of a JSON body (OCI
    /// `errors[].code`/`message`, OAuth `error`/`error_description`, a top-level `message`),
    /// decoded, cleaned, quoted and truncated; any other body only described, never quoted.
    pub fn server_message(&self, body: &[u8]) -> String {
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() {
            return "an empty body".to_owned();
        }
        if trimmed.starts_with(b"<") {
            return "an HTML page".to_owned();
        }
        match serde_json::from_slice::<serde_json::Value>(trimmed) {
            Ok(json) => match people_fields(&json) {
                Some(text) => format!("\"{}\"", self.quote(&text, MAX_QUOTED_CHARS)),
                None => format!("a JSON body of {} bytes without an error message", body.len()),
            },
            Err(_) if std::str::from_utf8(body).is_ok() => {
                format!("a body of {} bytes that is not JSON (not quoted)", body.len())
            }
            Err(_) => format!("{} bytes of binary data", body.len()),
        }
    }
}

/// The fields of a JSON error body meant for people, joined; `None` if it has none.
pub fn people_fields(json: &serde_json::Value) -> Option<String> {
    fn text(v: Option<&serde_json::Value>) -> Option<&str> {
        v.and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty())
    }
    let mut parts = Vec::new();
    if let Some(errors) = json.get("errors").and_then(|e| e.as_array()) {
        for e in errors.iter().take(3) {
            let part =
                [text(e.get("code")), text(e.get("message"))].into_iter().flatten().collect::<Vec<_>>().join(" ");
            if !part.is_empty() {
                parts.push(part);
            }
        }
    }
    if let Some(error) = text(json.get("error")) {
        parts.push(match text(json.get("error_description")) {
            Some(d) => format!("{error}: {d}"),
            None => error.to_owned(),
        });
    }
    if parts.is_empty()
        && let Some(m) = text(json.get("message"))
    {
        parts.push(m.to_owned());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `text` as it reads once decoded each way a server might have encoded a secret in it.
fn decoded_views(text: &str) -> Vec<String> {
    let mut views = Vec::new();
    let percent = percent_decode(text);
    views.push(String::from_utf8_lossy(&percent).into_owned());
    let form = percent_decode(&text.replace('+', " "));
    views.push(String::from_utf8_lossy(&form).into_owned());
    views.push(json_unescape(text));
    views.push(json_unescape(&String::from_utf8_lossy(&percent)));
    // Runs of base64 characters, decoded with either alphabet.
    for run in text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_' | '='))) {
        let run = run.trim_end_matches('=');
        if run.len() < 4 {
            continue;
        }
        // Any start offset (other text may be glued to its front) and any end (to its back).
        for start in 0..4.min(run.len()) {
            for trim in 0..4 {
                let Some(slice) = run.get(start..run.len().saturating_sub(trim)) else { continue };
                if slice.len() < 4 || slice.len() % 4 == 1 {
                    continue;
                }
                for encoding in [&BASE64_NOPAD, &BASE64URL_NOPAD] {
                    if let Ok(bytes) = encoding.decode(slice.as_bytes()) {
                        views.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
    }
    views
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// JSON string escapes undone wherever they appear (`\uXXXX` with surrogate pairs, `\"`, ...).
fn json_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            pending_high = None;
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('u') => {
                let mut probe = chars.clone();
                probe.next();
                let digits: String = probe.by_ref().take(4).collect();
                match u16::from_str_radix(&digits, 16) {
                    Ok(unit) if digits.len() == 4 => {
                        chars = probe;
                        if (0xD800..0xDC00).contains(&unit) {
                            pending_high = Some(unit);
                        } else if (0xDC00..0xE000).contains(&unit) {
                            if let Some(high) = pending_high.take()
                                && let Some(c) = char::decode_utf16([high, unit]).next().and_then(Result::ok)
                            {
                                out.push(c);
                            }
                        } else if let Some(c) = char::from_u32(unit.into()) {
                            out.push(c);
                        }
                    }
                    _ => out.push('\\'),
                }
            }
            Some(e @ ('"' | '\\' | '/')) => {
                chars.next();
                out.push(e);
            }
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            Some('t') => {
                chars.next();
                out.push('\t');
            }
            Some('r') => {
                chars.next();
                out.push('\r');
            }
            _ => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr\"et+/=&x ü";

    fn every_spelling(user: &str, secret: &str) -> Vec<String> {
        let pair = format!("{user}:{secret}");
        let mut out = vec![secret.to_owned()];
        out.push(serde_json::to_string(secret).unwrap().trim_matches('"').to_owned());
        out.push(secret.encode_utf16().map(|u| format!("\\u{u:04x}")).collect());
        out.push(secret.encode_utf16().map(|u| format!("\\u{u:04X}")).collect());
        out.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        // Mixed-case percent-encoding of every byte: no fixed spelling, caught by decoding.
        out.push(
            secret
                .bytes()
                .enumerate()
                .map(|(i, b)| if i % 2 == 0 { format!("%{b:02x}") } else { format!("%{b:02X}") })
                .collect(),
        );
        for e in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
            out.push(e.encode(pair.as_bytes()));
            out.push(format!("Basic {}", e.encode(pair.as_bytes())));
            out.push(e.encode(secret.as_bytes()));
        }
        out
    }

    #[test]
    fn every_spelling_is_taken_out_of_every_field() {
        let r = Redactor::new().basic("alice", SECRET);
        for spelling in every_spelling("alice", SECRET) {
            for body in [
                serde_json::json!({"errors": [{"code": "DENIED", "message": format!("echo {spelling} end")}]}),
                serde_json::json!({"error": "invalid_grant", "error_description": format!("got {spelling}")}),
                serde_json::json!({"message": spelling}),
            ] {
                let message = r.server_message(&serde_json::to_vec(&body).unwrap());
                for s in every_spelling("alice", SECRET) {
                    assert!(!message.contains(&s), "{spelling:?} -> {message}");
                }
                assert!(!message.contains("s3cr"), "{spelling:?} -> {message}");
            }
        }
    }

    #[test]
    fn a_secret_is_never_cut_in_two_by_truncation() {
        let secret = "abcdefghijklmnop0123456789";
        let r = Redactor::new().secret(secret);
        for pad in 0..MAX_QUOTED_CHARS + 5 {
            let text = format!("{}{secret} tail", "x".repeat(pad));
            let quoted = r.quote(&text, MAX_QUOTED_CHARS);
            assert!(!quoted.contains("abcdefghij"), "{pad}: {quoted}");
        }
    }

    #[test]
    fn bodies_are_never_quoted_raw() {
        let r = Redactor::new().secret("hunter22");
        assert_eq!(r.server_message(b""), "an empty body");
        assert_eq!(r.server_message(b"  <html>hunter22</html>"), "an HTML page");
        assert!(!r.server_message(b"denied hunter22").contains("hunter"));
        assert!(!r.server_message(b"plain words").contains("plain"));
        assert!(r.server_message(br#"{"detail":"hunter22"}"#).contains("without an error message"));
        assert_eq!(
            r.server_message(
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#
            ),
            "\"UNAUTHORIZED authentication required\""
        );
        assert_eq!(
            r.server_message(br#"{"error":"invalid_grant","error_description":"bad hunter22"}"#),
            "\"invalid_grant: bad <redacted>\""
        );
    }

    #[test]
    fn what_still_shows_through_is_withheld() {
        let r = Redactor::new().secret("hunter22");
        // Half-escaped: neither a plain nor a fully escaped spelling.
        assert_eq!(r.clean("x hun\\u0074er22 y"), WITHHELD);
        assert!(!r.clean("x hun%74Er22 y").contains("hunter"));
        assert_eq!(r.clean("nothing here"), "nothing here");
    }

    #[test]
    fn views_decode() {
        assert_eq!(json_unescape(r#"a\u0062\"c\\"#), "ab\"c\\");
        assert_eq!(json_unescape(r"\ud83d\ude00"), "😀");
        assert_eq!(percent_decode("a%2Fb%2f%zz%"), b"a/b/%zz%");
    }
}

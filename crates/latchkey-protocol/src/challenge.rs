//! `WWW-Authenticate` challenges (RFC 7235 §4.1): the one parser of the project. The registry
//! client (which token service to ask, whether to send Basic) and the device session check
//! (where the token endpoint is) read a registry's 401 with it, and one fuzz target
//! (fuzz/www_authenticate) covers both. Pure: it takes header values as text, no HTTP types.
//!
//! The rule, for one header value holding one challenge:
//!
//! * the scheme is everything before the first whitespace, kept as sent (compare it with
//!   `eq_ignore_ascii_case`); an empty or blank value is no challenge;
//! * then `name=value` parameters separated by commas. Names are trimmed and lower-cased
//!   (they are case-insensitive). A value is either quoted (`"..."`, where `\` escapes the next
//!   character; kept exactly, spaces included; an unterminated quote runs to the end) or a
//!   token (up to the next comma, trimmed);
//! * a name without `=` is skipped; when a name occurs twice, the first one counts.
//!
//! Several challenges in one header value (`Basic realm="a", Bearer realm="b"`) are not split
//! apart: registries send one challenge per header line, and callers look at each line.

use std::collections::BTreeMap;

/// Parse one `WWW-Authenticate` value into its scheme and its parameters (names lower-cased).
/// `None` for a blank value. See the module docs for the rule.
pub fn parse_challenge(header: &str) -> Option<(String, BTreeMap<String, String>)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return Some((scheme.to_owned(), params));
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        params.entry(name.trim().to_ascii_lowercase()).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(header: &str) -> BTreeMap<String, String> {
        parse_challenge(header).expect("a challenge").1
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The device session check's cases (from src/source/device/session.rs).
    #[test]
    fn bearer_and_basic_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://reg.example/auth/token",service="reg.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://reg.example/auth/token");
        assert_eq!(p["service"], "reg.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="x \"y\"", charset=UTF-8"#).unwrap();
        assert_eq!(scheme, "Basic");
        assert_eq!(p["realm"], "x \"y\"");
        assert_eq!(p["charset"], "UTF-8");
        let (_, p) = parse_challenge("Bearer realm=\"unterminated").unwrap();
        assert_eq!(p["realm"], "unterminated");
    }

    /// The registry client's cases (from the resolver's `parse_params`).
    #[test]
    fn quoted_commas_escapes_and_tokens() {
        assert_eq!(params(r#"X a="x\"y,z", b=c"#), map(&[("a", "x\"y,z"), ("b", "c")]));
        assert_eq!(
            params(r#"Bearer realm="r",error="insufficient_scope",scope="a,b""#),
            map(&[("realm", "r"), ("error", "insufficient_scope"), ("scope", "a,b")])
        );
        assert_eq!(params("bearer realm=http://r/t"), map(&[("realm", "http://r/t")]));
    }

    #[test]
    fn the_edges_of_the_rule() {
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge("  \t "), None);
        assert_eq!(parse_challenge("Negotiate"), Some(("Negotiate".into(), BTreeMap::new())));
        // Any whitespace ends the scheme.
        assert_eq!(parse_challenge("Bearer\trealm=x"), Some(("Bearer".into(), map(&[("realm", "x")]))));
        // Names are case-insensitive; the first of two counts.
        assert_eq!(params(r#"Bearer REALM="a", realm="b""#), map(&[("realm", "a")]));
        // Quoted values are kept exactly; tokens are trimmed.
        assert_eq!(params(r#"Bearer a=" x ", b= y , c="""#), map(&[("a", " x "), ("b", "y"), ("c", "")]));
        // A name without '=' is skipped.
        assert_eq!(params("Bearer lonely, realm=r"), map(&[("realm", "r")]));
    }
}

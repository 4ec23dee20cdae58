//! Opening a URL in the user's browser, deciding whether there is a user (and a browser) at
//! all, and deciding whether a URL a server handed us is safe to open.
//!
//! - `BROWSER` (if set) is a command, split on whitespace and run without a shell, with the
//!   URL as its last argument (or in place of a `%s` argument). Tests use it as a stand-in.
//!   Otherwise the platform's default browser is opened through the `webbrowser` crate.
//! - Headless: `LATCHKEY_INTERACTIVE=0|1` decides if set; otherwise `CI`, an SSH session,
//!   no `DISPLAY`/`WAYLAND_DISPLAY` (Linux and BSDs) or a stderr that is not a terminal
//!   each mean "nobody can use a browser here".
//! - [`check_login_url`]: https only (http only on loopback), on the registry's host or a host
//!   the config allows, no userinfo, never carrying a secret.

use std::io::IsTerminal;
use std::process::{Command, Stdio};

use reqwest::Url;

pub const ENV_INTERACTIVE: &str = "LATCHKEY_INTERACTIVE";
pub const ENV_BROWSER: &str = "BROWSER";

/// `Ok(())` when a person is here and a browser can be opened; otherwise why not.
pub fn interactive() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(v) = var(ENV_INTERACTIVE) {
        return match v.trim() {
            "1" | "true" | "yes" => Ok(()),
            "0" | "false" | "no" => Err(format!("{ENV_INTERACTIVE}={v}")),
            _ => Err(format!("{ENV_INTERACTIVE}={v:?} is not 0 or 1; taken as 0")),
        };
    }
    if var("CI").is_some_and(|v| !matches!(v.as_str(), "0" | "false")) {
        return Err("CI is set".into());
    }
    if var("SSH_CONNECTION").is_some() || var("SSH_TTY").is_some() {
        return Err("this is an SSH session (a browser would open on the remote machine)".into());
    }
    if cfg!(all(unix, not(target_os = "macos"))) && var("DISPLAY").is_none() && var("WAYLAND_DISPLAY").is_none() {
        return Err("there is no display (DISPLAY and WAYLAND_DISPLAY are unset)".into());
    }
    if !std::io::stderr().is_terminal() {
        return Err("stderr is not a terminal".into());
    }
    Ok(())
}

/// Open `url` (already checked) in the browser. Returns how it was opened, for the message.
pub fn open(url: &Url) -> Result<String, String> {
    if let Some(browser) = std::env::var(ENV_BROWSER).ok().filter(|v| !v.trim().is_empty()) {
        let mut argv: Vec<String> = browser.split_whitespace().map(str::to_owned).collect();
        let mut substituted = false;
        for arg in argv.iter_mut().skip(1) {
            if arg.contains("%s") {
                *arg = arg.replace("%s", url.as_str());
                substituted = true;
            }
        }
        if !substituted {
            argv.push(url.as_str().to_owned());
        }
        // stdout is the credential protocol: the browser must never write to it.
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run the browser command {:?} from {ENV_BROWSER}: {e}", argv[0]))?;
        // Reap it whenever it finishes; we never wait for a browser.
        std::thread::spawn(move || child.wait());
        return Ok(format!("with {:?} ({ENV_BROWSER})", argv[0]));
    }
    let options = {
        let mut o = webbrowser::BrowserOptions::new();
        o.with_suppress_output(true);
        o
    };
    webbrowser::open_browser_with_options(webbrowser::Browser::Default, url.as_str(), &options)
        .map(|()| "in your default browser".to_owned())
        .map_err(|e| format!("cannot open a browser: {e}"))
}

/// Hosts a login page may be on: the registry's own host and the hosts the user named.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: Vec<String>,
}

impl AllowedHosts {
    pub fn new() -> Self {
        AllowedHosts::default()
    }

    /// Add a host (`host`, `host:port`, `[::1]:5000` or a URL); its port is ignored.
    pub fn add(&mut self, host_or_url: &str) {
        if let Some(host) = host_of(host_or_url).filter(|h| !self.hosts.contains(h)) {
            self.hosts.push(host);
        }
    }

    pub fn contains(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn list(&self) -> String {
        self.hosts.join(", ")
    }
}

/// The host part (no port, lower case, IPv6 in brackets) of `host[:port]` or a URL.
pub fn host_of(host_or_url: &str) -> Option<String> {
    let text = host_or_url.trim();
    let url = if text.contains("://") { Url::parse(text) } else { Url::parse(&format!("https://{text}")) };
    let url = url.ok()?;
    match url.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(format!("[{ip}]")),
    }
}

/// Whether `url`'s host is this machine (plain http is acceptable only there), by
/// [`latchkey_http::is_loopback_host`].
pub fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(latchkey_http::is_loopback_host)
}

/// Check a URL latchkey sends secrets to (token endpoint, device endpoints): https, or http on
/// loopback; no userinfo. `what` names it in the error.
pub fn check_endpoint_url(url: &str, what: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(format!(
                "{what} {url:?} uses plain http on a host that is not this machine; use https (http is allowed only for localhost/127.0.0.1/[::1])"
            ));
        }
        other => return Err(format!("{what} {url:?} has scheme {other:?}; use https")),
    }
    if parsed.host().is_none() {
        return Err(format!("{what} {url:?} names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{what} must not carry a user name or password in the URL"));
    }
    Ok(parsed)
}

/// Decide whether a login page URL (from a server's answer) may be opened. `secrets` are values
/// that must never appear in a URL we open. The error says why, and never repeats a secret.
pub fn check_login_url(url: &str, allowed: &AllowedHosts, secrets: &[&str]) -> Result<Url, String> {
    let shown = printable(url, 120);
    if secrets.iter().any(|s| !s.is_empty() && url.contains(s)) {
        return Err("the login URL carries the device secret; refusing to open it".into());
    }
    let parsed = Url::parse(url.trim()).map_err(|e| format!("the login URL {shown} is not a valid URL ({e})"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(format!(
                "the login URL {shown} uses plain http on a host that is not this machine; only https is opened"
            ));
        }
        other => return Err(format!("the login URL {shown} has scheme {other:?}; only https is opened")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the login URL embeds a user name or password; refusing to open it".into());
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(format!("the login URL {shown} names no host")),
    };
    if !allowed.contains(&host) {
        return Err(format!(
            "the login URL is on {host}, which is neither the registry's host nor in allowed-login-hosts ({}); add it there if you trust it",
            allowed.list()
        ));
    }
    Ok(parsed)
}

/// Server-supplied text made safe for a terminal: control characters (escape sequences)
/// replaced, length bounded.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out: String =
        text.trim().chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).take(max_chars).collect();
    if text.trim().chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedHosts {
        let mut a = AllowedHosts::new();
        a.add("reg.example:5000");
        a.add("127.0.0.1:5001");
        a.add("login.example");
        a
    }

    #[test]
    fn safe_login_urls_pass() {
        for url in [
            "https://reg.example/auth/oauth/login",
            "https://REG.example:8443/auth/oauth/login?next=/x",
            "https://login.example/sso",
            "http://127.0.0.1:9999/auth/oauth/login",
        ] {
            check_login_url(url, &allowed(), &["atcr_device_s3cret"]).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn hostile_login_urls_are_refused() {
        for (url, why) in [
            ("https://evil.example/auth/oauth/login", "neither the registry"),
            ("https://reg.example.evil.example/", "neither the registry"),
            ("http://reg.example/auth/oauth/login", "plain http"),
            ("javascript:alert(1)", "scheme \"javascript\""),
            ("file:///etc/passwd", "scheme \"file\""),
            ("data:text/html,hi", "scheme \"data\""),
            ("https://user:pw@reg.example/login", "user name or password"),
            ("https://user@reg.example/login", "user name or password"),
            ("http://localhost:5001/login", "neither the registry"),
            ("https://reg.example/login?s=atcr_device_s3cret", "device secret"),
            ("not a url", "not a valid URL"),
        ] {
            let e = check_login_url(url, &allowed(), &["atcr_device_s3cret"]).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("atcr_device_s3cret"), "{e}");
        }
    }

    #[test]
    fn endpoint_urls_need_https_off_loopback() {
        assert!(check_endpoint_url("https://reg.example/auth/token", "realm").is_ok());
        assert!(check_endpoint_url("http://[::1]:8080/t", "realm").is_ok());
        assert!(check_endpoint_url("http://reg.example/auth/token", "realm").is_err());
        assert!(check_endpoint_url("https://u:p@reg.example/t", "realm").is_err());
        assert!(check_endpoint_url("ftp://reg.example/t", "realm").is_err());
        // The one loopback rule (latchkey_http::is_loopback_host), through a URL parser.
        for url in ["http://LOCALHOST:1/t", "http://localhost./t", "http://reg.localhost/t", "http://127.9.0.1/t"] {
            assert!(check_endpoint_url(url, "realm").is_ok(), "{url}");
        }
        for url in ["http://localhost.example/t", "http://[::ffff:127.0.0.1]/t", "http://0.0.0.0/t"] {
            assert!(check_endpoint_url(url, "realm").is_err(), "{url}");
        }
    }

    #[test]
    fn printable_strips_escapes() {
        assert_eq!(printable("a\u{1b}[31mb\n", 50), "a\u{fffd}[31mb");
        assert_eq!(printable("abcdef", 3), "abc…");
    }

    #[test]
    fn hosts_ignore_ports_and_case() {
        assert_eq!(host_of("Reg.Example:5000").as_deref(), Some("reg.example"));
        assert_eq!(host_of("[::1]:5000").as_deref(), Some("[::1]"));
        assert_eq!(host_of("https://127.0.0.1:5001/x").as_deref(), Some("127.0.0.1"));
    }
}

//! Is a host this machine? The one answer for the whole project: it decides where plain HTTP
//! is acceptable (the registry client's and `hosts.toml`'s default, the device flow's registry
//! URL, token and login URLs latchkey sends secrets to or opens), so every caller must agree.
//!
//! The rule: `localhost` and any name under it (`*.localhost`, reserved for loopback by RFC
//! 6761), in any case and with or without the trailing dot of a fully qualified name; IPv4
//! `127.0.0.0/8`; IPv6 `::1`, bare or in brackets (`[::1]`). A `:port` after a name, an IPv4
//! address or a bracketed IPv6 address is ignored. Everything else is not loopback: other
//! names (no DNS lookup is made: `localhost.example.com` is not), other addresses, IPv4-mapped
//! IPv6 (`::ffff:127.0.0.1`), `0.0.0.0`, shortened IPv4 (`127.1`; a URL parser normalises
//! those first) and anything unparsable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `host` (a URL's host, or `host:port`) is this machine. See the module docs.
pub fn is_loopback_host(host: &str) -> bool {
    // A bare IPv6 address is taken whole: its last group is not a port.
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_table() {
        for host in [
            "localhost",
            "LocalHost",
            "localhost.",
            "localhost:5000",
            "localhost.:5000",
            "registry.localhost",
            "a.b.localhost.:443",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3",
            "127.255.255.255:1",
            "::1",
            "0:0:0:0:0:0:0:1",
            "[::1]",
            "[::1]:5000",
            "[0:0::1]:80",
        ] {
            assert!(is_loopback_host(host), "{host} is loopback");
        }
        for host in [
            "",
            "ghcr.io",
            "ghcr.io:443",
            "localhost.example.com",
            "mylocalhost",
            "localhost..",
            "10.0.0.1:5000",
            "128.0.0.1",
            "0.0.0.0",
            "127.1",
            "::2",
            "[::2]:5000",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
            "::1:5000",
            "[::1",
            "::1]",
            "localhost:http",
        ] {
            assert!(!is_loopback_host(host), "{host} is not loopback");
        }
    }
}

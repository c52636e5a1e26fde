//! The endpoint forms `/probe?target=` accepts besides a configured target's name: `host:port`,
//! `[v6]:port`, and URLs whose scheme picks the default port and the STARTTLS protocol
//! (`https://host[:port][/path]` adds the HTTP GET of that path).
//!
//! This file owns the scheme table and the parsing (with the `url` crate); `adhoc.rs` turns an
//! endpoint into a target (or finds the configured one it names), and the `/probe` handler
//! decides which to use.

use super::StartTls;

/// Where and how to probe, as a target text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (lower-case) or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    pub starttls: Option<StartTls>,
    /// The request target (path and query) of an HTTP GET over the session: `https://` URLs.
    pub http_path: Option<String>,
}

impl Endpoint {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A URL scheme we probe: its default port, STARTTLS protocol and whether it means an HTTP GET.
struct Scheme {
    name: &'static str,
    port: u16,
    starttls: Option<StartTls>,
    http: bool,
}

const fn scheme(name: &'static str, port: u16, starttls: Option<StartTls>) -> Scheme {
    Scheme {
        name,
        port,
        starttls,
        http: false,
    }
}

/// Every scheme a target URL may have (the README's table is this one).
const SCHEMES: [Scheme; 17] = [
    Scheme {
        name: "https",
        port: 443,
        starttls: None,
        http: true,
    },
    scheme("smtp", 25, Some(StartTls::Smtp)),
    scheme("submission", 587, Some(StartTls::Smtp)),
    scheme("smtps", 465, None),
    scheme("imap", 143, Some(StartTls::Imap)),
    scheme("imaps", 993, None),
    scheme("pop3", 110, Some(StartTls::Pop3)),
    scheme("pop3s", 995, None),
    scheme("ftp", 21, Some(StartTls::Ftp)),
    scheme("ldap", 389, Some(StartTls::Ldap)),
    scheme("ldaps", 636, None),
    scheme("postgres", 5432, Some(StartTls::Postgres)),
    scheme("postgresql", 5432, Some(StartTls::Postgres)),
    scheme("mysql", 3306, Some(StartTls::Mysql)),
    scheme("xmpp", 5222, Some(StartTls::Xmpp)),
    scheme("nntp", 119, Some(StartTls::Nntp)),
    scheme("sieve", 4190, Some(StartTls::Sieve)),
];

/// Parses a target text that is not a configured target's name: a URL (`scheme://…`) or
/// `host:port`. The error is one line saying what is wrong.
pub fn parse(text: &str) -> Result<Endpoint, String> {
    if !text.contains("://") {
        let (host, port) = super::parse_address(text)?;
        return Ok(Endpoint {
            host,
            port,
            starttls: None,
            http_path: None,
        });
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let s = SCHEMES
        .iter()
        .find(|s| s.name == url.scheme())
        .ok_or_else(|| {
            let names: Vec<&str> = SCHEMES.iter().map(|s| s.name).collect();
            format!(
                "{text:?}: unsupported scheme {:?}; expected one of {}",
                url.scheme(),
                names.join(", ")
            )
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?}: remove the user name and password (they would end up in labels)"
        ));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
        _ => return Err(format!("{text:?}: the URL has no host")),
    };
    if host.contains('%') {
        return Err(format!("{text:?}: {host:?} is not a host name"));
    }
    let port = match url.port() {
        Some(0) => return Err(format!("{text:?}: port must be from 1 to 65535")),
        Some(p) => p,
        None => s.port,
    };
    let http_path = s.http.then(|| {
        let mut path = url.path().to_string();
        if path.is_empty() {
            path.push('/');
        }
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        path
    });
    Ok(Endpoint {
        host,
        port,
        starttls: s.starttls,
        http_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(host: &str, port: u16, starttls: Option<StartTls>, path: Option<&str>) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            port,
            starttls,
            http_path: path.map(str::to_string),
        }
    }

    #[test]
    fn https_urls_probe_port_443_and_get_their_path() {
        assert_eq!(
            parse("https://Example.COM"),
            Ok(ep("example.com", 443, None, Some("/")))
        );
        assert_eq!(
            parse("https://example.com:8443/health?full=1#top"),
            Ok(ep("example.com", 8443, None, Some("/health?full=1")))
        );
        assert_eq!(parse("https://[::1]/"), Ok(ep("::1", 443, None, Some("/"))));
    }

    #[test]
    fn every_scheme_has_its_default_port_and_starttls_protocol() {
        for (url, port, starttls) in [
            ("smtp://mx.example", 25, Some(StartTls::Smtp)),
            ("submission://mx.example", 587, Some(StartTls::Smtp)),
            ("smtps://mx.example", 465, None),
            ("imap://mx.example", 143, Some(StartTls::Imap)),
            ("imaps://mx.example", 993, None),
            ("pop3://mx.example", 110, Some(StartTls::Pop3)),
            ("pop3s://mx.example", 995, None),
            ("ftp://mx.example", 21, Some(StartTls::Ftp)),
            ("ldap://mx.example/dc=example", 389, Some(StartTls::Ldap)),
            ("ldaps://mx.example", 636, None),
            ("postgres://mx.example/db", 5432, Some(StartTls::Postgres)),
            ("postgresql://mx.example", 5432, Some(StartTls::Postgres)),
            ("mysql://mx.example", 3306, Some(StartTls::Mysql)),
            ("xmpp://mx.example", 5222, Some(StartTls::Xmpp)),
            ("nntp://mx.example", 119, Some(StartTls::Nntp)),
            ("sieve://mx.example", 4190, Some(StartTls::Sieve)),
        ] {
            assert_eq!(
                parse(url),
                Ok(ep("mx.example", port, starttls, None)),
                "{url}"
            );
        }
        assert_eq!(
            parse("smtps://127.0.0.1:2465"),
            Ok(ep("127.0.0.1", 2465, None, None))
        );
    }

    #[test]
    fn host_port_forms_parse_as_before() {
        assert_eq!(
            parse("example.com:443"),
            Ok(ep("example.com", 443, None, None))
        );
        assert_eq!(parse("[::1]:8443"), Ok(ep("::1", 8443, None, None)));
        assert_eq!(ep("::1", 1, None, None).address(), "[::1]:1");
    }

    #[test]
    fn unusable_targets_say_why_in_one_line() {
        for (text, says) in [
            ("http://example.com/", "unsupported scheme \"http\""),
            ("gopher://example.com/", "expected one of https, smtp"),
            (
                "https://user:pw@example.com/",
                "remove the user name and password",
            ),
            ("postgres://app@db.example/app", "remove the user name"),
            ("smtp://:25", "is not a URL"),
            ("https://example.com:0/", "port must be from 1 to 65535"),
            ("https://exa%20mple/", "is not"),
            ("not-an-address", "expected host:port"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains('\n'), "{text}: {e}");
        }
    }
}

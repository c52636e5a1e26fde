//! The `proxy_url:` value of a target (or of `global`): which proxy a probe's connections go
//! through, parsed with the `url` crate.
//!
//! This file owns the proxy kinds, their config spelling, the credentials (percent-decoded,
//! never shown: `Display` and `Debug` print `user:***`) and the validation messages, which never
//! repeat what was written either, since a mistyped URL may hold a password. Speaking HTTP
//! CONNECT and SOCKS5 is `probe::proxy`'s; where a connection goes through the proxy is
//! `probe::connect`'s.

use std::fmt;

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// `http://`: HTTP CONNECT (RFC 9110 §9.3.6).
    HttpConnect,
    /// `socks5://`: SOCKS5 (RFC 1928), the name resolved here and the address sent.
    Socks5,
    /// `socks5h://`: SOCKS5 with the name sent, the proxy resolves it.
    Socks5h,
}

impl ProxyKind {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        }
    }
}

/// A user name and password for the proxy (HTTP Basic, or SOCKS5 username/password,
/// RFC 1929), percent-decoded. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A proxy a target's connections go through. `Display` is the redacted URL
/// (`http://user:***@host:port`), the only form that is ever logged or shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    pub kind: ProxyKind,
    /// Host name or IP literal (without brackets).
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
}

impl Proxy {
    /// Parses `http://[user:pass@]host[:port]`, `socks5://…` or `socks5h://…` (default ports 80
    /// and 1080). The error is a sentence that never repeats the URL.
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        let kind = match url.scheme() {
            "http" => ProxyKind::HttpConnect,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "https" => {
                return Err(
                    "https:// proxies (TLS to the proxy) are not supported; use http://, socks5:// or socks5h://"
                        .to_string(),
                )
            }
            other => {
                return Err(format!(
                    "scheme {other:?}: expected http://, socks5:// or socks5h://"
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("has no proxy host".to_string()),
        };
        let port = url.port().unwrap_or(match kind {
            ProxyKind::HttpConnect => 80,
            ProxyKind::Socks5 | ProxyKind::Socks5h => 1080,
        });
        if port == 0 {
            return Err("port 0 is not a proxy port".to_string());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("must be scheme://[user:password@]host:port, without a path".to_string());
        }
        let credentials = credentials(&url, kind)?;
        Ok(Proxy {
            kind,
            host,
            port,
            credentials,
        })
    }

    /// Whether the proxy is sent the target's name (rather than an address resolved here)
    /// when the probe is not pinned to an address: HTTP CONNECT and `socks5h`.
    pub fn resolves_names(&self) -> bool {
        matches!(self.kind, ProxyKind::HttpConnect | ProxyKind::Socks5h)
    }

    /// `host:port` of the proxy (IPv6 literals bracketed): what error texts name.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:***@", c.username)?;
        }
        f.write_str(&self.address())
    }
}

/// The percent-decoded user name and password of `url`; SOCKS5 allows 1 to 255 bytes each.
fn credentials(url: &url::Url, kind: ProxyKind) -> Result<Option<Credentials>, String> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(None);
    }
    let decode = |s: &str, what: &str| {
        String::from_utf8(percent_decode(s))
            .map_err(|_| format!("the proxy {what} is not UTF-8 once percent-decoded"))
    };
    let username = decode(url.username(), "user name")?;
    let password = decode(url.password().unwrap_or(""), "password")?;
    if username.is_empty() {
        return Err("has a password but no user name".to_string());
    }
    if kind != ProxyKind::HttpConnect {
        for (what, v) in [("user name", &username), ("password", &password)] {
            if v.is_empty() || v.len() > 255 {
                return Err(format!(
                    "the SOCKS5 {what} must be 1 to 255 bytes (RFC 1929), it is {}",
                    v.len()
                ));
            }
        }
    }
    Ok(Some(Credentials { username, password }))
}

/// `%XX` escapes turned into their bytes (the `url` crate keeps userinfo encoded); a `%` not
/// followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits: at most 0xff.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_proxy_with_percent_encoded_credentials_is_decoded() {
        let p = Proxy::parse("http://al%40ice:p%3Ass@proxy.test:3128").expect("valid");
        assert_eq!(p.kind, ProxyKind::HttpConnect);
        assert_eq!((p.host.as_str(), p.port), ("proxy.test", 3128));
        let c = p.credentials.clone().expect("credentials");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("al@ice", "p:ss")
        );
        assert!(p.resolves_names());
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let p = Proxy::parse("socks5://user:hunter2@[::1]:1080").expect("valid");
        assert_eq!(p.to_string(), "socks5://user:***@[::1]:1080");
        assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
        assert!(!p.resolves_names());
    }

    #[test]
    fn default_ports_are_80_and_1080() {
        assert_eq!(Proxy::parse("http://p.test").expect("valid").port, 80);
        let p = Proxy::parse("socks5h://127.0.0.1").expect("valid");
        assert_eq!((p.kind, p.port), (ProxyKind::Socks5h, 1080));
    }

    #[test]
    fn mistakes_are_sentences_that_never_repeat_the_url() {
        let cases = [
            ("ftp://u:secret@p.test:21", "scheme \"ftp\": expected http://, socks5:// or socks5h://"),
            ("https://u:secret@p.test:443", "https:// proxies (TLS to the proxy) are not supported; use http://, socks5:// or socks5h://"),
            ("http://u:secret@p.test:3128/path", "must be scheme://[user:password@]host:port, without a path"),
            ("socks5://:secret@p.test:1080", "has a password but no user name"),
            ("socks5://u:@p.test:1080", "the SOCKS5 password must be 1 to 255 bytes (RFC 1929), it is 0"),
            ("p.test:3128", "scheme \"p.test\": expected http://, socks5:// or socks5h://"),
        ];
        for (text, want) in cases {
            let got = Proxy::parse(text).expect_err(text);
            assert_eq!(got, want, "{text}");
            assert!(!got.contains("secret"), "{got}");
        }
    }
}

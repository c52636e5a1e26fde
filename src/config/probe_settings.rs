//! How a target is probed: the probe kind, address family and resolution, the proxy, the
//! STARTTLS upgrade, the HTTP request, the legacy scan's schedule and the revocation checks.
//!
//! Who the target is, and the TLS material it uses, are `identity`'s and `tls_material`'s.

use std::sync::Arc;
use std::time::Duration;

use super::convert::{field, Converter, Defaults};
use super::raw::{At, RawGlobal, RawTarget};
use super::{HttpCheck, IpProtocol, ProbeKind, Proxy, ProxyKind, StartTls, DEFAULT_SCAN_INTERVAL};
use crate::revocation::{Mode, Settings as RevocationSettings};

/// The smallest `revocation_max_crl_size` accepted: no CRL is smaller.
const MIN_CRL_SIZE: u64 = 1024;

/// A target's probe settings; invalid ones (reported) fall back to the defaults.
pub(super) struct ProbeSettings {
    pub(super) ip_protocol: IpProtocol,
    pub(super) resolve_all: bool,
    pub(super) kind: ProbeKind,
    pub(super) starttls: Option<StartTls>,
    pub(super) http: Option<Box<HttpCheck>>,
    pub(super) scan_interval: Option<Duration>,
    pub(super) proxy: Option<Arc<Proxy>>,
    pub(super) revocation: RevocationSettings,
}

impl Converter {
    /// The probe settings of a target; `address` (host and port, when valid) gives the HTTP
    /// request its default `Host`.
    pub(super) fn probe_settings(
        &mut self,
        i: usize,
        t: &RawTarget,
        defaults: &Defaults,
        address: Option<&(String, u16)>,
    ) -> ProbeSettings {
        let (ip_protocol, resolve_all) = self.connection(i, t);
        let kind = match t.probe.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "tls")) => ProbeKind::Tls,
            Some((_, "http_redirect")) => ProbeKind::HttpRedirect,
            Some((span, other)) => {
                self.problem(
                    span,
                    &field(i, "probe"),
                    format!("{other:?}: expected tls or http_redirect"),
                );
                ProbeKind::Tls
            }
        };
        let starttls = self.starttls(i, t, kind);
        let http = self.http_check(i, t, kind, address);
        let scan_interval = match &t.scan_interval {
            Some(span) => self.duration(
                Some(span),
                &field(i, "scan_interval"),
                DEFAULT_SCAN_INTERVAL,
            ),
            None => defaults.scan_interval,
        };
        let proxy = match &t.proxy_url {
            Some(span) => self.proxy_url(span, &field(i, "proxy_url")),
            None => defaults.proxy.clone(),
        };
        if let (Some(p), true) = (&proxy, resolve_all) {
            if p.kind == ProxyKind::Socks5h {
                if let Some(span) = &t.resolve {
                    self.problem(
                        span,
                        &field(i, "resolve"),
                        "all does not apply through a socks5h:// proxy (the proxy resolves the name); use socks5:// to resolve here and probe every address",
                    );
                }
            }
        }
        // No scan on the plain-HTTP side (behind STARTTLS it upgrades every connection first).
        let scans = t.scan.as_ref().map_or(defaults.scan, |s| s.value) && kind == ProbeKind::Tls;
        ProbeSettings {
            ip_protocol,
            resolve_all,
            kind,
            starttls,
            http,
            scan_interval: if scans { scan_interval } else { None },
            proxy,
            revocation: RevocationSettings {
                mode: match &t.revocation {
                    Some(span) => self.revocation_mode(span, &field(i, "revocation")),
                    None => defaults.revocation.mode,
                },
                ..defaults.revocation
            },
        }
    }

    /// The proxy written at `span` (`field` names it in problems); `None` (reported) when it is
    /// not a proxy URL we speak. The problem never repeats the value: it may hold a password.
    pub(super) fn proxy_url(&mut self, span: &At<String>, field: &str) -> Option<Arc<Proxy>> {
        match Proxy::parse(&span.value) {
            Ok(p) => Some(Arc::new(p)),
            Err(m) => {
                self.problem(span, field, m);
                None
            }
        }
    }

    /// `global.revocation` and `global.revocation_max_crl_size`.
    pub(super) fn global_revocation(&mut self, global: &RawGlobal) -> RevocationSettings {
        let mut settings = RevocationSettings::default();
        if let Some(span) = &global.revocation {
            settings.mode = self.revocation_mode(span, "global.revocation");
        }
        match &global.revocation_max_crl_size {
            Some(size) if size.value < MIN_CRL_SIZE => self.problem(
                size,
                "global.revocation_max_crl_size",
                format!("must be at least {MIN_CRL_SIZE} bytes"),
            ),
            Some(size) => settings.max_crl_size = size.value,
            None => {}
        }
        settings
    }

    /// `off`, `ocsp`, `crl` or `all`.
    fn revocation_mode(&mut self, span: &At<String>, name: &str) -> Mode {
        let found = Mode::ALL.into_iter().find(|m| m.as_str() == span.value);
        found.unwrap_or_else(|| {
            self.problem(
                span,
                name,
                format!("{:?}: expected off, ocsp, crl or all", span.value),
            );
            Mode::Off
        })
    }

    /// Which address family is tried first, and whether every address is probed.
    fn connection(&mut self, i: usize, t: &RawTarget) -> (IpProtocol, bool) {
        let ip_protocol = match t.ip_protocol.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "any")) => IpProtocol::Any,
            Some((_, "ip4")) => IpProtocol::Ip4,
            Some((_, "ip6")) => IpProtocol::Ip6,
            Some((span, other)) => {
                self.problem(
                    span,
                    &field(i, "ip_protocol"),
                    format!("{other:?}: expected ip4, ip6 or any"),
                );
                IpProtocol::Any
            }
        };
        let resolve_all = match t.resolve.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "first")) => false,
            Some((_, "all")) => true,
            Some((span, other)) => {
                self.problem(
                    span,
                    &field(i, "resolve"),
                    format!("{other:?}: expected first or all"),
                );
                false
            }
        };
        (ip_protocol, resolve_all)
    }

    /// The STARTTLS protocol of a target, which only TLS probes can have.
    fn starttls(&mut self, i: usize, t: &RawTarget, kind: ProbeKind) -> Option<StartTls> {
        let starttls = t.starttls.as_ref().and_then(|span| {
            let found = StartTls::ALL.into_iter().find(|p| p.as_str() == span.value);
            if found.is_none() {
                let names: Vec<&str> = StartTls::ALL.iter().map(|p| p.as_str()).collect();
                self.problem(
                    span,
                    &field(i, "starttls"),
                    format!("{:?}: expected one of {}", span.value, names.join(", ")),
                );
            }
            found
        });
        if let (Some(span), ProbeKind::HttpRedirect) = (&t.starttls, kind) {
            self.problem(
                span,
                &field(i, "starttls"),
                "does not apply to probe: http_redirect",
            );
        }
        starttls
    }

    /// The HTTP request of a target: `http:` as written, with defaults for `host` (the address's
    /// host, with the port unless it is the scheme's default) and `path` (`/`). Redirect checks
    /// always have one.
    fn http_check(
        &mut self,
        i: usize,
        t: &RawTarget,
        kind: ProbeKind,
        address: Option<&(String, u16)>,
    ) -> Option<Box<HttpCheck>> {
        if t.http.is_none() && kind == ProbeKind::Tls {
            return None;
        }
        let raw = t.http.as_ref();
        let default_port = if kind == ProbeKind::HttpRedirect {
            80
        } else {
            443
        };
        let host = match (raw.and_then(|h| h.host.as_ref()), address) {
            (Some(h), _) if h.value.is_empty() || h.value.contains(['/', ' ']) => {
                let msg = format!("{:?} is not a host[:port]", h.value);
                self.problem(h, &field(i, "http.host"), msg);
                return None;
            }
            (Some(h), _) => h.value.clone(),
            (None, Some((host, port))) => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                if *port == default_port {
                    host
                } else {
                    format!("{host}:{port}")
                }
            }
            (None, None) => return None,
        };
        let path = match raw.and_then(|h| h.path.as_ref()) {
            Some(p) if !p.value.starts_with('/') => {
                let msg = format!("{:?} must start with /", p.value);
                self.problem(p, &field(i, "http.path"), msg);
                return None;
            }
            Some(p) => p.value.clone(),
            None => "/".to_string(),
        };
        Some(Box::new(HttpCheck { host, path }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, problems_of, ProxyKind};

    #[test]
    fn global_proxy_is_inherited_and_a_target_proxy_overrides_it() {
        let yaml = "global: {proxy_url: 'http://u:p%40ss@proxy.test:3128'}\ntargets:\n  - address: a.test:443\n  - address: b.test:443\n    proxy_url: socks5h://127.0.0.1:1080\n";
        let c = parse(yaml, Path::new("t.yml")).expect("valid");
        let a = c.targets[0].proxy.as_deref().expect("inherited");
        assert_eq!(a.kind, ProxyKind::HttpConnect);
        assert_eq!(
            a.credentials.as_ref().map(|c| c.password.as_str()),
            Some("p@ss")
        );
        let b = c.targets[1].proxy.as_deref().expect("own");
        assert_eq!(b.to_string(), "socks5h://127.0.0.1:1080");
        assert!(
            !format!("{:?}", c.targets[0]).contains("p@ss"),
            "Debug of a target shows the password"
        );
    }

    #[test]
    fn a_changed_proxy_changes_the_target() {
        let load = |p: &str| {
            let yaml = format!("targets:\n  - address: a.test:443\n    proxy_url: '{p}'\n");
            parse(&yaml, Path::new("t.yml")).expect("valid")
        };
        let a = load("http://u:one@p.test:3128");
        let b = load("http://u:two@p.test:3128");
        assert!(
            !a.targets[0].same_as(&b.targets[0]),
            "new password, same target?"
        );
        assert!(a.targets[0].same_as(&load("http://u:one@p.test:3128").targets[0]));
    }

    #[test]
    fn socks5h_with_resolve_all_is_a_problem_and_no_message_shows_a_password() {
        let yaml = "global: {proxy_url: 'socks5h://127.0.0.1:1080'}\ntargets:\n  - address: a.test:443\n    resolve: all\n  - address: b.test:443\n    proxy_url: 'gopher://u:hunter2@p.test'\n";
        let got = problems_of(yaml);
        assert_eq!(
            got,
            vec![
                "t.yml:4:14: targets[0].resolve: all does not apply through a socks5h:// proxy (the proxy resolves the name); use socks5:// to resolve here and probe every address",
                "t.yml:6:16: targets[1].proxy_url: scheme \"gopher\": expected http://, socks5:// or socks5h://",
            ]
        );
    }
}

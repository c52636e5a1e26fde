//! Targets for `/probe` that the config does not list as such: the configured target an
//! endpoint form names, an ad-hoc target built from the global settings or from a module's
//! (`&module=`), a configured target probed with a module's settings, and a target pinned to
//! one address (what the blackbox format reports on).
//!
//! Whether ad-hoc probes are allowed, and which form a text is, is the `/probe` handler's
//! business; parsing the forms is `endpoint.rs`'.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::endpoint::Endpoint;
use super::{Config, HttpCheck, IpProtocol, Module, ProbeKind, Target};
use crate::revocation::Settings as RevocationSettings;

impl Config {
    /// The configured target that probes `endpoint` as a URL says: same host, port, STARTTLS
    /// protocol and HTTP path, and the server name given (by default the URL's host).
    pub fn find_endpoint(
        &self,
        endpoint: &Endpoint,
        server_name: Option<&str>,
    ) -> Option<Arc<Target>> {
        let name = server_name.unwrap_or(&endpoint.host);
        self.targets
            .iter()
            .find(|t| {
                t.kind == ProbeKind::Tls
                    && t.host.eq_ignore_ascii_case(&endpoint.host)
                    && t.port == endpoint.port
                    && t.starttls == endpoint.starttls
                    && t.http.as_ref().map(|h| h.path.as_str()) == endpoint.http_path.as_deref()
                    && t.server_name.to_str().eq_ignore_ascii_case(name)
            })
            .cloned()
    }

    /// A target for `endpoint`, which is not configured, with the global settings; `name` (the
    /// text it was asked for by) becomes its `target` label. The server name defaults to the
    /// endpoint's host; an `https://` endpoint's GET sends that host as `Host`.
    pub fn adhoc_endpoint(
        &self,
        name: &str,
        endpoint: &Endpoint,
        server_name: Option<&str>,
    ) -> Result<Target, String> {
        let name_text = server_name.unwrap_or(&endpoint.host).to_string();
        let server_name = ServerName::try_from(name_text.clone())
            .map_err(|_| format!("{name_text:?} is not a valid DNS name or IP address"))?;
        let http = endpoint.http_path.as_ref().map(|path| {
            Box::new(HttpCheck {
                host: http_host(endpoint, 443),
                path: path.clone(),
            })
        });
        let a = &self.adhoc;
        let address = endpoint.address();
        Ok(Target {
            name: name.to_string(),
            address: address.clone(),
            host: endpoint.host.clone(),
            port: endpoint.port,
            server_name,
            interval: a.interval,
            timeout: a.timeout,
            labels: Vec::new(),
            kind: ProbeKind::Tls,
            ip_protocol: IpProtocol::Any,
            resolve_all: false,
            starttls: endpoint.starttls,
            http: http.clone(),
            scan_interval: None,
            revocation: RevocationSettings::default(),
            proxy: a.proxy.clone(),
            material: a.material.clone(),
            aia_fetch: a.aia_fetch,
            expect_cert_file: None,
            output: None,
        })
    }
}

impl Module {
    /// A target for `endpoint` (not configured) with this module's settings over the global
    /// ones; `name` becomes its `target` label. What the module sets explicitly wins over what
    /// the endpoint's scheme implies (STARTTLS protocol); an `https://` URL's path is the GET's.
    /// The server name is `server_name`, else the module's, else the endpoint's host.
    pub fn adhoc(
        &self,
        name: &str,
        endpoint: &Endpoint,
        server_name: Option<&str>,
    ) -> Result<Target, String> {
        self.build(name, endpoint, server_name, &endpoint.host, Vec::new())
    }

    /// Configured target `t` probed with this module's settings instead of its own: it keeps
    /// its name, labels, address, server name, STARTTLS protocol and HTTP path, as an endpoint
    /// of that URL would; everything else is the module's (over the global settings).
    pub fn apply_to(&self, t: &Target, server_name: Option<&str>) -> Result<Target, String> {
        let endpoint = Endpoint {
            host: t.host.clone(),
            port: t.port,
            starttls: t.starttls,
            http_path: match t.kind {
                ProbeKind::Tls => t.http.as_ref().map(|h| h.path.clone()),
                ProbeKind::HttpRedirect => None,
            },
        };
        let own = t.server_name.to_str();
        // Its own server name and STARTTLS protocol win over the module's.
        let asked = server_name.unwrap_or(&own);
        let mut target = self.build(&t.name, &endpoint, Some(asked), &own, t.labels.clone())?;
        if t.starttls.is_some() {
            target.starttls = t.starttls;
        }
        Ok(target)
    }

    fn build(
        &self,
        name: &str,
        endpoint: &Endpoint,
        server_name: Option<&str>,
        fallback_name: &str,
        labels: Vec<(String, String)>,
    ) -> Result<Target, String> {
        let tpl = &self.template;
        if tpl.kind == ProbeKind::HttpRedirect && endpoint.starttls.is_some() {
            return Err(format!(
                "module {:?} checks the plain-HTTP redirect (probe: http_redirect), which does not apply to a STARTTLS endpoint",
                self.name
            ));
        }
        let name_text = server_name
            .or(self.server_name.as_deref())
            .unwrap_or(fallback_name);
        let server_name = ServerName::try_from(name_text.to_string())
            .map_err(|_| format!("{name_text:?} is not a valid DNS name or IP address"))?;
        let starttls = tpl.starttls.or(endpoint.starttls);
        let default_port = match tpl.kind {
            ProbeKind::Tls => 443,
            ProbeKind::HttpRedirect => 80,
        };
        let path = endpoint
            .http_path
            .clone()
            .or_else(|| tpl.http.as_ref().map(|h| h.path.clone()));
        let http = path.map(|path| {
            Box::new(HttpCheck {
                host: self
                    .http_host
                    .clone()
                    .unwrap_or_else(|| http_host(endpoint, default_port)),
                path,
            })
        });
        let address = endpoint.address();
        Ok(Target {
            name: name.to_string(),
            address,
            host: endpoint.host.clone(),
            port: endpoint.port,
            server_name,
            interval: tpl.interval,
            timeout: tpl.timeout,
            labels,
            kind: tpl.kind,
            ip_protocol: tpl.ip_protocol,
            resolve_all: tpl.resolve_all,
            starttls,
            http,
            // On-demand probes do not scan.
            scan_interval: None,
            material: tpl.material.clone(),
            output: self.output,
            proxy: tpl.proxy.clone(),
            revocation: tpl.revocation,
            expect_cert_file: None,
            aia_fetch: tpl.aia_fetch,
        })
    }
}

/// The `Host` of an endpoint's HTTP request: with the port only when it is not `default_port`
/// (as the config's `http:` default).
fn http_host(endpoint: &Endpoint, default_port: u16) -> String {
    if endpoint.port != default_port {
        endpoint.address()
    } else if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    }
}

impl Target {
    /// This target, connecting to `ip` only within `timeout`: one address, as blackbox_exporter
    /// probes one, the server name and HTTP `Host` unchanged.
    pub fn pinned(&self, ip: IpAddr, timeout: Duration) -> Target {
        Target {
            name: self.name.clone(),
            address: self.address.clone(),
            host: ip.to_string(),
            port: self.port,
            server_name: self.server_name.clone(),
            interval: self.interval,
            timeout,
            labels: self.labels.clone(),
            kind: self.kind,
            ip_protocol: self.ip_protocol,
            resolve_all: false,
            starttls: self.starttls,
            http: self.http.clone(),
            scan_interval: self.scan_interval,
            proxy: self.proxy.clone(),
            revocation: self.revocation,
            material: self.material.clone(),
            aia_fetch: self.aia_fetch,
            expect_cert_file: self.expect_cert_file.clone(),
            output: self.output,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{endpoint, StartTls};

    fn config(yaml: &str) -> Config {
        crate::config::parse(yaml, Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn url_finds_the_configured_target_with_the_same_settings() {
        let c = config(
            "targets:\n  - {name: mx, address: \"mx.example:25\", starttls: smtp}\n  - {name: web, address: \"web.example:443\", http: {path: /health}}\n",
        );
        let find = |text: &str| {
            let ep = endpoint::parse(text).expect("parses");
            c.find_endpoint(&ep, None).map(|t| t.name.clone())
        };
        assert_eq!(find("smtp://MX.example").as_deref(), Some("mx"));
        assert_eq!(find("https://web.example/health").as_deref(), Some("web"));
        assert_eq!(find("https://web.example/"), None);
        assert_eq!(find("smtps://mx.example:25"), None);
    }

    #[test]
    fn adhoc_url_targets_carry_scheme_settings_and_their_text_as_name() {
        let c = config("targets: []\n");
        let ep = endpoint::parse("https://[::1]:8443/x?y=1").expect("parses");
        let t = c
            .adhoc_endpoint("https://[::1]:8443/x?y=1", &ep, None)
            .expect("target");
        assert_eq!(t.name, "https://[::1]:8443/x?y=1");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.address, "[::1]:8443");
        assert_eq!(
            t.http.as_deref(),
            Some(&HttpCheck {
                host: "[::1]:8443".into(),
                path: "/x?y=1".into()
            })
        );
        assert_eq!(t.server_name.to_str(), "::1");
        let ep = endpoint::parse("imap://mail.example").expect("parses");
        let t = c
            .adhoc_endpoint("imap://mail.example", &ep, Some("imap.example"))
            .expect("target");
        assert_eq!(t.starttls, Some(StartTls::Imap));
        assert_eq!(t.server_name.to_str(), "imap.example");
        assert_eq!(t.http, None);
    }

    #[test]
    fn adhoc_targets_take_the_module_settings_and_the_endpoint() {
        let c = config(
            "modules:\n  mail:\n    starttls: imap\n    timeout: 3s\n    resolve: all\n    output: ssl_exporter\n  web:\n    http: {path: /health}\n    server_name: sni.example\n  plain: {}\ntargets: []\n",
        );
        let module = |name: &str| c.module(name).expect("module");
        // The module's STARTTLS wins over the scheme's; its timeout and resolution apply.
        let ep = endpoint::parse("smtp://mx.example:2525").expect("parses");
        let t = module("mail")
            .adhoc("smtp://mx.example:2525", &ep, None)
            .expect("target");
        assert_eq!((t.host.as_str(), t.port), ("mx.example", 2525));
        assert_eq!(t.starttls, Some(StartTls::Imap));
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert!(t.resolve_all);
        assert_eq!(t.output, Some(crate::config::Output::SslExporter));
        assert_eq!(t.server_name.to_str(), "mx.example");
        // Without its own STARTTLS the scheme's applies; a URL's path is the GET's.
        let ep = endpoint::parse("pop3://mx.example").expect("parses");
        let t = module("plain")
            .adhoc("pop3://mx.example", &ep, None)
            .expect("target");
        assert_eq!(t.starttls, Some(StartTls::Pop3));
        let ep = endpoint::parse("https://w.example:8443/x").expect("parses");
        let t = module("web").adhoc("w", &ep, None).expect("target");
        assert_eq!(
            t.http.as_deref(),
            Some(&HttpCheck {
                host: "w.example:8443".into(),
                path: "/x".into()
            })
        );
        assert_eq!(t.server_name.to_str(), "sni.example");
        let ep = endpoint::parse("w.example:443").expect("parses");
        let t = module("web")
            .adhoc("w", &ep, Some("asked.example"))
            .expect("target");
        assert_eq!(t.http.as_ref().map(|h| h.path.as_str()), Some("/health"));
        assert_eq!(t.server_name.to_str(), "asked.example");
    }

    #[test]
    fn configured_target_with_a_module_keeps_its_identity() {
        let c = config(
            "modules:\n  fast: {timeout: 2s}\ntargets:\n  - {name: mx, address: \"mx.example:25\", starttls: smtp, timeout: 9s, labels: {team: mail}}\n",
        );
        let t = c.targets.first().expect("target");
        let m = c.module("fast").expect("module");
        let p = m.apply_to(t, None).expect("target");
        assert_eq!(p.name, "mx");
        assert_eq!(p.labels, t.labels);
        assert_eq!(p.starttls, Some(StartTls::Smtp));
        assert_eq!(p.server_name.to_str(), "mx.example");
        assert_eq!(
            p.timeout,
            Duration::from_secs(2),
            "the module's settings apply"
        );
        assert!(!p.same_as(t));
    }

    #[test]
    fn pinned_targets_connect_to_the_address_and_keep_the_names() {
        let c = config(
            "targets:\n  - {name: web, address: \"web.example:443\", resolve: all, http: {}}\n",
        );
        let t = c.targets.first().expect("target");
        let p = t.pinned("10.0.0.7".parse().expect("ip"), Duration::from_secs(3));
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.7", 443));
        assert!(!p.resolve_all);
        assert_eq!(p.timeout, Duration::from_secs(3));
        assert_eq!(p.server_name.to_str(), "web.example");
        assert_eq!(
            p.http.as_ref().map(|h| h.host.as_str()),
            Some("web.example")
        );
        // Same target to the reader (name, labels, files); no longer `same_as` it, which now
        // compares the settings themselves (timeout, resolve) rather than a stored copy.
        assert_eq!((p.name.as_str(), &p.labels), (t.name.as_str(), &t.labels));
        assert!(Arc::ptr_eq(&p.material, &t.material));
    }
}

//! Targets for `/probe` that the config does not list as such: the configured target an
//! endpoint form names, an ad-hoc target built from the global settings, and a target pinned
//! to one address (what the blackbox format reports on).
//!
//! Whether ad-hoc probes are allowed, and which form a text is, is the `/probe` handler's
//! business; parsing the forms is `endpoint.rs`'.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::endpoint::Endpoint;
use super::{Config, HttpCheck, IpProtocol, ProbeKind, Spec, Target};

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
            // The port only when it is not the scheme's (as the config's `http:` default).
            let host = if endpoint.port != 443 {
                endpoint.address()
            } else if endpoint.host.contains(':') {
                format!("[{}]", endpoint.host)
            } else {
                endpoint.host.clone()
            };
            HttpCheck {
                host,
                path: path.clone(),
            }
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
            roots: a.roots.clone(),
            client_config: a.client_config.clone(),
            client_cert_not_after: None,
            ct_logs: a.ct_logs.as_ref().map(|(l, _)| l.clone()),
            aia_fetch: a.aia_fetch,
            spec: Spec {
                name: name.to_string(),
                address,
                server_name: name_text,
                interval: a.interval,
                timeout: a.timeout,
                labels: Vec::new(),
                ip_protocol: IpProtocol::Any,
                resolve_all: false,
                kind: ProbeKind::Tls,
                starttls: endpoint.starttls,
                http,
                scan_interval: None,
                ca: None,
                client_cert: None,
                client_key: None,
                ct_logs: a.ct_logs.as_ref().map(|(_, d)| *d),
                aia_fetch: a.aia_fetch,
            },
        })
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
            roots: self.roots.clone(),
            client_config: self.client_config.clone(),
            client_cert_not_after: self.client_cert_not_after,
            ct_logs: self.ct_logs.clone(),
            aia_fetch: self.aia_fetch,
            spec: self.spec.clone(),
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
            t.http,
            Some(HttpCheck {
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
        assert!(p.same_as(t));
    }
}

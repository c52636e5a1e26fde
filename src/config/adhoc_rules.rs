//! `adhoc_probes:`: what an ad-hoc `/probe` target (one the config does not list) may be, so
//! that `--web.enable-adhoc-probes` does not turn the exporter into a scanner of the networks
//! it can reach. Each list, when given, must allow the probe: `modules` (the probe must name
//! one of them), `hosts` (globs on the host as written), `ports`, and `cidrs` (every address
//! the host resolves to, IP literals included).
//!
//! This file owns the section's checking and the rules' answers; whether ad-hoc probes are on,
//! the name resolution and the refusal are the `/probe` handler's.

use std::net::IpAddr;

use ipnet::IpNet;

use super::convert::Converter;
use super::raw::{At, RawAdhocRules};

/// The checked `adhoc_probes:` section; `None` in a list: no restriction of that kind.
#[derive(Debug, Default)]
pub struct AdhocRules {
    modules: Option<Vec<String>>,
    /// Each glob with its text, for refusals.
    hosts: Option<Vec<(glob::Pattern, String)>>,
    cidrs: Option<Vec<IpNet>>,
    ports: Option<Vec<u16>>,
}

/// `*` and `?` match any characters, dots included; letters match either case.
const HOST_MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl AdhocRules {
    /// Whether an ad-hoc probe of `host` (name or IP literal, no brackets) on `port`, with
    /// `module` (if named), is allowed; a refusal says which rule, in one line.
    pub fn check(&self, module: Option<&str>, host: &str, port: u16) -> Result<(), String> {
        if let Some(allowed) = &self.modules {
            match module {
                Some(m) if allowed.iter().any(|a| a == m) => {}
                Some(m) => {
                    return Err(format!(
                        "module {m:?} is not allowed for ad-hoc probes (adhoc_probes.modules: {})",
                        allowed.join(", ")
                    ))
                }
                None => {
                    return Err(format!(
                        "ad-hoc probes must name a module (&module=), one of {}",
                        allowed.join(", ")
                    ))
                }
            }
        }
        if let Some(ports) = &self.ports {
            if !ports.contains(&port) {
                return Err(format!(
                    "port {port} is not allowed for ad-hoc probes (adhoc_probes.ports)"
                ));
            }
        }
        if let Some(hosts) = &self.hosts {
            if !hosts.iter().any(|(p, _)| p.matches_with(host, HOST_MATCH)) {
                return Err(format!(
                    "host {host:?} is not allowed for ad-hoc probes (it matches none of adhoc_probes.hosts)"
                ));
            }
        }
        Ok(())
    }

    /// Whether every address a host resolves to must be checked (`cidrs:` is given).
    pub fn checks_addresses(&self) -> bool {
        self.cidrs.is_some()
    }

    /// Whether an ad-hoc probe may connect to `ip` (which `host` resolved to). An IPv4-mapped
    /// IPv6 address is checked as the IPv4 address it reaches.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let Some(cidrs) = &self.cidrs else {
            return Ok(());
        };
        let ip = ip.to_canonical();
        if cidrs.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        let via = if host == ip.to_string() {
            String::new()
        } else {
            format!("{host:?} resolves to ")
        };
        Err(format!(
            "{via}{ip}, which is not allowed for ad-hoc probes (it is in none of adhoc_probes.cidrs)"
        ))
    }
}

impl Converter {
    /// The `adhoc_probes:` section, checked: listed modules exist, globs and CIDRs parse, ports
    /// are not 0. Invalid entries are reported and left out.
    pub(super) fn adhoc_rules(&mut self, raw: RawAdhocRules) -> AdhocRules {
        let RawAdhocRules {
            modules: raw_modules,
            hosts,
            cidrs,
            ports,
        } = raw;
        // Every module of the file (one with problems is reported on itself).
        let known: Vec<String> = self.prepared.keys().cloned().collect();
        let modules = raw_modules.map(|list| {
            self.each(list, "modules", |m| {
                if known.iter().any(|k| k == m) {
                    Ok(m.to_string())
                } else {
                    Err(format!("unknown module {m:?}"))
                }
            })
        });
        let hosts = hosts.map(|list| {
            self.each(list, "hosts", |h| {
                glob::Pattern::new(h)
                    .map(|p| (p, h.to_string()))
                    .map_err(|e| format!("{h:?}: invalid glob pattern: {e}"))
            })
        });
        let cidrs = cidrs.map(|list| {
            self.each(list, "cidrs", |c| {
                let net = c
                    .parse::<IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(IpNet::from));
                net.map(|n| n.trunc()).map_err(|_| {
                    format!("{c:?} is not a CIDR (e.g. 203.0.113.0/24 or 2001:db8::/32)")
                })
            })
        });
        let ports = ports.map(|list| {
            let mut out = Vec::with_capacity(list.len());
            for (i, p) in list.iter().enumerate() {
                if p.value == 0 {
                    self.problem(
                        p,
                        &format!("adhoc_probes.ports[{i}]"),
                        "must be from 1 to 65535",
                    );
                } else {
                    out.push(p.value);
                }
            }
            out
        });
        AdhocRules {
            modules,
            hosts,
            cidrs,
            ports,
        }
    }

    /// Every entry of list `name` that `check` accepts; the others reported where written.
    fn each<T>(
        &mut self,
        list: Vec<At<String>>,
        name: &str,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(list.len());
        let mut refused = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            match check(&entry.value) {
                Ok(v) => out.push(v),
                Err(m) => refused.push((i, m)),
            }
        }
        for (i, message) in refused {
            if let Some(entry) = list.get(i) {
                self.problem(entry, &format!("adhoc_probes.{name}[{i}]"), message);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{parse, problems_of};

    fn rules(yaml: &str) -> super::AdhocRules {
        let c = parse(yaml, Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"));
        c.adhoc_rules.unwrap_or_default()
    }

    #[test]
    fn no_section_allows_every_adhoc_target() {
        let r = rules("targets: []\n");
        assert_eq!(r.check(None, "10.0.0.1", 22), Ok(()));
        assert!(!r.checks_addresses());
    }

    #[test]
    fn each_list_given_must_allow_the_probe() {
        let r = rules(
            "modules:\n  web: {}\nadhoc_probes:\n  modules: [web]\n  hosts: [\"*.example.com\", \"203.0.113.*\"]\n  ports: [443, 8443]\n  cidrs: [203.0.113.0/24, \"2001:db8::/32\"]\n",
        );
        assert_eq!(r.check(Some("web"), "WWW.Example.com", 443), Ok(()));
        assert_eq!(r.check(Some("web"), "203.0.113.9", 8443), Ok(()));
        let refused = [
            (r.check(None, "a.example.com", 443), "must name a module"),
            (
                r.check(Some("mail"), "a.example.com", 443),
                "module \"mail\" is not allowed",
            ),
            (
                r.check(Some("web"), "a.example.com", 22),
                "port 22 is not allowed",
            ),
            (
                r.check(Some("web"), "example.org", 443),
                "host \"example.org\" is not allowed",
            ),
        ];
        for (result, says) in refused {
            let e = result.expect_err(says);
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn every_resolved_address_must_be_in_a_listed_cidr() {
        let r = rules("adhoc_probes:\n  cidrs: [203.0.113.0/24, \"2001:db8::/32\", 192.0.2.1]\n");
        assert!(r.checks_addresses());
        let ok = |ip: &str| r.check_address("h.example", ip.parse().expect("ip"));
        assert_eq!(ok("203.0.113.200"), Ok(()));
        assert_eq!(ok("2001:db8::1"), Ok(()));
        assert_eq!(ok("192.0.2.1"), Ok(()));
        assert_eq!(
            ok("10.0.0.1"),
            Err("\"h.example\" resolves to 10.0.0.1, which is not allowed for ad-hoc probes (it is in none of adhoc_probes.cidrs)".to_string())
        );
        assert!(ok("192.0.2.2").is_err());
        assert!(
            ok("::ffff:10.0.0.1").is_err(),
            "mapped addresses are checked as IPv4"
        );
        assert_eq!(ok("::ffff:203.0.113.1"), Ok(()));
    }

    #[test]
    fn invalid_entries_are_reported_where_written() {
        assert_eq!(
            problems_of(
                "adhoc_probes:\n  modules: [web]\n  hosts: [\"[a\"]\n  cidrs: [10.0.0.0/33, nope]\n  ports: [0]\n"
            ),
            vec![
                "t.yml:2:13: adhoc_probes.modules[0]: unknown module \"web\"",
                "t.yml:3:11: adhoc_probes.hosts[0]: \"[a\": invalid glob pattern: Pattern syntax error near position 0: invalid range pattern",
                "t.yml:4:11: adhoc_probes.cidrs[0]: \"10.0.0.0/33\" is not a CIDR (e.g. 203.0.113.0/24 or 2001:db8::/32)",
                "t.yml:4:24: adhoc_probes.cidrs[1]: \"nope\" is not a CIDR (e.g. 203.0.113.0/24 or 2001:db8::/32)",
                "t.yml:5:11: adhoc_probes.ports[0]: must be from 1 to 65535",
            ]
        );
    }
}

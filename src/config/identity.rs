//! A target's identity: its name (unique across the config), its `host:port` address and the
//! server name sent as SNI and verified against the certificate.
//!
//! What the probe does with them, and how it is secured, is `probe_settings`' and
//! `tls_material`'s.

use rustls_pki_types::ServerName;

use super::convert::{field, Converter, Names};
use super::raw::{At, RawTarget};

/// Who a target is; each part `None` when it is invalid (already reported).
pub(super) struct Identity {
    pub(super) name: String,
    /// Host and port of the address.
    pub(super) address: Option<(String, u16)>,
    pub(super) server_name: Option<ServerName<'static>>,
}

impl Converter {
    /// The address, name and server name of a target; a name is taken in `names` when it is
    /// free.
    pub(super) fn identity(&mut self, i: usize, t: &RawTarget, names: &mut Names) -> Identity {
        let address = parse_address(&t.address.value)
            .map_err(|m| self.problem(&t.address, &field(i, "address"), m))
            .ok();
        let name_span = name_of(t);
        let name = name_span.value.clone();
        if name.is_empty() {
            self.problem(name_span, &field(i, "name"), "must not be empty");
        } else if let Some((first, line)) = names.get(&name).copied() {
            let hint = match t.name {
                None => " (names default to the address; set a distinct name)",
                Some(_) => "",
            };
            let msg = format!("duplicate target name {name:?}, first used by targets[{first}] on line {line}{hint}");
            self.problem(name_span, &field(i, "name"), msg);
        } else {
            names.insert(name.clone(), (i, name_span.line));
        }

        let server_name_text = match (&t.server_name, &address) {
            (Some(s), _) => Some((s.value.clone(), s)),
            (None, Some((host, _))) => Some((host.clone(), &t.address)),
            (None, None) => None,
        };
        let server_name = server_name_text.and_then(|(text, span)| {
            ServerName::try_from(text.clone())
                .map_err(|_| {
                    self.problem(
                        span,
                        &field(i, "server_name"),
                        format!("{text:?} is not a valid DNS name or IP address"),
                    )
                })
                .ok()
        });
        Identity {
            name,
            address,
            server_name,
        }
    }
}

/// Where a target's name is written: its `name`, else its address (the default name).
pub(super) fn name_of(t: &RawTarget) -> &At<String> {
    t.name.as_ref().unwrap_or(&t.address)
}

/// Splits `host:port`, `[v6]:port` or `IP:port`.
pub(super) fn parse_address(text: &str) -> Result<(String, u16), String> {
    if text.contains("://") {
        return Err(format!(
            "{text:?}: expected host:port, not a URL (e.g. example.com:443)"
        ));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']' after IPv6 address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{text:?}: expected [ipv6]:port"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{text:?}: {host:?} is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: expected host:port"))?;
        if host.contains(':') {
            return Err(format!(
                "{text:?}: write IPv6 addresses in brackets, e.g. [::1]:443"
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("{text:?}: empty host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("{text:?}: port must be a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_accept_hosts_ipv4_and_bracketed_ipv6() {
        assert_eq!(
            parse_address("a.example:443"),
            Ok(("a.example".into(), 443))
        );
        assert_eq!(
            parse_address("10.0.0.1:8443"),
            Ok(("10.0.0.1".into(), 8443))
        );
        assert_eq!(parse_address("[::1]:443"), Ok(("::1".into(), 443)));
        for bad in [
            "a.example",
            "::1:443",
            "[::1]443",
            ":443",
            "a:0",
            "a:99999",
            "[zz]:1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}

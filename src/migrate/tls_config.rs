//! `tls_config:` as both exporters write it (prometheus/common's `TLSConfig`, plus
//! ssl_exporter's `renegotiation`) onto a profile's CA, client certificate and server name.
//!
//! Where the block sits (blackbox: under `http`, `tcp`, `grpc`; ssl_exporter: at the module) is
//! the callers' business.

use super::profile::{Key, Profile};
use super::tree::Fields;
use super::Say;
use crate::config::Problem;

/// The settings of `tls_config` without an equivalent, and why.
const UNMAPPED: [(&str, &str); 9] = [
    ("ca", "write the PEM to a file and set ca_file"),
    ("cert", "write the PEM to a file and set client_cert_file"),
    ("key", "write the PEM to a file and set client_key_file"),
    ("ca_ref", "secret references: set ca_file"),
    ("cert_ref", "secret references: set client_cert_file"),
    ("key_ref", "secret references: set client_key_file"),
    (
        "min_version",
        "tls_exporter offers TLS 1.2 and 1.3 and reports the version negotiated; the legacy scan reports older versions a server still accepts",
    ),
    (
        "max_version",
        "tls_exporter offers TLS 1.2 and 1.3 and reports the version negotiated",
    ),
    (
        "renegotiation",
        "tls_exporter never renegotiates; TLS 1.3 has no renegotiation",
    ),
];

/// Maps `tls` onto `profile`; notes name settings relative to the module.
pub(crate) fn map(mut tls: Fields, profile: &mut Profile, say: &Say) -> Result<(), Problem> {
    let base = tls.path.clone();
    let path = |key: &str| say.rel(&format!("{base}.{key}")).to_string();
    if let Some(ca) = tls.string("ca_file")? {
        profile.ca_file = Some(ca);
    }
    if let Some(cert) = tls.string("cert_file")? {
        profile.client_cert_file = Some(cert);
        profile.note_on(
            Key::ClientCertFile,
            say.text(&format!("{} → client_cert_file", path("cert_file"))),
        );
    }
    if let Some(key) = tls.string("key_file")? {
        profile.client_key_file = Some(key);
        profile.note_on(
            Key::ClientKeyFile,
            say.text(&format!("{} → client_key_file", path("key_file"))),
        );
    }
    if let Some(name) = tls.string("server_name")? {
        profile.server_name = Some(name);
    }
    match tls.boolean("insecure_skip_verify")? {
        Some(true) => profile.note(say.text(&format!(
            "{}: true has no equivalent: tls_exporter always verifies; a chain that does not \
             verify fails the probe with its reason, and its certificates are still reported",
            path("insecure_skip_verify")
        ))),
        Some(false) => profile.note(say.text(&format!(
            "{}: false is what tls_exporter always does",
            path("insecure_skip_verify")
        ))),
        None => {}
    }
    say.rest(profile, tls, &UNMAPPED);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::profile::Output;
    use super::super::tree::Node;
    use super::*;

    fn mapped(yaml: &str) -> Result<Profile, Problem> {
        let root = crate::config::parse_as::<Node>(yaml, "").expect("parses");
        let tls = root.fields("modules.m.tcp.tls_config")?;
        let mut profile = Profile::new("m", Output::Blackbox);
        map(
            tls,
            &mut profile,
            &Say::new("blackbox", "blackbox_exporter", "m"),
        )?;
        Ok(profile)
    }

    #[test]
    fn files_and_server_name_map_to_ours() {
        let p = mapped(
            "ca_file: /ca.pem\ncert_file: /c.pem\nkey_file: /k.pem\nserver_name: example.com\n",
        )
        .expect("maps");
        assert_eq!(p.ca_file.as_deref(), Some("/ca.pem"));
        assert_eq!(p.client_cert_file.as_deref(), Some("/c.pem"));
        assert_eq!(p.client_key_file.as_deref(), Some("/k.pem"));
        assert_eq!(p.server_name.as_deref(), Some("example.com"));
    }

    #[test]
    fn insecure_skip_verify_says_we_always_verify() {
        let p = mapped("insecure_skip_verify: true\n").expect("maps");
        assert_eq!(p.notes.len(), 1);
        let (key, text) = &p.notes[0];
        assert_eq!(*key, None);
        assert!(
            text.starts_with("blackbox: tcp.tls_config.insecure_skip_verify: true has no equivalent: tls_exporter always verifies"),
            "{text}"
        );
    }

    #[test]
    fn inline_pem_and_versions_have_no_equivalent() {
        let p = mapped("ca: PEM\nmin_version: TLS10\n").expect("maps");
        let texts: Vec<&str> = p.notes.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "blackbox: tcp.tls_config.ca: PEM has no equivalent (write the PEM to a file and set ca_file)",
                "blackbox: tcp.tls_config.min_version: TLS10 has no equivalent (tls_exporter offers TLS 1.2 and 1.3 and reports the version negotiated; the legacy scan reports older versions a server still accepts)",
            ]
        );
    }

    #[test]
    fn unknown_settings_are_reported_not_refused() {
        let p = mapped("frobnicate: 1\n").expect("maps");
        assert_eq!(
            p.notes,
            [(
                None,
                "blackbox: tcp.tls_config.frobnicate is not a blackbox_exporter setting (ignored)"
                    .to_string()
            )]
        );
    }

    #[test]
    fn a_file_that_is_not_a_string_is_a_problem() {
        let e = mapped("ca_file: [a]\n").expect_err("a list");
        assert_eq!(
            e.to_string(),
            "1:10: modules.m.tcp.tls_config.ca_file: expected a string, found a list"
        );
    }
}

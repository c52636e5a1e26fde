//! The ClientHello builder: one complete ClientHello record for a version and a suite list,
//! with the extensions a server of that version expects (SNI, groups and point formats,
//! signature algorithms from TLS 1.2 on, supported_versions and an x25519 key share for
//! TLS 1.3), and the SNI name and random bytes it carries. Which suites to offer is left to
//! `suites`; sending the hello and reading the answer to `scan` and `flight`.

use std::net::IpAddr;

use rustls_pki_types::ServerName;

use super::suites::RENEGOTIATION_SCSV;
use super::LegacyVersion;

/// A complete ClientHello record for `version`, offering `suites`.
pub(super) fn client_hello(
    version: LegacyVersion,
    suites: &[u16],
    sni: Option<&str>,
    random: &[u8; 64],
) -> Vec<u8> {
    let (client_random, key_share) = random.split_at(32);
    let tls13 = version == LegacyVersion::Tls13;
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(&version.wire().min(0x0303).to_be_bytes());
    body.extend_from_slice(client_random);
    if tls13 {
        // A session id keeps middleboxes that expect TLS 1.2 resumption calm (RFC 8446, D.4).
        body.push(32);
        body.extend_from_slice(key_share);
    } else {
        body.push(0);
    }
    let mut ciphers: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    if ciphers.is_empty() {
        ciphers.extend_from_slice(&RENEGOTIATION_SCSV.to_be_bytes());
    }
    put_u16_prefixed(&mut body, &ciphers);
    body.extend_from_slice(&[1, 0]); // compression: null only
    if version != LegacyVersion::Ssl30 {
        put_u16_prefixed(&mut body, &extensions(version, sni, key_share));
    }

    let mut handshake = Vec::with_capacity(body.len() + 4);
    handshake.push(1); // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);

    let record_version: u16 = if version == LegacyVersion::Ssl30 {
        0x0300
    } else {
        0x0301
    };
    let mut record = Vec::with_capacity(handshake.len() + 5);
    record.push(22);
    record.extend_from_slice(&record_version.to_be_bytes());
    put_u16_prefixed(&mut record, &handshake);
    record
}

/// The extensions of a TLS ClientHello: SNI, groups and point formats (so ECDHE servers
/// answer), signature algorithms from TLS 1.2 on, supported_versions and an x25519 key share
/// for TLS 1.3.
fn extensions(version: LegacyVersion, sni: Option<&str>, key_share: &[u8]) -> Vec<u8> {
    let tls13 = version == LegacyVersion::Tls13;
    let mut ext = Vec::with_capacity(256);
    if let Some(name) = sni {
        let mut entry = vec![0]; // host_name
        put_u16_prefixed(&mut entry, name.as_bytes());
        let mut list = Vec::new();
        put_u16_prefixed(&mut list, &entry);
        put_extension(&mut ext, 0, &list);
    }
    // x25519, secp256r1, secp384r1, secp521r1, x448, ffdhe2048, ffdhe3072, ffdhe4096.
    let groups: [u16; 8] = [
        0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102,
    ];
    put_extension(&mut ext, 10, &u16_list(&groups));
    if !tls13 {
        put_extension(&mut ext, 11, &[1, 0]); // ec_point_formats: uncompressed
    }
    if version >= LegacyVersion::Tls12 {
        // RSA-PSS, ECDSA, EdDSA, PKCS#1, and the SHA-1 ones old servers may only have.
        let algorithms: [u16; 16] = [
            0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b,
            0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
        ];
        put_extension(&mut ext, 13, &u16_list(&algorithms));
    }
    if tls13 {
        put_extension(&mut ext, 43, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3
        put_extension(&mut ext, 45, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
        let mut share = Vec::with_capacity(36);
        share.extend_from_slice(&0x001d_u16.to_be_bytes());
        put_u16_prefixed(&mut share, key_share);
        let mut shares = Vec::with_capacity(38);
        put_u16_prefixed(&mut shares, &share);
        put_extension(&mut ext, 51, &shares);
    }
    ext
}

/// Appends one extension: its type, then `data` with its length.
fn put_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16_prefixed(out, data);
}

/// Appends `data` with its 16-bit length. Every caller's data is far below 64 KiB.
pub(super) fn put_u16_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// `values` as a list with its 16-bit length in bytes (groups, signature algorithms).
fn u16_list(values: &[u16]) -> Vec<u8> {
    let items: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut out = Vec::with_capacity(items.len() + 2);
    put_u16_prefixed(&mut out, &items);
    out
}

/// `name` when it is a DNS name (SNI carries no IP addresses).
pub(super) fn dns_name(name: &str) -> Option<String> {
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(d)) => Some(d.as_ref().trim_end_matches('.').to_string()),
        _ => None,
    }
}

/// 64 random bytes: the ClientHello random, then the x25519 key share (any 32 bytes are a
/// public key; no one ever computes with its private half).
pub(super) fn random_bytes() -> [u8; 64] {
    use aws_lc_rs::rand::SecureRandom;
    // Fallback if the system RNG fails: still a valid, non-degenerate key share.
    let mut bytes = [0x5a; 64];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::suites::{offer, TLS13_SUITES};
    use super::*;
    use tls_parser::{
        parse_tls_client_hello_extensions, parse_tls_plaintext, TlsMessage, TlsMessageHandshake,
    };

    fn parsed_hello(v: LegacyVersion, suites: &[u16], sni: Option<&str>) -> (u16, Vec<u16>, u16) {
        let bytes = client_hello(v, suites, sni, &[7; 64]);
        let (rest, plain) = parse_tls_plaintext(&bytes).expect("our ClientHello parses");
        assert!(rest.is_empty());
        let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))] = plain.msg.as_slice()
        else {
            panic!("one ClientHello expected, got {:?}", plain.msg);
        };
        let ciphers = ch.ciphers.iter().map(|c| c.0).collect();
        (plain.hdr.version.0, ciphers, ch.version.0)
    }

    fn extensions_of(v: LegacyVersion, sni: Option<&str>) -> Vec<String> {
        let bytes = client_hello(v, &offer(v), sni, &[7; 64]);
        let (_, plain) = parse_tls_plaintext(&bytes).expect("parses");
        let Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))) = plain.msg.first()
        else {
            panic!("ClientHello expected");
        };
        let Some(ext) = ch.ext else {
            return Vec::new();
        };
        let (rest, exts) = parse_tls_client_hello_extensions(ext).expect("extensions parse");
        assert!(rest.is_empty());
        exts.iter().map(|e| format!("{e:?}")).collect()
    }

    #[test]
    fn client_hellos_parse_back_with_the_versions_and_suites_offered() {
        for v in LegacyVersion::ALL {
            let suites = offer(v);
            let (record, ciphers, client) = parsed_hello(v, &suites, Some("example.com"));
            assert_eq!(ciphers, suites, "{v:?}");
            let sslv3 = v == LegacyVersion::Ssl30;
            assert_eq!(record, if sslv3 { 0x0300 } else { 0x0301 }, "{v:?}");
            assert_eq!(client, v.wire().min(0x0303), "{v:?}");
        }
        assert_eq!(offer(LegacyVersion::Tls13), TLS13_SUITES);
    }

    #[test]
    fn tls13_hello_offers_supported_versions_and_an_x25519_key_share() {
        let ext = extensions_of(LegacyVersion::Tls13, Some("example.com"));
        let all = ext.join(" ");
        assert!(all.contains(r#"SupportedVersions(v=["Tls13"])"#), "{all}");
        // One x25519 (0x001d) share of 32 bytes.
        assert!(all.contains("KeyShare(data=[00 24 00 1d 00 20 "), "{all}");
        assert!(all.contains("SignatureAlgorithms"), "{all}");
        assert!(all.contains("example.com"), "{all}");
    }

    #[test]
    fn pre_tls12_hellos_carry_groups_but_no_signature_algorithms() {
        let all = extensions_of(LegacyVersion::Tls10, None).join(" ");
        assert!(all.contains("EllipticCurves"), "{all}");
        assert!(all.contains("EcPointFormats"), "{all}");
        assert!(!all.contains("SignatureAlgorithms"), "{all}");
        assert!(!all.contains("SNI"), "{all}");
        let all12 = extensions_of(LegacyVersion::Tls12, None).join(" ");
        assert!(all12.contains("SignatureAlgorithms"), "{all12}");
    }

    #[test]
    fn sslv3_hello_has_no_extensions() {
        assert!(extensions_of(LegacyVersion::Ssl30, Some("example.com")).is_empty());
    }

    #[test]
    fn sni_is_sent_for_dns_names_only() {
        assert_eq!(dns_name("example.com."), Some("example.com".into()));
        assert_eq!(dns_name("127.0.0.1"), None);
        assert_eq!(dns_name("::1"), None);
        assert_eq!(dns_name("not a name"), None);
    }
}

//! Certificate facts as Go's `crypto/x509` presents them: what the label values of the
//! blackbox_exporter and ssl_exporter formats are made of.
//!
//! Both exporters are Go programs that write `pkix.Name.String()`, `Name.CommonName`,
//! `Name.OrganizationalUnit`, `big.Int` serials and `net.IP` strings into labels. This file
//! reproduces those renderings from our facts (the DER Names `CertFacts` keeps, its colon-hex
//! serial and SAN list); which series carry them is `blackbox.rs`' and `ssl_exporter.rs`'
//! business. Pure functions, no I/O.

use std::net::IpAddr;

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// Go's `time.Time{}.Unix()`: what both exporters report for a time that is not set.
pub(crate) const ZERO_TIME: f64 = -62_135_596_800.0;

/// A Name's attributes in certificate order, as (dotted OID, decoded value).
pub(crate) struct GoName {
    attrs: Vec<(String, String)>,
}

/// Attribute types `pkix.Name` parses into named fields, by dotted OID, with the short name
/// `Name.String()` writes (the order is `ToRDNSequence`'s: country first, serial number last).
const NAMED: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

const CN: &str = "2.5.4.3";
const OU: &str = "2.5.4.11";
const SERIALNUMBER: &str = "2.5.4.5";

impl GoName {
    /// Parses a DER Name; one that does not parse (or an empty input: a restored outcome)
    /// reads as a Name without attributes.
    pub(crate) fn parse(der: &[u8]) -> GoName {
        let attrs = match X509Name::from_der(der) {
            Ok((_, name)) => name
                .iter_attributes()
                .map(|a| {
                    let value = a.attr_value();
                    (
                        a.attr_type().to_id_string(),
                        decode(value.tag(), value.data),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        GoName { attrs }
    }

    /// `Name.CommonName`: the last CN attribute, as Go keeps it.
    pub(crate) fn common_name(&self) -> &str {
        self.values(CN).last().unwrap_or_default()
    }

    /// `Name.OrganizationalUnit`: every OU value, in order.
    pub(crate) fn organizational_units(&self) -> Vec<&str> {
        self.values(OU).collect()
    }

    /// `Name.String()`: RFC 2253-like, most specific first. Go rebuilds the sequence from its
    /// named fields (every value of one type in one multi-valued RDN, in `NAMED` order, only
    /// the last CN and serial number), after the attributes it has no field for, and writes it
    /// backwards; those others are written as `OID=#` and the hex DER of the value re-encoded
    /// as Go's `asn1.Marshal` encodes a string.
    pub(crate) fn string(&self) -> String {
        let mut rdns: Vec<Vec<(&str, &str)>> = self
            .attrs
            .iter()
            .filter(|(oid, _)| !NAMED.iter().any(|(n, _)| n == oid))
            .map(|(oid, v)| vec![(oid.as_str(), v.as_str())])
            .collect();
        for (oid, _) in NAMED {
            let values: Vec<&str> = match oid {
                CN | SERIALNUMBER => self
                    .values(oid)
                    .last()
                    .filter(|v| !v.is_empty())
                    .into_iter()
                    .collect(),
                _ => self.values(oid).collect(),
            };
            if !values.is_empty() {
                rdns.push(values.into_iter().map(|v| (oid, v)).collect());
            }
        }
        let mut out = String::new();
        for (i, rdn) in rdns.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, (oid, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                match NAMED.iter().find(|(n, _)| n == oid) {
                    Some((_, short)) => {
                        out.push_str(short);
                        out.push('=');
                        escape_into(&mut out, value);
                    }
                    None => {
                        out.push_str(oid);
                        out.push_str("=#");
                        out.push_str(&crate::tls::cert::hex(&marshal_string(value)));
                    }
                }
            }
        }
        out
    }

    fn values<'a>(&'a self, oid: &'a str) -> impl Iterator<Item = &'a str> {
        self.attrs
            .iter()
            .filter(move |(o, _)| o == oid)
            .map(|(_, v)| v.as_str())
    }
}

/// A serial as blackbox_exporter writes it: `%x` of `big.Int.Bytes()`, lower-case hex of the
/// magnitude without leading zeros (and empty for zero). `colon_hex` is `CertFacts::serial`.
pub(crate) fn serial_hex(colon_hex: &str) -> String {
    let (_, magnitude) = serial_int(colon_hex);
    crate::tls::cert::hex(&magnitude)
}

/// A serial as ssl_exporter writes it: `big.Int.String()`, signed decimal.
pub(crate) fn serial_decimal(colon_hex: &str) -> String {
    let (negative, mut magnitude) = serial_int(colon_hex);
    if magnitude.is_empty() {
        return "0".to_string();
    }
    let mut digits = Vec::new();
    while !magnitude.is_empty() {
        // Long division of the big-endian magnitude by 10.
        let mut rem = 0u32;
        for b in magnitude.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
        let zeros = magnitude.iter().take_while(|b| **b == 0).count();
        magnitude.drain(..zeros);
    }
    let mut out = String::with_capacity(digits.len() + 1);
    if negative {
        out.push('-');
    }
    out.extend(digits.iter().rev().map(|d| char::from(*d)));
    out
}

/// The DNS names and IP addresses of `CertFacts::dns_names`, as Go's `DNSNames` and
/// `IPAddresses` hold them (an IPv4-mapped IPv6 address prints as IPv4, as `net.IP` does).
pub(crate) fn sans(dns_names: &str) -> (Vec<&str>, Vec<String>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in dns_names.split(',').filter(|n| !n.is_empty()) {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip.to_canonical().to_string()),
            Err(_) => dns.push(name),
        }
    }
    (dns, ips)
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bit) of the address's 4 or 16 bytes.
pub(crate) fn ip_hash(ip: IpAddr) -> u32 {
    let bytes: Vec<u8> = match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The sign and big-endian magnitude (no leading zeros) of a DER INTEGER's content octets
/// written as colon-separated hex; anything that is not hex reads as zero.
fn serial_int(colon_hex: &str) -> (bool, Vec<u8>) {
    let bytes: Option<Vec<u8>> = colon_hex
        .split(':')
        .filter(|s| !s.is_empty())
        .map(|s| u8::from_str_radix(s, 16).ok())
        .collect();
    let mut bytes = bytes.unwrap_or_default();
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    if negative {
        // Two's complement: invert and add one for the magnitude.
        let mut carry = true;
        for b in bytes.iter_mut().rev() {
            *b = !*b;
            if carry {
                let (sum, overflow) = b.overflowing_add(1);
                *b = sum;
                carry = overflow;
            }
        }
    }
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    (negative && !bytes.is_empty(), bytes)
}

/// An attribute value decoded as Go's x509 parser decodes the string types it accepts
/// (T61String as Latin-1, BMPString as UTF-16); other types, which Go refuses, lossily.
fn decode(tag: Tag, data: &[u8]) -> String {
    match tag {
        Tag::T61String => data.iter().map(|b| char::from(*b)).collect(),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| match c {
                    [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                    _ => 0xfffd,
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| {
                <[u8; 4]>::try_from(c)
                    .ok()
                    .and_then(|b| char::from_u32(u32::from_be_bytes(b)))
                    .unwrap_or('\u{fffd}')
            })
            .collect(),
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

/// Go's value escaping in `RDNSequence.String()`: `,+"\<>;` always, a space first or last, a
/// `#` first.
fn escape_into(out: &mut String, value: &str) {
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A string as Go's `asn1.Marshal` encodes it: a PrintableString when every character is
/// in PrintableString's set, else a UTF8String.
fn marshal_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let tag = if printable { 0x13 } else { 0x0c };
    let body = value.as_bytes();
    let mut der = vec![tag];
    let len = body.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        let significant = be.get(skip..).unwrap_or_default();
        der.push(0x80 | significant.len() as u8);
        der.extend_from_slice(significant);
    }
    der.extend_from_slice(body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER Name from (OID content bytes after 2.5.4, tag, value) per single-valued RDN, or
    /// several attributes in one RDN.
    fn name(rdns: &[&[(&[u8], u8, &str)]]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 0x80, "short test values only");
            let mut v = vec![tag, body.len() as u8];
            v.extend_from_slice(body);
            v
        }
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn.iter() {
                let mut atv = tlv(0x06, oid);
                atv.extend(tlv(*tag, value.as_bytes()));
                set.extend(tlv(0x30, &atv));
            }
            seq.extend(tlv(0x31, &set));
        }
        tlv(0x30, &seq)
    }

    const C: &[u8] = &[0x55, 0x04, 0x06];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU_OID: &[u8] = &[0x55, 0x04, 0x0b];
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    /// 1.2.840.113549.1.9.1, emailAddress.
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    const PRINTABLE: u8 = 0x13;
    const UTF8: u8 = 0x0c;
    const IA5: u8 = 0x16;

    #[test]
    fn name_string_is_most_specific_first_and_grouped_by_type() {
        let der = name(&[
            &[(C, PRINTABLE, "DE")],
            &[(O, UTF8, "Example, Inc.")],
            &[(OU_OID, UTF8, "Ops")],
            &[(OU_OID, UTF8, "Web")],
            &[(CN_OID, UTF8, "first")],
            &[(CN_OID, UTF8, " api#1 ")],
        ]);
        let n = GoName::parse(&der);
        assert_eq!(
            n.string(),
            "CN=\\ api#1\\ ,OU=Ops+OU=Web,O=Example\\, Inc.,C=DE"
        );
        assert_eq!(n.common_name(), " api#1 ");
        assert_eq!(n.organizational_units(), ["Ops", "Web"]);
    }

    #[test]
    fn attributes_without_a_go_field_are_hex_after_the_named_ones() {
        let der = name(&[
            &[(EMAIL, IA5, "ops@example.test")],
            &[(CN_OID, PRINTABLE, "#x")],
        ]);
        // '@' is outside PrintableString: Go re-encodes the value as a UTF8String (0x0c).
        assert_eq!(
            GoName::parse(&der).string(),
            "CN=\\#x,1.2.840.113549.1.9.1=#0c106f7073406578616d706c652e74657374"
        );
    }

    #[test]
    fn multi_valued_rdns_are_regrouped_like_go() {
        let der = name(&[&[(CN_OID, UTF8, "a"), (O, UTF8, "b")]]);
        assert_eq!(GoName::parse(&der).string(), "CN=a,O=b");
    }

    #[test]
    fn unparsable_or_missing_names_are_empty() {
        for der in [&b""[..], b"\x30\x05junk"] {
            let n = GoName::parse(der);
            assert_eq!((n.string().as_str(), n.common_name()), ("", ""));
        }
    }

    #[test]
    fn serials_render_as_go_big_ints() {
        assert_eq!(serial_hex("00:a1:02"), "a102");
        assert_eq!(serial_decimal("00:a1:02"), "41218");
        assert_eq!(serial_hex("00"), "");
        assert_eq!(serial_decimal("00"), "0");
        assert_eq!(serial_decimal(""), "0");
        // 20 bytes, as CAs mint them.
        let big = "7f:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff";
        assert_eq!(
            serial_decimal(big),
            "730750818665451459101842416358141509827966271487"
        );
        // Negative (invalid, but sent): two's complement.
        assert_eq!(serial_decimal("ff:7f"), "-129");
        assert_eq!(serial_hex("ff:7f"), "81");
    }

    #[test]
    fn sans_split_into_dns_names_and_go_ip_strings() {
        let (dns, ips) = sans("a.example,127.0.0.1,::ffff:10.0.0.1,2001:db8::1,b.example");
        assert_eq!(dns, ["a.example", "b.example"]);
        assert_eq!(ips, ["127.0.0.1", "10.0.0.1", "2001:db8::1"]);
        assert_eq!(sans(""), (Vec::<&str>::new(), Vec::<String>::new()));
    }

    #[test]
    fn ip_hash_is_fnv1a_of_the_address_bytes() {
        // FNV-1a 32 of [127, 0, 0, 1] and of the 16 bytes of ::1.
        assert_eq!(ip_hash("127.0.0.1".parse().expect("ip")), 0xdaaf_40ed);
        assert_eq!(
            ip_hash("::ffff:127.0.0.1".parse().expect("ip")),
            ip_hash("127.0.0.1".parse().expect("ip"))
        );
        assert_ne!(ip_hash("::1".parse().expect("ip")), 0);
    }

    #[test]
    fn long_values_get_long_form_lengths() {
        let der = marshal_string(&"a".repeat(200));
        assert_eq!(der.get(..3), Some(&[0x13, 0x81, 200][..]));
    }
}

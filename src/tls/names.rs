//! IANA names of what a handshake negotiated, the strings that become label values.

use std::borrow::Cow;

use rustls::{CipherSuite, NamedGroup, ProtocolVersion};

/// `TLS 1.2`, `TLS 1.3`, … for a negotiated protocol version.
pub fn version(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::SSLv3 => "SSL 3.0",
        ProtocolVersion::TLSv1_0 => "TLS 1.0",
        ProtocolVersion::TLSv1_1 => "TLS 1.1",
        ProtocolVersion::TLSv1_2 => "TLS 1.2",
        ProtocolVersion::TLSv1_3 => "TLS 1.3",
        _ => "unknown",
    }
}

/// IANA name of a cipher suite (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`):
/// static for every suite rustls names, owned only for an unknown code.
pub fn cipher(suite: CipherSuite) -> Cow<'static, str> {
    // rustls spells the TLS 1.3 suites `TLS13_…`; IANA spells them `TLS_…`.
    let iana = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => Some("TLS_AES_128_GCM_SHA256"),
        CipherSuite::TLS13_AES_256_GCM_SHA384 => Some("TLS_AES_256_GCM_SHA384"),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => Some("TLS_CHACHA20_POLY1305_SHA256"),
        CipherSuite::TLS13_AES_128_CCM_SHA256 => Some("TLS_AES_128_CCM_SHA256"),
        CipherSuite::TLS13_AES_128_CCM_8_SHA256 => Some("TLS_AES_128_CCM_8_SHA256"),
        _ => None,
    };
    match iana.or_else(|| suite.as_str()) {
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => Cow::Owned(format!("TLS_{rest}")),
            None => Cow::Borrowed(name),
        },
        None => Cow::Owned(format!("0x{:04X}", u16::from(suite))),
    }
}

/// IANA name of a key-exchange group (`x25519`, `secp256r1`, `X25519MLKEM768`): static for
/// every group named here, owned only for another code.
pub fn group(g: NamedGroup) -> Cow<'static, str> {
    Cow::Borrowed(match g {
        NamedGroup::X25519 => "x25519",
        NamedGroup::X448 => "x448",
        NamedGroup::secp256r1 => "secp256r1",
        NamedGroup::secp384r1 => "secp384r1",
        NamedGroup::secp521r1 => "secp521r1",
        NamedGroup::FFDHE2048 => "ffdhe2048",
        NamedGroup::FFDHE3072 => "ffdhe3072",
        NamedGroup::FFDHE4096 => "ffdhe4096",
        NamedGroup::FFDHE6144 => "ffdhe6144",
        NamedGroup::FFDHE8192 => "ffdhe8192",
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768",
        NamedGroup::secp256r1MLKEM768 => "SecP256r1MLKEM768",
        NamedGroup::MLKEM768 => "MLKEM768",
        other => return Cow::Owned(format!("0x{:04X}", u16::from(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_suites_use_iana_spelling() {
        assert_eq!(
            cipher(CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            cipher(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn known_names_are_static_and_match_the_generic_spelling() {
        // Every TLS 1.3 suite rustls names reads as IANA spells it, without an allocation.
        for suite in [
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS13_AES_128_CCM_SHA256,
            CipherSuite::TLS13_AES_128_CCM_8_SHA256,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ] {
            let name = cipher(suite);
            assert!(matches!(name, Cow::Borrowed(_)), "{name}");
            let rustls = suite.as_str().unwrap_or_default();
            let want = rustls.replacen("TLS13_", "TLS_", 1);
            assert_eq!(name, want);
        }
        assert!(matches!(group(NamedGroup::secp256r1), Cow::Borrowed(_)));
        assert_eq!(cipher(CipherSuite::Unknown(0xFAFA)), "0xFAFA");
    }

    #[test]
    fn groups_use_iana_spelling() {
        assert_eq!(group(NamedGroup::X25519), "x25519");
        assert_eq!(group(NamedGroup::X25519MLKEM768), "X25519MLKEM768");
        assert_eq!(group(NamedGroup::Unknown(0x1234)), "0x1234");
    }
}

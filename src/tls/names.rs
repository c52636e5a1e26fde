//! IANA names of what a handshake negotiated, the strings that become label values.

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

/// IANA name of a cipher suite (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
pub fn cipher(suite: CipherSuite) -> String {
    match suite.as_str() {
        // rustls spells the TLS 1.3 suites `TLS13_…`; IANA spells them `TLS_…`.
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_string(),
        },
        None => format!("0x{:04X}", u16::from(suite)),
    }
}

/// IANA name of a key-exchange group (`x25519`, `secp256r1`, `X25519MLKEM768`).
pub fn group(g: NamedGroup) -> String {
    match g {
        NamedGroup::X25519 => "x25519".to_string(),
        NamedGroup::X448 => "x448".to_string(),
        NamedGroup::secp256r1 => "secp256r1".to_string(),
        NamedGroup::secp384r1 => "secp384r1".to_string(),
        NamedGroup::secp521r1 => "secp521r1".to_string(),
        NamedGroup::FFDHE2048 => "ffdhe2048".to_string(),
        NamedGroup::FFDHE3072 => "ffdhe3072".to_string(),
        NamedGroup::FFDHE4096 => "ffdhe4096".to_string(),
        NamedGroup::FFDHE6144 => "ffdhe6144".to_string(),
        NamedGroup::FFDHE8192 => "ffdhe8192".to_string(),
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768".to_string(),
        NamedGroup::secp256r1MLKEM768 => "SecP256r1MLKEM768".to_string(),
        NamedGroup::MLKEM768 => "MLKEM768".to_string(),
        other => format!("0x{:04X}", u16::from(other)),
    }
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
    fn groups_use_iana_spelling() {
        assert_eq!(group(NamedGroup::X25519), "x25519");
        assert_eq!(group(NamedGroup::X25519MLKEM768), "X25519MLKEM768");
        assert_eq!(group(NamedGroup::Unknown(0x1234)), "0x1234");
    }
}

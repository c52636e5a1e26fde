//! The cipher-suite tables and their classification: which IANA suites of `tls-parser`'s
//! registry a ClientHello may offer at each version, ordered strong to weak; the broad list
//! that learns whether a server speaks a version at all; and the narrow list of one weak
//! class. What a weak class is (`WeakClass::contains`) is defined with the type in `mod.rs`;
//! putting the list into a ClientHello is left to `hello`.

use std::sync::LazyLock;

use tls_parser::{TlsCipherAu, TlsCipherEnc, TlsCipherKx, TlsCipherMac, TlsCipherSuite, TlsPRF};

use super::{LegacyVersion, WeakClass};

/// Cipher suites in one ClientHello at most: some servers choke on longer lists.
const MAX_SUITES: usize = 128;

/// The TLS 1.3 suites (RFC 8446 and the CCM ones).
pub(super) const TLS13_SUITES: [u16; 5] = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305];

/// The renegotiation-info signalling suite: what an SSL 3.0-era hello sends instead of
/// extensions; harmless everywhere.
pub(super) const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// The broad list offered to learn whether a server accepts `v` at all: every usable suite,
/// but when that is more than `MAX_SUITES`, rarely deployed ones (ARIA, Camellia, SEED, IDEA;
/// static DH/ECDH with certificates) make room, those of no weak class first. Every weak
/// class keeps its common suites, so a server with only weak suites still shows which
/// versions it speaks.
pub(super) fn offer(v: LegacyVersion) -> Vec<u16> {
    if v == LegacyVersion::Tls13 {
        return TLS13_SUITES.to_vec();
    }
    let usable = || REGISTRY.iter().copied().filter(move |s| usable_at(s, v));
    let mut keep: Vec<&TlsCipherSuite> = usable().filter(|s| !rare(s)).collect();
    let mut rest: Vec<&TlsCipherSuite> = usable().filter(|s| rare(s)).collect();
    rest.sort_by_key(|s| {
        (
            !WeakClass::ALL.iter().any(|c| c.matches(s)),
            weakness(s),
            s.id.0,
        )
    });
    let room = (MAX_SUITES - 1).saturating_sub(keep.len());
    keep.extend(rest.into_iter().take(room));
    keep.truncate(MAX_SUITES - 1);
    keep.sort_by_key(|s| (weakness(s), s.id.0));
    let mut suites: Vec<u16> = keep.iter().map(|s| s.id.0).collect();
    suites.push(RENEGOTIATION_SCSV);
    suites
}

/// Only `class`'s suites usable at `v`.
pub(super) fn class_offer(class: WeakClass, v: LegacyVersion) -> Vec<u16> {
    REGISTRY
        .iter()
        .filter(|s| class.matches(s) && usable_at(s, v))
        .map(|s| s.id.0)
        .take(MAX_SUITES)
        .collect()
}

/// Pre-1.3 suites a server could choose without extra configuration from us (no PSK, SRP,
/// Kerberos or password suites), with the TLS 1.2-only ones left out below TLS 1.2. Ordered:
/// strong first, authenticated before anonymous, so a server honouring our order shows its
/// certificate.
static REGISTRY: LazyLock<Vec<&'static TlsCipherSuite>> = LazyLock::new(|| {
    let mut suites: Vec<&'static TlsCipherSuite> = tls_parser::CIPHERS
        .values()
        .filter(|s| {
            // Signalling values are not suites; TLS_FALLBACK_SCSV would make every
            // server that knows a higher version refuse with inappropriate_fallback.
            s.id.0 != 0
                && !s.name.ends_with("_SCSV")
                && !matches!(
                    s.kx,
                    TlsCipherKx::Tls13
                        | TlsCipherKx::Psk
                        | TlsCipherKx::Krb5
                        | TlsCipherKx::Srp
                        | TlsCipherKx::Eccpwd
                )
                && !matches!(
                    s.au,
                    TlsCipherAu::Psk
                        | TlsCipherAu::Krb5
                        | TlsCipherAu::Srp
                        | TlsCipherAu::Srp_Dss
                        | TlsCipherAu::Srp_Rsa
                        | TlsCipherAu::Eccpwd
                )
        })
        .collect();
    suites.sort_by_key(|s| (weakness(s), s.id.0));
    suites
});

/// Orders suites from preferable to weak (lower first).
fn weakness(s: &TlsCipherSuite) -> u8 {
    let weak = WeakClass::ALL
        .iter()
        .filter(|c| **c != WeakClass::CbcSha1 && c.matches(s))
        .count() as u8;
    let kx = match s.kx {
        TlsCipherKx::Ecdhe => 0,
        TlsCipherKx::Dhe => 1,
        TlsCipherKx::Rsa => 2,
        _ => 3,
    };
    let aead = u8::from(s.mac != TlsCipherMac::Aead);
    weak * 8 + aead * 4 + kx
}

/// Whether `s` can be negotiated at `v` (AEAD and SHA-2 suites are TLS 1.2 only).
fn usable_at(s: &TlsCipherSuite, v: LegacyVersion) -> bool {
    v >= LegacyVersion::Tls12
        || !(matches!(
            s.mac,
            TlsCipherMac::Aead
                | TlsCipherMac::HmacSha256
                | TlsCipherMac::HmacSha384
                | TlsCipherMac::HmacSha512
        ) || matches!(s.prf, TlsPRF::Sha256 | TlsPRF::Sha384 | TlsPRF::Sha512))
}

/// A suite few servers have, and never as their only one.
fn rare(s: &TlsCipherSuite) -> bool {
    matches!(
        s.enc,
        TlsCipherEnc::Aria
            | TlsCipherEnc::Camellia
            | TlsCipherEnc::Seed
            | TlsCipherEnc::Idea
            | TlsCipherEnc::Sm4
            | TlsCipherEnc::Aegis
    ) || (matches!(s.kx, TlsCipherKx::Dh | TlsCipherKx::Ecdh) && s.au != TlsCipherAu::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broad_lists_fit_128_suites_and_keep_common_and_weak_ones() {
        for v in LegacyVersion::ALL
            .into_iter()
            .filter(|v| *v < LegacyVersion::Tls13)
        {
            let suites = offer(v);
            assert!(suites.len() <= MAX_SUITES, "{v:?}: {} suites", suites.len());
            assert!(!suites.contains(&0x5600), "{v:?}: never TLS_FALLBACK_SCSV");
            for c in WeakClass::ALL {
                let missing: Vec<_> = class_offer(c, v)
                    .into_iter()
                    .filter(|s| TlsCipherSuite::from_id(*s).is_some_and(|s| !rare(s)))
                    .filter(|s| !suites.contains(s))
                    .collect();
                assert!(missing.is_empty(), "{v:?} lacks {c:?} suites {missing:x?}");
            }
            let common = [0xc013, 0x002f, 0x0035, 0x000a, 0x0005];
            let tls12_common = [0xc02b, 0xc02f, 0x009c, 0xcca8];
            for id in common
                .iter()
                .chain(tls12_common.iter().filter(|_| v == LegacyVersion::Tls12))
            {
                assert!(suites.contains(id), "{v:?} lacks {id:#06x}");
            }
        }
    }

    #[test]
    fn every_class_has_suites_to_offer_at_tls10() {
        for c in WeakClass::ALL {
            let suites = class_offer(c, LegacyVersion::Tls10);
            assert!(!suites.is_empty(), "{c:?}");
            assert!(suites.iter().all(|s| c.contains(*s)), "{c:?}");
        }
        assert!(class_offer(WeakClass::Null, LegacyVersion::Tls12).contains(&0x003b));
        assert!(!class_offer(WeakClass::Null, LegacyVersion::Tls11).contains(&0x003b));
    }
}

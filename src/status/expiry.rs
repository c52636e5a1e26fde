//! How urgent a certificate's expiry is, by the lifetime rule the alerts use: nothing while
//! more than a third of its lifetime (`not_after − not_before`) is left, a warning once renewal
//! is overdue (a third or less left), critical within about two days or once expired.
//!
//! Also which expiry a fleet row shows: the leaf's, or the verified path's when a certificate
//! above the leaf expires first. Colours are the style sheet's (`html`).

use crate::tls::chain::Chain;

/// Critical at or below this much time left, whatever the lifetime.
pub(crate) const CRITICAL_SECS: i64 = 2 * 86_400;

/// How urgent an expiry is; ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Urgency {
    Fine,
    /// A third of the lifetime or less left: renewal is overdue.
    Warning,
    /// `CRITICAL_SECS` or less left, or expired.
    Critical,
}

impl Urgency {
    /// The urgency at `now` of a certificate valid from `not_before` to `not_after`.
    pub(crate) fn of(not_before: i64, not_after: i64, now: i64) -> Urgency {
        let left = i128::from(not_after) - i128::from(now);
        let lifetime = i128::from(not_after) - i128::from(not_before);
        if left <= i128::from(CRITICAL_SECS) {
            Urgency::Critical
        } else if left * 3 <= lifetime {
            Urgency::Warning
        } else {
            Urgency::Fine
        }
    }

    /// The class attribute of an element showing it (none when fine).
    pub(crate) fn class_attr(self) -> &'static str {
        match self {
            Urgency::Fine => "",
            Urgency::Warning => " class=\"warn\"",
            Urgency::Critical => " class=\"crit\"",
        }
    }
}

/// The expiry a fleet row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// Start of the validity whose lifetime the rule uses (unix seconds).
    pub(crate) not_before: i64,
    /// The expiry shown (unix seconds).
    pub(crate) not_after: i64,
    /// A certificate above the leaf on the verified path expires first, and this is its expiry.
    pub(crate) above_leaf: bool,
}

impl Expiry {
    /// The leaf's validity, or that of the certificate on the verified path that expires
    /// before the leaf (with the leaf's not-before when that certificate is a trust anchor the
    /// server did not send). `None` without a parsed leaf.
    pub(crate) fn of_chain(chain: &Chain) -> Option<Expiry> {
        let (_, leaf) = chain.certs.iter().find(|(depth, _)| *depth == 0)?;
        let leaf_expiry = Expiry {
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            above_leaf: false,
        };
        let Some(path) = chain.path_expiry.filter(|p| *p < leaf.not_after) else {
            return Some(leaf_expiry);
        };
        let not_before = chain
            .certs
            .iter()
            .find(|(_, c)| c.not_after == path)
            .map_or(leaf.not_before, |(_, c)| c.not_before);
        Some(Expiry {
            not_before,
            not_after: path,
            above_leaf: true,
        })
    }

    /// How urgent this expiry is at `now`.
    pub(crate) fn urgency(&self, now: i64) -> Urgency {
        Urgency::of(self.not_before, self.not_after, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tls::cert::CertFacts;

    const DAY: i64 = 86_400;

    #[test]
    fn ninety_day_certificate_is_fine_until_a_third_is_left() {
        let (nb, na) = (0, 90 * DAY);
        assert_eq!(Urgency::of(nb, na, 0), Urgency::Fine);
        assert_eq!(Urgency::of(nb, na, 59 * DAY), Urgency::Fine);
        assert_eq!(Urgency::of(nb, na, 60 * DAY), Urgency::Warning);
        assert_eq!(Urgency::of(nb, na, 88 * DAY - 1), Urgency::Warning);
        assert_eq!(Urgency::of(nb, na, 88 * DAY), Urgency::Critical);
        assert_eq!(Urgency::of(nb, na, 100 * DAY), Urgency::Critical);
    }

    #[test]
    fn short_lived_certificates_are_critical_within_two_days() {
        // A 6-day certificate renews at two days left, which is already critical.
        assert_eq!(Urgency::of(0, 6 * DAY, 3 * DAY), Urgency::Fine);
        assert_eq!(Urgency::of(0, 6 * DAY, 4 * DAY), Urgency::Critical);
        // A year-long one warns with months left.
        assert_eq!(Urgency::of(0, 398 * DAY, 300 * DAY), Urgency::Warning);
    }

    #[test]
    fn extreme_validity_does_not_overflow() {
        assert_eq!(Urgency::of(i64::MIN, i64::MAX, 0), Urgency::Fine);
        assert_eq!(Urgency::of(i64::MAX, i64::MIN, 0), Urgency::Critical);
    }

    fn cert(not_before: i64, not_after: i64) -> Arc<CertFacts> {
        Arc::new(CertFacts {
            not_before,
            not_after,
            cn: String::new(),
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            fingerprint_sha256: String::new(),
            spki_sha256: String::new(),
            dns_names: String::new(),
            emails: Vec::new(),
            key: String::new(),
            rsa_bits: None,
            signature_algorithm: String::new(),
            weak_signature: false,
            self_issued: false,
            subject_der: Vec::new(),
            issuer_der: Vec::new(),
        })
    }

    #[test]
    fn row_shows_the_intermediate_when_it_expires_before_the_leaf() {
        let mut chain = Chain {
            certs: vec![(0, cert(10, 90 * DAY)), (1, cert(5, 30 * DAY))],
            sent: 2,
            problem: None,
            path_expiry: Some(30 * DAY),
            path: Vec::new(),
            order_valid: true,
            incomplete: false,
        };
        let e = Expiry::of_chain(&chain).expect("leaf");
        assert_eq!(
            (e.not_before, e.not_after, e.above_leaf),
            (5, 30 * DAY, true)
        );
        chain.path_expiry = Some(90 * DAY);
        let e = Expiry::of_chain(&chain).expect("leaf");
        assert_eq!(
            (e.not_before, e.not_after, e.above_leaf),
            (10, 90 * DAY, false)
        );
        chain.certs.retain(|(d, _)| *d != 0);
        assert_eq!(Expiry::of_chain(&chain), None);
    }
}

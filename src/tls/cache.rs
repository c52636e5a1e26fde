//! Reuse of chain assessments across probes: skip repeated work, never the proof.
//!
//! Every probe still performs a full handshake, and the recording verifier still checks the
//! server's handshake signature with the leaf's key (`verifier`). What a probe may reuse is the
//! `Assessment` of a chain judged before (certificates parsed, hygiene, policy, webpki path
//! validation with its signature checks), and only for the same DER bytes of every certificate
//! sent, in the same order, judged against trust anchors of the same content (`Roots::digest`).
//! The key is SHA-256 over both; a chain that differs in any byte, or a reload that changes a
//! `ca_file`, is judged from scratch. Probes of one chain share its `Arc<CertFacts>`, so a fleet
//! behind one certificate keeps one copy of its facts.
//!
//! Time: an assessment is kept with the span around its judging in which no certificate sent
//! changes validity status (not yet valid, valid, expired: the only way time enters webpki and
//! the pinned-leaf check). Outside that span the chain is judged from scratch, so a certificate
//! that expires while kept flips the verdict to `expired` exactly as a fresh judge would; a
//! chain that failed for a time reason is never kept (its message counts days from now). The
//! name check runs on every probe (it is cheap, and targets sharing a chain differ in name).
//!
//! Bounds: `MAX_CHAINS` chains and about `MAX_BYTES` of facts, least recently used evicted
//! first; a chain of more than `MAX_CHAIN_DER` bytes or with a certificate that does not parse
//! is never kept. `disable` (the hidden `--debug.no-chain-cache` flag) turns reuse off, for
//! benchmarks. What a verdict is stays `verifier`'s; this module only decides when one may be
//! reused.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::tls::cert::CertFacts;
use crate::tls::chain::Chain;
use crate::tls::verifier::{self, Assessment, Roots};
use crate::verdict::FailureReason;

/// Chains kept at most.
pub const MAX_CHAINS: usize = 4096;
/// Approximate memory the kept facts may take (heap included), in bytes.
pub const MAX_BYTES: usize = 8 << 20;
/// Chains larger than this (all DER bytes) are judged every time, never kept.
pub const MAX_CHAIN_DER: usize = 64 << 10;

static ENABLED: AtomicBool = AtomicBool::new(true);
static SHARED: LazyLock<ChainCache> = LazyLock::new(|| ChainCache::new(MAX_CHAINS, MAX_BYTES));

/// Turns reuse off for the rest of the process: every chain is judged from scratch. For
/// measuring what reuse saves (`--debug.no-chain-cache`); verdicts are the same either way.
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// `verifier::judge`, reusing the process-wide cache's assessments (unless `disable`d).
pub(crate) fn judge(
    sent: &[CertificateDer<'static>],
    roots: &Roots,
    server_name: &ServerName<'static>,
    now: UnixTime,
) -> Chain {
    if ENABLED.load(Ordering::Relaxed) {
        SHARED.judge(sent, roots, server_name, now)
    } else {
        verifier::judge(sent, roots, server_name, now)
    }
}

/// How the process-wide cache was used so far (for diagnostics; a self metric could read it).
pub fn shared_stats() -> Stats {
    SHARED.stats()
}

/// A bounded map from (chain bytes, anchors) to the assessment judged for them.
#[derive(Debug)]
pub(crate) struct ChainCache {
    inner: Mutex<Inner>,
    max_chains: usize,
    max_bytes: usize,
}

/// How much a cache holds and how it was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Judgements that reused a kept assessment.
    pub hits: u64,
    /// Judgements from scratch (new chain, or a kept one outside its span of time).
    pub misses: u64,
    /// Chains kept now.
    pub chains: usize,
    /// Approximate bytes they take.
    pub bytes: usize,
}

type Key = [u8; 32];

#[derive(Debug, Default)]
struct Inner {
    kept: HashMap<Key, Slot>,
    /// Last use → key, oldest first.
    by_use: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Slot {
    entry: Arc<Entry>,
    used: u64,
}

#[derive(Debug)]
struct Entry {
    assessment: Assessment,
    /// Unix seconds, inclusive: while the clock is in here, every certificate has the validity
    /// status it had when assessed.
    steady: (i64, i64),
    cost: usize,
}

impl ChainCache {
    /// An empty cache keeping at most `max_chains` chains and about `max_bytes` of facts.
    pub(crate) fn new(max_chains: usize, max_bytes: usize) -> Self {
        ChainCache {
            inner: Mutex::new(Inner::default()),
            max_chains,
            max_bytes,
        }
    }

    /// The verdict `verifier::judge` would give, from a kept assessment when one applies.
    pub(crate) fn judge(
        &self,
        sent: &[CertificateDer<'static>],
        roots: &Roots,
        server_name: &ServerName<'static>,
        now: UnixTime,
    ) -> Chain {
        let Some(key) = key(sent, roots) else {
            return verifier::judge(sent, roots, server_name, now);
        };
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if let Some(entry) = self.lookup(&key, secs) {
            return verifier::conclude(&entry.assessment, sent, server_name, now);
        }
        let assessment = verifier::assess(sent, roots, now);
        let chain = verifier::conclude(&assessment, sent, server_name, now);
        self.keep(key, assessment, secs);
        chain
    }

    /// Counts and size, for tests and diagnostics.
    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            hits: inner.hits,
            misses: inner.misses,
            chains: inner.kept.len(),
            bytes: inner.bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than losing the cache: carry on with what is there.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept entry for `key` if `secs` is inside its steady span; marks it used.
    fn lookup(&self, key: &Key, secs: i64) -> Option<Arc<Entry>> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.tick += 1;
        let tick = inner.tick;
        let hit = match inner.kept.get_mut(key) {
            Some(slot) if (slot.entry.steady.0..=slot.entry.steady.1).contains(&secs) => {
                inner.by_use.remove(&slot.used);
                inner.by_use.insert(tick, *key);
                slot.used = tick;
                Some(slot.entry.clone())
            }
            _ => None,
        };
        if hit.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        hit
    }

    /// Keeps `assessment` (judged at `secs`) under `key` when it may be reused, replacing what
    /// was kept there; drops what was kept there when it may not. Evicts to stay in bounds.
    fn keep(&self, key: Key, assessment: Assessment, secs: i64) {
        let entry = keepable(&assessment).then(|| Entry {
            steady: steady_span(&assessment.certs, secs),
            cost: cost(&assessment),
            assessment,
        });
        let mut inner = self.lock();
        inner.remove(&key);
        let Some(entry) = entry.filter(|e| e.cost <= self.max_bytes && self.max_chains > 0) else {
            return;
        };
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += entry.cost;
        inner.by_use.insert(used, key);
        inner.kept.insert(
            key,
            Slot {
                entry: Arc::new(entry),
                used,
            },
        );
        while inner.kept.len() > self.max_chains || inner.bytes > self.max_bytes {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            inner.remove(&oldest);
        }
    }
}

impl Inner {
    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.kept.remove(key) {
            self.by_use.remove(&slot.used);
            self.bytes = self.bytes.saturating_sub(slot.entry.cost);
        }
    }
}

/// SHA-256 over the anchors' digest and every certificate sent (length-prefixed, in order);
/// `None` for a chain too large to keep.
fn key(sent: &[CertificateDer<'static>], roots: &Roots) -> Option<Key> {
    use aws_lc_rs::digest::{Context, SHA256};
    let total: usize = sent.iter().map(|c| c.as_ref().len()).sum();
    if total > MAX_CHAIN_DER {
        return None;
    }
    let mut ctx = Context::new(&SHA256);
    ctx.update(roots.digest());
    ctx.update(&(sent.len() as u64).to_be_bytes());
    for der in sent {
        ctx.update(&(der.as_ref().len() as u64).to_be_bytes());
        ctx.update(der.as_ref());
    }
    Key::try_from(ctx.finish().as_ref()).ok()
}

/// Whether a later probe may reuse this assessment: every certificate parsed, and the path
/// did not fail for a reason (and with a message) that depends on the time.
fn keepable(a: &Assessment) -> bool {
    let timed = matches!(
        &a.path,
        Err(f) if matches!(f.reason, FailureReason::Expired | FailureReason::NotYetValid)
    );
    a.certs.len() == a.sent && !timed
}

/// The widest span of unix seconds around `t` in which no certificate changes validity status.
/// webpki (and the pinned-leaf check) call a certificate valid at `t` when
/// `not_before <= t <= not_after`, so statuses change only at `not_before` and `not_after + 1`.
fn steady_span(certs: &[(usize, Arc<CertFacts>)], t: i64) -> (i64, i64) {
    let mut span = (i64::MIN, i64::MAX);
    for (_, f) in certs {
        for change in [f.not_before, f.not_after.saturating_add(1)] {
            if change <= t {
                span.0 = span.0.max(change);
            } else {
                span.1 = span.1.min(change - 1);
            }
        }
    }
    span
}

/// About what an entry takes in memory: its facts (shared with the probes' outcomes that use
/// them, counted here in full) and the map overhead.
fn cost(a: &Assessment) -> usize {
    const OVERHEAD: usize = 128;
    let facts: usize = a
        .certs
        .iter()
        .map(|(_, f)| {
            let strings = [
                &f.cn,
                &f.subject,
                &f.issuer,
                &f.serial,
                &f.fingerprint_sha256,
                &f.dns_names,
                &f.key,
                &f.signature_algorithm,
            ];
            std::mem::size_of::<(usize, Arc<CertFacts>)>()
                + std::mem::size_of::<CertFacts>()
                + 2 * std::mem::size_of::<usize>()
                + strings.iter().map(|s| s.capacity()).sum::<usize>()
                + f.subject_der.capacity()
                + f.issuer_der.capacity()
        })
        .sum();
    std::mem::size_of::<Entry>() + std::mem::size_of::<Slot>() + OVERHEAD + facts
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SerialNumber,
    };

    use super::*;

    const T0: i64 = 1_900_000_000;
    const DAY: i64 = 86_400;

    struct Ca {
        der: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn time(secs: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(secs).expect("test time in range")
    }

    fn ca(cn: &str) -> Ca {
        ca_valid(cn, T0 - 3650 * DAY, T0 + 3650 * DAY)
    }

    fn ca_valid(cn: &str, not_before: i64, not_after: i64) -> Ca {
        let key = KeyPair::generate().expect("keygen");
        let mut p = CertificateParams::new(vec![cn.to_lowercase()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = time(not_before);
        p.not_after = time(not_after);
        let cert = p.self_signed(&key).expect("self-sign");
        Ca {
            der: cert.der().clone(),
            issuer: Issuer::new(p, key),
        }
    }

    fn leaf(ca: &Ca, serial: u64, not_before: i64, not_after: i64) -> CertificateDer<'static> {
        let key = KeyPair::generate().expect("keygen");
        let mut p = CertificateParams::new(vec!["a.test".to_string(), "b.test".to_string()])
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, "a.test");
        p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = time(not_before);
        p.not_after = time(not_after);
        p.signed_by(&key, &ca.issuer).expect("sign").der().clone()
    }

    fn intermediate(ca: &Ca, cn: &str, not_before: i64, not_after: i64) -> Ca {
        let key = KeyPair::generate().expect("keygen");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = time(not_before);
        p.not_after = time(not_after);
        let cert = p.signed_by(&key, &ca.issuer).expect("sign");
        Ca {
            der: cert.der().clone(),
            issuer: Issuer::new(p, key),
        }
    }

    fn roots(cas: &[&Ca]) -> Roots {
        let certs: Vec<CertificateDer<'static>> = cas.iter().map(|c| c.der.clone()).collect();
        Roots::from_certs(&certs).expect("usable anchors")
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_string()).expect("valid name")
    }

    fn at(secs: i64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs as u64))
    }

    /// Judges with `cache` and from scratch at `t`, asserting both agree; the cached verdict.
    fn judged(
        cache: &ChainCache,
        sent: &[CertificateDer<'static>],
        r: &Roots,
        n: &str,
        t: i64,
    ) -> Chain {
        let cached = cache.judge(sent, r, &name(n), at(t));
        let fresh = verifier::judge(sent, r, &name(n), at(t));
        assert_eq!(cached, fresh, "cached and fresh verdicts differ at {t}");
        cached
    }

    fn reason(c: &Chain) -> Option<FailureReason> {
        c.problem.as_ref().map(|p| p.reason)
    }

    fn stats(cache: &ChainCache) -> (u64, u64, usize) {
        let s = cache.stats();
        (s.hits, s.misses, s.chains)
    }

    fn cache() -> ChainCache {
        ChainCache::new(MAX_CHAINS, MAX_BYTES)
    }

    #[test]
    fn second_judgement_of_a_chain_reuses_the_first_and_shares_its_facts() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let sent = vec![leaf(&root, 1, T0 - DAY, T0 + 90 * DAY)];
        let c = cache();
        let first = judged(&c, &sent, &r, "a.test", T0);
        let second = judged(&c, &sent, &r, "a.test", T0 + 60);
        assert_eq!(first.problem, None);
        assert_eq!(stats(&c), (1, 1, 1));
        let (a, b) = (&first.certs[0].1, &second.certs[0].1);
        assert!(Arc::ptr_eq(a, b), "facts are shared, not parsed again");
    }

    #[test]
    fn targets_sharing_a_chain_each_get_their_own_name_check() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let sent = vec![leaf(&root, 1, T0 - DAY, T0 + 90 * DAY)];
        let c = cache();
        assert_eq!(reason(&judged(&c, &sent, &r, "a.test", T0)), None);
        assert_eq!(reason(&judged(&c, &sent, &r, "b.test", T0)), None);
        let wrong = judged(&c, &sent, &r, "c.test", T0);
        assert_eq!(reason(&wrong), Some(FailureReason::HostnameMismatch));
        assert_eq!(wrong.path_expiry, None);
        assert_eq!(stats(&c), (2, 1, 1));
    }

    #[test]
    fn renewed_certificate_is_judged_from_scratch_with_new_facts() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let old = vec![leaf(&root, 1, T0 - DAY, T0 + 10 * DAY)];
        let new = vec![leaf(&root, 2, T0, T0 + 90 * DAY)];
        let c = cache();
        let before = judged(&c, &old, &r, "a.test", T0);
        let after = judged(&c, &new, &r, "a.test", T0 + 1);
        assert_eq!(stats(&c), (0, 2, 2));
        assert_ne!(before.certs[0].1.serial, after.certs[0].1.serial);
        assert_eq!(after.path_expiry, Some(T0 + 90 * DAY));
    }

    #[test]
    fn chain_differing_in_one_byte_misses_and_is_never_reported_valid() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let good = leaf(&root, 1, T0 - DAY, T0 + 90 * DAY);
        let c = cache();
        assert_eq!(
            reason(&judged(&c, std::slice::from_ref(&good), &r, "a.test", T0)),
            None
        );
        // The last byte is in the signature: the certificate still parses, its signature fails.
        let mut bytes = good.as_ref().to_vec();
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x01;
        }
        let tampered = vec![CertificateDer::from(bytes)];
        let verdict = judged(&c, &tampered, &r, "a.test", T0);
        assert!(verdict.problem.is_some(), "a tampered chain is invalid");
        assert_eq!(stats(&c).1, 2, "the tampered chain missed");
        // Asking again gives the same (kept, not time-related) verdict.
        assert_eq!(judged(&c, &tampered, &r, "a.test", T0 + 5), verdict);
    }

    #[test]
    fn anchors_changed_by_a_reload_judge_the_same_chain_again() {
        let (a, b) = (ca("Root A"), ca("Root B"));
        let sent = vec![leaf(&a, 1, T0 - DAY, T0 + 90 * DAY)];
        let c = cache();
        assert_eq!(
            reason(&judged(&c, &sent, &roots(&[&a]), "a.test", T0)),
            None
        );
        let other = judged(&c, &sent, &roots(&[&b]), "a.test", T0);
        assert_eq!(reason(&other), Some(FailureReason::UnknownIssuer));
        assert_eq!(stats(&c), (0, 2, 2));
        // A reload that reads the same CA file again (a new `Roots`, same content) reuses.
        assert_eq!(
            reason(&judged(&c, &sent, &roots(&[&a]), "a.test", T0)),
            None
        );
        assert_eq!(stats(&c).0, 1);
    }

    #[test]
    fn leaf_expiring_while_kept_reports_expired_like_a_fresh_judge() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let not_after = T0 + 100;
        let sent = vec![leaf(&root, 1, T0 - DAY, not_after)];
        let c = cache();
        assert_eq!(reason(&judged(&c, &sent, &r, "a.test", T0)), None);
        // The last second of validity still reuses (webpki: valid while now <= not_after).
        assert_eq!(reason(&judged(&c, &sent, &r, "a.test", not_after)), None);
        assert_eq!(stats(&c), (1, 1, 1));
        let expired = judged(&c, &sent, &r, "a.test", not_after + 1);
        assert_eq!(reason(&expired), Some(FailureReason::Expired));
        assert_eq!(expired.path_expiry, None);
        // A time failure is never kept: the message counts from now, so it is judged again.
        assert_eq!(stats(&c), (1, 2, 0));
        judged(&c, &sent, &r, "a.test", not_after + 7 * DAY);
        assert_eq!(stats(&c), (1, 3, 0));
    }

    #[test]
    fn kept_unknown_issuer_turns_expired_when_the_leaf_expires() {
        let (a, b) = (ca("Root A"), ca("Root B"));
        let r = roots(&[&b]);
        let sent = vec![leaf(&a, 1, T0 - DAY, T0 + 100)];
        let c = cache();
        let before = judged(&c, &sent, &r, "a.test", T0);
        assert_eq!(reason(&before), Some(FailureReason::UnknownIssuer));
        assert_eq!(
            reason(&judged(&c, &sent, &r, "a.test", T0 + 50)),
            reason(&before)
        );
        assert_eq!(stats(&c), (1, 1, 1));
        let after = judged(&c, &sent, &r, "a.test", T0 + 101);
        assert_eq!(reason(&after), Some(FailureReason::Expired));
    }

    #[test]
    fn not_yet_valid_leaf_becomes_valid_on_time() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let sent = vec![leaf(&root, 1, T0 + 100, T0 + 90 * DAY)];
        let c = cache();
        let early = judged(&c, &sent, &r, "a.test", T0 + 99);
        assert_eq!(reason(&early), Some(FailureReason::NotYetValid));
        assert_eq!(reason(&judged(&c, &sent, &r, "a.test", T0 + 100)), None);
        assert_eq!(stats(&c), (0, 2, 1));
    }

    #[test]
    fn clock_going_back_before_a_kept_chain_was_valid_judges_again() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let sent = vec![leaf(&root, 1, T0 - 10, T0 + 90 * DAY)];
        let c = cache();
        assert_eq!(reason(&judged(&c, &sent, &r, "a.test", T0)), None);
        let early = judged(&c, &sent, &r, "a.test", T0 - 11);
        assert_eq!(reason(&early), Some(FailureReason::NotYetValid));
        assert_eq!(stats(&c).0, 0);
    }

    #[test]
    fn expired_certificate_the_path_does_not_need_does_not_stop_reuse() {
        let root = ca("Root");
        let r = roots(&[&root]);
        // An old, long expired certificate sent after the leaf (webpki ignores it: not a CA).
        let stale = leaf(&root, 9, T0 - 400 * DAY, T0 - 300 * DAY);
        let sent = vec![leaf(&root, 1, T0 - DAY, T0 + 90 * DAY), stale];
        let c = cache();
        let first = judged(&c, &sent, &r, "a.test", T0);
        assert_eq!(reason(&first), None);
        judged(&c, &sent, &r, "a.test", T0 + 30 * DAY);
        assert_eq!(stats(&c), (1, 1, 1));
    }

    #[test]
    fn intermediate_expiring_while_kept_is_named_like_a_fresh_judge() {
        let root = ca("Root");
        let inter = intermediate(&root, "Inter", T0 - DAY, T0 + 100);
        let sent = vec![leaf(&inter, 1, T0 - DAY, T0 + 90 * DAY), inter.der.clone()];
        let r = roots(&[&root]);
        let c = cache();
        let valid = judged(&c, &sent, &r, "a.test", T0);
        assert_eq!(valid.path_expiry, Some(T0 + 100));
        judged(&c, &sent, &r, "a.test", T0 + 100);
        assert_eq!(stats(&c), (1, 1, 1));
        let expired = judged(&c, &sent, &r, "a.test", T0 + 101);
        assert_eq!(reason(&expired), Some(FailureReason::Expired));
        let detail = expired.problem.map(|p| p.detail).unwrap_or_default();
        assert!(detail.contains("depth 1"), "{detail}");
    }

    #[test]
    fn every_second_across_every_validity_edge_agrees_with_a_fresh_judge() {
        let root = ca("Root");
        // Pinned as its own anchor: only its dates are checked.
        let other = ca_valid("Other", T0 - 6, T0 + 7);
        let inter = intermediate(&root, "Inter", T0 - 5, T0 + 5);
        let chains = [
            vec![leaf(&inter, 1, T0 - 3, T0 + 3), inter.der.clone()],
            vec![leaf(&inter, 2, T0 + 2, T0 + 9), inter.der.clone()],
            vec![leaf(&root, 3, T0 - 2, T0 + 2)],
            vec![other.der.clone()],
        ];
        let anchors = [roots(&[&root]), roots(&[&other]), roots(&[&root, &other])];
        let c = cache();
        // Forward, then backward (a clock stepped back), then jumping about.
        let forward: Vec<i64> = (T0 - 8..=T0 + 12).collect();
        let jumps = [
            T0 + 12,
            T0 - 8,
            T0 + 3,
            T0 + 4,
            T0 - 3,
            T0 - 4,
            T0 + 9,
            T0 + 10,
        ];
        let times = forward
            .iter()
            .chain(forward.iter().rev())
            .chain(jumps.iter());
        for t in times {
            for sent in &chains {
                for r in &anchors {
                    for n in ["a.test", "c.test", "other"] {
                        judged(&c, sent, r, n, *t);
                    }
                }
            }
        }
        assert!(c.stats().hits > 0, "{:?}", c.stats());
    }

    #[test]
    fn malformed_chain_is_never_kept() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let good = leaf(&root, 1, T0 - DAY, T0 + 90 * DAY);
        let c = cache();
        for sent in [
            vec![CertificateDer::from(b"\x30\x03\x02\x01\x01".to_vec())],
            vec![good.clone(), CertificateDer::from(vec![0u8; 64])],
            vec![CertificateDer::from(Vec::new())],
        ] {
            let verdict = judged(&c, &sent, &r, "a.test", T0);
            assert!(verdict.problem.is_some());
            judged(&c, &sent, &r, "a.test", T0);
        }
        assert_eq!(stats(&c), (0, 6, 0));
    }

    #[test]
    fn oversized_chain_is_judged_but_never_kept() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let good = leaf(&root, 1, T0 - DAY, T0 + 90 * DAY);
        let filler = CertificateDer::from(vec![0x30; MAX_CHAIN_DER]);
        let sent = vec![good, filler];
        assert!(key(&sent, &r).is_none());
        let c = cache();
        judged(&c, &sent, &r, "a.test", T0);
        assert_eq!(c.stats(), Stats::default());
    }

    #[test]
    fn least_recently_used_chain_is_evicted_first() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let chains: Vec<Vec<CertificateDer<'static>>> = (1..=3)
            .map(|s| vec![leaf(&root, s, T0 - DAY, T0 + 90 * DAY)])
            .collect();
        let c = ChainCache::new(2, MAX_BYTES);
        judged(&c, &chains[0], &r, "a.test", T0);
        judged(&c, &chains[1], &r, "a.test", T0);
        judged(&c, &chains[0], &r, "a.test", T0); // 0 is now the most recent
        judged(&c, &chains[2], &r, "a.test", T0); // evicts 1
        assert_eq!(stats(&c), (1, 3, 2));
        judged(&c, &chains[0], &r, "a.test", T0);
        assert_eq!(stats(&c).0, 2, "0 was kept");
        judged(&c, &chains[1], &r, "a.test", T0);
        assert_eq!(stats(&c), (2, 4, 2), "1 was evicted");
    }

    #[test]
    fn byte_budget_bounds_what_is_kept() {
        let root = ca("Root");
        let r = roots(&[&root]);
        let one = vec![leaf(&root, 1, T0 - DAY, T0 + 90 * DAY)];
        let probe = ChainCache::new(MAX_CHAINS, MAX_BYTES);
        judged(&probe, &one, &r, "a.test", T0);
        let each = probe.stats().bytes;
        assert!(each > 0);
        let c = ChainCache::new(MAX_CHAINS, each * 3 + each / 2);
        for serial in 1..=10 {
            judged(
                &c,
                &[leaf(&root, serial, T0 - DAY, T0 + 90 * DAY)],
                &r,
                "a.test",
                T0,
            );
            let s = c.stats();
            assert!(s.bytes <= each * 3 + each / 2, "{s:?}");
        }
        assert_eq!(c.stats().chains, 3);
        // An entry larger than the whole budget is not kept at all.
        let tiny = ChainCache::new(MAX_CHAINS, each - 1);
        judged(&tiny, &one, &r, "a.test", T0);
        assert_eq!(tiny.stats().chains, 0);
    }

    #[test]
    fn steady_span_ends_where_some_certificate_changes_status() {
        let facts = |nb, na| {
            let root = ca("Root");
            let der = leaf(&root, 1, nb, na);
            (
                0,
                Arc::new(crate::tls::cert::parse(der.as_ref()).expect("parses")),
            )
        };
        let certs = vec![facts(T0 - 10, T0 + 10), facts(T0 - 100, T0 - 50)];
        assert_eq!(steady_span(&certs, T0), (T0 - 10, T0 + 10));
        // Before the first is valid: up to its not_before, after the second expired.
        assert_eq!(steady_span(&certs, T0 - 20), (T0 - 49, T0 - 11));
        assert_eq!(steady_span(&certs, T0 + 11), (T0 + 11, i64::MAX));
    }

    #[test]
    fn roots_of_the_same_certificates_have_the_same_digest() {
        let (a, b) = (ca("Root A"), ca("Root B"));
        assert_eq!(roots(&[&a]).digest(), roots(&[&a]).digest());
        assert_ne!(roots(&[&a]).digest(), roots(&[&b]).digest());
        assert_ne!(roots(&[&a]).digest(), roots(&[&a, &b]).digest());
        assert_ne!(roots(&[&a, &b]).digest(), roots(&[&b, &a]).digest());
        assert_ne!(roots(&[&a]).digest(), Roots::webpki().digest());
    }
}

//! The latest outcome per target, the latest read of every certificate file (`files`), plus
//! exporter self-state: plain facts that `/metrics`, `/probe`
//! and the status page render (none of them holds label text or HTML here).
//!
//! Writers are the scheduler (one report per finished check), the reloader (target set) and,
//! once at start, `storage` (outcomes saved by the previous process); readers take a cheap
//! snapshot of `Arc`s and render without holding the lock. Each target also keeps a small ring
//! of its last probes (`History`) for the status page.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Target;
use crate::files::FileSet;
use crate::probe::legacy::{LegacyVersion, ScanResult, WeakClass};
use crate::probe::outcome::{AddressOutcome, ProbeOutcome};
use crate::probe::Check;
use crate::tls::chain::Chain;
use crate::verdict::FailureReason;

/// Per-target record. One per target for the process's life, and cloned by every snapshot:
/// kept small (boxed slices, not `Vec`s; failure counters only for the reasons seen).
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: Arc<Target>,
    /// The latest probe: one outcome, or one per address with `resolve: all`; empty before
    /// the first probe.
    pub latest: Box<[Probed]>,
    /// The latest successful legacy scan, per address (a failed scan keeps the previous
    /// result of its address).
    pub scans: Box<[Scanned]>,
    pub probes_total: u64,
    pub failures_total: FailureCounts,
    /// The last `HISTORY_LEN` probes; cleared with the counters.
    pub history: History,
}

impl Entry {
    /// A target not probed yet.
    fn new(target: &Arc<Target>) -> Entry {
        Entry {
            target: target.clone(),
            latest: Box::default(),
            scans: Box::default(),
            probes_total: 0,
            failures_total: FailureCounts::default(),
            history: History::default(),
        }
    }
}

/// A target's probe failures per reason: only the reasons seen, in `FailureReason::ALL` order,
/// so a target that never failed holds no allocation (a full array was 176 bytes per target).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureCounts(Box<[(FailureReason, u64)]>);

impl FailureCounts {
    /// Failures with `reason`; 0 for a reason never seen.
    pub fn get(&self, reason: FailureReason) -> u64 {
        self.0
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// The reasons seen with their counts (never 0), in `FailureReason::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (FailureReason, u64)> + '_ {
        self.0.iter().copied()
    }

    /// No failure counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Counts one failure with `reason`; a reason seen for the first time grows the slice by
    /// one (rare: a target fails in few ways).
    fn add(&mut self, reason: FailureReason) {
        match self
            .0
            .binary_search_by_key(&reason.index(), |(r, _)| r.index())
        {
            Ok(i) => {
                if let Some((_, n)) = self.0.get_mut(i) {
                    *n += 1;
                }
            }
            Err(i) => {
                let mut counts = std::mem::take(&mut self.0).into_vec();
                counts.insert(i, (reason, 1));
                self.0 = counts.into_boxed_slice();
            }
        }
    }
}

/// Compares with counts indexed like `FailureReason::ALL` (zeros for reasons never seen).
impl PartialEq<[u64; FailureReason::ALL.len()]> for FailureCounts {
    fn eq(&self, all: &[u64; FailureReason::ALL.len()]) -> bool {
        FailureReason::ALL
            .iter()
            .zip(all)
            .all(|(r, n)| self.get(*r) == *n)
    }
}

/// One address's latest probe, with the chain its certificate series show.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The address probed, for `resolve: all` targets.
    pub ip: Option<IpAddr>,
    pub outcome: Arc<ProbeOutcome>,
    /// The probe's own chain or, for a server rustls cannot talk to (it speaks neither TLS 1.2
    /// nor 1.3), the chain the scan of the same address captured. Decided whenever either is
    /// recorded, so readers never choose.
    pub chain: Option<Arc<Chain>>,
}

/// One address's latest successful legacy scan, as a target keeps it: what its series and the
/// status page show, in ~80 bytes. A whole outcome per scan (with its boxed scan result and two
/// lists) was ~600 bytes a target, and a scan's outcome carries nothing else they read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scanned {
    /// The address scanned, for `resolve: all` targets.
    pub ip: Option<IpAddr>,
    /// When the scan finished.
    pub finished_at: SystemTime,
    /// How long its handshakes took (`ScanResult::duration`).
    pub duration: Duration,
    /// ClientHellos sent.
    pub handshakes: u32,
    protocols: Found,
    weak: Found,
    /// The chain of the highest version below TLS 1.3 it accepted, judged.
    pub chain: Option<Arc<Chain>>,
}

impl Scanned {
    /// The record of a successful scan; `None` for a failed one (or an outcome of no scan).
    pub fn of(a: &AddressOutcome) -> Option<Scanned> {
        let o = &a.outcome;
        let s = o.scan.as_deref().filter(|_| o.success())?;
        Some(Scanned {
            ip: a.ip,
            finished_at: o.finished_at,
            duration: s.duration,
            handshakes: s.handshakes,
            protocols: Found::of(&LegacyVersion::ALL, &s.protocols),
            weak: Found::of(&WeakClass::ALL, &s.weak),
            chain: o.chain.clone(),
        })
    }

    /// Every version the scan asked for, in `LegacyVersion::ALL` order, with whether the server
    /// accepted it.
    pub fn protocols(&self) -> impl Iterator<Item = (LegacyVersion, bool)> + '_ {
        self.protocols.iter(&LegacyVersion::ALL)
    }

    /// Every weak class the scan asked for, in `WeakClass::ALL` order, with whether the server
    /// accepted a suite of it.
    pub fn weak(&self) -> impl Iterator<Item = (WeakClass, bool)> + '_ {
        self.weak.iter(&WeakClass::ALL)
    }

    /// Whether the server accepts `v`; `None` for a version the scan did not ask for.
    pub fn accepts(&self, v: LegacyVersion) -> Option<bool> {
        self.protocols().find(|(p, _)| *p == v).map(|(_, a)| a)
    }

    /// The record as an outcome, the shape a state file keeps (`storage`): `Scanned::of` of it
    /// gives this record back. What the record does not keep is left empty (no reader of a
    /// scan's outcome looks at it): the phases, and `duration` is the scan's own.
    pub fn to_outcome(&self) -> AddressOutcome {
        let mut o = ProbeOutcome::new(Default::default(), self.duration);
        o.finished_at = self.finished_at;
        o.chain = self.chain.clone();
        o.scan = Some(Box::new(ScanResult {
            protocols: self.protocols().collect(),
            weak: self.weak().collect(),
            handshakes: self.handshakes,
            duration: self.duration,
            legacy_chain: None,
        }));
        AddressOutcome {
            ip: self.ip,
            outcome: Arc::new(o),
        }
    }
}

/// What a scan found for each member of a short fixed list (`LegacyVersion::ALL`,
/// `WeakClass::ALL`): bit i of `known` says the scan asked for member i, bit i of `accepted`
/// that the server accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    known: u8,
    accepted: u8,
}

const _: () = assert!(LegacyVersion::ALL.len() <= 8 && WeakClass::ALL.len() <= 8);

impl Found {
    fn of<T: PartialEq>(all: &[T], found: &[(T, bool)]) -> Found {
        let mut f = Found {
            known: 0,
            accepted: 0,
        };
        for (i, member) in all.iter().enumerate() {
            if let Some((_, accepted)) = found.iter().find(|(m, _)| m == member) {
                f.known |= 1 << i;
                if *accepted {
                    f.accepted |= 1 << i;
                }
            }
        }
        f
    }

    fn iter<T: Copy>(self, all: &[T]) -> impl Iterator<Item = (T, bool)> + '_ {
        all.iter()
            .enumerate()
            .filter(move |(i, _)| self.known & (1 << i) != 0)
            .map(move |(i, m)| (*m, self.accepted & (1 << i) != 0))
    }
}

/// Probes a target's history keeps.
pub const HISTORY_LEN: usize = 20;
/// Longest failure detail a history record keeps, in bytes (cut at a character boundary).
pub const HISTORY_DETAIL_MAX: usize = 240;

/// One probe of a target as its history keeps it: two numbers and the failure, in 16 bytes
/// (20 records per target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// When the probe finished, unix seconds (the last address, for `resolve: all`); u32
    /// lasts until 2106 and saturates after.
    at: u32,
    /// How long it took, in milliseconds (the slowest address, for `resolve: all`).
    duration_ms: u32,
    /// `None` when every address probed succeeded, else the first failing address's failure;
    /// shared with the previous record when it is the same.
    failure: Option<Arc<RecordedFailure>>,
}

/// A failing probe's reason and detail, as its history record keeps them.
#[derive(Debug, PartialEq, Eq)]
struct RecordedFailure {
    reason: FailureReason,
    /// Prefixed with the address for `resolve: all`; at most `HISTORY_DETAIL_MAX` bytes.
    detail: Box<str>,
}

impl HistoryRecord {
    /// Every address probed succeeded.
    pub fn success(&self) -> bool {
        self.failure.is_none()
    }

    /// When the probe finished, unix seconds (the last address, for `resolve: all`).
    pub fn at(&self) -> i64 {
        i64::from(self.at)
    }

    /// How long it took, in milliseconds (the slowest address, for `resolve: all`).
    pub fn duration_ms(&self) -> u32 {
        self.duration_ms
    }

    /// `None` when every address probed succeeded, else the first failing address's reason.
    pub fn reason(&self) -> Option<FailureReason> {
        self.failure.as_ref().map(|f| f.reason)
    }

    /// That failure's detail (prefixed with the address for `resolve: all`), at most
    /// `HISTORY_DETAIL_MAX` bytes.
    pub fn detail(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| &*f.detail)
    }
}

/// A target's last `HISTORY_LEN` probes, oldest first. Snapshots share it (cloning is an
/// `Arc` clone); recording copies it only while a snapshot still holds the old one.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<VecDeque<HistoryRecord>>);

impl History {
    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &HistoryRecord> + ExactSizeIterator {
        self.0.iter()
    }

    /// Records kept, at most `HISTORY_LEN`.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No probe recorded yet (or since the labels changed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the record of one probe run (one outcome per address), dropping the oldest
    /// beyond `HISTORY_LEN`. A run without outcomes leaves no record.
    fn push(&mut self, outcomes: &[AddressOutcome]) {
        let Some(last) = outcomes.iter().map(|a| a.outcome.finished_at).max() else {
            return;
        };
        let failing: Vec<&AddressOutcome> =
            outcomes.iter().filter(|a| !a.outcome.success()).collect();
        let first = failing
            .first()
            .and_then(|a| Some((a.ip, a.outcome.failure.as_ref()?)));
        let detail = first.map(|(ip, f)| {
            let mut text = match ip {
                Some(ip) => format!("{ip}: {}", f.detail),
                None => f.detail.clone(),
            };
            if failing.len() > 1 {
                text.push_str(&format!(
                    " (and {} more addresses failing)",
                    failing.len() - 1
                ));
            }
            bounded(text)
        });
        let failure = first.zip(detail).map(|((_, f), detail)| RecordedFailure {
            reason: f.reason,
            detail: detail.into_boxed_str(),
        });
        let ring = Arc::make_mut(&mut self.0);
        // A target failing the same way every probe keeps one copy of the failure.
        let failure = match (failure, ring.back().and_then(|r| r.failure.as_ref())) {
            (Some(f), Some(prev)) if **prev == f => Some(prev.clone()),
            (f, _) => f.map(Arc::new),
        };
        let record = HistoryRecord {
            at: last
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            duration_ms: outcomes
                .iter()
                .map(|a| a.outcome.duration.as_millis())
                .max()
                .map_or(0, |ms| u32::try_from(ms).unwrap_or(u32::MAX)),
            failure,
        };
        if ring.len() >= HISTORY_LEN {
            ring.pop_front();
        }
        if ring.capacity() < HISTORY_LEN {
            ring.reserve_exact(HISTORY_LEN - ring.len());
        }
        ring.push_back(record);
    }
}

/// `text` cut to at most `HISTORY_DETAIL_MAX` bytes at a character boundary, marked with `…`.
fn bounded(mut text: String) -> String {
    if text.len() > HISTORY_DETAIL_MAX {
        let mut end = HISTORY_DETAIL_MAX - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Exporter self-state, updated lock-free.
#[derive(Debug, Default)]
pub struct Stats {
    pub reload_successful: AtomicBool,
    /// f64 bits of the unix time of the last successful (re)load.
    reload_success_time: AtomicU64,
    pub probes_in_flight: AtomicI64,
    pub probes_skipped_total: AtomicU64,
    /// Start lag of the probes of targets not backing off, largest over the last minute.
    scheduler_lag: RecentMax,
    /// Targets whose latest probe failed slowly (the scheduler backs off from them).
    pub targets_backing_off: AtomicI64,
    /// A config has been loaded.
    pub ready: AtomicBool,
    /// Target files whose current content is invalid.
    pub target_files_invalid: AtomicU64,
}

impl Stats {
    pub fn reload_success_time(&self) -> f64 {
        f64::from_bits(self.reload_success_time.load(Ordering::Relaxed))
    }

    pub fn set_reload_success_time(&self, unix_seconds: f64) {
        self.reload_success_time
            .store(unix_seconds.to_bits(), Ordering::Relaxed);
    }

    /// The largest start lag over the last minute, in seconds.
    pub fn scheduler_lag(&self) -> f64 {
        self.scheduler_lag.get(SystemTime::now())
    }

    /// Notes how late a probe started after its scheduled time.
    pub fn record_scheduler_lag(&self, lag: Duration) {
        self.scheduler_lag.record(lag, SystemTime::now());
    }
}

/// The largest duration recorded over the last minute: six buckets of 10 s, each holding its
/// bucket number (high 32 bits) and its largest value in milliseconds (low 32 bits), updated
/// lock-free.
#[derive(Debug, Default)]
struct RecentMax {
    buckets: [AtomicU64; RECENT_BUCKETS as usize],
}

const RECENT_BUCKETS: u64 = 6;
const RECENT_BUCKET_SECS: u64 = 10;

impl RecentMax {
    fn record(&self, value: Duration, now: SystemTime) {
        let bucket = Self::bucket(now);
        let millis = u64::try_from(value.as_millis())
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        let Some(slot) = self.buckets.get((bucket % RECENT_BUCKETS) as usize) else {
            return;
        };
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            let (b, v) = (packed >> 32, packed & 0xffff_ffff);
            let v = if b == bucket { v.max(millis) } else { millis };
            let next = (bucket << 32) | v;
            (next != packed).then_some(next)
        });
    }

    /// In seconds; 0 when nothing was recorded over the last minute.
    fn get(&self, now: SystemTime) -> f64 {
        let bucket = Self::bucket(now);
        let millis = self
            .buckets
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|packed| bucket.wrapping_sub(packed >> 32) & 0xffff_ffff < RECENT_BUCKETS)
            .map(|packed| packed & 0xffff_ffff)
            .max()
            .unwrap_or(0);
        millis as f64 / 1000.0
    }

    /// The 10 s bucket `now` falls in, as 32 bits.
    fn bucket(now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        (secs / RECENT_BUCKET_SECS) & 0xffff_ffff
    }
}

/// What changed for a target with a new outcome, for state-change logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    First,
    Same,
    Changed { was: Option<FailureReason> },
}

/// Shared exporter state.
#[derive(Debug, Default)]
pub struct State {
    /// Each entry behind an `Arc`, so a snapshot copies a pointer per target (a scrape of
    /// 10,000 targets cloned 1.5 MB of entries otherwise); a write copies an entry only while
    /// a snapshot still holds it.
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Bumped on every change of `entries`, so `storage` saves only when something changed.
    changes: AtomicU64,
    /// The latest read of every certificate file (`files`), replaced whole by the watcher.
    files: RwLock<Arc<FileSet>>,
    pub stats: Stats,
}

impl State {
    /// Replaces the certificate files' latest reads (files no longer matched are gone).
    pub fn set_files(&self, files: Arc<FileSet>) {
        *self.files.write().unwrap_or_else(|p| p.into_inner()) = files;
    }

    /// The certificate files' latest reads.
    pub fn files(&self) -> Arc<FileSet> {
        self.files.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the target set. Targets that keep their name keep their latest outcome until
    /// their next probe (no gap in their series), and their counters while their labels stay
    /// the same; removed targets disappear with all their series.
    pub fn set_targets(&self, targets: &[Arc<Target>]) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // In place: a reload of a large, mostly unchanged fleet moves no entry and rebuilds no
        // map (a rebuilt map's churn stayed in the allocator's arenas as RSS).
        let wanted: std::collections::HashSet<&str> =
            targets.iter().map(|t| t.name.as_str()).collect();
        entries.retain(|name, _| wanted.contains(name.as_str()));
        for t in targets {
            match entries.get_mut(&t.name) {
                Some(old) if Arc::ptr_eq(&old.target, t) => {}
                Some(old) if old.target.labels == t.labels => {
                    let old = Arc::make_mut(old);
                    // A scan describes an endpoint: gone when scanning stops or the endpoint
                    // moves.
                    if !same_scanned_endpoint(&old.target, t) {
                        old.scans = Box::default();
                    }
                    old.target = t.clone();
                    old.decide_chains();
                }
                Some(old) => *old = Arc::new(Entry::new(t)),
                None => {
                    entries.insert(t.name.clone(), Arc::new(Entry::new(t)));
                }
            }
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts outcomes saved by a previous process in place for `target` before its first probe
    /// (`storage` has checked that they belong to it), counters at zero: counters count this
    /// process's probes. Call before the target set that holds `target` is applied.
    pub(crate) fn restore(
        &self,
        target: &Arc<Target>,
        latest: Vec<AddressOutcome>,
        scans: Vec<AddressOutcome>,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut entry = Entry {
            target: target.clone(),
            latest: latest
                .into_iter()
                .map(|a| Probed {
                    ip: a.ip,
                    chain: None,
                    outcome: a.outcome,
                })
                .collect(),
            scans: scans.iter().filter_map(Scanned::of).collect(),
            probes_total: 0,
            failures_total: FailureCounts::default(),
            history: History::default(),
        };
        entry.decide_chains();
        entries.insert(target.name.clone(), Arc::new(entry));
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores what one run of `check` on `target` found (one outcome per address probed);
    /// ignored if the target was replaced meanwhile. For probes, addresses no longer probed
    /// lose their series and the change is returned for logging; for scans, a failed address
    /// keeps its previous result.
    pub fn record(
        &self,
        target: &Arc<Target>,
        check: Check,
        outcomes: Vec<AddressOutcome>,
    ) -> Option<Change> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(&target.name)?;
        if !Arc::ptr_eq(&entry.target, target) {
            return None;
        }
        let entry = Arc::make_mut(entry);
        let change = match check {
            Check::Probe => Some(entry.record_probe(outcomes)),
            Check::Scan => {
                entry.record_scan(outcomes);
                None
            }
        };
        entry.decide_chains();
        self.changes.fetch_add(1, Ordering::Relaxed);
        change
    }

    /// A consistent copy of every entry, sorted by target name (a pointer per target; the
    /// entries are copied on their next write while the snapshot lives).
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().cloned().collect()
    }

    /// How many times the entries changed so far; equal counts mean nothing changed between.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// One target's entry, as a snapshot holds it.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(name).cloned()
    }

    pub fn target_count(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Entry {
    fn record_probe(&mut self, outcomes: Vec<AddressOutcome>) -> Change {
        // One probe per address probed, so failures never outnumber probes.
        self.probes_total += outcomes.len() as u64;
        for a in &outcomes {
            if let Some(r) = a.outcome.reason() {
                self.failures_total.add(r);
            }
        }
        self.history.push(&outcomes);
        let before: Vec<_> = self
            .latest
            .iter()
            .map(|p| (p.ip, p.outcome.reason()))
            .collect();
        let after: Vec<_> = outcomes
            .iter()
            .map(|a| (a.ip, a.outcome.reason()))
            .collect();
        self.latest = outcomes
            .into_iter()
            .map(|a| Probed {
                ip: a.ip,
                chain: a.outcome.chain.clone(),
                outcome: a.outcome,
            })
            .collect();
        if before.is_empty() {
            Change::First
        } else if before == after {
            Change::Same
        } else {
            Change::Changed {
                was: before.iter().find_map(|(_, r)| *r),
            }
        }
    }

    fn record_scan(&mut self, outcomes: Vec<AddressOutcome>) {
        // A scan that failed before reaching any address (the name did not resolve, for a
        // `resolve: all` target too) says nothing about the addresses: all keep their results.
        if let [a] = outcomes.as_slice() {
            if a.ip.is_none() && !a.outcome.success() {
                return;
            }
        }
        let previous = std::mem::take(&mut self.scans);
        self.scans = outcomes
            .iter()
            .filter_map(|a| {
                Scanned::of(a).or_else(|| previous.iter().find(|p| p.ip == a.ip).cloned())
            })
            .collect();
    }

    /// Sets the chain each address's series show (see `Probed::chain`).
    fn decide_chains(&mut self) {
        for p in &mut self.latest {
            p.chain = p.outcome.chain.clone().or_else(|| {
                if p.outcome.handshake_ok {
                    return None;
                }
                let scan = self.scans.iter().find(|s| s.ip == p.ip)?;
                let legacy_only = scan.accepts(LegacyVersion::Tls12) == Some(false)
                    && scan.accepts(LegacyVersion::Tls13) == Some(false);
                scan.chain.clone().filter(|_| legacy_only)
            });
        }
    }
}

/// Fixes glibc's thresholds, once at start, before any thread: allocations from 128 KiB up are
/// mapped on their own and unmapped when freed, and a thread arena gives back free memory
/// above its top beyond 128 KiB. glibc raises both thresholds by itself whenever a large
/// mapped block is freed (up to 32 MiB and 64 MiB), after which a thread arena keeps the free
/// top a scrape or a config load leaves, out of `malloc_trim`'s reach (it releases free pages
/// inside each arena's bins but trims only the main arena's top). Measured at 10,000 targets:
/// the RSS step at the first reload 18 → 11 MiB.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's own parameters; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Hands memory freed by a large transient job (a scrape, a config load) back to the OS.
/// glibc keeps freed heap in per-thread arenas otherwise, so RSS would ratchet up to the
/// largest scrape ever served on each worker thread; `malloc_trim` covers what the C
/// libraries (aws-lc) allocate with `malloc`. With jemalloc as the global allocator (the
/// default build) the Rust heap's freed pages are purged now too, not over the next second
/// of background decay: scrapes back to back (an HA pair, a retry) each found the last one's
/// pages still resident and added their own. Measured at 10,000 targets (scans on) over 25
/// gzip scrapes in a row: peak RSS 47.0 → 43.8 MB.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(all(feature = "jemalloc", target_os = "linux"))]
    // SAFETY: "arena.<MALLCTL_ARENAS_ALL>.purge" takes no argument and returns nothing (all
    // pointers null, length 0); it only releases the allocator's own unused dirty pages.
    unsafe {
        let _ = tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// The old target's scan result still describes the new target.
fn same_scanned_endpoint(old: &Target, new: &Target) -> bool {
    new.scan_interval.is_some()
        && old.host == new.host
        && old.port == new.port
        && old.server_name == new.server_name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::outcome::Phases;
    use crate::verdict::Failure;

    fn targets(yaml: &str) -> Vec<Arc<Target>> {
        crate::config::parse(yaml, std::path::Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("test config: {e}"))
            .targets
    }

    fn outcome(at: u64, failure: Option<Failure>) -> AddressOutcome {
        let mut o = ProbeOutcome::new(Phases::default(), Duration::from_millis(at));
        o.finished_at = UNIX_EPOCH + Duration::from_secs(at);
        o.failure = failure;
        AddressOutcome {
            ip: None,
            outcome: Arc::new(o),
        }
    }

    fn refused(at: u64) -> AddressOutcome {
        outcome(
            at,
            Some(Failure::new(
                FailureReason::ConnectionRefused,
                "connect to 127.0.0.1:1 refused",
            )),
        )
    }

    fn history(state: &State) -> Vec<HistoryRecord> {
        let entries = state.snapshot();
        let en = entries.first().expect("one target");
        en.history.iter().cloned().collect()
    }

    const ONE: &str = "targets:\n  - {name: a, address: \"127.0.0.1:1\", labels: {team: core}}\n";

    #[test]
    fn history_keeps_the_last_twenty_probes_oldest_first() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        for at in 1..=25 {
            let o = if at % 2 == 0 {
                refused(at)
            } else {
                outcome(at, None)
            };
            state.record(&t[0], Check::Probe, vec![o]);
        }
        let h = history(&state);
        assert_eq!(h.len(), HISTORY_LEN);
        let times: Vec<i64> = h.iter().map(HistoryRecord::at).collect();
        assert_eq!(times, (6..=25).collect::<Vec<i64>>());
        let last = h.last().expect("records");
        assert!(last.success() && last.detail().is_none(), "{last:?}");
        assert_eq!(last.duration_ms(), 25);
        let failed = &h[h.len() - 2];
        assert_eq!(failed.reason(), Some(FailureReason::ConnectionRefused));
        assert_eq!(failed.detail(), Some("connect to 127.0.0.1:1 refused"));
    }

    #[test]
    fn history_records_stay_small() {
        // 20 per target: at 10,000 targets every byte here is 200 KB.
        assert!(std::mem::size_of::<HistoryRecord>() <= 16);
    }

    #[test]
    fn entries_stay_small() {
        // One per target, and a snapshot copies every one for each scrape: at 10,000 targets
        // every byte here is 10 KB resident and 10 KB more per scrape. 248 bytes with a full
        // failure array and `Vec`s.
        assert!(std::mem::size_of::<Entry>() <= 72);
    }

    fn scanned(at: u64, protocols: Vec<(LegacyVersion, bool)>) -> AddressOutcome {
        let mut a = outcome(at, None);
        let o = Arc::make_mut(&mut a.outcome);
        o.scan = Some(Box::new(ScanResult {
            protocols,
            weak: WeakClass::ALL
                .iter()
                .map(|c| (*c, *c == WeakClass::Anon))
                .collect(),
            handshakes: 17,
            duration: Duration::from_micros(1_234_567),
            legacy_chain: None,
        }));
        a
    }

    #[test]
    fn a_scan_is_kept_as_its_facts_and_reads_back_as_the_same_outcome() {
        // Ordered like `ALL`, one version missing: the record keeps exactly the members asked.
        let asked = vec![
            (LegacyVersion::Ssl30, false),
            (LegacyVersion::Tls10, true),
            (LegacyVersion::Tls12, true),
            (LegacyVersion::Tls13, false),
        ];
        let a = scanned(40, asked.clone());
        let s = Scanned::of(&a).expect("a successful scan");
        assert_eq!(s.protocols().collect::<Vec<_>>(), asked);
        assert_eq!(
            s.weak().collect::<Vec<_>>(),
            a.outcome
                .scan
                .as_ref()
                .map(|r| r.weak.clone())
                .unwrap_or_default()
        );
        assert_eq!(s.accepts(LegacyVersion::Tls11), None);
        assert_eq!(s.accepts(LegacyVersion::Tls10), Some(true));
        assert_eq!(s.accepts(LegacyVersion::Tls13), Some(false));
        assert_eq!(
            (s.finished_at, s.duration, s.handshakes),
            (
                UNIX_EPOCH + Duration::from_secs(40),
                Duration::from_micros(1_234_567),
                17
            )
        );
        assert_eq!(Scanned::of(&s.to_outcome()), Some(s.clone()));
        assert!(std::mem::size_of::<Scanned>() <= 80);
        // A failed scan and an outcome of no scan are no record.
        let mut failed = scanned(41, asked);
        Arc::make_mut(&mut failed.outcome).failure = refused(41).outcome.failure.clone();
        assert_eq!(Scanned::of(&failed), None);
        assert_eq!(Scanned::of(&outcome(42, None)), None);
    }

    #[test]
    fn a_failed_scan_keeps_the_previous_result_of_its_address() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        let first = scanned(10, vec![(LegacyVersion::Tls12, true)]);
        state.record(&t[0], Check::Scan, vec![first.clone()]);
        state.record(&t[0], Check::Scan, vec![refused(20)]);
        let en = state.get("a").expect("entry");
        assert_eq!(&*en.scans, &[Scanned::of(&first).expect("record")][..]);
        let second = scanned(30, vec![(LegacyVersion::Tls12, false)]);
        state.record(&t[0], Check::Scan, vec![second.clone()]);
        let en = state.get("a").expect("entry");
        assert_eq!(&*en.scans, &[Scanned::of(&second).expect("record")][..]);
    }

    #[test]
    fn addresses_keep_their_scans_when_one_fails_or_the_name_does_not_resolve() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        let at = |ip: [u8; 4], mut a: AddressOutcome| {
            a.ip = Some(IpAddr::from(ip));
            a
        };
        let one = at(
            [127, 0, 0, 1],
            scanned(10, vec![(LegacyVersion::Tls12, true)]),
        );
        let two = at(
            [127, 0, 0, 2],
            scanned(10, vec![(LegacyVersion::Tls10, true)]),
        );
        state.record(&t[0], Check::Scan, vec![one.clone(), two.clone()]);
        let kept = |a: &AddressOutcome| Scanned::of(a).expect("record");
        let both = vec![kept(&one), kept(&two)];
        // The name did not resolve: one failure and no address.
        let unresolved = outcome(
            20,
            Some(Failure::new(
                FailureReason::DnsError,
                "api.example did not resolve",
            )),
        );
        state.record(&t[0], Check::Scan, vec![unresolved]);
        assert_eq!(state.get("a").expect("entry").scans.to_vec(), both);
        // One address failed, the other scanned anew.
        let two_again = at(
            [127, 0, 0, 2],
            scanned(30, vec![(LegacyVersion::Tls11, true)]),
        );
        state.record(
            &t[0],
            Check::Scan,
            vec![at([127, 0, 0, 1], refused(30)), two_again.clone()],
        );
        assert_eq!(
            state.get("a").expect("entry").scans.to_vec(),
            vec![kept(&one), kept(&two_again)]
        );
    }

    #[test]
    fn failure_counts_hold_only_the_reasons_seen_in_label_order() {
        let mut counts = FailureCounts::default();
        assert!(counts.is_empty());
        counts.add(FailureReason::HandshakeTimeout);
        counts.add(FailureReason::DnsError);
        counts.add(FailureReason::HandshakeTimeout);
        let seen: Vec<_> = counts.iter().collect();
        assert_eq!(
            seen,
            [
                (FailureReason::DnsError, 1),
                (FailureReason::HandshakeTimeout, 2)
            ]
        );
        assert_eq!(counts.get(FailureReason::HandshakeTimeout), 2);
        assert_eq!(counts.get(FailureReason::ConnectionRefused), 0);
        let mut all = [0; FailureReason::ALL.len()];
        all[FailureReason::DnsError.index()] = 1;
        all[FailureReason::HandshakeTimeout.index()] = 2;
        assert_eq!(counts, all);
    }

    #[test]
    fn the_same_failure_shares_one_detail() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        state.record(&t[0], Check::Probe, vec![refused(1)]);
        state.record(&t[0], Check::Probe, vec![refused(2)]);
        let h = history(&state);
        let (a, b) = (h[0].failure.as_ref(), h[1].failure.as_ref());
        assert!(a.zip(b).is_some_and(|(a, b)| Arc::ptr_eq(a, b)), "{h:?}");
    }

    #[test]
    fn history_detail_is_bounded_at_a_character_boundary() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        let long = "é".repeat(HISTORY_DETAIL_MAX);
        let o = outcome(1, Some(Failure::new(FailureReason::Other, long)));
        state.record(&t[0], Check::Probe, vec![o]);
        let detail = history(&state)[0].detail().expect("detail").to_string();
        assert!(detail.len() <= HISTORY_DETAIL_MAX, "{}", detail.len());
        assert!(
            detail.ends_with('…') && detail.starts_with("éé"),
            "{detail}"
        );
    }

    #[test]
    fn resolve_all_run_is_one_record_naming_the_failing_address() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        let ip = |last: u8| Some(IpAddr::from([127, 0, 0, last]));
        let mut good = outcome(7, None);
        good.ip = ip(2);
        let mut bad = refused(5);
        bad.ip = ip(3);
        state.record(&t[0], Check::Probe, vec![good, bad]);
        let h = history(&state);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].at(), 7);
        assert_eq!(h[0].duration_ms(), 7);
        assert_eq!(h[0].reason(), Some(FailureReason::ConnectionRefused));
        assert_eq!(
            h[0].detail(),
            Some("127.0.0.3: connect to 127.0.0.1:1 refused")
        );
    }

    #[test]
    fn history_is_kept_across_reloads_and_cleared_when_labels_change() {
        let state = State::default();
        let t = targets(ONE);
        state.set_targets(&t);
        state.record(&t[0], Check::Probe, vec![refused(1)]);
        // A new timeout, the same labels: history stays, like the counters.
        let t = targets(&ONE.replace("labels", "timeout: 2s, labels"));
        state.set_targets(&t);
        assert_eq!(history(&state).len(), 1);
        let t = targets(&ONE.replace("core", "edge"));
        state.set_targets(&t);
        assert!(history(&state).is_empty());
        state.record(&t[0], Check::Probe, vec![refused(2)]);
        state.set_targets(&[]);
        assert!(state.snapshot().is_empty());
        state.set_targets(&t);
        assert!(history(&state).is_empty());
    }
}

#[cfg(test)]
mod recent_max_tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn scheduler_lag_is_the_largest_over_the_last_minute() {
        let m = RecentMax::default();
        assert_eq!(m.get(at(1_000)), 0.0);
        m.record(Duration::from_millis(2_500), at(1_000));
        m.record(Duration::from_millis(300), at(1_015));
        assert_eq!(m.get(at(1_015)), 2.5);
        assert_eq!(m.get(at(1_055)), 2.5);
        // A minute on, the 2.5 s start has left the window; the 0.3 s one is still in it.
        assert_eq!(m.get(at(1_060)), 0.3);
        assert_eq!(m.get(at(1_080)), 0.0);
        // A bucket reused a minute later starts afresh.
        m.record(Duration::from_millis(100), at(1_061));
        assert_eq!(m.get(at(1_061)), 0.3);
        assert_eq!(m.get(at(1_075)), 0.1);
    }
}

//! The latest outcome per target plus exporter self-state: plain facts that `/metrics`, `/probe`
//! and the status page render (none of them holds label text or HTML here).
//!
//! Writers are the scheduler (one report per finished check), the reloader (target set) and,
//! once at start, `storage` (outcomes saved by the previous process); readers take a cheap
//! snapshot of `Arc`s and render without holding the lock.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Target;
use crate::probe::legacy::LegacyVersion;
use crate::probe::outcome::{AddressOutcome, ProbeOutcome};
use crate::probe::Check;
use crate::tls::chain::Chain;
use crate::verdict::FailureReason;

/// Per-target record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: Arc<Target>,
    /// The latest probe: one outcome, or one per address with `resolve: all`; empty before
    /// the first probe.
    pub latest: Vec<Probed>,
    /// The latest successful legacy scan, per address (a failed scan keeps the previous
    /// result of its address).
    pub scans: Vec<AddressOutcome>,
    pub probes_total: u64,
    pub failures_total: [u64; FailureReason::ALL.len()],
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

/// Exporter self-state, updated lock-free.
#[derive(Debug, Default)]
pub struct Stats {
    pub reload_successful: AtomicBool,
    /// f64 bits of the unix time of the last successful (re)load.
    reload_success_time: AtomicU64,
    pub probes_in_flight: AtomicI64,
    pub probes_skipped_total: AtomicU64,
    /// f64 bits of the start lag of the most recently started probe, in seconds.
    scheduler_lag: AtomicU64,
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

    pub fn scheduler_lag(&self) -> f64 {
        f64::from_bits(self.scheduler_lag.load(Ordering::Relaxed))
    }

    pub fn set_scheduler_lag(&self, lag: Duration) {
        self.scheduler_lag
            .store(lag.as_secs_f64().to_bits(), Ordering::Relaxed);
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
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Bumped on every change of `entries`, so `storage` saves only when something changed.
    changes: AtomicU64,
    pub stats: Stats,
}

impl State {
    /// Replaces the target set. Targets that keep their name keep their latest outcome until
    /// their next probe (no gap in their series), and their counters while their labels stay
    /// the same; removed targets disappear with all their series.
    pub fn set_targets(&self, targets: &[Arc<Target>]) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut next = BTreeMap::new();
        for t in targets {
            let entry = match entries.remove(&t.name) {
                Some(old) if Arc::ptr_eq(&old.target, t) => old,
                Some(old) if old.target.labels == t.labels => {
                    // A scan describes an endpoint: gone when scanning stops or the endpoint
                    // moves.
                    let keep_scans = same_scanned_endpoint(&old.target, t);
                    let mut entry = Entry {
                        target: t.clone(),
                        scans: if keep_scans { old.scans } else { Vec::new() },
                        ..old
                    };
                    entry.decide_chains();
                    entry
                }
                Some(_) | None => Entry {
                    target: t.clone(),
                    latest: Vec::new(),
                    scans: Vec::new(),
                    probes_total: 0,
                    failures_total: [0; FailureReason::ALL.len()],
                },
            };
            next.insert(t.name.clone(), entry);
        }
        *entries = next;
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
            scans,
            probes_total: 0,
            failures_total: [0; FailureReason::ALL.len()],
        };
        entry.decide_chains();
        entries.insert(target.name.clone(), entry);
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

    /// A consistent copy of every entry, sorted by target name.
    pub fn snapshot(&self) -> Vec<Entry> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().cloned().collect()
    }

    /// How many times the entries changed so far; equal counts mean nothing changed between.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
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
                self.failures_total[r.index()] += 1;
            }
        }
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
        let previous = std::mem::take(&mut self.scans);
        self.scans = outcomes
            .into_iter()
            .filter_map(|a| {
                if a.outcome.success() {
                    Some(a)
                } else {
                    previous.iter().find(|p| p.ip == a.ip).cloned()
                }
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
                let result = scan.outcome.scan.as_ref()?;
                let legacy_only = result.accepts(LegacyVersion::Tls12) == Some(false)
                    && result.accepts(LegacyVersion::Tls13) == Some(false);
                scan.outcome.chain.clone().filter(|_| legacy_only)
            });
        }
    }
}

/// Hands memory freed by a large transient job (a scrape, a config load) back to the OS.
/// glibc keeps freed heap in per-thread arenas otherwise, so RSS would ratchet up to the
/// largest scrape ever served on each worker thread.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The old target's scan result still describes the new target.
fn same_scanned_endpoint(old: &Target, new: &Target) -> bool {
    new.scan_interval.is_some()
        && old.host == new.host
        && old.port == new.port
        && old.server_name == new.server_name
}

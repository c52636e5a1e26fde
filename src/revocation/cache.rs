//! The fleet-wide cache of revocation answers, and the fetches that fill it.
//!
//! One entry per source and issuer: a CRL per (URL, issuer key), shared by every certificate
//! that issuer signed; an OCSP answer per (URL, issuer key, serial), shared by every target
//! that serves the certificate. An answer is kept until its nextUpdate (`MAX_AGE` when it has
//! none), and never re-fetched sooner than `MIN_REFETCH` after the previous attempt, failed
//! attempts included. At most `FETCH_CONCURRENCY` fetches run at once, each within
//! `FETCH_TIMEOUT`; they run as their own tasks, so no probe waits for one. Entries nobody asked
//! about for `MAX_IDLE` are dropped. What an answer means for one certificate is computed
//! here; the HTTP exchange, the OCSP and CRL checks are `responder`'s, `fetch`'s and `crl`'s.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use tokio::sync::Semaphore;

use super::crl::{self, Revoked};
use super::fetch::{self, Body};
use super::{responder, unix_now, Fact, Method, Settings, Status, Subject};
use crate::tls::ocsp::CertStatus;

/// No source is asked again sooner than this after the previous attempt.
pub(crate) const MIN_REFETCH: Duration = Duration::from_secs(5 * 60);
/// How long an answer without nextUpdate is kept.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Fetches in flight at once, for the whole process.
pub(crate) const FETCH_CONCURRENCY: usize = 4;
/// Time one fetch (connect, request, whole answer) may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries no probe asked about for this long are dropped.
const MAX_IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// The cache is swept for idle entries when it grows past this many (then twice its size).
const SWEEP_AT: usize = 1024;

/// The process's cache, shared by every target, the scheduler's probes and `/probe`'s alike.
pub(crate) fn shared() -> &'static Arc<Cache> {
    static SHARED: LazyLock<Arc<Cache>> = LazyLock::new(|| Arc::new(Cache::new()));
    &SHARED
}

/// Revocation answers by source, and the fetch slots.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<Entries>,
    slots: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    sweep_at: usize,
}

/// One source for one issuer (and, for OCSP, one serial).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    method: Method,
    url: String,
    /// SHA-256 of the issuer's SubjectPublicKeyInfo.
    issuer: [u8; 32],
    /// The certificate's serial for OCSP; empty for a CRL.
    serial: Vec<u8>,
}

#[derive(Debug, Default)]
struct Entry {
    answer: Option<Arc<Answer>>,
    in_flight: bool,
    /// When the latest fetch started (Unix seconds).
    attempted_at: i64,
    /// When a probe last asked.
    used_at: i64,
}

/// What a fetch brought back.
#[derive(Debug)]
struct Answer {
    result: Result<Verified, String>,
    /// When the fetch finished (Unix seconds).
    checked_at: i64,
    next_update: Option<i64>,
}

/// A verified answer: the responder's status of one certificate, or a CRL for many.
#[derive(Debug)]
enum Verified {
    Ocsp(CertStatus),
    Crl(Revoked),
}

impl Cache {
    fn new() -> Self {
        Cache {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
            slots: Arc::new(Semaphore::new(FETCH_CONCURRENCY)),
        }
    }

    /// The latest known fact about `subject` from `url` by `method` (none before the first
    /// fetch finished); starts a fetch in the background when one is due.
    pub(crate) fn latest(
        self: &Arc<Self>,
        subject: &Subject,
        method: Method,
        url: &str,
        settings: &Settings,
        now: i64,
    ) -> Option<Fact> {
        let key = Key {
            method,
            url: url.to_string(),
            issuer: sha256(subject.issuer.spki()),
            serial: match method {
                Method::Ocsp => subject.serial.clone(),
                Method::Crl => Vec::new(),
            },
        };
        let (answer, start) = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.sweep(now);
            let entry = entries.map.entry(key.clone()).or_default();
            entry.used_at = now;
            let start = due(entry, now) && tokio::runtime::Handle::try_current().is_ok();
            if start {
                entry.in_flight = true;
                entry.attempted_at = now;
            }
            (entry.answer.clone(), start)
        };
        if start {
            let cache = Arc::clone(self);
            let subject = subject.clone();
            let max_crl_size = settings.max_crl_size;
            tokio::spawn(async move { cache.fetch(key, subject, max_crl_size).await });
        }
        answer.map(|a| a.fact(subject, method, url))
    }

    /// Fetches the source of `key` once a slot is free and keeps the answer.
    async fn fetch(self: Arc<Self>, key: Key, subject: Subject, max_crl_size: u64) {
        let answer = match Arc::clone(&self.slots).acquire_owned().await {
            Ok(_slot) => ask(&key, &subject, max_crl_size).await,
            Err(_) => return,
        };
        match &answer.result {
            Ok(_) => tracing::debug!(
                url = key.url.as_str(),
                method = key.method.as_label(),
                "revocation answer fetched"
            ),
            // A sentence already naming the URL; retried after MIN_REFETCH.
            Err(why) => tracing::info!(
                method = key.method.as_label(),
                "revocation check failed: {why}"
            ),
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.map.entry(key).or_default();
        entry.answer = Some(Arc::new(answer));
        entry.in_flight = false;
    }
}

impl Entries {
    /// Drops idle entries once the map has grown past `sweep_at`.
    fn sweep(&mut self, now: i64) {
        if self.map.len() < self.sweep_at {
            return;
        }
        let idle = now.saturating_sub(MAX_IDLE.as_secs() as i64);
        self.map.retain(|_, e| e.in_flight || e.used_at >= idle);
        self.sweep_at = (self.map.len() * 2).max(SWEEP_AT);
    }
}

impl Answer {
    /// What this answer says of `subject`.
    fn fact(&self, subject: &Subject, method: Method, url: &str) -> Fact {
        let status = match &self.result {
            Err(why) => Status::Error(why.clone()),
            Ok(Verified::Ocsp(CertStatus::Good)) => Status::Good,
            Ok(Verified::Ocsp(CertStatus::Revoked { at })) => Status::Revoked { at: *at },
            Ok(Verified::Ocsp(CertStatus::Unknown)) => Status::Unknown,
            Ok(Verified::Crl(crl)) => match crl.revoked_at(&subject.serial) {
                Some(at) => Status::Revoked { at },
                None => Status::Good,
            },
        };
        Fact {
            depth: subject.depth,
            method,
            url: url.to_string(),
            status,
            checked_at: self.checked_at,
            next_update: self.next_update,
        }
    }
}

/// Whether a fetch should start for `entry` at `now`.
fn due(entry: &Entry, now: i64) -> bool {
    if entry.in_flight {
        return false;
    }
    let Some(answer) = &entry.answer else {
        return true;
    };
    let retry = entry
        .attempted_at
        .saturating_add(MIN_REFETCH.as_secs() as i64);
    let refresh = match &answer.result {
        Err(_) => retry,
        Ok(_) => answer
            .next_update
            .unwrap_or_else(|| answer.checked_at.saturating_add(MAX_AGE.as_secs() as i64))
            .max(retry),
    };
    now >= refresh
}

/// Fetches and checks the source of `key`.
async fn ask(key: &Key, subject: &Subject, max_crl_size: u64) -> Answer {
    let now = unix_now();
    let (result, next_update) = match key.method {
        Method::Ocsp => match responder::ask(&key.url, subject, now, FETCH_TIMEOUT).await {
            Ok(stapled) => (Ok(Verified::Ocsp(stapled.status)), stapled.next_update),
            Err(why) => (Err(why), None),
        },
        Method::Crl => {
            let got = fetch::fetch(&key.url, Body::Get, max_crl_size, FETCH_TIMEOUT).await;
            match got {
                Err(e) => (Err(e.to_string()), None),
                Ok(der) => match crl::parse(&der, &subject.issuer, unix_now()) {
                    Ok(revoked) => {
                        let next = revoked.next_update;
                        (Ok(Verified::Crl(revoked)), next)
                    }
                    Err(e) => (Err(format!("the CRL at {}: {e}", key.url)), None),
                },
            }
        }
    };
    Answer {
        result,
        checked_at: unix_now(),
        next_update,
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn entry(result: Result<(), ()>, checked_at: i64, next_update: Option<i64>) -> Entry {
        let result = match result {
            Ok(()) => Ok(Verified::Ocsp(CertStatus::Good)),
            Err(()) => Err("down".to_string()),
        };
        Entry {
            answer: Some(Arc::new(Answer {
                result,
                checked_at,
                next_update,
            })),
            in_flight: false,
            attempted_at: checked_at,
            used_at: checked_at,
        }
    }

    #[test]
    fn a_source_never_asked_is_due_unless_in_flight() {
        assert!(due(&Entry::default(), NOW));
        let flying = Entry {
            in_flight: true,
            ..Entry::default()
        };
        assert!(!due(&flying, NOW));
    }

    #[test]
    fn an_answer_is_kept_until_its_next_update() {
        let e = entry(Ok(()), NOW, Some(NOW + 86_400));
        assert!(!due(&e, NOW + 86_399));
        assert!(due(&e, NOW + 86_400));
    }

    #[test]
    fn no_source_is_asked_again_within_the_minimum_interval() {
        // An answer already past its nextUpdate (or a failure) waits MIN_REFETCH all the same.
        let min = MIN_REFETCH.as_secs() as i64;
        for e in [
            entry(Ok(()), NOW, Some(NOW - 10)),
            entry(Err(()), NOW, None),
        ] {
            assert!(!due(&e, NOW + min - 1));
            assert!(due(&e, NOW + min));
        }
    }

    #[test]
    fn an_answer_without_next_update_is_kept_for_the_maximum_age() {
        let e = entry(Ok(()), NOW, None);
        let max = MAX_AGE.as_secs() as i64;
        assert!(!due(&e, NOW + max - 1));
        assert!(due(&e, NOW + max));
    }

    #[test]
    fn idle_entries_are_swept_once_the_cache_is_large() {
        let mut entries = Entries {
            map: HashMap::new(),
            sweep_at: 2,
        };
        let key = |n: u8| Key {
            method: Method::Crl,
            url: format!("http://crl/{n}"),
            issuer: [n; 32],
            serial: Vec::new(),
        };
        let idle = MAX_IDLE.as_secs() as i64;
        entries
            .map
            .insert(key(1), entry(Ok(()), NOW - idle - 1, None));
        entries.map.insert(key(2), entry(Ok(()), NOW, None));
        entries.sweep(NOW);
        assert_eq!(entries.map.len(), 1);
        assert!(entries.map.contains_key(&key(2)));
        assert_eq!(entries.sweep_at, SWEEP_AT);
    }
}

//! Re-reads certificate files: each `files:` entry on its own interval, each expected file on
//! the interval of the targets naming it, and everything at once when a config is applied.
//!
//! One task; the reads run on the blocking pool (each bounded by `config::read`). After every
//! round the whole `FileSet` goes to the sink (the state), so a file that disappears, or a
//! glob that stops matching it, loses its series at the next round. A file whose read fails
//! is logged once per new reason, and once when it recovers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{matches, read_file, CertFile, FileSet};
use crate::config::{CertFileEntry, CertFormat, Config};

/// Whether this process reads a matched file (its shard owns it).
pub type Owns = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// What to read and how often.
#[derive(Clone, Default)]
pub struct Plan {
    pub entries: Vec<Arc<CertFileEntry>>,
    /// Each file a target expects its leaf in, with how to read it (the `files:` entry whose
    /// glob matches it, else PEM) and how often (the shortest interval of the targets naming
    /// it).
    pub expected: Vec<(PathBuf, Arc<CertFileEntry>)>,
    /// `None`: every matched file is this process's.
    pub owns: Option<Owns>,
}

impl Plan {
    /// The plan of `config`; with `owns`, only the `files:` matches it owns are read (each
    /// shard still reads the expected files of its own targets).
    pub fn of(config: &Config, targets: &[Arc<crate::config::Target>], owns: Option<Owns>) -> Plan {
        let mut expected: BTreeMap<PathBuf, Duration> = BTreeMap::new();
        for t in targets {
            if let Some(p) = &t.expect_cert_file {
                let every = expected.entry(p.to_path_buf()).or_insert(t.interval);
                *every = (*every).min(t.interval);
            }
        }
        let expected = expected
            .into_iter()
            .map(|(path, interval)| {
                let listed = config
                    .cert_files
                    .iter()
                    .find(|e| glob::Pattern::new(&e.pattern).is_ok_and(|p| p.matches_path(&path)));
                let entry = CertFileEntry {
                    pattern: path.to_string_lossy().into_owned(),
                    format: listed.map_or(CertFormat::Pem, |e| e.format),
                    password_file: listed.and_then(|e| e.password_file.clone()),
                    interval,
                    labels: Vec::new(),
                };
                (path, Arc::new(entry))
            })
            .collect();
        Plan {
            entries: config.cert_files.clone(),
            expected,
            owns,
        }
    }
}

/// The running re-reader; dropping it stops it.
pub struct Watcher {
    plan: watch::Sender<Arc<Plan>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Starts reading `plan` now and on its intervals, handing every round's `FileSet` to
    /// `sink`. Call within a tokio runtime.
    pub fn start(plan: Plan, sink: impl Fn(Arc<FileSet>) + Send + Sync + 'static) -> Watcher {
        let (tx, rx) = watch::channel(Arc::new(plan));
        let task = tokio::spawn(run(rx, sink));
        Watcher { plan: tx, task }
    }

    /// Replaces the plan and re-reads every file at once (a config was applied).
    pub fn apply(&self, plan: Plan) {
        self.plan.send_replace(Arc::new(plan));
    }

    /// Stops re-reading.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(mut rx: watch::Receiver<Arc<Plan>>, sink: impl Fn(Arc<FileSet>) + Send + Sync) {
    let mut reported: HashMap<PathBuf, String> = HashMap::new();
    // Patterns that matched no file at their latest read (warned once until they match).
    let mut unmatched: HashSet<String> = HashSet::new();
    loop {
        let plan = rx.borrow_and_update().clone();
        let mut round = Round::new(&plan);
        loop {
            let due = round.take_due(Instant::now());
            let read = tokio::task::spawn_blocking({
                let plan = plan.clone();
                move || due.read(&plan)
            })
            .await;
            let Ok(read) = read else {
                return;
            };
            note_unmatched(&plan, &read, &mut unmatched);
            round.merge(read);
            let set = round.set();
            log_changes(&set, &mut reported);
            sink(Arc::new(set));
            tokio::select! {
                _ = tokio::time::sleep_until(round.next_due()) => {}
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// The reads of one plan: the latest result of each entry and expected file, and when each
/// is due again.
struct Round {
    entries: Vec<(Instant, Vec<CertFile>)>,
    expected: Vec<(Instant, Option<CertFile>)>,
    intervals: (Vec<Duration>, Vec<Duration>),
}

/// Which entries and expected files to read now, by position in the plan.
struct Due {
    entries: Vec<usize>,
    expected: Vec<usize>,
}

/// What reading `Due` gave.
struct Read {
    entries: Vec<(usize, Vec<CertFile>)>,
    expected: Vec<(usize, CertFile)>,
}

impl Round {
    fn new(plan: &Plan) -> Round {
        let now = Instant::now();
        Round {
            entries: plan.entries.iter().map(|_| (now, Vec::new())).collect(),
            expected: plan.expected.iter().map(|_| (now, None)).collect(),
            intervals: (
                plan.entries.iter().map(|e| e.interval).collect(),
                plan.expected.iter().map(|(_, e)| e.interval).collect(),
            ),
        }
    }

    /// What is due at `now`, each rescheduled one interval on.
    fn take_due(&mut self, now: Instant) -> Due {
        let mut due = Due {
            entries: Vec::new(),
            expected: Vec::new(),
        };
        for (i, (at, _)) in self.entries.iter_mut().enumerate() {
            if *at <= now {
                due.entries.push(i);
                *at = now
                    + self
                        .intervals
                        .0
                        .get(i)
                        .copied()
                        .unwrap_or(Duration::from_secs(60));
            }
        }
        for (i, (at, _)) in self.expected.iter_mut().enumerate() {
            if *at <= now {
                due.expected.push(i);
                *at = now
                    + self
                        .intervals
                        .1
                        .get(i)
                        .copied()
                        .unwrap_or(Duration::from_secs(60));
            }
        }
        due
    }

    fn merge(&mut self, read: Read) {
        for (i, files) in read.entries {
            if let Some(slot) = self.entries.get_mut(i) {
                slot.1 = files;
            }
        }
        for (i, file) in read.expected {
            if let Some(slot) = self.expected.get_mut(i) {
                slot.1 = Some(file);
            }
        }
    }

    fn next_due(&self) -> Instant {
        let times = self.entries.iter().map(|(at, _)| *at);
        let times = times.chain(self.expected.iter().map(|(at, _)| *at));
        times
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    fn set(&self) -> FileSet {
        FileSet {
            files: self
                .entries
                .iter()
                .flat_map(|(_, f)| f.iter().cloned())
                .collect(),
            expected: self
                .expected
                .iter()
                .filter_map(|(_, f)| f.clone().map(|f| (f.path.clone(), f)))
                .collect(),
        }
    }
}

impl Due {
    /// Reads (blocking) what is due.
    fn read(self, plan: &Plan) -> Read {
        let owned = |p: &PathBuf| plan.owns.as_ref().is_none_or(|owns| owns(p));
        Read {
            entries: self
                .entries
                .into_iter()
                .filter_map(|i| {
                    let entry = plan.entries.get(i)?;
                    let files = matches(entry)
                        .iter()
                        .filter(|p| owned(p))
                        .map(|p| read_file(p, entry))
                        .collect();
                    Some((i, files))
                })
                .collect(),
            expected: self
                .expected
                .into_iter()
                .filter_map(|i| {
                    let (path, entry) = plan.expected.get(i)?;
                    Some((i, read_file(path, entry)))
                })
                .collect(),
        }
    }
}

/// Warns once when a `files:` pattern that matched files (or was new) matches none: a typo in
/// the path, or the files are gone (their series are gone too).
fn note_unmatched(plan: &Plan, read: &Read, unmatched: &mut HashSet<String>) {
    for (i, files) in &read.entries {
        let Some(entry) = plan.entries.get(*i) else {
            continue;
        };
        if !files.is_empty() {
            unmatched.remove(&entry.pattern);
        } else if unmatched.insert(entry.pattern.clone()) {
            tracing::warn!(
                pattern = %entry.pattern,
                "the certificate file pattern {} matches no file, so it has no series",
                entry.pattern
            );
        }
    }
}

/// Logs each file whose read failed for a new reason, and each that recovered.
fn log_changes(set: &FileSet, reported: &mut HashMap<PathBuf, String>) {
    let mut seen = HashMap::with_capacity(reported.len());
    for f in set.files.iter().chain(set.expected.values()) {
        match &f.read {
            Err(e) => {
                let reason = e.to_string();
                if reported.get(&f.path) != Some(&reason) {
                    tracing::warn!(path = %f.path.display(), reason = %reason, "cannot read the certificates of a file");
                }
                seen.insert(f.path.clone(), reason);
            }
            Ok(certs) => {
                if reported.contains_key(&f.path) {
                    tracing::info!(path = %f.path.display(), certificates = certs.len(), "certificate file readable again");
                }
            }
        }
    }
    *reported = seen;
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, pem_of};
    use super::*;

    #[tokio::test]
    async fn a_changed_file_shows_within_one_interval_and_a_removed_one_vanishes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.pem");
        std::fs::write(&p, pem_of("first")).expect("write");
        let mut e = (*entry(&dir.path().join("*.pem"), CertFormat::Pem)).clone();
        e.interval = Duration::from_millis(100);
        let plan = Plan {
            entries: vec![Arc::new(e)],
            ..Plan::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = Watcher::start(plan, move |set| {
            let _ = tx.send(set);
        });
        let cn_of = |s: &FileSet| {
            s.files
                .first()
                .and_then(|f| f.certs().first().map(|c| c.cn.clone()))
        };
        let first = rx.recv().await.expect("a round");
        assert_eq!(cn_of(&first).as_deref(), Some("first"));
        std::fs::write(&p, pem_of("second")).expect("rewrite");
        let wait = async {
            while let Some(s) = rx.recv().await {
                if cn_of(&s).as_deref() == Some("second") {
                    break;
                }
            }
            std::fs::remove_file(&p).expect("remove");
            while let Some(s) = rx.recv().await {
                if s.files.is_empty() {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the change and the removal show within a few intervals");
    }
}

//! State across restarts (`--storage.path`): the latest outcomes of every target, its probe
//! and its scan results, saved to one JSON file and put back at start, so series and `for:`
//! alerts do not reset on every deploy.
//!
//! `restore` reads the file once, before the first target set is applied, and hands each
//! saved target's outcomes to `State::restore` when a target of the same name and the same
//! fingerprint (`Target::fingerprint`: settings and file contents) is configured; a changed
//! target starts fresh. Outcomes keep their original `finished_at`, so
//! `tls_probe_timestamp_seconds` shows how old they are until the first probe replaces them.
//! `Writer` saves atomically (temporary file, fsync, rename) whenever the state changed, at
//! most every `MIN_WRITE_INTERVAL`, and once more on shutdown.
//!
//! Storage never stops the exporter: a file that cannot be used (unreadable, over
//! `MAX_FILE_BYTES`, truncated, not JSON, not ours, another format version) is ignored with a
//! warning; a failed save is a warning and is retried. A save replaces only a state file (of
//! any version, truncated or not) or an empty one: a file that does not start like a state file
//! is someone else's (a mistyped `--storage.path`), and it is left alone.
//!
//! Counters (`tls_probes_total`, `tls_probe_failures_total`) are not saved: they count this
//! process's probes, and Prometheus's `rate()` and `increase()` handle the reset to zero at a
//! restart exactly. A restored counter would be worse than a reset: after a crash it is lower
//! than the value last scraped (the probes since the last save are lost), which Prometheus
//! reads as a reset followed by a jump of the whole count.
//!
//! What the facts mean is `probe::outcome`'s business, how they render `metrics/`'; this module
//! only moves them. Their serde shape is the file format: a change to it that old files cannot
//! read must bump `VERSION` (the fixture test below notices).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::probe::outcome::AddressOutcome;
use crate::state::{Scanned, State};

/// The `format` field of every state file: anything else is not ours.
pub const FORMAT: &str = "tls_exporter state";
/// The layout of the file (the serde shape of the saved facts). A file of another version is
/// ignored.
pub const VERSION: u64 = 1;
/// Largest state file read; a larger one is ignored. 10,000 targets take some 10 to 30 MB.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Saves are at least this far apart.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// The next save waits at least this many times as long as the last one took, so saving a
/// large state never takes more than a twentieth of the time.
const WRITE_COST_FACTOR: u32 = 20;
/// The save at shutdown (and one still running then) is abandoned after this long; the
/// previous file stays in place.
const FINAL_SAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a state file was not used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read it: {0}")]
    Read(io::Error),
    #[error("it is a directory; name a file in it, e.g. {}", .0.display())]
    Directory(PathBuf),
    #[error("it is {size} bytes, more than the {limit} bytes a state file may have")]
    TooLarge { size: u64, limit: u64 },
    #[error("it is empty")]
    Empty,
    #[error("it is truncated ({0})")]
    Truncated(serde_json::Error),
    #[error("it is not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("it is not a tls_exporter state file")]
    Foreign,
    #[error("it has state format version {found}, and this exporter reads version {VERSION} only")]
    OtherVersion { found: u64 },
    #[error("it does not match state format version {VERSION} ({0})")]
    Malformed(serde_json::Error),
}

/// Why a save failed; the previous file, if any, is untouched.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{} does not name a file", .0.display())]
    NoFileName(PathBuf),
    #[error("it holds a file that is not a tls_exporter state file (left alone: remove it or choose another --storage.path)")]
    Foreign,
    #[error("create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

/// A state file as read.
#[derive(Debug, Deserialize)]
pub struct Saved {
    pub saved_at: SystemTime,
    pub targets: Vec<SavedTarget>,
}

/// One target's saved outcomes.
#[derive(Debug, Deserialize)]
pub struct SavedTarget {
    pub name: String,
    /// `Target::fingerprint` of the target the outcomes were found for.
    pub fingerprint: String,
    pub latest: Vec<AddressOutcome>,
    pub scans: Vec<AddressOutcome>,
}

/// `Target::fingerprint` per target, computed once per `Target` (a fingerprint reads the
/// target's files) and shared by `restore` and the saves.
#[derive(Debug, Default)]
pub struct Fingerprints(HashMap<String, (Arc<Target>, String)>);

impl Fingerprints {
    /// The fingerprint of `target`, computed unless this very `Target` was seen before.
    fn of(&mut self, target: &Arc<Target>) -> &str {
        let entry = self
            .0
            .entry(target.name.clone())
            .or_insert_with(|| (target.clone(), target.fingerprint()));
        if !Arc::ptr_eq(&entry.0, target) {
            *entry = (target.clone(), target.fingerprint());
        }
        &entry.1
    }
}

/// Reads the state file at `path` (at most `limit` bytes): `Ok(None)` when there is none yet.
pub fn load(path: &Path, limit: u64) -> Result<Option<Saved>, LoadError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Read(e)),
    };
    let meta = file.metadata().map_err(LoadError::Read)?;
    if meta.is_dir() {
        return Err(LoadError::Directory(path.join("state.json")));
    }
    if meta.len() > limit {
        return Err(LoadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    // Bounded again while reading: the file may grow after the check.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(LoadError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(LoadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    parse(&bytes).map(Some)
}

/// Restores what the state file at `path` holds for `targets` into `state` and logs what it
/// did; never fails. Returns the fingerprints computed on the way, for the `Writer`.
pub fn restore(state: &State, path: &Path, targets: &[Arc<Target>]) -> Fingerprints {
    let mut fingerprints = Fingerprints::default();
    let file = path.display();
    let saved = match load(path, MAX_FILE_BYTES) {
        Ok(Some(saved)) => saved,
        Ok(None) => {
            tracing::info!(file = %file, "no state file yet; every target starts fresh");
            return fingerprints;
        }
        Err(e) => {
            let then = if holds_foreign_file(path) {
                "the file is left alone, and no state is saved until it is removed or --storage.path names another file"
            } else {
                "the file is replaced at the next save"
            };
            tracing::warn!(
                file = %file,
                "ignoring the state file {file}: {e}; every target starts fresh, and {then}"
            );
            return fingerprints;
        }
    };
    let by_name: HashMap<&str, &Arc<Target>> =
        targets.iter().map(|t| (t.name.as_str(), t)).collect();
    let (mut restored, mut changed, mut removed) = (0usize, 0usize, 0usize);
    for s in saved.targets {
        let Some(target) = by_name.get(s.name.as_str()) else {
            removed += 1;
            continue;
        };
        if fingerprints.of(target) != s.fingerprint {
            changed += 1;
            tracing::debug!(
                target = s.name.as_str(),
                "target changed since the state was saved; it starts fresh"
            );
            continue;
        }
        state.restore(target, s.latest, s.scans);
        restored += 1;
    }
    let age = SystemTime::now()
        .duration_since(saved.saved_at)
        .unwrap_or_default()
        .as_secs();
    tracing::info!(
        file = %file,
        restored,
        changed,
        removed,
        saved_seconds_ago = age,
        "restored the latest outcomes from the state file"
    );
    fingerprints
}

/// Writes the targets of `state` that have outcomes to `path` atomically: a temporary file
/// beside it, fsync, rename over `path`, fsync of the directory. Returns the bytes written.
pub fn save(state: &State, path: &Path, fingerprints: &mut Fingerprints) -> Result<u64, SaveError> {
    if holds_foreign_file(path) {
        return Err(SaveError::Foreign);
    }
    let entries = state.snapshot();
    // Rebuilt from the entries, so removed targets leave the cache.
    let mut fresh = Fingerprints::default();
    for e in &entries {
        let fp = match fingerprints.0.remove(&e.target.name) {
            Some((t, fp)) if Arc::ptr_eq(&t, &e.target) => fp,
            _ => e.target.fingerprint(),
        };
        fresh
            .0
            .insert(e.target.name.clone(), (e.target.clone(), fp));
    }
    *fingerprints = fresh;
    let targets = entries
        .iter()
        .filter(|e| !e.latest.is_empty() || !e.scans.is_empty())
        .map(|e| TargetOut {
            name: &e.target.name,
            fingerprint: fingerprints
                .0
                .get(&e.target.name)
                .map_or("", |(_, fp)| fp.as_str()),
            latest: e
                .latest
                .iter()
                .map(|p| AddressOutcome {
                    ip: p.ip,
                    outcome: p.outcome.clone(),
                })
                .collect(),
            scans: ScansOut(&e.scans),
        })
        .collect();
    let out = FileOut {
        format: FORMAT,
        version: VERSION,
        saved_at: SystemTime::now(),
        targets,
    };
    write_atomically(path, &out)
}

/// Saves the state in the background (see the module doc) until `finish`.
pub struct Writer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Writer {
    /// Starts saving `state` to `path`, the first time at once (so an unwritable path is
    /// reported at start).
    pub fn start(state: Arc<State>, path: PathBuf, fingerprints: Fingerprints) -> Writer {
        let stop = CancellationToken::new();
        let saver = Saver {
            state,
            path,
            fingerprints,
            saved: None,
            failing: None,
        };
        let task = tokio::spawn(saver.run(stop.clone()));
        Writer { stop, task }
    }

    /// Stops the periodic saves and saves once more if anything changed since the last save,
    /// giving up after `FINAL_SAVE_TIMEOUT` (a hung disk must not hold the shutdown).
    pub async fn finish(self) {
        self.stop.cancel();
        if tokio::time::timeout(FINAL_SAVE_TIMEOUT, self.task)
            .await
            .is_err()
        {
            tracing::warn!(
                "the state was not saved at shutdown within {}s; the file keeps the previous save",
                FINAL_SAVE_TIMEOUT.as_secs()
            );
        }
    }
}

/// The writer's loop and what it remembers between saves.
struct Saver {
    state: Arc<State>,
    path: PathBuf,
    fingerprints: Fingerprints,
    /// `State::changes` at the last successful save.
    saved: Option<u64>,
    /// The last save's error, so a lasting problem is logged once.
    failing: Option<String>,
}

impl Saver {
    async fn run(mut self, stop: CancellationToken) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let took = self.save_if_changed().await;
            wait = MIN_WRITE_INTERVAL.max(took * WRITE_COST_FACTOR);
        }
        self.save_if_changed().await;
    }

    /// Saves unless nothing changed since the last save; returns how long it took.
    async fn save_if_changed(&mut self) -> Duration {
        let changes = self.state.changes();
        if self.saved == Some(changes) {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let state = self.state.clone();
        let path = self.path.clone();
        let mut fingerprints = std::mem::take(&mut self.fingerprints);
        let joined = tokio::task::spawn_blocking(move || {
            let result = save(&state, &path, &mut fingerprints);
            (result, fingerprints)
        })
        .await;
        let result = match joined {
            Ok((result, fingerprints)) => {
                self.fingerprints = fingerprints;
                result.map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("the saving task failed: {e}")),
        };
        let took = start.elapsed();
        let file = self.path.display();
        match result {
            Ok(bytes) => {
                self.saved = Some(changes);
                if self.failing.take().is_some() {
                    tracing::info!(file = %file, "saving the state to {file} works again");
                }
                tracing::debug!(
                    file = %file,
                    bytes,
                    took_ms = took.as_millis() as u64,
                    "saved the state"
                );
            }
            Err(e) => {
                if self.failing.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        file = %file,
                        "cannot save the state to {file}: {e}; probing goes on, and the save is retried"
                    );
                }
                self.failing = Some(e);
            }
        }
        took
    }
}

/// The file as written.
#[derive(Serialize)]
struct FileOut<'a> {
    /// First, so a file of ours starts with it even when truncated.
    format: &'static str,
    version: u64,
    saved_at: SystemTime,
    targets: Vec<TargetOut<'a>>,
}

#[derive(Serialize)]
struct TargetOut<'a> {
    name: &'a str,
    fingerprint: &'a str,
    latest: Vec<AddressOutcome>,
    scans: ScansOut<'a>,
}

/// A target's scans written in the outcome shape files keep, one outcome built at a time (a
/// save of 50,000 scanned targets would otherwise hold ~25 MB of them at once).
struct ScansOut<'a>(&'a [Scanned]);

impl Serialize for ScansOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Scanned::to_outcome))
    }
}

/// What is read first, to tell a foreign or other-version file from a malformed one.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u64>,
}

/// `path` holds a file that is neither a state file nor the start of one (nor empty): someone
/// else's, which a save must not replace. Anything that cannot be read as a file is not
/// judged here (the save reports what goes wrong with it).
fn holds_foreign_file(path: &Path) -> bool {
    // `FileOut` writes `format` first, compactly: every state file starts with this.
    let mark = format!("{{\"format\":\"{FORMAT}\"");
    let Ok(file) = File::open(path) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(mark.len());
    match file.take(mark.len() as u64).read_to_end(&mut head) {
        Ok(_) => !mark.as_bytes().starts_with(&head),
        Err(_) => false,
    }
}

/// Checks the header, then reads the whole file.
fn parse(bytes: &[u8]) -> Result<Saved, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => LoadError::Truncated(e),
        serde_json::error::Category::Syntax => LoadError::NotJson(e),
        // Valid JSON of another shape (an array, a string, a number for `format`), or an I/O
        // error, which reading from a slice never gives.
        serde_json::error::Category::Data | serde_json::error::Category::Io => LoadError::Foreign,
    })?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(LoadError::Foreign);
    }
    match header.version {
        Some(VERSION) => {}
        Some(found) => return Err(LoadError::OtherVersion { found }),
        None => return Err(LoadError::Foreign),
    }
    serde_json::from_slice(bytes).map_err(LoadError::Malformed)
}

/// Writes `value` as JSON to a temporary file beside `path`, syncs it and renames it over
/// `path`; on failure the temporary file is removed and `path` is untouched.
fn write_atomically(path: &Path, value: &impl Serialize) -> Result<u64, SaveError> {
    let Some(name) = path.file_name() else {
        return Err(SaveError::NoFileName(path.to_path_buf()));
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let file = File::create(&tmp).map_err(|source| SaveError::Create {
        path: tmp.clone(),
        source,
    })?;
    let written = write_synced(file, &tmp, value).and_then(|bytes| {
        std::fs::rename(&tmp, path)
            .map(|()| bytes)
            .map_err(|source| SaveError::Rename {
                from: tmp.clone(),
                to: path.to_path_buf(),
                source,
            })
    });
    match written {
        Ok(bytes) => {
            // The rename is durable once the directory is synced; some file systems refuse
            // to sync a directory, and the file is complete either way.
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Streams `value` into `file` (at `path`) and syncs it; returns the bytes written.
fn write_synced(file: File, path: &Path, value: &impl Serialize) -> Result<u64, SaveError> {
    let fail = |source: io::Error| SaveError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = CountingWriter {
        inner: BufWriter::with_capacity(64 * 1024, file),
        bytes: 0,
    };
    serde_json::to_writer(&mut w, value).map_err(|e| fail(io::Error::from(e)))?;
    w.inner.flush().map_err(fail)?;
    let file = w.inner.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)?;
    Ok(w.bytes)
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::probe::http::{Hsts, HttpFacts, RedirectFacts};
    use crate::probe::legacy::{LegacyVersion, ScanResult, WeakClass};
    use crate::probe::outcome::{Negotiated, Phases, ProbeOutcome};
    use crate::probe::Check;
    use crate::tls::cert::CertFacts;
    use crate::tls::chain::Chain;
    use crate::tls::ocsp::{CertStatus, OcspError, Stapled};
    use crate::verdict::{Failure, FailureReason};

    fn target(yaml_target: &str) -> Arc<Target> {
        let yaml = format!("targets:\n  - {yaml_target}\n");
        let config = crate::config::parse(&yaml, Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("test config: {e}"));
        config.targets.first().cloned().expect("one target")
    }

    fn facts(cn: &str) -> CertFacts {
        CertFacts {
            not_before: 1_000,
            not_after: 90_000,
            cn: cn.to_string(),
            subject: format!("CN={cn}"),
            issuer: "CN=Test \"Root\"\n".to_string(),
            serial: "01:02".to_string(),
            fingerprint_sha256: "ab".repeat(32),
            spki_sha256: String::new(),
            dns_names: format!("{cn},127.0.0.1"),
            emails: Vec::new(),
            key: "RSA 2048".to_string(),
            rsa_bits: Some(2048),
            signature_algorithm: "sha256WithRSAEncryption".to_string(),
            weak_signature: false,
            self_issued: false,
            subject_der: Vec::new(),
            issuer_der: Vec::new(),
        }
    }

    /// An outcome with every fact set, at unix time `at`.
    fn sample(at: u64) -> ProbeOutcome {
        let phases = Phases {
            resolve: Some(Duration::from_micros(10)),
            connect: Some(Duration::from_millis(2)),
            proxy: None,
            starttls: None,
            handshake: Some(Duration::from_millis(7)),
        };
        let mut o = ProbeOutcome::new(phases, Duration::from_millis(12));
        o.failure = Some(Failure::new(
            FailureReason::Expired,
            "certificate expired 1970-01-02T01:00:00Z (3 days ago)",
        ));
        o.handshake_ok = true;
        o.finished_at = UNIX_EPOCH + Duration::new(at, 250_000_000);
        o.negotiated = Some(Negotiated {
            version: "TLS 1.2",
            cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            group: Some("x25519".into()),
        });
        o.chain = Some(Arc::new(Chain {
            certs: vec![(0, Arc::new(facts("api"))), (2, Arc::new(facts("ca")))],
            sent: 3,
            problem: Some(Failure::new(FailureReason::Expired, "expired")),
            path_expiry: None,
            path: Vec::new(),
            order_valid: false,
            incomplete: true,
        }));
        o.client_auth_requested = true;
        o.ocsp = Some(Ok(Stapled {
            status: CertStatus::Revoked { at: 4_000 },
            this_update: 3_000,
            next_update: None,
            produced_at: 0,
        }));
        o.ocsp_checked = true;
        o.http = Some(Box::new(Ok(HttpFacts {
            status: 200,
            hsts: Some(Hsts {
                max_age: u64::MAX,
                include_subdomains: true,
                preload: false,
            }),
            hsts_header: Some("max-age=99999999999999999999; includeSubDomains".to_string()),
        })));
        o.redirect = Some(Box::new(RedirectFacts {
            status: 301,
            to_https: true,
            hops: 2,
            location: Some("https://api/".to_string()),
        }));
        o.scan = Some(Box::new(ScanResult {
            protocols: LegacyVersion::ALL.iter().map(|v| (*v, true)).collect(),
            weak: WeakClass::ALL.iter().map(|c| (*c, false)).collect(),
            handshakes: 11,
            duration: Duration::from_millis(900),
            legacy_chain: None,
        }));
        o
    }

    fn one(outcome: ProbeOutcome) -> Vec<AddressOutcome> {
        vec![AddressOutcome {
            ip: None,
            outcome: Arc::new(outcome),
        }]
    }

    fn saved_file(state: &State) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        save(state, &path, &mut Fingerprints::default()).expect("save");
        (dir, path)
    }

    fn load_error(bytes: &[u8]) -> LoadError {
        match parse(bytes) {
            Ok(_) => panic!("{} parsed", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    #[test]
    fn saved_outcomes_read_back_unchanged() {
        let t = target("{name: api, address: \"127.0.0.1:1\"}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        state.record(&t, Check::Probe, one(sample(5_000)));
        let mut scan = sample(4_000);
        scan.failure = None;
        scan.ocsp = Some(Err(OcspError::NotSuccessful(3)));
        scan.http = Some(Box::new(
            Err("connect to 127.0.0.1:1 timed out".to_string()),
        ));
        let scan = AddressOutcome {
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            outcome: Arc::new(scan),
        };
        state.record(&t, Check::Scan, vec![scan.clone()]);
        let (_dir, path) = saved_file(&state);
        let saved = load(&path, MAX_FILE_BYTES).expect("load").expect("a file");
        assert_eq!(saved.targets.len(), 1);
        let s = &saved.targets[0];
        assert_eq!(s.name, "api");
        assert_eq!(s.fingerprint, t.fingerprint());
        assert_eq!(
            format!("{:?}", s.latest),
            format!("{:?}", one(sample(5_000)))
        );
        // A target keeps a scan's facts, not its whole outcome (`state::Scanned`): those read
        // back unchanged, and restored they are the record the state holds.
        let kept = Scanned::of(&scan).expect("a successful scan");
        let read: Vec<_> = s.scans.iter().filter_map(Scanned::of).collect();
        assert_eq!(read, vec![kept.clone()]);
        assert_eq!(
            format!("{:?}", s.scans),
            format!("{:?}", vec![kept.to_outcome()])
        );
        let after = State::default();
        after.restore(&t, Vec::new(), s.scans.clone());
        let en = after.get("api").expect("restored");
        assert_eq!(&*en.scans, &[kept][..]);
    }

    #[test]
    fn format_version_1_file_still_reads() {
        // A file written by version 1; if this fails, the facts' serde shape changed: keep old
        // files readable (`#[serde(default)]` on a new field) or bump VERSION and the fixture.
        let text = include_str!("../tests/fixtures/state/v1.json");
        let saved = parse(text.as_bytes()).unwrap_or_else(|e| panic!("v1 fixture: {e}"));
        assert_eq!(saved.saved_at, UNIX_EPOCH + Duration::from_secs(6_000));
        let s = saved.targets.first().expect("one target");
        assert_eq!((s.name.as_str(), s.fingerprint.as_str()), ("api", "f1"));
        assert_eq!(
            format!("{:?}", s.latest),
            format!("{:?}", one(sample(5_000)))
        );
        assert!(s.scans.is_empty());
    }

    #[test]
    fn restore_puts_back_matching_targets_with_their_timestamp_and_no_counts() {
        let t = target("{name: api, address: \"127.0.0.1:1\"}");
        let before = State::default();
        before.set_targets(std::slice::from_ref(&t));
        before.record(&t, Check::Probe, one(sample(5_000)));
        let (_dir, path) = saved_file(&before);

        // A new process: the same config loaded again.
        let again = target("{name: api, address: \"127.0.0.1:1\"}");
        let after = State::default();
        restore(&after, &path, std::slice::from_ref(&again));
        after.set_targets(std::slice::from_ref(&again));
        let entries = after.snapshot();
        let e = entries.first().expect("entry");
        assert!(Arc::ptr_eq(&e.target, &again));
        assert_eq!(e.probes_total, 0);
        assert_eq!(e.failures_total, [0; FailureReason::ALL.len()]);
        let p = e.latest.first().expect("restored outcome");
        assert_eq!(
            p.outcome.finished_at,
            UNIX_EPOCH + Duration::new(5_000, 250_000_000)
        );
        assert_eq!(p.outcome.reason(), Some(FailureReason::Expired));
        assert!(p.chain.is_some(), "the shown chain is decided on restore");
    }

    #[test]
    fn changed_or_removed_targets_are_not_restored() {
        let api = target("{name: api, address: \"127.0.0.1:1\"}");
        let web = target("{name: web, address: \"127.0.0.1:2\"}");
        let before = State::default();
        before.set_targets(&[api.clone(), web.clone()]);
        before.record(&api, Check::Probe, one(sample(5_000)));
        before.record(&web, Check::Probe, one(sample(5_000)));
        let (_dir, path) = saved_file(&before);

        let changed = target("{name: api, address: \"127.0.0.1:1\", timeout: 3s}");
        let after = State::default();
        restore(&after, &path, std::slice::from_ref(&changed));
        after.set_targets(std::slice::from_ref(&changed));
        let entries = after.snapshot();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].latest.is_empty(), "{:?}", entries[0].latest);
    }

    #[test]
    fn targets_without_outcomes_are_not_saved() {
        let t = target("{name: api, address: \"127.0.0.1:1\"}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let (_dir, path) = saved_file(&state);
        let saved = load(&path, MAX_FILE_BYTES).expect("load").expect("a file");
        assert!(saved.targets.is_empty());
    }

    #[test]
    fn unusable_files_are_refused_with_their_reason() {
        let current = format!("{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"saved_at\":");
        let cases: [(&[u8], &str); 8] = [
            (b"", "it is empty"),
            (b"\x00\xffgarbage", "it is not JSON (expected value at line 1 column 1)"),
            (current.as_bytes(), "it is truncated (EOF while parsing a value at line 1 column 54)"),
            (b"{\"groups\": []}", "it is not a tls_exporter state file"),
            (b"[1, 2]", "it is not a tls_exporter state file"),
            (b"{\"format\": \"tls_exporter state\"}", "it is not a tls_exporter state file"),
            (
                b"{\"format\": \"tls_exporter state\", \"version\": 2, \"targets\": 7}",
                "it has state format version 2, and this exporter reads version 1 only",
            ),
            (
                b"{\"format\": \"tls_exporter state\", \"version\": 1, \"targets\": 7}",
                "it does not match state format version 1 (invalid type: integer `7`, expected a sequence at line 1 column 59)",
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                load_error(bytes).to_string(),
                want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn missing_file_means_no_state_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let got = load(&dir.path().join("state.json"), MAX_FILE_BYTES).expect("no error");
        assert!(got.is_none());
    }

    #[test]
    fn a_directory_is_refused_with_a_file_name_to_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = load(dir.path(), MAX_FILE_BYTES).expect_err("a directory");
        let want = format!(
            "it is a directory; name a file in it, e.g. {}",
            dir.path().join("state.json").display()
        );
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn file_at_the_size_limit_is_read_and_one_byte_more_is_refused() {
        let state = State::default();
        let (_dir, path) = saved_file(&state);
        let size = std::fs::metadata(&path).expect("metadata").len();
        assert!(load(&path, size).expect("at the limit").is_some());
        let e = load(&path, size - 1).expect_err("over the limit");
        assert_eq!(
            e.to_string(),
            format!(
                "it is {size} bytes, more than the {} bytes a state file may have",
                size - 1
            )
        );
    }

    #[test]
    fn save_replaces_a_state_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let version_2 = format!("{{\"format\":\"{FORMAT}\",\"version\":2}}");
        for old in [
            "",
            "{\"form",
            "{\"format\":\"tls_exporter state\",\"vers",
            &version_2,
        ] {
            std::fs::write(&path, old).expect("write");
            let bytes = save(&State::default(), &path, &mut Fingerprints::default())
                .unwrap_or_else(|e| panic!("save over {old:?}: {e}"));
            assert_eq!(std::fs::metadata(&path).expect("metadata").len(), bytes);
            assert!(load(&path, MAX_FILE_BYTES).expect("ours").is_some());
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn save_leaves_a_file_that_is_not_a_state_file_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yml");
        for theirs in [
            "targets: []\n",
            "{\"format\": \"tls_exporter state\"}",
            "{\"groups\":[]}",
        ] {
            std::fs::write(&path, theirs).expect("write");
            let e =
                save(&State::default(), &path, &mut Fingerprints::default()).expect_err("not ours");
            assert_eq!(
                e.to_string(),
                "it holds a file that is not a tls_exporter state file (left alone: remove it or choose another --storage.path)"
            );
            assert_eq!(std::fs::read_to_string(&path).expect("read"), theirs);
        }
    }

    #[test]
    fn save_into_a_missing_directory_fails_with_a_sentence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("state.json");
        let e =
            save(&State::default(), &path, &mut Fingerprints::default()).expect_err("no directory");
        let want = format!(
            "create {}: No such file or directory (os error 2)",
            dir.path().join("missing/state.json.tmp").display()
        );
        assert_eq!(e.to_string(), want);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn writer_saves_at_once_skips_unchanged_state_and_saves_at_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let t = target("{name: api, address: \"127.0.0.1:1\"}");
        let state = Arc::new(State::default());
        state.set_targets(std::slice::from_ref(&t));
        let mut saver = Saver {
            state: state.clone(),
            path: path.clone(),
            fingerprints: Fingerprints::default(),
            saved: None,
            failing: None,
        };
        saver.save_if_changed().await;
        assert!(path.exists(), "the first save is at once");
        std::fs::remove_file(&path).expect("remove");
        saver.save_if_changed().await;
        assert!(!path.exists(), "nothing changed, nothing saved");

        let writer = Writer::start(state.clone(), path.clone(), Fingerprints::default());
        state.record(&t, Check::Probe, one(sample(5_000)));
        writer.finish().await;
        let saved = load(&path, MAX_FILE_BYTES).expect("load").expect("a file");
        assert_eq!(saved.targets.len(), 1, "the last change is saved at finish");
    }
}

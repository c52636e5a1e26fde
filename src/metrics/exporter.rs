//! Exporter self metrics: build info, reload status, scheduler health and `process_*`.

use std::sync::atomic::Ordering;

use super::*;
use crate::state::State;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REVISION: &str = env!("TLS_EXPORTER_REVISION");
const RUSTC_VERSION: &str = env!("TLS_EXPORTER_RUSTC_VERSION");

/// The version string `--version` prints.
pub fn version_string() -> String {
    format!("tls_exporter {VERSION} (revision {REVISION}, {RUSTC_VERSION})")
}

pub(super) fn render(e: &mut Encoder, state: &State, targets: usize) {
    let s = &state.stats;
    e.family(&BUILD_INFO);
    e.sample(
        &BUILD_INFO,
        "",
        &[
            ("version", VERSION),
            ("revision", REVISION),
            ("rustc_version", RUSTC_VERSION),
        ],
        1.0,
    );
    let single = |e: &mut Encoder, f: &Family, v: f64| {
        e.family(f);
        e.sample(f, "", &[], v);
    };
    single(
        e,
        &RELOAD_SUCCESSFUL,
        if s.reload_successful.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        },
    );
    single(e, &RELOAD_SUCCESS_TIMESTAMP, s.reload_success_time());
    single(e, &TARGETS, targets as f64);
    single(
        e,
        &TARGET_FILES_INVALID,
        s.target_files_invalid.load(Ordering::Relaxed) as f64,
    );
    single(
        e,
        &PROBES_IN_FLIGHT,
        s.probes_in_flight.load(Ordering::Relaxed) as f64,
    );
    single(
        e,
        &PROBES_SKIPPED,
        s.probes_skipped_total.load(Ordering::Relaxed) as f64,
    );
    single(e, &SCHEDULER_LAG, s.scheduler_lag());
    single(
        e,
        &TARGETS_BACKING_OFF,
        s.targets_backing_off.load(Ordering::Relaxed) as f64,
    );
    process(e);
}

/// Standard `process_*` metrics from /proc (Linux only; absent elsewhere).
fn process(e: &mut Encoder) {
    let Some(p) = read_proc() else { return };
    for (f, v) in [
        (&PROCESS_CPU, p.cpu_seconds),
        (&PROCESS_RSS, p.rss_bytes),
        (&PROCESS_VSIZE, p.vsize_bytes),
        (&PROCESS_START, p.start_time),
        (&PROCESS_OPEN_FDS, p.open_fds),
        (&PROCESS_MAX_FDS, p.max_fds),
    ] {
        e.family(f);
        e.sample(f, "", &[], v);
    }
}

struct Proc {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    start_time: f64,
    open_fds: f64,
    max_fds: f64,
}

fn read_proc() -> Option<Proc> {
    // /proc/self/stat counts CPU time in clock ticks and RSS in pages; both sizes are the
    // kernel's (a 16 KiB or 64 KiB page kernel on aarch64 exists).
    let (ticks, page) = (sysconf(libc::_SC_CLK_TCK)?, sysconf(libc::_SC_PAGESIZE)?);
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // `after` starts at field 3 (state): utime=14, stime=15, starttime=22, vsize=23, rss=24.
    let (utime, stime, start, vsize, rss) = (num(11)?, num(12)?, num(19)?, num(20)?, num(21)?);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("btime ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })?;
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|x| x.starts_with("Max open files"))
                .and_then(|x| {
                    x.split_whitespace()
                        .nth(3)
                        .and_then(|v| v.parse::<f64>().ok())
                })
        })
        .unwrap_or(0.0);
    Some(Proc {
        cpu_seconds: (utime + stime) / ticks,
        rss_bytes: rss * page,
        vsize_bytes: vsize,
        start_time: boot + start / ticks,
        open_fds,
        max_fds,
    })
}

/// A positive `sysconf` value, or `None` where the system does not know it.
fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf takes an integer name and returns an integer; it touches no memory of ours.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as f64)
}

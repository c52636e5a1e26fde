//! File descriptors: the soft `RLIMIT_NOFILE` raised to the hard limit at start (as Prometheus
//! and Go programs do), and the reserve that HTTP connections may not take from probes.
//!
//! The reserve is enforced by descriptor number: Linux gives each new descriptor the lowest free
//! number, so the listener never keeping a connection whose number is at or above
//! `limit - reserve` leaves at least `reserve` descriptors to everything else. The accept loop
//! (`mod.rs`) applies it; what the reserve should be for a `concurrency` is decided here.

use std::io;
use std::os::fd::AsRawFd;

/// Descriptors a probe may hold at once (its socket, name resolution, a second connection for
/// STARTTLS or HTTP checks), with room to spare.
const FDS_PER_PROBE: usize = 4;
/// Descriptors kept beside the probes' for the runtime, config and target files, logs.
const FDS_BESIDE_PROBES: usize = 64;
/// Where a hard limit of "unlimited" is capped when raising the soft limit (Linux's default
/// `fs.nr_open`, above which `setrlimit` fails).
const UNLIMITED_CAP: u64 = 1 << 20;

/// Descriptors to keep free for probes running `concurrency` at once.
pub fn fd_reserve_for(concurrency: usize) -> usize {
    concurrency
        .saturating_mul(FDS_PER_PROBE)
        .saturating_add(FDS_BESIDE_PROBES)
}

/// Raises the soft open-file limit to the hard one; returns the soft limit before and after.
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a live, writable local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        UNLIMITED_CAP
    } else {
        lim.rlim_max
    };
    if before != libc::RLIM_INFINITY && before < target {
        lim.rlim_cur = target;
        // SAFETY: setrlimit reads one rlimit through a pointer to a live local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, open_file_limit()))
}

/// The soft open-file limit now (a large number when it cannot be read or is unlimited).
pub fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a live, writable local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return UNLIMITED_CAP;
    }
    lim.rlim_cur
}

/// True when keeping `conn` would leave fewer than `reserve` of `limit` descriptors free.
pub(super) fn takes_from_reserve(conn: &impl AsRawFd, limit: u64, reserve: usize) -> bool {
    let number = u64::try_from(conn.as_raw_fd()).unwrap_or(0);
    number >= ceiling(limit, reserve)
}

/// The first descriptor number HTTP connections may not use. At least half the limit stays
/// usable, so a small limit with a large `concurrency` still serves `/metrics`.
fn ceiling(limit: u64, reserve: usize) -> u64 {
    let reserve = u64::try_from(reserve).unwrap_or(u64::MAX);
    limit.saturating_sub(reserve).max(limit / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_grows_with_concurrency() {
        assert_eq!(fd_reserve_for(0), 64);
        assert_eq!(fd_reserve_for(64), 320);
        assert_eq!(fd_reserve_for(usize::MAX), usize::MAX);
    }

    #[test]
    fn ceiling_keeps_the_reserve_but_at_least_half_the_limit_for_http() {
        assert_eq!(ceiling(1024, 320), 704);
        assert_eq!(ceiling(256, 80), 176);
        assert_eq!(ceiling(256, 320), 128);
        assert_eq!(ceiling(0, 10), 0);
    }

    #[test]
    fn raising_the_limit_ends_at_the_hard_limit() {
        let (before, after) = raise_open_file_limit().expect("getrlimit works");
        assert!(after >= before);
        assert_eq!(after, open_file_limit());
    }
}

//! Bounded reading of every file the config (or web config) names: regular files only, up to a
//! size limit, within a deadline.
//!
//! A FIFO, a device or a hung network filesystem must fail a load, never hang it or grow the
//! process: the file is checked (`metadata`), opened with `O_NONBLOCK` (opening a FIFO cannot
//! block), checked again on the open descriptor (no race with a swap), and read at most
//! `limit + 1` bytes, all on a helper thread the caller waits for at most `READ_DEADLINE`. A
//! thread stuck in the kernel is left behind, but at most one per path: while it is stuck,
//! reads of that path fail at once. What the bytes mean is the caller's.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Largest PEM file (`ca_file`, client certificates and keys, web TLS files): 1 MiB.
pub const PEM_LIMIT: u64 = 1 << 20;
/// Largest config file (and web config file): 64 MiB.
pub const CONFIG_LIMIT: u64 = 64 << 20;
/// Largest target file: 16 MiB.
pub const TARGET_FILE_LIMIT: u64 = 16 << 20;
/// Largest Certificate Transparency log list (`ct_log_list_file`): 4 MiB (the public
/// `log_list.json` is about 100 KiB).
pub const LOG_LIST_LIMIT: u64 = 4 << 20;
/// How long one file read may take before the load gives up on it.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

/// Why a file named by the config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It is a FIFO, device, directory or socket.
    #[error("{} is not a regular file ({kind})", path.display())]
    NotRegular { path: PathBuf, kind: FileKind },
    /// It is larger than the limit for its kind of file.
    #[error("{} is larger than the {} limit", path.display(), Limit(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
    /// The read did not finish within `READ_DEADLINE`.
    #[error("reading {} did not finish within {}s", path.display(), READ_DEADLINE.as_secs())]
    TimedOut { path: PathBuf },
    /// An earlier read of the same path is still stuck.
    #[error(
        "reading {} did not finish within {}s (an earlier read of it is still stuck)",
        path.display(),
        READ_DEADLINE.as_secs()
    )]
    Stuck { path: PathBuf },
    /// The operating system refused (missing file, permissions, …).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReadError {
    /// The same error naming the file as `shown` (the path as the config wrote it).
    pub fn shown_as(mut self, shown: &Path) -> ReadError {
        match &mut self {
            ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::TimedOut { path }
            | ReadError::Stuck { path }
            | ReadError::Io { path, .. } => *path = shown.to_path_buf(),
        }
        self
    }

    /// As an I/O error (for errors that carry one): the original one for `Io`.
    pub fn into_io(self) -> std::io::Error {
        match self {
            ReadError::Io { source, .. } => source,
            other => std::io::Error::other(other),
        }
    }
}

/// What a file that is not a regular file is, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "not a file",
        })
    }
}

/// A size limit in words ("1 MiB").
struct Limit(u64);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 20 && self.0 % (1 << 20) == 0 {
            write!(f, "{} MiB", self.0 >> 20)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// Reads the regular file at `path`, at most `limit` bytes, within `READ_DEADLINE`.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_within(path, limit, READ_DEADLINE)
}

/// Like `read_bounded`, as text (invalid UTF-8 is an I/O error, as `fs::read_to_string`).
pub fn read_text_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| ReadError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// Paths being read now, with when their read began.
fn in_flight() -> &'static (Mutex<HashMap<PathBuf, Instant>>, Condvar) {
    static IN_FLIGHT: OnceLock<(Mutex<HashMap<PathBuf, Instant>>, Condvar)> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

fn read_within(path: &Path, limit: u64, deadline: Duration) -> Result<Vec<u8>, ReadError> {
    claim(path, deadline)?;
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("bounded-read".to_string())
        .spawn(move || {
            let result = read_now(&owned, limit);
            release(&owned);
            // The caller may have given up waiting: nobody to tell.
            let _ = tx.send(result);
        });
    if let Err(source) = spawned {
        release(path);
        return Err(ReadError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    rx.recv_timeout(deadline).unwrap_or_else(|_| {
        Err(ReadError::TimedOut {
            path: path.to_path_buf(),
        })
    })
}

/// Marks `path` as being read. Waits for a read of it in progress to end; one already running
/// for `deadline` is stuck, and this read fails at once.
fn claim(path: &Path, deadline: Duration) -> Result<(), ReadError> {
    let (lock, changed) = in_flight();
    let mut paths = lock.lock().unwrap_or_else(|p| p.into_inner());
    while let Some(&began) = paths.get(path) {
        let left = deadline.saturating_sub(began.elapsed());
        if left.is_zero() {
            return Err(ReadError::Stuck {
                path: path.to_path_buf(),
            });
        }
        paths = changed
            .wait_timeout(paths, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    paths.insert(path.to_path_buf(), Instant::now());
    Ok(())
}

/// Marks `path` as being read by a read that never ends (a stand-in for a hung filesystem in
/// tests); `release` ends it.
#[cfg(test)]
pub(crate) fn pretend_stuck(path: &Path) {
    let (lock, _) = in_flight();
    lock.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf(), Instant::now());
}

/// Ends the read of `path` (marked by `claim`).
pub(crate) fn release(path: &Path) {
    let (lock, changed) = in_flight();
    lock.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
    changed.notify_all();
}

/// The read itself (on the helper thread).
fn read_now(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening: opening some devices has effects.
    regular(path, &std::fs::metadata(path).map_err(io)?, limit)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    // Checked again on what was opened: the path may have been swapped in between.
    regular(path, &file.metadata().map_err(io)?, limit)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

fn regular(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<(), ReadError> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        if meta.len() > limit {
            return Err(ReadError::TooLarge {
                path: path.to_path_buf(),
                limit,
            });
        }
        return Ok(());
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Other
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// Makes a FIFO at `path` (for tests of what must not hang).
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.pem");
        std::fs::write(&p, b"abc").expect("write");
        assert_eq!(read_bounded(&p, 3).expect("read"), b"abc");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("big.pem");
        std::fs::write(&p, vec![b'a'; 2 << 20]).expect("write");
        let e = read_bounded(&p, PEM_LIMIT).expect_err("too large");
        assert_eq!(
            e.to_string(),
            format!("{} is larger than the 1 MiB limit", p.display())
        );
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("fifo");
        mkfifo(&p);
        let began = Instant::now();
        let e = read_bounded(&p, PEM_LIMIT).expect_err("not regular");
        assert!(began.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            format!("{} is not a regular file (a FIFO)", p.display())
        );
    }

    #[test]
    fn devices_and_directories_are_refused_in_words() {
        let e = read_bounded(Path::new("/dev/zero"), PEM_LIMIT).expect_err("device");
        assert_eq!(
            e.to_string(),
            "/dev/zero is not a regular file (a character device)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let e = read_bounded(dir.path(), PEM_LIMIT).expect_err("directory");
        assert!(e
            .to_string()
            .ends_with("is not a regular file (a directory)"));
    }

    #[test]
    fn a_stuck_read_fails_after_the_deadline_and_later_reads_of_it_fail_at_once() {
        // A path claimed long ago and never released stands for a read stuck in the kernel.
        let p = PathBuf::from("/nonexistent/stuck-read-test");
        in_flight()
            .0
            .lock()
            .expect("lock")
            .insert(p.clone(), Instant::now());
        let began = Instant::now();
        let e = read_within(&p, PEM_LIMIT, Duration::from_millis(200)).expect_err("stuck");
        assert!(matches!(e, ReadError::Stuck { .. }), "{e}");
        assert!(began.elapsed() < Duration::from_secs(2));
        release(&p);
        let e = read_within(&p, PEM_LIMIT, Duration::from_millis(200)).expect_err("missing");
        assert!(matches!(e, ReadError::Io { .. }), "{e}");
    }
}

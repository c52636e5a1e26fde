//! The system resolver (getaddrinfo, so /etc/hosts, nsswitch and search domains behave as for
//! every other program on the host) on a small pool of threads of its own.
//!
//! Why not tokio's blocking pool: that pool is shared with everything else that blocks (file
//! reads, and formerly scrape rendering), grows to 512 threads, and a stalled neighbour there
//! made healthy targets fail with `dns_error`. Why not an asynchronous resolver (hickory): it
//! reimplements /etc/hosts and resolv.conf handling but not nsswitch, so names would resolve
//! differently from `curl` and `openssl s_client` on the same host, which is what an operator
//! checks a failure with. Here at most `THREADS` lookups run at once and at most `QUEUE` wait;
//! past that a lookup fails at once with a sentence instead of piling up, and a lookup whose
//! probe gave up before a thread took it is skipped. getaddrinfo cannot be cancelled, so a
//! lookup already running finishes on its thread, but the thread count never grows.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::oneshot;

/// Lookups running at once.
pub const THREADS: usize = 16;
/// Lookups waiting for a thread at most.
pub const QUEUE: usize = 4096;
/// getaddrinfo with a DNS round trip needs far less than the default 2 MiB (8 MiB main) stack.
const STACK: usize = 256 * 1024;

struct Job {
    host: String,
    port: u16,
    reply: oneshot::Sender<io::Result<Vec<SocketAddr>>>,
}

static POOL: LazyLock<Option<SyncSender<Job>>> = LazyLock::new(start);

fn start() -> Option<SyncSender<Job>> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for i in 0..THREADS {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dns-{i}"))
            .stack_size(STACK)
            .spawn(move || work(&rx));
        if spawned.is_ok() {
            started += 1;
        }
    }
    (started > 0).then_some(tx)
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let Ok(job) = job else { return };
        if job.reply.is_closed() {
            continue;
        }
        let found = (job.host.as_str(), job.port)
            .to_socket_addrs()
            .map(Iterator::collect);
        let _ = job.reply.send(found);
    }
}

/// Resolves `host` with getaddrinfo on the resolver's own threads.
pub async fn lookup(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let Some(pool) = POOL.as_ref() else {
        return Err(io::Error::other("no resolver thread could be started"));
    };
    let (reply, answer) = oneshot::channel();
    match pool.try_send(Job { host, port, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(io::Error::other(format!(
                "resolver busy: {QUEUE} lookups already waiting for {THREADS} threads"
            )))
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(io::Error::other("resolver threads have stopped"))
        }
    }
    answer
        .await
        .unwrap_or_else(|_| Err(io::Error::other("resolver thread stopped mid-lookup")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_on_the_pool() {
        let addrs = lookup("localhost".to_string(), 443)
            .await
            .expect("localhost");
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 443 && a.ip().is_loopback()),
            "{addrs:?}"
        );
        assert!(!addrs.is_empty());
    }

    #[tokio::test]
    async fn unknown_name_is_an_error_not_a_hang() {
        let got = lookup("no-such-host.invalid".to_string(), 443).await;
        assert!(got.is_err(), "{got:?}");
    }

    #[tokio::test]
    async fn many_lookups_at_once_never_start_more_threads() {
        let lookups = (0..200).map(|_| lookup("localhost".to_string(), 1));
        let mut set = tokio::task::JoinSet::new();
        for l in lookups {
            set.spawn(l);
        }
        while let Some(r) = set.join_next().await {
            assert!(r.expect("join").is_ok());
        }
        let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
        assert!(threads < 64 + THREADS, "{threads} threads");
    }
}

//! Test support: PKI minted with rcgen (and openssl where rcgen cannot), real TLS servers on
//! loopback, hostile peers, and a running exporter binary to scrape.

pub mod exporter;
pub mod file_server;
pub mod hostile;
pub mod pki;
pub mod prom;
pub mod proxies;
pub mod servers;
pub mod starttls_servers;

use std::time::Duration;

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// Unix time now, whole seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

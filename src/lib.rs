//! tls_exporter: a Prometheus exporter for TLS endpoint health.
//!
//! The binary (`main.rs`) wires these together: `config` loads and validates targets,
//! `scheduler` runs checks on them periodically through `probe::run`, `state` keeps the latest
//! facts per target, and `server` serves `/metrics` (rendered by `metrics` alone, answered by
//! `scrape`) and the status pages (rendered by `status`) from them, on the bounded `listener`
//! (TLS and basic auth from `web_config`). Layers, lowest first, each importing only those below
//! it: `verdict` → `tls` → `revocation` → `config` → `files`/`probe` → `state` → `metrics` → `status` →
//! `server`/`scheduler`/`reload` (checked by `scripts/check-layers`); `storage` (the state
//! across restarts) sits beside `metrics`, above `state`. `fuzzing`, hidden, sits above them all:
//! it hands the parsers of outside bytes to the fuzz targets (`fuzz/`) and the property tests.

pub mod config;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod listener;
pub mod logfmt;
pub mod metrics;
pub mod migrate;
pub mod probe;
pub mod reload;
pub mod revocation;
pub mod scheduler;
pub mod scrape;
pub mod server;
pub mod shard;
pub mod state;
mod status;
pub mod storage;
pub mod text;
pub mod tls;
pub mod verdict;
pub mod web_config;

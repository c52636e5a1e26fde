//! tls_exporter: a Prometheus exporter for TLS endpoint health.
//!
//! The binary (`main.rs`) wires these together: `config` loads and validates targets,
//! `scheduler` probes them periodically with `probe`, `state` keeps the latest outcome per
//! target, and `server` renders `/metrics` (through `metrics`) and the status page from it.

pub mod config;
pub mod logfmt;
pub mod metrics;
pub mod probe;
pub mod reload;
pub mod scheduler;
pub mod server;
pub mod shard;
pub mod state;
pub mod tls;
pub mod web_config;

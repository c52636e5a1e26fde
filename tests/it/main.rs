//! The one integration test binary: real TLS peers on loopback, the real exporter binary.

// A panic in a test or its harness is a failed test: the product-code lints do not apply here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    unreachable_pub
)]

mod support;

mod addresses;
mod cert_files;
mod chain;
mod config_fixtures;
mod ctaia;
mod deep;
mod details;
mod endpoints;
mod files;
mod http;
mod legacy;
mod lifecycle;
mod listener;
mod logs;
mod migrate;
mod modules;
mod ocsp;
mod probe_formats;
mod prometheus;
mod properties;
mod proxy;
mod reuse;
mod revocation;
mod scale;
mod scheduling;
mod service_discovery;
mod starttls;
mod starttls_scan;
mod status_page;
mod storage;
mod web;

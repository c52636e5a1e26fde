//! The one integration test binary: real TLS peers on loopback, the real exporter binary.

mod support;

mod addresses;
mod chain;
mod config_fixtures;
mod deep;
mod details;
mod endpoints;
mod http;
mod legacy;
mod lifecycle;
mod ocsp;
mod prometheus;
mod reuse;
mod scale;
mod starttls;
mod storage;
mod web;

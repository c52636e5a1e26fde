//! The one integration test binary: real TLS peers on loopback, the real exporter binary.

mod support;

mod addresses;
mod chain;
mod config_fixtures;
mod endpoints;
mod lifecycle;
mod prometheus;
mod scale;
mod web;

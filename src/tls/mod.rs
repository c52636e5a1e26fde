//! TLS inspection shared by the probes: the recording verifier and chain verdict (and the cache
//! that reuses verdicts on byte-identical chains), certificate facts, and IANA names of
//! negotiated parameters, and
//! the Certificate Transparency timestamps a leaf comes with.
//!
//! Depends only on `verdict`: nothing here knows about targets, probes, state or exposition.

pub mod aia;
pub mod cache;
pub mod cert;
pub mod chain;
pub mod ct;
pub(crate) mod der;
pub mod describe;
pub mod names;
pub mod ocsp;
pub mod verifier;

//! TLS inspection shared by the probes: the recording verifier and chain verdict, certificate
//! facts, and IANA names of negotiated parameters.

pub mod cert;
pub mod names;
pub mod ocsp;
pub mod verifier;

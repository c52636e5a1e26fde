//! One OCSP exchange with the responder a certificate's AIA names: the nonce-free request
//! built by `tls::ocsp::request`, POSTed as `application/ocsp-request` (RFC 6960 Appendix A),
//! and the answer verified by `tls::ocsp::check` exactly like a stapled response, then judged
//! current.
//!
//! The HTTP exchange is `fetch`'s; keeping the answer is `cache`'s.

use std::time::Duration;

use super::fetch::{self, Body};
use super::Subject;
use crate::text;
use crate::tls::ocsp::{self, Stapled};

/// At most this many bytes of an OCSP response are read: a response with a few certificates is
/// a few KiB.
pub(crate) const MAX_RESPONSE_SIZE: u64 = 64 * 1024;

/// Asks the responder at `url` about `subject` at time `now` (Unix seconds): the verified,
/// current response, or why there is none, in words.
pub(crate) async fn ask(
    url: &str,
    subject: &Subject,
    now: i64,
    timeout: Duration,
) -> Result<Stapled, String> {
    let request = ocsp::request(&subject.der, &subject.issuer).map_err(|e| e.to_string())?;
    let body = Body::Post {
        content_type: "application/ocsp-request",
        bytes: request,
    };
    let response = fetch::fetch(url, body, MAX_RESPONSE_SIZE, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let answer = ocsp::check(&response, &subject.der, &subject.issuer, now)
        .map_err(|e| format!("the OCSP responder at {url} gave no usable answer: {e}"))?;
    if !answer.is_current(now) {
        let when = answer.next_update.map_or_else(
            || format!("thisUpdate {}", text::rfc3339(answer.this_update)),
            |next| format!("nextUpdate {}", text::rfc3339(next)),
        );
        return Err(format!(
            "the OCSP responder at {url} answered with a response that is not current ({when})"
        ));
    }
    Ok(answer)
}

//! The global `ct_log_list_file`: read with the bounded reader and parsed into the CT logs
//! SCTs are verified against (`tls::ct::LogList`), once per load.
//!
//! What the list's format is and how SCTs are verified is `tls::ct`'s; which targets use the
//! list (all of them) is `convert`'s.

use std::sync::Arc;

use super::convert::Converter;
use super::raw::At;
use crate::tls::ct::LogList;

impl Converter {
    /// The log list named at `span` and the SHA-256 of its file (which tells a changed list
    /// across a reload); `None` when it cannot be read or parsed (reported at `span`, the
    /// position inside the list file in the message).
    pub(super) fn ct_log_list(&mut self, span: &At<String>) -> Option<(Arc<LogList>, [u8; 32])> {
        const FIELD: &str = "global.ct_log_list_file";
        let path = self.resolve(&span.value);
        let bytes = super::read::read_bounded(&path, super::read::LOG_LIST_LIMIT)
            .map_err(|e| {
                let m = e.shown_as(std::path::Path::new(&span.value)).to_string();
                self.problem(span, FIELD, m);
            })
            .ok()?;
        let list = LogList::from_json(&bytes)
            .map_err(|e| self.problem(span, FIELD, format!("{}: {e}", span.value)))
            .ok()?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref(),
        );
        Some((Arc::new(list), digest))
    }
}

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
        let list = match self.log_lists.get(&path) {
            Some(cached) => cached.clone(),
            None => {
                let list = read_list(&path, &span.value);
                self.log_lists.insert(path, list.clone());
                list
            }
        };
        list.map_err(|m| self.problem(span, FIELD, m)).ok()
    }
}

/// The list at `path` (written `shown` in the config) and the SHA-256 of its file, or the
/// problem.
fn read_list(path: &std::path::Path, shown: &str) -> Result<(Arc<LogList>, [u8; 32]), String> {
    let bytes = super::read::read_bounded(path, super::read::LOG_LIST_LIMIT)
        .map_err(|e| e.shown_as(std::path::Path::new(shown)).to_string())?;
    let list = LogList::from_json(&bytes).map_err(|e| format!("{shown}: {e}"))?;
    let mut digest = [0u8; 32];
    digest.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
    Ok((Arc::new(list), digest))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn config(dir: &Path, yaml: &str) -> crate::config::Config {
        let path = dir.join("c.yml");
        std::fs::write(&path, yaml).unwrap();
        crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_target_gets_the_log_list_and_a_changed_list_changes_every_target() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "global: {ct_log_list_file: logs.json, aia_fetch: true}\ntargets:\n  - address: a.test:443\n  - address: b.test:443\n    aia_fetch: false\n";
        std::fs::write(dir.path().join("logs.json"), r#"{"operators": []}"#).unwrap();
        let a = config(dir.path(), yaml);
        let b = config(dir.path(), yaml);
        std::fs::write(
            dir.path().join("logs.json"),
            r#"{"operators": [{"name": "x"}]}"#,
        )
        .unwrap();
        let c = config(dir.path(), yaml);
        let flags: Vec<_> = a
            .targets
            .iter()
            .map(|t| (t.material.ct_logs.is_some(), t.aia_fetch))
            .collect();
        assert_eq!(flags, vec![(true, true), (true, false)]);
        assert!(a.targets.iter().zip(&b.targets).all(|(x, y)| x.same_as(y)));
        assert!(a.targets.iter().zip(&c.targets).all(|(x, y)| !x.same_as(y)));
        let adhoc = a.adhoc_target("c.test:443", None).unwrap();
        assert!(adhoc.material.ct_logs.is_some() && adhoc.aia_fetch);
    }

    #[test]
    fn without_either_field_a_target_keeps_its_fingerprint() {
        // Fields added after the fingerprint was defined leave it unchanged when unset, so a
        // saved state still belongs to its target after an upgrade.
        let dir = tempfile::tempdir().unwrap();
        let plain = config(dir.path(), "targets:\n  - address: a.test:443\n");
        let off = config(
            dir.path(),
            "global: {aia_fetch: false}\ntargets:\n  - address: a.test:443\n",
        );
        let on = config(
            dir.path(),
            "targets:\n  - address: a.test:443\n    aia_fetch: true\n",
        );
        let fp = |c: &crate::config::Config| c.targets[0].fingerprint();
        assert_eq!(fp(&plain), fp(&off));
        assert_ne!(fp(&plain), fp(&on));
    }
}

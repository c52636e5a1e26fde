//! The fleet page's "Certificate files" section: one sentence per watched file (`files:`),
//! failing files first, then soonest expiry, with RFC 3339 dates.
//!
//! Reads the state's `FileSet` (what `files` read); escaping is `html`'s, times are `dates`'.

use std::fmt::Write;

use super::dates::{self, Rfc3339};
use super::html::Esc;
use crate::files::{CertFile, FileSet};

/// Files the section lists at most; the rest are counted.
pub(crate) const MAX_FILES_SHOWN: usize = 100;

/// The section, or nothing when no file is watched.
pub(crate) fn render(out: &mut String, set: &FileSet, now: i64) {
    if set.files.is_empty() {
        return;
    }
    let mut files: Vec<&CertFile> = set.files.iter().collect();
    // Failing first, then the file whose first certificate to expire expires soonest.
    files.sort_by_key(|f| (f.read.is_ok(), first_expiry(f).unwrap_or(i64::MAX)));
    out.push_str("<section id=\"cert-files\"><h2>Certificate files</h2>\n<ul>\n");
    for f in files.iter().take(MAX_FILES_SHOWN) {
        out.push_str("<li>");
        sentence(out, f, now);
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    if files.len() > MAX_FILES_SHOWN {
        let _ = writeln!(
            out,
            "<p class=\"note\">… and {} more files (tls_file_read_success on /metrics lists them all).</p>",
            files.len() - MAX_FILES_SHOWN
        );
    }
    out.push_str("</section>\n");
}

/// Not-after of the file's certificate that expires first.
fn first_expiry(f: &CertFile) -> Option<i64> {
    f.certs().iter().map(|c| c.not_after).min()
}

/// "/etc/ssl/a.pem holds 2 certificates; the first to expire, CN web.example, expires
/// 2027-03-01T00:00:00Z (89 days 23 hours). Read 2026-12-02T01:00:00Z."
fn sentence(out: &mut String, f: &CertFile, now: i64) {
    let path = f.path.to_string_lossy();
    match &f.read {
        Err(e) => {
            let _ = write!(
                out,
                "<span class=\"crit\">Unreadable: {}.</span>",
                Esc(&e.to_string())
            );
        }
        Ok(certs) => {
            let first = certs.iter().min_by_key(|c| c.not_after);
            let n = certs.len();
            let _ = write!(
                out,
                "{} holds {n} certificate{}",
                Esc(&path),
                if n == 1 { "" } else { "s" }
            );
            if let Some(c) = first {
                let verb = if c.not_after > now {
                    "expires"
                } else {
                    "expired"
                };
                let which = if n == 1 { "it" } else { "the first to expire" };
                let _ = write!(
                    out,
                    "; {which}, CN {}, {verb} <time datetime=\"{t}\">{t}</time> ({}).",
                    Esc(if c.cn.is_empty() { "(none)" } else { &c.cn }),
                    dates::left(c.not_after, now),
                    t = Rfc3339(c.not_after)
                );
            }
        }
    }
    let _ = write!(
        out,
        " <span class=\"muted\">Read <time datetime=\"{t}\">{t}</time>.</span>",
        t = Rfc3339(f.read_at)
    );
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::fixtures::cert;
    use super::*;
    use crate::config::{CertFileEntry, CertFormat};
    use crate::files::FileError;

    const NOW: i64 = 1_800_000_000;

    fn file(
        path: &str,
        read: Result<Vec<Arc<crate::tls::cert::CertFacts>>, FileError>,
    ) -> CertFile {
        CertFile {
            path: PathBuf::from(path),
            entry: Arc::new(CertFileEntry {
                pattern: path.to_string(),
                format: CertFormat::Pem,
                password_file: None,
                interval: Duration::from_secs(60),
                labels: Vec::new(),
            }),
            read,
            read_at: NOW - 30,
        }
    }

    #[test]
    fn each_file_is_a_sentence_failing_first_with_rfc3339_dates() {
        let set = FileSet {
            files: vec![
                file(
                    "/c/web.pem",
                    Ok(vec![
                        Arc::new(cert("web.example", NOW - 86_400, NOW + 10 * 86_400)),
                        Arc::new(cert("ca", NOW - 86_400, NOW + 900 * 86_400)),
                    ]),
                ),
                file(
                    "/c/<bad>.p12",
                    Err(FileError::WrongPassword {
                        path: "/c/<bad>.p12".into(),
                    }),
                ),
            ],
            ..FileSet::default()
        };
        let mut out = String::new();
        render(&mut out, &set, NOW);
        let bad = out
            .find("Unreadable: /c/&lt;bad&gt;.p12 cannot be opened with its password")
            .expect("failing file, escaped");
        let web = out
            .find("/c/web.pem holds 2 certificates")
            .expect("web.pem");
        assert!(bad < web, "{out}");
        assert!(
            out.contains(&format!(
                "the first to expire, CN web.example, expires <time datetime=\"{t}\">{t}</time> (10 days).",
                t = Rfc3339(NOW + 10 * 86_400)
            )),
            "{out}"
        );
    }

    #[test]
    fn no_files_no_section() {
        let mut out = String::new();
        render(&mut out, &FileSet::default(), NOW);
        assert!(out.is_empty());
    }
}

//! What the YAML targets share: where the files a config names live, and which inputs stay
//! out of the file system beyond them.

use std::path::{Path, PathBuf};

/// A path in `fuzz/files/`, where the seeds' relative file names (`ca.pem`, `server.key`,
/// `*.yml`) resolve.
pub fn in_files(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("files")
        .join(name)
}

/// Whether the config text cannot name a file outside `fuzz/files/`. The parsers read every
/// file a config names (an operator's choice, trusted), so a fuzzer that spelled
/// `/dev/zero`, a FIFO or `/**` would be testing the file system, not the parser. Texts that
/// mention files (`_file`, `target_files`) are skipped when they hold a `/` or `..`; escapes
/// (`\`) and `!!binary` could spell either, so those are skipped whatever they mention.
pub fn stays_in_files(text: &str) -> bool {
    if text.contains('\\') || text.contains("binary") {
        return false;
    }
    !(text.contains("file") && (text.contains('/') || text.contains("..")))
}

/// Every problem of a rejected config is rendered `path:line:col: ...` with a line and column
/// of at least 1 and a line inside the text (or the one after its end). Lines are counted as
/// YAML counts them: a lone CR ends a line too.
pub fn assert_problem_lines(path: &Path, text: &str, lines: &[String]) {
    let breaks = text.replace("\r\n", "\n").matches(['\r', '\n']).count();
    let lines_in_text = breaks + 2;
    let prefix = format!("{}:", path.display());
    for line in lines {
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("problem without the file name: {line}"));
        let mut parts = rest.splitn(3, ':');
        let l: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let c: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(
            l >= 1 && c >= 1 && l <= lines_in_text,
            "problem without a position in the text ({lines_in_text} lines): {line}"
        );
    }
}

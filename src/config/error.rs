//! Errors of loading a config file: every problem carries file, line, column and field path.
//! Problems of target files, which do not fail the config, are values here too.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file, rendered as `file:line:col: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    pub field: String,
    pub message: String,
}

/// A problem of one target file. It does not fail the config: the file is skipped, or its last
/// good content used. Rendered as `file:line:col: field: message (keeping its last good
/// content)` or `file: cannot read: … (skipping it)`.
#[derive(Debug)]
pub struct FileProblem {
    pub path: PathBuf,
    pub fault: FileFault,
    pub fallback: Fallback,
}

/// What is wrong with a target file.
#[derive(Debug)]
pub enum FileFault {
    /// The file could not be read.
    Unreadable(std::io::Error),
    /// One problem in its content.
    Invalid(Problem),
}

/// What was done about a target file with problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Its last good content (from an earlier load) is in use.
    LastGoodContent,
    /// It has no good content: none of its targets are probed.
    Skipped,
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found in the file, in file order.
    #[error("{}", render(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems as individual lines (one per problem).
    pub fn lines(&self) -> Vec<String> {
        self.first_lines(usize::MAX).0
    }

    /// The first `n` lines of `lines`, and how many more there are.
    pub fn first_lines(&self, n: usize) -> (Vec<String>, usize) {
        match self {
            ConfigError::Read { .. } => (vec![self.to_string()], 0),
            ConfigError::Invalid { path, problems } => {
                let lines = problems.iter().take(n).map(|p| render_one(path, p));
                (lines.collect(), problems.len().saturating_sub(n))
            }
        }
    }
}

/// Problems as `file:line:col: field: message` lines (also used for the web config).
pub(crate) fn render(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| render_one(path, p)).collect();
    lines.join("\n")
}

fn render_one(path: &Path, p: &Problem) -> String {
    let file = path.display();
    if p.field.is_empty() {
        format!("{file}:{}:{}: {}", p.line, p.column, p.message)
    } else {
        format!("{file}:{}:{}: {}: {}", p.line, p.column, p.field, p.message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line, self.column, self.field, self.message
        )
    }
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = match self.fallback {
            Fallback::LastGoodContent => "keeping its last good content",
            Fallback::Skipped => "skipping it",
        };
        match &self.fault {
            FileFault::Unreadable(e) => {
                write!(f, "{}: cannot read: {e} ({note})", self.path.display())
            }
            FileFault::Invalid(p) => write!(f, "{} ({note})", render_one(&self.path, p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(field: &str) -> Problem {
        Problem {
            line: 2,
            column: 14,
            field: field.to_string(),
            message: "\"nope\": expected host:port".to_string(),
        }
    }

    #[test]
    fn target_file_problems_render_as_one_line_with_what_was_done() {
        let invalid = FileProblem {
            path: PathBuf::from("targets/a.yml"),
            fault: FileFault::Invalid(problem("targets[0].address")),
            fallback: Fallback::LastGoodContent,
        };
        assert_eq!(
            invalid.to_string(),
            "targets/a.yml:2:14: targets[0].address: \"nope\": expected host:port (keeping its last good content)"
        );
        let unfielded = FileProblem {
            fault: FileFault::Invalid(problem("")),
            fallback: Fallback::Skipped,
            ..invalid
        };
        assert_eq!(
            unfielded.to_string(),
            "targets/a.yml:2:14: \"nope\": expected host:port (skipping it)"
        );
        let unreadable = FileProblem {
            path: PathBuf::from("b.yml"),
            fault: FileFault::Unreadable(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            )),
            fallback: Fallback::Skipped,
        };
        assert_eq!(
            unreadable.to_string(),
            "b.yml: cannot read: permission denied (skipping it)"
        );
    }
}

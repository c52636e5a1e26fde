//! Errors of loading a config file: every problem carries file, line, column and field path.

use std::fmt;
use std::path::PathBuf;

/// One problem in a config file, rendered as `file:line:col: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    pub field: String,
    pub message: String,
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
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { path, problems } => {
                problems.iter().map(|p| render_one(path, p)).collect()
            }
        }
    }
}

/// Problems as `file:line:col: field: message` lines (also used for the web config).
pub(crate) fn render(path: &std::path::Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| render_one(path, p)).collect();
    lines.join("\n")
}

fn render_one(path: &std::path::Path, p: &Problem) -> String {
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

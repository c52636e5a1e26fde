//! `tls_exporter migrate --from=blackbox|ssl_exporter FILE`: reads another exporter's config file
//! and writes our `modules:` for it, with a comment on every setting that maps only roughly or
//! not at all.
//!
//! A leaf layer above `config`: it reads the file with `config::read_text_bounded`, parses it
//! into a loose tree (`tree`, so settings this command does not know are reported, not refused),
//! maps each module (`blackbox`, `ssl_exporter`; `tls_config` is shared) onto a `Profile` and
//! renders the YAML (`profile`). It never loads our config and never probes; whether the output
//! loads is `config`'s judgement (`--check-config`). Problems of the input (syntax, a value of
//! the wrong kind) are `file:line:col: field: message`, all of them at once.

mod blackbox;
mod profile;
mod ssl_exporter;
mod tls_config;
mod tree;

use std::path::{Path, PathBuf};

use crate::config::{self, read::ReadError, Problem};
use profile::{Document, Profile};
use tree::Node;

/// Which exporter's config file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// prometheus/blackbox_exporter (`blackbox.yml`).
    Blackbox,
    /// ribbybibby/ssl_exporter (`ssl_exporter.yaml`).
    SslExporter,
}

/// Why a file could not be migrated.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Every problem found, in file order.
    #[error("{}", config::render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl MigrateError {
    /// The error as lines for a person, one per problem.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_string).collect()
    }
}

/// Our `modules:` YAML for the config file at `path`.
pub fn migrate_file(from: Source, path: &Path) -> Result<String, MigrateError> {
    let text = config::read::read_text_bounded(path, config::read::CONFIG_LIMIT)?;
    migrate_text(from, &text, path)
}

/// Our `modules:` YAML for `text`, the content of the config file `path` (named in the header
/// and in problems).
pub fn migrate_text(from: Source, text: &str, path: &Path) -> Result<String, MigrateError> {
    let invalid = |problems| MigrateError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let root = config::parse_as::<Node>(text, "").map_err(|mut p| {
        // Each `Node` is a `Spanned`, whose `value` step `parse_as` cuts only after a dot.
        p.field = p
            .field
            .strip_prefix("value")
            .unwrap_or(&p.field)
            .trim_start_matches('.')
            .to_string();
        invalid(vec![p])
    })?;
    let (doc, flag, exporter) = match from {
        Source::Blackbox => (blackbox::migrate(&root), "blackbox", "blackbox_exporter"),
        Source::SslExporter => (ssl_exporter::migrate(&root), "ssl_exporter", "ssl_exporter"),
    };
    let doc: Document = doc.map_err(invalid)?;
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let header = [
        format!("tls_exporter modules for the {exporter} config {file},"),
        format!("written by `tls_exporter migrate --from={flag}`. Each comment names a setting"),
        "that maps only roughly or has no equivalent; review them before use.".to_string(),
    ];
    Ok(doc.render(&header))
}

/// How notes about one module of the input are worded: `blackbox: http.headers has no
/// equivalent (…)`, paths relative to the module.
#[derive(Debug, Clone)]
pub(crate) struct Say {
    /// The comment prefix: `blackbox`, `ssl_exporter`.
    who: &'static str,
    /// The exporter's name in "is not a … setting".
    exporter: &'static str,
    /// `modules.NAME.`: cut from paths in notes.
    base: String,
}

impl Say {
    /// Notes about module `name` of `exporter`'s file, prefixed with `who`.
    pub(crate) fn new(who: &'static str, exporter: &'static str, name: &str) -> Say {
        Say {
            who,
            exporter,
            base: format!("modules.{name}."),
        }
    }

    /// `who: text`.
    pub(crate) fn text(&self, text: &str) -> String {
        format!("{}: {text}", self.who)
    }

    /// A path relative to the module (`http.headers`).
    pub(crate) fn rel<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(self.base.as_str()).unwrap_or(path)
    }

    /// The setting `path` with its value when that is a scalar (`http.method: POST`), else its
    /// name alone.
    pub(crate) fn setting(&self, path: &str, node: &Node) -> String {
        match node.scalar() {
            Some(_) => format!("{}: {node}", self.rel(path)),
            None => self.rel(path).to_string(),
        }
    }

    /// "`setting` has no equivalent (`why`)" at the top of `profile`.
    pub(crate) fn unmapped(&self, profile: &mut Profile, path: &str, node: &Node, why: &str) {
        let setting = self.setting(path, node);
        let text = if why.is_empty() {
            format!("{setting} has no equivalent")
        } else {
            format!("{setting} has no equivalent ({why})")
        };
        profile.note(self.text(&text));
    }

    /// Every entry left in `fields`: the ones in `known` (`key`, why it has no equivalent) as
    /// unmapped, the others as unknown to the exporter.
    pub(crate) fn rest(&self, profile: &mut Profile, fields: tree::Fields, known: &[(&str, &str)]) {
        let base = fields.path.clone();
        for (key, node) in fields.rest() {
            let path = if base.is_empty() {
                key.clone()
            } else {
                format!("{base}.{key}")
            };
            match known.iter().find(|(k, _)| *k == key) {
                Some((_, why)) => self.unmapped(profile, &path, &node, why),
                None => profile.note(self.text(&format!(
                    "{} is not a {} setting (ignored)",
                    self.rel(&path),
                    self.exporter
                ))),
            }
        }
    }
}

/// The entries of the `modules:` mapping at the file's top level (none when it is absent), and
/// the other top-level keys.
pub(crate) fn modules_of(root: &Node) -> Result<(tree::Fields, Vec<(String, Node)>), Problem> {
    let mut top = root.fields("")?;
    let modules = top
        .fields("modules")?
        .map(tree::Fields::rest)
        .unwrap_or_default();
    Ok((top, modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let e = migrate_text(Source::Blackbox, "modules:\n  a: [\n", Path::new("bb.yml"))
            .expect_err("unclosed list");
        assert_eq!(e.to_string(), "bb.yml:2:6: modules.a: unclosed bracket '['");
    }

    #[test]
    fn a_top_level_that_is_not_a_mapping_is_refused() {
        let e =
            migrate_text(Source::SslExporter, "- a\n", Path::new("ssl.yaml")).expect_err("a list");
        assert_eq!(
            e.to_string(),
            "ssl.yaml:1:1: expected a mapping, found a list"
        );
    }

    #[test]
    fn an_empty_file_has_no_modules() {
        let out = migrate_text(Source::Blackbox, "", Path::new("bb.yml")).expect("empty is fine");
        assert!(out.ends_with("modules: {}\n"), "{out}");
    }
}

//! Target files: the files the `target_files` globs match, each a list of targets converted
//! like those of the config file (paths relative to the target file, names unique across the
//! whole config).
//!
//! A target file with problems costs only its own targets: its last good content (kept in the
//! `TargetFileCache` across reloads) is used instead, or the file is skipped. Converting a
//! target is `convert`'s; watching the files for changes is `reload`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::raw::At;

use super::convert::{Converter, Defaults, Names};
use super::identity::name_of;
use super::raw::{self, RawTarget};
use super::{parse_as, Fallback, FileFault, FileProblem, Problem, Target};

/// The last good content of each target file, kept across reloads so a broken edit of one file
/// does not drop its targets.
pub type TargetFileCache = HashMap<PathBuf, String>;

/// What the `target_files` patterns brought in.
pub(super) struct TargetFiles {
    /// In pattern order, then path order.
    pub(super) targets: Vec<Arc<Target>>,
    /// Every problem of every file, each with what was done about its file.
    pub(super) problems: Vec<FileProblem>,
    /// Every file read, for the watcher.
    pub(super) files: Vec<PathBuf>,
    /// The patterns resolved against the config file's directory.
    pub(super) patterns: Vec<String>,
}

impl Converter {
    /// The targets of every file the patterns match, in pattern order and, within a pattern,
    /// path order. An invalid pattern is a problem of the config; an invalid file is not.
    pub(super) fn target_files(
        &mut self,
        patterns: &[At<String>],
        defaults: &Defaults,
        names: &mut Names,
        cache: &mut TargetFileCache,
    ) -> TargetFiles {
        let mut out = TargetFiles {
            targets: Vec::new(),
            problems: Vec::new(),
            files: Vec::new(),
            patterns: Vec::new(),
        };
        for (i, pattern) in patterns.iter().enumerate() {
            let field = format!("target_files[{i}]");
            let full = self.resolve(&pattern.value).to_string_lossy().into_owned();
            out.patterns.push(full.clone());
            let paths = match glob::glob(&full) {
                Ok(paths) => paths,
                Err(e) => {
                    self.problem(pattern, &field, format!("invalid glob pattern: {e}"));
                    continue;
                }
            };
            // Every match, FIFOs and directories included: reading refuses those, and says so.
            let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            paths.sort();
            for file in paths {
                let (found, problems) = self.target_file(&file, defaults, names, cache);
                out.targets.extend(found.into_iter().map(Arc::new));
                out.problems.extend(problems);
                out.files.push(file);
            }
        }
        out
    }

    /// The targets of one target file: its current content if valid (remembered in `cache`),
    /// else its last good content, else none; with the current content's problems.
    fn target_file(
        &mut self,
        file: &Path,
        defaults: &Defaults,
        names: &mut Names,
        cache: &mut TargetFileCache,
    ) -> (Vec<Target>, Vec<FileProblem>) {
        let faults = match super::read::read_text_bounded(file, super::read::TARGET_FILE_LIMIT) {
            Ok(text) => match self.file_targets(file, &text, defaults, names) {
                Ok(targets) => {
                    cache.insert(file.to_path_buf(), text);
                    return (targets, Vec::new());
                }
                Err(problems) => problems.into_iter().map(FileFault::Invalid).collect(),
            },
            Err(e) => vec![FileFault::Unreadable(e.into_io())],
        };
        let fallback = cache.get(file).cloned();
        let kept = fallback.and_then(|text| self.file_targets(file, &text, defaults, names).ok());
        let fallback = match &kept {
            Some(_) => Fallback::LastGoodContent,
            None => Fallback::Skipped,
        };
        let problems = faults
            .into_iter()
            .map(|fault| FileProblem {
                path: file.to_path_buf(),
                fault,
                fallback,
            })
            .collect();
        (kept.unwrap_or_default(), problems)
    }

    /// Converts a target file's text, with paths relative to the file and names unique across
    /// the whole config. On any problem nothing of the file is kept (names included).
    fn file_targets(
        &mut self,
        file: &Path,
        text: &str,
        defaults: &Defaults,
        names: &mut Names,
    ) -> Result<Vec<Target>, Vec<Problem>> {
        let list_form = text
            .lines()
            .map(str::trim_start)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with('-'));
        let raw = if list_form {
            parse_as::<Vec<RawTarget>>(text, "targets")
        } else {
            parse_as::<raw::RawTargetFile>(text, "").map(|f| f.targets)
        }
        .map_err(|p| vec![p])?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let saved_base = std::mem::replace(&mut self.base, dir);
        let saved_problems = std::mem::take(&mut self.problems);
        let saved_in_file = std::mem::replace(&mut self.in_target_file, true);
        // The names this file would take, to give back if it has problems (not a copy of all
        // names per file: that made many target files quadratic).
        let fresh: Vec<String> = raw
            .iter()
            .map(|t| &name_of(t).value)
            .filter(|n| !names.contains_key(*n))
            .cloned()
            .collect();
        let targets: Vec<Target> = raw
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| self.target(i, t, defaults, names))
            .collect();
        self.base = saved_base;
        self.in_target_file = saved_in_file;
        let mut problems = std::mem::replace(&mut self.problems, saved_problems);
        if problems.is_empty() {
            Ok(targets)
        } else {
            for name in &fresh {
                names.remove(name);
            }
            problems.sort_by_key(|p| (p.line, p.column));
            problems.dedup();
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_with;
    use super::*;

    #[test]
    fn invalid_target_file_keeps_its_last_good_content_and_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.yml");
        std::fs::write(&config, "target_files: [t/*.yml]\n").expect("write config");
        std::fs::create_dir(dir.path().join("t")).expect("mkdir");
        let file = dir.path().join("t/a.yml");
        std::fs::write(&file, "- address: a.example:443\n").expect("write target file");
        let mut cache = TargetFileCache::new();
        let good = load_with(&config, &mut cache).expect("valid config");
        assert_eq!(good.targets.len(), 1);
        assert!(good.target_file_problems.is_empty());

        std::fs::write(&file, "- address: nope\n").expect("break target file");
        let kept = load_with(&config, &mut cache).expect("target files do not fail the config");
        assert_eq!(kept.targets.len(), 1, "the last good content is used");
        let [problem] = kept.target_file_problems.as_slice() else {
            panic!("one problem: {:?}", kept.target_file_problems);
        };
        assert_eq!(problem.path, file);
        assert_eq!(problem.fallback, Fallback::LastGoodContent);
        assert_eq!(
            problem.to_string(),
            format!(
                "{}:1:12: targets[0].address: \"nope\": expected host:port (keeping its last good content)",
                file.display()
            )
        );

        let fresh = load_with(&config, &mut TargetFileCache::new()).expect("valid config");
        assert!(fresh.targets.is_empty(), "no good content to fall back to");
        assert_eq!(fresh.target_file_problems.len(), 1);
        assert_eq!(fresh.target_file_problems[0].fallback, Fallback::Skipped);
    }

    #[test]
    fn names_of_an_invalid_target_file_stay_free_for_the_files_after_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.yml");
        std::fs::write(&config, "target_files: [t/*.yml]\n").expect("write config");
        std::fs::create_dir(dir.path().join("t")).expect("mkdir");
        let bad = "- name: x\n  address: a.example:443\n- name: y\n  address: nope\n";
        std::fs::write(dir.path().join("t/a.yml"), bad).expect("write a.yml");
        let good = "- name: x\n  address: b.example:443\n- name: y\n  address: c.example:443\n";
        std::fs::write(dir.path().join("t/b.yml"), good).expect("write b.yml");
        let c = load_with(&config, &mut TargetFileCache::new()).expect("valid config");
        let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(c.targets[0].address, "b.example:443");
        let [problem] = c.target_file_problems.as_slice() else {
            panic!("only a.yml has a problem: {:?}", c.target_file_problems);
        };
        assert!(problem.path.ends_with("t/a.yml"), "{problem}");
    }
}

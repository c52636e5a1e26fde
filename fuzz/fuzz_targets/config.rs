//! The config parser: YAML text → validated `Config`, or every problem with file:line:col.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing::{self, ConfigError};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !common::stays_in_files(text) {
        return;
    }
    let path = common::in_files("config.yml");
    match fuzzing::config(text, &path) {
        Ok(_) => {}
        Err(e @ ConfigError::Invalid { .. }) => {
            common::assert_problem_lines(&path, text, &e.lines())
        }
        Err(e) => panic!("parse never reads the config file itself: {e}"),
    }
});

//! The web config parser: exporter-toolkit YAML → `WebConfig`, or every problem with
//! file:line:col.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing::{self, ConfigError, WebConfigError};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !common::stays_in_files(text) {
        return;
    }
    let path = common::in_files("web.yml");
    match fuzzing::web_config(text, &path) {
        Ok(_) => {}
        // One rendered line per problem, as the config's: a message may hold a line break (an
        // unknown key echoed as written), so the whole text is not split on them.
        Err(WebConfigError::Invalid { path: p, problems }) => {
            let lines = ConfigError::Invalid { path: p, problems }.lines();
            common::assert_problem_lines(&path, text, &lines);
        }
        Err(e) => panic!("parse never reads the web config file itself: {e}"),
    }
});

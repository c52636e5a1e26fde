//! The STARTTLS dialogues (SMTP … Sieve) and their bounded readers (lines, coded replies,
//! literals, XML tags, BER, MySQL packets) against a server that sends the input and closes.
//! Input: [protocol index, chunk selector] + the server's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing::{self, StartTls};

fuzz_target!(|data: &[u8]| {
    let [proto, chunk, bytes @ ..] = data else {
        return;
    };
    let proto = StartTls::ALL[usize::from(*proto) % StartTls::ALL.len()];
    let answer = fuzzing::starttls(proto, bytes, usize::from(*chunk) + 1);
    let Some(answer) = answer else {
        panic!("{proto}: the dialogue waited on a peer that never blocks");
    };
    if let Err(e) = answer {
        // Every error renders as a sentence.
        assert!(!e.to_string().is_empty());
    }
});

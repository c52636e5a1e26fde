//! The legacy scan's reader of a server's first flight (records → handshake messages →
//! ServerHello, Certificate). Input: [capture selector, chunk selector] + the server's bytes.
//! Bytes arriving in pieces must be read as the same bytes arriving at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing;

const CAPTURE: [Option<u16>; 6] = [
    None,
    Some(0x0300),
    Some(0x0301),
    Some(0x0302),
    Some(0x0303),
    Some(0x0304),
];

fuzz_target!(|data: &[u8]| {
    let [cap, chunk, bytes @ ..] = data else {
        return;
    };
    let capture = CAPTURE[usize::from(*cap) % CAPTURE.len()];
    let whole = fuzzing::legacy_flight(capture, bytes, bytes.len());
    let pieces = fuzzing::legacy_flight(capture, bytes, usize::from(*chunk) + 1);
    // Past 64 KiB the reader stops at the size bound, wherever the pieces end.
    if bytes.len() <= 64 * 1024 {
        assert_eq!(
            whole, pieces,
            "the answer depends on how the bytes were cut"
        );
    }
});

//! Fuzz target for `parse_rpm_query`: any UTF-8 input must give a value or a positioned error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        if let Err(e) = nodewright_parsers::parse_rpm_query(input) {
            assert!(e.offset <= input.len());
        }
    }
});

//! Fuzz target for `detect`: any UTF-8 input is given no format, or a format whose own parser
//! accepts it with the same value; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        if let Some(detected) = nodewright_parsers::detect(input) {
            let format = nodewright_parsers::find_format(detected.format);
            assert_eq!(format.map(|f| f.parse(input)), Some(Ok(detected.value)));
        }
    }
});

//! Fuzz target for `parse_node_annotations`, `parse_node_labels` and `parse_node_taints`: any
//! UTF-8 input must give a value or a positioned error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodewright_parsers as p;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        let errors = [
            p::parse_node_annotations(input).err(),
            p::parse_node_labels(input).err(),
            p::parse_node_taints(input).err(),
        ];
        for e in errors.into_iter().flatten() {
            assert!(e.offset <= input.len());
        }
    }
});

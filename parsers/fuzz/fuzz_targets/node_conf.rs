//! Fuzz target for `parse_node_conf`: any UTF-8 input must give a value or an error positioned
//! within the input and naming one of the script's keys, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        match nodewright_parsers::parse_node_conf(input) {
            Ok(conf) => assert!(conf.unknown.iter().all(|u| u.line <= input.split('\n').count())),
            Err(e) => {
                assert!(e.line.is_none_or(|l| l >= 1 && l <= input.split('\n').count()));
                assert!(nodewright_parsers::NODE_CONF_KEYS.contains(&e.key.as_str()));
            }
        }
    }
});

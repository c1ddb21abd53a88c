//! Fuzz target for `parse_blob`, every typed blob view and the node ConfigMap's heartbeat: any UTF-8 input must give a value or
//! a positioned error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodewright_parsers as p;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        let errors = [
            p::parse_blob(input).err(),
            p::parse_cluster_blob(input).err(),
            p::parse_migration(input).err(),
            p::parse_upgrade(input).err(),
            p::parse_node_status(input).err(),
            p::parse_boot_recovery(input).err(),
            p::parse_bond_flip(input).err(),
            p::parse_last_run(input).err(),
            p::parse_upgrade_state_annotation(input).err(),
            p::parse_heartbeat(input).err(),
        ];
        for e in errors.into_iter().flatten() {
            assert!(e.offset <= input.len());
        }
    }
});

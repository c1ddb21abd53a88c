//! Generated artefacts that are checked in must match what the code generates today.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_checked_in_crds_match_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/nodewright/crds/nodewright.io.yaml"
    );
    let checked_in = std::fs::read_to_string(path).unwrap();
    let generated = nodewright_api::crds_yaml().unwrap();
    assert!(
        checked_in == generated,
        "{path} is stale: run `scripts/regenerate` and review the diff"
    );
}

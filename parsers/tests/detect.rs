//! The format registry and detection: every real sample under `tests/fixtures/` is detected as
//! the format of its family (the LINSTOR tables as their own kind: `linstor_kinds.rs`), names are
//! unique and found by name, and input no format accepts is not given one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use nodewright_parsers as p;

fn fixtures(family: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(family);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The format of a legacy artefact, by the prefix of its fixture's name (`SOURCES.md`).
fn legacy_format(name: &str) -> &'static str {
    let (prefix, _) = name.split_once("--").unwrap();
    match prefix {
        "annotations" => "legacy-node-annotations",
        "blob" => "legacy-blob",
        "bond-flip" => "legacy-bond-flip",
        "boot-recovery" => "legacy-boot-recovery",
        "cluster" => "legacy-cluster",
        "labels" => "legacy-node-labels",
        "linstor-nodes" => "linstor-node-list",
        "log" => "legacy-log",
        "members" => "legacy-members",
        "migration" => "legacy-migration",
        "network-plan" => "legacy-network-plan",
        "status" => "legacy-node-status",
        "taints" => "legacy-node-taints",
        "upgrade" => "legacy-upgrade",
        _ => panic!("{name}: which format is a {prefix:?} fixture?"),
    }
}

#[test]
fn every_real_sample_is_detected_as_the_format_of_its_family() {
    let families = [
        ("bonding", "proc-net-bonding"),
        ("drbd_status", "drbd-status"),
        ("drbd_events2", "drbd-events2"),
        ("proc_drbd", "proc-drbd"),
        ("ip", "ip"),
        ("ip_json", "ip-json"),
        ("legacy", ""),
    ];
    for (family, format) in families {
        for path in fixtures(family) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let expected = if family == "legacy" {
                legacy_format(&name)
            } else {
                format
            };
            let input = std::fs::read_to_string(&path).unwrap();
            let detected = p::detect(&input).unwrap_or_else(|| panic!("{family}/{name}: no format"));
            assert_eq!(detected.format, expected, "{family}/{name}");
            let named = p::find_format(expected).unwrap().parse(&input).unwrap();
            assert_eq!(detected.value, named, "{family}/{name}");
        }
    }
}

#[test]
fn format_names_are_unique_and_found_by_name() {
    let formats = p::formats();
    for (i, f) in formats.iter().enumerate() {
        assert!(formats[..i].iter().all(|g| g.name != f.name), "{} twice", f.name);
        assert_eq!(p::find_format(f.name).unwrap().name, f.name);
        assert!(!f.description.is_empty(), "{}", f.name);
    }
    assert!(p::find_format("auto").is_none());
    assert!(p::find_format("no-such-format").is_none());
}

#[test]
fn every_typed_linstor_view_is_tried_before_the_untyped_table() {
    let position = |name: &str| p::formats().iter().position(|f| f.name == name).unwrap();
    for kind in [
        "linstor-node-list",
        "linstor-storage-pool-list",
        "linstor-resource-list",
        "linstor-volume-list",
    ] {
        assert!(position(kind) < position("linstor-table"), "{kind}");
    }
}

#[test]
fn input_no_format_accepts_is_not_given_one() {
    assert_eq!(p::detect("\u{0}\u{1}not any format\u{7f}"), None);
}

#[test]
fn a_detected_value_serialises_as_its_format_and_value() {
    let path = fixtures("drbd_status").into_iter().next().unwrap();
    let input = std::fs::read_to_string(&path).unwrap();
    let json = serde_json::to_value(p::detect(&input).unwrap()).unwrap();
    assert_eq!(json["format"], "drbd-status", "{json}");
    assert_eq!(
        json["value"],
        p::find_format("drbd-status").unwrap().parse(&input).unwrap()
    );
}

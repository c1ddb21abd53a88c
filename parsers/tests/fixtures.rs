//! Snapshot tests: every fixture under `tests/fixtures/<family>/` is parsed and its typed
//! output pinned with insta. `SOURCES.md` says where each real sample came from.

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
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn snapshot_all<T: serde::Serialize>(family: &str, parse: impl Fn(&Path, &str) -> Result<T, p::ParseError>) {
    for path in fixtures(family) {
        let input = std::fs::read_to_string(&path).unwrap();
        let name = format!("{family}__{}", path.file_stem().unwrap().to_string_lossy());
        let value = parse(&path, &input).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            description => format!("tests/fixtures/{family}/{}", path.file_name().unwrap().to_string_lossy()),
        }, {
            insta::assert_json_snapshot!(name, value);
        });
    }
}

#[test]
fn every_bonding_fixture_matches_its_snapshot() {
    snapshot_all("bonding", |_, s| p::parse_proc_net_bonding(s));
}

#[test]
fn every_drbd_status_fixture_matches_its_snapshot() {
    snapshot_all("drbd_status", |_, s| p::parse_drbd_status(s));
}

#[test]
fn every_drbd_events2_fixture_matches_its_snapshot() {
    snapshot_all("drbd_events2", |_, s| p::parse_drbd_events2(s));
}

#[test]
fn every_proc_drbd_fixture_matches_its_snapshot() {
    snapshot_all("proc_drbd", |_, s| p::parse_proc_drbd(s));
}

#[test]
fn every_ip_text_fixture_matches_its_snapshot() {
    snapshot_all("ip", |_, s| p::parse_ip_text(s));
}

#[test]
fn every_ip_json_fixture_matches_its_snapshot() {
    snapshot_all("ip_json", |_, s| p::parse_ip_json(s));
}

#[test]
fn every_linstor_fixture_matches_its_snapshot() {
    snapshot_all("linstor", |path, s| {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let value = if name.contains("node-list") {
            serde_json::to_value(p::parse_linstor_node_list(s)?)
        } else if name.contains("storage-pool-list") {
            serde_json::to_value(p::parse_linstor_storage_pool_list(s)?)
        } else if name.contains("resource-list") {
            serde_json::to_value(p::parse_linstor_resource_list(s)?)
        } else if name.contains("volume-list") {
            serde_json::to_value(p::parse_linstor_volume_list(s)?)
        } else {
            serde_json::to_value(p::parse_linstor_table(s)?)
        };
        Ok(value.unwrap())
    });
}

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

/// Legacy-script artefacts share one directory; the part of the file name before `--` says which
/// artefact it is (`log--…`, `cluster--…`), so each goes to its own entry point.
#[test]
fn every_legacy_fixture_matches_its_snapshot() {
    snapshot_all("legacy", |path, s| {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (kind, _) = name.split_once("--").expect("`<kind>--<name>` fixture file name");
        let value = match kind {
            "log" => serde_json::to_value(p::parse_legacy_log(s)?),
            "blob" => serde_json::to_value(p::parse_blob(s)?),
            "cluster" => serde_json::to_value(p::parse_cluster_blob(s)?),
            "members" => serde_json::to_value(p::parse_members(s)?),
            "network-plan" => serde_json::to_value(p::parse_network_plan(s)?),
            "linstor-nodes" => serde_json::to_value(p::parse_linstor_nodes(s)?),
            "migration" => serde_json::to_value(p::parse_migration(s)?),
            "upgrade" => serde_json::to_value(p::parse_upgrade(s)?),
            "bond-flip" => serde_json::to_value(p::parse_bond_flip(s)?),
            "status" => serde_json::to_value(p::parse_node_status(s)?),
            "boot-recovery" => serde_json::to_value(p::parse_boot_recovery(s)?),
            "annotations" => serde_json::to_value(p::parse_node_annotations(s)?),
            "labels" => serde_json::to_value(p::parse_node_labels(s)?),
            "taints" => serde_json::to_value(p::parse_node_taints(s)?),
            other => panic!("no parser for fixture kind {other:?}"),
        };
        Ok(value.unwrap())
    });
}

/// Feeding a log in chunks of any size gives the same events as feeding it whole: the carry of
/// a partial line and the per-source block state do not depend on where chunks end.
#[test]
fn chunked_feeding_of_every_legacy_log_matches_whole_feeding() {
    for path in fixtures("legacy") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("log--") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let collect = |chunk: usize| {
            let mut reader = p::LogReader::new();
            let mut events = Vec::new();
            for part in bytes.chunks(chunk) {
                reader.feed(part, |e| events.push(p::OwnedLogEvent::from(e)));
            }
            reader.finish(|e| events.push(p::OwnedLogEvent::from(e)));
            (events, reader.stats().clone())
        };
        let whole = collect(bytes.len().max(1));
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (events, mut stats) = collect(chunk);
            stats.bytes = whole.1.bytes;
            assert_eq!(events, whole.0, "{name} in chunks of {chunk}");
            assert_eq!(stats, whole.1, "{name} in chunks of {chunk}");
        }
    }
}

/// The raw blocks of the simulated runs' logs are real tool output: each one parses with the
/// crate's parser for its command, so the bridge can type what the script copied into its log.
#[test]
fn every_block_of_the_simulated_logs_parses_with_the_parser_for_its_command() {
    let mut checked = 0;
    for path in fixtures("legacy") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("log--") || name.contains("synthetic") {
            continue;
        }
        let log = p::parse_legacy_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for event in &log.events {
            let p::OwnedLogEvent::Block {
                command,
                content,
                complete,
                ..
            } = event
            else {
                continue;
            };
            assert!(complete, "{name}: {command}");
            let result = if command == "linstor --no-color node list" {
                p::parse_linstor_node_list(content).map(|_| ())
            } else if command.starts_with("/proc/net/bonding/") {
                p::parse_proc_net_bonding(content).map(|_| ())
            } else if command == "drbdadm status all" {
                p::parse_drbd_status(content).map(|_| ())
            } else {
                continue;
            };
            result.unwrap_or_else(|e| panic!("{name}: block `{command}`: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} blocks checked");
}

#[test]
fn every_node_conf_fixture_matches_its_snapshot() {
    for path in fixtures("node_conf") {
        let input = std::fs::read_to_string(&path).unwrap();
        let name = format!("node_conf__{}", path.file_stem().unwrap().to_string_lossy());
        let value =
            p::parse_node_conf(&input).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            description => format!("tests/fixtures/node_conf/{}", path.file_name().unwrap().to_string_lossy()),
        }, {
            insta::assert_json_snapshot!(name, value);
        });
    }
}

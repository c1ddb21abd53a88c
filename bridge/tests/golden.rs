//! Golden observations: for every legacy scenario in `golden/scenarios/`, the bridge's typed
//! observation of the scenario's end state — the Nodes and ConfigMaps the legacy golden run pins
//! (`<scenario>@end-state.snap`) and every node's log (`<scenario>@logs.snap`) — observed at the
//! newest legacy timestamp, pinned as `<scenario>@observation.snap`.
//!
//! Regenerate with `scripts/regenerate` (the legacy end states first, then these) and review.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::observe::ObserveConfig;
use nodewright_bridge::run::observe_offline;
use nodewright_bridge::source::{self, Change};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The content of an insta snapshot file, without its header.
fn snapshot_body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rest = text.strip_prefix("---\n").unwrap();
    let end = rest.find("\n---\n").unwrap();
    rest[end + 5..].to_owned()
}

/// Splits the pinned logs (`===== node =====` sections, with the simulator's `### tick` lines)
/// back into each node's container log.
fn node_logs(body: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if let Some(node) = line.strip_prefix("===== ").and_then(|l| l.strip_suffix(" =====")) {
            out.push((node.to_owned(), String::new()));
        } else if line.starts_with("### tick") {
            continue;
        } else if let Some((_, log)) = out.last_mut() {
            log.push_str(line);
            log.push('\n');
        }
    }
    out
}

fn observation(name: &str) -> String {
    let snapshots = repo().join("golden/snapshots");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objects.yaml"),
        snapshot_body(&snapshots.join(format!("{name}@end-state.snap"))),
    )
    .unwrap();
    let (mut changes, _) = source::read_bundle(dir.path()).unwrap();
    let logs = snapshot_body(&snapshots.join(format!("{name}@logs.snap")));
    for (node, log) in node_logs(&logs) {
        changes.push(Change::Log {
            node,
            bytes: log.into_bytes(),
        });
    }
    let (observation, _) = observe_offline(changes, &LegacyNames::default(), &ObserveConfig::default(), None);
    serde_yaml_ng::to_string(&observation).unwrap()
}

fn scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("golden/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_scenario_end_state_gives_its_golden_observation() {
    let names = scenarios();
    assert!(names.len() >= 12, "found {} scenarios", names.len());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("golden/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for name in &names {
            let first = observation(name);
            assert_eq!(first, observation(name), "{name}: observing twice differs");
            insta::assert_snapshot!(format!("{name}@observation"), first);
        }
    });
}

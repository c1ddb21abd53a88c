//! Helpers shared by the log's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};

use nodewright_audit::{Entry, EntryKind, FieldChange, Log, ObjectRef, Signer, VerifyOptions};

pub const ORIGIN: &str = "audit.nodewright.test/site-a";

/// A freshly generated key named after the test origin.
pub fn signer() -> Signer {
    Signer::generate(ORIGIN).unwrap().0
}

/// A request entry with a distinct id.
pub fn entry(i: u64) -> Entry {
    Entry {
        kind: EntryKind::Request,
        time: format!("2026-12-07T18:{:02}:{:02}.{:06}Z", (i / 60) % 60, i % 60, i),
        id: format!("audit-id-{i:08}"),
        user: Some(format!("user-{}", i % 7)),
        groups: vec!["system:authenticated".to_string()],
        verb: Some("patch".to_string()),
        object: Some(ObjectRef {
            api_group: "nodewright.io".to_string(),
            kind: "StorageCluster".to_string(),
            namespace: Some("edge".to_string()),
            name: format!("site-{}", i % 3),
            uid: None,
        }),
        changes: vec![FieldChange {
            path: "spec.mode".to_string(),
            old: Some(serde_json::json!("replicated")),
            new: Some(serde_json::json!("local")),
        }],
        workflow: None,
        caused_by: Vec::new(),
        detail: serde_json::Value::Null,
    }
}

/// A log of `n` entries appended in batches of 50, with a checkpoint at the end.
pub fn log_of(dir: &Path, signer: &Signer, n: u64) -> Log {
    let mut log = Log::open(dir, signer.clone(), ORIGIN).unwrap();
    let entries: Vec<Entry> = (0..n).map(entry).collect();
    for batch in entries.chunks(50) {
        log.append(batch).unwrap();
    }
    log.checkpoint().unwrap();
    log
}

pub fn opts(signer: &Signer) -> VerifyOptions {
    VerifyOptions {
        verifiers: vec![signer.verifier()],
        checkpoint: None,
    }
}

/// The path of entry bundle `n` (full) in a log directory.
pub fn bundle_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("tile/entries/{n:03}"))
}

/// Decodes an entry bundle (C2SP tlog-tiles: big-endian u16 length, then the bytes).
pub fn decode(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        out.push(bytes[at + 2..at + 2 + len].to_vec());
        at += 2 + len;
    }
    out
}

pub fn encode(leaves: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for leaf in leaves {
        out.extend_from_slice(&u16::try_from(leaf.len()).unwrap().to_be_bytes());
        out.extend_from_slice(leaf);
    }
    out
}

/// Rewrites the bundle at `path` with `edit` applied to its leaves.
pub fn edit_bundle(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut leaves = decode(&std::fs::read(path).unwrap());
    edit(&mut leaves);
    std::fs::write(path, encode(&leaves)).unwrap();
}

//! Tampering with a log is detected, at the right place.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use nodewright_audit::{Location, Log, Signer, VerifyOptions, verify};
use support::{ORIGIN, bundle_path, edit_bundle, entry, log_of, opts, signer};

/// A genuine log of 600 entries (bundles 000, 001, 002.p/88), checkpointed.
fn genuine() -> (tempfile::TempDir, Signer) {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 600));
    verify(dir.path(), &opts(&key)).unwrap();
    (dir, key)
}

fn first_bad(dir: &std::path::Path, opts: &VerifyOptions) -> (Location, String) {
    let err = verify(dir, opts).unwrap_err();
    let text = err.to_string();
    (err.location, text)
}

#[test]
fn a_modified_entry_is_detected_at_its_index() {
    let (dir, key) = genuine();
    edit_bundle(&bundle_path(dir.path(), 1), |leaves| {
        let text = String::from_utf8(leaves[300 - 256].clone()).unwrap();
        leaves[300 - 256] = text.replace("user-6", "user-0").into_bytes();
    });
    let (at, text) = first_bad(dir.path(), &opts(&key));
    assert_eq!(at, Location::Entry(300), "{text}");
    assert!(
        text.starts_with("entry 300: its hash does not match tile/0/001"),
        "{text}"
    );
}

#[test]
fn a_deleted_entry_is_detected_at_its_index() {
    let (dir, key) = genuine();
    edit_bundle(&bundle_path(dir.path(), 1), |leaves| {
        leaves.remove(300 - 256);
    });
    assert_eq!(first_bad(dir.path(), &opts(&key)).0, Location::Entry(300));
}

#[test]
fn reordered_entries_are_detected_at_the_first_moved_index() {
    let (dir, key) = genuine();
    edit_bundle(&bundle_path(dir.path(), 0), |leaves| leaves.swap(100, 101));
    assert_eq!(first_bad(dir.path(), &opts(&key)).0, Location::Entry(100));
}

#[test]
fn a_truncated_log_is_detected_at_the_first_missing_index() {
    let (dir, key) = genuine();
    std::fs::remove_dir_all(dir.path().join("tile/entries/002.p")).unwrap();
    let (at, text) = first_bad(dir.path(), &opts(&key));
    assert_eq!(at, Location::Entry(512), "{text}");
    assert!(text.contains("missing"), "{text}");
}

#[test]
fn a_log_truncated_with_its_hash_tiles_and_an_older_checkpoint_is_caught_by_the_trusted_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = log_of(dir.path(), &key, 512);
    let old = std::fs::read(dir.path().join("checkpoint")).unwrap();
    log.append(&(512..600).map(entry).collect::<Vec<_>>()).unwrap();
    let trusted = log.checkpoint().unwrap().note;
    drop(log);
    // Everything after 512 removed consistently, and the genuine checkpoint of 512 put back.
    // (The level-1 tile is the same at 512 and 600 entries: two hashes.)
    for p in ["tile/entries/002.p", "tile/0/002.p"] {
        std::fs::remove_dir_all(dir.path().join(p)).unwrap();
    }
    std::fs::write(dir.path().join("checkpoint"), old).unwrap();
    verify(dir.path(), &opts(&key)).unwrap();
    let with_trusted = VerifyOptions {
        checkpoint: Some(trusted),
        ..opts(&key)
    };
    let (at, text) = first_bad(dir.path(), &with_trusted);
    assert_eq!(at, Location::Entry(512), "{text}");
    assert!(
        text.contains("the trusted checkpoint covers 600 entries"),
        "{text}"
    );
}

#[test]
fn a_rolled_back_checkpoint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = log_of(dir.path(), &key, 400);
    let old = std::fs::read(dir.path().join("checkpoint")).unwrap();
    log.append(&(400..600).map(entry).collect::<Vec<_>>()).unwrap();
    let trusted = log.checkpoint().unwrap().note;
    drop(log);
    std::fs::write(dir.path().join("checkpoint"), old).unwrap();
    // Alone, the older checkpoint is a valid one (the 200 later entries are unsigned)…
    assert_eq!(verify(dir.path(), &opts(&key)).unwrap().unsigned_entries, 200);
    // …but not once the cluster has seen the newer one.
    let with_trusted = VerifyOptions {
        checkpoint: Some(trusted),
        ..opts(&key)
    };
    let (at, text) = first_bad(dir.path(), &with_trusted);
    assert_eq!(at, Location::Checkpoint, "{text}");
    assert!(
        text.contains("rolled back: it covers 400 entries, the trusted checkpoint already covered 600"),
        "{text}"
    );
}

#[test]
fn a_tail_forged_and_signed_with_another_key_is_detected_where_the_trusted_checkpoint_ends() {
    let (dir, key) = genuine();
    let trusted = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
    // The forger has a key with the log's name, but not the log's key.
    let forger = signer();
    let mut log = Log::open(dir.path(), forger, ORIGIN).unwrap();
    let mut forged = entry(600);
    forged.user = Some("nobody-did-this".to_string());
    log.append(&[forged]).unwrap();
    log.checkpoint().unwrap();
    let (at, text) = first_bad(dir.path(), &opts(&key));
    assert_eq!(at, Location::Checkpoint, "{text}");
    assert!(text.contains("not signed by a trusted key"), "{text}");
    let with_trusted = VerifyOptions {
        checkpoint: Some(trusted),
        ..opts(&key)
    };
    let (at, text) = first_bad(dir.path(), &with_trusted);
    assert_eq!(at, Location::Entry(600), "{text}");
    assert!(
        text.contains(
            "entries from 600 on are covered only by a checkpoint that is not signed by a trusted key"
        ),
        "{text}"
    );
}

#[test]
fn a_history_rewritten_and_resigned_with_another_key_is_caught_by_the_trusted_checkpoint() {
    let (dir, key) = genuine();
    let trusted = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
    // Rewrite entry 300 and rebuild every tile and the checkpoint with the forger's key.
    let rewritten = tempfile::tempdir().unwrap();
    let forger = signer();
    let mut log = Log::open(rewritten.path(), forger, ORIGIN).unwrap();
    let mut entries: Vec<_> = (0..600).map(entry).collect();
    entries[300].user = Some("someone-else".to_string());
    log.append(&entries).unwrap();
    log.checkpoint().unwrap();
    let with_trusted = VerifyOptions {
        checkpoint: Some(trusted),
        ..opts(&key)
    };
    let (at, text) = first_bad(rewritten.path(), &with_trusted);
    assert_eq!(at, Location::TrustedCheckpoint, "{text}");
    assert!(text.contains("do not hash to the trusted root"), "{text}");
}

#[test]
fn a_modified_hash_tile_is_detected_and_named() {
    let (dir, key) = genuine();
    let path = dir.path().join("tile/1/000.p/2");
    let mut data = std::fs::read(&path).unwrap();
    data[40] ^= 1;
    std::fs::write(&path, data).unwrap();
    let (at, text) = first_bad(dir.path(), &opts(&key));
    assert_eq!(at, Location::Tile("tile/1/000.p/2".to_string()), "{text}");
    assert!(text.contains("hash 1 (entries 256..512)"), "{text}");
}

#[test]
fn a_checkpoint_with_an_altered_size_fails_its_signature() {
    let (dir, key) = genuine();
    let path = dir.path().join("checkpoint");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\n600\n", "\n599\n", 1);
    std::fs::write(&path, text).unwrap();
    let (at, text) = first_bad(dir.path(), &opts(&key));
    assert_eq!(at, Location::Checkpoint, "{text}");
    assert!(text.contains("invalid signature"), "{text}");
}

#[test]
fn a_rotated_key_verifies_with_both_keys_trusted() {
    let (dir, old_key) = genuine();
    let trusted = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
    let new_key = signer();
    let mut log = Log::open(dir.path(), new_key.clone(), ORIGIN).unwrap();
    log.append(&[entry(600)]).unwrap();
    log.checkpoint().unwrap();
    let both = VerifyOptions {
        verifiers: vec![old_key.verifier(), new_key.verifier()],
        checkpoint: Some(trusted),
    };
    let report = verify(dir.path(), &both).unwrap();
    assert_eq!((report.entries, report.trusted_size), (601, Some(600)));
}

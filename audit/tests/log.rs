//! The log's behaviour: round trip, deduplication, recovery.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use nodewright_audit::{Location, Log, read, verify};
use support::{ORIGIN, entry, log_of, opts, signer};

#[test]
fn entries_appended_are_read_back_in_order_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let log = log_of(dir.path(), &key, 600);
    assert_eq!(log.size(), 600);
    let back: Vec<_> = read(dir.path()).unwrap().map(Result::unwrap).collect();
    assert_eq!(back.len(), 600);
    for (i, (index, e)) in back.into_iter().enumerate() {
        assert_eq!(index, i as u64);
        assert_eq!(e, entry(i as u64));
    }
    let report = verify(dir.path(), &opts(&key)).unwrap();
    assert_eq!(report.entries, 600);
    assert_eq!(report.checkpoint_size, 600);
    assert_eq!(report.unsigned_entries, 0);
    assert_eq!(report.signed_by.len(), 1);
    // 600 entries: level 0 has two full tiles and a partial one; level 1 a partial of width 2.
    for path in [
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "checkpoint",
    ] {
        assert!(dir.path().join(path).is_file(), "{path} missing");
    }
    // Superseded partials are gone.
    assert!(!dir.path().join("tile/entries/002.p/38").exists());
}

#[test]
fn the_checkpoint_is_a_c2sp_checkpoint_signed_by_the_origin_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = log_of(dir.path(), &key, 3);
    let cp = log.checkpoint().unwrap();
    let lines: Vec<&str> = cp.note.lines().collect();
    assert_eq!(lines[0], ORIGIN);
    assert_eq!(lines[1], "3");
    assert_eq!(lines[2], cp.root);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("— {ORIGIN} ")), "{}", lines[4]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("checkpoint")).unwrap(),
        cp.note
    );
}

#[test]
fn an_entry_whose_id_is_already_in_the_log_is_not_appended_again_even_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    let got = log.append(&[entry(1), entry(2), entry(1)]).unwrap();
    assert_eq!(
        got.iter().map(|a| (a.index, a.duplicate)).collect::<Vec<_>>(),
        [(0, false), (1, false), (0, true)]
    );
    let got = log.append(&[entry(2), entry(3)]).unwrap();
    assert_eq!(
        got.iter().map(|a| (a.index, a.duplicate)).collect::<Vec<_>>(),
        [(1, true), (2, false)]
    );
    // A batch of only duplicates writes nothing.
    assert!(log.append(&[entry(3)]).unwrap()[0].duplicate);
    drop(log);
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    assert_eq!(log.size(), 3);
    let got = log.append(&[entry(1), entry(4)]).unwrap();
    assert_eq!(
        got.iter().map(|a| (a.index, a.duplicate)).collect::<Vec<_>>(),
        [(0, true), (3, false)]
    );
    log.checkpoint().unwrap();
    assert_eq!(verify(dir.path(), &opts(&key)).unwrap().entries, 4);
}

#[test]
fn a_log_reopened_continues_where_it_stopped_across_tile_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 250));
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    assert_eq!(log.size(), 250);
    let more: Vec<_> = (250..530).map(entry).collect();
    log.append(&more).unwrap();
    let cp = log.checkpoint().unwrap();
    assert_eq!(cp.size, 530);
    let report = verify(dir.path(), &opts(&key)).unwrap();
    assert_eq!((report.entries, report.checkpoint_size), (530, 530));
}

#[test]
fn entries_appended_after_the_checkpoint_are_reported_as_not_yet_signed() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = log_of(dir.path(), &key, 10);
    log.append(&[entry(10), entry(11)]).unwrap();
    let report = verify(dir.path(), &opts(&key)).unwrap();
    assert_eq!(
        (report.entries, report.checkpoint_size, report.unsigned_entries),
        (12, 10, 2)
    );
}

#[test]
fn a_bad_batch_appends_nothing_and_says_which_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), signer(), ORIGIN).unwrap();
    let mut big = entry(2);
    big.detail = serde_json::json!({ "output": "x".repeat(70_000) });
    let err = log.append(&[entry(1), big]).unwrap_err().to_string();
    assert!(
        err.contains("audit-id-00000002") && err.contains("at most 65535"),
        "{err}"
    );
    let mut anonymous = entry(3);
    anonymous.id.clear();
    assert!(
        log.append(&[anonymous])
            .unwrap_err()
            .to_string()
            .contains("empty id")
    );
    assert_eq!(log.size(), 0);
    assert_eq!(log.append(&[entry(1)]).unwrap()[0].index, 0);
}

#[test]
fn opening_with_a_key_not_named_after_the_origin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Log::open(dir.path(), signer(), "another.origin")
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be the origin"), "{err}");
}

#[test]
fn open_discards_what_an_unfinished_append_left_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 300));
    // A temporary file of a write cut short, and a bundle beyond a gap (never acknowledged).
    std::fs::write(
        dir.path().join("tile/entries/001.p/.45.tmp"),
        b"\x00\x10{\"kind\":",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tile/entries/003.p")).unwrap();
    std::fs::write(
        dir.path().join("tile/entries/003.p/1"),
        support::encode(&[b"{}".to_vec()]),
    )
    .unwrap();
    let log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    assert_eq!(log.size(), 300);
    let mut discarded = log.discarded().to_vec();
    discarded.sort();
    assert_eq!(discarded, ["tile/entries/001.p/.45.tmp", "tile/entries/003.p/1"]);
    verify(dir.path(), &opts(&key)).unwrap();
}

#[test]
fn open_rebuilds_hash_tiles_from_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 300));
    std::fs::remove_dir_all(dir.path().join("tile/0")).unwrap();
    std::fs::remove_dir_all(dir.path().join("tile/1")).unwrap();
    drop(Log::open(dir.path(), key.clone(), ORIGIN).unwrap());
    assert_eq!(verify(dir.path(), &opts(&key)).unwrap().hash_tiles, 3);
}

#[test]
fn opening_a_log_that_lost_signed_entries_fails_instead_of_continuing_shorter() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 300));
    std::fs::remove_dir_all(dir.path().join("tile/entries/001.p")).unwrap();
    let err = Log::open(dir.path(), key, ORIGIN).unwrap_err().to_string();
    assert!(
        err.contains("signed for 300 entries, but only 256 are on disk"),
        "{err}"
    );
}

#[test]
fn verify_without_a_checkpoint_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    log.append(&[entry(0)]).unwrap();
    let err = verify(dir.path(), &opts(&key)).unwrap_err();
    assert_eq!(err.location, Location::Checkpoint);
    assert!(err.to_string().starts_with("checkpoint: cannot read"), "{err}");
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let first = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    let err = Log::open(dir.path(), key.clone(), ORIGIN)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another writer has it open"), "{err}");
    drop(first);
    Log::open(dir.path(), key, ORIGIN).unwrap();
}

#[test]
fn after_a_failed_write_the_log_must_be_reopened_before_appending_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    log.append(&[entry(0)]).unwrap();
    // A file where the hash tiles' directory must be makes the write fail.
    std::fs::remove_dir_all(dir.path().join("tile/0")).unwrap();
    std::fs::write(dir.path().join("tile/0"), b"not a directory").unwrap();
    assert!(log.append(&[entry(1)]).is_err());
    let err = log.append(&[entry(2)]).unwrap_err().to_string();
    assert!(err.contains("open the log again"), "{err}");
    assert!(
        log.checkpoint()
            .unwrap_err()
            .to_string()
            .contains("open the log again")
    );
    drop(log);
    std::fs::remove_file(dir.path().join("tile/0")).unwrap();
    let mut log = Log::open(dir.path(), key.clone(), ORIGIN).unwrap();
    // Entry 1's bundle may or may not have reached the disk before the failure; it was never
    // acknowledged, and its id is deduplicated if it is sent again.
    let again = log.append(&[entry(1), entry(2)]).unwrap();
    assert_eq!(again[1].index, again[0].index + 1);
    log.checkpoint().unwrap();
    verify(dir.path(), &opts(&key)).unwrap();
}

#[test]
fn verify_names_a_missing_hash_tile() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    drop(log_of(dir.path(), &key, 300));
    std::fs::remove_file(dir.path().join("tile/0/000")).unwrap();
    let err = verify(dir.path(), &opts(&key)).unwrap_err();
    assert_eq!(err.location, Location::Tile("tile/0/000".to_string()), "{err}");
}

#[test]
fn a_log_being_appended_to_verifies_at_every_moment() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let mut log = log_of(dir.path(), &key, 10);
    let path = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        // Batches of 7 and a checkpoint after each: partial tiles are replaced all the time.
        for start in (10..1200).step_by(7) {
            log.append(&(start..start + 7).map(entry).collect::<Vec<_>>())
                .unwrap();
            log.checkpoint().unwrap();
        }
    });
    let mut runs = 0;
    while !writer.is_finished() {
        verify(&path, &opts(&key)).unwrap_or_else(|e| panic!("verify run {runs}: {e}"));
        runs += 1;
    }
    writer.join().unwrap();
    eprintln!("{runs} verifications while the log grew");
    assert!(runs > 0);
    assert_eq!(verify(&path, &opts(&key)).unwrap().checkpoint_size, 1200);
}

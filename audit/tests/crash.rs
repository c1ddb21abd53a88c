//! A writer killed with SIGKILL mid-append loses nothing it acknowledged, and the log verifies.
//!
//! The test re-runs its own binary as the writer (`child_appends_until_killed`, which does
//! nothing unless the parent set `AUDIT_CRASH_DIR`): the child appends batches in a loop and
//! prints `ack <id>` for every entry once `append` returned; the parent kills it after a varying
//! number of acknowledgements, reopens the log and checks every acknowledged id is there, and
//! that sending again what was not acknowledged appends each entry once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use nodewright_audit::{Log, Signer, VerifyOptions, verify};
use support::{ORIGIN, entry};

#[test]
#[ignore = "the writer half of writer_killed_mid_append_loses_nothing_it_acknowledged_and_a_retry_appends_nothing_twice"]
fn child_appends_until_killed() {
    let (Ok(dir), Ok(key)) = (std::env::var("AUDIT_CRASH_DIR"), std::env::var("AUDIT_CRASH_KEY")) else {
        return;
    };
    let signer = Signer::from_text(&key, "AUDIT_CRASH_KEY").unwrap();
    let mut log = Log::open(std::path::Path::new(&dir), signer, ORIGIN).unwrap();
    let mut next = log.size();
    for batch in 0u64.. {
        // Batches of 37: bundles fill up and are completed at varying points of a batch.
        let entries: Vec<_> = (next..next + 37).map(entry).collect();
        log.append(&entries).unwrap();
        for e in &entries {
            println!("ack {}", e.id);
        }
        next += 37;
        if batch % 4 == 3 {
            let cp = log.checkpoint().unwrap();
            println!("checkpoint {}", cp.size);
        }
    }
}

#[test]
fn writer_killed_mid_append_loses_nothing_it_acknowledged_and_a_retry_appends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, key_text) = Signer::generate(ORIGIN).unwrap();
    let mut acked: Vec<String> = Vec::new();
    let mut trusted: Option<String> = None;
    for (round, kill_after) in [3usize, 40, 150, 400, 900].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AUDIT_CRASH_DIR", dir.path())
            .env("AUDIT_CRASH_KEY", &key_text)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let mut killed = false;
        while let Some(Ok(line)) = lines.next() {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.push(id.to_string());
                seen += 1;
                if seen >= kill_after && !killed {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                }
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "round {round}: the writer stopped by itself: {status}");

        let mut log = Log::open(dir.path(), signer.clone(), ORIGIN).unwrap();
        eprintln!(
            "round {round}: {} acknowledged, {} in the log after the kill, recovery removed {:?}",
            acked.len(),
            log.size(),
            log.discarded()
        );
        for id in &acked {
            assert!(
                log.index_of(id).is_some(),
                "round {round}: acknowledged {id} is lost"
            );
        }
        assert!(log.size() >= acked.len() as u64);
        // The sender retries what it has no acknowledgement for (the batch in flight and the one
        // after): what the killed writer already made durable is recognised, nothing twice.
        let last: u64 = acked
            .last()
            .unwrap()
            .trim_start_matches("audit-id-")
            .parse()
            .unwrap();
        let retry: Vec<_> = (last + 1..last + 1 + 74).map(entry).collect();
        let results = log.append(&retry).unwrap();
        let already = results.iter().filter(|r| r.duplicate).count() as u64;
        assert_eq!(
            log.size(),
            last + 1 + 74,
            "round {round}: {already} of the retried entries were there"
        );
        acked.extend(retry.into_iter().map(|e| e.id));
        let cp = log.checkpoint().unwrap();
        let report = verify(
            dir.path(),
            &VerifyOptions {
                verifiers: vec![signer.verifier()],
                checkpoint: trusted.clone(),
            },
        )
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(report.entries, cp.size);
        trusted = Some(cp.note);
    }
    // Entries were acknowledged only once each, and every index holds the entry it acknowledged.
    let all: Vec<_> = nodewright_audit::read(dir.path())
        .unwrap()
        .map(|r| r.unwrap().1.id)
        .collect();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "an id appears twice");
}

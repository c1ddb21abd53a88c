//! Sustained appends to the audit log, as the API server's audit webhook delivers them: batches
//! of entries, each appended durably and followed by a signed checkpoint.
//!
//! `cargo bench -p nodewright-audit --bench append`. Figures in docs/performance.md.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nodewright_audit::{Entry, EntryKind, FieldChange, Log, ObjectRef, Signer, VerifyOptions};

const ORIGIN: &str = "audit.nodewright.bench/site";

/// A request entry of a realistic size: who, what object, one changed field.
fn entry(i: u64) -> Entry {
    Entry {
        kind: EntryKind::Request,
        time: format!(
            "2026-12-07T18:{:02}:{:02}.{:06}Z",
            (i / 60) % 60,
            i % 60,
            i % 1_000_000
        ),
        id: format!("5c1e0b7a-93f2-4d0e-8a61-{i:012x}"),
        user: Some("system:serviceaccount:nodewright:operator".to_string()),
        groups: vec![
            "system:serviceaccounts".to_string(),
            "system:serviceaccounts:nodewright".to_string(),
            "system:authenticated".to_string(),
        ],
        verb: Some("patch".to_string()),
        object: Some(ObjectRef {
            api_group: String::new(),
            kind: "nodes".to_string(),
            namespace: None,
            name: format!("edge-node-{}", i % 5),
            uid: Some("3f1c2a4e-8d52-4a8f-b1d1-6e0f0f8f9c21".to_string()),
        }),
        changes: vec![FieldChange {
            path: "metadata.labels.storage.nodewright.io/mode".to_string(),
            old: Some(serde_json::json!("replicated")),
            new: Some(serde_json::json!("local")),
        }],
        workflow: None,
        caused_by: Vec::new(),
        detail: serde_json::Value::Null,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match item.metadata() {
                Ok(m) if m.is_dir() => stack.push(item.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn bench(c: &mut Criterion) {
    let Ok((signer, _)) = Signer::generate(ORIGIN) else {
        return;
    };
    // On the disk the target directory is on (not a tmpfs /tmp, where fsync costs nothing), unless
    // AUDIT_BENCH_DIR names another place.
    let place = std::env::var_os("AUDIT_BENCH_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        Into::into,
    );
    let Ok(dir) = tempfile::tempdir_in(place) else {
        return;
    };
    let Ok(mut log) = Log::open(dir.path(), signer.clone(), ORIGIN) else {
        return;
    };
    let mut next = 0u64;
    let mut group = c.benchmark_group("audit_append");
    group.sample_size(20).measurement_time(Duration::from_secs(15));
    for batch in [1u64, 100, 400] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("batch_{batch}_then_checkpoint"), |b| {
            b.iter_batched(
                || {
                    let entries: Vec<Entry> = (next..next + batch).map(entry).collect();
                    next += batch;
                    entries
                },
                |entries| {
                    let appended = log.append(&entries);
                    let checkpoint = log.checkpoint();
                    black_box((appended.is_ok(), checkpoint.is_ok()))
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function(format!("batch_{batch}_append_only"), |b| {
            b.iter_batched(
                || {
                    let entries: Vec<Entry> = (next..next + batch).map(entry).collect();
                    next += batch;
                    entries
                },
                |entries| black_box(log.append(&entries).is_ok()),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
    let _ = log.checkpoint();
    let size = log.size();
    let one = entry(0).to_leaf().map(|l| l.len()).unwrap_or_default();
    let bytes = dir_bytes(dir.path());
    let started = std::time::Instant::now();
    let verified = nodewright_audit::verify(
        dir.path(),
        &VerifyOptions {
            verifiers: vec![signer.verifier()],
            checkpoint: None,
        },
    );
    eprintln!(
        "audit log after the run: {size} entries ({one} bytes of JSON each), {bytes} bytes on disk = {:.1} bytes per entry; verify took {:?} ({})",
        bytes as f64 / size.max(1) as f64,
        started.elapsed(),
        if verified.is_ok() { "ok" } else { "FAILED" }
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

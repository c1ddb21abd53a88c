//! The log reader's hot path does not allocate: once its buffers are warm, feeding well-formed
//! 4.x and 3.x lines (and blocks that fit the buffers already grown) costs no heap allocation.
//! Its own test binary, because the counting allocator sees every thread of the process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;

use nodewright_parsers::{LogEvent, LogReader};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LOG: &str = concat!(
    "ts=2024-05-01T10:00:05Z level=warn node=edge-1 component=network msg=\"bond failover detected\" bond=bond0 from=eno1 to=eno2\n",
    "ts=2024-05-01T10:00:09Z level=error node=edge-1 component=network msg=\"command failed\" file=network.sh func=network_run line=12 rc=1 cmd=\"return 1\"\n",
    "ts=2024-05-01T10:00:10Z level=info node=edge-2 component=snapshot msg=\"cluster state read\" cluster_cm=1 primary=edge-1 topology=single role=primary upgrade=\"\" migration=\"\" boot_pending=0 cordoned=false\n",
    "Wed May  1 10:00:05 UTC 2024 [WARN] network: bond failover detected (bond=bond0, from=eno1, to=eno2)\n",
    "Wed May  1 10:00:06 UTC 2024 [INFO] main: iteration finished (outcome=ok, step=finished, rc=0, duration=1)\n",
    "Wed May  1 10:00:07 UTC 2024 [WARN] storage: DRBD module not loaded, loading it\n",
);

fn feed(reader: &mut LogReader, fields: &mut usize) {
    for chunk in LOG.as_bytes().chunks(50) {
        reader.feed(chunk, |e| {
            if let LogEvent::Record(r) = e {
                *fields += r.fields.iter().count();
            }
        });
    }
}

#[test]
fn well_formed_lines_are_parsed_without_allocating() {
    let mut reader = LogReader::new();
    let mut fields = 0;
    // The first pass grows the partial-line buffer; from then on nothing should allocate.
    feed(&mut reader, &mut fields);
    let region = Region::new(GLOBAL);
    for _ in 0..100 {
        feed(&mut reader, &mut fields);
    }
    let change = region.change();
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");
    assert_eq!(reader.stats().kv_records, 303);
    assert_eq!(reader.stats().unknown_lines, 0);
    assert!(fields > 0);
}

//! Fuzz target for `LogReader`: any bytes, fed in two chunks split at the first byte's value,
//! must give events and consistent counters, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (a, b) = data.split_at(split);
    let mut reader = nodewright_parsers::LogReader::with_limits(256, 1024);
    let mut events = 0u64;
    reader.feed(a, |_| events += 1);
    reader.feed(b, |_| events += 1);
    reader.finish(|_| events += 1);
    assert_eq!(reader.stats().bytes, data.len() as u64);
    if let Ok(input) = std::str::from_utf8(data) {
        if let Err(e) = nodewright_parsers::parse_legacy_log(input) {
            assert!(e.offset <= input.len());
        }
    }
});

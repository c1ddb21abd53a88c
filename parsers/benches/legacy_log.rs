//! Throughput of the legacy-log path: [`LogReader`] parsing a generated 200 MB log into typed
//! events, beside a `regex` baseline doing the same field extraction per line and a `memchr`
//! line count (the practical ceiling: every parser has to find the newlines at least).
//!
//! The corpus is generated in memory at start from a fixed seed, in the contract's mix: 4.x and
//! 3.x lines from several nodes, raw blocks, kubectl errors and some garbage. Figures go to
//! `docs/performance.md`; nothing here asserts a timing.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use nodewright_parsers::{LogEvent, LogReader};
use regex::Regex;

/// Bytes of log to generate.
const CORPUS_BYTES: usize = 200 * 1024 * 1024;
/// Chunk size fed to the reader, as a log shipper would read.
const CHUNK: usize = 64 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A field name and the values it takes in the corpus.
type FieldChoice = (&'static str, &'static [&'static str]);

/// (level, component, message, fields) drawn from the contract's message table.
const EVENTS: &[(&str, &str, &str, &[FieldChoice])] = &[
    (
        "info",
        "network",
        "run",
        &[(
            "cmd",
            &["ip link set dev eno1 up", "modprobe drbd", "drbdadm adjust all"],
        )],
    ),
    (
        "info",
        "snapshot",
        "cluster state read",
        &[
            ("cluster_cm", &["1"]),
            ("primary", &["edge-1"]),
            ("topology", &["single", "multi"]),
            ("role", &["primary", "member"]),
            ("upgrade", &["", "WAIT_RESYNC"]),
            ("migration", &[""]),
            ("boot_pending", &["0"]),
            ("cordoned", &["false"]),
        ],
    ),
    (
        "info",
        "main",
        "iteration finished",
        &[
            ("outcome", &["ok", "error"]),
            ("step", &["finished", "storage"]),
            ("rc", &["0", "1"]),
            ("duration", &["0", "4"]),
        ],
    ),
    (
        "warn",
        "network",
        "bond failover detected",
        &[("bond", &["bond0"]), ("from", &["eno1"]), ("to", &["eno2"])],
    ),
    (
        "info",
        "upgrade",
        "upgrade state changed",
        &[
            ("from", &["PREFLIGHT"]),
            ("to", &["QUORUM_CHECK"]),
            ("node", &["edge-2"]),
            ("version", &["9.2.8"]),
        ],
    ),
    (
        "info",
        "storage",
        "resync in progress",
        &[
            ("resource", &["pvc-1", "pvc-2"]),
            ("peer", &["edge-2"]),
            ("replication", &["SyncSource"]),
            ("peer_disk", &["Inconsistent"]),
            ("done", &["42.17"]),
        ],
    ),
    (
        "error",
        "migration",
        "command failed",
        &[
            ("file", &["migration.sh"]),
            ("func", &["migration_run"]),
            ("line", &["120"]),
            ("rc", &["1"]),
            ("cmd", &["linstor --no-color node list"]),
        ],
    ),
    (
        "info",
        "boot",
        "boot recovery phase",
        &[
            ("from", &["none", "LOADING_MODULES"]),
            ("to", &["ASSEMBLING_NETWORK", "STARTING_RESOURCES"]),
        ],
    ),
    (
        "warn",
        "taints",
        "storage not ready, tainting node",
        &[
            ("taint", &["vx-rail.io/storage-not-ready"]),
            ("reason", &["resync"]),
        ],
    ),
    (
        "info",
        "report",
        "node state changed",
        &[("from", &["ready"]), ("to", &["degraded"])],
    ),
];

const BLOCK: &[&str] = &[
    "╭─────────────────────────────────────────────────────────╮",
    "┊ Node   ┊ NodeType  ┊ Addresses                 ┊ State  ┊",
    "╞═════════════════════════════════════════════════════════╡",
    "┊ edge-1 ┊ SATELLITE ┊ 10.10.100.11:3366 (PLAIN) ┊ Online ┊",
    "┊ edge-2 ┊ SATELLITE ┊ 10.10.100.12:3366 (PLAIN) ┊ Online ┊",
    "╰─────────────────────────────────────────────────────────╯",
];

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

fn needs_quotes(v: &str) -> bool {
    v.is_empty() || v.contains([' ', '"', '\\', '='])
}

/// Generates the corpus: about 70 % 4.x lines, 25 % 3.x lines, blocks of six lines after 1 % of
/// events, and 0.5 % unknown lines (kubectl errors, shell trace).
fn corpus() -> (String, usize) {
    let mut rng = Rng(0x5eed_1e9a_c10c_2026);
    let mut out = String::with_capacity(CORPUS_BYTES + 4096);
    let mut lines = 0;
    let mut t: u64 = 0;
    while out.len() < CORPUS_BYTES {
        t += rng.below(3) as u64;
        let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
        let day = 1 + (t / 86_400) % 28;
        let node = ["edge-1", "edge-2", "edge-3", "edge-4", "edge-5"][rng.below(5)];
        let roll = rng.below(1000);
        if roll < 5 {
            out.push_str(if roll < 3 {
                "Error from server (NotFound): configmaps \"vx-rail-node-edge-2\" not found\n"
            } else {
                "+ kubectl annotate node edge-1 --overwrite vx-rail.io/state=ready\n"
            });
            lines += 1;
            continue;
        }
        let (level, comp, msg, fields) = EVENTS[rng.below(EVENTS.len())];
        if roll < 255 {
            out.push_str(&format!(
                "{} Feb {day:>2} {h:02}:{m:02}:{s:02} UTC 2026 [{}] {comp}: {msg}",
                DAYS[(day as usize) % 7],
                level.to_ascii_uppercase()
            ));
            for (i, (k, vs)) in fields.iter().enumerate() {
                out.push_str(if i == 0 { " (" } else { ", " });
                out.push_str(&format!("{k}={}", vs[rng.below(vs.len())]));
            }
            if !fields.is_empty() {
                out.push(')');
            }
        } else {
            out.push_str(&format!(
                "ts=2026-02-{day:02}T{h:02}:{m:02}:{s:02}Z level={level} node={node} component={comp} msg=\"{msg}\""
            ));
            for (k, vs) in fields.iter() {
                let v = vs[rng.below(vs.len())];
                if needs_quotes(v) {
                    out.push_str(&format!(" {k}=\"{v}\""));
                } else {
                    out.push_str(&format!(" {k}={v}"));
                }
            }
        }
        out.push('\n');
        lines += 1;
        if roll >= 990 {
            out.push_str("----- BEGIN linstor --no-color node list -----\n");
            for l in BLOCK {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("----- END linstor --no-color node list -----\n");
            lines += BLOCK.len() + 2;
        }
    }
    (out, lines)
}

/// What both parsers must extract per log line, folded into a checksum so none of it is skipped.
#[derive(Default)]
struct Tally {
    records: u64,
    blocks: u64,
    other: u64,
    sum: u64,
}

fn parse_typed(data: &[u8]) -> Tally {
    let mut tally = Tally::default();
    let mut reader = LogReader::new();
    let mut on_event = |e: &LogEvent<'_>| match e {
        LogEvent::Record(r) => {
            tally.records += 1;
            let mut sum = r.time.second as u64
                + r.msg_raw.0.len() as u64
                + r.node.map_or(0, str::len) as u64
                + r.component.as_str().len() as u64
                + r.level.as_str().len() as u64;
            for f in r.fields.iter() {
                sum += (f.key.len() + f.raw.len()) as u64;
            }
            tally.sum += sum;
        }
        LogEvent::Block(b) => {
            tally.blocks += 1;
            tally.sum += b.content.len() as u64;
        }
        _ => tally.other += 1,
    };
    for chunk in data.chunks(CHUNK) {
        reader.feed(chunk, &mut on_event);
    }
    reader.finish(&mut on_event);
    tally
}

struct Baseline {
    kv: Regex,
    kv_field: Regex,
    legacy: Regex,
    legacy_key: Regex,
}

impl Baseline {
    fn new() -> Self {
        Self {
            kv: Regex::new(
                r#"^ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:(\d\d)Z) level=(\S+) node=(\S*) component=(\S+) msg="((?:[^"\\]|\\.)*)"(.*)$"#,
            )
            .unwrap(),
            kv_field: Regex::new(r#" ([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ ]*)"#).unwrap(),
            legacy: Regex::new(
                r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:(\d\d) (\S+) \d{4} \[([A-Z]+)\] ([a-z_]+): (.*?)(?: \(([a-z_]+=.*)\))?$",
            )
            .unwrap(),
            legacy_key: Regex::new(r"(?:^|, )([a-z_]+)=").unwrap(),
        }
    }

    /// The same extraction with one regex per line shape, the way a log pipeline would do it.
    fn parse(&self, data: &str) -> Tally {
        let mut tally = Tally::default();
        let mut block: Option<&str> = None;
        let mut content = 0u64;
        for line in data.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(cmd) = block {
                if line
                    .strip_prefix("----- END ")
                    .and_then(|l| l.strip_suffix(" -----"))
                    == Some(cmd)
                {
                    tally.blocks += 1;
                    tally.sum += content;
                    block = None;
                    content = 0;
                } else {
                    content += line.len() as u64 + 1;
                }
                continue;
            }
            if let Some(cmd) = line
                .strip_prefix("----- BEGIN ")
                .and_then(|l| l.strip_suffix(" -----"))
            {
                block = Some(cmd);
                continue;
            }
            if let Some(c) = self.kv.captures(line) {
                tally.records += 1;
                let mut sum = c[2].parse::<u64>().unwrap_or(0)
                    + c[6].len() as u64
                    + c[4].len() as u64
                    + c[5].len() as u64
                    + c[3].len() as u64;
                for f in self.kv_field.captures_iter(&c[7]) {
                    let v = &f[2];
                    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
                    sum += (f[1].len() + v.len()) as u64;
                }
                tally.sum += sum;
            } else if let Some(c) = self.legacy.captures(line) {
                tally.records += 1;
                let mut sum = c[1].parse::<u64>().unwrap_or(0)
                    + c[5].len() as u64
                    + c[4].len() as u64
                    + c[3].len() as u64;
                if let Some(list) = c.get(6) {
                    let list = list.as_str();
                    let keys: Vec<_> = self.legacy_key.captures_iter(list).collect();
                    for (i, k) in keys.iter().enumerate() {
                        let key = k.get(1).unwrap();
                        let end = keys.get(i + 1).map_or(list.len(), |n| n.get(0).unwrap().start());
                        sum += (key.len() + end - key.end() - 1) as u64;
                    }
                }
                tally.sum += sum;
            } else if !line.is_empty() {
                tally.other += 1;
            }
        }
        tally
    }
}

fn legacy_log(c: &mut Criterion) {
    let (text, lines) = corpus();
    let data = text.as_bytes();
    let baseline = Baseline::new();
    // Both parsers must agree before their speeds mean anything.
    let typed = parse_typed(data);
    let regex = baseline.parse(&text);
    assert_eq!((typed.records, typed.blocks), (regex.records, regex.blocks));
    eprintln!(
        "corpus: {} bytes, {lines} lines, {} records, {} blocks, {} other lines",
        data.len(),
        typed.records,
        typed.blocks,
        typed.other
    );

    let mut group = c.benchmark_group("legacy_log");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("memchr_line_count", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(data)).count())
    });
    group.bench_function("log_reader_typed_events", |b| {
        b.iter(|| parse_typed(black_box(data)).sum)
    });
    group.bench_function("regex_baseline", |b| {
        b.iter(|| baseline.parse(black_box(&text)).sum)
    });
    group.finish();
}

criterion_group!(benches, legacy_log);
criterion_main!(benches);

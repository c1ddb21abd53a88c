//! Property-style robustness test: thousands of deterministic pseudo-random inputs and mutated
//! fixtures go through every public entry point. None may panic, and every error must point
//! inside the input (valid offset on a character boundary, line and column consistent with it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use nodewright_parsers as p;

type Entry = (&'static str, fn(&str) -> Option<p::ParseError>);

fn entries() -> Vec<Entry> {
    vec![
        ("bonding", |s| p::parse_proc_net_bonding(s).err()),
        ("drbd_status", |s| p::parse_drbd_status(s).err()),
        ("drbd_events2", |s| p::parse_drbd_events2(s).err()),
        ("proc_drbd", |s| p::parse_proc_drbd(s).err()),
        ("linstor", |s| p::parse_linstor_table(s).err()),
        ("linstor_nodes", |s| p::parse_linstor_node_list(s).err()),
        ("linstor_pools", |s| p::parse_linstor_storage_pool_list(s).err()),
        ("linstor_resources", |s| p::parse_linstor_resource_list(s).err()),
        ("linstor_volumes", |s| p::parse_linstor_volume_list(s).err()),
        ("ip", |s| p::parse_ip_text(s).err()),
        ("ip_json", |s| p::parse_ip_json(s).err()),
        ("legacy_blob", |s| p::parse_blob(s).err()),
        ("legacy_cluster", |s| p::parse_cluster_blob(s).err()),
        ("legacy_migration", |s| p::parse_migration(s).err()),
        ("legacy_upgrade", |s| p::parse_upgrade(s).err()),
        ("legacy_status", |s| p::parse_node_status(s).err()),
        ("legacy_boot_recovery", |s| p::parse_boot_recovery(s).err()),
        ("legacy_bond_flip", |s| p::parse_bond_flip(s).err()),
        ("legacy_last_run", |s| p::parse_last_run(s).err()),
        ("legacy_upgrade_state", |s| {
            p::parse_upgrade_state_annotation(s).err()
        }),
        ("legacy_members", |s| p::parse_members(s).err()),
        ("legacy_network_plan", |s| p::parse_network_plan(s).err()),
        ("legacy_annotations", |s| p::parse_node_annotations(s).err()),
        ("legacy_labels", |s| p::parse_node_labels(s).err()),
        ("legacy_taints", |s| p::parse_node_taints(s).err()),
        ("legacy_log_line", |s| p::parse_log_line(s).err()),
        ("legacy_log", |s| p::parse_legacy_log(s).err()),
        ("dpkg_query_status", |s| p::parse_dpkg_query_status(s).err()),
        ("rpm_query", |s| p::parse_rpm_query(s).err()),
        ("lsmod", |s| p::parse_lsmod(s).err()),
    ]
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    ":",
    "/",
    "\\",
    "<",
    ">",
    "[",
    "]",
    "(",
    ")",
    "%",
    "@",
    ",",
    ".",
    "-",
    "0",
    "1",
    "9",
    "42",
    "4294967295",
    "99999999999999999999999",
    "a",
    "Z",
    "é",
    "┊",
    "╭",
    "╮",
    "╞",
    "═",
    "╡",
    "╰",
    "─",
    "┄",
    "|",
    "+",
    "=",
    "\u{1b}[1;31m",
    "\u{1b}[",
    "\u{0}",
    "role:",
    "disk:",
    "done:",
    "cs:",
    "ro:",
    "ds:",
    "ns:",
    "version:",
    "exists",
    "change",
    "-",
    "resource",
    "peer-device",
    "name:",
    "Slave Interface:",
    "MII Status:",
    "Speed:",
    " Mbps",
    "Ethernet Channel Bonding Driver:",
    "802.3ad info",
    "details actor lacp pdu:",
    "Node",
    "State",
    "1: ",
    "eth0",
    "mtu",
    "<UP,LOWER_UP>",
    "link/ether",
    "inet",
    "vlan",
    "id",
    "bond_slave",
    "[",
    "{",
    "}",
    "\"",
    "\"ifname\"",
    "[==>....]",
    "sync'ed:",
    "finish:",
    "ts=2024-05-01T10:00:05Z",
    " level=info",
    " node=edge-1",
    " component=network",
    " msg=\"",
    "\\\"",
    "Wed May  1 10:00:05 UTC 2024",
    " [INFO] ",
    "main: ",
    " (",
    ", ",
    "k=v",
    ";",
    "state=",
    "phase=",
    "----- BEGIN ",
    "----- END ",
    " -----",
    "[pod/p/c] ",
    "node,storage_ip,role,joined",
    "vx-rail.io/state: ",
    ":NoSchedule",
];

fn check(name: &str, f: fn(&str) -> Option<p::ParseError>, input: &str) {
    if let Some(e) = f(input) {
        assert!(e.offset <= input.len(), "{name}: offset past end for {input:?}");
        assert!(
            input.is_char_boundary(e.offset),
            "{name}: offset inside a char for {input:?}"
        );
        let before = &input[..e.offset];
        assert_eq!(
            e.line,
            before.matches('\n').count() + 1,
            "{name}: line for {input:?}"
        );
        assert!(e.column >= 1, "{name}: column for {input:?}");
        assert!(!e.expected.is_empty() && !e.found.is_empty());
    }
}

fn fixture_texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for family in std::fs::read_dir(root).unwrap() {
        let family = family.unwrap().path();
        if !family.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(family).unwrap() {
            out.push(std::fs::read_to_string(file.unwrap().path()).unwrap());
        }
    }
    out.sort();
    out
}

fn char_boundaries(s: &str) -> Vec<usize> {
    (0..=s.len()).filter(|i| s.is_char_boundary(*i)).collect()
}

#[test]
fn random_inputs_never_panic_any_entry_point() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let len = rng.below(40);
        let input: String = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
        for (name, f) in entries() {
            check(name, f, &input);
        }
    }
}

#[test]
fn every_truncation_of_every_fixture_never_panics() {
    for text in fixture_texts() {
        for cut in char_boundaries(&text).into_iter().step_by(3) {
            let input = &text[..cut];
            for (name, f) in entries() {
                check(name, f, input);
            }
        }
    }
}

#[test]
fn mutated_fixtures_never_panic_any_entry_point() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let texts = fixture_texts();
    for round in 0..3000 {
        let base = &texts[round % texts.len()];
        let mut s = base.clone();
        for _ in 0..(1 + rng.below(4)) {
            let bounds = char_boundaries(&s);
            let at = bounds[rng.below(bounds.len())];
            match rng.below(4) {
                0 => s.insert_str(at, ALPHABET[rng.below(ALPHABET.len())]),
                1 => {
                    let end = bounds[rng.below(bounds.len())].max(at);
                    s.replace_range(at..end, "");
                }
                2 => {
                    let line = s[at..].split_inclusive('\n').next().unwrap_or("").to_owned();
                    s.insert_str(at, &line);
                }
                _ => s.insert(at, '\n'),
            }
        }
        for (name, f) in entries() {
            check(name, f, &s);
        }
    }
}

/// The streaming reader takes raw bytes, not `&str`: random bytes (invalid UTF-8 included), cut
/// into random chunks, must never panic, and its counters must add up to the lines it saw.
#[test]
fn random_bytes_in_random_chunks_never_panic_the_log_reader() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let texts = fixture_texts();
    for round in 0..2000 {
        let mut bytes: Vec<u8> = if round % 2 == 0 {
            texts[round % texts.len()].as_bytes().to_vec()
        } else {
            (0..rng.below(200))
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect::<String>()
                .into_bytes()
        };
        for _ in 0..rng.below(6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            bytes[at] = (rng.next() & 0xff) as u8;
        }
        let mut reader = p::LogReader::with_limits(1 + rng.below(300), 1 + rng.below(300));
        let mut events = 0u64;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len());
            reader.feed(&rest[..n], |_| events += 1);
            rest = &rest[n..];
        }
        reader.finish(|_| events += 1);
        let s = reader.stats();
        assert_eq!(s.bytes, bytes.len() as u64);
        assert!(s.kv_records + s.legacy_records + s.tool_errors + s.unknown_lines + s.blocks <= events);
    }
}

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

//! `parse_node_conf` against the script itself: generated `node.conf` files, each read by the
//! legacy script's own `load_node_conf` (`legacy/lib/host.sh`, in bash, one process for all of
//! them) and by the parser; both must accept the same files with the same values, and refuse the
//! same files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use nodewright_parsers as p;

/// Pieces the generated files are made of: the keys, the characters the script's rules are
/// about (blanks, `#`, quotes, CR, NUL, `=`), and values that pass or fail its checks.
const PIECES: &[&str] = &[
    "BOND_SLAVES=",
    "STORAGE_VLAN_ID=",
    "STORAGE_IP=",
    "BOND_MIIMON=",
    "MGMT_VLAN_ID=",
    "MGMT_IP=",
    "BOND_NAME=",
    "BOND_MODE=",
    "STORAGE_POOL=",
    "SITE_TOPOLOGY=",
    "NTP_9=",
    "_X=",
    "lower=",
    "export ",
    " ",
    "\t",
    "\u{b}",
    "#",
    " #",
    "\"",
    "'",
    "\r",
    "\n",
    "\r\n",
    "\0",
    "=",
    "10.0.0.1/24",
    "100",
    "0",
    "eno1 eno2",
    "1.2",
    "/",
    "a",
    "é",
];

const BASE: &str = "BOND_SLAVES=eno1\nSTORAGE_VLAN_ID=10\nSTORAGE_IP=10.0.0.1/24\n";

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn inputs() -> Vec<String> {
    let mut rng = Rng(0x5eed_0fc0);
    let mut out = vec![
        String::new(),
        BASE.to_owned(),
        include_str!("fixtures/node_conf/field-edit-crlf.conf").to_owned(),
        include_str!("fixtures/node_conf/simulated-edge-1.conf").to_owned(),
    ];
    for _ in 0..400 {
        let mut s = if rng.below(2) == 0 {
            BASE.to_owned()
        } else {
            String::new()
        };
        for _ in 0..rng.below(24) {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        // Often end on a line that sets a checked key, so the checks are reached with odd values.
        if rng.below(2) == 0 {
            s.push('\n');
            s.push_str(PIECES[rng.below(6)]);
            for _ in 0..rng.below(5) {
                s.push_str(PIECES[14 + rng.below(PIECES.len() - 14)]);
            }
        }
        out.push(s);
    }
    out
}

/// What the script made of each file: `FAIL`, or `OK` and every key's value, `\x1f`-separated.
fn script(files: &[std::path::PathBuf]) -> Vec<String> {
    let host_sh = Path::new(env!("CARGO_MANIFEST_DIR")).join("../legacy/lib/host.sh");
    let program = format!(
        r#"log() {{ :; }}
source {host_sh:?}
for d in "$@"; do
  VXR_ROOT=$d
  if load_node_conf 2>/dev/null; then
    printf OK
    for k in {keys}; do v=CONF_$k; printf '\x1f%s' "${{!v}}"; done
  else
    printf FAIL
  fi
  printf '\x1e'
done"#,
        keys = p::NODE_CONF_KEYS.join(" ")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .arg("bash")
        .args(files)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("the values are the files' UTF-8");
    let mut results: Vec<String> = text.split('\x1e').map(str::to_owned).collect();
    assert_eq!(results.pop().as_deref(), Some(""));
    results
}

fn parser(input: &str) -> String {
    match p::parse_node_conf(input) {
        Err(_) => "FAIL".to_owned(),
        Ok(conf) => {
            let mut s = "OK".to_owned();
            for k in p::NODE_CONF_KEYS {
                s.push('\x1f');
                s.push_str(&conf.get(k).unwrap().value);
            }
            s
        }
    }
}

#[test]
fn the_parser_accepts_refuses_and_reads_every_generated_file_as_the_script_does() {
    let dir = std::env::temp_dir().join(format!("node-conf-script-{}", std::process::id()));
    let inputs = inputs();
    let mut files = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let root = dir.join(i.to_string());
        let etc = root.join("etc/vx-rail");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("node.conf"), input).unwrap();
        files.push(root);
    }
    let expected = script(&files);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(expected.len(), inputs.len());
    let mut accepted = 0;
    for (input, want) in inputs.iter().zip(&expected) {
        assert_eq!(&parser(input), want, "for {input:?}");
        accepted += usize::from(want.starts_with("OK"));
    }
    // The generated files exercise both sides of the script's checks.
    eprintln!("{accepted} of {} accepted", inputs.len());
    assert!(
        accepted > 40 && accepted < inputs.len() - 40,
        "{accepted} accepted"
    );
}

//! `/etc/vx-rail/node.conf`: the node's own configuration file, `KEY=value` lines, read exactly as
//! the legacy script's `load_node_conf` (`legacy/lib/host.sh`) reads it, so that what the agent
//! reports is what the script decides from.
//!
//! The script's grammar, line by line (lines end at `\n`; the last line needs none):
//! - NUL bytes are dropped (bash's `read` drops them), then one trailing `\r` (CRLF files);
//! - a line that is not `[[:space:]]*KEY=value` with `KEY` of `[A-Z_][A-Z0-9_]*` is skipped
//!   silently (blank lines, comments, `export KEY=…`, `KEY = value`, lowercase keys);
//! - the value loses everything from the first whitespace followed by `#` (a trailing comment),
//!   then one leading and one trailing `"`, then one leading and one trailing `'`; other
//!   whitespace is kept;
//! - the keys of [`KEYS`] are taken (the last assignment wins, an empty value included); any other
//!   key is ignored with a warning ([`NodeConf::unknown`]);
//! - defaults: `BOND_NAME=bond0`, `BOND_MODE=active-backup`, `BOND_MIIMON=100`,
//!   `STORAGE_POOL=pool0`, `STORAGE_VG=vg0/thinpool`, `SITE_TOPOLOGY=single`, the others empty.
//!
//! The file is refused, as the script refuses it, when `BOND_SLAVES`, `STORAGE_VLAN_ID` or
//! `STORAGE_IP` is empty, or when `STORAGE_IP` is not `[0-9.]+/[0-9]+`, `STORAGE_VLAN_ID` or
//! `BOND_MIIMON` is not digits, or `MGMT_VLAN_ID` is set and not digits. The error says the line
//! (where the key was set), the key and what is wrong; nothing here panics.
//!
//! Values stay text here, as the script holds them; the typed configuration (a bonding mode, VLAN
//! ids in range, addresses that are IPv4 CIDRs) is `nodewright_api::from_host::host_config`'s,
//! which refuses with the same positioned error what the script would only fail on later.

use serde::Serialize;

/// The keys `load_node_conf` takes, in its order.
pub const KEYS: [&str; 11] = [
    "BOND_NAME",
    "BOND_MODE",
    "BOND_SLAVES",
    "BOND_MIIMON",
    "STORAGE_VLAN_ID",
    "STORAGE_IP",
    "MGMT_VLAN_ID",
    "MGMT_IP",
    "STORAGE_POOL",
    "STORAGE_VG",
    "SITE_TOPOLOGY",
];

/// One key's value and where it was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfValue {
    /// The value, as the script holds it (comment and quotes stripped).
    pub value: String,
    /// The line that set it, counted from 1; `None` for the script's default.
    pub line: Option<usize>,
}

impl ConfValue {
    fn default(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            line: None,
        }
    }
}

/// A key the script does not know, ignored with a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownKey {
    /// The line, counted from 1.
    pub line: usize,
    /// The key.
    pub key: String,
}

/// `node.conf` as the script reads it: every key it takes, with its default when the file does
/// not set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeConf {
    /// `BOND_NAME` (default `bond0`).
    pub bond_name: ConfValue,
    /// `BOND_MODE` (default `active-backup`), a bonding mode's name as `ip link` takes it.
    pub bond_mode: ConfValue,
    /// `BOND_SLAVES`: interface names separated by spaces, tabs or newlines (the script splits
    /// it with the shell's default `IFS`).
    pub bond_slaves: ConfValue,
    /// `BOND_MIIMON` (default `100`), digits.
    pub bond_miimon: ConfValue,
    /// `STORAGE_VLAN_ID`, digits.
    pub storage_vlan_id: ConfValue,
    /// `STORAGE_IP`, `[0-9.]+/[0-9]+`.
    pub storage_ip: ConfValue,
    /// `MGMT_VLAN_ID`, empty or digits.
    pub mgmt_vlan_id: ConfValue,
    /// `MGMT_IP`, not checked by the script.
    pub mgmt_ip: ConfValue,
    /// `STORAGE_POOL` (default `pool0`).
    pub storage_pool: ConfValue,
    /// `STORAGE_VG` (default `vg0/thinpool`).
    pub storage_vg: ConfValue,
    /// `SITE_TOPOLOGY` (default `single`).
    pub site_topology: ConfValue,
    /// Keys the script ignores with a warning, in file order.
    pub unknown: Vec<UnknownKey>,
}

impl NodeConf {
    fn defaults() -> Self {
        Self {
            bond_name: ConfValue::default("bond0"),
            bond_mode: ConfValue::default("active-backup"),
            bond_slaves: ConfValue::default(""),
            bond_miimon: ConfValue::default("100"),
            storage_vlan_id: ConfValue::default(""),
            storage_ip: ConfValue::default(""),
            mgmt_vlan_id: ConfValue::default(""),
            mgmt_ip: ConfValue::default(""),
            storage_pool: ConfValue::default("pool0"),
            storage_vg: ConfValue::default("vg0/thinpool"),
            site_topology: ConfValue::default("single"),
            unknown: Vec::new(),
        }
    }

    /// The value of one of [`KEYS`]; `None` for any other key.
    pub fn get(&self, key: &str) -> Option<&ConfValue> {
        Some(match key {
            "BOND_NAME" => &self.bond_name,
            "BOND_MODE" => &self.bond_mode,
            "BOND_SLAVES" => &self.bond_slaves,
            "BOND_MIIMON" => &self.bond_miimon,
            "STORAGE_VLAN_ID" => &self.storage_vlan_id,
            "STORAGE_IP" => &self.storage_ip,
            "MGMT_VLAN_ID" => &self.mgmt_vlan_id,
            "MGMT_IP" => &self.mgmt_ip,
            "STORAGE_POOL" => &self.storage_pool,
            "STORAGE_VG" => &self.storage_vg,
            "SITE_TOPOLOGY" => &self.site_topology,
            _ => return None,
        })
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut ConfValue> {
        Some(match key {
            "BOND_NAME" => &mut self.bond_name,
            "BOND_MODE" => &mut self.bond_mode,
            "BOND_SLAVES" => &mut self.bond_slaves,
            "BOND_MIIMON" => &mut self.bond_miimon,
            "STORAGE_VLAN_ID" => &mut self.storage_vlan_id,
            "STORAGE_IP" => &mut self.storage_ip,
            "MGMT_VLAN_ID" => &mut self.mgmt_vlan_id,
            "MGMT_IP" => &mut self.mgmt_ip,
            "STORAGE_POOL" => &mut self.storage_pool,
            "STORAGE_VG" => &mut self.storage_vg,
            "SITE_TOPOLOGY" => &mut self.site_topology,
            _ => return None,
        })
    }

    /// The bond's slaves, as the script's `for s in $CONF_BOND_SLAVES` splits them.
    pub fn slaves(&self) -> Vec<&str> {
        self.bond_slaves
            .value
            .split([' ', '\t', '\n'])
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Why a `node.conf` is refused: the line (where the key was set; `None` when it was not set at
/// all), the key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("node.conf: {}{key}: {what}", line.map(|l| format!("line {l}, ")).unwrap_or_default())]
pub struct NodeConfError {
    /// The line, counted from 1, of the assignment at fault; `None` for a key never set.
    pub line: Option<usize>,
    /// The key at fault.
    pub key: String,
    /// What is wrong with it.
    pub what: String,
}

impl NodeConfError {
    /// An error about `key`, positioned at the line that set `value`.
    pub fn at(key: &str, value: &ConfValue, what: impl Into<String>) -> Self {
        Self {
            line: value.line,
            key: key.to_owned(),
            what: what.into(),
        }
    }
}

/// bash's `[[:space:]]` in the C locale.
fn space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `[[:space:]]*([A-Z_][A-Z0-9_]*)=(.*)`: the key and the raw value, or `None` for a line the
/// script skips.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches(space);
    let (key, value) = rest.split_once('=')?;
    let mut chars = key.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_uppercase() || first == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some((key, value))
}

/// `${val%%[[:space:]]#*}`, then one `"` off each end, then one `'` off each end.
fn clean(raw: &str) -> String {
    let mut cut = raw.len();
    let mut prev: Option<(usize, char)> = None;
    for (i, c) in raw.char_indices() {
        if c == '#'
            && let Some((at, p)) = prev
            && space(p)
        {
            cut = at;
            break;
        }
        prev = Some((i, c));
    }
    let mut v = raw.get(..cut).unwrap_or(raw);
    v = v.strip_prefix('"').unwrap_or(v);
    v = v.strip_suffix('"').unwrap_or(v);
    v = v.strip_prefix('\'').unwrap_or(v);
    v = v.strip_suffix('\'').unwrap_or(v);
    v.to_owned()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `^[0-9.]+/[0-9]+$`.
fn script_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, len)| {
        !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_digit() || b == b'.') && digits(len)
    })
}

/// Reads `node.conf` as `load_node_conf` does; refuses it where the script refuses it.
pub fn parse_node_conf(input: &str) -> Result<NodeConf, NodeConfError> {
    let mut conf = NodeConf::defaults();
    let body = input.strip_suffix('\n').unwrap_or(input);
    if !input.is_empty() {
        for (n, raw) in body.split('\n').enumerate() {
            let line: String = raw.chars().filter(|c| *c != '\0').collect();
            let line = line.strip_suffix('\r').unwrap_or(&line);
            let Some((key, value)) = assignment(line) else {
                continue;
            };
            match conf.get_mut(key) {
                Some(slot) => {
                    *slot = ConfValue {
                        value: clean(value),
                        line: Some(n + 1),
                    };
                }
                None => conf.unknown.push(UnknownKey {
                    line: n + 1,
                    key: key.to_owned(),
                }),
            }
        }
    }
    for key in ["BOND_SLAVES", "STORAGE_VLAN_ID", "STORAGE_IP"] {
        if let Some(v) = conf.get(key).filter(|v| v.value.is_empty()) {
            return Err(NodeConfError::at(
                key,
                v,
                "required and empty (node.conf needs BOND_SLAVES, STORAGE_VLAN_ID and STORAGE_IP)",
            ));
        }
    }
    let checks: [(&str, &ConfValue, bool, &str); 4] = [
        (
            "STORAGE_IP",
            &conf.storage_ip,
            script_cidr(&conf.storage_ip.value),
            "not an address with a prefix length ([0-9.]+/[0-9]+)",
        ),
        (
            "STORAGE_VLAN_ID",
            &conf.storage_vlan_id,
            digits(&conf.storage_vlan_id.value),
            "not a VLAN id (digits)",
        ),
        (
            "BOND_MIIMON",
            &conf.bond_miimon,
            digits(&conf.bond_miimon.value),
            "not a number of milliseconds (digits)",
        ),
        (
            "MGMT_VLAN_ID",
            &conf.mgmt_vlan_id,
            conf.mgmt_vlan_id.value.is_empty() || digits(&conf.mgmt_vlan_id.value),
            "not a VLAN id (digits)",
        ),
    ];
    if let Some((key, v, _, what)) = checks.iter().find(|c| !c.2) {
        return Err(NodeConfError::at(key, v, format!("{what}: {:?}", v.value)));
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIMAL: &str = "BOND_SLAVES=eno1 eno2\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=10.100.0.11/24\n";

    #[test]
    fn a_minimal_file_takes_the_scripts_defaults_for_every_other_key() {
        let c = parse_node_conf(MINIMAL).unwrap();
        assert_eq!(c.bond_name, ConfValue::default("bond0"));
        assert_eq!(c.bond_mode.value, "active-backup");
        assert_eq!(c.bond_miimon.value, "100");
        assert_eq!(c.storage_pool.value, "pool0");
        assert_eq!(c.storage_vg.value, "vg0/thinpool");
        assert_eq!(c.site_topology.value, "single");
        assert_eq!(c.mgmt_vlan_id.value, "");
        assert_eq!(c.slaves(), ["eno1", "eno2"]);
        assert_eq!(
            c.storage_ip,
            ConfValue {
                value: "10.100.0.11/24".into(),
                line: Some(3)
            }
        );
        assert!(c.unknown.is_empty());
    }

    #[test]
    fn comments_quotes_crlf_and_leading_blanks_are_stripped_as_the_script_strips_them() {
        let input = "# site 7\r\n\r\n  BOND_NAME=\"bond1\" # the uplink\r\n\tBOND_MODE='802.3ad'\r\n\
                     BOND_SLAVES=\"eno1\teno2\" # two\r\nSTORAGE_VLAN_ID=100 #a comment\r\n\
                     STORAGE_IP=10.0.0.1/24\r\nSTORAGE_POOL=\"'pool1'\"\r\nSTORAGE_VG=vg1/thin";
        let c = parse_node_conf(input).unwrap();
        assert_eq!(c.bond_name.value, "bond1");
        assert_eq!(c.bond_mode.value, "802.3ad");
        assert_eq!(c.slaves(), ["eno1", "eno2"]);
        assert_eq!(c.storage_vlan_id.value, "100");
        assert_eq!(c.storage_pool.value, "pool1");
        assert_eq!(
            c.storage_vg,
            ConfValue {
                value: "vg1/thin".into(),
                line: Some(9)
            }
        );
    }

    #[test]
    fn only_the_one_blank_before_a_comment_goes_and_a_hash_without_one_stays() {
        // `%%[[:space:]]#*` cuts from the blank right before `#`: other blanks stay, and with
        // them the closing quote is no longer last.
        let c = parse_node_conf(&format!(
            "{MINIMAL}BOND_NAME=\"bond1\"   # uplink\nSTORAGE_POOL=p#1\n"
        ))
        .unwrap();
        assert_eq!(c.bond_name.value, "bond1\"  ");
        assert_eq!(c.storage_pool.value, "p#1");
        // A VLAN id with a `#` and no blank before it keeps it, and is refused.
        let e =
            parse_node_conf("BOND_SLAVES=eno1\nSTORAGE_VLAN_ID=100#x\nSTORAGE_IP=1.2.3.4/8\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "STORAGE_VLAN_ID"));
        // A trailing blank is kept too: the address is refused.
        let e =
            parse_node_conf("BOND_SLAVES=eno1\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=1.2.3.4/8 \n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "STORAGE_IP"));
    }

    #[test]
    fn lines_that_are_not_upper_case_assignments_are_skipped_and_unknown_keys_listed() {
        let input = format!(
            "export BOND_NAME=bond9\nbond_name=bond8\nBOND_NAME = bond7\n9KEY=x\nNTP_SERVER=10.0.0.9\n{MINIMAL}"
        );
        let c = parse_node_conf(&input).unwrap();
        assert_eq!(c.bond_name.value, "bond0");
        assert_eq!(
            c.unknown,
            [UnknownKey {
                line: 5,
                key: "NTP_SERVER".into()
            }]
        );
    }

    #[test]
    fn the_last_assignment_wins_even_an_empty_one() {
        let c = parse_node_conf(&format!("{MINIMAL}BOND_NAME=bond1\nBOND_NAME=\n")).unwrap();
        assert_eq!(
            c.bond_name,
            ConfValue {
                value: String::new(),
                line: Some(5)
            }
        );
    }

    #[test]
    fn a_missing_required_key_is_refused_naming_it() {
        let e = parse_node_conf("STORAGE_VLAN_ID=100\nSTORAGE_IP=10.0.0.1/24\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (None, "BOND_SLAVES"));
        assert!(
            e.to_string().starts_with("node.conf: BOND_SLAVES: required"),
            "{e}"
        );
        let e = parse_node_conf("BOND_SLAVES=eno1\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=\"\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "STORAGE_IP"));
        assert_eq!(parse_node_conf("").unwrap_err().key, "BOND_SLAVES");
    }

    #[test]
    fn malformed_numbers_and_addresses_are_refused_at_their_line() {
        for (extra, line, key) in [
            ("BOND_MIIMON=fast", 4, "BOND_MIIMON"),
            ("BOND_MIIMON=", 4, "BOND_MIIMON"),
            ("MGMT_VLAN_ID=20a", 4, "MGMT_VLAN_ID"),
            ("STORAGE_IP=10.0.0.1", 4, "STORAGE_IP"),
            ("STORAGE_IP=fe80::1/64", 4, "STORAGE_IP"),
            ("STORAGE_VLAN_ID=-1", 4, "STORAGE_VLAN_ID"),
        ] {
            let e = parse_node_conf(&format!("{MINIMAL}{extra}\n")).unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (Some(line), key), "{extra}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("node.conf: line {line}, {key}: "))
            );
        }
        // What the script does not check passes: an empty management VLAN, any MGMT_IP, any
        // mode name, a VLAN id out of 802.1Q's range.
        let c = parse_node_conf(&format!(
            "{MINIMAL}MGMT_VLAN_ID=\nMGMT_IP=anything\nBOND_MODE=fast\nSTORAGE_VLAN_ID=99999\n"
        ))
        .unwrap();
        assert_eq!(c.storage_vlan_id.value, "99999");
    }

    #[test]
    fn nul_bytes_are_dropped_and_a_last_line_without_newline_counts() {
        let c = parse_node_conf("BOND_SLA\0VES=eno1\nSTORAGE_VLAN_ID=1\r\nSTORAGE_IP=1.2.3.4/8").unwrap();
        assert_eq!(c.slaves(), ["eno1"]);
        assert_eq!(c.storage_ip.line, Some(3));
    }
}

//! The format registry: every format the parsers read, by name, with a one-line description and a
//! parse function to a JSON value; and [`detect`], which names the format of an input nobody named.
//! `nodewright parse` is a thin reader and printer over it.
//!
//! Pure like the parsers: no I/O. The order of [`formats`] is the order detection tries them, the
//! most specific first and the most lenient (any LINSTOR table, any blob, any log) last.

use serde::Serialize;
use serde_json::Value;

use crate::ParseError;

/// One format: its name (`proc-net-bonding`, `linstor-resource-list`, …), what it is, and its parser.
#[derive(Clone, Copy)]
pub struct Format {
    /// The name a user gives on the command line.
    pub name: &'static str,
    /// What the input is, in a few words (where the legacy script or the tool prints it).
    pub description: &'static str,
    parse: fn(&str) -> Result<Value, ParseError>,
}

impl Format {
    const fn new(
        name: &'static str,
        description: &'static str,
        parse: fn(&str) -> Result<Value, ParseError>,
    ) -> Self {
        Self {
            name,
            description,
            parse,
        }
    }

    /// Parses `input` as this format into its typed value, as JSON.
    pub fn parse(&self, input: &str) -> Result<Value, ParseError> {
        (self.parse)(input)
    }
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Format")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// An input's format, as [`detect`] found it, and its typed value.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Detected {
    /// The format's name.
    pub format: &'static str,
    /// What its parser made of the input.
    pub value: Value,
}

fn json<T: Serialize>(result: Result<T, ParseError>) -> Result<Value, ParseError> {
    // Serialising the parsers' plain data types cannot fail; `Null` would only hide a bug, not input.
    result.map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Every format, in the order [`detect`] tries them: the most specific first, the most lenient last.
/// The four typed LINSTOR views come before `linstor-table`; each refuses the other kinds' tables
/// (by their defining columns), so their order among themselves does not matter.
const FORMATS: &[Format] = &[
    Format::new(
        "proc-net-bonding",
        "/proc/net/bonding/<bond>: the bonding driver's status",
        |s| json(crate::parse_proc_net_bonding(s)),
    ),
    Format::new(
        "proc-drbd",
        "/proc/drbd (DRBD 8.4 minors; DRBD 9 version lines)",
        |s| json(crate::parse_proc_drbd(s)),
    ),
    Format::new("drbd-events2", "drbdsetup events2 lines", |s| {
        json(crate::parse_drbd_events2(s))
    }),
    Format::new(
        "legacy-network-plan",
        "vx-rail-cluster-state `network-plan` (JSON)",
        |s| json(crate::parse_network_plan(s)),
    ),
    Format::new("ip-json", "ip -j link/addr (JSON)", |s| {
        json(crate::parse_ip_json(s))
    }),
    Format::new("ip", "ip link / ip addr, plain, -d or -o", |s| {
        json(crate::parse_ip_text(s))
    }),
    Format::new("linstor-node-list", "linstor node list", |s| {
        json(crate::parse_linstor_node_list(s))
    }),
    Format::new("linstor-storage-pool-list", "linstor storage-pool list", |s| {
        json(crate::parse_linstor_storage_pool_list(s))
    }),
    Format::new("linstor-resource-list", "linstor resource list", |s| {
        json(crate::parse_linstor_resource_list(s))
    }),
    Format::new("linstor-volume-list", "linstor volume list", |s| {
        json(crate::parse_linstor_volume_list(s))
    }),
    Format::new("linstor-table", "any linstor table, by column name", |s| {
        json(crate::parse_linstor_table(s))
    }),
    Format::new("legacy-members", "vx-rail-cluster-state `members` (CSV)", |s| {
        json(crate::parse_members(s))
    }),
    Format::new("legacy-node-status", "vx-rail-node-<node> `status` blob", |s| {
        json(crate::parse_node_status(s))
    }),
    Format::new("legacy-last-run", "vx-rail.io/last-run annotation value", |s| {
        json(crate::parse_last_run(s))
    }),
    Format::new("legacy-cluster", "vx-rail-cluster-state `cluster` blob", |s| {
        json(crate::parse_cluster_blob(s))
    }),
    Format::new(
        "legacy-bond-flip",
        "vx-rail-cluster-state `bond-flip.<node>` blob",
        |s| json(crate::parse_bond_flip(s)),
    ),
    Format::new("legacy-upgrade", "vx-rail-cluster-state `upgrade` blob", |s| {
        json(crate::parse_upgrade(s))
    }),
    Format::new(
        "legacy-migration",
        "vx-rail-cluster-state `migration` blob",
        |s| json(crate::parse_migration(s)),
    ),
    Format::new(
        "legacy-boot-recovery",
        "vx-rail-node-<node> `boot-recovery` blob",
        |s| json(crate::parse_boot_recovery(s)),
    ),
    Format::new(
        "legacy-upgrade-state",
        "vx-rail.io/upgrade-state annotation value",
        |s| json(crate::parse_upgrade_state_annotation(s)),
    ),
    Format::new("legacy-blob", "any key=value;... blob, untyped", |s| {
        json(crate::parse_blob(s))
    }),
    Format::new(
        "legacy-node-taints",
        "Node taints, key[=value]:Effect per line",
        |s| json(crate::parse_node_taints(s)),
    ),
    Format::new("legacy-node-labels", "Node labels, key=value per line", |s| {
        json(crate::parse_node_labels(s))
    }),
    Format::new(
        "legacy-node-annotations",
        "Node annotations, `key: value` per line",
        |s| json(crate::parse_node_annotations(s)),
    ),
    Format::new(
        "legacy-log",
        "vx-rail-node-init log: 4.x kv and 3.x lines, BEGIN/END blocks",
        |s| json(crate::parse_legacy_log(s)),
    ),
    Format::new(
        "drbd-status",
        "drbdadm status / drbdsetup status [--verbose --statistics]",
        |s| json(crate::parse_drbd_status(s)),
    ),
];

/// Every format, in the order [`detect`] tries them.
pub fn formats() -> &'static [Format] {
    FORMATS
}

/// The format called `name`, if there is one.
pub fn find_format(name: &str) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.name == name)
}

/// The typed blobs of the legacy script. Their keys overlap (`phase`, `state`, `since` …), so an
/// input can parse as several of them; [`detect`] then prefers the one it fits best.
const TYPED_BLOBS: &[&str] = &[
    "legacy-node-status",
    "legacy-last-run",
    "legacy-cluster",
    "legacy-bond-flip",
    "legacy-upgrade",
    "legacy-migration",
    "legacy-boot-recovery",
    "legacy-upgrade-state",
];

/// How well a typed blob fits its input: fewer keys it does not know first, then the smaller
/// format (the more specific one: an `upgrade-state` annotation also parses as an `upgrade` blob
/// with most fields absent).
fn blob_fit(value: &Value) -> (usize, usize) {
    let unknown = value
        .get("unknown")
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len);
    let fields = value.as_object().map_or(usize::MAX, serde_json::Map::len);
    (unknown, fields)
}

/// The most specific format that parses the whole input, with its value: the first in
/// [`formats`] order; among the typed legacy blobs, the best fitting one (a blob that fits two
/// equally well is reported as the first of them). `None` when no format accepts the input.
pub fn detect(input: &str) -> Option<Detected> {
    let (first, value) = FORMATS
        .iter()
        .find_map(|f| f.parse(input).ok().map(|value| (f.name, value)))?;
    let (format, value) = if TYPED_BLOBS.contains(&first) {
        FORMATS
            .iter()
            .filter(|f| TYPED_BLOBS.contains(&f.name))
            .filter_map(|f| f.parse(input).ok().map(|value| (f.name, value)))
            .min_by_key(|(_, value)| blob_fit(value))
            .unwrap_or((first, value))
    } else {
        (first, value)
    };
    Some(Detected { format, value })
}

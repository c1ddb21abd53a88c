//! `nodewright parse`: runs one of the parsers on a file or standard input and prints the typed
//! result as JSON — for support engineers reading what a site sent them.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use nodewright_parsers as p;
use serde::Serialize;

/// Arguments of `nodewright parse`.
#[derive(clap::Args)]
pub struct Args {
    /// The format (see `--list`), or `auto` to detect it.
    #[arg(required_unless_present = "list")]
    format: Option<String>,
    /// The file to read; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// List the formats and exit.
    #[arg(long)]
    list: bool,
}

type ParseFn = fn(&str) -> Result<serde_json::Value, p::ParseError>;

fn json<T: Serialize>(result: Result<T, p::ParseError>) -> Result<serde_json::Value, p::ParseError> {
    // Serialising the parsers' plain data types cannot fail; `Null` would only hide a bug, not input.
    result.map(|v| serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
}

/// Every format, in the order `auto` tries them: the most specific first, the most lenient last.
const FORMATS: &[(&str, &str, ParseFn)] = &[
    (
        "proc-net-bonding",
        "/proc/net/bonding/<bond>: the bonding driver's status",
        |s| json(p::parse_proc_net_bonding(s)),
    ),
    (
        "proc-drbd",
        "/proc/drbd (DRBD 8.4 minors; DRBD 9 version lines)",
        |s| json(p::parse_proc_drbd(s)),
    ),
    ("drbd-events2", "drbdsetup events2 lines", |s| {
        json(p::parse_drbd_events2(s))
    }),
    (
        "legacy-network-plan",
        "vx-rail-cluster-state `network-plan` (JSON)",
        |s| json(p::parse_network_plan(s)),
    ),
    ("ip-json", "ip -j link/addr (JSON)", |s| json(p::parse_ip_json(s))),
    ("ip", "ip link / ip addr, plain, -d or -o", |s| {
        json(p::parse_ip_text(s))
    }),
    ("linstor-node-list", "linstor node list", |s| {
        json(p::parse_linstor_node_list(s))
    }),
    ("linstor-storage-pool-list", "linstor storage-pool list", |s| {
        json(p::parse_linstor_storage_pool_list(s))
    }),
    ("linstor-resource-list", "linstor resource list", |s| {
        json(p::parse_linstor_resource_list(s))
    }),
    ("linstor-volume-list", "linstor volume list", |s| {
        json(p::parse_linstor_volume_list(s))
    }),
    ("linstor-table", "any linstor table, by column name", |s| {
        json(p::parse_linstor_table(s))
    }),
    ("legacy-members", "vx-rail-cluster-state `members` (CSV)", |s| {
        json(p::parse_members(s))
    }),
    ("legacy-node-status", "vx-rail-node-<node> `status` blob", |s| {
        json(p::parse_node_status(s))
    }),
    ("legacy-last-run", "vx-rail.io/last-run annotation value", |s| {
        json(p::parse_last_run(s))
    }),
    ("legacy-cluster", "vx-rail-cluster-state `cluster` blob", |s| {
        json(p::parse_cluster_blob(s))
    }),
    (
        "legacy-bond-flip",
        "vx-rail-cluster-state `bond-flip.<node>` blob",
        |s| json(p::parse_bond_flip(s)),
    ),
    ("legacy-upgrade", "vx-rail-cluster-state `upgrade` blob", |s| {
        json(p::parse_upgrade(s))
    }),
    (
        "legacy-migration",
        "vx-rail-cluster-state `migration` blob",
        |s| json(p::parse_migration(s)),
    ),
    (
        "legacy-boot-recovery",
        "vx-rail-node-<node> `boot-recovery` blob",
        |s| json(p::parse_boot_recovery(s)),
    ),
    (
        "legacy-upgrade-state",
        "vx-rail.io/upgrade-state annotation value",
        |s| json(p::parse_upgrade_state_annotation(s)),
    ),
    ("legacy-blob", "any key=value;... blob, untyped", |s| {
        json(p::parse_blob(s))
    }),
    (
        "legacy-node-taints",
        "Node taints, key[=value]:Effect per line",
        |s| json(p::parse_node_taints(s)),
    ),
    ("legacy-node-labels", "Node labels, key=value per line", |s| {
        json(p::parse_node_labels(s))
    }),
    (
        "legacy-node-annotations",
        "Node annotations, `key: value` per line",
        |s| json(p::parse_node_annotations(s)),
    ),
    (
        "legacy-log",
        "vx-rail-node-init log: 4.x kv and 3.x lines, BEGIN/END blocks",
        |s| json(p::parse_legacy_log(s)),
    ),
    (
        "drbd-status",
        "drbdadm status / drbdsetup status [--verbose --statistics]",
        |s| json(p::parse_drbd_status(s)),
    ),
];

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        for (name, description, _) in FORMATS {
            crate::out(&format!("{name:<27} {description}\n"));
        }
        crate::out(&format!("{:<27} detect the format\n", "auto"));
        return Ok(());
    }
    let format = args.format.unwrap_or_default();
    let (source, input) = read_input(args.file)?;
    let value = if format == "auto" {
        detect(&input)
            .with_context(|| format!("{source}: not a known format (see `nodewright parse --list`)"))?
    } else {
        let Some((_, _, parse)) = FORMATS.iter().find(|(name, _, _)| *name == format) else {
            anyhow::bail!("unknown format {format:?} (see `nodewright parse --list`)");
        };
        parse(&input).map_err(|e| {
            anyhow::anyhow!(
                "{source}:{}:{}: expected {}, found {}",
                e.line,
                e.column,
                e.expected,
                e.found
            )
        })?
    };
    crate::out(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    Ok(())
}

fn read_input(file: Option<PathBuf>) -> anyhow::Result<(String, String)> {
    let mut bytes = Vec::new();
    let source = match file {
        Some(path) if path.as_os_str() != "-" => {
            bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            path.display().to_string()
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            "<stdin>".to_owned()
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{source}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((source, text))
}

/// The first format whose parser accepts the whole input.
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
fn blob_fit(value: &serde_json::Value) -> (usize, usize) {
    let unknown = value
        .get("unknown")
        .and_then(serde_json::Value::as_object)
        .map_or(0, serde_json::Map::len);
    let fields = value.as_object().map_or(usize::MAX, serde_json::Map::len);
    (unknown, fields)
}

/// The first format, in [`FORMATS`] order, that parses the input; among the typed legacy blobs the
/// best fitting one.
fn detect(input: &str) -> Option<serde_json::Value> {
    let (first, value) = FORMATS
        .iter()
        .find_map(|(name, _, parse)| parse(input).ok().map(|value| (*name, value)))?;
    let (name, value) = if TYPED_BLOBS.contains(&first) {
        FORMATS
            .iter()
            .filter(|(name, _, _)| TYPED_BLOBS.contains(name))
            .filter_map(|(name, _, parse)| parse(input).ok().map(|value| (*name, value)))
            .min_by_key(|(_, value)| blob_fit(value))
            .unwrap_or((first, value))
    } else {
        (first, value)
    };
    Some(serde_json::json!({"format": name, "value": value}))
}

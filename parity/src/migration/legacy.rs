//! What the operator writes in the legacy script's terms: the phase names of the legacy
//! `migration` key, that key itself, and the `cluster` and `members` keys a migration changes.
//! Strings only; the caller writes them.

use std::fmt::Write as _;

use nodewright_api::common::{InvalidNodeName, validate_node_name};
use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_parsers::{ClusterBlob, Member};

use super::replicas;
use super::status::current;

/// The phase name as the legacy `migration` key spells it.
pub fn legacy_phase(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "PENDING",
        Phase::Preflight => "PREFLIGHT",
        Phase::PreparingNetwork => "PREPARING_NETWORK",
        Phase::JoiningNodes => "JOINING_NODES",
        Phase::RegisteringSatellites => "REGISTERING_SATELLITES",
        Phase::CreatingStoragePools => "CREATING_STORAGE_POOLS",
        Phase::PlacingReplicas => "PLACING_REPLICAS",
        Phase::WaitingForResync => "WAITING_FOR_RESYNC",
        Phase::Finalizing => "FINALIZING",
        Phase::Completed => "COMPLETED",
        Phase::RollingBack => "ROLLING_BACK",
        Phase::RolledBack => "ROLLED_BACK",
        Phase::Failed => "FAILED",
    }
}

/// The cluster blob with `topology` and `replicas` set, in the contract's key order. The values
/// read from the site's own blob are checked again before they are written back: `primary` a Node
/// name, `storage_pool` a LINSTOR pool name.
pub fn cluster_blob(c: &ClusterBlob, topology: &str, replicas: u32) -> Result<String, UnsafeLegacyValue> {
    const KEY: &str = "cluster";
    validate_node_name(&c.primary).map_err(|e| UnsafeLegacyValue::new(KEY, "primary", e))?;
    validate_pool_name(&c.storage_pool).map_err(|reason| UnsafeLegacyValue {
        key: KEY,
        field: "storage_pool".to_owned(),
        reason,
    })?;
    Ok(format!(
        "primary={};topology={topology};replicas={replicas};storage_pool={};created={};schema=4",
        c.primary, c.storage_pool, c.created
    ))
}

/// The members CSV with the roles of `nodes` set to `role`. Every row's node must be a Node name
/// and its storage address an IP address with a prefix length, as the script wrote them.
pub fn members_csv(members: &[Member], nodes: &[String], role: &str) -> Result<String, UnsafeLegacyValue> {
    const KEY: &str = "members";
    let mut out = String::from("node,storage_ip,role,joined");
    for (i, m) in members.iter().enumerate() {
        validate_node_name(&m.node)
            .map_err(|e| UnsafeLegacyValue::new(KEY, &format!("row {} node", i + 1), e))?;
        validate_prefixed_ip(&m.storage_ip).map_err(|reason| UnsafeLegacyValue {
            key: KEY,
            field: format!("row {} storage_ip", i + 1),
            reason,
        })?;
        let r = if nodes.contains(&m.node) {
            role
        } else {
            m.role.as_str()
        };
        let _ = write!(out, "\n{},{},{r},{}", m.node, m.storage_ip, m.joined);
    }
    Ok(out)
}

/// A LINSTOR storage pool name: ASCII letters, digits, `_` and `-`, not starting with `-`.
fn validate_pool_name(pool: &str) -> Result<(), String> {
    let ok = !pool.is_empty()
        && pool.len() <= 48
        && !pool.starts_with('-')
        && pool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{pool:?} is not a storage pool name (1 to 48 ASCII letters, digits, '_' and '-', not starting with '-')"
        ))
    }
}

/// An address with a prefix length, `10.10.100.11/24`.
fn validate_prefixed_ip(value: &str) -> Result<(), String> {
    let parsed = value.split_once('/').and_then(|(ip, prefix)| {
        let ip: std::net::IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(())
    });
    parsed.ok_or_else(|| format!("{value:?} is not an IP address with a prefix length"))
}

/// A value that is not written into a legacy key (`migration`, `cluster`, `members`): the
/// privileged script reads those keys' fields back and does arithmetic on some (`since`), so a
/// value that does not validate never reaches it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the legacy `{key}` key is not written: {field}: {reason}")]
pub struct UnsafeLegacyValue {
    /// The key that was not written.
    pub key: &'static str,
    /// Where the value comes from (`spec.sourceNode`, `spec.joiningNodes[1]`, `primary`,
    /// `row 2 storage_ip`).
    pub field: String,
    /// Why it is refused, naming the value.
    pub reason: String,
}

impl UnsafeLegacyValue {
    fn new(key: &'static str, field: &str, e: InvalidNodeName) -> Self {
        UnsafeLegacyValue {
            key,
            field: field.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// Checks every spec value the legacy `migration` key carries: the source and joining nodes must
/// be Node names. The CRD states the same pattern, but a Migration stored before it did, or a CRD
/// not upgraded, gets here unchecked.
pub fn validate_spec(spec: &MigrationSpec) -> Result<(), UnsafeLegacyValue> {
    const KEY: &str = "migration";
    validate_node_name(&spec.source_node).map_err(|e| UnsafeLegacyValue::new(KEY, "spec.sourceNode", e))?;
    for (i, node) in spec.joining_nodes.iter().enumerate() {
        validate_node_name(node)
            .map_err(|e| UnsafeLegacyValue::new(KEY, &format!("spec.joiningNodes[{i}]"), e))?;
    }
    Ok(())
}

/// The legacy `migration` key the operator keeps for the scripts (which hold storage upgrades
/// while a migration runs) and for every other reader of the contract; `owner=operator` marks
/// it as the operator's. Refused, and so never written, when a spec value does not validate
/// ([`validate_spec`]); the message is reduced to characters that cannot end a field or a line.
pub fn legacy_blob(spec: &MigrationSpec, status: &MigrationStatus) -> Result<String, UnsafeLegacyValue> {
    validate_spec(spec)?;
    let (phase, since) = current(status);
    let mut blob = format!(
        "phase={};source={};joining={};replicas={}",
        legacy_phase(phase),
        spec.source_node,
        spec.joining_nodes.join(","),
        replicas(spec)
    );
    if let Some(s) = since {
        let _ = write!(blob, ";since={s}");
    }
    if let Some(started) = &status.started_at {
        let _ = write!(blob, ";started={}", started.0.as_second());
    }
    if let Some(finished) = &status.finished_at {
        let _ = write!(blob, ";finished={}", finished.0.as_second());
    }
    if let Some(msg) = status.history.last().and_then(|t| t.message.as_deref()) {
        let msg: String = msg
            .chars()
            .map(|c| if c == ';' || c.is_control() { ',' } else { c })
            .collect();
        let _ = write!(blob, ";msg={msg}");
    }
    blob.push_str(";owner=operator");
    Ok(blob)
}

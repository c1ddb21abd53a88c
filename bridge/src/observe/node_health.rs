//! One node's conditions: `Ready` and why not, `NetworkDegraded`, `StorageDegraded`,
//! `UpgradeInProgress`, `LegacyStale` and `ParseErrors`, from what the script reports.

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::common::{ConditionStatus, condition_type as ct};
use nodewright_parsers as p;
use nodewright_parsers::contract;

use super::conditions::{Verdict, conditions};
use super::{ObserveConfig, i64_of, pascal, rfc3339};
use crate::index::{Diagnostic, NodeEntry, NodeObject};

/// The node's conditions, in the order the API lists them, keeping the transition times of
/// `previous` where a status did not change. `hb` is the node's last heartbeat, `diags` its parse
/// diagnostics, newest first.
pub(super) fn node_conditions(
    entry: &NodeEntry,
    hb: Option<i64>,
    diags: &[Diagnostic],
    config: &ObserveConfig,
    now: i64,
    previous: Option<&[Condition]>,
) -> Vec<Condition> {
    let status = entry.config_map.as_ref().and_then(|c| c.status.value.as_ref());
    let object = entry.object.as_deref();
    let taints = object.map(|o| o.taints.as_slice()).unwrap_or_default();
    let net = network_condition(status);
    let sto = storage_condition(status, taints);
    let up = upgrade_condition(status, object);
    let stale = stale_condition(hb, now, config.stale_after_seconds);
    let pe = parse_errors_condition(diags);
    let ready = ready_condition(status, object, &stale, &net, &sto);
    conditions(
        previous,
        vec![
            (ct::READY, ready.0, ready.1, ready.2),
            (ct::NETWORK_DEGRADED, net.0, net.1, net.2),
            (ct::STORAGE_DEGRADED, sto.0, sto.1, sto.2),
            (ct::UPGRADE_IN_PROGRESS, up.0, up.1, up.2),
            (ct::LEGACY_STALE, stale.0, stale.1, stale.2),
            (ct::PARSE_ERRORS, pe.0, pe.1, pe.2),
        ],
        now,
    )
}

fn network_condition(status: Option<&p::NodeStatus>) -> Verdict {
    let Some(s) = status else {
        return (
            ConditionStatus::Unknown,
            "NoLegacyStatus".into(),
            "the legacy script has not reported this node's network".into(),
        );
    };
    let down: Vec<&str> = s
        .slaves
        .iter()
        .filter(|sl| sl.mii != p::MiiState::Up)
        .map(|sl| sl.interface.as_str())
        .collect();
    if s.net == p::NetHealth::Ok {
        // The script calls a bond with one slave left healthy; the site has lost redundancy,
        // which is what a person wants to know before the second cable goes.
        if !down.is_empty() {
            return (
                ConditionStatus::True,
                "SlaveDown".into(),
                format!(
                    "{}: {} without carrier; traffic continues on the other slaves",
                    s.bond,
                    down.join(", ")
                ),
            );
        }
        return (
            ConditionStatus::False,
            "NetworkHealthy".into(),
            format!("{} and its VLANs are up", s.bond),
        );
    }
    let (reason, message) = if !s.slaves.is_empty() && down.len() == s.slaves.len() {
        ("NoSlaveCarrier", format!("no slave of {} has carrier", s.bond))
    } else if s.storage_vlan.as_ref().is_none_or(|v| v.operstate != "up") {
        let v = s.storage_vlan.as_ref().map_or("absent".to_owned(), |v| {
            format!("{} is {}", v.interface, v.operstate)
        });
        ("StorageVlanDown", format!("storage VLAN: {v}"))
    } else if !down.is_empty() {
        (
            "SlaveDown",
            format!("{}: {} without carrier", s.bond, down.join(", ")),
        )
    } else {
        (
            "NetworkDegraded",
            format!("the legacy script reports {} degraded", s.bond),
        )
    };
    (ConditionStatus::True, reason.into(), message)
}

fn storage_condition(status: Option<&p::NodeStatus>, taints: &[Taint]) -> Verdict {
    let taint = taints
        .iter()
        .find(|t| t.key == contract::taint::STORAGE_NOT_READY)
        .map(|t| t.value.clone().unwrap_or_default());
    let reason_of = |r: &str| match r {
        "boot-recovery" => "BootRecovery",
        "satellite-down" => "SatelliteDown",
        "drbd-unknown" => "DrbdStatusUnknown",
        "resync" => "Resyncing",
        "not-uptodate" => "NotUpToDate",
        _ => "StorageNotReady",
    };
    if let Some(t) = &taint {
        return (
            ConditionStatus::True,
            reason_of(t).into(),
            format!("tainted vx-rail.io/storage-not-ready={t}"),
        );
    }
    let Some(s) = status else {
        return (
            ConditionStatus::Unknown,
            "NoLegacyStatus".into(),
            "the legacy script has not reported this node's storage".into(),
        );
    };
    if let Some(r) = &s.taint {
        return (
            ConditionStatus::True,
            reason_of(r.as_str()).into(),
            format!("the legacy script reports storage not ready: {r}"),
        );
    }
    if s.drbd != p::DrbdHealth::Ok {
        return (
            ConditionStatus::True,
            "DrbdStatusUnknown".into(),
            "drbdadm status failed".into(),
        );
    }
    if s.uptodate < s.resources {
        return (
            ConditionStatus::True,
            if s.syncing { "Resyncing" } else { "NotUpToDate" }.into(),
            format!("{} of {} DRBD resources UpToDate", s.uptodate, s.resources),
        );
    }
    let member = matches!(s.role, p::NodeRole::Primary | p::NodeRole::Member);
    if member && s.satellite != "active" {
        return (
            ConditionStatus::True,
            "SatelliteDown".into(),
            format!("linstor-satellite is {}", s.satellite),
        );
    }
    (
        ConditionStatus::False,
        "StorageHealthy".into(),
        format!("{} of {} DRBD resources UpToDate", s.uptodate, s.resources),
    )
}

/// `UpgradeInProgress`: the storage upgrade state the script reports for the node, or that its
/// annotation shows while the upgrade has not ended.
fn upgrade_condition(status: Option<&p::NodeStatus>, object: Option<&NodeObject>) -> Verdict {
    let upgrade = object.and_then(|o| o.upgrade_state.value.as_ref());
    let upgrading_state = status
        .and_then(|s| s.upgrade.as_ref())
        .or(upgrade.map(|a| &a.state).filter(|s| !s.is_terminal()));
    match upgrading_state {
        Some(state) => (
            ConditionStatus::True,
            pascal(state.as_str()),
            match upgrade {
                Some(a) => format!(
                    "storage upgrade to {}: {} since {}",
                    a.to,
                    state,
                    rfc3339(i64_of(a.since))
                ),
                None => format!("storage upgrade: {state}"),
            },
        ),
        None => (
            ConditionStatus::False,
            "NotUpgrading".into(),
            "no storage upgrade on this node".into(),
        ),
    }
}

/// `LegacyStale`: no heartbeat `hb` within the last `window` seconds.
fn stale_condition(hb: Option<i64>, now: i64, window: i64) -> Verdict {
    match hb {
        None => (
            ConditionStatus::True,
            "NeverReported".to_owned(),
            "no legacy heartbeat seen for this node".to_owned(),
        ),
        Some(t) if now - t > window => (
            ConditionStatus::True,
            "HeartbeatMissed".to_owned(),
            format!("last legacy heartbeat at {}, more than {window}s ago", rfc3339(t)),
        ),
        Some(_) => (
            ConditionStatus::False,
            "HeartbeatRecent".to_owned(),
            format!("legacy heartbeat within the last {window}s"),
        ),
    }
}

/// `ParseErrors`: the newest diagnostic, and how many more there are.
fn parse_errors_condition(diags: &[Diagnostic]) -> Verdict {
    match diags.first() {
        Some(d) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!(
                "{} at {}:{}: {}{}",
                d.source,
                d.line,
                d.column,
                d.message,
                if diags.len() > 1 {
                    format!(" (and {} more)", diags.len() - 1)
                } else {
                    String::new()
                }
            ),
        ),
        None => (
            ConditionStatus::False,
            "NoParseErrors".to_owned(),
            "all legacy state parses".to_owned(),
        ),
    }
}

/// `Ready`: the first reason the node is not (stale, the script's last iteration failed, traffic
/// stopped, storage degraded, the kubelet not ready), else the state the script reports.
fn ready_condition(
    status: Option<&p::NodeStatus>,
    object: Option<&NodeObject>,
    stale: &Verdict,
    net: &Verdict,
    sto: &Verdict,
) -> Verdict {
    let legacy_state = status.map(|s| s.state.as_str().to_owned()).or_else(|| {
        object
            .and_then(|o| o.state.as_ref())
            .map(|s| s.as_str().to_owned())
    });
    let annotated_error = object.and_then(|o| o.state.as_ref()) == Some(&p::AnnotatedState::Error);
    let kubelet_not_ready = object
        .and_then(|o| o.kubelet_ready.as_deref())
        .is_some_and(|s| s != "True");
    if stale.0 == ConditionStatus::True {
        (ConditionStatus::False, "LegacyStale".to_owned(), stale.2.clone())
    } else if annotated_error {
        (
            ConditionStatus::False,
            "LegacyError".to_owned(),
            "the legacy script's last iteration failed".to_owned(),
        )
    } else if status.is_some_and(|s| s.net != p::NetHealth::Ok) {
        // Only what stops traffic makes the node not Ready; a lost slave with traffic flowing on
        // the others shows in NetworkDegraded alone.
        (
            ConditionStatus::False,
            "NetworkDegraded".to_owned(),
            net.2.clone(),
        )
    } else if sto.0 == ConditionStatus::True {
        (
            ConditionStatus::False,
            "StorageDegraded".to_owned(),
            sto.2.clone(),
        )
    } else if kubelet_not_ready {
        (
            ConditionStatus::False,
            "KubeletNotReady".to_owned(),
            "the Node is not Ready".to_owned(),
        )
    } else {
        match legacy_state.as_deref() {
            Some("ready") => (
                ConditionStatus::True,
                "Ready".to_owned(),
                "the legacy script reports ready".to_owned(),
            ),
            Some(other) => (
                ConditionStatus::False,
                pascal(other),
                format!("the legacy script reports {other}"),
            ),
            None => (
                ConditionStatus::Unknown,
                "NoLegacyStatus".to_owned(),
                "the legacy script has not reported this node".to_owned(),
            ),
        }
    }
}

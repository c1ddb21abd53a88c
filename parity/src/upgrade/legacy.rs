//! The legacy mirror of an operator-owned upgrade: the cluster-state `upgrade` key in the
//! script's blob spelling (with `owner=operator`, which tells the scripts the upgrade is not
//! theirs to drive), and each node's `vx-rail.io/upgrade-state` annotation. Scripts still on
//! `legacy` for other workflows read them: the storage step leaves services and modules alone on
//! a node in the upgrade, and a migration waits for it.

use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState as State};

use super::status::seconds;

/// The script's spelling of a state (`QUORUM_CHECK`).
pub fn state_text(s: State) -> &'static str {
    match s {
        State::Pending => "PENDING",
        State::Preflight => "PREFLIGHT",
        State::QuorumCheck => "QUORUM_CHECK",
        State::BackupConfig => "BACKUP_CONFIG",
        State::CordonAndTaint => "CORDON_AND_TAINT",
        State::DemotePrimaries => "DEMOTE_PRIMARIES",
        State::StopSatellite => "STOP_SATELLITE",
        State::DownResources => "DOWN_RESOURCES",
        State::UnloadModules => "UNLOAD_MODULES",
        State::InstallPackages => "INSTALL_PACKAGES",
        State::LoadModules => "LOAD_MODULES",
        State::StartSatellite => "START_SATELLITE",
        State::UpResources => "UP_RESOURCES",
        State::WaitResync => "WAIT_RESYNC",
        State::VerifyVersion => "VERIFY_VERSION",
        State::RemoveTaint => "REMOVE_TAINT",
        State::Uncordon => "UNCORDON",
        State::Completed => "COMPLETED",
        State::RollingBack => "ROLLING_BACK",
        State::RolledBack => "ROLLED_BACK",
        State::Failed => "FAILED",
    }
}

/// The state a script spelling names.
pub fn state_of(text: &str) -> Option<State> {
    State::ALL.into_iter().find(|s| state_text(*s) == text)
}

/// The blob's `owner` field of an upgrade the operator drives.
pub const OWNER: &str = "operator";

/// A value made safe for a `key=value;…` blob: no separator, no line break.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            ';' => ',',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// The `upgrade` key for `status`, in the script's spelling with `owner=operator`.
pub fn blob(spec: &StorageUpgradeSpec, status: &StorageUpgradeStatus) -> String {
    let state = status.state.unwrap_or(State::Pending);
    let done: Vec<&str> = status
        .nodes
        .iter()
        .filter(|n| n.state == State::Completed)
        .map(|n| n.node.as_str())
        .collect();
    let rolled: Vec<&str> = status
        .nodes
        .iter()
        .filter(|n| n.state == State::RolledBack)
        .map(|n| n.node.as_str())
        .collect();
    let order = if status.order.is_empty() {
        spec.node_order.clone()
    } else {
        status.order.clone()
    };
    let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().map(|t| seconds(t).to_string()).unwrap_or_default()
    };
    let mut b = format!(
        "state={};from={};to={};order={};node={};done={};rolled={};by=nodewright;started={};since={}",
        state_text(state),
        clean(&spec.from_version),
        clean(&spec.to_version),
        order.join(","),
        status.current_node.as_deref().unwrap_or_default(),
        done.join(","),
        rolled.join(","),
        time(&status.started_at),
        time(&status.since),
    );
    if let Some(s) = status.failed_state {
        b.push_str(&format!(";failed_state={}", state_text(s)));
    }
    if let Some(n) = &status.failed_node {
        b.push_str(&format!(";failed_node={n}"));
    }
    if status.finished_at.is_some() {
        b.push_str(&format!(";finished={}", time(&status.finished_at)));
    }
    if let Some(m) = status
        .message
        .as_deref()
        .filter(|_| matches!(state, State::RollingBack | State::RolledBack | State::Failed))
    {
        b.push_str(&format!(";msg={}", clean(m)));
    }
    b.push_str(&format!(";owner={OWNER}"));
    b
}

/// The `vx-rail.io/upgrade-state` annotation of a node in `state` since `since`.
pub fn annotation(spec: &StorageUpgradeSpec, state: State, since: i64) -> String {
    format!(
        "state={};to={};since={since}",
        state_text(state),
        clean(&spec.to_version)
    )
}

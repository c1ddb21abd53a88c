//! Types shared by every Nodewright resource: workflow modes and ownership, workflow history
//! entries, and the standard Kubernetes condition with a pure helper to update a condition list.
//!
//! Nothing here performs I/O; the time of a change is always passed in by the caller.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kubernetes Node name: a DNS-1123 subdomain (lower-case alphanumerics, `-` and `.`, each
/// dot-separated label starting and ending with an alphanumeric), at most 253 characters. Every
/// node-name field of a spec carries it as its CRD pattern, so the API server refuses a name that no
/// Node can have before it reaches a decision, a host step or a legacy blob.
pub const NODE_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// The longest Node name.
pub const NODE_NAME_MAX: usize = 253;

/// Why a string is not a Node name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a node name (a DNS-1123 subdomain of at most 253 characters: lower-case letters, digits, '-' and '.'): {reason}"
)]
pub struct InvalidNodeName {
    /// The value, as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks `name` against [`NODE_NAME_PATTERN`] and [`NODE_NAME_MAX`], the same rule the CRDs
/// state, for values that did not come through the API server's validation (an object stored
/// before the pattern existed, a value read from a legacy blob).
pub fn validate_node_name(name: &str) -> Result<(), InvalidNodeName> {
    let fail = |reason| {
        Err(InvalidNodeName {
            value: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > NODE_NAME_MAX {
        return fail("it is longer than 253 characters");
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (None, _) | (_, None) => return fail("it has an empty label (two dots, or a dot at an end)"),
            (Some(first), Some(last)) if !alnum(first) || !alnum(last) => {
                return fail("a label starts or ends with something other than a lower-case letter or digit");
            }
            _ => {}
        }
        if !bytes.iter().all(|b| alnum(b) || *b == b'-') {
            return fail("it has a character other than a lower-case letter, a digit, '-' or '.'");
        }
    }
    Ok(())
}

/// Who decides a workflow: the legacy script, the operator in the background (shadow), or the operator.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowMode {
    /// The legacy script decides and acts; Nodewright only observes.
    #[default]
    Legacy,
    /// The legacy script decides and acts; the operator computes what it would have done and records
    /// every divergence.
    Shadow,
    /// The operator decides; the legacy script skips the workflow and the node agent runs only the
    /// host steps it is given.
    Operator,
}

impl WorkflowMode {
    /// The value as written in the API (`legacy`, `shadow`, `operator`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowMode::Legacy => "legacy",
            WorkflowMode::Shadow => "shadow",
            WorkflowMode::Operator => "operator",
        }
    }
}

/// Who drives one workflow object: the legacy script (the object records what Nodewright observed) or
/// the operator (the object is the intent, and Nodewright carries it out).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowOwner {
    /// Observed from the legacy script's state; Nodewright takes no action on it.
    #[default]
    Legacy,
    /// Intent for the operator to carry out.
    Operator,
}

/// Standard condition types used in Nodewright statuses.
pub mod condition_type {
    /// The object is healthy and doing what it should.
    pub const READY: &str = "Ready";
    /// At least one bond or VLAN is not in its expected state.
    pub const NETWORK_DEGRADED: &str = "NetworkDegraded";
    /// At least one DRBD resource or the LINSTOR satellite is not healthy.
    pub const STORAGE_DEGRADED: &str = "StorageDegraded";
    /// A storage upgrade is running.
    pub const UPGRADE_IN_PROGRESS: &str = "UpgradeInProgress";
    /// The legacy script has not reported within the configured window.
    pub const LEGACY_STALE: &str = "LegacyStale";
    /// Some legacy state could not be parsed; the message names where.
    pub const PARSE_ERRORS: &str = "ParseErrors";
    /// A workflow has finished (successfully or not).
    pub const COMPLETE: &str = "Complete";
    /// A workflow has failed; the reason says at which step.
    pub const FAILED: &str = "Failed";
}

/// Status values of a standard condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

impl ConditionStatus {
    /// The value as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// Sets a condition in `conditions`, following the Kubernetes convention that
/// `lastTransitionTime` changes only when the status changes. Returns whether anything changed,
/// so callers can skip writes that would change nothing.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) -> bool {
    let status = status.as_str();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let before = existing.clone();
            if existing.status != status {
                existing.status = status.to_owned();
                existing.last_transition_time = now.clone();
            }
            existing.reason = reason.to_owned();
            existing.message = message.to_owned();
            existing.observed_generation = observed_generation;
            *existing != before
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                observed_generation,
                last_transition_time: now.clone(),
            });
            true
        }
    }
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// A reference to the `EdgeCluster` an object belongs to, in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the `EdgeCluster` in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One step of a workflow's history: which phase it entered, when, and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTransition<P> {
    /// The phase entered.
    pub phase: P,
    /// When it was entered.
    pub at: Time,
    /// Why, or what happened in the phase before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_new_condition_is_added_with_the_given_time() {
        let mut conditions = vec![];
        let changed = set_condition(
            &mut conditions,
            condition_type::READY,
            ConditionStatus::True,
            "AllNodesReady",
            "3 of 3 nodes ready",
            Some(2),
            &at(100),
        );
        assert!(changed);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn same_status_keeps_the_transition_time_but_updates_the_message() {
        let mut conditions = vec![];
        set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "A",
            "one",
            None,
            &at(100),
        );
        let changed = set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "B",
            "two",
            None,
            &at(200),
        );
        assert!(changed);
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert_eq!(conditions[0].reason, "B");
        assert_eq!(conditions[0].message, "two");
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut conditions = vec![];
        set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "A",
            "",
            None,
            &at(100),
        );
        set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "A",
            "",
            None,
            &at(200),
        );
        assert_eq!(conditions[0].last_transition_time, at(200));
        assert_eq!(conditions[0].status, "True");
    }

    #[test]
    fn setting_an_identical_condition_reports_no_change() {
        let mut conditions = vec![];
        set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "A",
            "m",
            Some(1),
            &at(100),
        );
        let changed = set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "A",
            "m",
            Some(1),
            &at(300),
        );
        assert!(!changed);
        assert_eq!(
            find_condition(&conditions, "Ready").unwrap().last_transition_time,
            at(100)
        );
    }

    #[test]
    fn workflow_modes_serialize_in_lower_case() {
        assert_eq!(
            serde_json::to_string(&WorkflowMode::Shadow).unwrap(),
            "\"shadow\""
        );
        assert_eq!(WorkflowMode::Operator.as_str(), "operator");
        assert!(serde_json::from_str::<WorkflowMode>("\"Operator\"").is_err());
    }

    #[test]
    fn node_names_are_dns_1123_subdomains() {
        for good in [
            "edge-1",
            "a",
            "edge-1.site.example",
            "0node",
            "x".repeat(253).as_str(),
        ] {
            assert_eq!(validate_node_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Edge-1", "other than"),
            ("edge_1", "other than"),
            ("-edge", "starts or ends"),
            ("edge-", "starts or ends"),
            ("edge..1", "empty label"),
            (".edge", "empty label"),
            ("edge-1;phase=COMPLETED", "other than"),
            ("$(reboot)", "starts or ends"),
            ("a b", "other than"),
            ("edge,2", "other than"),
        ] {
            let e = validate_node_name(bad).unwrap_err();
            assert!(e.reason.contains(why), "{bad:?}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(validate_node_name(&"x".repeat(254)).is_err());
    }
}

//! Condition lists as every object here keeps them: the wanted conditions set in a fixed order,
//! each keeping its `lastTransitionTime` from the previous list while its status does not change.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::common::{ConditionStatus, set_condition};
use nodewright_kit::clock::time;

/// A condition's status, reason and message, as computed before it goes into a list.
pub(super) type Verdict = (ConditionStatus, String, String);

/// Keeps transition times from the previous conditions, then sets each of `wanted`.
pub(super) fn conditions(
    previous: Option<&[Condition]>,
    wanted: Vec<(&str, ConditionStatus, String, String)>,
    now: i64,
) -> Vec<Condition> {
    let mut list: Vec<Condition> = previous.map(<[Condition]>::to_vec).unwrap_or_default();
    let types: BTreeSet<&str> = wanted.iter().map(|w| w.0).collect();
    list.retain(|c| types.contains(c.type_.as_str()));
    let now = time(now);
    for (type_, status, reason, message) in &wanted {
        set_condition(&mut list, type_, *status, reason, message, None, &now);
    }
    list.sort_by_key(|c| wanted.iter().position(|w| w.0 == c.type_));
    list
}

pub(super) fn condition_is(status: &[Condition], type_: &str, value: &str) -> bool {
    status.iter().any(|c| c.type_ == type_ && c.status == value)
}

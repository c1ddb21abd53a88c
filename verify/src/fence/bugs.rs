//! SEEDED BUGS — not product code. Each function here replaces ONE product decision with a wrong
//! variant, so that the checks can show they find the mistake (a check that cannot fail proves
//! nothing). Chosen with [`super::Bug`] in a model's configuration; never used otherwise.

use nodewright_api::common::WorkflowMode;
use nodewright_parity::takeover::{Holding, ScriptFacts, Takeover, Workflow};

/// Seconds without a report after which the seeded clock-liveness fence counts a script as gone.
pub const LIVENESS_THRESHOLD: i64 = 10;

/// SEEDED BUG (a), the clock-based liveness of the old handshake: a node whose script has not
/// acknowledged the generation counts as unable to act when its last report is older than
/// `threshold` by the operator's clock — comparing the node's clock with the operator's, and
/// taking silence as proof. Replaces `nodewright_parity::takeover::may_act`.
pub fn may_act_clock_liveness(
    takeover: &Takeover,
    workflow: Workflow,
    facts: &[ScriptFacts],
    now: i64,
    threshold: i64,
) -> Result<(), Vec<Holding>> {
    if takeover.mode(workflow) != WorkflowMode::Operator {
        return Err(Vec::new());
    }
    let holding: Vec<Holding> = facts
        .iter()
        .filter(|f| f.acknowledged.is_none_or(|g| g < takeover.generation))
        .filter(|f| f.last_report.is_none_or(|at| now - at <= threshold))
        .map(|f| Holding {
            node: f.node.clone(),
            generation: takeover.generation,
            acknowledged: f.acknowledged,
            pod: f.pod.clone(),
            not_ready_for: None,
            last_report_ago: f.last_report.map(|at| now - at),
        })
        .collect();
    if holding.is_empty() { Ok(()) } else { Err(holding) }
}

/// SEEDED BUG (b), an operator that skips the acknowledgement: it acts as soon as the workflow is
/// in `operator` mode. Replaces `nodewright_parity::takeover::may_act`.
pub fn may_act_skip_ack(takeover: &Takeover, workflow: Workflow) -> Result<(), Vec<Holding>> {
    if takeover.mode(workflow) == WorkflowMode::Operator {
        Ok(())
    } else {
        Err(Vec::new())
    }
}

//! The takeover, leadership and node-agent models.
//!
//! - [`takeover`]: each node's legacy script and two operator replicas competing for the Lease,
//!   handing the migration over through the takeover ConfigMap and the fence.
//! - [`agent`]: a node's agents claiming, running, journalling and reporting NodeTasks, with
//!   crashes and a second pod of a rollout.
//! - [`bugs`]: the seeded bugs, each replacing one product decision.

pub mod agent;
pub mod bugs;
pub mod takeover;

/// A seeded bug: one product decision swapped for a wrong variant from [`bugs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// The fence trusts the clock: a script silent for longer than a threshold (by the operator's
    /// clock against the node's) counts as unable to act ([`bugs::may_act_clock_liveness`]).
    ClockLiveness,
    /// The fence skips the acknowledgement: the operator acts as soon as the mode is `operator`
    /// ([`bugs::may_act_skip_ack`]).
    SkipAck,
}

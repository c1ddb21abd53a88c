//! Nodewright's parity layer: how the operator takes a workflow over from the legacy script, one
//! workflow at a time and never with two deciders.
//!
//! - [`takeover`]: per-workflow modes projected into the ConfigMap the script reads, the rules for
//!   changing them, and the acknowledgement handshake.
//! - [`taints`]: taint management as a pure decision.
//! - [`migration`]: the single-to-multi-node migration's phase machine as a pure decision.
//! - [`network`]: the steady-state network (bond, VLANs, carrier failover) as a pure decision.
//! - [`topology`]: the site-topology seam — what the decisions read about the site's shape.
//! - [`shadow`]: what the operator would have done, compared with what the script did.
//! - [`observed`]: the facts those functions take, read from the bridge's index.
//! - [`controllers`]: the shape every owned workflow has (gather → pure plan → guarded writes)
//!   and one module per workflow that implements it; [`gather`] keeps what the plans' guards need.
//! - [`writer`]: the one writer, which checks leadership before each write and guards each one.
//!
//! Everything but [`run`] and [`writer`] is pure and tested without an API server; [`run`] is the
//! operator's process loop, which reads the API through watches, and [`writer`] the one place
//! that writes it.

pub mod bondflip;
pub mod bootstrap;
pub mod controllers;
pub mod gather;
pub mod keys;
pub mod migration;
pub mod network;
pub mod observed;
pub mod run;
pub mod shadow;
pub mod taints;
pub mod takeover;
pub mod topology;
pub mod upgrade;
pub mod writer;

pub use shadow::Divergence;
pub use takeover::{Takeover, Workflow};

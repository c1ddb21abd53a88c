//! Nodewright's parity layer: how the operator takes a workflow over from the legacy script, one
//! workflow at a time and never with two deciders.
//!
//! - [`takeover`]: per-workflow modes projected into the ConfigMap the script reads, the rules for
//!   changing them, and the acknowledgement handshake.
//! - [`taints`]: taint management as a pure decision.
//! - [`migration`]: the single-to-multi-node migration's phase machine as a pure decision.
//! - [`shadow`]: what the operator would have done, compared with what the script did.
//! - [`observed`]: the facts those functions take, read from the bridge's index.
//!
//! Everything but [`run`] is pure and tested without an API server; [`run`] is the operator's
//! process loop, the one module that reads and writes the API.

pub mod migration;
pub mod observed;
pub mod run;
pub mod shadow;
pub mod taints;
pub mod takeover;

pub use shadow::Divergence;
pub use takeover::{Takeover, Workflow};

//! Nodewright's audit trail, around the storage of `nodewright-audit`: what goes into the log and
//! what comes out of it.
//!
//! - [`events`]: the API server's `audit.k8s.io/v1` events and which of them the trail keeps;
//! - [`trail`]: events to entries, with the operator's decisions and the agent's steps derived and
//!   linked (`caused_by`) to the requests they follow from;
//! - [`serve`]: the webhook endpoint that appends them and answers only once they are durable;
//! - [`publish`]: the newest checkpoint, published to the cluster;
//! - [`query`]: selecting and printing entries for `nodewright audit log`.

pub mod events;
pub mod publish;
pub mod query;
pub mod serve;
pub mod trail;

/// The audit policy the API server needs for the trail (`audit.k8s.io/v1` `Policy`, YAML): every
/// completed change to Nodewright's objects, to ConfigMaps in the legacy namespace and to Nodes,
/// at `RequestResponse`, and nothing else.
pub const POLICY: &str = include_str!("../audit-policy.yaml");

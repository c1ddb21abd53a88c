//! The read-only observation bridge: it watches what the legacy `vx-rail-node-init` script writes
//! (its ConfigMaps, the Nodes' annotations, labels and taints, its pods' logs), keeps it in an
//! in-memory [`index::Index`], computes Nodewright's typed status from it with pure functions, and
//! writes that status through one writer — only on Nodewright's own resources, never on anything
//! the script owns.
//!
//! Shape: sources (I/O) → index (sync, no I/O) → observation (pure) → writer (I/O, leader only).

pub mod convert;
pub mod fingerprint;
pub mod index;
pub mod logs;
pub mod metrics;
pub mod observe;
pub mod run;
pub mod source;
pub mod writer;

//! The storage-upgrade and migration workflow models.
//!
//! - [`legacy`]: every node's legacy script running the script's upgrade rules from the cluster
//!   state it read, writing without a precondition. It reproduces the stale-state race (VXR-402).
//! - [`operator`]: the operator deciding the StorageUpgrade and the Migration with the product's
//!   own decisions, the site-wide storage gate, the node agents running the NodeTasks, crashes,
//!   stale informers and failing steps.
//! - [`site`]: the hosts' storage both act on.
//!
//! `docs/verification.md`, "The workflow model", says what is modelled and what is proven.

pub mod legacy;
pub mod operator;
pub mod site;

use std::hash::Hash;

use crate::check::{self, Bounds};
use crate::trace::{Explain, Trace};

/// The shortest counterexample of `property` within `max_depth` steps, and its length: checks at
/// increasing depths (one thread, breadth first) until the property breaks. The checker keeps the
/// last violation it met for an `always` property, not the first, so a single deep run reports a
/// long path; the first depth at which it breaks gives the shortest one.
pub fn shortest<M>(model: &M, property: &str, max_depth: usize) -> Option<Trace>
where
    M: Explain + Send + Sync + Clone + 'static,
    M::State: Hash + Send + Sync + Clone + PartialEq + std::fmt::Debug,
    M::Action: Clone + PartialEq + std::fmt::Debug,
{
    (1..=max_depth).find_map(|depth| {
        let outcome = check::run(model.clone(), Bounds { depth, threads: 1 });
        outcome.counterexample(property).cloned()
    })
}

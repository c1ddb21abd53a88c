//! Model checks of Nodewright's decisions.
//!
//! Golden scenarios check the interleavings someone thought of; these models enumerate every
//! interleaving up to a bound — stale reads, crashes, restarts, lease expiry, stalled loops, clock
//! skew — and check that the product's promises hold in all of them. The models call the product's own
//! pure decision functions (the takeover plan and fence, the Lease decision, the agent's claim
//! decision, the workflows' plans), so a change to any of them is re-checked by `cargo test`.
//!
//! - [`store`]: the API server as a shared store with resourceVersion preconditions and stale reads.
//! - [`trace`]: counterexamples as numbered actor steps with the state that mattered.
//! - [`check`]: a bounded breadth-first run that collects state counts and traces.
//!
//! `docs/verification.md` says what each model covers, what it abstracts away, and what is proven.

pub mod check;
pub mod fence;
pub mod store;
pub mod trace;

//! Runs the golden scenarios in any mode and checks what must never happen over every run.
//!
//! - [`world`]: the simulated hosts and the in-memory cluster as the scripts' runner, Nodewright
//!   and the node agents share them in one run;
//! - [`drive`]: Nodewright's operator in the loop: a controller's plan written against the
//!   in-memory cluster and the harness's stand-ins for Nodewright's objects, and the node agents
//!   running its tasks on the simulated hosts;
//! - [`parity`]: a scenario with workflows in `shadow` or `operator` mode, Nodewright's pure
//!   controllers and the node agents in the loop between the scripts' ticks;
//! - [`invariants`]: what must never happen, checked over the steps of a run;
//! - [`cli`]: `vxr-sim run SCENARIO [--mode WORKFLOW=MODE …]`, whose binary also serves as every
//!   simulated host tool (`nodewright_legacy_sim::tool`).
//!
//! It depends on the simulator and on Nodewright's crates; neither depends on it (the agent's
//! tests use the simulator, so the simulator cannot use the agent).
pub mod cli;
pub mod drive;
pub mod invariants;
pub mod parity;
pub mod world;

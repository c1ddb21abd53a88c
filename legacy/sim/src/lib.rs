//! The simulated edge world that the legacy `vx-rail-node-init` script runs against, unmodified:
//! the host tools it calls (answered in the real tools' output formats), the files it reads under
//! its root prefix, an in-memory cluster for its `kubectl` calls, and injectable faults.
//!
//! Everything here is deterministic: the same scenario and seed give byte-identical output. Time
//! is simulated; nothing reads the wall clock or the real network.
pub mod cluster;
pub mod host;
pub mod observe;
pub mod run;
pub mod sched;
pub mod tool;

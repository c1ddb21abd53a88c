//! The process kit: what every long-running Nodewright process needs around its own loop, and
//! nothing about what that loop decides.
//!
//! - [`lease`]: leader election on a Lease, so that two replicas never both write;
//! - [`admin`]: the admin server (`/metrics`, `/healthz`, `/readyz`) and the [`admin::Health`] a
//!   loop reports to it;
//! - [`clock`]: wall-clock time, read once per turn at the edge;
//! - [`backoff`]: exponential backoff with jitter for retries and reconnects;
//! - [`failpoint`]: named points where a crash test kills or pauses the process (compiled in only
//!   with the `failpoints` feature);
//! - [`process`]: the shared command-line options, the client, the replica's identity and the stop
//!   signal;
//! - [`logging`]: the log options (`--log-format text|json`, `--log-level`) and the logger.
//!
//! Boundaries: the kit talks to the Kubernetes API only about its Lease; it knows nothing of the
//! legacy script, of Nodewright's resources or of any workflow.

pub mod admin;
pub mod backoff;
pub mod clock;
pub mod failpoint;
pub mod lease;
pub mod logging;
pub mod process;

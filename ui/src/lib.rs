//! Nodewright's web UI: the sites and their nodes, the workflows and the takeover, read through the
//! API with read-only rights and kept live by server-sent events fed from watches.
//!
//! Shape: [`watch`] is the only module that talks to the API; it feeds the [`store`] (an index with
//! `apply` / `delete` / `reset`); [`views`] computes every page's data from the store, purely;
//! [`server`] serves the views as JSON, the page shell and its assets (built into the binary: an edge
//! site may have no internet), and the change stream; [`audit`] reads the audit trail's log for the
//! Audit view.

pub mod actions;
pub mod audit;
pub mod server;
pub mod store;
pub mod views;
pub mod watch;

pub use server::{Shared, router, serve};
pub use store::Store;

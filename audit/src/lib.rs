//! Nodewright's audit trail storage: an append-only, tamper-evident log.
//!
//! Every record of the trail (an API server request, an operator decision, an agent step result)
//! is an [`Entry`], stored as one leaf of a Merkle tree in the
//! [C2SP tlog-tiles](https://c2sp.org/tlog-tiles) layout: entry bundles under `tile/entries/`,
//! hash tiles under `tile/<L>/`, and a `checkpoint` file holding a
//! [C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint) signed as a
//! [C2SP signed-note](https://c2sp.org/signed-note) with an Ed25519 key whose name is the log's
//! origin. Hashing, tile coordinates, proofs and the note format come from the `tlog_tiles` and
//! `signed_note` crates.
//!
//! - [`Log`] appends durably (returns only once the entries are fsync'd), drops entries whose id is
//!   already in the log, signs checkpoints, and recovers after a crash.
//! - [`verify`] checks a (copied) log directory offline and names the first bad index.
//! - [`read`] iterates over the entries in order.

mod entry;
mod keys;
mod layout;
mod log;
mod verify;

pub use entry::{Entry, EntryKind, FieldChange, ObjectRef, WorkflowRef};
pub use keys::{KeyError, Signer, Verifier};
pub use log::{Appended, Checkpoint, Error, Log, read};
pub use verify::{Location, Report, VerifyError, VerifyOptions, verify};

/// The largest canonical JSON encoding of one entry, in bytes: an entry bundle stores each entry's
/// length as a big-endian 16-bit integer (C2SP tlog-tiles).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// The number of entries in a full entry bundle, and of hashes in a full hash tile (tile height 8).
pub const TILE_WIDTH: u64 = 256;

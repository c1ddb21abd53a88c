//! The script's log: 4.x `kv` lines, 3.x `legacy` lines, raw `----- BEGIN/END <source> -----`
//! blocks and whatever else reached the container log (kubectl's own stderr, garbage).
//!
//! [`LogReader`] is a streaming state machine: feed it bytes in chunks of any size and it calls
//! back with one [`LogEvent`] per line or per finished block. Memory stays bounded (one partial
//! line, one open block per source, each capped), nothing makes the stream fail, and lines that
//! are not log lines come out as [`LogEvent::Unknown`] and are counted. For a well-formed line the
//! event borrows every field from the line itself: the hot path does not allocate.
//!
//! Several nodes' logs can be interleaved: 4.x lines name their node (`node=`), and lines may
//! carry a `kubectl logs --prefix` style `[pod/<pod>/<container>] ` prefix (3.x lines have no
//! node field, so the prefix is how they are told apart). Blocks are tracked per prefix, so a
//! block from one pod is not cut by another pod's lines.
//!
//! The events and their fields are in `event`; reading one line of either generation (the hot
//! path, word-at-a-time scans included) in `line`; the stream (lines, blocks, limits, counters) in
//! `reader`; owned copies of events and the whole-log parser in `owned`.

mod event;
mod line;
mod owned;
mod reader;

pub use event::{BlockEvent, Field, Fields, LogEvent, LogFormat, LogRecord, LogStats, UnknownLine};
pub use line::{Component, Level, parse_log_line};
pub use owned::{LegacyLog, OwnedLogEvent, parse_legacy_log};
pub use reader::LogReader;

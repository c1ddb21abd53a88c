//! Owned copies of the reader's events, for callers that keep a whole log (`nodewright parse`,
//! tests), and the whole-log parser built on the reader.

use serde::Serialize;

use super::event::LogEvent;
use super::{Component, Level, LogFormat, LogReader, LogStats};
use crate::ParseError;
use crate::legacy::Timestamp;

/// An owned copy of a [`LogEvent`], for collecting a whole log.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OwnedLogEvent {
    /// A 4.x or 3.x log line.
    Record {
        /// Line number.
        line: u64,
        /// `--prefix` source.
        source: Option<String>,
        /// Generation.
        format: LogFormat,
        /// When.
        time: Timestamp,
        /// Zone as printed.
        zone: String,
        /// Level.
        level: Level,
        /// Node, for 4.x lines.
        node: Option<String>,
        /// Component.
        component: Component,
        /// Message, escapes resolved.
        msg: String,
        /// Fields in order, values unescaped.
        fields: Vec<(String, String)>,
    },
    /// A raw block.
    Block {
        /// Line of the BEGIN marker.
        line: u64,
        /// `--prefix` source.
        source: Option<String>,
        /// Node of the preceding 4.x line.
        node: Option<String>,
        /// The command or file.
        command: String,
        /// The output.
        content: String,
        /// Content lines.
        lines: u64,
        /// Whether the END marker was seen.
        complete: bool,
        /// Whether content was cut at the cap.
        truncated: bool,
    },
    /// kubectl stderr.
    ToolError {
        /// Line number.
        line: u64,
        /// `--prefix` source.
        source: Option<String>,
        /// The line.
        text: String,
    },
    /// A line kept raw.
    Unknown {
        /// Line number.
        line: u64,
        /// `--prefix` source.
        source: Option<String>,
        /// The line.
        text: String,
        /// What was expected where recognition stopped.
        expected: String,
        /// Byte in `text` where it stopped.
        column: usize,
    },
}

impl From<&LogEvent<'_>> for OwnedLogEvent {
    fn from(e: &LogEvent<'_>) -> Self {
        let own = |s: Option<&str>| s.map(str::to_owned);
        match e {
            LogEvent::Record(r) => Self::Record {
                line: r.line,
                source: own(r.source),
                format: r.format,
                time: r.time,
                zone: r.zone.to_owned(),
                level: r.level.clone(),
                node: own(r.node),
                component: r.component.clone(),
                msg: r.message().into_owned(),
                fields: r
                    .fields
                    .iter()
                    .map(|f| (f.key.to_owned(), f.value().into_owned()))
                    .collect(),
            },
            LogEvent::Block(b) => Self::Block {
                line: b.line,
                source: own(b.source),
                node: own(b.node),
                command: b.command.to_owned(),
                content: b.content.to_owned(),
                lines: b.lines,
                complete: b.complete,
                truncated: b.truncated,
            },
            LogEvent::ToolError { line, source, text } => Self::ToolError {
                line: *line,
                source: own(*source),
                text: (*text).to_owned(),
            },
            LogEvent::Unknown(u) => Self::Unknown {
                line: u.line,
                source: own(u.source),
                text: u.text.to_owned(),
                expected: u.expected.to_owned(),
                column: u.column,
            },
        }
    }
}

/// A whole log, collected.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LegacyLog {
    /// Every event in stream order (a block comes when its END marker is read).
    pub events: Vec<OwnedLogEvent>,
    /// Counters.
    pub stats: LogStats,
}

/// Parses a whole log with [`LogReader`]. Lines that are not log lines never fail the parse;
/// the only error is input with no log line and no block at all, which is not a log.
pub fn parse_legacy_log(input: &str) -> Result<LegacyLog, ParseError> {
    let mut reader = LogReader::new();
    let mut events = Vec::new();
    reader.feed(input.as_bytes(), |e| events.push(OwnedLogEvent::from(e)));
    reader.finish(|e| events.push(OwnedLogEvent::from(e)));
    let stats = reader.stats().clone();
    if stats.kv_records + stats.legacy_records + stats.blocks == 0 {
        let at = input.len() - input.trim_start().len();
        return Err(ParseError::at(
            "legacy-log",
            input,
            at,
            "a script log line (`ts=… level=…` or `<date> [LEVEL] component: …`) or a `----- BEGIN` block",
        ));
    }
    Ok(LegacyLog { events, stats })
}

//! What the reader hands out: events (a record, a block, a tool error, an unknown line), a
//! record's fields as offsets into its line, and the stream's counters. Data and the accessors
//! its consumers call; the parsing that fills them is in `line` and `reader`.

use std::borrow::Cow;

use serde::{Serialize, Serializer, ser::SerializeMap};

use super::{Component, Level};
use crate::legacy::Timestamp;

/// Which generation of the script wrote a line.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Script 4.x, `VXR_LOG_FORMAT=kv`.
    Kv,
    /// Script 3.x, `VXR_LOG_FORMAT=legacy`.
    Legacy,
}

/// One `key=value` of a log line, borrowed from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Field<'a> {
    /// The key.
    pub key: &'a str,
    /// The value as written, without quotes; escapes still in place when `escaped`.
    pub raw: &'a str,
    /// Whether `raw` contains `\` escapes (4.x quoted values only).
    pub escaped: bool,
}

impl<'a> Field<'a> {
    /// The value with 4.x escapes (`\\`, `\"`, `\n`, `\t`) resolved; borrows when there are none.
    pub fn value(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Where one field lies in its line, as byte offsets. The reader keeps one buffer of these and
/// reuses it for every line, so a line's fields cost no allocation whatever their number, and the
/// event handed to the callback stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) struct Span {
    pub(super) key: u32,
    pub(super) value: u32,
    pub(super) value_len: u32,
    pub(super) key_len: u16,
    pub(super) escaped: bool,
}

/// The longest line whose fields are read: offsets are kept as `u32`. The reader's line cap is far
/// below it; a longer line given to [`parse_log_line`] is rejected.
pub(super) const MAX_FIELDS_LINE: usize = u32::MAX as usize;

/// The fields of a line, in order: offsets into the line, in the reader's buffer (or, from
/// [`parse_log_line`], in a vector of the record's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields<'a> {
    pub(super) line: &'a str,
    pub(super) spans: Cow<'a, [Span]>,
}

impl<'a> Fields<'a> {
    #[inline]
    fn field(&self, span: &Span) -> Field<'a> {
        let at = span.key as usize;
        let key = self.line.get(at..at + usize::from(span.key_len)).unwrap_or("");
        let at = span.value as usize;
        let raw = self.line.get(at..at + span.value_len as usize).unwrap_or("");
        Field {
            key,
            raw,
            escaped: span.escaped,
        }
    }

    /// The fields, in the order written.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Field<'a>> + '_ {
        self.spans.iter().map(|s| self.field(s))
    }

    /// The first field named `key`.
    pub fn get(&self, key: &str) -> Option<Field<'a>> {
        self.iter().find(|f| f.key == key)
    }

    /// How many fields the line has.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the line has no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for f in self.iter() {
            map.serialize_entry(f.key, &f.value())?;
        }
        map.end()
    }
}

/// One log line of either generation, borrowed from the line.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LogRecord<'a> {
    /// Line number in the stream, from 1.
    pub line: u64,
    /// The `[pod/<pod>/<container>]` prefix, without brackets, when the line had one.
    pub source: Option<&'a str>,
    /// Which generation wrote it.
    pub format: LogFormat,
    /// When.
    pub time: Timestamp,
    /// The time zone as printed: `Z` for 4.x, the `date` zone (`UTC`) for 3.x.
    pub zone: &'a str,
    /// The level.
    pub level: Level,
    /// The node (`node=`); 3.x lines do not say.
    pub node: Option<&'a str>,
    /// The step that logged it.
    pub component: Component,
    /// The message as written (4.x escapes still in place; see [`LogRecord::message`]).
    #[serde(rename = "msg", serialize_with = "ser_msg")]
    pub msg_raw: (&'a str, bool),
    /// The fields.
    pub fields: Fields<'a>,
}

fn ser_msg<S: Serializer>(m: &(&str, bool), s: S) -> Result<S::Ok, S::Error> {
    if m.1 {
        s.serialize_str(&unescape(m.0))
    } else {
        s.serialize_str(m.0)
    }
}

impl<'a> LogRecord<'a> {
    /// The message with escapes resolved.
    pub fn message(&self) -> Cow<'a, str> {
        Field {
            key: "msg",
            raw: self.msg_raw.0,
            escaped: self.msg_raw.1,
        }
        .value()
    }
}

/// A raw block: host-tool output between `----- BEGIN <source> -----` and `----- END … -----`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockEvent<'a> {
    /// Line number of the BEGIN marker.
    pub line: u64,
    /// The `kubectl --prefix` source of the block's lines, if any.
    pub source: Option<&'a str>,
    /// The node of the last 4.x line before the block from the same source.
    pub node: Option<&'a str>,
    /// The command or file the output came from (`linstor --no-color node list`).
    pub command: &'a str,
    /// The output, lines joined with `\n`.
    pub content: &'a str,
    /// How many content lines.
    pub lines: u64,
    /// False when the stream ended before the END marker.
    pub complete: bool,
    /// True when the content exceeded the reader's block cap and was cut.
    pub truncated: bool,
}

/// A line that is neither a log line, a block marker nor a known tool error: kept raw.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct UnknownLine<'a> {
    /// Line number.
    pub line: u64,
    /// The `kubectl --prefix` source, if any.
    pub source: Option<&'a str>,
    /// The line (line ending and ANSI escapes removed).
    pub text: &'a str,
    /// Why it is not a log line: what was expected where it stopped.
    pub expected: &'static str,
    /// The byte in `text` where recognition stopped.
    pub column: usize,
}

/// One event of the log stream.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEvent<'a> {
    /// A 4.x or 3.x log line.
    Record(LogRecord<'a>),
    /// A raw block, complete or cut off by the end of the stream.
    Block(BlockEvent<'a>),
    /// kubectl's own stderr (`error: …`, `Error from server (…): …`) that reached the log.
    ToolError {
        /// Line number.
        line: u64,
        /// The `kubectl --prefix` source, if any.
        source: Option<&'a str>,
        /// The line.
        text: &'a str,
    },
    /// Anything else.
    Unknown(UnknownLine<'a>),
}

/// Counters over everything the reader has seen.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines read (including block content).
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// 4.x lines.
    pub kv_records: u64,
    /// 3.x lines.
    pub legacy_records: u64,
    /// Blocks (complete or not).
    pub blocks: u64,
    /// Blocks the stream ended inside.
    pub incomplete_blocks: u64,
    /// kubectl stderr lines.
    pub tool_errors: u64,
    /// Lines kept raw.
    pub unknown_lines: u64,
    /// Lines that were not UTF-8 (decoded lossily).
    pub invalid_utf8_lines: u64,
    /// Lines with ANSI escapes (removed).
    pub ansi_lines: u64,
    /// Lines longer than the cap (cut).
    pub overlong_lines: u64,
    /// Whether the stream ended without a final newline.
    pub partial_last_line: bool,
}

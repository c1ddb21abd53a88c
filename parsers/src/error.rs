//! The one error type of this crate: where parsing stopped (line, column, byte offset), what was
//! expected there and a short excerpt of what was found instead.

use serde::Serialize;

/// A parse failure, positioned in the original input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{format}: line {line}, column {column} (byte {offset}): expected {expected}, found {found}")]
pub struct ParseError {
    /// Which format was being parsed, for example `proc-net-bonding`.
    pub format: &'static str,
    /// Line, counted from 1.
    pub line: usize,
    /// Column in characters, counted from 1.
    pub column: usize,
    /// Byte offset from the start of the input, counted from 0.
    pub offset: usize,
    /// What the parser expected at this position.
    pub expected: String,
    /// A short, escaped excerpt of what was there instead.
    pub found: String,
}

/// How many characters of the offending input an error quotes.
const EXCERPT_CHARS: usize = 32;

impl ParseError {
    /// Builds an error at `offset` bytes into `input`, working out line and column.
    pub(crate) fn at(format: &'static str, input: &str, offset: usize, expected: impl Into<String>) -> Self {
        let mut offset = offset.min(input.len());
        while offset > 0 && !input.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = input.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
        let rest = input.get(offset..).unwrap_or("");
        Self {
            format,
            line,
            column,
            offset,
            expected: expected.into(),
            found: excerpt(rest),
        }
    }

    /// A low-cardinality label for failure metrics: the format that failed.
    pub fn metric_label(&self) -> &'static str {
        self.format
    }
}

fn excerpt(rest: &str) -> String {
    if rest.is_empty() {
        return "end of input".to_owned();
    }
    let line = rest.split(['\n', '\r']).next().unwrap_or("");
    if line.is_empty() {
        return "end of line".to_owned();
    }
    let head: String = line.chars().take(EXCERPT_CHARS).collect();
    if line.chars().count() > EXCERPT_CHARS {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

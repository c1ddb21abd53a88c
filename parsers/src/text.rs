//! Shared plumbing for the line-oriented parsers: a nom error type that keeps the innermost
//! `context` label, line splitting that remembers byte offsets and tolerates CRLF, and the small
//! token parsers every format uses (`key:value`, words, unsigned numbers).

use nom::{
    IResult, Parser,
    bytes::complete::{take_till, take_while, take_while1},
    character::complete::char,
    combinator::{all_consuming, cut},
    error::{ContextError, ErrorKind, FromExternalError, ParseError as NomParseError, context},
    sequence::separated_pair,
};

use crate::ParseError;

/// The nom error of this crate. It remembers where it stopped and the innermost `context` label,
/// which becomes the "expected" part of a [`ParseError`].
#[derive(Debug)]
pub(crate) struct NomErr<'a> {
    pub input: &'a str,
    pub expected: Option<&'static str>,
    pub kind: ErrorKind,
}

impl<'a> NomParseError<&'a str> for NomErr<'a> {
    fn from_error_kind(input: &'a str, kind: ErrorKind) -> Self {
        Self {
            input,
            expected: None,
            kind,
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // The alternative that got further explains the failure better.
        if other.input.len() <= self.input.len() {
            other
        } else {
            self
        }
    }
}

impl<'a> ContextError<&'a str> for NomErr<'a> {
    fn add_context(_: &'a str, ctx: &'static str, mut other: Self) -> Self {
        if other.expected.is_none() {
            other.expected = Some(ctx);
        }
        other
    }
}

impl<'a, E> FromExternalError<&'a str, E> for NomErr<'a> {
    fn from_external_error(input: &'a str, kind: ErrorKind, _: E) -> Self {
        Self::from_error_kind(input, kind)
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a str, T, NomErr<'a>>;

/// One line of the input with the byte offset it starts at; the line excludes `\n` and a
/// trailing `\r`, so CRLF files parse like LF files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub offset: usize,
    pub text: &'a str,
}

impl<'a> Line<'a> {
    /// Leading spaces and tabs, counting a tab as one column like the tools' own output does.
    pub fn indent(&self) -> usize {
        self.text.len() - self.text.trim_start_matches([' ', '\t']).len()
    }

    pub fn trimmed(&self) -> &'a str {
        self.text.trim_matches([' ', '\t'])
    }

    pub fn is_blank(&self) -> bool {
        self.trimmed().is_empty()
    }

    /// The byte offset of a sub-slice of this line within the whole input.
    pub fn offset_of(&self, sub: &str) -> usize {
        let start = self.text.as_ptr() as usize;
        let at = sub.as_ptr() as usize;
        self.offset + at.saturating_sub(start).min(self.text.len())
    }
}

/// Splits `input` into lines with their offsets.
pub(crate) fn lines(input: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for raw in input.split_inclusive('\n') {
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        out.push(Line { offset, text });
        offset += raw.len();
    }
    out
}

/// Runs `parser` over the whole of `text` (a line or part of one) and positions any failure in
/// the original input.
pub(crate) fn run<'a, T>(
    format: &'static str,
    input: &str,
    line: &Line<'a>,
    text: &'a str,
    default_expected: &'static str,
    parser: impl Parser<&'a str, Output = T, Error = NomErr<'a>>,
) -> Result<T, ParseError> {
    match all_consuming(parser).parse(text) {
        Ok((_, value)) => Ok(value),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            let expected = e.expected.unwrap_or(match e.kind {
                ErrorKind::Eof => "end of line",
                _ => default_expected,
            });
            Err(ParseError::at(format, input, line.offset_of(e.input), expected))
        }
        Err(nom::Err::Incomplete(_)) => Err(ParseError::at(
            format,
            input,
            line.offset_of(text) + text.len(),
            default_expected,
        )),
    }
}

/// A key of a `key:value` token: letters, digits, `-` and `_`.
pub(crate) fn key(i: &str) -> PResult<'_, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_').parse(i)
}

/// A whitespace-free value; may be empty and may itself contain `:`.
pub(crate) fn value(i: &str) -> PResult<'_, &str> {
    take_till(|c: char| c == ' ' || c == '\t').parse(i)
}

/// `key:value` with no blanks around the colon, as DRBD prints it.
pub(crate) fn key_value(i: &str) -> PResult<'_, (&str, &str)> {
    context("`key:value`", separated_pair(key, char(':'), value)).parse(i)
}

/// Spaces and tabs.
pub(crate) fn blanks(i: &str) -> PResult<'_, &str> {
    take_while(|c: char| c == ' ' || c == '\t').parse(i)
}

/// At least one space or tab.
pub(crate) fn blanks1(i: &str) -> PResult<'_, &str> {
    context("a blank", take_while1(|c: char| c == ' ' || c == '\t')).parse(i)
}

/// A whitespace-free word.
pub(crate) fn word(i: &str) -> PResult<'_, &str> {
    take_while1(|c: char| !c.is_whitespace()).parse(i)
}

/// Parses an unsigned number; the caller has already committed to the field.
pub(crate) fn number(i: &str) -> PResult<'_, u64> {
    cut(context(
        "an unsigned number",
        nom::combinator::map_res(take_while1(|c: char| c.is_ascii_digit()), str::parse::<u64>),
    ))
    .parse(i)
}

/// Interprets a known numeric field's value, failing at the value's position if it is not one.
pub(crate) fn numeric_field(
    format: &'static str,
    input: &str,
    line: &Line<'_>,
    value: &str,
) -> Result<u64, ParseError> {
    value
        .parse::<u64>()
        .map_err(|_| ParseError::at(format, input, line.offset_of(value), "an unsigned number"))
}

/// Interprets a `yes`/`no` (or `true`/`false`) field.
pub(crate) fn yes_no(
    format: &'static str,
    input: &str,
    line: &Line<'_>,
    value: &str,
) -> Result<bool, ParseError> {
    match value {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(ParseError::at(
            format,
            input,
            line.offset_of(value),
            "`yes` or `no`",
        )),
    }
}

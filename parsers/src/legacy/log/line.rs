//! One log line of either generation, read in place: the 4.x `kv` header and fields, the 3.x
//! `legacy` header and field list, the `kubectl --prefix` source, and the word-at-a-time scans
//! they use. This is the hot path of the reader (see docs/performance.md): it allocates nothing
//! for a well-formed line, and its functions stay in this one module so that they inline as one.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use super::event::{Fields, LogEvent, LogFormat, LogRecord, MAX_FIELDS_LINE, Span};
use crate::ParseError;
use crate::legacy::{
    known_enum,
    time::{DateCache, MinuteCache},
};

known_enum! {
    /// A log line's level (`info`/`INFO` …).
    Level { Info = "info", Warn = "warn", Error = "error" }
}

known_enum! {
    /// The step that logged a line.
    Component {
        Main = "main", Config = "config", Snapshot = "snapshot", Bootstrap = "bootstrap",
        Network = "network", Storage = "storage", Migration = "migration", Taints = "taints",
        Boot = "boot", Upgrade = "upgrade", Report = "report", Init = "init", Finished = "finished",
    }
}

impl Level {
    fn from_upper(text: &str) -> Self {
        match text {
            "INFO" => Self::Info,
            "WARN" => Self::Warn,
            "ERROR" => Self::Error,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// What the line parsers keep from one line to the next: the buffer of field offsets and the
/// last minute read, of either time shape.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) spans: Vec<Span>,
    /// Where the node of the last 4.x line lies in it.
    pub(super) node_at: usize,
    minute: MinuteCache,
    date: DateCache,
}

/// Collects a line's field offsets while it is parsed, into a buffer the caller owns.
struct SpanSink<'a, 's> {
    line: &'a str,
    spans: &'s mut Vec<Span>,
}

impl<'a, 's> SpanSink<'a, 's> {
    fn new(line: &'a str, spans: &'s mut Vec<Span>) -> Self {
        spans.clear();
        Self { line, spans }
    }

    /// Stores a field given as offsets into the line, which `classify` has checked is at most
    /// [`MAX_FIELDS_LINE`] bytes long: the offsets fit a `u32` and the casts lose nothing. A key
    /// longer than `u16::MAX` bytes is cut to that.
    #[inline]
    fn push_at(&mut self, key: usize, key_len: usize, value: usize, value_len: usize, escaped: bool) {
        self.spans.push(Span {
            key: key as u32,
            key_len: key_len.min(usize::from(u16::MAX)) as u16,
            value: value as u32,
            value_len: value_len as u32,
            escaped,
        });
    }

    /// The line's fields, still without their offsets: the record outlives this borrow of
    /// the buffer, so the caller attaches the buffer's contents.
    fn finish(self) -> Fields<'a> {
        Fields {
            line: self.line,
            spans: Cow::Borrowed(&[]),
        }
    }
}

/// Where line recognition stopped: byte in the line and what was expected.
type Stop = (usize, &'static str);

/// Length of an `fkey` at the start of `s` (0 if none).
#[inline]
fn key_len(s: &[u8]) -> usize {
    if !s.first().is_some_and(u8::is_ascii_lowercase) {
        return 0;
    }
    s.iter().position(|c| !is_key_byte(*c)).unwrap_or(s.len())
}

// Word-at-a-time scanning, for bare values: their length varies from line to line, so a byte
// loop mispredicts its exit once per value, which is most of what it costs; eight bytes at a time,
// a value of up to eight bytes is one iteration whatever its length. (Measured on the benchmark's
// corpus: keys and header words are faster with a byte loop, whose exit the branch predictor
// learns as their lengths repeat, and messages with `memchr2`.)

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Up to eight bytes at `at` as a little-endian word (zeros past the end) and how many there were.
fn word8(b: &[u8], at: usize) -> (u64, usize) {
    if let Some(w) = b.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        return (u64::from_le_bytes(w), 8);
    }
    let tail = b.get(at..).unwrap_or(&[]);
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(tail) {
        *d = *s;
    }
    (u64::from_le_bytes(w), tail.len())
}

/// The high bit of each byte of `w` that equals `c`, exact up to the first such byte (the usual
/// "has zero byte" test: a borrow can only mark bytes above a real match).
fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (LOW_BITS * u64::from(c));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// The first byte at or after `from` that `stops` marks (it returns the high bit of each such
/// byte of a little-endian word, exact up to the first), eight bytes at a time.
#[inline]
fn scan8(b: &[u8], from: usize, stops: impl Fn(u64) -> u64) -> Option<usize> {
    let mut i = from;
    loop {
        let (w, n) = word8(b, i);
        let valid = if n >= 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let hits = stops(w) & valid;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        if n < 8 {
            return None;
        }
        i += 8;
    }
}

/// Where the 4.x bare value starting at `from` ends: the first space, or byte a bare value may
/// not hold (`"`, `\\`, `=`, tab), or `b.len()`.
fn bare_value_end(b: &[u8], from: usize) -> usize {
    scan8(b, from, |w| {
        bytes_equal(w, b' ')
            | bytes_equal(w, b'"')
            | bytes_equal(w, b'\\')
            | bytes_equal(w, b'=')
            | bytes_equal(w, b'\t')
    })
    .unwrap_or(b.len())
}

/// The first `"` or `\\` in `b` from `from`. (Measured: `memchr2` beats the word-at-a-time
/// scan here, where the message makes the token tens of bytes long.)
fn find_quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    memchr2(b'"', b'\\', b.get(from..)?).map(|i| from + i)
}

/// The closing quote of a 4.x quoted value whose inside starts at `from` in the line `b`, and
/// whether the value has `\\` escapes.
fn closing_quote(b: &[u8], from: usize) -> Result<(usize, bool), Stop> {
    let mut i = from;
    let mut escaped = false;
    loop {
        let Some(at) = find_quote_or_backslash(b, i) else {
            return Err((b.len(), "a closing `\"`"));
        };
        if b.get(at) == Some(&b'"') {
            return Ok((at, escaped));
        }
        escaped = true;
        i = at + 2;
        if i > b.len() {
            return Err((b.len(), "a character after `\\`"));
        }
    }
}

/// Which bytes may be in an `fkey`: `a`–`z`, `0`–`9`, `_`.
const KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        c += 1;
    }
    table
};

#[inline]
fn is_key_byte(c: u8) -> bool {
    KEY_BYTES[usize::from(c)]
}

/// The ` key=value` fields of a 4.x line from byte `at` (after the space that follows the
/// message) to the end, as offsets: the line is walked by index, and only the consumer makes
/// strings of what it reads.
fn kv_fields(b: &[u8], mut at: usize, sink: &mut SpanSink<'_, '_>) -> Result<(), Stop> {
    while at < b.len() {
        let key = at;
        let key_len = key_len(b.get(at..).unwrap_or(&[]));
        if key_len == 0 {
            return Err((at, "a field key"));
        }
        at += key_len;
        if b.get(at) != Some(&b'=') {
            return Err((at, "`=` after the field key"));
        }
        at += 1;
        let (value, value_len, escaped) = if b.get(at) == Some(&b'"') {
            let (end, escaped) = closing_quote(b, at + 1)?;
            let value = at + 1;
            at = end + 1;
            (value, end - value, escaped)
        } else {
            let end = bare_value_end(b, at);
            if b.get(end).is_some_and(|c| *c != b' ') {
                return Err((end, "a bare value (no quote, backslash, `=` or tab)"));
            }
            let value = at;
            at = end;
            (value, end - value, false)
        };
        sink.push_at(key, key_len, value, value_len, escaped);
        match b.get(at) {
            None => {}
            Some(b' ') => at += 1,
            Some(_) => return Err((at, "a space before the next field")),
        }
    }
    Ok(())
}

/// `prefix` then a bare word up to the next space, at `at` in `line`.
#[inline]
fn header_word<'a>(
    line: &'a str,
    at: usize,
    prefix: &'static str,
    what: &'static str,
) -> Result<(&'a str, usize), Stop> {
    let rest = line.get(at..).unwrap_or("");
    if !rest.starts_with(prefix) {
        return Err((at, what));
    }
    let from = at + prefix.len();
    let tail = line.get(from..).unwrap_or("");
    let end = tail
        .bytes()
        .position(|c| c == b' ')
        .ok_or((line.len(), "more of the line header"))?;
    Ok((tail.get(..end).unwrap_or(""), from + end))
}

/// A header word the contract lists, read without searching for its end: `prefix` at `at`, then
/// one of `known` followed by a space. Returns the value and where the space is. Measured: typing
/// the 4.x level and component this way, against a search for the word's end and a string match,
/// makes the whole benchmark 2–3 % faster (the loop over the known words unrolls into compares
/// with constants). The 3.x component read the same way was no faster.
#[inline(always)]
fn known_word<T>(
    line: &str,
    at: usize,
    prefix: &str,
    known: &[&str],
    make: impl Fn(&str) -> T,
) -> Option<(T, usize)> {
    let rest = line.as_bytes().get(at..)?.strip_prefix(prefix.as_bytes())?;
    let from = at + prefix.len();
    for word in known {
        if rest.get(word.len()) == Some(&b' ') && rest.starts_with(word.as_bytes()) {
            return Some((make(word), from + word.len()));
        }
    }
    None
}

fn parse_kv<'a>(
    line: &'a str,
    line_no: u64,
    source: Option<&'a str>,
    scratch: &mut Scratch,
) -> Result<LogEvent<'a>, Stop> {
    let ts = line.get(3..23).ok_or((3, "an RFC 3339 UTC time"))?;
    let time = scratch.minute.parse(ts).ok_or((3, "an RFC 3339 UTC time"))?;
    let (level, at) = match known_word(line, 23, " level=", Level::KNOWN, Level::from_text) {
        Some(known) => known,
        None => header_word(line, 23, " level=", "` level=`").map(|(w, at)| (Level::from_text(w), at))?,
    };
    let (node, at) = header_word(line, at, " node=", "` node=`")?;
    scratch.node_at = at - node.len();
    let (component, at) = match known_word(line, at, " component=", Component::KNOWN, Component::from_text) {
        Some(known) => known,
        None => header_word(line, at, " component=", "` component=`")
            .map(|(w, at)| (Component::from_text(w), at))?,
    };
    let rest = line.get(at..).unwrap_or("");
    if !rest.starts_with(" msg=\"") {
        return Err((at, "` msg=\"`"));
    }
    let (end, msg_escaped) = closing_quote(line.as_bytes(), at + 6)?;
    let msg = line.get(at + 6..end).unwrap_or("");
    let mut fields = SpanSink::new(line, &mut scratch.spans);
    match line.as_bytes().get(end + 1) {
        None => {}
        Some(b' ') => kv_fields(line.as_bytes(), end + 2, &mut fields)?,
        Some(_) => return Err((end + 1, "a space before the first field")),
    }
    Ok(LogEvent::Record(LogRecord {
        line: line_no,
        source,
        format: LogFormat::Kv,
        time,
        zone: "Z",
        level,
        node: Some(node).filter(|n| !n.is_empty()),
        component,
        msg_raw: (msg, msg_escaped),
        fields: fields.finish(),
    }))
}

/// The first `,` in `list` at or after `from`, eight bytes at a time: the values between commas
/// are a few bytes long, shorter than `memchr` takes to set up.
fn next_comma(list: &[u8], from: usize) -> Option<usize> {
    scan8(list, from, |w| bytes_equal(w, b','))
}

/// Finds the next `, <fkey>=` in `b[from..end]` (a 3.x field list); returns where the `, ` is
/// and the length of the key after it.
fn next_legacy_separator(b: &[u8], from: usize, end: usize) -> Option<(usize, usize)> {
    let list = b.get(..end)?;
    let mut from = from;
    while let Some(at) = next_comma(list, from) {
        if list.get(at + 1) != Some(&b' ') {
            from = at + 1;
            continue;
        }
        let after = list.get(at + 2..).unwrap_or(&[]);
        let k = key_len(after);
        if k > 0 && after.get(k) == Some(&b'=') {
            return Some((at, k));
        }
        from = at + 2;
    }
    None
}

/// The 3.x fields in `b[at..end]` (the inside of the parentheses, already known to start with
/// `fkey=`), as offsets: a value runs to the next `, <fkey>=`, so it may hold commas.
fn legacy_fields(b: &[u8], at: usize, end: usize, sink: &mut SpanSink<'_, '_>) {
    let mut key = at;
    let mut k = key_len(b.get(at..end).unwrap_or(&[]));
    while key < end {
        let value = key + k + 1;
        match next_legacy_separator(b, value, end) {
            Some((separator, next_k)) => {
                sink.push_at(key, k, value, separator.saturating_sub(value), false);
                key = separator + 2;
                k = next_k;
            }
            None => {
                sink.push_at(key, k, value, end.saturating_sub(value), false);
                break;
            }
        }
    }
}

/// Where the 3.x field list ` (k=v, …)` starts in `text`, if it has one.
fn legacy_fields_start(text: &str) -> Option<usize> {
    if !text.ends_with(')') {
        return None;
    }
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = b.get(from..).and_then(|t| memchr(b'(', t)) {
        let paren = from + i;
        from = paren + 1;
        if paren == 0 || b.get(paren - 1) != Some(&b' ') {
            continue;
        }
        let at = paren - 1;
        let after = b.get(at + 2..).unwrap_or(&[]);
        let k = key_len(after);
        if k > 0 && after.get(k) == Some(&b'=') {
            return Some(at);
        }
    }
    None
}

fn parse_legacy<'a>(
    line: &'a str,
    line_no: u64,
    source: Option<&'a str>,
    scratch: &mut Scratch,
) -> Result<LogEvent<'a>, Stop> {
    let (time, zone, at) = scratch
        .date
        .parse(line)
        .map_err(|at| (at, "a `date` time (`Thu Jan  1 00:00:00 UTC 2026`)"))?;
    let rest = line.get(at..).unwrap_or("");
    let rest = rest.strip_prefix(" [").ok_or((at, "` [LEVEL]`"))?;
    let close = memchr(b']', rest.as_bytes()).ok_or((at + 2, "`]` after the level"))?;
    let level = rest.get(..close).unwrap_or("");
    let at = at + 2 + close + 1;
    let rest = line.get(at..).unwrap_or("");
    let rest = rest.strip_prefix(' ').ok_or((at, "a space after the level"))?;
    let comp_len = rest
        .bytes()
        .position(|c| !(c.is_ascii_lowercase() || c == b'_' || c == b'-'))
        .unwrap_or(rest.len());
    if comp_len == 0 {
        return Err((at + 1, "a component"));
    }
    let component = rest.get(..comp_len).unwrap_or("");
    let text = rest
        .get(comp_len..)
        .and_then(|t| t.strip_prefix(": "))
        .ok_or((at + 1 + comp_len, "`: ` after the component"))?;
    let mut fields = SpanSink::new(line, &mut scratch.spans);
    let msg = match legacy_fields_start(text) {
        None => text,
        Some(start) => {
            let text_at = line.len() - text.len();
            legacy_fields(line.as_bytes(), text_at + start + 2, line.len() - 1, &mut fields);
            text.get(..start).unwrap_or("")
        }
    };
    Ok(LogEvent::Record(LogRecord {
        line: line_no,
        source,
        format: LogFormat::Legacy,
        time,
        zone,
        level: Level::from_upper(level),
        node: None,
        component: Component::from_text(component),
        msg_raw: (msg, false),
        fields: fields.finish(),
    }))
}

/// Splits a `[pod/<pod>/<container>] ` prefix off a line.
pub(super) fn split_source(line: &str) -> (Option<&str>, &str) {
    if !line.starts_with('[') {
        return (None, line);
    }
    let b = line.as_bytes();
    match memchr(b']', b) {
        Some(end) if b.get(end + 1) == Some(&b' ') => {
            let inner = line.get(1..end).unwrap_or("");
            // `[INFO]`-like words are not sources: a source names a pod and so has a `/`.
            if inner.contains('/') && !inner.contains(' ') {
                (Some(inner), line.get(end + 2..).unwrap_or(""))
            } else {
                (None, line)
            }
        }
        _ => (None, line),
    }
}

pub(super) fn classify<'a>(
    line: &'a str,
    line_no: u64,
    source: Option<&'a str>,
    scratch: &mut Scratch,
) -> Result<LogEvent<'a>, Stop> {
    if line.len() > MAX_FIELDS_LINE {
        return Err((MAX_FIELDS_LINE, "a line of at most 4 GiB"));
    }
    if line.starts_with("ts=") {
        parse_kv(line, line_no, source, scratch)
    } else {
        parse_legacy(line, line_no, source, scratch)
    }
}

/// Parses one log line of either generation (a `kubectl --prefix` prefix is allowed).
pub fn parse_log_line(input: &str) -> Result<LogRecord<'_>, ParseError> {
    let line = crate::legacy::trim_final_newline(input);
    if let Some(nl) = line.find('\n') {
        return Err(ParseError::at(
            "legacy-log-line",
            input,
            nl,
            "the end of the line",
        ));
    }
    let (source, body) = split_source(line);
    let base = line.len() - body.len();
    let mut scratch = Scratch::default();
    match classify(body, 1, source, &mut scratch) {
        Ok(LogEvent::Record(mut record)) => {
            record.fields.spans = Cow::Owned(scratch.spans);
            Ok(record)
        }
        // The line parsers make records only; anything else would be a line that is not one.
        Ok(_) => Err(ParseError::at("legacy-log-line", input, base, "a log line")),
        Err((at, expected)) => Err(ParseError::at("legacy-log-line", input, base + at, expected)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_at_a_time_scan_stops_where_a_byte_loop_stops_for_every_byte_at_every_place() {
        let stop = |c: u8| matches!(c, b' ' | b'"' | b'\\' | b'=' | b'\t');
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut b = vec![b'v'; len];
                    b[at] = byte;
                    // A second stop byte further on must not hide or move the first.
                    if at + 3 < len {
                        b[at + 3] = b' ';
                    }
                    for from in 0..=len {
                        let by_bytes = b[from..].iter().position(|c| stop(*c)).map_or(len, |i| from + i);
                        assert_eq!(bare_value_end(&b, from), by_bytes, "{b:?} from {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_comma_scan_finds_the_comma_memchr_finds_from_every_start() {
        for len in 0..24 {
            for at in 0..len {
                for second in [None, Some(at + 1), Some(at + 8)] {
                    let mut b = vec![b'v'; len];
                    b[at] = b',';
                    if let Some(c) = second.and_then(|s| b.get_mut(s)) {
                        *c = b',';
                    }
                    for from in 0..=len {
                        let expected = memchr(b',', &b[from..]).map(|i| from + i);
                        assert_eq!(next_comma(&b, from), expected, "{b:?} from {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_3x_value_runs_to_the_next_comma_space_key_equals() {
        let fields = |line: &str| -> Vec<(String, String)> {
            let record = parse_log_line(line).expect("a 3.x line");
            record
                .fields
                .iter()
                .map(|f| (f.key.to_owned(), f.raw.to_owned()))
                .collect()
        };
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let head = "Thu Feb  5 10:00:00 UTC 2026 [INFO] storage: resync";
        assert_eq!(
            fields(&format!(
                "{head} (nodes=edge-1,edge-2, note=a, b, c=, d=1,e=2, Last=x, rc=0)"
            )),
            owned(&[
                ("nodes", "edge-1,edge-2"),
                ("note", "a, b"),
                ("c", ""),
                ("d", "1,e=2, Last=x"),
                ("rc", "0")
            ])
        );
        assert_eq!(fields(&format!("{head} (only=one)")), owned(&[("only", "one")]));
        assert_eq!(
            fields(&format!("{head} (a=,, b=,,, c=x,)")),
            owned(&[("a", ","), ("b", ",,"), ("c", "x,")])
        );
    }

    #[test]
    fn a_4x_level_and_component_read_as_known_words_type_the_same_as_the_string_match() {
        let line = |level: &str, component: &str| {
            format!("ts=2026-02-01T00:00:07Z level={level} node=edge-1 component={component} msg=\"m\" k=v")
        };
        let words = Level::KNOWN
            .iter()
            .chain(["debug", "infox", "inf", "INFO", ""].iter());
        for level in words {
            let text = line(level, "main");
            let record = parse_log_line(&text).expect("a 4.x line");
            assert_eq!(record.level, Level::from_text(level), "level {level:?}");
            assert_eq!(record.message(), "m");
        }
        let words = Component::KNOWN
            .iter()
            .chain(["mainline", "boo", "net-work", ""].iter());
        for component in words {
            let text = line("warn", component);
            let record = parse_log_line(&text).expect("a 4.x line");
            assert_eq!(
                record.component,
                Component::from_text(component),
                "component {component:?}"
            );
            assert_eq!(record.fields.get("k").map(|f| f.raw), Some("v"));
        }
        let cut = "ts=2026-02-01T00:00:07Z level=info";
        let err = parse_log_line(cut).unwrap_err().to_string();
        assert!(
            err.contains("column 35 (byte 34): expected more of the line header"),
            "{err}"
        );
    }
}

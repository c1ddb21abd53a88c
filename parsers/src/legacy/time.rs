//! The two timestamp shapes of the legacy script: RFC 3339 UTC (`date -u +%Y-%m-%dT%H:%M:%SZ`,
//! used by 4.x log lines and outside blobs) and the C-locale `date` of 3.x log lines
//! (`Thu Jan  1 00:00:00 UTC 2026`). Both parse without allocating.

use serde::{Serialize, Serializer};

/// A wall-clock time as the script printed it, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–60 (60 for a leap second).
    pub second: u8,
    /// Whether the time is UTC (`Z`, or a 3.x line whose zone is `UTC`/`GMT`).
    pub utc: bool,
}

impl Timestamp {
    /// Seconds since the Unix epoch, when the time is known to be UTC.
    pub fn unix_seconds(&self) -> Option<i64> {
        if !self.utc {
            return None;
        }
        // Days from civil, proleptic Gregorian (H. Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(
            days * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second),
        )
    }

    fn valid(self) -> Option<Self> {
        let ok = (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60;
        ok.then_some(self)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            if self.utc { "Z" } else { "" }
        ))
    }
}

fn digits2(b: &[u8], at: usize) -> Option<u8> {
    let hi = b.get(at)?.checked_sub(b'0').filter(|d| *d < 10)?;
    let lo = b.get(at + 1)?.checked_sub(b'0').filter(|d| *d < 10)?;
    Some(hi * 10 + lo)
}

fn digits4(b: &[u8], at: usize) -> Option<u16> {
    let hi = digits2(b, at)?;
    let lo = digits2(b, at + 2)?;
    Some(u16::from(hi) * 100 + u16::from(lo))
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

/// `hh:mm:ss` at `at`.
fn clock(b: &[u8], at: usize) -> Option<(u8, u8, u8)> {
    let h = digits2(b, at)?;
    expect(b, at + 2, b':')?;
    let m = digits2(b, at + 3)?;
    expect(b, at + 5, b':')?;
    let s = digits2(b, at + 6)?;
    Some((h, m, s))
}

/// Parses the `heartbeat` value of a `vx-rail-node-<node>` ConfigMap: one RFC 3339 UTC time,
/// `yyyy-mm-ddThh:mm:ssZ` (`date -u +%Y-%m-%dT%H:%M:%SZ`). One trailing line ending is accepted.
pub fn parse_heartbeat(input: &str) -> Result<Timestamp, crate::ParseError> {
    parse_rfc3339(super::trim_final_newline(input)).ok_or_else(|| {
        crate::ParseError::at(
            "legacy-heartbeat",
            input,
            0,
            "an RFC 3339 UTC time (`yyyy-mm-ddThh:mm:ssZ`)",
        )
    })
}

/// Parses exactly `yyyy-mm-ddThh:mm:ssZ` (20 bytes). Every 4.x line starts with one; [`MinuteCache`]
/// calls it once per minute of a log. It works on a fixed-size array: constant indices need no
/// bounds checks.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b: &[u8; 20] = s.as_bytes().try_into().ok()?;
    let d = |i: usize| -> Option<u8> {
        let v = b.get(i)?.wrapping_sub(b'0');
        (v < 10).then_some(v)
    };
    let two = |i: usize| -> Option<u8> { Some(d(i)? * 10 + d(i + 1)?) };
    let punct_ok =
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z';
    if !punct_ok {
        return None;
    }
    Timestamp {
        year: u16::from(two(0)?) * 100 + u16::from(two(2)?),
        month: two(5)?,
        day: two(8)?,
        hour: two(11)?,
        minute: two(14)?,
        second: two(17)?,
        utc: true,
    }
    .valid()
}

/// The minute of the last RFC 3339 time read, so that a log's lines, which mostly share their
/// minute with the line before, read only their seconds.
#[derive(Default)]
pub(crate) struct MinuteCache {
    last: Option<([u8; 16], Timestamp)>,
}

impl MinuteCache {
    /// [`parse_rfc3339`], remembering the minute.
    pub(crate) fn parse(&mut self, s: &str) -> Option<Timestamp> {
        let b: &[u8; 20] = s.as_bytes().try_into().ok()?;
        let minute: &[u8; 16] = b.first_chunk()?;
        if let Some((last, t)) = &self.last
            && minute == last
            && let Some([b':', hi @ b'0'..=b'9', lo @ b'0'..=b'9', b'Z']) = b.last_chunk::<4>()
        {
            let second = (*hi - b'0') * 10 + (*lo - b'0');
            return (second <= 60).then_some(Timestamp { second, ..*t });
        }
        let t = parse_rfc3339(s)?;
        self.last = Some((*minute, t));
        Some(t)
    }
}

/// The minute of the last 3.x `date` time read, for the same purpose as [`MinuteCache`]: the
/// bytes before the seconds (`Thu Jan  1 00:00`) and after them (` UTC 2026`) are compared, and
/// only the seconds are read.
#[derive(Default)]
pub(crate) struct DateCache {
    last: Option<DateMinute>,
}

struct DateMinute {
    head: [u8; 16],
    tail: [u8; 16],
    tail_len: usize,
    time: Timestamp,
}

impl DateCache {
    /// [`parse_c_date`], remembering the minute.
    pub(crate) fn parse<'a>(&mut self, s: &'a str) -> Result<(Timestamp, &'a str, usize), usize> {
        let b = s.as_bytes();
        if let Some(last) = &self.last
            && b.first_chunk::<16>() == Some(&last.head)
            && let Some([b':', hi @ b'0'..=b'9', lo @ b'0'..=b'9']) =
                b.get(16..19).and_then(|t| t.first_chunk::<3>())
            && b.get(19..19 + last.tail_len) == last.tail.get(..last.tail_len)
        {
            let second = (*hi - b'0') * 10 + (*lo - b'0');
            // The tail is ` <zone> <year>`: the zone is what lies between its two spaces.
            let zone = s.get(20..19 + last.tail_len - 5).ok_or(20usize)?;
            if second <= 60 {
                return Ok((Timestamp { second, ..last.time }, zone, 19 + last.tail_len));
            }
        }
        let (time, zone, used) = parse_c_date(s)?;
        let mut tail = [0u8; 16];
        let tail_len = used - 19;
        self.last = match (b.first_chunk::<16>(), b.get(19..used)) {
            (Some(head), Some(t)) if t.len() <= tail.len() => {
                for (d, c) in tail.iter_mut().zip(t) {
                    *d = *c;
                }
                Some(DateMinute {
                    head: *head,
                    tail,
                    tail_len,
                    time,
                })
            }
            _ => None,
        };
        Ok((time, zone, used))
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// Parses the start of a 3.x line, `Thu Jan  1 00:00:00 UTC 2026`: returns the time, the zone
/// as printed and how many bytes it took; `Err` carries the byte where it stopped.
pub(crate) fn parse_c_date(s: &str) -> Result<(Timestamp, &str, usize), usize> {
    let b = s.as_bytes();
    let dow = b.get(0..3).ok_or(0usize)?;
    if !DAYS.iter().any(|d| d.as_slice() == dow) {
        return Err(0);
    }
    expect(b, 3, b' ').ok_or(3usize)?;
    let mon = b.get(4..7).ok_or(4usize)?;
    let month = MONTHS.iter().position(|m| m.as_slice() == mon).ok_or(4usize)?;
    expect(b, 7, b' ').ok_or(7usize)?;
    let day = match (b.get(8), b.get(9)) {
        (Some(b' '), Some(d)) if d.is_ascii_digit() => d - b'0',
        _ => digits2(b, 8).ok_or(8usize)?,
    };
    expect(b, 10, b' ').ok_or(10usize)?;
    let (hour, minute, second) = clock(b, 11).ok_or(11usize)?;
    expect(b, 19, b' ').ok_or(19usize)?;
    let zone_len = b
        .get(20..)
        .unwrap_or(&[])
        .iter()
        .position(|c| *c == b' ')
        .ok_or(20usize)?;
    if zone_len == 0 {
        return Err(20);
    }
    let zone = s.get(20..20 + zone_len).ok_or(20usize)?;
    let year_at = 20 + zone_len + 1;
    let year = digits4(b, year_at).ok_or(year_at)?;
    let ts = Timestamp {
        year,
        month: u8::try_from(month + 1).unwrap_or(0),
        day,
        hour,
        minute,
        second,
        utc: zone == "UTC" || zone == "GMT",
    }
    .valid()
    .ok_or(8usize)?;
    Ok((ts, zone, year_at + 4))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_heartbeat_is_one_utc_time_and_anything_else_is_refused_at_its_start() {
        let t = parse_heartbeat("2024-05-01T10:05:02Z\n").unwrap();
        assert_eq!(t.unix_seconds(), Some(1_714_557_902));
        let e = parse_heartbeat("yesterday").unwrap_err();
        assert_eq!((e.format, e.line, e.column), ("legacy-heartbeat", 1, 1));
        assert!(parse_heartbeat("2024-05-01 10:05:02").is_err());
    }
    use super::*;

    #[test]
    fn rfc3339_and_c_date_agree_on_the_epoch() {
        let a = parse_rfc3339("2026-01-01T00:00:30Z").unwrap();
        let (b, zone, used) = parse_c_date("Thu Jan  1 00:00:30 UTC 2026 [INFO]").unwrap();
        assert_eq!(a, b);
        assert_eq!((zone, used), ("UTC", 28));
        assert_eq!(a.unix_seconds(), Some(1_767_225_630));
    }

    /// The obvious byte-by-byte reading of `yyyy-mm-ddThh:mm:ssZ`, to hold the word-wise one to.
    fn rfc3339_by_bytes(s: &[u8]) -> Option<Timestamp> {
        if s.len() != 20 {
            return None;
        }
        for (i, c) in s.iter().enumerate() {
            let ok = match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            };
            if !ok {
                return None;
            }
        }
        let n = |i: usize| (s[i] - b'0') * 10 + (s[i + 1] - b'0');
        Timestamp {
            year: u16::from(n(0)) * 100 + u16::from(n(2)),
            month: n(5),
            day: n(8),
            hour: n(11),
            minute: n(14),
            second: n(17),
            utc: true,
        }
        .valid()
    }

    #[test]
    fn every_single_byte_change_of_an_rfc3339_time_reads_as_the_byte_by_byte_parser_reads_it() {
        for good in [
            "2026-02-03T04:05:06Z",
            "1999-12-31T23:59:60Z",
            "2000-01-01T00:00:00Z",
        ] {
            for at in 0..20 {
                for byte in 0..=255u8 {
                    let mut b = good.as_bytes().to_vec();
                    b[at] = byte;
                    let Ok(text) = std::str::from_utf8(&b) else {
                        continue;
                    };
                    assert_eq!(parse_rfc3339(text), rfc3339_by_bytes(&b), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn a_time_read_through_the_minute_cache_is_the_time_read_without_it() {
        let mut cache = MinuteCache::default();
        let times = [
            "2026-02-03T04:05:06Z",
            "2026-02-03T04:05:07Z",
            "2026-02-03T04:05:60Z",
            "2026-02-03T04:05:61Z",
            "2026-02-03T04:05:6xZ",
            "2026-02-03T04:05:08+",
            "2026-02-03T04:05;08Z",
            "2026-02-03T04:06:00Z",
            "2026-02-03T04:05:09Z",
            "2026-02-03T24:05:09Z",
            "2026-02-03T04:05:10Z",
            "2026-02-03T04:05",
        ];
        for t in times {
            assert_eq!(cache.parse(t), parse_rfc3339(t), "{t}");
        }
    }

    #[test]
    fn a_date_read_through_the_minute_cache_is_the_date_read_without_it() {
        let mut cache = DateCache::default();
        let dates = [
            "Thu Jan  1 00:00:30 UTC 2026 [INFO]",
            "Thu Jan  1 00:00:31 UTC 2026 [INFO]",
            "Thu Jan  1 00:00:61 UTC 2026 [INFO]",
            "Thu Jan  1 00:00:3x UTC 2026 [INFO]",
            "Thu Jan  1 00:00:32 CET 2026 [INFO]",
            "Thu Jan  1 00:00:33 UTC 2027 [INFO]",
            "Thu Jan  1 00:00:34 UTC 2026",
            "Thu Jan  1 00:00:35 UTC 202",
            "Thu Jan  1 00:00:36 EEST 2026 [WARN]",
            "Thu Jan  1 00:00:37 EEST 2026 [WARN]",
            "Thu Jan  1 00:00:38 EES 2026 [WARN]",
            "Thu Jan  1 00:01:00 UTC 2026 [INFO]",
            "Thu Jan  1 00:00",
        ];
        for d in dates {
            assert_eq!(cache.parse(d), parse_c_date(d), "{d}");
        }
    }

    #[test]
    fn out_of_range_fields_are_rejected() {
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("2026-01-01T24:00:00Z").is_none());
        assert!(parse_c_date("Thu Foo  1 00:00:00 UTC 2026").is_err());
    }
}

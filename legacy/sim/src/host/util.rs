//! Small deterministic helpers shared by the simulated tools: the PRNG, civil time, sizes, JSON.
//!
//! Nothing here reads the wall clock or the environment; every value derives from the world's
//! seed and simulated clock.

use serde::{Deserialize, Serialize};

/// A splitmix64 generator: tiny, seedable and stable across platforms, which is all a
/// reproducible simulation needs (no cryptographic quality is wanted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A random version-4 UUID in its canonical text form.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }

    /// A locally administered unicast MAC address under the QEMU prefix.
    pub fn mac(&mut self) -> String {
        let v = self.next_u64();
        format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            (v >> 16) & 0xFF,
            (v >> 8) & 0xFF,
            v & 0xFF
        )
    }

    /// Forty lowercase hex digits, the shape of a git commit hash.
    pub fn git_hash(&mut self) -> String {
        let mut s = String::new();
        while s.len() < 40 {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(40);
        s
    }
}

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1-based day of the year.
    pub yday: u32,
}

/// Converts epoch seconds to UTC civil time (the proleptic Gregorian algorithm from
/// H. Hinnant's `civil_from_days`, exact for every representable day).
pub fn civil(epoch: i64) -> Civil {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    let weekday = (days + 4).rem_euclid(7);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let mut yday = cum[(m - 1) as usize] + d;
    if leap && m > 2 {
        yday += 1;
    }
    Civil {
        year,
        month: m as u32,
        day: d as u32,
        hour: (secs / 3600) as u32,
        minute: ((secs / 60) % 60) as u32,
        second: (secs % 60) as u32,
        weekday: weekday as u32,
        yday: yday as u32,
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form LINSTOR prints for creation times.
pub fn ymd_hms(epoch: i64) -> String {
    let c = civil(epoch);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// LINSTOR's `SizeCalc.approximate_size_string`: two decimals in the largest binary unit that
/// keeps the value at or above one.
pub fn approx_size_kib(kib: u64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = kib as f64;
    let mut idx = 0;
    while value >= 1024.0 && idx + 1 < units.len() {
        value /= 1024.0;
        idx += 1;
    }
    format!("{value:.2} {}", units[idx])
}

/// A JSON string literal, escaped the way iproute2's json writer escapes.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object assembled in insertion order, because iproute2 prints keys in a fixed order
/// and byte-level comparisons depend on it.
#[derive(Debug, Default)]
pub struct JsonObj {
    parts: Vec<String>,
}

impl JsonObj {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a string member.
    pub fn s(mut self, k: &str, v: &str) -> Self {
        self.parts.push(format!("{}:{}", json_str(k), json_str(v)));
        self
    }
    /// Adds a numeric member.
    pub fn n(mut self, k: &str, v: i64) -> Self {
        self.parts.push(format!("{}:{}", json_str(k), v));
        self
    }
    /// Adds a boolean member.
    pub fn b(mut self, k: &str, v: bool) -> Self {
        self.parts.push(format!("{}:{}", json_str(k), v));
        self
    }
    /// Adds a member whose value is already JSON.
    pub fn raw(mut self, k: &str, v: String) -> Self {
        self.parts.push(format!("{}:{}", json_str(k), v));
        self
    }
    /// The object's text.
    pub fn build(self) -> String {
        format!("{{{}}}", self.parts.join(","))
    }
}

/// A JSON array of already-encoded values.
pub fn json_arr(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_matches_known_dates() {
        let c = civil(1_795_576_086);
        assert_eq!((c.year, c.month, c.day), (2026, 11, 25));
        assert_eq!((c.hour, c.minute, c.second), (3, 8, 6));
        assert_eq!(c.weekday, 3);
        assert_eq!(civil(0).weekday, 4);
        assert_eq!(civil(951_782_400).yday, 60);
    }

    #[test]
    fn sizes_are_approximated_like_linstor() {
        assert_eq!(approx_size_kib(1_048_576), "1.00 GiB");
        assert_eq!(approx_size_kib(398_259_077), "379.81 GiB");
        assert_eq!(approx_size_kib(512), "512.00 KiB");
    }

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.mac(), b.mac());
    }
}

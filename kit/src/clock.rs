//! The clock: wall-clock time in Unix seconds, as the processes stamp status and compare the legacy
//! script's timestamps, and its spelling as a Kubernetes `Time`.
//!
//! Decisions never read the clock themselves: a process loop reads [`unix_now`] once per turn and
//! passes the value down, so that every pure function can be tested at any time it is given.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The current time in Unix seconds (0 for a clock set before 1970, never a panic).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `unix` seconds as a Kubernetes `Time`; a value outside the representable range becomes the epoch.
pub fn time(unix: i64) -> Time {
    Time(Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_an_rfc3339_time() {
        assert_eq!(time(1_790_000_000).0.to_string(), "2026-09-21T14:13:20Z");
    }

    #[test]
    fn an_unrepresentable_time_becomes_the_epoch_instead_of_panicking() {
        assert_eq!(time(i64::MAX).0, Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn the_clock_reads_a_time_after_this_code_was_written() {
        assert!(unix_now() > 1_790_000_000);
    }
}

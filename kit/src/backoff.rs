//! Backoff with jitter for every loop that retries a call or reconnects a stream: exponential
//! delays between a floor and a ceiling, each one jittered so that many replicas (or many pods'
//! log streams) that failed together do not retry together. The delays come from `backon`; this
//! module only keeps the project's defaults and the "start again after a success" that a
//! long-running reconnect loop needs.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays for one retry loop: call [`Backoff::next_delay`] after each failure and
/// [`Backoff::reset`] after a success. It never gives up; a loop that should stop decides so
/// itself (on shutdown, or on an error that a retry cannot fix).
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// Delays that start at `initial`, double after each failure and stop growing at `max`, each
    /// with up to as much again of random jitter (so at most `2 × max`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        let builder = ExponentialBuilder::default()
            .with_min_delay(initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoff {
            delays: builder.build(),
            builder,
            max,
        }
    }

    /// The delay to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        // Without a limit on the number of attempts the iterator does not end; should it ever,
        // keep waiting the longest delay rather than retrying in a busy loop.
        self.delays.next().unwrap_or(self.max)
    }

    /// The last attempt succeeded: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(backoff: &mut Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| backoff.next_delay()).collect()
    }

    #[test]
    fn delays_grow_from_the_floor_to_the_ceiling_within_their_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d = delays(&mut b, 12);
        // Each delay is its base (100 ms doubling, capped at 1 s) plus a jitter of at most the base.
        let bases = [
            100u64, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
        ];
        for (delay, base) in d.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(
                *delay >= base && *delay <= base * 2,
                "{delay:?} not within [{base:?}, {:?}]",
                base * 2
            );
        }
    }

    #[test]
    fn jitter_spreads_the_delays_of_loops_that_failed_together() {
        let firsts: std::collections::BTreeSet<Duration> = (0..32)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).next_delay())
            .collect();
        assert!(
            firsts.len() > 1,
            "32 loops all chose the same first delay: {firsts:?}"
        );
    }

    #[test]
    fn a_success_starts_the_delays_again_from_the_floor() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let _ = delays(&mut b, 6);
        b.reset();
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(200), "{first:?}");
    }

    #[test]
    fn the_loop_never_runs_out_of_delays() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(2));
        assert!(
            delays(&mut b, 10_000)
                .iter()
                .all(|d| *d >= Duration::from_millis(1))
        );
    }
}

//! The agent's Prometheus metrics, served by the kit's admin server on `--admin-addr`
//! (`/metrics`, `/healthz`, `/readyz`): steps by result, step durations, the journal's size.
//!
//! Boundaries: a registry of its own and plain values in; no I/O (the journal's size in bytes is
//! read by the caller). The agent runs on every node, so no family has a `node` label: each
//! agent's scrape target (its pod) says which node it is.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Buckets of `step_duration_seconds`: host steps run from a fraction of a second (a check that
/// finds the step done) to the minutes of a package install.
const STEP_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// How a step ended, as the `result` label of `steps_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// The step (or its check) succeeded.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// It ran out of time with its outcome unknown until its check runs.
    TimedOut,
    /// It did not complete for another reason (its thread died), its outcome unknown.
    Unknown,
    /// It was not run because the journal could not be written.
    JournalFailed,
}

impl StepResult {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            StepResult::Succeeded => "succeeded",
            StepResult::Failed => "failed",
            StepResult::TimedOut => "timed-out",
            StepResult::Unknown => "unknown",
            StepResult::JournalFailed => "journal-failed",
        }
    }
}

/// The agent's metrics, in a registry of their own (prefix `nodewright_agent_`).
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    registry: Registry,
    steps: IntCounterVec,
    durations: HistogramVec,
    journal_entries: IntGauge,
    journal_bytes: IntGauge,
}

impl AgentMetrics {
    /// Registers the families.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("nodewright_agent".to_owned()), None)?;
        let steps = IntCounterVec::new(
            Opts::new(
                "steps_total",
                "Host steps the agent ran, by step and result (succeeded, failed, timed-out, unknown, journal-failed).",
            ),
            &["step", "result"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new("step_duration_seconds", "Time a host step ran, by step.")
                .buckets(STEP_BUCKETS.to_vec()),
            &["step"],
        )?;
        let journal_entries = IntGauge::new(
            "journal_entries",
            "Records in the agent's journal file (compaction brings it down).",
        )?;
        let journal_bytes = IntGauge::new("journal_size_bytes", "Size of the agent's journal file.")?;
        registry.register(Box::new(steps.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(journal_entries.clone()))?;
        registry.register(Box::new(journal_bytes.clone()))?;
        Ok(AgentMetrics {
            registry,
            steps,
            durations,
            journal_entries,
            journal_bytes,
        })
    }

    /// The registry, to serve or to read in tests.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one step of `step` that ended with `result` and, when it ran, records how long.
    pub fn step(&self, step: &str, result: StepResult, ran_for: Option<Duration>) {
        self.steps.with_label_values(&[step, result.label()]).inc();
        if let Some(d) = ran_for {
            self.durations.with_label_values(&[step]).observe(d.as_secs_f64());
        }
    }

    /// Sets the journal's record count and size in bytes.
    pub fn journal(&self, entries: usize, bytes: u64) {
        self.journal_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.journal_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_kit::admin::Encode as _;

    #[test]
    fn steps_are_counted_by_result_and_timed_when_they_ran() {
        let m = AgentMetrics::new().unwrap();
        m.step(
            "install-packages",
            StepResult::Succeeded,
            Some(Duration::from_secs(3)),
        );
        m.step(
            "install-packages",
            StepResult::Failed,
            Some(Duration::from_millis(200)),
        );
        m.step("install-packages", StepResult::JournalFailed, None);
        m.journal(12, 3456);
        let text = m.registry().encode().unwrap();
        for line in [
            "nodewright_agent_steps_total{result=\"succeeded\",step=\"install-packages\"} 1",
            "nodewright_agent_steps_total{result=\"failed\",step=\"install-packages\"} 1",
            "nodewright_agent_steps_total{result=\"journal-failed\",step=\"install-packages\"} 1",
            "nodewright_agent_step_duration_seconds_count{step=\"install-packages\"} 2",
            "nodewright_agent_step_duration_seconds_bucket{step=\"install-packages\",le=\"5\"} 2",
            "nodewright_agent_step_duration_seconds_bucket{step=\"install-packages\",le=\"2.5\"} 1",
            "nodewright_agent_journal_entries 12",
            "nodewright_agent_journal_size_bytes 3456",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}

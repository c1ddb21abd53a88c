//! Running a bounded check and collecting what it found, for the tests and the command alike.

use std::hash::Hash;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries};

use crate::trace::{Explain, Trace, explain};

/// How far a check explores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The longest sequence of steps explored (breadth first, so every shorter one is explored too).
    pub depth: usize,
    /// Checker threads.
    pub threads: usize,
}

/// What a bounded check found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Distinct states explored.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub states: usize,
    /// The deepest level reached (at most the depth bound).
    pub max_depth: usize,
    /// Wall-clock time of the check.
    pub elapsed: Duration,
    /// One counterexample per broken `always` property, shortest first found (breadth first).
    pub counterexamples: Vec<Trace>,
    /// The `sometimes` properties reached within the bounds, with an example each.
    pub reached: Vec<Trace>,
    /// The `sometimes` properties not reached within the bounds: the model did not get where it was
    /// meant to go, so a pass says less than it seems.
    pub unreached: Vec<&'static str>,
}

impl Outcome {
    /// The counterexample for `property`, if it was broken.
    pub fn counterexample(&self, property: &str) -> Option<&Trace> {
        self.counterexamples.iter().find(|t| t.property == property)
    }
}

/// Explores `model` breadth first up to `bounds`, and explains every discovery.
pub fn run<M>(model: M, bounds: Bounds) -> Outcome
where
    M: Explain + Send + Sync + Clone + 'static,
    M::State: Hash + Send + Sync + Clone + PartialEq + std::fmt::Debug,
    M::Action: Clone + PartialEq + std::fmt::Debug,
{
    explore(model, bounds, HasDiscoveries::All)
}

/// Like [`run`], but stops as soon as `property` has a discovery (a counterexample for an `always`
/// property): for checks that expect one, such as a seeded bug's.
pub fn run_until<M>(model: M, bounds: Bounds, property: &'static str) -> Outcome
where
    M: Explain + Send + Sync + Clone + 'static,
    M::State: Hash + Send + Sync + Clone + PartialEq + std::fmt::Debug,
    M::Action: Clone + PartialEq + std::fmt::Debug,
{
    explore(model, bounds, HasDiscoveries::AnyOf([property].into()))
}

fn explore<M>(model: M, bounds: Bounds, finish_when: HasDiscoveries) -> Outcome
where
    M: Explain + Send + Sync + Clone + 'static,
    M::State: Hash + Send + Sync + Clone + PartialEq + std::fmt::Debug,
    M::Action: Clone + PartialEq + std::fmt::Debug,
{
    let properties = model.properties();
    let explainer = model.clone();
    let started = Instant::now();
    let checker = model
        .checker()
        .threads(bounds.threads.max(1))
        .target_max_depth(bounds.depth)
        .finish_when(finish_when)
        .spawn_bfs()
        .join();
    let elapsed = started.elapsed();
    let mut discoveries = checker.discoveries();
    let mut outcome = Outcome {
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        counterexamples: Vec::new(),
        reached: Vec::new(),
        unreached: Vec::new(),
    };
    for p in properties {
        match (discoveries.remove(p.name), p.expectation) {
            (Some(path), Expectation::Sometimes) => {
                outcome.reached.push(explain(&explainer, p.name, false, path));
            }
            (Some(path), _) => outcome
                .counterexamples
                .push(explain(&explainer, p.name, true, path)),
            (None, Expectation::Sometimes) => outcome.unreached.push(p.name),
            (None, _) => {}
        }
    }
    outcome
}

//! Counterexamples people can read.
//!
//! A stateright [`Path`] is a list of states and actions. A model that implements [`Explain`] says, for
//! one step, which actor did what (`operator-a: reads takeover (generation 1, rv 4)`), and, for a
//! property, which part of a state matters to it. [`explain`] turns a path into a [`Trace`]: a
//! numbered sequence of actor steps followed by that state, printed by its `Display`:
//!
//! ```text
//! "at most one decider per workflow" fails after 7 steps:
//!   1. operator-a: acquires the lease (tick 0)
//!   2. script edge-1: reads takeover (generation 0, rv 1)
//!   …
//! state that matters:
//!   migration: acted on by script edge-1 (generation 0) and operator-a
//! ```

use std::fmt;

use stateright::{Model, Path};

/// What a model adds to be explained step by step.
pub trait Explain: Model {
    /// One step as `actor: what it did`, from the state before it, the action and the state after
    /// (the after-state says how a write ended: landed, refused, conflicting).
    fn describe(&self, before: &Self::State, action: &Self::Action, after: &Self::State) -> String;

    /// The part of `state` that matters to `property` (the last state of a counterexample), one
    /// item per line, without indentation.
    fn focus(&self, property: &str, state: &Self::State) -> String;

    /// A line naming the initial state a path starts from, for a model with more than one.
    fn start(&self, _state: &Self::State) -> Option<String> {
        None
    }
}

/// A counterexample (or an example of a `sometimes` property) as numbered actor steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The property the path was found for.
    pub property: String,
    /// Whether the path breaks the property (an `always`/`eventually` counterexample) rather than
    /// illustrating it (a `sometimes` example).
    pub violation: bool,
    /// The initial state it starts from, when the model has more than one ([`Explain::start`]).
    pub start: Option<String>,
    /// One line per step, in order, without numbers: `actor: what it did`.
    pub steps: Vec<String>,
    /// The state that matters to the property after the last step.
    pub focus: String,
}

impl Trace {
    /// Whether some step's line contains `text` (tests assert that a trace names its steps).
    pub fn mentions(&self, text: &str) -> bool {
        self.steps.iter().any(|s| s.contains(text))
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.violation { "fails" } else { "is reached" };
        writeln!(
            f,
            "\"{}\" {verb} after {} steps:",
            self.property,
            self.steps.len()
        )?;
        if let Some(start) = &self.start {
            writeln!(f, "  from: {start}")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {step}", i + 1)?;
        }
        writeln!(f, "state that matters:")?;
        for line in self.focus.lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Turns a path the checker found for `property` into a [`Trace`].
pub fn explain<M>(model: &M, property: &str, violation: bool, path: Path<M::State, M::Action>) -> Trace
where
    M: Explain,
{
    let steps_and_states = path.into_vec();
    let mut steps = Vec::new();
    for pair in steps_and_states.windows(2) {
        if let [(before, Some(action)), (after, _)] = pair {
            steps.push(model.describe(before, action, after));
        }
    }
    let start = steps_and_states.first().and_then(|(first, _)| model.start(first));
    let focus = match steps_and_states.last() {
        Some((last, _)) => model.focus(property, last),
        None => String::new(),
    };
    Trace {
        property: property.to_string(),
        violation,
        start,
        steps,
        focus,
    }
}

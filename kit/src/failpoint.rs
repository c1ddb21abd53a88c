//! Failpoints: named places in the code where a test can stop the process — kill it outright, or
//! pause it and say so, so that the test kills it with SIGKILL at exactly that point. The crash
//! tests (`tests/crash.rs`) run the real binaries with them; nothing else uses them.
//!
//! Compiled in only with the `failpoints` feature, which only tests turn on: without it
//! [`hit`] and [`armed`] are empty inline functions and the environment is never read, so a
//! release build carries no failpoint.
//!
//! The environment variable [`ENV`] arms points: `;`-separated `NAME=ACTION`, where `ACTION` is
//! - `kill` — the process sends itself SIGKILL (no destructor, no flush, no exit handler);
//! - `pause` — it writes `failpoint NAME paused pid=PID` on a line of standard error and then
//!   waits for ever, for the test to kill it;
//!
//! optionally followed by `@N`: only the N-th time the point is reached (from 1), not every time.
//! Example: `NODEWRIGHT_FAILPOINTS='journal.append.finished=pause@1;writer.node.after=kill'`.
//! An entry that cannot be read is reported on standard error once and ignored.
//!
//! The points in the code are listed in `docs/testing.md`.

/// The environment variable that arms failpoints.
pub const ENV: &str = "NODEWRIGHT_FAILPOINTS";

/// What an armed point does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL to the process itself.
    Kill,
    /// Announce on standard error, then wait to be killed.
    Pause,
}

/// One armed point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Armed {
    /// The point's name.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Only on this hit (from 1); every hit when `None`.
    pub nth: Option<u64>,
}

/// Reads a failpoint specification (the value of [`ENV`]): the armed points, and an error for
/// each entry that could not be read, naming it.
pub fn parse(spec: &str) -> (Vec<Armed>, Vec<String>) {
    let mut armed = Vec::new();
    let mut errors = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, action)) = entry.split_once('=') else {
            errors.push(format!("{ENV}: {entry:?} is not NAME=ACTION"));
            continue;
        };
        let (action, nth) = match action.split_once('@') {
            Some((a, n)) => match n.parse::<u64>() {
                Ok(n) if n >= 1 => (a, Some(n)),
                _ => {
                    errors.push(format!("{ENV}: {entry:?}: @{n} is not a hit count from 1"));
                    continue;
                }
            },
            None => (action, None),
        };
        let action = match action {
            "kill" => Action::Kill,
            "pause" => Action::Pause,
            other => {
                errors.push(format!(
                    "{ENV}: {entry:?}: unknown action {other:?} (kill, pause)"
                ));
                continue;
            }
        };
        armed.push(Armed {
            name: name.trim().to_owned(),
            action,
            nth,
        });
    }
    (armed, errors)
}

/// Whether the point `name` fires on hit number `hit` (from 1) under `armed`.
pub fn fires(armed: &[Armed], name: &str, hit: u64) -> Option<Action> {
    armed
        .iter()
        .find(|a| a.name == name && a.nth.is_none_or(|n| n == hit))
        .map(|a| a.action)
}

#[cfg(feature = "failpoints")]
mod live {
    use std::collections::BTreeMap;
    use std::io::Write as _;
    use std::sync::{Mutex, OnceLock};

    use super::{Action, Armed, ENV, fires, parse};

    fn armed() -> &'static [Armed] {
        static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();
        ARMED.get_or_init(|| {
            let (armed, errors) = parse(&std::env::var(ENV).unwrap_or_default());
            for e in errors {
                eprintln!("{e}; ignored");
            }
            armed
        })
    }

    fn hits() -> &'static Mutex<BTreeMap<String, u64>> {
        static HITS: OnceLock<Mutex<BTreeMap<String, u64>>> = OnceLock::new();
        HITS.get_or_init(Mutex::default)
    }

    /// Counts a hit of `name`; the action, when this hit fires.
    pub fn count(name: &str) -> Option<Action> {
        if armed().is_empty() {
            return None;
        }
        let count = {
            let Ok(mut h) = hits().lock() else { return None };
            let c = h.entry(name.to_owned()).or_insert(0);
            *c += 1;
            *c
        };
        fires(armed(), name, count)
    }

    pub fn act(name: &str, action: Action) {
        match action {
            Action::Kill => {
                let _ = writeln!(
                    std::io::stderr(),
                    "failpoint {name} kill pid={}",
                    std::process::id()
                );
                let _ =
                    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
            }
            Action::Pause => {
                let _ = writeln!(
                    std::io::stderr(),
                    "failpoint {name} paused pid={}",
                    std::process::id()
                );
                loop {
                    std::thread::park();
                }
            }
        }
    }
}

/// The point `name` is reached: an armed point kills or pauses the process here.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if let Some(action) = live::count(name) {
        live::act(name, action);
    }
}

/// The point `name` is reached (failpoints are not compiled in: nothing happens).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// A point that does damage before it stops (a torn write): counts the hit of `name` and
/// returns the stop to make once the damage is done, if this hit fires. Always `None` without
/// the `failpoints` feature.
#[cfg(feature = "failpoints")]
pub fn reached(name: &str) -> Option<Stop<'_>> {
    live::count(name).map(|action| Stop { name, action })
}

/// Always `None`: failpoints are not compiled in.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn reached(_name: &str) -> Option<Stop<'_>> {
    None
}

/// The stop of a point that fired, made by [`Stop::now`] once its damage is done.
#[derive(Debug)]
pub struct Stop<'a> {
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    name: &'a str,
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    action: Action,
}

impl Stop<'_> {
    /// Kills or pauses the process.
    pub fn now(self) {
        #[cfg(feature = "failpoints")]
        live::act(self.name, self.action);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specification_arms_points_with_their_action_and_hit() {
        let (armed, errors) = parse("journal.append.finished=pause@2; writer.node.after=kill;");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            armed,
            vec![
                Armed {
                    name: "journal.append.finished".into(),
                    action: Action::Pause,
                    nth: Some(2)
                },
                Armed {
                    name: "writer.node.after".into(),
                    action: Action::Kill,
                    nth: None
                },
            ]
        );
        assert_eq!(fires(&armed, "journal.append.finished", 1), None);
        assert_eq!(fires(&armed, "journal.append.finished", 2), Some(Action::Pause));
        assert_eq!(fires(&armed, "writer.node.after", 7), Some(Action::Kill));
        assert_eq!(fires(&armed, "elsewhere", 1), None);
    }

    #[test]
    fn entries_that_cannot_be_read_are_named_and_skipped() {
        let (armed, errors) = parse("a=explode;b;c=kill@0;d=kill");
        assert_eq!(armed.len(), 1);
        assert_eq!(errors.len(), 3);
        assert!(errors[0].contains("\"a=explode\"") && errors[0].contains("unknown action"));
        assert!(errors[1].contains("not NAME=ACTION"));
        assert!(errors[2].contains("@0"));
    }

    #[cfg(not(feature = "failpoints"))]
    #[test]
    fn without_the_feature_no_point_is_ever_armed() {
        assert!(reached("journal.append.finished").is_none());
        hit("journal.append.finished");
    }
}

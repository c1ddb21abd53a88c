//! Querying the trail: which entries `nodewright audit log` prints, and how.
//!
//! Pure: the entries are read by the caller.

use std::collections::BTreeSet;

use nodewright_audit::{Entry, EntryKind};
use serde_json::Value;

/// What to select. Every criterion given must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `KIND/NAME`: entries about that object, or decisions and steps of that workflow (the kind
    /// is matched without regard to case).
    pub object: Option<(String, String)>,
    /// Entries by this user, and requests this user made while impersonating someone else.
    pub user: Option<String>,
    /// Entries at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// The entry with this id and everything that follows from it through `caused_by`: from a
    /// person's request to the host steps that carried it out.
    pub from: Option<String>,
}

impl Filter {
    /// Parses `--object KIND/NAME`.
    pub fn parse_object(text: &str) -> Result<(String, String), String> {
        match text.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
                Ok((kind.to_owned(), name.to_owned()))
            }
            _ => Err(format!(
                "--object {text:?}: expected KIND/NAME, for example Migration/grow-site"
            )),
        }
    }

    /// Parses `--since`: an RFC 3339 time (`2026-12-07T18:00:00Z`).
    pub fn parse_since(text: &str) -> Result<jiff::Timestamp, String> {
        text.parse::<jiff::Timestamp>().map_err(|e| {
            format!("--since {text:?}: expected an RFC 3339 time such as 2026-12-07T18:00:00Z: {e}")
        })
    }
}

/// The entries `filter` selects, in log order.
pub fn select<'a>(entries: &'a [(u64, Entry)], filter: &Filter) -> Vec<&'a (u64, Entry)> {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for item in entries {
        let entry = &item.1;
        if let Some(from) = &filter.from {
            let follows = entry.id == *from || entry.caused_by.iter().any(|c| reached.contains(c.as_str()));
            if !follows {
                continue;
            }
            reached.insert(entry.id.as_str());
        }
        if let Some((kind, name)) = &filter.object {
            let about = entry
                .object
                .as_ref()
                .is_some_and(|o| o.kind.eq_ignore_ascii_case(kind) && o.name == *name);
            let of_workflow = entry
                .workflow
                .as_ref()
                .is_some_and(|w| w.kind.eq_ignore_ascii_case(kind) && w.name == *name);
            if !about && !of_workflow {
                continue;
            }
        }
        if let Some(user) = &filter.user {
            let impersonator = entry.detail.get("impersonator").and_then(Value::as_str);
            if entry.user.as_deref() != Some(user.as_str()) && impersonator != Some(user.as_str()) {
                continue;
            }
        }
        if let Some(since) = filter.since {
            match entry.time.parse::<jiff::Timestamp>() {
                Ok(t) if t >= since => {}
                _ => continue,
            }
        }
        out.push(item);
    }
    out
}

fn short(value: Option<&Value>) -> String {
    match value {
        None => "-".into(),
        Some(Value::String(s)) => {
            let one_line = s.replace('\n', "\\n");
            if one_line.chars().count() > 80 {
                format!("{:?}…", one_line.chars().take(80).collect::<String>())
            } else {
                format!("{one_line:?}")
            }
        }
        Some(other) => {
            let text = other.to_string();
            if text.chars().count() > 80 {
                format!("{}…", text.chars().take(80).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// One entry as text: a headline, then one indented line per changed field and per link.
pub fn text(index: u64, entry: &Entry) -> String {
    let kind = match entry.kind {
        EntryKind::Request => "request",
        EntryKind::Decision => "decision",
        EntryKind::Step => "step",
    };
    let object = entry
        .object
        .as_ref()
        .map_or_else(String::new, |o| match &o.namespace {
            Some(ns) => format!(" {}/{}/{}", o.kind, ns, o.name),
            None => format!(" {}/{}", o.kind, o.name),
        });
    let who = entry.user.as_deref().unwrap_or("-");
    let by = entry
        .detail
        .get("impersonator")
        .and_then(Value::as_str)
        .map_or_else(String::new, |i| format!(" (as impersonated by {i})"));
    let what = match entry.kind {
        EntryKind::Request => format!(" {}{object}", entry.verb.as_deref().unwrap_or("-")),
        EntryKind::Decision => {
            let wf = entry.workflow.as_ref();
            // A status write in the same phase (new conditions, a task's progress) stays in it.
            let entered = entry
                .changes
                .iter()
                .any(|c| c.path == "/status/phase" || c.path == "/status/state");
            format!(
                " {}/{} {} {}",
                wf.map_or("-", |w| w.kind.as_str()),
                wf.map_or("-", |w| w.name.as_str()),
                if entered { "entered" } else { "stays in" },
                wf.and_then(|w| w.state.as_deref()).unwrap_or("-")
            )
        }
        EntryKind::Step => {
            let d = &entry.detail;
            let args: Vec<String> = d
                .get("args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            format!(
                " on {}: {} {} → {} (exit {})",
                d.get("node").and_then(Value::as_str).unwrap_or("-"),
                d.get("step").and_then(Value::as_str).unwrap_or("-"),
                args.join(" "),
                d.get("phase").and_then(Value::as_str).unwrap_or("-"),
                d.get("exitCode").map_or_else(|| "-".into(), Value::to_string)
            )
        }
    };
    let mut out = format!("#{index} {} {kind} {who}{by}{what} [{}]\n", entry.time, entry.id);
    for change in &entry.changes {
        out.push_str(&format!(
            "    {}: {} → {}\n",
            change.path,
            short(change.old.as_ref()),
            short(change.new.as_ref())
        ));
    }
    if let Some(tasks) = entry.detail.get("tasksCreated").and_then(Value::as_array) {
        let names: Vec<&str> = tasks.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!("    created tasks: {}\n", names.join(", ")));
    }
    for cause in &entry.caused_by {
        out.push_str(&format!("    caused by {cause}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn entry(kind: EntryKind, id: &str, caused_by: &[&str], user: &str) -> Entry {
        Entry {
            kind,
            time: "2026-12-07T18:00:00.5Z".into(),
            id: id.into(),
            user: Some(user.into()),
            groups: vec![],
            verb: None,
            object: None,
            changes: vec![],
            workflow: None,
            caused_by: caused_by.iter().map(|s| (*s).to_owned()).collect(),
            detail: Value::Null,
        }
    }

    #[test]
    fn from_an_id_selects_everything_that_follows_from_it_and_nothing_else() {
        let entries: Vec<(u64, Entry)> = vec![
            (0, entry(EntryKind::Request, "alice-req", &[], "alice")),
            (1, entry(EntryKind::Request, "other", &[], "bob")),
            (
                2,
                entry(EntryKind::Decision, "wf/1", &["op-req", "alice-req"], "operator"),
            ),
            (3, entry(EntryKind::Request, "task-create", &["wf/1"], "operator")),
            (
                4,
                entry(EntryKind::Step, "key/1", &["agent-req", "task-create"], "agent"),
            ),
            (5, entry(EntryKind::Step, "key2/1", &["other"], "agent")),
        ];
        let filter = Filter {
            from: Some("alice-req".into()),
            ..Filter::default()
        };
        let got: Vec<u64> = select(&entries, &filter).iter().map(|(i, _)| *i).collect();
        assert_eq!(got, [0, 2, 3, 4]);
    }

    #[test]
    fn a_user_filter_matches_the_impersonator_too_and_since_compares_times_not_text() {
        let mut e = entry(EntryKind::Request, "a", &[], "alice");
        e.detail = json!({"impersonator": "admin"});
        let entries = vec![(0, e)];
        let by_admin = Filter {
            user: Some("admin".into()),
            ..Filter::default()
        };
        assert_eq!(select(&entries, &by_admin).len(), 1);
        // 18:00:00.5Z is after 18:00:00Z although "." sorts before "Z".
        let since = Filter {
            since: Some(Filter::parse_since("2026-12-07T18:00:00Z").unwrap()),
            ..Filter::default()
        };
        assert_eq!(select(&entries, &since).len(), 1);
        assert!(Filter::parse_since("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(
            Filter::parse_object("Migration")
                .unwrap_err()
                .contains("KIND/NAME")
        );
    }
}

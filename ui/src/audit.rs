//! The Audit view: the audit trail's entries, selected as `nodewright audit log` selects them (the
//! trail's own [`query::select`]), each with its links (`caused_by`), and whether the log verifies
//! against the last checkpoint published to the cluster ([`publish::read`] and
//! [`nodewright_audit::verify`]).
//!
//! [`view`] and [`verification`] are pure; [`Source::load`] reads the log directory and the
//! published checkpoint.

use std::path::PathBuf;

use nodewright_audit::{Entry, EntryKind, Report, Verifier, VerifyError, VerifyOptions};
use nodewright_audit_trail::{publish, query};
use serde::{Deserialize, Serialize};

/// What the page shows when the UI was started without a log directory.
pub const HOW_TO_ENABLE: &str = "The audit view is off: start the UI with --audit-dir DIR, a copy or a read-only mount of the audit writer's log directory (nodewright ui --audit-dir /var/lib/nodewright-audit). It reads the checkpoint published in the ConfigMap nodewright-audit-checkpoint of --audit-namespace to verify the log.";

/// The selection, from the page's URL (`/audit?object=Migration/grow&user=alice&since=…&from=…`).
/// Empty fields select nothing.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
pub struct AuditQuery {
    /// `KIND/NAME`.
    pub object: String,
    /// A user (also matches the impersonator).
    pub user: String,
    /// An RFC 3339 time: entries at or after it.
    pub since: String,
    /// An entry id: that entry and everything that follows from it.
    pub from: String,
}

impl AuditQuery {
    /// The trail's filter, or what is wrong with a field.
    pub fn filter(&self) -> Result<query::Filter, String> {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Ok(query::Filter {
            object: some(&self.object)
                .map(|o| query::Filter::parse_object(&o))
                .transpose()?,
            user: some(&self.user),
            since: some(&self.since)
                .map(|s| query::Filter::parse_since(&s))
                .transpose()?,
            from: some(&self.from),
        })
    }
}

/// Whether the log verifies against the published checkpoint.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Verification {
    /// Every entry checks out, signed, and consistent with the published checkpoint.
    #[serde(rename_all = "camelCase")]
    Verified {
        /// Entries in the log.
        entries: u64,
        /// Entries the log's own signed checkpoint covers.
        checkpoint_size: u64,
        /// Entries the published checkpoint covers.
        published_size: Option<u64>,
        /// Entries not yet covered by a signature.
        unsigned_entries: u64,
    },
    /// The first problem: at an entry (`index`), or elsewhere (`location`).
    #[serde(rename_all = "camelCase")]
    NotVerified {
        /// The first bad entry, when the problem is at an entry.
        index: Option<u64>,
        /// Where (an entry, a tile, the checkpoint …).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Nothing to verify against (no published checkpoint, no key, the cluster unreachable).
    #[serde(rename_all = "camelCase")]
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The result of [`nodewright_audit::verify`] as the page shows it.
pub fn verification(result: Result<Report, VerifyError>) -> Verification {
    match result {
        Ok(report) => Verification::Verified {
            entries: report.entries,
            checkpoint_size: report.checkpoint_size,
            published_size: report.trusted_size,
            unsigned_entries: report.unsigned_entries,
        },
        Err(e) => Verification::NotVerified {
            index: e.index(),
            location: e.location.to_string(),
            message: e.what,
        },
    }
}

/// A link of one entry to another (`caused_by`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The id linked to.
    pub id: String,
    /// Its index in the log, when it is there (a request the trail did not keep is not).
    pub index: Option<u64>,
}

/// One entry as the page shows it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Its index in the log.
    pub index: u64,
    /// Its id.
    pub id: String,
    /// When (RFC 3339).
    pub time: String,
    /// `request`, `decision` or `step`.
    pub kind: &'static str,
    /// Who.
    pub user: Option<String>,
    /// Who impersonated them, for a request made by impersonation.
    pub impersonator: Option<String>,
    /// `KIND/NAMESPACE/NAME` of the object, or of the workflow for a decision or a step.
    pub object: Option<String>,
    /// The entry as `nodewright audit log` prints it, without its links.
    pub text: String,
    /// What it follows from.
    pub caused_by: Vec<Link>,
}

/// The Audit view.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    /// Whether the UI reads a log at all; without one, `howToEnable` says how.
    pub enabled: bool,
    /// How to turn the view on, when it is off.
    pub how_to_enable: Option<String>,
    /// The log directory read.
    pub dir: Option<String>,
    /// Entries in the log.
    pub total: usize,
    /// The selected entries, newest first, at most [`LIMIT`].
    pub entries: Vec<Row>,
    /// How many were selected (more than `entries` holds when cut at [`LIMIT`]).
    pub selected: usize,
    /// Whether the log verifies.
    pub verification: Option<Verification>,
}

/// The most entries one page shows (the newest of the selection); narrow the selection for older.
pub const LIMIT: usize = 500;

/// The view when no log directory was given: how to turn it on.
pub fn disabled() -> AuditView {
    AuditView {
        enabled: false,
        how_to_enable: Some(HOW_TO_ENABLE.to_owned()),
        dir: None,
        total: 0,
        entries: Vec::new(),
        selected: 0,
        verification: None,
    }
}

fn kind(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Request => "request",
        EntryKind::Decision => "decision",
        EntryKind::Step => "step",
    }
}

fn object(entry: &Entry) -> Option<String> {
    if let Some(o) = &entry.object {
        return Some(match &o.namespace {
            Some(ns) => format!("{}/{}/{}", o.kind, ns, o.name),
            None => format!("{}/{}", o.kind, o.name),
        });
    }
    entry.workflow.as_ref().map(|w| format!("{}/{}", w.kind, w.name))
}

/// The view of `entries` (the whole log, in order) selected by `query`; `Err` names the field of
/// the query that is wrong.
pub fn view(
    dir: &str,
    entries: &[(u64, Entry)],
    query: &AuditQuery,
    verification: Verification,
) -> Result<AuditView, String> {
    let filter = query.filter()?;
    let index_of: std::collections::HashMap<&str, u64> =
        entries.iter().map(|(i, e)| (e.id.as_str(), *i)).collect();
    let selected = query::select(entries, &filter);
    let rows = selected
        .iter()
        .rev()
        .take(LIMIT)
        .map(|(index, entry)| {
            let text = query::text(*index, entry)
                .lines()
                .filter(|l| !l.trim_start().starts_with("caused by "))
                .collect::<Vec<_>>()
                .join("\n");
            Row {
                index: *index,
                id: entry.id.clone(),
                time: entry.time.clone(),
                kind: kind(&entry.kind),
                user: entry.user.clone(),
                impersonator: entry
                    .detail
                    .get("impersonator")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                object: object(entry),
                text,
                caused_by: entry
                    .caused_by
                    .iter()
                    .map(|id| Link {
                        id: id.clone(),
                        index: index_of.get(id.as_str()).copied(),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(AuditView {
        enabled: true,
        how_to_enable: None,
        dir: Some(dir.to_owned()),
        total: entries.len(),
        entries: rows,
        selected: selected.len(),
        verification: Some(verification),
    })
}

/// Where the Audit view reads from.
#[derive(Clone)]
pub struct Source {
    /// The log directory (the writer's, or a copy).
    pub dir: PathBuf,
    /// The namespace of the published checkpoint (`nodewright-audit-checkpoint`).
    pub namespace: String,
    /// The client to read it with.
    pub client: kube::Client,
}

impl Source {
    /// The log's entries, and whether it verifies against the published checkpoint (with the
    /// verifier key published next to it).
    pub async fn load(&self) -> Result<(Vec<(u64, Entry)>, Verification), String> {
        let published = publish::read(self.client.clone(), &self.namespace).await;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let entries = nodewright_audit::read(&dir)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("reading the log in {}: {e}", dir.display()))?;
            let verification = match published {
                Err(e) => Verification::Unknown {
                    reason: format!("{e:#}"),
                },
                Ok((_, None)) => Verification::Unknown {
                    reason: format!(
                        "no verifier key published in the ConfigMap {}",
                        publish::CONFIG_MAP
                    ),
                },
                Ok((checkpoint, Some(key))) => {
                    match Verifier::from_text(&key, "the published verifier key") {
                        Err(e) => Verification::Unknown {
                            reason: e.to_string(),
                        },
                        Ok(verifier) => verification(nodewright_audit::verify(
                            &dir,
                            &VerifyOptions {
                                verifiers: vec![verifier],
                                checkpoint: Some(checkpoint),
                            },
                        )),
                    }
                }
            };
            Ok((entries, verification))
        })
        .await
        .map_err(|e| format!("reading the log: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_audit::{Location, ObjectRef};
    use serde_json::json;

    fn entry(kind: EntryKind, id: &str, caused_by: &[&str], user: &str, time: &str) -> Entry {
        Entry {
            kind,
            time: time.into(),
            id: id.into(),
            user: Some(user.into()),
            groups: vec![],
            verb: Some("patch".into()),
            object: Some(ObjectRef {
                api_group: "nodewright.io".into(),
                kind: "StorageUpgrade".into(),
                namespace: Some("ns".into()),
                name: "drbd".into(),
                uid: None,
            }),
            changes: vec![],
            workflow: None,
            caused_by: caused_by.iter().map(|s| (*s).to_owned()).collect(),
            detail: serde_json::Value::Null,
        }
    }

    fn log() -> Vec<(u64, Entry)> {
        let mut by_ui = entry(EntryKind::Request, "req-1", &[], "alice", "2026-12-07T18:00:00Z");
        by_ui.detail = json!({"impersonator": "system:serviceaccount:ns:ui"});
        let mut other = entry(EntryKind::Request, "req-2", &[], "bob", "2026-12-07T18:05:00Z");
        other.object.as_mut().unwrap().name = "other".into();
        vec![
            (0, by_ui),
            (1, other),
            (
                2,
                entry(
                    EntryKind::Decision,
                    "wf/1",
                    &["req-1", "gone"],
                    "operator",
                    "2026-12-07T18:10:00Z",
                ),
            ),
        ]
    }

    fn ok() -> Verification {
        verification(Ok(Report {
            entries: 3,
            checkpoint_size: 3,
            root: String::new(),
            signed_by: vec![],
            unsigned_entries: 0,
            hash_tiles: 1,
            trusted_size: Some(2),
        }))
    }

    fn indexes(v: &AuditView) -> Vec<u64> {
        v.entries.iter().map(|r| r.index).collect()
    }

    #[test]
    fn entries_are_selected_by_object_user_and_time_as_the_audit_log_command_selects_them() {
        let all = log();
        let q = |object: &str, user: &str, since: &str| AuditQuery {
            object: object.into(),
            user: user.into(),
            since: since.into(),
            from: String::new(),
        };
        let v = view("d", &all, &q("", "", ""), ok()).unwrap();
        assert_eq!(indexes(&v), [2, 1, 0], "newest first");
        assert_eq!((v.total, v.selected), (3, 3));
        assert_eq!(
            indexes(&view("d", &all, &q("storageupgrade/drbd", "", ""), ok()).unwrap()),
            [2, 0]
        );
        // The impersonator finds the request made as the person.
        assert_eq!(
            indexes(&view("d", &all, &q("", "system:serviceaccount:ns:ui", ""), ok()).unwrap()),
            [0]
        );
        assert_eq!(indexes(&view("d", &all, &q("", "bob", ""), ok()).unwrap()), [1]);
        assert_eq!(
            indexes(&view("d", &all, &q("", "", "2026-12-07T18:05:00Z"), ok()).unwrap()),
            [2, 1]
        );
    }

    #[test]
    fn links_name_the_index_of_the_entry_they_point_to_and_from_follows_them() {
        let all = log();
        let v = view("d", &all, &AuditQuery::default(), ok()).unwrap();
        assert_eq!(
            v.entries[0].caused_by,
            [
                Link {
                    id: "req-1".into(),
                    index: Some(0)
                },
                Link {
                    id: "gone".into(),
                    index: None
                }
            ]
        );
        assert!(
            !v.entries[0].text.contains("caused by"),
            "links are shown as links"
        );
        assert!(v.entries[2].text.starts_with("#0 "), "{}", v.entries[2].text);
        assert_eq!(
            v.entries[2].impersonator.as_deref(),
            Some("system:serviceaccount:ns:ui")
        );
        assert_eq!(v.entries[2].object.as_deref(), Some("StorageUpgrade/ns/drbd"));
        let from = AuditQuery {
            from: "req-1".into(),
            ..AuditQuery::default()
        };
        assert_eq!(indexes(&view("d", &all, &from, ok()).unwrap()), [2, 0]);
    }

    #[test]
    fn a_bad_selection_says_which_field_and_what_is_expected() {
        let all = log();
        let bad_object = AuditQuery {
            object: "Migration".into(),
            ..AuditQuery::default()
        };
        assert!(
            view("d", &all, &bad_object, ok())
                .unwrap_err()
                .contains("KIND/NAME")
        );
        let bad_time = AuditQuery {
            since: "yesterday".into(),
            ..AuditQuery::default()
        };
        assert!(view("d", &all, &bad_time, ok()).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn verification_shows_the_published_size_or_the_first_bad_index() {
        assert_eq!(
            ok(),
            Verification::Verified {
                entries: 3,
                checkpoint_size: 3,
                published_size: Some(2),
                unsigned_entries: 0
            }
        );
        let bad = verification(Err(VerifyError {
            location: Location::Entry(7),
            what: "modified".into(),
        }));
        assert_eq!(
            bad,
            Verification::NotVerified {
                index: Some(7),
                location: "entry 7".into(),
                message: "modified".into()
            }
        );
        let v = serde_json::to_value(&bad).unwrap();
        assert_eq!(v["result"], "notVerified");
        assert_eq!(v["index"], 7);
    }

    #[test]
    fn without_a_log_directory_the_view_says_how_to_enable_it() {
        let v = disabled();
        assert!(!v.enabled);
        assert!(v.how_to_enable.unwrap().contains("--audit-dir"));
    }
}

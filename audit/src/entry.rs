//! One record of the trail and its canonical JSON encoding.

use serde::{Deserialize, Serialize};

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A request to the API server, from its audit webhook backend.
    Request,
    /// A decision of the operator (a workflow's state transition and the facts it was made from).
    Decision,
    /// The result of one step the node agent ran.
    Step,
}

/// The object a request or decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The API group (`""` for the core group).
    pub api_group: String,
    /// The kind, or the resource when the kind is not known (API server audit events name the
    /// resource).
    pub kind: String,
    /// The namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// The object's uid, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One field that a request changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's path, e.g. `metadata.labels.nodewright.io/mode`.
    pub path: String,
    /// The value before; absent when the field was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    /// The value after; absent when the field was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
}

/// The workflow instance a decision or step belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRef {
    /// The workflow's kind, e.g. `StorageUpgrade`.
    pub kind: String,
    /// The workflow object's name.
    pub name: String,
    /// The workflow object's uid.
    pub uid: String,
    /// The state the workflow entered or was in, when the entry is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// One record of the trail, stored as one leaf of the log.
///
/// Its leaf bytes are its canonical JSON: `serde_json` with the fields in the order below, no
/// optional field (an `Option` that is `None`, an empty list, a `null` detail) written when absent,
/// and the keys of objects inside `detail` and the changes' values sorted.
/// Reading accepts the absent fields back as `None`, empty and `Null`, so an entry read from the
/// log encodes to the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// What the entry records.
    pub kind: EntryKind,
    /// When, in RFC 3339; for requests, the API server's `stageTimestamp`.
    pub time: String,
    /// The deduplication key: a request's audit ID; a decision's `<workflow uid>/<decision seq or
    /// key>`; a step's NodeTask idempotency key, `/`, and the attempt.
    pub id: String,
    /// Who: the user or service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The user's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The verb (`create`, `patch`, …) for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// The object the entry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// The fields a request changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The workflow instance a decision or step belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowRef>,
    /// The ids of the entries this one follows from (request → decision → step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
    /// Facts a decision was made from, a step's exit code and output digest, …; `Null` when none.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Entry {
    /// The entry's canonical JSON: its leaf bytes in the log.
    ///
    /// # Errors
    /// Fails only if a `detail` or change value cannot be encoded (a map with non-string keys
    /// cannot occur in a `serde_json::Value`, so in practice never).
    pub fn to_leaf(&self) -> Result<Vec<u8>, serde_json::Error> {
        if !self
            .changes
            .iter()
            .any(|c| c.old.as_ref().is_some_and(has_object) || c.new.as_ref().is_some_and(has_object))
            && !has_object(&self.detail)
        {
            return serde_json::to_vec(self);
        }
        // Object keys sorted whatever `serde_json`'s map keeps (insertion order when a dependency
        // turns on its `preserve_order` feature), so that every build writes the same bytes.
        let mut canonical = self.clone();
        for change in &mut canonical.changes {
            change.old = change.old.as_ref().map(sorted);
            change.new = change.new.as_ref().map(sorted);
        }
        canonical.detail = sorted(&self.detail);
        serde_json::to_vec(&canonical)
    }

    /// Decodes an entry from its leaf bytes, requiring them to be canonical (re-encoding gives the
    /// same bytes), so that one entry has exactly one leaf.
    ///
    /// # Errors
    /// A description of what is wrong: not JSON, not an entry, or not in canonical form.
    pub fn from_leaf(bytes: &[u8]) -> Result<Entry, String> {
        let entry: Entry = serde_json::from_slice(bytes).map_err(|e| format!("not an entry: {e}"))?;
        let again = entry.to_leaf().map_err(|e| format!("cannot re-encode: {e}"))?;
        if again != bytes {
            return Err(
                "not in canonical form (fields out of order, whitespace, or an absent field written)"
                    .to_string(),
            );
        }
        Ok(entry)
    }
}

fn has_object(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(_) => true,
        serde_json::Value::Array(items) => items.iter().any(has_object),
        _ => false,
    }
}

/// A copy of `value` whose objects have their keys in sorted order.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn step() -> Entry {
        Entry {
            kind: EntryKind::Step,
            time: "2026-12-07T18:00:00Z".to_string(),
            id: "upgrade-7f3a/node-2/drbd-adjust/1".to_string(),
            user: None,
            groups: Vec::new(),
            verb: None,
            object: None,
            changes: Vec::new(),
            workflow: Some(WorkflowRef {
                kind: "StorageUpgrade".to_string(),
                name: "site-a".to_string(),
                uid: "7f3a".to_string(),
                state: None,
            }),
            caused_by: vec!["7f3a/12".to_string()],
            detail: serde_json::json!({ "exit": 0 }),
        }
    }

    #[test]
    fn an_entry_is_written_with_its_fields_in_order_and_absent_ones_left_out() {
        let leaf = String::from_utf8(step().to_leaf().unwrap()).unwrap();
        assert_eq!(
            leaf,
            r#"{"kind":"step","time":"2026-12-07T18:00:00Z","id":"upgrade-7f3a/node-2/drbd-adjust/1","workflow":{"kind":"StorageUpgrade","name":"site-a","uid":"7f3a"},"caused_by":["7f3a/12"],"detail":{"exit":0}}"#
        );
        assert_eq!(Entry::from_leaf(leaf.as_bytes()).unwrap(), step());
    }

    #[test]
    fn object_keys_inside_values_are_written_sorted() {
        let mut entry = step();
        entry.detail = serde_json::json!({ "zeta": 1, "alpha": { "y": [ { "b": 1, "a": 2 } ], "x": 0 } });
        let leaf = String::from_utf8(entry.to_leaf().unwrap()).unwrap();
        assert!(
            leaf.ends_with(r#""detail":{"alpha":{"x":0,"y":[{"a":2,"b":1}]},"zeta":1}}"#),
            "{leaf}"
        );
        assert_eq!(Entry::from_leaf(leaf.as_bytes()).unwrap(), entry);
    }

    #[test]
    fn a_leaf_that_is_not_canonical_is_refused() {
        let spaced = r#"{"kind": "step","time":"t","id":"x"}"#;
        assert!(
            Entry::from_leaf(spaced.as_bytes())
                .unwrap_err()
                .contains("canonical")
        );
        let null_written = r#"{"kind":"step","time":"t","id":"x","user":null}"#;
        assert!(
            Entry::from_leaf(null_written.as_bytes())
                .unwrap_err()
                .contains("canonical")
        );
        let unsorted = r#"{"kind":"step","time":"t","id":"x","detail":{"b":1,"a":2}}"#;
        assert!(
            Entry::from_leaf(unsorted.as_bytes())
                .unwrap_err()
                .contains("canonical")
        );
        let unknown_kind = r#"{"kind":"rumour","time":"t","id":"x"}"#;
        assert!(
            Entry::from_leaf(unknown_kind.as_bytes())
                .unwrap_err()
                .starts_with("not an entry")
        );
    }
}

//! From audit events to the trail's entries, with the "why" linked in.
//!
//! [`Trail`] is a pure state machine: [`Trail::ingest`] takes one batch of events and returns the
//! entries to append, in order. It remembers, per object, what it last looked like (to say which
//! fields a request changed) and the ids of the entries that later ones follow from:
//!
//! - a **request** entry for every kept event: who (the impersonated user when there is one, with
//!   the impersonator in `detail`), the verb, the object, the fields that changed, when, and the
//!   audit ID as the entry's id;
//! - a **decision** entry for every write of a workflow's status (Migration, StorageUpgrade,
//!   BondFlip) that changed it: the workflow, the state it entered, the facts the operator wrote
//!   with it (conditions, the last transition) and the NodeTasks it created since its previous
//!   decision. It follows from the write's request, the request that created the workflow, the
//!   last request that changed the site's workflow modes, and the workflow's previous decision;
//! - a **step** entry for every NodeTask result the agent reports (`Succeeded`, `Failed`,
//!   `Unknown`): the node, the step, its arguments, exit code and output. It follows from the
//!   report's request, the task's creation and the decision the task was created under.
//!
//! A NodeTask's creation follows from its workflow's last decision (or, before the first, from the
//! workflow's creation), so that following `caused_by` backwards from a host step reaches the
//! person's request, and following it forwards from the request reaches the host step.

use std::collections::{BTreeMap, BTreeSet};

use nodewright_audit::{Entry, EntryKind, FieldChange, ObjectRef, WorkflowRef};
use serde_json::{Value, json};

use crate::events::{self, Event, Scope, Subject};

/// The largest JSON value kept whole in a change or a detail; larger ones are cut to their
/// beginning (an entry must fit a leaf of 64 KiB).
pub const MAX_VALUE_BYTES: usize = 2048;

/// An object, as the trail keys it: kind, namespace, name.
type Key = (String, String, String);

/// What the trail remembers between batches. Rebuilt from the log at start
/// ([`Trail::observe`]) except the objects' last contents, which a restart forgets: the first
/// change seen afterwards lists the fields the request wrote, with their old values unknown.
#[derive(Clone, Debug, Default)]
pub struct Trail {
    scope: Scope,
    /// The compared part of each object, as last seen.
    last: BTreeMap<Key, Value>,
    /// The request that created an object.
    created_by: BTreeMap<Key, String>,
    /// Per namespace, the last request that changed an EdgeCluster's workflow modes.
    mode_change: BTreeMap<String, String>,
    /// Per workflow (kind, namespace, name): its uid.
    workflow_uid: BTreeMap<Key, String>,
    /// Per workflow: its last decision's id.
    last_decision: BTreeMap<Key, String>,
    /// Per workflow: the NodeTasks created since its last decision.
    tasks_since: BTreeMap<Key, Vec<String>>,
    /// Per NodeTask (namespace, name): the decision it was created under.
    task_decision: BTreeMap<(String, String), String>,
    /// Ids already produced (a batch the API server sends again yields nothing new).
    seen: BTreeSet<String>,
}

const WORKFLOW_KINDS: [&str; 3] = ["Migration", "StorageUpgrade", "BondFlip"];

impl Trail {
    /// An empty trail keeping what `scope` says.
    pub fn new(scope: Scope) -> Trail {
        Trail {
            scope,
            ..Trail::default()
        }
    }

    /// What the trail keeps.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Learns the links from an entry already in the log (at start, in log order).
    pub fn observe(&mut self, entry: &Entry) {
        self.seen.insert(entry.id.clone());
        let Some(object) = &entry.object else { return };
        let key: Key = (
            object.kind.clone(),
            object.namespace.clone().unwrap_or_default(),
            object.name.clone(),
        );
        match entry.kind {
            EntryKind::Request => {
                if entry.verb.as_deref() == Some("create") {
                    self.created_by.insert(key.clone(), entry.id.clone());
                    if WORKFLOW_KINDS.contains(&object.kind.as_str())
                        && let Some(uid) = &object.uid
                    {
                        self.workflow_uid.insert(key.clone(), uid.clone());
                    }
                }
                if object.kind == "EdgeCluster"
                    && entry
                        .changes
                        .iter()
                        .any(|c| c.path.starts_with("/spec/workflows"))
                {
                    self.mode_change.insert(key.1.clone(), entry.id.clone());
                }
                if object.kind == "NodeTask"
                    && entry.verb.as_deref() == Some("create")
                    && let Some(workflow) = entry.detail.get("workflow").and_then(Value::as_object)
                {
                    let wf_key = (
                        workflow
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        key.1.clone(),
                        workflow
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    if let Some(decision) = self.last_decision.get(&wf_key) {
                        self.task_decision
                            .insert((key.1.clone(), key.2.clone()), decision.clone());
                    }
                    self.tasks_since.entry(wf_key).or_default().push(key.2.clone());
                }
            }
            EntryKind::Decision => {
                self.last_decision.insert(key.clone(), entry.id.clone());
                self.tasks_since.remove(&key);
            }
            EntryKind::Step => {}
        }
    }

    /// The entries a batch of events yields, in order, with their links. Events the scope does
    /// not keep, and ids already produced, yield nothing.
    pub fn ingest(&mut self, events: &[Event]) -> Vec<Entry> {
        let mut out = Vec::new();
        for event in events {
            self.ingest_one(event, &mut out);
        }
        out
    }

    fn ingest_one(&mut self, event: &Event, out: &mut Vec<Entry>) {
        let Some(subject) = self.scope.subject(event) else {
            return;
        };
        if event.audit_id.is_empty() || self.seen.contains(&event.audit_id) {
            return;
        }
        let Some(object_ref) = event.object_ref.as_ref() else {
            return;
        };
        let Some(name) = event.name() else { return };
        let kind = event.kind();
        let namespace = object_ref.namespace.clone().filter(|n| !n.is_empty());
        let key: Key = (kind.clone(), namespace.clone().unwrap_or_default(), name.clone());
        let succeeded = event.code().is_none_or(|c| (200..300).contains(&c));

        // What changed: the response against the object as last seen; a delete removes it.
        let mut changed = Vec::new();
        let mut previous_unknown = false;
        if succeeded {
            let after = if event.verb.starts_with("delete") {
                None
            } else {
                event
                    .response_object
                    .as_ref()
                    .filter(|o| o.get("kind").and_then(Value::as_str) != Some("Status"))
                    .map(|o| self.scope.projection(subject, o))
            };
            let before = self.last.get(&key).cloned();
            match (&before, &after) {
                (Some(b), Some(a)) => changed = events::changes(b, a),
                (None, Some(a)) if event.verb == "create" => changed = events::changes(&json!({}), a),
                (None, Some(a)) => {
                    // Not seen before (the writer started after the object was made): the fields
                    // the request wrote, with their old values unknown.
                    previous_unknown = true;
                    let written = event
                        .request_object
                        .as_ref()
                        .map(|r| self.scope.projection(subject, r))
                        .unwrap_or_else(|| a.clone());
                    changed = events::changes(&json!({}), &written)
                        .into_iter()
                        .map(|c| events::Change {
                            new: pointer(a, &c.path).cloned().or(c.new),
                            ..c
                        })
                        .collect();
                }
                (Some(b), None) => changed = events::changes(b, &json!({})),
                (None, None) => {}
            }
            match after {
                Some(a) => {
                    self.last.insert(key.clone(), a);
                }
                None if event.verb.starts_with("delete") => {
                    self.last.remove(&key);
                }
                None => {}
            }
        }
        // A Node is kept only for a change of the contract's keys.
        if subject == Subject::Node && changed.is_empty() {
            return;
        }

        let (user, groups, impersonator) = match &event.impersonated_user {
            Some(as_user) => (
                as_user.username.clone(),
                as_user.groups.clone(),
                Some(event.user.username.clone()),
            ),
            None => (event.user.username.clone(), event.user.groups.clone(), None),
        };
        let object = ObjectRef {
            api_group: object_ref.api_group.clone().unwrap_or_default(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            uid: event.uid(),
        };
        let mut detail = serde_json::Map::new();
        if let Some(imp) = &impersonator {
            detail.insert("impersonator".into(), json!(imp));
        }
        if let Some(sub) = object_ref.subresource.as_ref().filter(|s| !s.is_empty()) {
            detail.insert("subresource".into(), json!(sub));
        }
        if let Some(code) = event.code() {
            detail.insert("code".into(), json!(code));
        }
        if previous_unknown {
            detail.insert("previousUnknown".into(), json!(true));
        }
        if let Some(agent) = &event.user_agent {
            detail.insert("userAgent".into(), json!(cut(&json!(agent))));
        }
        let ns = key.1.clone();

        // Why a request happened: a NodeTask's creation follows from its workflow's decision.
        let mut caused_by = Vec::new();
        let mut task_workflow = None;
        if kind == "NodeTask" {
            let spec = event
                .response_object
                .as_ref()
                .or(event.request_object.as_ref())
                .and_then(|o| o.get("spec"));
            if let Some(wf) = spec.and_then(|s| s.get("workflowRef")) {
                let wf_key = (
                    wf.get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    ns.clone(),
                    wf.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                );
                task_workflow = Some(wf_key);
            }
        }
        if event.verb == "create"
            && succeeded
            && let Some(wf_key) = &task_workflow
        {
            detail.insert("workflow".into(), json!({"kind": wf_key.0, "name": wf_key.2}));
            if let Some(decision) = self.last_decision.get(wf_key) {
                caused_by.push(decision.clone());
                self.task_decision
                    .insert((ns.clone(), name.clone()), decision.clone());
            } else if let Some(created) = self.created_by.get(wf_key) {
                caused_by.push(created.clone());
            }
            self.tasks_since
                .entry(wf_key.clone())
                .or_default()
                .push(name.clone());
        }

        let request = Entry {
            kind: EntryKind::Request,
            time: event.stage_timestamp.clone(),
            id: event.audit_id.clone(),
            user: Some(user.clone()),
            groups: groups.clone(),
            verb: Some(event.verb.clone()),
            object: Some(object.clone()),
            changes: changed.iter().map(field_change).collect(),
            workflow: None,
            caused_by,
            detail: Value::Object(detail),
        };
        let request_id = request.id.clone();
        self.seen.insert(request_id.clone());
        if succeeded && event.verb == "create" {
            self.created_by.insert(key.clone(), request_id.clone());
            if WORKFLOW_KINDS.contains(&kind.as_str())
                && let Some(uid) = &object.uid
            {
                self.workflow_uid.insert(key.clone(), uid.clone());
            }
        }
        if kind == "EdgeCluster" && changed.iter().any(|c| c.path.starts_with("/spec/workflows")) {
            self.mode_change.insert(ns.clone(), request_id.clone());
        }
        out.push(request);

        if !succeeded {
            return;
        }
        let status_changed = changed.iter().any(|c| c.path.starts_with("/status"));
        if WORKFLOW_KINDS.contains(&kind.as_str())
            && status_changed
            && let Some(decision) = self.decision(event, &key, &object, &request_id, &user, &changed)
        {
            out.push(decision);
        }
        if kind == "NodeTask"
            && status_changed
            && let Some(step) = self.step(event, &key, task_workflow.as_ref(), &request_id, &user, &groups)
        {
            out.push(step);
        }
    }

    fn decision(
        &mut self,
        event: &Event,
        key: &Key,
        object: &ObjectRef,
        request_id: &str,
        user: &str,
        changed: &[events::Change],
    ) -> Option<Entry> {
        let response = event.response_object.as_ref()?;
        let status = response.get("status")?;
        let uid = object
            .uid
            .clone()
            .or_else(|| self.workflow_uid.get(key).cloned())
            .unwrap_or_default();
        let version = events::string_at(response, &["metadata", "resourceVersion"])
            .unwrap_or_else(|| request_id.to_owned());
        let id = format!("{uid}/{version}");
        if self.seen.contains(&id) {
            return None;
        }
        let state = status
            .get("phase")
            .or_else(|| status.get("state"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut caused_by = vec![request_id.to_owned()];
        for link in [
            self.created_by.get(key),
            self.mode_change.get(&key.1),
            self.last_decision.get(key),
        ]
        .into_iter()
        .flatten()
        {
            if !caused_by.contains(link) {
                caused_by.push(link.clone());
            }
        }
        let tasks = self.tasks_since.remove(key).unwrap_or_default();
        let facts: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .map(|c| {
                        json!({
                            "type": c.get("type"), "status": c.get("status"),
                            "reason": c.get("reason"), "message": c.get("message").map(cut),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let transition = status
            .get("history")
            .and_then(Value::as_array)
            .and_then(|h| h.last())
            .cloned();
        let mut detail = serde_json::Map::new();
        if !facts.is_empty() {
            detail.insert("facts".into(), Value::Array(facts));
        }
        if let Some(t) = transition {
            detail.insert("transition".into(), cut(&t));
        }
        if !tasks.is_empty() {
            detail.insert("tasksCreated".into(), json!(tasks));
        }
        if let Some(spec) = response.get("spec") {
            detail.insert("spec".into(), cut(spec));
        }
        let entry = Entry {
            kind: EntryKind::Decision,
            time: event.stage_timestamp.clone(),
            id: id.clone(),
            user: Some(user.to_owned()),
            groups: Vec::new(),
            verb: None,
            object: Some(object.clone()),
            changes: changed
                .iter()
                .filter(|c| c.path.starts_with("/status"))
                .map(field_change)
                .collect(),
            workflow: Some(WorkflowRef {
                kind: key.0.clone(),
                name: key.2.clone(),
                uid,
                state,
            }),
            caused_by,
            detail: Value::Object(detail),
        };
        self.last_decision.insert(key.clone(), id.clone());
        self.seen.insert(id);
        Some(entry)
    }

    fn step(
        &mut self,
        event: &Event,
        key: &Key,
        workflow: Option<&Key>,
        request_id: &str,
        user: &str,
        groups: &[String],
    ) -> Option<Entry> {
        let task = event.response_object.as_ref()?;
        let status = task.get("status")?;
        let phase = status.get("phase").and_then(Value::as_str)?;
        if !matches!(phase, "Succeeded" | "Failed" | "Unknown") {
            return None;
        }
        let spec = task.get("spec")?;
        let idempotency_key = spec.get("idempotencyKey").and_then(Value::as_str)?;
        let attempts = status.get("attempts").and_then(Value::as_i64).unwrap_or(0);
        let id = format!("{idempotency_key}/{attempts}");
        if phase == "Unknown" {
            // Not finished: the agent checks the host and reports Succeeded or Failed later.
            return None;
        }
        if self.seen.contains(&id) {
            return None;
        }
        let mut caused_by = vec![request_id.to_owned()];
        for link in [
            self.created_by.get(key),
            self.task_decision.get(&(key.1.clone(), key.2.clone())),
        ]
        .into_iter()
        .flatten()
        {
            if !caused_by.contains(link) {
                caused_by.push(link.clone());
            }
        }
        let workflow = workflow.map(|wf| WorkflowRef {
            kind: wf.0.clone(),
            name: wf.2.clone(),
            uid: self.workflow_uid.get(wf).cloned().unwrap_or_default(),
            state: None,
        });
        let detail = json!({
            "node": spec.get("nodeName"),
            "step": spec.get("step"),
            "args": spec.get("args").cloned().unwrap_or_else(|| json!([])),
            "phase": phase,
            "exitCode": status.get("exitCode"),
            "claimedBy": status.get("claimedBy"),
            "message": status.get("message").map(cut),
            "output": status.get("output").map(cut),
        });
        let entry = Entry {
            kind: EntryKind::Step,
            time: event.stage_timestamp.clone(),
            id: id.clone(),
            user: Some(user.to_owned()),
            groups: groups.to_vec(),
            verb: None,
            object: event.object_ref.as_ref().map(|_| ObjectRef {
                api_group: self.scope.group.clone(),
                kind: "NodeTask".into(),
                namespace: Some(key.1.clone()).filter(|n| !n.is_empty()),
                name: key.2.clone(),
                uid: event.uid(),
            }),
            changes: Vec::new(),
            workflow,
            caused_by,
            detail,
        };
        self.seen.insert(id);
        Some(entry)
    }
}

fn pointer<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    value.pointer(path)
}

fn field_change(c: &events::Change) -> FieldChange {
    FieldChange {
        path: c.path.clone(),
        old: c.old.as_ref().map(cut),
        new: c.new.as_ref().map(cut),
    }
}

/// `value`, or when its JSON is longer than [`MAX_VALUE_BYTES`], an object saying so with the
/// beginning of its text.
pub fn cut(value: &Value) -> Value {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() <= MAX_VALUE_BYTES {
        return value.clone();
    }
    let mut end = MAX_VALUE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({"cut": true, "bytes": text.len(), "start": &text[..end]})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// Audit events the test API server wrote (its log backend, one JSON event per line: the same
    /// events its webhook backend posts) for: two ConfigMaps the API server makes itself, the
    /// legacy cluster-state ConfigMap created and patched, a Node created with a contract label,
    /// relabelled, tainted and given an unrelated label, an EdgeCluster refused (422), a Migration
    /// created by alice through impersonation, its status written, a NodeTask created for it and
    /// its result written, the EdgeCluster created and its migration mode changed by alice.
    fn captured() -> Vec<Event> {
        include_str!("../testdata/captured-events.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn by_id<'a>(entries: &'a [Entry], id: &str) -> &'a Entry {
        entries
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("no entry {id}"))
    }

    fn id_of(events: &[Event], verb: &str, resource: &str, subresource: Option<&str>) -> String {
        events
            .iter()
            .filter(|e| e.verb == verb)
            .filter(|e| {
                e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.resource == resource && o.subresource.as_deref() == subresource)
            })
            .filter(|e| e.code().is_some_and(|c| c < 300))
            .map(|e| e.audit_id.clone())
            .next()
            .unwrap()
    }

    #[test]
    fn captured_events_become_requests_decisions_and_steps_linked_from_the_person_to_the_host_step() {
        let events = captured();
        let entries = Trail::new(Scope::default()).ingest(&events);
        let summary: Vec<String> = entries
            .iter()
            .map(|e| {
                let o = e.object.as_ref().unwrap();
                format!(
                    "{:?} {} {}/{}",
                    e.kind,
                    e.verb.as_deref().unwrap_or("-"),
                    o.kind,
                    o.name
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "Request create ConfigMap/vx-rail-cluster-state",
                "Request patch ConfigMap/vx-rail-cluster-state",
                "Request create Node/edge-1",
                "Request patch Node/edge-1",
                "Request patch Node/edge-1",
                "Request create EdgeCluster/site",
                "Request create Migration/grow-site",
                "Request patch Migration/grow-site",
                "Decision - Migration/grow-site",
                "Request create NodeTask/grow-site-edge-1-node-create",
                "Request patch NodeTask/grow-site-edge-1-node-create",
                "Step - NodeTask/grow-site-edge-1-node-create",
                "Request create EdgeCluster/site",
                "Request patch EdgeCluster/site",
            ],
            "the API server's own ConfigMaps and the unrelated Node label are left out"
        );

        // Who: the impersonated user, with the impersonator kept.
        let create = by_id(&entries, &id_of(&events, "create", "migrations", None));
        assert_eq!(create.user.as_deref(), Some("alice"));
        assert_eq!(create.groups, ["system:authenticated"]);
        assert_eq!(create.detail["impersonator"], "nodewright-admin");
        // What: the fields that changed, old and new.
        let relabel = entries
            .iter()
            .filter(|e| e.object.as_ref().unwrap().kind == "Node")
            .nth(1)
            .unwrap();
        assert_eq!(relabel.changes.len(), 1);
        assert_eq!(relabel.changes[0].path, "/metadata/labels/vx-rail.io~1role");
        assert_eq!(relabel.changes[0].old, Some(json!("primary")));
        assert_eq!(relabel.changes[0].new, Some(json!("member")));
        let mode = by_id(&entries, &id_of(&events, "patch", "edgeclusters", None));
        assert_eq!(mode.user.as_deref(), Some("alice"));
        let paths: Vec<(&str, Option<&Value>, Option<&Value>)> = mode
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.old.as_ref(), c.new.as_ref()))
            .collect();
        assert_eq!(
            paths,
            [(
                "/spec/workflows/migration",
                Some(&json!("shadow")),
                Some(&json!("operator"))
            )]
        );
        // A refused request is recorded, with its code and nothing changed.
        let refused = entries.iter().find(|e| e.detail["code"] == 422).unwrap();
        assert!(refused.changes.is_empty());

        // Why: the decision follows from the status write and the Migration's creation; the task
        // from the decision; the step from the task's report, its creation and the decision.
        let status_write = id_of(&events, "patch", "migrations", Some("status"));
        let decision = entries.iter().find(|e| e.kind == EntryKind::Decision).unwrap();
        assert_eq!(decision.caused_by, [status_write, create.id.clone()]);
        let workflow = decision.workflow.as_ref().unwrap();
        assert_eq!(
            (workflow.kind.as_str(), workflow.state.as_deref()),
            ("Migration", Some("Preflight"))
        );
        assert!(decision.id.starts_with(&format!(
            "{}/",
            create.object.as_ref().unwrap().uid.as_deref().unwrap()
        )));
        assert_eq!(decision.detail["facts"][0]["message"], "preflight");
        let task = by_id(&entries, &id_of(&events, "create", "nodetasks", None));
        assert_eq!(task.caused_by, std::slice::from_ref(&decision.id));
        let step = by_id(&entries, "grow-site.edge-1.node-create/1");
        assert_eq!(
            step.caused_by,
            [
                id_of(&events, "patch", "nodetasks", Some("status")),
                task.id.clone(),
                decision.id.clone()
            ]
        );
        assert_eq!(step.detail["step"], "linstor-node-create");
        assert_eq!(step.detail["args"], json!(["edge-2", "10.0.0.2"]));
        assert_eq!(step.detail["exitCode"], 0);
        assert_eq!(step.workflow.as_ref().unwrap().uid, workflow.uid);
        // Every entry fits a leaf.
        for e in &entries {
            assert!(e.to_leaf().unwrap().len() <= nodewright_audit::MAX_ENTRY_BYTES);
        }
    }

    #[test]
    fn a_batch_sent_again_yields_nothing_new() {
        let events = captured();
        let mut trail = Trail::new(Scope::default());
        assert_eq!(trail.ingest(&events).len(), 14);
        assert!(trail.ingest(&events).is_empty());
    }

    #[test]
    fn a_trail_rebuilt_from_the_log_links_later_events_as_the_running_one_does() {
        let events = captured();
        let (first, rest) = events.split_at(13);
        let mut running = Trail::new(Scope::default());
        let earlier = running.ingest(first);
        let later = running.ingest(rest);
        let mut rebuilt = Trail::new(Scope::default());
        for e in &earlier {
            rebuilt.observe(e);
        }
        let again = rebuilt.ingest(rest);
        let links = |es: &[Entry]| -> Vec<(String, Vec<String>)> {
            es.iter().map(|e| (e.id.clone(), e.caused_by.clone())).collect()
        };
        assert!(later.iter().any(|e| e.kind == EntryKind::Step));
        assert_eq!(links(&again), links(&later));
        let repeated = rebuilt.ingest(first);
        assert!(
            repeated.is_empty(),
            "what the log holds is not produced again: {repeated:?}"
        );
    }
}

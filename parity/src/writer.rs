//! The operator's one writer: every write a plan asks for goes through [`Writer`], which checks
//! that this replica still leads before each one and sends each one guarded, so that a replica
//! that lost its Lease, or a decision made from a copy that changed since, never lands.
//!
//! Guards: NodeTasks are created under their idempotency key (a repeat is refused as existing,
//! and counts as done); Nodes, the legacy cluster-state ConfigMap and Migration statuses are
//! patched with the `resourceVersion` the decision read (a 409 means "decide again"), and a patch
//! of one of them without a version to guard it is refused before it is sent; the takeover
//! ConfigMap is server-side applied under the operator's field manager, with the
//! `resourceVersion` the decision read while it exists (so that a generation decided from an
//! older copy never lands); the operator's part of the EdgeCluster status is server-side applied
//! under the field manager, which owns those fields and nothing else.
//!
//! Boundaries: this module decides nothing. It is the only place in `parity` that writes to the
//! API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::migration::Migration;
use nodewright_api::nodetask::NodeTask;
use nodewright_bridge::index::LegacyNames;
use prometheus::IntCounterVec;
use serde_json::json;
use tokio::sync::watch;

use crate::controllers::{Sequence, Write};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "nodewright-operator";

/// Why a write was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This replica does not lead (any more): nothing was sent.
    #[error("not the leader; the write was not sent")]
    NotLeader,
    /// The object changed after the decision read it (409 Conflict): the next turn decides again
    /// from what it is now.
    #[error("{0} changed since the decision read it; deciding again")]
    Conflict(String),
    /// The decision did not read the object's `resourceVersion` (the watch had not delivered it):
    /// nothing was sent, since an unguarded patch could overwrite what a script wrote since.
    #[error("{0} has not been seen at any version; not patching it unguarded")]
    Unguarded(String),
    /// The API server refused or failed the write.
    #[error("writing {what}: {source}")]
    Api {
        /// What was written.
        what: String,
        /// The error.
        source: kube::Error,
    },
}

impl WriteError {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WriteError::NotLeader => "not-leader",
            WriteError::Conflict(_) => "conflict",
            WriteError::Unguarded(_) => "unguarded",
            WriteError::Api { .. } => "error",
        }
    }
}

/// The one writer. Clones share the leadership channel and the counter.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    namespace: String,
    legacy: LegacyNames,
    leader: watch::Receiver<bool>,
    actions: IntCounterVec,
    recorder: Recorder,
}

impl Writer {
    /// A writer into `namespace` (Nodewright's objects) and `legacy.namespace` (the legacy
    /// ConfigMaps), that writes only while `leader` says this replica leads, counting each write
    /// in `actions` (labels: workflow, kind, result).
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        legacy: LegacyNames,
        leader: watch::Receiver<bool>,
        actions: IntCounterVec,
        identity: impl Into<String>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.to_owned(),
                instance: Some(identity.into()),
            },
        );
        Writer {
            client,
            namespace: namespace.into(),
            legacy,
            leader,
            actions,
            recorder,
        }
    }

    /// Whether this replica leads now.
    pub fn leading(&self) -> bool {
        *self.leader.borrow()
    }

    fn check_leading(&self) -> Result<(), WriteError> {
        if self.leading() {
            Ok(())
        } else {
            Err(WriteError::NotLeader)
        }
    }

    /// Makes the writes of one sequence in order, stopping at the first that fails, and reports
    /// each one made in an Event about the sequence's workflow object. Returns how many were made,
    /// and the error that stopped the rest.
    pub async fn sequence(&self, workflow: &str, sequence: &Sequence) -> (usize, Option<WriteError>) {
        let writes = &sequence.writes;
        for (done, w) in writes.iter().enumerate() {
            let result = self.write(w).await;
            if let (Ok(()), Some((reason, action, note))) = (&result, report(w)) {
                self.event(&sequence.regarding, reason, action, note).await;
            }
            let label = match &result {
                Ok(()) => "ok",
                Err(e) => e.metric_label(),
            };
            self.actions.with_label_values(&[workflow, w.kind(), label]).inc();
            if let Err(e) = result {
                return (done, Some(e));
            }
        }
        (writes.len(), None)
    }

    /// Makes one write, if this replica leads.
    pub async fn write(&self, w: &Write) -> Result<(), WriteError> {
        self.check_leading()?;
        match w {
            Write::CreateTask(task) => {
                let api: Api<NodeTask> = Api::namespaced(self.client.clone(), &self.namespace);
                let name = task.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), task).await {
                    Ok(_) => Ok(()),
                    // Created by an earlier turn that did not get to write what followed.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(source) => Err(WriteError::Api {
                        what: format!("NodeTask {name}"),
                        source,
                    }),
                }
            }
            Write::PatchNode {
                name,
                resource_version,
                labels,
                taints,
                what: _,
            } => {
                if resource_version.is_empty() {
                    return Err(WriteError::Unguarded(format!("Node {name}")));
                }
                let mut metadata = json!({ "resourceVersion": resource_version });
                if !labels.is_empty() {
                    metadata["labels"] = json!(labels);
                }
                let mut patch = json!({ "metadata": metadata });
                if let Some(taints) = taints {
                    patch["spec"] = json!({ "taints": taints });
                }
                let api: Api<Node> = Api::all(self.client.clone());
                guarded(
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                    || format!("Node {name}"),
                )?;
                Ok(())
            }
            Write::PatchClusterState {
                resource_version,
                data,
            } => {
                let name = &self.legacy.cluster_state;
                let Some(resource_version) = resource_version.as_deref().filter(|v| !v.is_empty()) else {
                    return Err(WriteError::Unguarded(format!("ConfigMap {name}")));
                };
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.legacy.namespace);
                let patch = json!({
                    "metadata": { "resourceVersion": resource_version },
                    "data": data,
                });
                guarded(
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                    || format!("ConfigMap {name}"),
                )?;
                Ok(())
            }
            Write::MigrationStatus {
                name,
                resource_version,
                status,
            } => {
                if resource_version.is_empty() {
                    return Err(WriteError::Unguarded(format!("Migration {name}")));
                }
                let api: Api<Migration> = Api::namespaced(self.client.clone(), &self.namespace);
                let patch = json!({
                    "metadata": { "resourceVersion": resource_version },
                    "status": status,
                });
                guarded(
                    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                    || format!("Migration {name}"),
                )?;
                Ok(())
            }
        }
    }

    /// Server-side applies the takeover ConfigMap (the operator owns it whole), guarded by
    /// `resource_version`, the version the decision read, when the ConfigMap existed then. Forced:
    /// no one else may own its fields (a hand edit is taken back, as the spec is the way to change
    /// it). Without a version (the ConfigMap was not there) the apply creates it; a ConfigMap
    /// written meanwhile by another replica cannot happen while this one leads.
    pub async fn apply_takeover(
        &self,
        name: &str,
        resource_version: Option<&str>,
        data: &BTreeMap<String, String>,
    ) -> Result<(), WriteError> {
        self.check_leading()?;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.legacy.namespace);
        let mut cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            },
            "data": data,
        });
        if let Some(version) = resource_version {
            cm["metadata"]["resourceVersion"] = json!(version);
        }
        guarded(
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await,
            || format!("ConfigMap {name}"),
        )?;
        Ok(())
    }

    /// Server-side applies the operator's part of an EdgeCluster's status (`takeover`,
    /// `divergences`; the bridge owns the rest under its own field manager).
    pub async fn apply_cluster_status(
        &self,
        name: &str,
        status: &serde_json::Value,
    ) -> Result<(), WriteError> {
        self.check_leading()?;
        let api: Api<EdgeCluster> = Api::namespaced(self.client.clone(), &self.namespace);
        let body = json!({
            "apiVersion": "nodewright.io/v1alpha1",
            "kind": "EdgeCluster",
            "metadata": {"name": name},
            "status": status,
        });
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| WriteError::Api {
            what: format!("EdgeCluster {name} status"),
            source,
        })?;
        Ok(())
    }

    /// Publishes an Event about `regarding`, if this replica leads. A failure is logged: an Event
    /// that cannot be written must not undo or repeat the action it reports.
    pub async fn event(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.warning_or_normal(regarding, EventType::Normal, reason, action, note)
            .await;
    }

    /// Publishes a Warning Event about `regarding`, if this replica leads.
    pub async fn warning(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.warning_or_normal(regarding, EventType::Warning, reason, action, note)
            .await;
    }

    async fn warning_or_normal(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        if !self.leading() {
            return;
        }
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(error = %e, reason, "publishing an Event failed");
        }
    }
}

/// The Event that reports a write made: its reason, action and note; `None` for a status write
/// (bookkeeping of what the other writes did, reported by them).
pub fn report(w: &Write) -> Option<(&'static str, &'static str, String)> {
    match w {
        Write::CreateTask(task) => Some((
            "NodeTaskCreated",
            "CreateNodeTask",
            format!(
                "NodeTask {} asks node {} to run {} {}",
                task.metadata.name.as_deref().unwrap_or_default(),
                task.spec.node_name,
                task.spec.step,
                task.spec.args.join(" ")
            ),
        )),
        Write::PatchNode { name, what, .. } => Some((
            "NodeUpdated",
            "PatchNode",
            format!("Node {name}: {}", what.join(", ")),
        )),
        Write::PatchClusterState { data, .. } => Some((
            "LegacyStateWritten",
            "PatchClusterState",
            format!(
                "cluster-state keys {}",
                data.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ),
        )),
        Write::MigrationStatus { .. } => None,
    }
}

/// A guarded write's result: a 409 is a [`WriteError::Conflict`].
fn guarded<T>(result: Result<T, kube::Error>, what: impl Fn() -> String) -> Result<T, WriteError> {
    match result {
        Ok(v) => Ok(v),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(WriteError::Conflict(what())),
        Err(source) => Err(WriteError::Api { what: what(), source }),
    }
}

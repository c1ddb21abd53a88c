//! The operator's one writer: every write a plan asks for goes through [`Writer`], which checks
//! that this replica still leads before each one and sends each one guarded, so that a replica
//! that lost its Lease sends nothing more, and a decision made from a copy that changed since
//! never lands. A write sent just before the Lease was lost can still land after another replica
//! took over (nothing bounds how long a request takes to reach the API server; the model check
//! `nodewright-verify fence` shows the interleaving): being guarded, it lands only on the version
//! it was decided from, never over a newer leader's decision (docs/verification.md).
//!
//! Guards: NodeTasks are created under their idempotency key (a repeat is refused as existing,
//! and counts as done), and so are StorageUpgrades (under the name derived from the version
//! requested); Nodes (labels, annotations, taints, cordon), the legacy cluster-state ConfigMap and
//! Migration statuses are patched, and StorageUpgrade statuses replaced, with the
//! `resourceVersion` the decision read (a 409 means "decide again"), and a patch of one of them
//! without a version to guard it is refused before it is sent; a pod is evicted through the
//! Eviction API, which refuses (429) what a PodDisruptionBudget protects, and only while it is
//! still the pod the decision saw on that node (its uid is the eviction's precondition); the
//! site's storage gate is the create of its Lease (one holder at a time) and the delete of it
//! with the `resourceVersion` the release was decided from; the takeover
//! ConfigMap is server-side applied under the operator's field manager, with the
//! `resourceVersion` the decision read while it exists (so that a generation decided from an
//! older copy never lands); the operator's part of the EdgeCluster status is server-side applied
//! under the field manager, which owns those fields and nothing else.
//!
//! Attribution: every NodeTask carries its creator's user name in `nodewright.io/created-by`,
//! the name the API server authenticates this operator as (asked once, by a SelfSubjectReview):
//! the chart's admission policy lets only the operator create NodeTasks and only under its own
//! name, and the agents run only tasks so attributed.
//!
//! Boundaries: this module decides nothing. It is the only place in `parity` that writes to the
//! API server.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, MicroTime, ObjectMeta, Preconditions};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use nodewright_api::bondflip::BondFlip;
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_api::migration::Migration;
use nodewright_api::nodetask::{CREATED_BY_ANNOTATION, NodeTask};
use nodewright_api::storageupgrade::{StorageUpgrade, StorageUpgradeStatus};
use nodewright_bridge::index::LegacyNames;
use nodewright_kit::clock::unix_now;
use prometheus::IntCounterVec;
use serde_json::json;
use tokio::sync::watch;

use crate::controllers::{GATE_LEASE, LegacyConfigMap, Sequence, Write};

/// What a write that succeeded did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Made {
    /// It changed the cluster: reported in an Event.
    Acted,
    /// What it asks for was already so (made by an earlier turn, or gone by itself): done, and
    /// not reported again.
    AlreadyDone,
}

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
    /// The API server's SelfSubjectReview named no user, so a NodeTask could not be attributed
    /// to this operator; none was created.
    #[error(
        "the API server did not say who the operator is (a SelfSubjectReview with no user name); no NodeTask is created unattributed"
    )]
    NoIdentity,
    /// The decision did not read the object's `resourceVersion` (the watch had not delivered it):
    /// nothing was sent, since an unguarded patch could overwrite what a script wrote since.
    #[error("{0} has not been seen at any version; not patching it unguarded")]
    Unguarded(String),
    /// The API server declined the write for a reason that is not an error and that a later
    /// turn may find gone: a PodDisruptionBudget that does not allow the eviction now (429), the
    /// storage gate held by another workflow. The rest of the sequence is not sent; the next turn
    /// decides again. Reported in an Event (`reason`), counted as `refused`.
    #[error("{message}")]
    Refused {
        /// The Event's reason (`EvictionRefused`, `StorageGateBusy`).
        reason: &'static str,
        /// What was refused and why, as the API server said it.
        message: String,
    },
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
            WriteError::NoIdentity => "no-identity",
            WriteError::Refused { .. } => "refused",
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
    /// The user name the API server knows this operator by, once asked.
    creator: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl Writer {
    /// A writer into `namespace` (Nodewright's objects) and `legacy.namespace` (the legacy
    /// ConfigMaps), that writes only while `leader` says this replica leads, counting each write
    /// in `actions` (labels: workflow, kind, result). `client` should not retry 429s (kube's
    /// `Config::default_retry`, on by default): the Eviction API answers 429 when a
    /// PodDisruptionBudget does not allow an eviction now, and a retrying client waits that answer
    /// out for minutes before the writer can report it.
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
            creator: std::sync::Arc::default(),
        }
    }

    /// The user name the API server authenticates this operator's requests as: what a NodeTask's
    /// `nodewright.io/created-by` must say for the admission policy to let the create through.
    /// Asked once, by a SelfSubjectReview, which every authenticated user may make.
    pub async fn creator(&self) -> Result<&str, WriteError> {
        self.creator
            .get_or_try_init(|| async {
                let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
                let review = api
                    .create(&PostParams::default(), &SelfSubjectReview::default())
                    .await
                    .map_err(|source| WriteError::Api {
                        what: "SelfSubjectReview (who the operator is)".to_owned(),
                        source,
                    })?;
                review
                    .status
                    .and_then(|s| s.user_info)
                    .and_then(|u| u.username)
                    .filter(|u| !u.is_empty())
                    .ok_or(WriteError::NoIdentity)
            })
            .await
            .map(String::as_str)
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
            let made = self.write_made(w).await;
            // A write an earlier turn already made (a task or an upgrade that exists, a pod
            // already gone or going, a gate already held or released) counts as done and is not
            // reported again.
            let acted = matches!(made, Ok(Made::Acted));
            let result = made.map(|_| ());
            let mut warned = false;
            if let (true, Some((reason, action, note))) = (acted, report(w)) {
                if reason == ROLLBACK_INCOMPLETE_REASON {
                    // The failure's own Warning: not sent again below.
                    warned = true;
                    self.warning(&sequence.regarding, reason, action, note).await;
                } else {
                    self.event(&sequence.regarding, reason, action, note).await;
                }
            }
            if let (Ok(()), Some((reason, action, note)), false) = (&result, failure(w), warned) {
                self.warning(&sequence.regarding, &reason, action, note).await;
            }
            if let Err(WriteError::Refused { reason, message }) = &result {
                // A budget holding a drain back is for a person to see; a gate taken by another
                // workflow between two turns is ordinary.
                if *reason == EVICTION_REFUSED_REASON {
                    self.warning(&sequence.regarding, reason, "Evict", message.clone())
                        .await;
                } else if *reason == HOST_CONFIG_CONFLICT_REASON {
                    // A person's spec.host stands; they should know the node.conf says otherwise.
                    self.warning(&sequence.regarding, reason, "ApplyHostConfig", message.clone())
                        .await;
                } else {
                    self.event(&sequence.regarding, reason, "AcquireGate", message.clone())
                        .await;
                }
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

    /// Makes one write, if this replica leads. The crash tests' failpoints
    /// `writer.<kind>.before` and `writer.<kind>.after` stand around it (`kit::failpoint`).
    pub async fn write(&self, w: &Write) -> Result<(), WriteError> {
        self.write_made(w).await.map(|_| ())
    }

    async fn write_made(&self, w: &Write) -> Result<Made, WriteError> {
        self.check_leading()?;
        let (before, after) = failpoints(w);
        nodewright_kit::failpoint::hit(before);
        let result = self.write_unpointed(w).await;
        if result.is_ok() {
            nodewright_kit::failpoint::hit(after);
        }
        result
    }

    async fn write_unpointed(&self, w: &Write) -> Result<Made, WriteError> {
        match w {
            Write::CreateTask(task) => {
                let api: Api<NodeTask> = Api::namespaced(self.client.clone(), &self.namespace);
                let name = task.metadata.name.clone().unwrap_or_default();
                let mut task = (**task).clone();
                task.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(CREATED_BY_ANNOTATION.to_owned(), self.creator().await?.to_owned());
                match api.create(&PostParams::default(), &task).await {
                    Ok(_) => Ok(Made::Acted),
                    // Created by an earlier turn that did not get to write what followed.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(Made::AlreadyDone),
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
                annotations,
                taints,
                unschedulable,
                what: _,
            } => {
                if resource_version.is_empty() {
                    return Err(WriteError::Unguarded(format!("Node {name}")));
                }
                let mut metadata = json!({ "resourceVersion": resource_version });
                if !labels.is_empty() {
                    metadata["labels"] = json!(labels);
                }
                if !annotations.is_empty() {
                    metadata["annotations"] = json!(annotations);
                }
                let mut patch = json!({ "metadata": metadata });
                if let Some(taints) = taints {
                    patch["spec"] = json!({ "taints": taints });
                }
                if let Some(unschedulable) = unschedulable {
                    patch["spec"]["unschedulable"] = json!(unschedulable);
                }
                let api: Api<Node> = Api::all(self.client.clone());
                guarded(
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                    || format!("Node {name}"),
                )?;
                Ok(Made::Acted)
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
                Ok(Made::Acted)
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
                Ok(Made::Acted)
            }
            Write::Evict {
                namespace,
                name,
                node,
            } => self.evict(namespace, name, node).await,
            Write::StorageUpgradeStatus {
                name,
                resource_version,
                status,
            } => {
                if resource_version.is_empty() {
                    return Err(WriteError::Unguarded(format!("StorageUpgrade {name}")));
                }
                self.replace_upgrade_status(name, resource_version, status).await
            }
            Write::CreateStorageUpgrade(upgrade) => {
                let api: Api<StorageUpgrade> = Api::namespaced(self.client.clone(), &self.namespace);
                let name = upgrade.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), upgrade).await {
                    Ok(_) => Ok(Made::Acted),
                    // Created by an earlier turn (or by a person, under the same name).
                    Err(kube::Error::Api(e)) if e.is_already_exists() => Ok(Made::AlreadyDone),
                    Err(source) => Err(WriteError::Api {
                        what: format!("StorageUpgrade {name}"),
                        source,
                    }),
                }
            }
            Write::CreateBondFlip(flip) => {
                let api: Api<BondFlip> = Api::namespaced(self.client.clone(), &self.namespace);
                let name = flip.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), flip).await {
                    Ok(_) => Ok(Made::Acted),
                    // Created by an earlier turn.
                    Err(kube::Error::Api(e)) if e.is_already_exists() => Ok(Made::AlreadyDone),
                    Err(source) => Err(WriteError::Api {
                        what: format!("BondFlip {name}"),
                        source,
                    }),
                }
            }
            Write::BondFlipStatus {
                name,
                resource_version,
                status,
            } => {
                if resource_version.is_empty() {
                    return Err(WriteError::Unguarded(format!("BondFlip {name}")));
                }
                let api: Api<BondFlip> = Api::namespaced(self.client.clone(), &self.namespace);
                let body = json!({
                    "apiVersion": "nodewright.io/v1alpha1",
                    "kind": "BondFlip",
                    "metadata": {"name": name, "resourceVersion": resource_version},
                    "status": status,
                });
                guarded(
                    api.replace_subresource("status", name, &PostParams::default(), &body)
                        .await,
                    || format!("BondFlip {name} status"),
                )?;
                Ok(Made::Acted)
            }
            Write::AcquireGate { holder } => self.acquire_gate(holder).await,
            Write::CreateLegacyConfigMap { name, data, .. } => {
                self.create_legacy_config_map(name, data).await
            }
            Write::ApplyHostConfig {
                edge_node,
                node_name,
                host,
            } => self.apply_host_config(edge_node, node_name, host).await,
            Write::ReleaseGate {
                holder,
                resource_version,
            } => self.release_gate(holder, resource_version).await,
        }
    }

    /// Evicts pod `namespace/name` from `node`, as `kubectl drain` does, through the
    /// `pods/eviction` subresource: the API server refuses (429) an eviction that a
    /// PodDisruptionBudget does not allow now, which is a [`WriteError::Refused`] naming the pod
    /// and the budget's answer. The pod is read first: one that is gone, or already being
    /// deleted, needs no eviction; one bound to another node now (a StatefulSet's pod recreated
    /// under its name) is not the pod the decision saw, a conflict. The eviction carries the uid
    /// read as its precondition, so a pod recreated in between is not evicted either.
    async fn evict(&self, namespace: &str, name: &str, node: &str) -> Result<Made, WriteError> {
        let what = || format!("pod {namespace}/{name} on node {node}");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = match api.get_opt(name).await {
            Ok(Some(pod)) => pod,
            Ok(None) => return Ok(Made::AlreadyDone),
            Err(source) => return Err(WriteError::Api { what: what(), source }),
        };
        let bound_to = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if bound_to != Some(node) {
            return Err(WriteError::Conflict(format!(
                "pod {namespace}/{name} (now on node {})",
                bound_to.unwrap_or("none")
            )));
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(Made::AlreadyDone);
        }
        let eviction = Eviction {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            delete_options: Some(DeleteOptions {
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteOptions::default()
            }),
        };
        // Not `Api::evict`: it sends the delete options under `delete_options`, which the API
        // server ignores, and the uid precondition would be lost.
        let result = api
            .create_subresource::<_, kube::core::Status>("eviction", name, &PostParams::default(), &eviction)
            .await;
        match result {
            Ok(_) => Ok(Made::Acted),
            // Gone since it was read.
            Err(kube::Error::Api(e)) if e.is_not_found() => Ok(Made::AlreadyDone),
            Err(kube::Error::Api(e)) if e.code == 429 => Err(WriteError::Refused {
                reason: EVICTION_REFUSED_REASON,
                message: format!("eviction of {} refused: {}", what(), refusal(&e)),
            }),
            Err(kube::Error::Api(e)) if e.code == 409 => Err(WriteError::Conflict(what())),
            Err(source) => Err(WriteError::Api { what: what(), source }),
        }
    }

    /// Replaces a StorageUpgrade's status (PUT of the status subresource), guarded by
    /// `resource_version`: the whole status the decision made, so nothing an earlier state wrote
    /// lingers. The body carries no spec: a PUT of the status subresource takes the status only.
    async fn replace_upgrade_status(
        &self,
        name: &str,
        resource_version: &str,
        status: &StorageUpgradeStatus,
    ) -> Result<Made, WriteError> {
        let api: Api<StorageUpgrade> = Api::namespaced(self.client.clone(), &self.namespace);
        let body = json!({
            "apiVersion": "nodewright.io/v1alpha1",
            "kind": "StorageUpgrade",
            "metadata": {"name": name, "resourceVersion": resource_version},
            "status": status,
        });
        guarded(
            api.replace_subresource("status", name, &PostParams::default(), &body)
                .await,
            || format!("StorageUpgrade {name} status"),
        )?;
        Ok(Made::Acted)
    }

    /// Creates a legacy ConfigMap (the cluster state, or a node's) with `data`, labelled as the
    /// operator's. A create never overwrites: the cluster state found existing was created by
    /// someone else since the decision read it absent (a conflict: decide again from it); a
    /// node's found existing is done (its script, or an earlier turn, made it).
    async fn create_legacy_config_map(
        &self,
        which: &LegacyConfigMap,
        data: &BTreeMap<String, String>,
    ) -> Result<Made, WriteError> {
        let name = match which {
            LegacyConfigMap::ClusterState => self.legacy.cluster_state.clone(),
            LegacyConfigMap::Node(node) => format!("{}{node}", self.legacy.node_prefix),
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.legacy.namespace);
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    FIELD_MANAGER.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(data.clone()),
            ..ConfigMap::default()
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match api.create(&params, &cm).await {
            Ok(_) => Ok(Made::Acted),
            Err(kube::Error::Api(e)) if e.is_already_exists() => match which {
                LegacyConfigMap::ClusterState => Err(WriteError::Conflict(format!(
                    "ConfigMap {name} (created by someone else since the decision read it absent)"
                ))),
                LegacyConfigMap::Node(_) => Ok(Made::AlreadyDone),
            },
            Err(source) => Err(WriteError::Api {
                what: format!("ConfigMap {name}"),
                source,
            }),
        }
    }

    /// Server-side applies `EdgeNode` `edge_node`'s `spec.host` under the operator's field
    /// manager, not forced: when another manager (a person) owns the field, the API server
    /// answers 409 and nothing is written; that is a [`WriteError::Refused`]
    /// ([`HOST_CONFIG_CONFLICT_REASON`]), reported in a Warning Event. The EdgeNode must exist
    /// (an apply would create one; the bridge creates them).
    async fn apply_host_config(
        &self,
        edge_node: &str,
        node_name: &str,
        host: &nodewright_api::hostconfig::HostConfig,
    ) -> Result<Made, WriteError> {
        let api: Api<EdgeNode> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = || format!("EdgeNode {edge_node} spec.host");
        match api.get_opt(edge_node).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(WriteError::Conflict(format!(
                    "EdgeNode {edge_node} (gone since the decision read it)"
                )));
            }
            Err(source) => return Err(WriteError::Api { what: what(), source }),
        }
        let body = json!({
            "apiVersion": "nodewright.io/v1alpha1",
            "kind": "EdgeNode",
            "metadata": {"name": edge_node},
            "spec": {"nodeName": node_name, "host": host},
        });
        match api
            .patch(
                edge_node,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => Ok(Made::Acted),
            Err(kube::Error::Api(e)) if e.code == 409 => Err(WriteError::Refused {
                reason: HOST_CONFIG_CONFLICT_REASON,
                message: format!(
                    "EdgeNode {edge_node}: spec.host is not adopted from node {node_name}'s node.conf: it is owned by another field manager, whose value stands ({})",
                    e.message
                ),
            }),
            Err(source) => Err(WriteError::Api { what: what(), source }),
        }
    }

    /// Takes the storage gate for `holder`: creates the Lease [`GATE_LEASE`] naming it. The
    /// Lease exists only while held, so a create that finds it is refused, unless it already
    /// names `holder` (an earlier turn took it and did not get to write what followed).
    async fn acquire_gate(&self, holder: &str) -> Result<Made, WriteError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(GATE_LEASE.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    FIELD_MANAGER.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                acquire_time: Some(MicroTime(nodewright_kit::clock::time(unix_now()).0)),
                ..LeaseSpec::default()
            }),
        };
        let what = || format!("Lease {GATE_LEASE} (the storage gate) for {holder}");
        match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Made::Acted),
            Err(kube::Error::Api(e)) if e.is_already_exists() => {
                let current = api
                    .get_opt(GATE_LEASE)
                    .await
                    .map_err(|source| WriteError::Api { what: what(), source })?;
                let held_by = current
                    .and_then(|l| l.spec)
                    .and_then(|s| s.holder_identity)
                    .unwrap_or_default();
                if held_by == holder {
                    Ok(Made::AlreadyDone)
                } else {
                    Err(WriteError::Refused {
                        reason: GATE_BUSY_REASON,
                        message: format!(
                            "the storage gate is held by {}; {holder} waits for it",
                            if held_by.is_empty() {
                                "nobody named"
                            } else {
                                &held_by
                            }
                        ),
                    })
                }
            }
            Err(source) => Err(WriteError::Api { what: what(), source }),
        }
    }

    /// Gives the storage gate back: deletes the Lease [`GATE_LEASE`] on the precondition that it
    /// is still at `resource_version`, the version whose holder the decision read (so a gate
    /// another workflow took since is never released from under it). Already gone counts as
    /// released.
    async fn release_gate(&self, holder: &str, resource_version: &str) -> Result<Made, WriteError> {
        if resource_version.is_empty() {
            return Err(WriteError::Unguarded(format!("Lease {GATE_LEASE}")));
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: Some(resource_version.to_owned()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(GATE_LEASE, &params).await {
            Ok(_) => Ok(Made::Acted),
            Err(kube::Error::Api(e)) if e.is_not_found() => Ok(Made::AlreadyDone),
            Err(kube::Error::Api(e)) if e.code == 409 => Err(WriteError::Conflict(format!(
                "Lease {GATE_LEASE} (the storage gate {holder} held)"
            ))),
            Err(source) => Err(WriteError::Api {
                what: format!("Lease {GATE_LEASE} (the storage gate) of {holder}"),
                source,
            }),
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

/// The Event that reports a write made: its reason, action and note. `None` for a Migration's
/// status write (bookkeeping of what the other writes did, reported by them), except the status
/// of a migration whose rollback gave up at its deadline: that is reported as a Warning naming
/// what it could not undo. A StorageUpgrade's status is written when the upgrade enters a state
/// or waits for something new, and each such write is reported with where the upgrade stands, so
/// that its Events follow it state by state.
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
        Write::PatchNode {
            name,
            what,
            unschedulable,
            ..
        } => Some((
            match unschedulable {
                Some(true) => "NodeCordoned",
                Some(false) => "NodeUncordoned",
                None => "NodeUpdated",
            },
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
        Write::MigrationStatus { status, .. } => {
            let gave_up = status.history.last().and_then(|t| {
                (t.phase == nodewright_api::migration::MigrationPhase::Failed)
                    .then_some(t.message.as_deref())
                    .flatten()
                    .filter(|m| m.starts_with(crate::migration::ROLLBACK_INCOMPLETE))
            });
            gave_up.map(|message| (ROLLBACK_INCOMPLETE_REASON, "RollBack", message.to_owned()))
        }
        Write::Evict {
            namespace,
            name,
            node,
        } => Some((
            "Evicted",
            "Evict",
            format!("pod {namespace}/{name} evicted from node {node}"),
        )),
        Write::StorageUpgradeStatus { name, status, .. } => Some((
            "StorageUpgradeProgressed",
            "UpdateStatus",
            upgrade_progress(name, status),
        )),
        Write::CreateStorageUpgrade(upgrade) => Some((
            "StorageUpgradeCreated",
            "CreateStorageUpgrade",
            format!(
                "StorageUpgrade {} from {} to {}",
                upgrade.metadata.name.as_deref().unwrap_or_default(),
                upgrade.spec.from_version,
                upgrade.spec.to_version
            ),
        )),
        Write::AcquireGate { holder } => Some((
            "StorageGateAcquired",
            "AcquireGate",
            format!(
                "{holder} holds the storage gate (Lease {GATE_LEASE}): no other storage-changing workflow starts until it is released"
            ),
        )),
        Write::CreateLegacyConfigMap { name, what, .. } => Some((
            match name {
                LegacyConfigMap::ClusterState => "SiteStateCreated",
                LegacyConfigMap::Node(_) => "NodeConfigMapCreated",
            },
            "CreateConfigMap",
            what.clone(),
        )),
        Write::ApplyHostConfig {
            edge_node, node_name, ..
        } => Some((
            "HostConfigAdopted",
            "ApplyHostConfig",
            format!(
                "EdgeNode {edge_node}: spec.host adopted from the node.conf node {node_name}'s agent reported"
            ),
        )),
        Write::ReleaseGate { holder, .. } => Some((
            "StorageGateReleased",
            "ReleaseGate",
            format!("{holder} released the storage gate (Lease {GATE_LEASE})"),
        )),
        Write::CreateBondFlip(flip) => Some((
            "BondFlipCreated",
            "CreateBondFlip",
            format!(
                "BondFlip {} of {} on {}: {} → {} (from the legacy request bond-flip.{})",
                flip.metadata.name.as_deref().unwrap_or_default(),
                flip.spec.bond,
                flip.spec.node_name,
                flip.spec.from.to_arg(),
                flip.spec.target_state().to_arg(),
                flip.spec.node_name
            ),
        )),
        Write::BondFlipStatus { name, status, .. } => Some((
            "BondFlipProgressed",
            "UpdateStatus",
            bond_flip_progress(name, status),
        )),
    }
}

/// Where a BondFlip stands: its phase and its `Progressing` condition's reason and message.
fn bond_flip_progress(name: &str, status: &nodewright_api::bondflip::BondFlipStatus) -> String {
    let phase = status
        .phase
        .map_or_else(|| "no phase".to_owned(), |p| format!("{p:?}"));
    match status.conditions.iter().find(|c| c.type_ == "Progressing") {
        Some(c) if !c.message.is_empty() => format!("BondFlip {name}: {phase} ({}): {}", c.reason, c.message),
        _ => format!("BondFlip {name}: {phase}"),
    }
}

/// Where a StorageUpgrade stands, as its status says: its state, the node the per-node states
/// apply to and that node's state, and what it waits for (its `Progressing` condition).
fn upgrade_progress(name: &str, status: &StorageUpgradeStatus) -> String {
    let state = status
        .state
        .map_or_else(|| "no state".to_owned(), |s| format!("{s:?}"));
    let mut note = format!("StorageUpgrade {name}: {state}");
    if let Some(node) = &status.current_node {
        note.push_str(&format!("; node {node}"));
        if let Some(n) = status.nodes.iter().find(|n| &n.node == node) {
            note.push_str(&format!(" in {:?}", n.state));
        }
    }
    if let Some(c) = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing" && !c.message.is_empty())
    {
        note.push_str(&format!(": {}", c.message));
    }
    note
}

/// The Warning Event that reports a Migration or StorageUpgrade status write whose `Failed`
/// condition is true (it failed, rolled back, or its spec was refused): the condition's reason
/// (`InvalidSpec`, `RollbackFailed`, `RolledBack`, …), the action and the message. Such a
/// workflow is over and is not written again, so the Event is sent once.
pub fn failure(w: &Write) -> Option<(String, &'static str, String)> {
    let (kind, action, name, conditions) = match w {
        Write::MigrationStatus { name, status, .. } => {
            ("Migration", "FailMigration", name, &status.conditions)
        }
        Write::StorageUpgradeStatus { name, status, .. } => {
            ("StorageUpgrade", "FailStorageUpgrade", name, &status.conditions)
        }
        Write::BondFlipStatus { name, status, .. } => ("BondFlip", "FailBondFlip", name, &status.conditions),
        _ => return None,
    };
    let failed = conditions
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    Some((
        failed.reason.clone(),
        action,
        format!("{kind} {name}: {}: {}", failed.reason, failed.message),
    ))
}

/// The failpoints around a write of this kind.
fn failpoints(w: &Write) -> (&'static str, &'static str) {
    match w {
        Write::CreateTask(_) => ("writer.task.before", "writer.task.after"),
        Write::PatchNode { .. } => ("writer.node.before", "writer.node.after"),
        Write::PatchClusterState { .. } => ("writer.cluster-state.before", "writer.cluster-state.after"),
        Write::MigrationStatus { .. } | Write::StorageUpgradeStatus { .. } => {
            ("writer.status.before", "writer.status.after")
        }
        Write::Evict { .. } => ("writer.eviction.before", "writer.eviction.after"),
        Write::CreateStorageUpgrade(_) => ("writer.create.before", "writer.create.after"),
        Write::AcquireGate { .. } | Write::ReleaseGate { .. } => ("writer.gate.before", "writer.gate.after"),
        Write::CreateLegacyConfigMap { .. } => ("writer.configmap.before", "writer.configmap.after"),
        Write::ApplyHostConfig { .. } => ("writer.host-config.before", "writer.host-config.after"),
        Write::CreateBondFlip(_) => ("writer.create.before", "writer.create.after"),
        Write::BondFlipStatus { .. } => ("writer.status.before", "writer.status.after"),
    }
}

/// The reason of the Warning Event raised when the Eviction API refused an eviction (a
/// PodDisruptionBudget does not allow it now).
pub const EVICTION_REFUSED_REASON: &str = "EvictionRefused";

/// The reason of the Warning Event raised when a node's `node.conf` could not be adopted into
/// its `EdgeNode.spec.host` because another field manager (a person) owns the field.
pub const HOST_CONFIG_CONFLICT_REASON: &str = "HostConfigConflict";

/// The reason of the Event raised when the storage gate could not be taken (another workflow
/// took it since the decision read it free).
pub const GATE_BUSY_REASON: &str = "StorageGateBusy";

/// What the API server said when it refused an eviction (429): its message and the causes it
/// gave (for a PodDisruptionBudget, which budget and why: `The disruption budget db-pdb needs 2
/// healthy pods and has 2 currently`, or that its status is not computed yet).
fn refusal(status: &kube::core::Status) -> String {
    let causes: Vec<&str> = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .map(|c| c.message.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    if causes.is_empty() {
        status.message.clone()
    } else {
        format!("{} ({})", status.message, causes.join("; "))
    }
}

/// The reason of the Warning Event raised when a migration's rollback gave up at its deadline
/// with undos left (the note names them).
pub const ROLLBACK_INCOMPLETE_REASON: &str = "RollbackIncomplete";

/// A guarded write's result: a 409 is a [`WriteError::Conflict`].
fn guarded<T>(result: Result<T, kube::Error>, what: impl Fn() -> String) -> Result<T, WriteError> {
    match result {
        Ok(v) => Ok(v),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(WriteError::Conflict(what())),
        Err(source) => Err(WriteError::Api { what: what(), source }),
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;
    use nodewright_api::common::PhaseTransition;
    use nodewright_api::migration::{MigrationPhase, MigrationStatus};

    fn status_write(phase: MigrationPhase, message: &str) -> Write {
        Write::MigrationStatus {
            name: "grow".into(),
            resource_version: "1".into(),
            status: Box::new(MigrationStatus {
                phase: Some(phase),
                history: vec![PhaseTransition {
                    phase,
                    at: nodewright_kit::clock::time(100),
                    message: Some(message.into()),
                }],
                ..MigrationStatus::default()
            }),
        }
    }

    #[test]
    fn a_rollback_that_gave_up_is_reported_with_what_it_could_not_undo() {
        let message = format!(
            "{} after 1800s; could not undo: linstor-node-delete edge-2 (Running: no message)",
            crate::migration::ROLLBACK_INCOMPLETE
        );
        let (reason, _, note) = report(&status_write(MigrationPhase::Failed, &message)).unwrap();
        assert_eq!(reason, ROLLBACK_INCOMPLETE_REASON);
        assert!(note.contains("linstor-node-delete edge-2"), "{note}");
    }

    #[test]
    fn other_status_writes_raise_no_event() {
        assert_eq!(
            report(&status_write(MigrationPhase::Failed, "rollback failed: x")),
            None
        );
        assert_eq!(
            report(&status_write(MigrationPhase::RollingBack, "timed out")),
            None
        );
    }

    fn node_patch(unschedulable: Option<bool>, what: &str) -> Write {
        Write::PatchNode {
            name: "edge-2".into(),
            resource_version: "9".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: None,
            unschedulable,
            what: vec![what.into()],
        }
    }

    #[test]
    fn a_cordon_and_an_uncordon_are_reported_as_such_other_node_patches_as_updates() {
        let reason = |w: &Write| report(w).unwrap().0;
        assert_eq!(reason(&node_patch(Some(true), "cordon")), "NodeCordoned");
        assert_eq!(reason(&node_patch(Some(false), "uncordon")), "NodeUncordoned");
        assert_eq!(
            reason(&node_patch(None, "annotate vx-rail.io/upgrade-state")),
            "NodeUpdated"
        );
        let (_, _, note) = report(&node_patch(Some(true), "cordon")).unwrap();
        assert_eq!(note, "Node edge-2: cordon");
    }

    #[test]
    fn a_storage_upgrade_status_write_says_where_the_upgrade_stands_and_a_failed_one_warns() {
        use nodewright_api::storageupgrade::{NodeUpgradeStatus, UpgradeState};
        let mut status = StorageUpgradeStatus {
            state: Some(UpgradeState::DemotePrimaries),
            current_node: Some("edge-2".into()),
            nodes: vec![
                serde_json::from_value::<NodeUpgradeStatus>(
                    serde_json::json!({"node": "edge-2", "state": "DemotePrimaries"}),
                )
                .unwrap(),
            ],
            ..StorageUpgradeStatus::default()
        };
        let at = nodewright_kit::clock::time(100);
        nodewright_api::common::set_condition(
            &mut status.conditions,
            "Progressing",
            nodewright_api::common::ConditionStatus::True,
            "Waiting",
            "draining edge-2: waiting for shop/db-0 to leave",
            Some(1),
            &at,
        );
        let write = |status: &StorageUpgradeStatus| Write::StorageUpgradeStatus {
            name: "up".into(),
            resource_version: "3".into(),
            status: Box::new(status.clone()),
        };
        let (reason, _, note) = report(&write(&status)).unwrap();
        assert_eq!(reason, "StorageUpgradeProgressed");
        assert_eq!(
            note,
            "StorageUpgrade up: DemotePrimaries; node edge-2 in DemotePrimaries: draining edge-2: waiting for shop/db-0 to leave"
        );
        assert_eq!(failure(&write(&status)), None);
        nodewright_api::common::set_condition(
            &mut status.conditions,
            "Failed",
            nodewright_api::common::ConditionStatus::True,
            "RolledBack",
            "edge-2 rolled back to 9.2.12",
            Some(1),
            &at,
        );
        let (reason, action, note) = failure(&write(&status)).unwrap();
        assert_eq!((reason.as_str(), action), ("RolledBack", "FailStorageUpgrade"));
        assert!(note.starts_with("StorageUpgrade up: RolledBack: "), "{note}");
    }

    #[test]
    fn bootstraps_creates_and_adoptions_are_reported_each_with_its_own_reason() {
        let create = |name: LegacyConfigMap| Write::CreateLegacyConfigMap {
            name,
            data: BTreeMap::new(),
            what: "made".into(),
        };
        let reason = |w: &Write| report(w).unwrap().0;
        assert_eq!(reason(&create(LegacyConfigMap::ClusterState)), "SiteStateCreated");
        assert_eq!(
            reason(&create(LegacyConfigMap::Node("edge-1".into()))),
            "NodeConfigMapCreated"
        );
        let host: nodewright_api::hostconfig::HostConfig = serde_json::from_value(serde_json::json!({
            "bond": {"name": "bond0", "mode": "active-backup", "miimon": 100, "slaves": ["eno1"]},
            "storageVlan": {"id": 100, "address": "10.100.0.11/24"},
            "storage": {"pool": "pool0", "volumeGroup": "vg0/thinpool"}
        }))
        .unwrap();
        let adopt = Write::ApplyHostConfig {
            edge_node: "edge-1".into(),
            node_name: "edge-1".into(),
            host: Box::new(host),
        };
        let (reason, action, note) = report(&adopt).unwrap();
        assert_eq!((reason, action), ("HostConfigAdopted", "ApplyHostConfig"));
        assert_eq!(
            note,
            "EdgeNode edge-1: spec.host adopted from the node.conf node edge-1's agent reported"
        );
        assert_eq!(
            (adopt.kind(), create(LegacyConfigMap::ClusterState).kind()),
            ("host-config", "configmap")
        );
    }

    #[test]
    fn an_eviction_refusal_names_the_budget_the_api_server_gave() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 429,
            "reason": "TooManyRequests",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": [{
                "reason": "DisruptionBudget",
                "message": "The disruption budget db-budget needs 2 healthy pods and has 2 currently",
            }]},
        }))
        .unwrap();
        assert_eq!(
            refusal(&status),
            "Cannot evict pod as it would violate the pod's disruption budget. (The disruption budget db-budget needs 2 healthy pods and has 2 currently)"
        );
        let bare = kube::core::Status::failure("Too many requests", "TooManyRequests");
        assert_eq!(refusal(&bare), "Too many requests");
    }
}

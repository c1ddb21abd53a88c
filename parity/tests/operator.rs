//! The operator against the real API server: the takeover projected from the EdgeCluster spec,
//! the acknowledgement handshake before it acts, taints owned in operator mode, divergences
//! recorded in shadow, and a decider change refused while a workflow instance is in flight.
//!
//! The legacy scripts are played by the test: it writes their ConfigMaps the way the script does
//! (including the shim's acknowledgement key), and their DaemonSet's pods as the API server holds
//! them (bound to their nodes, `Running`; no kubelet runs them), so each step of the handshake
//! and of the fence can be checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use nodewright_api::WorkflowMode;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec, SiteProfile, Topology};
use nodewright_bridge::index::LegacyNames;
use nodewright_parity::run::{OperatorOptions, run};
use nodewright_testenv::{TestContext, create_namespace, eventually, http_get, install_crds, unique_name};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(30);

fn now() -> i64 {
    nodewright_kit::clock::unix_now()
}

fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .unwrap()
        .to_string()
}

/// A node's status blob as the script writes it, with its storage facts.
fn status(role: &str, resources: u32, uptodate: u32, syncing: bool, taint: &str) -> String {
    format!(
        "at={};state=ready;role={role};net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
         slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=bond0.200:up;satellite=active;\
         drbd=ok;resources={resources};uptodate={uptodate};syncing={};taint={taint};boot=COMPLETED;upgrade=;\
         drbd_version=9.2.5",
        now(),
        u8::from(syncing)
    )
}

struct Site {
    ctx: TestContext,
    legacy_ns: String,
    nodes: Vec<String>,
}

impl Site {
    /// Two nodes: the first healthy, the second resyncing; their scripts have not seen a takeover.
    async fn new(prefix: &str) -> Site {
        let ctx = TestContext::new(prefix).await.unwrap();
        install_crds(&ctx.client, &nodewright_api::crds()).await.unwrap();
        let legacy_ns = unique_name(&format!("{prefix}-legacy"));
        create_namespace(&ctx.client, &legacy_ns, &[]).await.unwrap();
        let nodes = vec![unique_name("edge-a"), unique_name("edge-b")];
        let members = format!(
            "node,storage_ip,role,joined\n{},10.10.100.11/24,primary,1714557600\n{},10.10.100.12/24,member,1714557600",
            nodes[0], nodes[1]
        );
        let site = Site {
            ctx,
            legacy_ns,
            nodes,
        };
        site.config_map(
            "vx-rail-cluster-state",
            [
                (
                    "cluster",
                    format!(
                        "primary={};topology=multi;replicas=2;storage_pool=pool0;created=1714557600;schema=4",
                        site.nodes[0]
                    ),
                ),
                ("members", members),
            ],
        )
        .await;
        for n in &site.nodes {
            Api::<Node>::all(site.ctx.client.clone())
                .create(
                    &PostParams::default(),
                    &Node {
                        metadata: ObjectMeta {
                            name: Some(n.clone()),
                            ..ObjectMeta::default()
                        },
                        ..Node::default()
                    },
                )
                .await
                .unwrap();
        }
        site.report(0, None).await;
        site.report(1, None).await;
        site.script_pod(0).await;
        site.script_pod(1).await;
        site
    }

    fn pod_name(&self, i: usize) -> String {
        format!("vx-rail-node-init-{}", self.nodes[i])
    }

    /// Node `i`'s legacy script pod, bound to it and `Running`, owned by the legacy DaemonSet.
    async fn script_pod(&self, i: usize) {
        let api = Api::<Pod>::namespaced(self.ctx.client.clone(), &self.legacy_ns);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": self.pod_name(i),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "name": "vx-rail-node-init", "uid": "0c7e1d35-legacy", "controller": true}],
            },
            "spec": {"nodeName": self.nodes[i], "containers": [{"name": "vx-rail-node-init", "image": "vx-rail/node-init:4.12.3"}]},
        }))
        .unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
        let status = serde_json::json!({"status": {"phase": "Running"}});
        api.patch_status(&self.pod_name(i), &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    async fn delete_script_pod(&self, i: usize) {
        Api::<Pod>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .delete(
                &self.pod_name(i),
                &kube::api::DeleteParams::default().grace_period(0),
            )
            .await
            .unwrap();
    }

    async fn config_map<const N: usize>(&self, name: &str, data: [(&str, String); N]) {
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>(),
        });
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .patch(
                name,
                &PatchParams::apply("legacy-script").force(),
                &Patch::Apply(&cm),
            )
            .await
            .unwrap();
    }

    /// Node `i`'s script reports (the first healthy, the second resyncing), acknowledging
    /// `generation` when the site has a takeover.
    async fn report(&self, i: usize, generation: Option<u64>) {
        let blob = if i == 0 {
            status("primary", 1, 1, false, "none")
        } else {
            status("member", 1, 0, true, "resync")
        };
        let name = format!("vx-rail-node-{}", self.nodes[i]);
        match generation {
            None => {
                self.config_map(
                    &name,
                    [
                        ("script-version", "4.12.3".into()),
                        ("heartbeat", rfc3339(now())),
                        ("status", blob),
                    ],
                )
                .await
            }
            Some(g) => {
                self.config_map(
                    &name,
                    [
                        ("script-version", "4.12.3".into()),
                        ("heartbeat", rfc3339(now())),
                        ("status", blob),
                        ("takeover-generation", g.to_string()),
                    ],
                )
                .await
            }
        }
    }

    async fn edge_cluster(&self, f: impl FnOnce(&mut EdgeClusterSpec)) {
        let mut spec = EdgeClusterSpec {
            profile: SiteProfile {
                topology: Topology::MultiNode,
                storage_backend: Default::default(),
                operating_system: None,
            },
            expected_nodes: None,
            primary_node: None,
            workflows: Default::default(),
            legacy: Default::default(),
        };
        f(&mut spec);
        let ec = EdgeCluster::new("site", spec);
        self.ctx
            .api::<EdgeCluster>()
            .create(&PostParams::default(), &ec)
            .await
            .unwrap();
    }

    async fn set_mode(&self, field: &str, mode: &str) {
        let patch = serde_json::json!({"spec": {"workflows": {field: mode}}});
        self.ctx
            .api::<EdgeCluster>()
            .patch("site", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    fn start(&self, admin_port: Option<u16>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let mut options = OperatorOptions::new(self.ctx.namespace.clone(), "site", unique_name("operator"));
        options.legacy = LegacyNames {
            namespace: self.legacy_ns.clone(),
            ..LegacyNames::default()
        };
        options.interval = Duration::from_millis(200);
        options.admin_addr = admin_port.map(|p| ([127, 0, 0, 1], p).into());
        let client = self.ctx.client.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(client, options, None, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (tx, task)
    }

    async fn takeover(&self) -> Option<BTreeMap<String, String>> {
        Api::<ConfigMap>::namespaced(self.ctx.client.clone(), &self.legacy_ns)
            .get_opt("nodewright-takeover")
            .await
            .unwrap()
            .and_then(|cm| cm.data)
    }

    async fn wait_takeover(&self, workflow: &str, mode: &str, generation: &str) {
        eventually(
            &format!("takeover {workflow}={mode} at generation {generation}"),
            WAIT,
            || async {
                let data = self.takeover().await?;
                (data.get(workflow).map(String::as_str) == Some(mode)
                    && data.get("generation").map(String::as_str) == Some(generation))
                .then_some(())
            },
        )
        .await;
    }

    async fn node(&self, i: usize) -> Node {
        Api::<Node>::all(self.ctx.client.clone())
            .get(&self.nodes[i])
            .await
            .unwrap()
    }

    async fn status(&self) -> nodewright_api::EdgeClusterStatus {
        self.ctx
            .api::<EdgeCluster>()
            .get("site")
            .await
            .unwrap()
            .status
            .unwrap_or_default()
    }
}

fn storage_taint(node: &Node) -> Option<String> {
    node.spec
        .as_ref()?
        .taints
        .as_ref()?
        .iter()
        .find(|t| t.key == "vx-rail.io/storage-not-ready")
        .map(|t| t.value.clone().unwrap_or_default())
}

fn ready_label(node: &Node) -> Option<String> {
    node.metadata
        .labels
        .as_ref()?
        .get("vx-rail.io/storage-ready")
        .cloned()
}

#[tokio::test]
async fn taints_move_from_shadow_to_operator_and_are_owned_only_after_every_script_acknowledged() {
    let site = Site::new("parity-taints").await;
    site.edge_cluster(|s| s.workflows.taints = WorkflowMode::Shadow)
        .await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (stop, task) = site.start(Some(port));

    // Shadow: projected, and the untainted resyncing node is a divergence — in status, as an
    // Event and in the metric.
    site.wait_takeover("taints", "shadow", "1").await;
    let d = eventually("a taints divergence in status", WAIT, || async {
        site.status()
            .await
            .divergences
            .into_iter()
            .find(|d| d.workflow == "taints" && d.node.as_deref() == Some(site.nodes[1].as_str()))
    })
    .await;
    assert!(
        d.operator
            .contains("taint vx-rail.io/storage-not-ready=resync:NoSchedule"),
        "{d:?}"
    );
    assert!(d.observed.contains("uptodate=0 syncing=true"), "{d:?}");
    eventually("a ShadowDivergence Event", WAIT, || async {
        let events = site.ctx.api::<Event>().list(&ListParams::default()).await.ok()?;
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("ShadowDivergence"))
            .then_some(())
    })
    .await;
    let metrics = eventually("the divergence metric", WAIT, || async {
        let text = http_get(port, "/metrics").await.ok()?;
        text.contains("nodewright_shadow_divergences_total{workflow=\"taints\"} ")
            .then_some(text)
    })
    .await;
    assert!(metrics.contains("nodewright_workflow_mode{mode=\"shadow\",workflow=\"taints\"} 1"));
    // In shadow the operator never touches a Node.
    assert_eq!(storage_taint(&site.node(1).await), None);

    // Operator: projected at generation 2, but nothing happens until both scripts read it.
    site.set_mode("taints", "operator").await;
    site.wait_takeover("taints", "operator", "2").await;
    let waiting = eventually("the status to say what the takeover waits for", WAIT, || async {
        let status = site.status().await;
        let t = status
            .takeover?
            .workflows
            .into_iter()
            .find(|w| w.workflow == "taints")?;
        (t.effective == WorkflowMode::Operator).then_some(t)
    })
    .await;
    assert!(!waiting.acknowledged);
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap()
            .contains("to read takeover generation 2"),
        "{waiting:?}"
    );
    site.report(0, Some(2)).await;
    // One script acknowledged, the other has not: still nobody touches the Nodes. The marker that
    // the operator's loop ran past the first acknowledgement: its status waits for the second
    // script only.
    let (first, second) = (site.nodes[0].clone(), site.nodes[1].clone());
    eventually("the status to wait for the second script only", WAIT, || async {
        let status = site.status().await;
        let t = status
            .takeover?
            .workflows
            .into_iter()
            .find(|w| w.workflow == "taints")?;
        let m = t.message?;
        (m.contains(&second) && !m.contains(&first)).then_some(())
    })
    .await;
    assert_eq!(
        storage_taint(&site.node(1).await),
        None,
        "acted before every script acknowledged"
    );
    assert_eq!(
        ready_label(&site.node(0).await),
        None,
        "acted before every script acknowledged"
    );

    site.report(1, Some(2)).await;
    eventually(
        "the operator to taint the resyncing node and label both",
        WAIT,
        || async {
            let (a, b) = (site.node(0).await, site.node(1).await);
            (storage_taint(&b).as_deref() == Some("resync")
                && ready_label(&b).as_deref() == Some("false")
                && ready_label(&a).as_deref() == Some("true")
                && storage_taint(&a).is_none())
            .then_some(())
        },
    )
    .await;

    // The resync ends: the operator takes its taint off.
    site.config_map(
        &format!("vx-rail-node-{}", site.nodes[1]),
        [
            ("script-version", "4.12.3".into()),
            ("heartbeat", rfc3339(now())),
            ("status", status("member", 1, 1, false, "none")),
            ("takeover-generation", "2".into()),
        ],
    )
    .await;
    eventually("the taint to come off after the resync", WAIT, || async {
        let b = site.node(1).await;
        (storage_taint(&b).is_none() && ready_label(&b).as_deref() == Some("true")).then_some(())
    })
    .await;

    // A restarted operator projects the same takeover: no new generation, nothing handed back.
    // The marker that it made its projection: its generation gauge.
    stop.send(()).unwrap();
    task.await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (stop, task) = site.start(Some(port));
    eventually("the restarted operator to project its takeover", WAIT, || async {
        let text = http_get(port, "/metrics").await.ok()?;
        text.lines()
            .any(|l| l.starts_with("nodewright_takeover_generation ") && !l.ends_with(" 0"))
            .then_some(())
    })
    .await;
    assert_eq!(
        site.takeover()
            .await
            .unwrap()
            .get("generation")
            .map(String::as_str),
        Some("2")
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn handing_an_in_flight_migration_to_the_operator_is_refused_until_forced() {
    let site = Site::new("parity-refuse").await;
    site.config_map(
        "vx-rail-cluster-state",
        [(
            "migration",
            "phase=PLACING_REPLICAS;source=edge-a;joining=edge-b;replicas=2;since=1714557600;started=1714557600"
                .to_owned(),
        )],
    )
    .await;
    site.edge_cluster(|s| s.workflows.migration = WorkflowMode::Shadow)
        .await;
    let (stop, task) = site.start(None);
    // legacy -> shadow does not change who decides: allowed while the migration runs.
    site.wait_takeover("migration", "shadow", "1").await;

    site.set_mode("migration", "operator").await;
    let refused = eventually("the refusal in status", WAIT, || async {
        let t = site.status().await.takeover?;
        let m = t.workflows.into_iter().find(|w| w.workflow == "migration")?;
        (m.requested == WorkflowMode::Operator).then_some(m)
    })
    .await;
    assert_eq!(refused.effective, WorkflowMode::Shadow);
    let message = refused.message.unwrap();
    assert!(
        message.contains("refusing to move from shadow to operator while the migration in phase PLACING_REPLICAS is in flight"),
        "{message}"
    );
    assert_eq!(
        site.takeover()
            .await
            .unwrap()
            .get("migration")
            .map(String::as_str),
        Some("shadow")
    );

    let force =
        serde_json::json!({"metadata": {"annotations": {"nodewright.io/force-takeover": "migration"}}});
    site.ctx
        .api::<EdgeCluster>()
        .patch("site", &PatchParams::default(), &Patch::Merge(&force))
        .await
        .unwrap();
    site.wait_takeover("migration", "operator", "2").await;
    let forced = eventually("the forced change in status", WAIT, || async {
        let t = site.status().await.takeover?;
        let m = t.workflows.into_iter().find(|w| w.workflow == "migration")?;
        (m.effective == WorkflowMode::Operator).then_some(m)
    })
    .await;
    assert!(forced.message.unwrap().contains("nodewright.io/force-takeover"));
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_silent_script_whose_pod_runs_holds_the_takeover_back_until_its_pod_is_gone() {
    let site = Site::new("parity-fence").await;
    site.edge_cluster(|s| s.workflows.taints = WorkflowMode::Shadow)
        .await;
    let (stop, task) = site.start(None);
    site.wait_takeover("taints", "shadow", "1").await;
    site.report(0, Some(1)).await;
    site.report(1, Some(1)).await;
    site.set_mode("taints", "operator").await;
    site.wait_takeover("taints", "operator", "2").await;
    // The first script reads generation 2; the second stays silent, however long: its loop may
    // be blocked in a host command, holding a snapshot from before the change.
    site.report(0, Some(2)).await;
    let waiting = eventually("the status to name the silent node and why", WAIT, || async {
        let t = site.status().await.takeover?;
        let w = t.workflows.into_iter().find(|w| w.workflow == "taints")?;
        let m = w.message?;
        (m.contains(&site.nodes[1]) && !m.contains(&site.nodes[0])).then_some(m)
    })
    .await;
    assert!(
        waiting.contains(&format!(
            "taints: waiting for the legacy script on {} to read takeover generation 2 (its pod {} is running; last report",
            site.nodes[1],
            site.pod_name(1)
        )),
        "{waiting}"
    );
    assert_eq!(storage_taint(&site.node(1).await), None, "acted on silence");
    assert_eq!(ready_label(&site.node(0).await), None, "acted on silence");

    // The silent node's pod is deleted (its Node was drained, or a person fenced it): its script
    // can no longer act, and the operator takes over.
    site.delete_script_pod(1).await;
    eventually(
        "the operator to act once the silent script's pod is gone",
        WAIT,
        || async {
            let (a, b) = (site.node(0).await, site.node(1).await);
            (storage_taint(&b).as_deref() == Some("resync") && ready_label(&a).as_deref() == Some("true"))
                .then_some(())
        },
    )
    .await;
    let acknowledged = eventually("the status to show the takeover released", WAIT, || async {
        let t = site.status().await.takeover?;
        let w = t.workflows.into_iter().find(|w| w.workflow == "taints")?;
        w.acknowledged.then_some(w)
    })
    .await;
    assert_eq!(acknowledged.message, None);
    stop.send(()).unwrap();
    task.await.unwrap();
}

//! The simulated cluster against the real thing: every kubectl invocation the legacy script makes
//! (and each of their error cases) runs twice — through [`Cluster::kubectl`] and through the real
//! kubectl 1.37 against a real kube-apiserver from `testenv/` — and stdout, stderr and exit code
//! must be identical. Both worlds use the same namespace, Node names and file paths, so the only
//! normalisation is dropping Nodes other tests created from `get nodes -o name`.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Node as KubeNode, NodeSpec, Taint as KubeTaint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use nodewright_legacy_sim::cluster::{Cluster, Node, Taint, TaintEffect};
use nodewright_testenv::{TestContext, unique_name};

/// The same starting point in both worlds, and the placeholders the step table uses.
struct World {
    ctx: TestContext,
    sim: Cluster,
    dir: PathBuf,
    /// Placeholder → value: `{ns}`, `{n1}`, `{n2}`, `{nx}` (a Node that never exists), `{dir}`.
    names: Vec<(&'static str, String)>,
    nodes: Vec<String>,
    mismatches: Vec<String>,
    steps: usize,
}

impl World {
    async fn new(prefix: &str) -> World {
        let ctx = TestContext::new(prefix)
            .await
            .expect("control plane and namespace");
        let mut sim = Cluster::new();
        sim.add_namespace(ctx.namespace.clone());
        let dir = std::env::temp_dir().join(unique_name(&format!("{prefix}-files")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("node.conf"),
            "BOND_NAME=bond0\nBOND_MODE=active-backup\n",
        )
        .unwrap();
        std::fs::write(dir.join("journal.txt"), "step=3 <done> & \"ok\"\ttab\n").unwrap();
        std::fs::write(dir.join("blob.bin"), [0xff_u8, 0x00, 0x80, 0x41]).unwrap();
        let names = vec![
            ("{ns}", ctx.namespace.clone()),
            ("{n1}", unique_name(&format!("{prefix}-n1"))),
            ("{n2}", unique_name(&format!("{prefix}-n2"))),
            ("{nx}", unique_name(&format!("{prefix}-absent"))),
            ("{dir}", dir.display().to_string()),
        ];
        World {
            ctx,
            sim,
            dir,
            names,
            nodes: Vec::new(),
            mismatches: Vec::new(),
            steps: 0,
        }
    }

    fn name(&self, placeholder: &str) -> String {
        self.names
            .iter()
            .find(|(p, _)| *p == placeholder)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    /// Creates a Node through the API and mirrors what the server stored (including the taints
    /// its admission plugins add) into the simulated cluster.
    async fn node(&mut self, placeholder: &str, taints: Vec<KubeTaint>) {
        let name = self.name(placeholder);
        let api: Api<KubeNode> = Api::all(self.ctx.client.clone());
        let created = api
            .create(
                &PostParams::default(),
                &KubeNode {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([("vx-rail.io/site".to_owned(), "edge".to_owned())].into()),
                        ..Default::default()
                    },
                    spec: Some(NodeSpec {
                        taints: Some(taints),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect("Node created");
        let mut node = Node::new(name.clone());
        node.labels = created
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        node.annotations = created
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let spec = created.spec.clone().unwrap_or_default();
        node.unschedulable = spec.unschedulable.unwrap_or(false);
        for t in spec.taints.unwrap_or_default() {
            let effect = TaintEffect::parse(&t.effect).expect("known effect");
            let mut taint = Taint::new(t.key, t.value.unwrap_or_default(), effect);
            taint.time_added = t.time_added.map(|Time(ts)| ts.as_second());
            node.taints.push(taint);
        }
        self.sim.add_node(node).unwrap();
        self.nodes.push(name);
    }

    fn expand(&self, arg: &str) -> String {
        let mut out = arg.to_owned();
        for (p, v) in &self.names {
            out = out.replace(p, v);
        }
        out
    }

    /// Drops Nodes this test did not create from node listings: the control plane is shared.
    fn normalise(&self, stdout: &[u8]) -> String {
        let text = String::from_utf8_lossy(stdout);
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let foreign = line
                .strip_prefix("node/")
                .map(|rest| rest.split_whitespace().next().unwrap_or_default())
                .is_some_and(|n| !self.nodes.iter().any(|mine| mine == n));
            if !foreign {
                out.push_str(line);
            }
        }
        out
    }

    /// Runs one invocation in both worlds and records any difference.
    fn step(&mut self, argv: &[&str]) {
        self.steps += 1;
        let args: Vec<String> = argv.iter().map(|a| self.expand(a)).collect();
        let real = self.ctx.kubectl().args(&args).output().expect("kubectl runs");
        let sim = self.sim.kubectl(&args, b"", &|p| std::fs::read(p), 1_700_000_000);
        let real_out = (
            self.normalise(&real.stdout),
            String::from_utf8_lossy(&real.stderr).into_owned(),
            real.status.code().unwrap_or(-1),
        );
        let sim_out = (
            self.normalise(&sim.stdout),
            String::from_utf8_lossy(&sim.stderr).into_owned(),
            sim.code,
        );
        if real_out != sim_out {
            self.mismatches.push(format!(
                "kubectl {}\n  real: stdout={:?} stderr={:?} code={}\n  sim:  stdout={:?} stderr={:?} code={}",
                args.join(" "),
                real_out.0,
                real_out.1,
                real_out.2,
                sim_out.0,
                sim_out.1,
                sim_out.2
            ));
        }
    }

    fn steps(&mut self, table: &[&[&str]]) {
        for argv in table {
            self.step(argv);
        }
    }

    /// Removes the cluster-scoped Nodes and the files, then fails with every difference found.
    async fn finish(self) {
        let api: Api<KubeNode> = Api::all(self.ctx.client.clone());
        for n in &self.nodes {
            let _ = api.delete(n, &DeleteParams::default()).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        assert!(
            self.mismatches.is_empty(),
            "{} of {} invocations differ from the real kubectl:\n{}",
            self.mismatches.len(),
            self.steps,
            self.mismatches.join("\n")
        );
    }
}

fn no_execute_taint_added_at(unix: i64) -> KubeTaint {
    KubeTaint {
        key: "vx-rail.io/drain".into(),
        value: Some("migration".into()),
        effect: "NoExecute".into(),
        time_added: Some(Time(k8s_openapi::jiff::Timestamp::from_second(unix).unwrap())),
    }
}

#[tokio::test]
async fn config_maps_answer_like_the_api_server() {
    let mut w = World::new("sim-cm").await;
    w.steps(&[
        // Reads of a ConfigMap that does not exist yet.
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.phase}",
        ],
        &["get", "configmap", "vxr-state", "-n", "{ns}", "-o", "name"],
        // Creation from literals and files, in any flag order.
        &[
            "create",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--from-literal=phase=init",
            "--from-literal=url=http://x/?a=b",
            "--from-file=node.conf={dir}/node.conf",
            "--from-file={dir}/journal.txt",
        ],
        &[
            "create",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--from-literal=a=1",
        ],
        &[
            "-n",
            "{ns}",
            "create",
            "configmap",
            "vxr-bin",
            "--from-file",
            "blob={dir}/blob.bin",
        ],
        &[
            "get",
            "configmap",
            "vxr-bin",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.binaryData}",
        ],
        &["create", "configmap", "vxr-empty", "--namespace={ns}"],
        &[
            "get",
            "configmap",
            "vxr-empty",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data}",
        ],
        &[
            "get",
            "configmap",
            "vxr-empty",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.x}{\"\\n\"}",
        ],
        // Reads.
        &["get", "configmap", "vxr-state", "-n", "{ns}", "-o", "name"],
        &["get", "cm/vxr-state", "-n", "{ns}", "-o", "name"],
        &["get", "configmaps", "-n", "{ns}", "-o", "name"],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.phase}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-o",
            "jsonpath={.data.url}",
            "-n",
            "{ns}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.node\\.conf}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.journal\\.txt}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.missing}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath='{.data.phase}'",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-ojsonpath={.metadata.name} {.data.phase}",
        ],
        &[
            "--namespace",
            "{ns}",
            "get",
            "configmap",
            "vxr-state",
            "--output=jsonpath={.data.phase}{\"\\n\"}",
        ],
        &["get", "configmap", "vxr-state", "-n={ns}", "-o=name"],
        // Merge patches: change, delete with null, no change, unknown fields.
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"phase":"storage","url":null}}"#,
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"phase":"storage","url":null}}"#,
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type=merge",
            "-p",
            r#"{"data":{"html":"<a & b>","tab":"x\ty","nl":"a\nb"}}"#,
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data}",
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            "{}",
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"foo":1}"#,
        ],
        &[
            "patch",
            "-n",
            "{ns}",
            "configmap/vxr-state",
            "--patch",
            r#"{"data":{"order":"flags-first"}}"#,
            "--type",
            "merge",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.order}",
        ],
        // Patch errors.
        &[
            "patch",
            "configmap",
            "vxr-missing",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"a":"1"}}"#,
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            "notjson",
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            "[]",
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            "null",
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":"#,
        ],
        &[
            "patch",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "--type",
            "bogus",
            "-p",
            "{}",
        ],
        &["patch", "configmap", "vxr-state", "-n", "{ns}", "--type", "merge"],
        // Creation errors.
        &[
            "create",
            "configmap",
            "vxr-c2",
            "-n",
            "{ns}",
            "--from-file={dir}/missing.txt",
        ],
        &[
            "create",
            "configmap",
            "vxr-c2",
            "-n",
            "{ns}",
            "--from-literal=novalue",
        ],
        &[
            "create",
            "configmap",
            "vxr-c2",
            "-n",
            "{ns}",
            "--from-literal=bad key=1",
        ],
        &[
            "create",
            "configmap",
            "vxr-c2",
            "-n",
            "{ns}",
            "--from-literal=a=1",
            "--from-literal=a=2",
        ],
        &["create", "configmap", "vxr-c2", "-n", "{ns}", "--from-file==x"],
        &["create", "configmap", "vxr-c2", "-n", "{ns}", "--from-file=a="],
        &["create", "configmap", "vxr-c2", "-n", "{ns}", "--from-file=a=b=c"],
        &["create", "configmap", "Bad_Name", "-n", "{ns}"],
        &["create", "configmap", "vxr-c2", "-n", "{ns}-absent"],
        &["create", "configmap", "-n", "{ns}"],
        &["create", "configmap", "a", "b", "-n", "{ns}"],
        // Argument and template errors.
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={.data.a",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            "jsonpath={%}",
        ],
        &[
            "get",
            "configmap",
            "vxr-state",
            "-n",
            "{ns}",
            "-o",
            r#"jsonpath={"a\x"}"#,
        ],
        &["get", "configmap", "vxr-state", "-n", "{ns}", "-o", "jsonpath="],
        &["get", "configmap", "vxr-state", "-n", "{ns}", "-o", "yaml2"],
        &["get", "configmap", "vxr-state", "-n", "{ns}", "--bogus"],
        &["get", "configmap", "vxr-state", "-o", "name", "-n"],
        &["get", "-n", "{ns}"],
        &["get", "frobs", "-o", "name"],
    ]);
    w.finish().await;
}

#[tokio::test]
async fn the_node_configmap_read_of_two_keys_and_a_deleted_configmap_answer_like_the_api_server() {
    let mut w = World::new("sim-cm-delete").await;
    let two_keys = r#"jsonpath={.data.takeover-generation}{"\n"}{.data.boot-recovery}"#;
    w.steps(&[
        // The snapshot's one read of a node ConfigMap: the acknowledgement, then the blob, each
        // possibly absent.
        &[
            "create",
            "configmap",
            "vxr-node",
            "-n",
            "{ns}",
            "--from-literal=heartbeat=x",
        ],
        &["get", "configmap", "vxr-node", "-n", "{ns}", "-o", two_keys],
        &[
            "patch",
            "configmap",
            "vxr-node",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"takeover-generation":"3","boot-recovery":"phase=COMPLETED;boot_id=b"}}"#,
        ],
        &["get", "configmap", "vxr-node", "-n", "{ns}", "-o", two_keys],
        // Removing the acknowledgement, as the way back to pure legacy does.
        &[
            "patch",
            "configmap",
            "vxr-node",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"takeover-generation":null}}"#,
        ],
        &["get", "configmap", "vxr-node", "-n", "{ns}", "-o", two_keys],
        // Deleting a ConfigMap (a person, or the way back), twice, and reading it after.
        &["delete", "configmap", "vxr-node", "-n", "{ns}"],
        &["delete", "configmap", "vxr-node", "-n", "{ns}"],
        &["delete", "cm", "vxr-absent", "-n", "{ns}"],
        &["get", "configmap", "vxr-node", "-n", "{ns}", "-o", two_keys],
    ]);
    w.finish().await;
}

#[tokio::test]
async fn node_annotations_and_labels_answer_like_the_api_server() {
    let mut w = World::new("sim-meta").await;
    w.node("{n1}", Vec::new()).await;
    w.steps(&[
        &[
            "get",
            "node",
            "{n1}",
            "-o",
            "jsonpath={.metadata.annotations.vx-rail\\.io/phase}",
        ],
        &[
            "get",
            "node",
            "{nx}",
            "-o",
            "jsonpath={.metadata.annotations.vx-rail\\.io/phase}",
        ],
        // Annotations.
        &[
            "annotate",
            "node",
            "{n1}",
            "--overwrite",
            "vx-rail.io/phase=init",
            "vx-rail.io/boot-id=abc",
        ],
        &[
            "get",
            "node",
            "{n1}",
            "-o",
            "jsonpath={.metadata.annotations.vx-rail\\.io/phase}",
        ],
        &["annotate", "node", "{n1}", "vx-rail.io/phase=other"],
        &["annotate", "node", "{n1}", "vx-rail.io/phase=init"],
        &["annotate", "node", "{n1}", "vx-rail.io/phase-"],
        &["annotate", "node", "{n1}", "vx-rail.io/phase-"],
        &[
            "annotate",
            "node/{n1}",
            "vx-rail.io/note=a value with spaces & <html>",
        ],
        &["annotate", "node", "{n1}", "--overwrite=false", "vx-rail.io/x=1"],
        &["get", "node", "{n1}", "-o", "jsonpath={.metadata.annotations}"],
        &[
            "annotate",
            "node",
            "{n1}",
            "--overwrite",
            "vx-rail.io/a=1",
            "vx-rail.io/a-",
        ],
        &["annotate", "node", "{n1}"],
        &["annotate", "node", "{n1}", "=x"],
        &["annotate", "node", "{nx}", "vx-rail.io/a=1"],
        &["annotate", "node", "{n1}", "A_b/x=v"],
        &["annotate", "node", "{n1}", "a/b/c=v"],
        &["annotate", "node", "{n1}", "--overwrite=bogus", "a=b"],
        &["annotate", "node", "{n1}", "vx-rail.io/a=1", "extra"],
        // Labels.
        &["label", "node", "{n1}", "--overwrite", "vx-rail.io/role=storage"],
        &["label", "node", "{n1}", "vx-rail.io/role=other"],
        &["label", "node", "{n1}", "--overwrite", "vx-rail.io/role=storage"],
        &[
            "get",
            "node",
            "{n1}",
            "-o",
            "jsonpath={.metadata.labels.vx-rail\\.io/role}",
        ],
        &["label", "node", "{n1}", "vx-rail.io/role-"],
        &["label", "node", "{n1}", "vx-rail.io/role-"],
        &["label", "node", "{n1}", "vx-rail.io/x=1", "vx-rail.io/y-"],
        &[
            "label",
            "--overwrite",
            "node",
            "{n1}",
            "vx-rail.io/x=2",
            "vx-rail.io/site-",
        ],
        &["get", "node", "{n1}", "-o", "jsonpath={.metadata.labels}"],
        &["label", "node", "{n1}", "k=bad value"],
        &["label", "node", "{n1}", "a=b=c"],
        &["label", "node", "{n1}", "bad key=v"],
        &["label", "node", "{n1}", "a/b/c=v"],
        &["label", "node", "{n1}", "Bad_Prefix/x=v"],
        &["label", "node", "{n1}", "-bad/-x=v"],
        &["label", "node", "{n1}", "vx-rail.io/x=3", "vx-rail.io/x-"],
        &["label", "node", "{n1}"],
        &["label", "node", "{nx}", "vx-rail.io/x=1"],
    ]);
    w.finish().await;
}

#[tokio::test]
async fn taints_and_cordon_answer_like_the_api_server() {
    let mut w = World::new("sim-taint").await;
    w.node("{n1}", Vec::new()).await;
    w.node("{n2}", vec![no_execute_taint_added_at(1_700_000_000)])
        .await;
    w.steps(&[
        &["get", "nodes", "-o", "name"],
        &["get", "node", "{n1}", "{n2}", "-o", "name"],
        &["get", "node", "{n1}", "{nx}", "-o", "name"],
        &["get", "node/{n2}", "-o", "jsonpath={.spec.taints}"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.taints}"],
        // Add, overwrite, conflict.
        &[
            "taint",
            "node",
            "{n1}",
            "--overwrite",
            "vx-rail.io/storage=degraded:NoSchedule",
        ],
        &[
            "taint",
            "node",
            "{n1}",
            "--overwrite",
            "vx-rail.io/storage=degraded:NoSchedule",
        ],
        &["taint", "node", "{n1}", "vx-rail.io/storage=other:NoSchedule"],
        &["taint", "node", "{n1}", "vx-rail.io/storage=x:NoExecute"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.taints}"],
        &[
            "taint",
            "node",
            "{n1}",
            "--overwrite",
            "vx-rail.io/storage=y:NoExecute",
        ],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.taints}"],
        &["taint", "nodes", "{n1}", "a=1:NoSchedule", "b=2:PreferNoSchedule"],
        &["taint", "node", "{n1}", "a:NoSchedule-", "c=3:NoSchedule"],
        &["taint", "node", "{n1}", "b-"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.taints}"],
        // Removal.
        &["taint", "node", "{n1}", "vx-rail.io/storage:NoSchedule-"],
        &["taint", "node", "{n1}", "vx-rail.io/storage:NoSchedule-"],
        &["taint", "node", "{n1}", "vx-rail.io/storage-"],
        &["taint", "node", "{n1}", "k1-", "k2-"],
        &["taint", "node", "{n1}", "c=3:NoSchedule-"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.taints}"],
        // The NoExecute taint with a timeAdded survives other changes.
        &["taint", "node", "{n2}", "vx-rail.io/storage=degraded:NoSchedule"],
        &["get", "node", "{n2}", "-o", "jsonpath={.spec.taints}"],
        // Spec and argument errors.
        &["taint", "node", "{n1}", "vx-rail.io/t=v:Bogus"],
        &["taint", "node", "{n1}", "k=v"],
        &["taint", "node", "{n1}", "k=v=x:NoSchedule"],
        &["taint", "node", "{n1}", "k=bad value:NoSchedule"],
        &["taint", "node", "{n1}", "k1=v:NoSchedule", "k1=w:NoSchedule"],
        &["taint", "node", "{n1}", "--overwrite", "k1=v:NoSchedule", "k1-"],
        &["taint", "node", "{n1}"],
        &["taint", "node", "{n1}", "k=v:NoSchedule", "extra"],
        &["taint", "node", "k=v:NoSchedule"],
        &["taint", "configmap", "x", "k=v:NoSchedule"],
        &["taint", "node", "{nx}", "k=v:NoSchedule"],
        // Cordon.
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.unschedulable}"],
        &["cordon", "{n1}"],
        &["cordon", "{n1}"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.unschedulable}"],
        &["uncordon", "{n1}"],
        &["uncordon", "{n1}"],
        &["get", "node", "{n1}", "-o", "jsonpath={.spec.unschedulable}"],
        &["cordon", "{nx}"],
        &["uncordon", "{nx}"],
        &["cordon"],
        &["get", "node", "{n1}", "-o", "name"],
    ]);
    w.finish().await;
}

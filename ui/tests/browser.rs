//! The UI in a real browser: headless Chromium (Debian's package), driven over the DevTools
//! protocol, against `nodewright ui`'s server reading a real API server filled with a site, its
//! nodes, a storage upgrade, a migration and the takeover. Every view renders with that data; a
//! status change arrives without reloading; no console error; keyboard navigation works; axe-core
//! finds no serious or critical violation.
//!
//! With `NODEWRIGHT_UI_SCREENSHOTS=<dir>`, it also saves a screenshot of each view there
//! (`scripts/ui-screenshots` writes docs/img/ui-*.png that way).

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use nodewright_browser_test::{Browser, axe_source};
use serde_json::{Value, json};

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The site as YAML: an EdgeCluster whose storage upgrade is in shadow with a divergence, three
/// EdgeNodes (one with degraded storage), a storage upgrade half-way, a migration that rolled back.
fn site_yaml(ns: &str, legacy_ns: &str) -> String {
    let t = now();
    format!(
        r#"apiVersion: nodewright.io/v1alpha1
kind: EdgeCluster
metadata: {{name: site-a, namespace: {ns}}}
spec:
  profile: {{topology: MultiNode}}
  legacy: {{namespace: {legacy_ns}}}
  workflows: {{storageUpgrade: shadow, taints: shadow}}
status:
  observedGeneration: 1
  legacyVersion: "2.4.1"
  conditions:
  - {{type: Ready, status: "False", reason: NodesDegraded, message: "2 of 3 nodes ready", lastTransitionTime: "{t}"}}
  nodes: {{total: 3, ready: 2, networkDegraded: 0, storageDegraded: 1}}
  takeover:
    generation: 4
    workflows:
    - {{workflow: storage-upgrade, requested: shadow, effective: shadow, acknowledged: true, divergences: 1}}
    - {{workflow: taints, requested: shadow, effective: legacy, acknowledged: false, message: "edge-3 has not acknowledged generation 4"}}
  divergences:
  - {{at: "{t}", workflow: storage-upgrade, node: edge-2, script: "entered InstallPackages", operator: "would wait in WaitResync", observed: "r0 on edge-1 SyncSource 62 %"}}
---
apiVersion: nodewright.io/v1alpha1
kind: EdgeNode
metadata: {{name: edge-1, namespace: {ns}}}
spec: {{nodeName: edge-1, clusterRef: {{name: site-a}}}}
status:
  conditions:
  - {{type: Ready, status: "True", reason: Observed, message: "", lastTransitionTime: "{t}"}}
  - {{type: NetworkDegraded, status: "False", reason: AllLinksUp, message: "", lastTransitionTime: "{t}"}}
  bonds:
  - name: bond0
    mode: active-backup
    activeSlave: eno1
    linkState: up
    slaves:
    - {{name: eno1, linkState: up, linkFailures: 0, speedMbps: 10000}}
    - {{name: eno2, linkState: up, linkFailures: 2, speedMbps: 10000}}
  vlans:
  - {{name: bond0.100, id: 100, parent: bond0, purpose: StorageReplication, linkState: up, addresses: ["10.10.0.1/24"]}}
  linstorSatellite: {{state: Online, version: "1.29.0", storagePools: [{{name: pool0, driver: LVM_THIN, freeBytes: 1000, totalBytes: 4000}}]}}
  drbdResources:
  - name: r0
    role: Primary
    diskState: UpToDate
    quorum: true
    peers:
    - {{node: edge-2, connection: Connected, role: Secondary, peerDisk: Inconsistent, replication: SyncSource, syncPercent: 62}}
  lastLegacyRun: {{time: "{t}", scriptVersion: "2.4.1", outcome: ok}}
---
apiVersion: nodewright.io/v1alpha1
kind: EdgeNode
metadata: {{name: edge-2, namespace: {ns}}}
spec: {{nodeName: edge-2, clusterRef: {{name: site-a}}}}
status:
  conditions:
  - {{type: Ready, status: "True", reason: Observed, message: "", lastTransitionTime: "{t}"}}
---
apiVersion: nodewright.io/v1alpha1
kind: EdgeNode
metadata: {{name: edge-3, namespace: {ns}}}
spec: {{nodeName: edge-3, clusterRef: {{name: site-a}}}}
status:
  conditions:
  - {{type: Ready, status: "False", reason: Observed, message: "", lastTransitionTime: "{t}"}}
  - {{type: StorageDegraded, status: "True", reason: DiskFailed, message: "r0 Diskless", lastTransitionTime: "{t}"}}
---
apiVersion: nodewright.io/v1alpha1
kind: StorageUpgrade
metadata: {{name: drbd-9-2, namespace: {ns}}}
spec: {{owner: legacy, clusterRef: {{name: site-a}}, fromVersion: "9.1.0", toVersion: "9.2.0", nodeOrder: [edge-1, edge-2, edge-3]}}
status:
  state: InstallPackages
  currentNode: edge-2
  order: [edge-1, edge-2, edge-3]
  progress: {{done: 1, total: 3}}
  nodes:
  - node: edge-1
    state: Completed
    history:
    - {{phase: Preflight, at: "{t}"}}
    - {{phase: WaitResync, at: "{t}"}}
    - {{phase: Completed, at: "{t}"}}
  - node: edge-2
    state: InstallPackages
    since: "{t}"
    step: {{task: upgrade-edge-2, step: install-packages, result: running}}
    history:
    - {{phase: Preflight, at: "{t}"}}
    - {{phase: InstallPackages, at: "{t}"}}
---
apiVersion: nodewright.io/v1alpha1
kind: Migration
metadata: {{name: grow, namespace: {ns}}}
spec: {{owner: legacy, clusterRef: {{name: site-a}}, sourceNode: edge-1, joiningNodes: [edge-2], rollback: true}}
status:
  phase: RolledBack
  history:
  - {{phase: Preflight, at: "{t}"}}
  - {{phase: PlacingReplicas, at: "{t}", message: "placing r0 on edge-2"}}
  - {{phase: RollingBack, at: "{t}", message: "rollback requested"}}
  - {{phase: RolledBack, at: "{t}"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: nodewright-takeover, namespace: {legacy_ns}}}
data: {{generation: "4", storage-upgrade: shadow, taints: shadow}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: vx-rail-node-edge-1, namespace: {legacy_ns}}}
data: {{takeover-generation: "4"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: vx-rail-node-edge-2, namespace: {legacy_ns}}}
data: {{takeover-generation: "4"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: vx-rail-node-edge-3, namespace: {legacy_ns}}}
data: {{takeover-generation: "3"}}
"#
    )
}

/// An audit log of three entries (a person's request, the operator's decision linked to it,
/// another person's request), signed, and its checkpoint published in `namespace` as the writer
/// publishes it. Returns the published ConfigMap as JSON.
fn audit_log(dir: &Path, namespace: &str) -> String {
    use nodewright_audit::{Entry, EntryKind, ObjectRef, WorkflowRef};
    let (signer, _) = nodewright_audit::Signer::generate("ui-test/site").unwrap();
    let verifier_key = signer.verifier_key().to_owned();
    let origin = signer.name().to_owned();
    let mut log = nodewright_audit::Log::open(dir, signer, &origin).unwrap();
    let object = |kind: &str, name: &str| ObjectRef {
        api_group: "nodewright.io".into(),
        kind: kind.into(),
        namespace: Some(namespace.into()),
        name: name.into(),
        uid: None,
    };
    let entry = |kind, id: &str, user: &str, time: &str| Entry {
        kind,
        time: time.into(),
        id: id.into(),
        user: Some(user.into()),
        groups: vec![],
        verb: Some("patch".into()),
        object: None,
        changes: vec![],
        workflow: None,
        caused_by: vec![],
        detail: Value::Null,
    };
    let mut request = entry(EntryKind::Request, "req-alice", "alice", "2026-12-07T18:00:00Z");
    request.object = Some(object("StorageUpgrade", "drbd-9-2"));
    request.detail = json!({"impersonator": "system:serviceaccount:ui:nodewright-ui"});
    let mut decision = entry(EntryKind::Decision, "wf-1", "operator-x", "2026-12-07T18:00:01Z");
    decision.verb = None;
    decision.workflow = Some(WorkflowRef {
        kind: "StorageUpgrade".into(),
        name: "drbd-9-2".into(),
        uid: "u1".into(),
        state: Some("Cordon".into()),
    });
    decision.caused_by = vec!["req-alice".into()];
    let mut other = entry(EntryKind::Request, "req-bob", "bob", "2026-12-07T18:05:00Z");
    other.object = Some(object("EdgeCluster", "site-a"));
    log.append(&[request, decision, other]).unwrap();
    let checkpoint = log.checkpoint().unwrap();
    let published = nodewright_audit_trail::serve::Published {
        size: checkpoint.size,
        checkpoint: checkpoint.note,
        at: 1_796_666_400,
    };
    nodewright_audit_trail::publish::config_map(namespace, &published, &verifier_key).to_string()
}

/// Changes one byte of the entry whose JSON holds `from` in the log's entry bundles.
fn tamper(dir: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut stack = vec![dir.join("tile/entries")];
    let mut changed = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let Some(at) = bytes.windows(from.len()).position(|w| w == from.as_bytes()) else {
                continue;
            };
            let mut bytes = bytes;
            bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
            std::fs::write(&path, bytes).unwrap();
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "{from:?} is in exactly one bundle");
}

#[test]
fn every_view_renders_the_site_live_accessibly_and_by_keyboard_in_headless_chromium() {
    let axe = axe_source();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let audit_dir = tempfile::tempdir().unwrap();
    let (ctx, legacy_ns, port, _watches) = rt.block_on(async {
        let ctx = nodewright_testenv::TestContext::new("ui-browser").await.unwrap();
        nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
            .await
            .unwrap();
        let legacy_ns = nodewright_testenv::unique_name("ui-legacy");
        nodewright_testenv::create_namespace(&ctx.client, &legacy_ns, &[])
            .await
            .unwrap();
        nodewright_testenv::apply_yaml(&ctx.client, &site_yaml(&ctx.namespace, &legacy_ns), None)
            .await
            .unwrap();
        // Actions on, as `nodewright ui --enable-actions`: the UI's own rights are the admin's.
        let kubeconfig = kube::config::Kubeconfig::read_from(ctx.control_plane.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        // The audit view reads a log and the checkpoint published for it, as with --audit-dir.
        let published = audit_log(audit_dir.path(), &ctx.namespace);
        nodewright_testenv::apply_yaml(&ctx.client, &published, None)
            .await
            .unwrap();
        let shared = nodewright_ui::Shared::new(nodewright_ui::watch::KINDS)
            .with_actions(config)
            .with_audit(nodewright_ui::audit::Source {
                dir: audit_dir.path().to_path_buf(),
                namespace: ctx.namespace.clone(),
                client: ctx.client.clone(),
            });
        let namespaces = nodewright_ui::watch::Namespaces {
            nodewright: ctx.namespace.clone(),
            legacy: legacy_ns.clone(),
        };
        let watches = nodewright_ui::watch::spawn(&ctx.client, &namespaces, &shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(nodewright_ui::serve(listener, shared, std::future::pending()));
        nodewright_testenv::eventually("the UI to list every kind", Duration::from_secs(30), || async {
            let r = nodewright_testenv::http_get(port, "/readyz").await.ok()?;
            r.contains("200 OK").then_some(())
        })
        .await;
        (ctx, legacy_ns, port, watches)
    });
    let base = format!("http://127.0.0.1:{port}");
    let mut b = Browser::launch();
    let mut violations = Vec::new();

    // Sites: the roll-up and the node list.
    b.open(&format!("{base}/sites"));
    let text = b.text();
    for want in [
        "site-a",
        "MultiNode",
        "NodesDegraded",
        "edge-1",
        "edge-3",
        "StorageDegraded",
        "DiskFailed",
        "3 nodes match",
    ] {
        assert!(text.contains(want), "the Sites view lacks {want:?}:\n{text}");
    }
    b.screenshot("sites");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/sites: {v}")));

    // Filtering and sorting go through the server and keep the URL.
    b.eval("document.getElementById('f-state').value = 'StorageDegraded'; document.getElementById('f-state').dispatchEvent(new Event('change')); true");
    b.wait_for(
        "the state filter",
        "document.querySelectorAll('#node-table tbody tr').length === 1 && location.search.includes('state=StorageDegraded')",
        Duration::from_secs(5),
    );
    b.open(&format!("{base}/sites?sort=name&dir=desc"));
    let first = b.eval("document.querySelector('#node-table tbody tr td').innerText");
    assert_eq!(first, json!("edge-3"), "sorted by name, descending");

    // Live: a status change shows without reloading.
    b.open(&format!("{base}/sites"));
    b.eval("window.notReloaded = true");
    b.wait_for(
        "the change stream",
        "document.getElementById('live').textContent === 'live'",
        Duration::from_secs(5),
    );
    let patch = format!(
        "apiVersion: nodewright.io/v1alpha1\nkind: EdgeNode\nmetadata: {{name: edge-2, namespace: {}}}\nspec: {{nodeName: edge-2, clusterRef: {{name: site-a}}}}\nstatus:\n  conditions:\n  - {{type: Ready, status: \"False\", reason: Observed, message: \"\", lastTransitionTime: \"{}\"}}\n  - {{type: NetworkDegraded, status: \"True\", reason: BondDown, message: \"bond0 down\", lastTransitionTime: \"{}\"}}\n",
        ctx.namespace,
        now(),
        now()
    );
    rt.block_on(nodewright_testenv::apply_yaml(&ctx.client, &patch, None))
        .unwrap();
    let took = b.wait_for(
        "edge-2's network degradation to show live",
        "[...document.querySelectorAll('#node-table tbody tr')].some(r => r.innerText.includes('edge-2') && r.innerText.includes('BondDown'))",
        Duration::from_secs(5),
    );
    eprintln!(
        "a status change showed in the browser {} ms after the API accepted it",
        took.as_millis()
    );
    assert_eq!(
        b.eval("window.notReloaded === true"),
        json!(true),
        "the page reloaded"
    );

    // Keyboard: from the top, Tab reaches the skip link, the views, the filters and a node link;
    // Enter on the node link opens the node.
    b.eval("document.activeElement.blur(); window.scrollTo(0, 0); true");
    let mut reached = Vec::new();
    for _ in 0..40 {
        b.key("Tab", "Tab", 9, None);
        let what = b.eval("(e => e.tagName + ':' + (e.id || e.getAttribute('href') || e.innerText))(document.activeElement)");
        let what = what.as_str().unwrap_or_default().to_owned();
        if what.starts_with("A:/nodes/") {
            reached.push(what);
            break;
        }
        reached.push(what);
    }
    for want in [
        "A:#main",
        "A:/workflows",
        "A:/takeover",
        "INPUT:f-q",
        "SELECT:f-state",
        "BUTTON:",
    ] {
        assert!(
            reached.iter().any(|r| r.starts_with(want)),
            "Tab never reached {want}: {reached:?}"
        );
    }
    let link = reached.last().unwrap().clone();
    assert!(
        link.starts_with("A:/nodes/"),
        "Tab never reached a node: {reached:?}"
    );
    b.key("Enter", "Enter", 13, Some("\r"));
    b.wait_for(
        "Enter on a node link to open the node",
        &format!(
            "location.pathname === {:?} && document.body && Number(document.body.dataset.rendered || 0) >= 1",
            &link[2..]
        ),
        Duration::from_secs(10),
    );

    // Node: bond, slaves, VLANs, LINSTOR, DRBD and its peers, conditions, the last legacy run.
    b.open(&format!("{base}/nodes/{}/edge-1", ctx.namespace));
    let text = b.text();
    for want in [
        "bond0",
        "active-backup",
        "eno2",
        "bond0.100",
        "10.10.0.1/24",
        "Online",
        "1.29.0",
        "pool0",
        "r0",
        "SyncSource",
        "synced 62 %",
        "AllLinksUp",
        "2.4.1",
        "drbd-9-2",
        "Completed",
    ] {
        assert!(text.contains(want), "the Node view lacks {want:?}:\n{text}");
    }
    b.screenshot("node");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/nodes: {v}")));

    // Resync progress: the plot grows as the EdgeNode's sync % changes, without reloading.
    assert_eq!(
        b.eval("document.querySelector('#resync polyline.series').getAttribute('points').split(' ').length"),
        json!(1)
    );
    let out = ctx
        .kubectl()
        .args([
            "patch",
            "edgenode",
            "edge-1",
            "--subresource=status",
            "--type=json",
            "-p",
        ])
        .arg(r#"[{"op":"replace","path":"/status/drbdResources/0/peers/0/syncPercent","value":80}]"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b.wait_for(
        "the resync plot to gain the new sample",
        "(p => p && p.getAttribute('points').split(' ').length === 2)(document.querySelector('#resync polyline.series'))",
        Duration::from_secs(5),
    );
    assert!(
        b.text().contains("Resync of r0 with edge-2: 62 % to 80 %"),
        "{}",
        b.text()
    );
    b.eval("document.getElementById('resync').scrollIntoView(); true");
    b.screenshot("node-resync");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/nodes (resync): {v}")));

    // Workflows: the grid of 21 states, the migration's timeline and its rollback.
    b.open(&format!("{base}/workflows"));
    let columns = b.eval("document.querySelectorAll('table.grid thead th').length");
    assert_eq!(columns, json!(22), "a node column and 21 states");
    let current = b.eval("[...document.querySelectorAll('table.grid td.current')].map(td => td.closest('tr').querySelector('th').innerText + ' ' + td.innerText)");
    let current: Vec<String> = serde_json::from_value(current).unwrap();
    assert!(
        current
            .iter()
            .any(|c| c.starts_with("edge-2") && c.contains("install-packages: running")),
        "{current:?}"
    );
    let text = b.text();
    for want in [
        "9.1.0 → 9.2.0",
        "1 of 3 nodes done",
        "RolledBack",
        "rollback: rolled back",
        "placing r0 on edge-2",
    ] {
        assert!(text.contains(want), "the Workflows view lacks {want:?}:\n{text}");
    }
    b.screenshot("workflows");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/workflows: {v}")));

    // Takeover: modes, acknowledgements, divergences with their facts.
    b.open(&format!("{base}/takeover"));
    let text = b.text();
    for want in [
        "Takeover generation 4",
        "storage-upgrade",
        "edge-3 has not acknowledged generation 4",
        "would wait in WaitResync",
        "r0 on edge-1 SyncSource 62 %",
    ] {
        assert!(text.contains(want), "the Takeover view lacks {want:?}:\n{text}");
    }
    let acks = b.eval("[...document.querySelectorAll('table')].find(t => t.caption.innerText.startsWith('Acknowledgements')).innerText");
    let acks = acks.as_str().unwrap();
    assert!(
        acks.contains("edge-3\t3\tno") && acks.contains("edge-1\t4\tyes"),
        "{acks}"
    );
    // Every action shows its kubectl command; with actions on, the page asks for a token.
    let ns = &ctx.namespace;
    let form = format!("mode-{ns}-site-a");
    b.wait_for(
        "the mode change's command",
        &format!("document.getElementById('{form}-command').textContent.startsWith('kubectl ')"),
        Duration::from_secs(5),
    );
    assert_eq!(
        b.eval(&format!("document.getElementById('{form}-command').textContent")),
        json!(format!(
            r#"kubectl -n {ns} patch edgecluster site-a --type=merge -p '{{"spec":{{"workflows":{{"storageUpgrade":"shadow"}}}}}}'"#
        ))
    );
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('label[for=\"{form}-token\"]').innerText.trim()"
        )),
        json!("Your bearer token")
    );
    b.screenshot("takeover");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/takeover: {v}")));

    // Changing the form changes the command; a wrong token is refused; a person allowed by RBAC
    // changes the mode, and the page says as whom. Each field is focused before it is filled, as
    // a person's typing does: the page defers a live re-render while a form has the focus (without
    // it, a change event arriving mid-fill re-rendered the form under the test, seen once in CI).
    let set = |id: &str, value: &str| {
        format!(
            "(e => {{ e.focus(); e.value = {value:?}; e.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})(document.getElementById('{form}-{id}'))"
        )
    };
    b.eval(&set("workflow", "taints"));
    b.eval(&set("mode", "operator"));
    b.wait_for(
        "the command to follow the form",
        &format!("document.getElementById('{form}-command').textContent.includes('\"taints\":\"operator\"')"),
        Duration::from_secs(5),
    );
    b.eval(&set("token", "not-a-token"));
    b.eval(&format!(
        "document.querySelector('form[data-action=\"{form}\"] button[type=submit]').click(); true"
    ));
    b.wait_for(
        "a wrong token to be refused",
        &format!("document.getElementById('{form}-result').textContent.startsWith('Refused (401)')"),
        Duration::from_secs(10),
    );
    let yaml = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: site-owner, namespace: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: site-owner, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\nsubjects:\n- {{kind: ServiceAccount, name: site-owner, namespace: {ns}}}\n"
    );
    rt.block_on(nodewright_testenv::apply_yaml(&ctx.client, &yaml, None))
        .unwrap();
    let out = ctx
        .kubectl()
        .args(["create", "token", "site-owner"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    b.eval(&set("token", &token));
    b.eval(&format!(
        "document.querySelector('form[data-action=\"{form}\"] button[type=submit]').click(); true"
    ));
    b.wait_for(
        "the mode change to be done as the person",
        &format!(
            "document.getElementById('{form}-result').textContent === 'Done, as system:serviceaccount:{ns}:site-owner.'"
        ),
        Duration::from_secs(10),
    );
    assert_eq!(
        b.eval("[sessionStorage.getItem('nodewright.token') !== null, document.cookie]"),
        json!([true, ""]),
        "the token is kept in the tab's sessionStorage, never in a cookie"
    );
    let site: nodewright_api::EdgeCluster = rt.block_on(ctx.api().get("site-a")).unwrap();
    assert_eq!(site.spec.workflows.taints.as_str(), "operator");
    assert_eq!(site.spec.workflows.storage_upgrade.as_str(), "shadow");

    // Audit: the entries newest first, verified against the published checkpoint; a link leads
    // to the entry it names and what follows from it; the selection is the URL's.
    b.open(&format!("{base}/audit"));
    let text = b.text();
    for want in [
        "verified",
        "consistent with the checkpoint of 3 published to the cluster",
        "3 of 3 entries",
        "alice",
        "by system:serviceaccount:ui:nodewright-ui",
        "StorageUpgrade/drbd-9-2 stays in Cordon",
        "EdgeCluster/",
    ] {
        assert!(text.contains(want), "the Audit view lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("not verified"), "{text}");
    b.screenshot("audit");
    violations.extend(b.axe(&axe).into_iter().map(|v| format!("/audit: {v}")));
    // The decision's link to the request it follows from.
    b.eval("document.querySelector('#main td a[href=\"/audit?from=req-alice\"]').click(); true");
    b.wait_for(
        "the link to lead to the request and what follows from it",
        "location.search === '?from=req-alice' && document.getElementById('audit-count') && document.getElementById('audit-count').innerText.startsWith('2 of 3')",
        Duration::from_secs(10),
    );
    b.open(&format!("{base}/audit?user=bob"));
    assert!(b.text().contains("1 of 3 entries"), "{}", b.text());
    b.open(&format!(
        "{base}/audit?object=StorageUpgrade/drbd-9-2&since=2026-12-07T18:00:01Z"
    ));
    assert!(b.text().contains("1 of 3 entries"), "{}", b.text());
    // A changed entry: not verified, and the first bad index named.
    tamper(audit_dir.path(), "operator-x", "operator-y");
    b.open(&format!("{base}/audit"));
    let text = b.text();
    assert!(text.contains("not verified"), "{text}");
    assert_eq!(
        b.eval("document.getElementById('first-bad').innerText"),
        json!("1")
    );
    violations.extend(
        b.axe(&axe)
            .into_iter()
            .map(|v| format!("/audit (not verified): {v}")),
    );

    assert!(violations.is_empty(), "axe-core: {violations:#?}");
    // The browser logs the 401 the wrong token was meant to get; nothing else may be logged.
    b.errors
        .retain(|e| !(e.contains("/api/actions\"") && e.contains("status of 401")));
    assert!(b.errors.is_empty(), "the page reported errors: {:#?}", b.errors);
    drop(b);
    let _ = legacy_ns;
}

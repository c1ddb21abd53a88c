//! The chart's CRD upgrade path, as docs/chart.md states it, against a real API server of its own
//! (a fresh one, so that the CRDs are the chart's alone): the previous chart version
//! (tests/fixtures/nodewright-<version>.tgz, packaged by `scripts/previous-chart`) installed,
//! `helm upgrade` to this chart leaves the CRDs exactly as they were, the documented
//! `helm show crds … | kubectl apply --server-side …` brings them to this chart's, and every
//! version this chart declares is served; `helm uninstall` leaves them. And a CRD that changes
//! between versions reaches the cluster only by that command, which needs `--force-conflicts`
//! because Helm created the CRDs and owns their fields.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nodewright_testenv::{ControlPlane, Options};
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const RELEASE: &str = "nw";
const NAMESPACE: &str = "nodewright-system";
/// The field manager docs/chart.md's command applies the CRDs with.
const MANAGER: &str = "nodewright-crds";

/// Runs `cmd` with `stdin`: whether it succeeded, its standard output and its standard error.
fn try_run(mut cmd: Command, stdin: Option<&str>) -> (bool, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with `stdin`, which must succeed; its standard output.
fn run(cmd: Command, stdin: Option<&str>) -> String {
    let shown = format!("{cmd:?}");
    let (ok, stdout, stderr) = try_run(cmd, stdin);
    assert!(ok, "{shown} failed: {stdout}{stderr}");
    stdout
}

/// The documented command's `kubectl apply`, with or without `--force-conflicts`.
fn apply_crds(plane: &ControlPlane, yaml: &str, force: bool) -> (bool, String, String) {
    let mut apply = plane.kubectl();
    apply.args(["apply", "--server-side", &format!("--field-manager={MANAGER}")]);
    if force {
        apply.arg("--force-conflicts");
    }
    apply.args(["-f", "-"]);
    try_run(apply, Some(yaml))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn helm(plane: &ControlPlane) -> Command {
    let mut helm = Command::new(nodewright_testenv::default_bin_dir().join("helm"));
    helm.arg("--kubeconfig").arg(plane.kubeconfig());
    // Helm's own state (repositories, cache) in a directory of the test's, not the user's.
    let home = plane.dir().join("helm-home");
    helm.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    helm
}

/// The packaged previous chart: the one `tests/fixtures/nodewright-*.tgz`.
fn previous_chart() -> PathBuf {
    let packages: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("nodewright-") && n.ends_with(".tgz"))
        })
        .collect();
    assert_eq!(
        packages.len(),
        1,
        "one previous chart in {FIXTURES}: {packages:?}"
    );
    packages.into_iter().next().unwrap()
}

fn chart_version(chart: &Path) -> String {
    let yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    let chart: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    chart["version"].as_str().unwrap().to_owned()
}

/// The cluster's Nodewright CRDs by name.
fn cluster_crds(plane: &ControlPlane) -> BTreeMap<String, Value> {
    let mut kubectl = plane.kubectl();
    kubectl.args([
        "get",
        "customresourcedefinitions",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let list: Value = serde_json::from_str(&run(kubectl, None)).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|crd| crd["spec"]["group"] == "nodewright.io")
        .map(|crd| (crd["metadata"]["name"].as_str().unwrap().to_owned(), crd.clone()))
        .collect()
}

/// `v` with every whole number written as an integer: the generated YAML says `1000.0` where the
/// API server answers `1000`.
fn whole_numbers(v: &Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), whole_numbers(v))).collect()),
        _ => v.clone(),
    }
}

/// What a CRD declares: its names, scope and each version's name, served, storage, schema,
/// subresources and printer columns, without what the server defaults or records.
fn declared(crd: &Value) -> Value {
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v["name"], "served": v["served"], "storage": v["storage"],
                "schema": v["schema"], "subresources": v["subresources"],
                "additionalPrinterColumns": v["additionalPrinterColumns"],
            })
        })
        .collect();
    whole_numbers(&serde_json::json!({
        "names": {"plural": crd["spec"]["names"]["plural"], "kind": crd["spec"]["names"]["kind"]},
        "scope": crd["spec"]["scope"],
        "versions": versions,
    }))
}

/// The CRDs a chart (a directory or a package) carries, by name, as `helm show crds` prints them.
fn chart_crds(plane: &ControlPlane, chart: &Path) -> (String, BTreeMap<String, Value>) {
    let mut show = helm(plane);
    show.args(["show", "crds"]).arg(chart);
    let yaml = run(show, None);
    let crds = yaml
        .split("\n---")
        .map(|doc| serde_yaml_ng::from_str::<Value>(doc).unwrap())
        .filter(|doc| doc["kind"] == "CustomResourceDefinition")
        .map(|crd| (crd["metadata"]["name"].as_str().unwrap().to_owned(), crd))
        .collect();
    (yaml, crds)
}

fn managers(crd: &Value) -> Vec<String> {
    crd["metadata"]["managedFields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["manager"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn helm_upgrade_leaves_the_crds_and_the_documented_command_brings_them_to_this_charts_version() {
    let plane = ControlPlane::start(Options::default()).unwrap();
    let previous = previous_chart();
    let current = Path::new(CHART);
    let previous_version = previous
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("nodewright-"))
        .unwrap()
        .to_owned();
    assert_ne!(
        previous_version,
        chart_version(current),
        "the chart's version must be bumped past the previous release's"
    );

    // Install the previous version: Helm creates its CRDs from crds/.
    let mut install = helm(&plane);
    install
        .args(["install", RELEASE])
        .arg(&previous)
        .args(["--namespace", NAMESPACE, "--create-namespace"]);
    run(install, None);
    let (_, previous_crds) = chart_crds(&plane, &previous);
    let installed = cluster_crds(&plane);
    assert_eq!(
        installed.keys().collect::<Vec<_>>(),
        previous_crds.keys().collect::<Vec<_>>(),
        "the previous chart's CRDs are installed"
    );
    for (name, crd) in &installed {
        assert_eq!(
            declared(crd),
            declared(&previous_crds[name]),
            "{name} as the previous chart has it"
        );
    }

    // Upgrade: Helm applies the templates and never touches crds/.
    let mut upgrade = helm(&plane);
    upgrade
        .args(["upgrade", RELEASE, CHART])
        .args(["--namespace", NAMESPACE]);
    let notes = run(upgrade, None);
    assert!(
        notes.contains("helm show crds") && notes.contains("kubectl apply --server-side"),
        "the upgrade's NOTES give the CRD command: {notes}"
    );
    let after_upgrade = cluster_crds(&plane);
    for (name, crd) in &after_upgrade {
        assert_eq!(
            crd["metadata"]["resourceVersion"], installed[name]["metadata"]["resourceVersion"],
            "helm upgrade left {name} untouched"
        );
        assert!(!managers(crd).contains(&MANAGER.to_owned()), "{name}");
    }

    // The documented command (docs/chart.md, NOTES.txt).
    let (yaml, current_crds) = chart_crds(&plane, current);
    let (ok, stdout, stderr) = apply_crds(&plane, &yaml, true);
    assert!(ok, "{stdout}{stderr}");
    let applied = cluster_crds(&plane);
    assert_eq!(
        applied.keys().collect::<Vec<_>>(),
        current_crds.keys().collect::<Vec<_>>(),
        "exactly this chart's CRDs"
    );
    for (name, crd) in &applied {
        assert_eq!(
            declared(crd),
            declared(&current_crds[name]),
            "{name} is this chart's"
        );
        assert!(
            managers(crd).contains(&MANAGER.to_owned()),
            "{name}: {:?}",
            managers(crd)
        );
        assert_eq!(
            crd["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Established")
                .map(|c| c["status"].clone()),
            Some(Value::from("True")),
            "{name} is established"
        );
    }
    // Every version this chart declares is served: discovery lists each resource under it.
    for crd in current_crds.values() {
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            if version["served"] != true {
                continue;
            }
            let mut discovery = plane.kubectl();
            discovery.args([
                "get",
                "--raw",
                &format!("/apis/nodewright.io/{}", version["name"].as_str().unwrap()),
            ]);
            let resources: Value = serde_json::from_str(&run(discovery, None)).unwrap();
            assert!(
                resources["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["name"] == plural),
                "{plural} served at {}",
                version["name"]
            );
        }
    }

    // Uninstall keeps the CRDs, and with them every resource of the site.
    let mut uninstall = helm(&plane);
    uninstall.args(["uninstall", RELEASE, "--namespace", NAMESPACE]);
    run(uninstall, None);
    assert_eq!(
        cluster_crds(&plane).keys().collect::<Vec<_>>(),
        current_crds.keys().collect::<Vec<_>>()
    );
}

/// The EdgeCluster CRD's description of its `Nodes` printer column, as the cluster serves it.
fn nodes_column(plane: &ControlPlane) -> String {
    cluster_crds(plane)["edgeclusters.nodewright.io"]["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Nodes")
        .map(|c| c["description"].as_str().unwrap().to_owned())
        .unwrap()
}

#[test]
fn a_changed_crd_reaches_the_cluster_only_by_the_documented_command_which_takes_helms_fields_over() {
    let plane = ControlPlane::start(Options::default()).unwrap();
    let mut install = helm(&plane);
    install
        .args(["install", RELEASE, CHART])
        .args(["--namespace", NAMESPACE, "--create-namespace"]);
    run(install, None);
    assert_eq!(nodes_column(&plane), "Nodes observed");

    // The next chart version changes a CRD: here, the description of EdgeCluster's Nodes column.
    let work = tempfile::tempdir().unwrap();
    let next = work.path().join("nodewright");
    copy_dir(Path::new(CHART), &next);
    let crds_file = next.join("crds/nodewright.io.yaml");
    let crds = std::fs::read_to_string(&crds_file).unwrap();
    let changed = crds.replacen(
        "    - description: Nodes observed\n",
        "    - description: Nodes observed by the bridge\n",
        1,
    );
    assert_ne!(
        changed, crds,
        "the column's description is where the test expects it"
    );
    std::fs::write(&crds_file, changed).unwrap();

    let mut upgrade = helm(&plane);
    upgrade
        .args(["upgrade", RELEASE])
        .arg(&next)
        .args(["--namespace", NAMESPACE]);
    run(upgrade, None);
    assert_eq!(
        nodes_column(&plane),
        "Nodes observed",
        "helm upgrade did not change the CRD"
    );

    // Helm created the CRDs, so the changed field is Helm's: without --force-conflicts the apply
    // stops there, changing nothing.
    let (yaml, _) = chart_crds(&plane, &next);
    let (ok, stdout, stderr) = apply_crds(&plane, &yaml, false);
    assert!(!ok, "the apply without --force-conflicts went through: {stdout}");
    assert!(stderr.contains("conflict"), "{stderr}");
    assert_eq!(nodes_column(&plane), "Nodes observed");

    let (ok, stdout, stderr) = apply_crds(&plane, &yaml, true);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(nodes_column(&plane), "Nodes observed by the bridge");
}

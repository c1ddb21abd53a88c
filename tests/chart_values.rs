//! The chart's values stay described: every value in values.yaml is in values.schema.json (so
//! that the schema, which refuses unknown keys, never refuses a default) and in the values
//! reference of docs/chart.md; and helm refuses a misspelt or mistyped value naming where and
//! what. No API server: helm renders only.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/chart.md");

fn values() -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap()).unwrap()
}

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{CHART}/values.schema.json")).unwrap()).unwrap()
}

/// Every value's path, down to the leaves the schema describes as a whole (a scalar, a list, or a
/// free-form object such as `resources`); a key the schema lacks is returned in `missing`.
fn walk(value: &Value, schema: &Value, path: &str, leaves: &mut Vec<String>, missing: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        leaves.push(path.to_owned());
        return;
    };
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        // A free-form object: passed through to Kubernetes as it is.
        leaves.push(path.to_owned());
        return;
    };
    for (key, child) in map {
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match properties.get(key) {
            Some(child_schema) => walk(child, child_schema, &child_path, leaves, missing),
            None => missing.push(child_path),
        }
    }
}

fn leaves() -> (Vec<String>, Vec<String>) {
    let (mut leaves, mut missing) = (Vec::new(), Vec::new());
    walk(&values(), &schema(), "", &mut leaves, &mut missing);
    (leaves, missing)
}

#[test]
fn every_value_in_values_yaml_is_in_the_schema() {
    let (leaves, missing) = leaves();
    assert!(leaves.len() > 50, "the walk reached the values: {leaves:?}");
    assert!(
        missing.is_empty(),
        "values.yaml has values that values.schema.json does not describe (add them): {missing:?}"
    );
}

#[test]
fn every_value_is_in_the_values_reference() {
    let reference = std::fs::read_to_string(REFERENCE).unwrap();
    let (leaves, _) = leaves();
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|path| !reference.contains(&format!("| `{path}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/chart.md's values table lacks a row for: {undocumented:?}"
    );
}

fn template(set: &[&str]) -> (bool, String) {
    let mut helm = Command::new(nodewright_testenv::default_bin_dir().join("helm"));
    helm.args(["template", "nw", CHART]);
    for value in set {
        helm.args(["--set", value]);
    }
    let out = helm.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn helm_refuses_a_misspelt_or_mistyped_value_naming_where_and_what() {
    for (set, expected) in [
        (
            "bridge.replcas=3",
            "at '/bridge': additional properties 'replcas' not allowed",
        ),
        (
            "bridge.adminPort=http",
            "at '/bridge/adminPort': got string, want integer",
        ),
        (
            "logFormat=yaml",
            "at '/logFormat': value must be one of 'text', 'json'",
        ),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("bridge.logLevel=verbose", "at '/bridge/logLevel'"),
        ("audit.enabled=true", "at '/audit/keySecret'"),
    ] {
        let (ok, stderr) = template(&[set]);
        assert!(!ok, "{set} was accepted");
        assert!(stderr.contains(expected), "{set}: {stderr}");
    }
}

#[test]
fn the_defaults_and_every_component_enabled_pass_the_schema() {
    assert_eq!(template(&[]), (true, String::new()));
    let (ok, stderr) = template(&[
        "operator.enabled=true,agent.enabled=true,ui.enabled=true,audit.enabled=true",
        "audit.keySecret=k,audit.tlsSecret=t,logFormat=json,logLevel=info\\,kube=warn",
        "securityContext.openshift=true,bridge.podDisruptionBudget.maxUnavailable=50%",
    ]);
    assert!(ok, "{stderr}");
}

#[test]
fn the_monitoring_objects_render_only_when_asked_for() {
    let kinds = |docs: &[Value]| -> Vec<String> {
        let mut kinds: Vec<String> = docs
            .iter()
            .filter(|d| {
                d["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
                    || d["metadata"]["labels"]["grafana_dashboard"] == "1"
            })
            .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    assert!(kinds(&rendered(&["operator.enabled=true"])).is_empty());
    let on = rendered(&[
        "operator.enabled=true",
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.dashboards.enabled=true",
    ]);
    assert_eq!(
        kinds(&on),
        [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "PrometheusRule",
            "ServiceMonitor",
            "ServiceMonitor"
        ]
    );
    // The ServiceMonitor of the operator has its Service.
    assert!(
        on.iter()
            .any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "nw-operator"),
        "the operator's metrics Service is rendered"
    );
    let (ok, stderr) = template(&["monitoring.dashboards.lable=x"]);
    assert!(!ok && stderr.contains("lable"), "{stderr}");
}

/// `helm template` with `set`, as JSON documents.
fn rendered(set: &[&str]) -> Vec<Value> {
    let mut helm = Command::new(nodewright_testenv::default_bin_dir().join("helm"));
    helm.args(["template", "nw", CHART]);
    for value in set {
        helm.args(["--set", value]);
    }
    let out = helm.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split("\n---")
        .map(|doc| serde_yaml_ng::from_str::<Value>(doc).unwrap())
        .filter(|doc| doc.is_object())
        .collect()
}

const EVERYTHING: &str = "operator.enabled=true,agent.enabled=true,ui.enabled=true,audit.enabled=true,audit.keySecret=k,audit.tlsSecret=t";

/// Each workload's pod spec (a Pod's own spec, else its template's), by kind and name.
fn pod_specs(docs: &[Value]) -> Vec<(String, Value)> {
    docs.iter()
        .filter_map(|doc| {
            let name = format!("{}/{}", doc["kind"].as_str()?, doc["metadata"]["name"].as_str()?);
            match doc["kind"].as_str()? {
                "Pod" => Some((name, doc["spec"].clone())),
                "Deployment" | "StatefulSet" | "DaemonSet" => {
                    Some((name, doc["spec"]["template"]["spec"].clone()))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn on_openshift_no_pod_but_the_agents_names_a_uid_or_gid() {
    let specs = pod_specs(&rendered(&[EVERYTHING, "securityContext.openshift=true"]));
    assert_eq!(
        specs.len(),
        6,
        "bridge, operator, agent, ui, audit, test: {specs:?}"
    );
    for (name, spec) in &specs {
        if name == "DaemonSet/nw-agent" {
            continue;
        }
        let text = spec.to_string();
        for field in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert!(!text.contains(field), "{name} names {field}: {text}");
        }
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
    }
    // Elsewhere the fixed non-root UID stays.
    for (name, spec) in pod_specs(&rendered(&[EVERYTHING])) {
        if name != "DaemonSet/nw-agent" {
            assert_eq!(spec["securityContext"]["runAsUser"], 65532, "{name}");
        }
    }
}

#[test]
fn every_component_gets_the_log_format_and_its_own_or_the_release_log_level() {
    let docs = rendered(&[EVERYTHING, "logFormat=json,logLevel=warn,bridge.logLevel=debug"]);
    for (name, spec) in pod_specs(&docs) {
        if name == "Pod/nw-test" {
            continue;
        }
        let args: Vec<&str> = spec["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1]);
        let level = if name == "Deployment/nw-bridge" {
            "debug"
        } else {
            "warn"
        };
        assert_eq!(
            (after("--log-format"), after("--log-level")),
            (Some("json"), Some(level)),
            "{name}: {args:?}"
        );
    }
}

#[test]
fn priority_class_and_extra_env_reach_the_pods() {
    let docs = rendered(&[
        EVERYTHING,
        "priorityClassName=site-critical,operator.extraEnv[0].name=HTTPS_PROXY,operator.extraEnv[0].value=http://proxy:3128",
    ]);
    for (name, spec) in pod_specs(&docs) {
        let expected = if name == "DaemonSet/nw-agent" {
            "system-node-critical"
        } else {
            "site-critical"
        };
        assert_eq!(spec["priorityClassName"], expected, "{name}");
    }
    let operator = pod_specs(&docs)
        .into_iter()
        .find(|(name, _)| name == "Deployment/nw-operator")
        .unwrap()
        .1;
    assert!(
        operator["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "HTTPS_PROXY" && e["value"] == "http://proxy:3128"),
        "{operator}"
    );
}

#[test]
fn a_pod_disruption_budget_covers_each_component_that_runs_two_replicas_or_more() {
    let budgets = |set: &[&str]| -> Vec<String> {
        rendered(set)
            .into_iter()
            .filter(|d| d["kind"] == "PodDisruptionBudget")
            .map(|d| {
                format!(
                    "{} maxUnavailable={}",
                    d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
                        .as_str()
                        .unwrap(),
                    d["spec"]["maxUnavailable"]
                )
            })
            .collect()
    };
    assert_eq!(budgets(&[]), ["bridge maxUnavailable=1"]);
    assert_eq!(
        budgets(&["bridge.replicas=1,operator.enabled=true"]),
        Vec::<String>::new()
    );
    assert_eq!(
        budgets(&["operator.enabled=true,operator.replicas=2"]),
        ["bridge maxUnavailable=1", "operator maxUnavailable=1"]
    );
    assert_eq!(
        budgets(&["bridge.podDisruptionBudget.enabled=false"]),
        Vec::<String>::new()
    );
}

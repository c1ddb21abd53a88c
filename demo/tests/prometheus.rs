//! A real Prometheus (Debian's `prometheus` package, which `scripts/install-tools` installs)
//! scrapes the demo's bridge and operator, loads the chart's alert rules, and every Grafana
//! dashboard panel's query and every alert expression is evaluated through its HTTP API.
//!
//! - A panel query must evaluate without an error and return data. Template variables are
//!   substituted first: `$node` with a node Prometheus has seen (`label_values` of the
//!   dashboard's variable), `$__rate_interval` with `30s`.
//! - An alert expression is empty while the alert is not firing, so "no data" proves nothing
//!   there. Each expression must evaluate without an error (an instant query), every metric name
//!   it selects must have at least one series in Prometheus (`count({__name__="…"})` returns
//!   data), and Prometheus' own evaluation of the rule group must report the rule healthy
//!   (`/api/v1/rules`, `health: ok`).
//!
//! Prometheus runs on 127.0.0.1 with a private data directory, scraping and evaluating every
//! second; the demo runs two nodes at one-second ticks with the storage upgrade asked for at tick 3
//! (`--upgrade-at-tick`), so that it shows in the workflow panels early. The test polls until every check passes and fails at
//! its deadline naming each panel or alert that still errs or has no data. It takes about 45
//! seconds on the project's 2-core machine.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills a child process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs a Prometheus API path and returns its JSON body, or the reason it has none.
async fn api(port: u16, path: &str) -> Result<Value, String> {
    let response = nodewright_testenv::http_get(port, path)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| format!("GET {path}: no body"))?;
    let json: Value = serde_json::from_str(body).map_err(|e| format!("GET {path}: {e}: {body}"))?;
    if json["status"] != "success" {
        return Err(format!("{}: {}", json["errorType"], json["error"]));
    }
    Ok(json["data"].clone())
}

/// An instant query: its result vector, or the error Prometheus gave.
async fn query(port: u16, expr: &str) -> Result<Vec<Value>, String> {
    let data = api(port, &format!("/api/v1/query?query={}", encode(expr))).await?;
    Ok(data["result"].as_array().cloned().unwrap_or_default())
}

/// One dashboard panel's query: (dashboard, panel title, expression as written).
fn panel_queries(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the five dashboards are in {}", dir.display());
    for file in files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let title = dashboard["title"].as_str().unwrap().to_owned();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                out.push((
                    title.clone(),
                    panel["title"].as_str().unwrap().to_owned(),
                    target["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// Every alert of the rules file: (name, expression).
fn alerts(file: &Path) -> Vec<(String, String)> {
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            out.push((
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// The metric names an expression selects: identifiers of Nodewright's families or the process
/// collector's. Label names and values never start with these prefixes in the rules.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("nodewright_") || word.starts_with("process_") {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

/// What is still wrong: one line per panel or alert that errs or has no data.
async fn problems(
    port: u16,
    panels: &[(String, String, String)],
    alerts: &[(String, String)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let node = match api(
        port,
        &format!(
            "/api/v1/label/node/values?match[]={}",
            encode("nodewright_bridge_node_ready")
        ),
    )
    .await
    {
        Ok(v) => v
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        Err(e) => {
            problems.push(format!("the $node variable's values: {e}"));
            None
        }
    };
    let node = node.unwrap_or_else(|| {
        problems.push("the $node variable has no value yet".to_owned());
        "no-node".to_owned()
    });
    for (dashboard, title, expr) in panels {
        let expr = expr.replace("$node", &node).replace("$__rate_interval", "30s");
        match query(port, &expr).await {
            Ok(result) if result.is_empty() => {
                problems.push(format!("{dashboard} / {title}: no data from {expr}"))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{dashboard} / {title}: {e} from {expr}")),
        }
    }
    for (alert, expr) in alerts {
        if let Err(e) = query(port, expr).await {
            problems.push(format!("alert {alert}: {e}"));
        }
        for name in metric_names(expr) {
            match query(port, &format!("count({{__name__=\"{name}\"}})")).await {
                Ok(r) if r.is_empty() => problems.push(format!("alert {alert}: no series of {name}")),
                Ok(_) => {}
                Err(e) => problems.push(format!("alert {alert}: counting {name}: {e}")),
            }
        }
    }
    match api(port, "/api/v1/rules?type=alert").await {
        Ok(data) => {
            let mut seen = BTreeSet::new();
            for group in data["groups"].as_array().into_iter().flatten() {
                for rule in group["rules"].as_array().into_iter().flatten() {
                    let name = rule["name"].as_str().unwrap_or_default().to_owned();
                    if rule["health"] != "ok" {
                        problems.push(format!(
                            "alert {name}: Prometheus reports {} {}",
                            rule["health"], rule["lastError"]
                        ));
                    }
                    seen.insert(name);
                }
            }
            for (alert, _) in alerts {
                if !seen.contains(alert) {
                    problems.push(format!("alert {alert}: not loaded by Prometheus"));
                }
            }
        }
        Err(e) => problems.push(format!("the rules: {e}")),
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_alert_expression_evaluates_against_a_real_prometheus_scraping_the_demo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let rules_file = root.join("charts/nodewright/monitoring/alerts.yaml");
    let panels = panel_queries(&root.join("charts/nodewright/dashboards"));
    let alerts = alerts(&rules_file);
    assert!(alerts.len() >= 10, "{alerts:?}");
    let prometheus = which("prometheus")
        .expect("the prometheus binary (Debian's prometheus package; scripts/install-tools installs it)");

    let state = tempfile::tempdir().unwrap();
    let (admin, operator_admin, audit_admin, ui, prom) =
        (free_port(), free_port(), free_port(), free_port(), free_port());
    let exe = Path::new(env!("CARGO_BIN_EXE_nodewright-dev"));
    assert!(
        exe.with_file_name("vxr-sim").is_file(),
        "vxr-sim is missing next to {}: cargo build -p nodewright-sim-harness",
        exe.display()
    );
    let mut demo = Command::new(exe)
        .current_dir(root)
        .args(["--nodes", "2", "--tick-seconds", "1", "--upgrade-at-tick", "3"])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--operator-admin-addr", &operator_admin.to_string()])
        .args(["--audit-admin-addr", &audit_admin.to_string()])
        .args(["--ui-addr", &ui.to_string()])
        .arg("--state-dir")
        .arg(state.path().join("demo"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    let mut stderr = demo.stderr.take().unwrap();
    let mut demo = Killed(demo);
    let mut banner = String::new();
    while !banner.contains("Press Ctrl-C to stop.") {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            panic!("the demo ended early:\n{banner}\n{err}");
        }
        banner.push_str(&line);
    }
    assert!(
        banner.contains("Prometheus"),
        "the banner says where Prometheus can scrape: {banner}"
    );
    // Keep draining the demo's output so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let config = state.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n\
             \x20 - job_name: nodewright-bridge\n    static_configs:\n      - targets: ['{admin}']\n\
             \x20 - job_name: nodewright-operator\n    static_configs:\n      - targets: ['{operator_admin}']\n",
            rules = rules_file.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(state.path().join("prometheus.log")).unwrap();
    let _prometheus = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                state.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(100);
    loop {
        let problems = problems(prom.port(), &panels, &alerts).await;
        if problems.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(state.path().join("prometheus.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "after {:.0}s, {} panels or alerts err or have no data:\n{}\n\nPrometheus' log ends:\n{}",
                started.elapsed().as_secs_f64(),
                problems.len(),
                problems.join("\n"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        assert!(demo.0.try_wait().unwrap().is_none(), "the demo stopped");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!(
        "{} panel queries and {} alert expressions evaluated against Prometheus after {:.1}s",
        panels.len(),
        alerts.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The path of `program` on $PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

#[test]
fn metric_names_are_read_from_an_expression_without_its_labels_or_functions() {
    assert_eq!(
        metric_names(
            "time() - max by (kind) (nodewright_bridge_workflow_phase_since_timestamp_seconds and on (kind) (nodewright_bridge_workflow_phase{terminal=\"false\"} == 1))"
        ),
        BTreeSet::from([
            "nodewright_bridge_workflow_phase".to_owned(),
            "nodewright_bridge_workflow_phase_since_timestamp_seconds".to_owned()
        ])
    );
}

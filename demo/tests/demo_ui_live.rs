//! The issue's "done when", in a real browser: `nodewright-dev` runs, headless Chromium opens the
//! address it prints, and — with no reload — the page shows the cable pull on edge-2 (its state
//! turning `NetworkDegraded` and back to `Ready`), then, on the Workflows view, the storage
//! upgrade's grid advancing node by node.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nodewright_browser_test::Browser;
use serde_json::{Value, json};

/// Stops the demo (Ctrl-C) however the test ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Records, in the page, every change of edge-2's state in the node list, and marks the document
/// so that a reload would be seen (the mark would be gone).
const WATCH_EDGE_2: &str = r"
window.__noReload = true;
window.__edge2 = [];
setInterval(() => {
  const row = [...document.querySelectorAll('#nodes tbody tr')].find(r => r.cells[0] && r.cells[0].innerText.trim() === 'edge-2');
  const badge = row && row.querySelector('.badge');
  const state = badge ? badge.innerText.trim() : null;
  const seen = window.__edge2;
  if (state && seen[seen.length - 1] !== state) seen.push(state);
}, 100);
true";

/// Records, in the page, each node's row of the storage upgrade's grid (how many states it has
/// entered, and its current one) every time it changes.
const WATCH_GRID: &str = r"
window.__noReload = true;
window.__grid = [];
setInterval(() => {
  const table = document.querySelector('table.grid');
  if (!table) return;
  const rows = {};
  for (const r of table.tBodies[0].rows) {
    const cur = r.querySelector('td.current');
    const heads = table.tHead.rows[0].cells;
    rows[r.cells[0].innerText.trim()] = {
      entered: r.querySelectorAll('td.past, td.current').length,
      current: cur ? heads[cur.cellIndex].innerText.trim() : null,
    };
  }
  const text = JSON.stringify(rows);
  const seen = window.__grid;
  if (seen.length === 0 || JSON.stringify(seen[seen.length - 1]) !== text) seen.push(rows);
}, 100);
true";

#[test]
fn a_person_opening_the_printed_address_watches_the_cable_pull_and_the_upgrade_node_by_node() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_nodewright-dev"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        exe.with_file_name("vxr-sim").is_file(),
        "vxr-sim is missing next to {}: cargo build -p nodewright-sim-harness",
        exe.display()
    );
    let state = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let mut child = Command::new(exe)
        .current_dir(root)
        .args(["--nodes", "3", "--tick-seconds", "2"])
        .args(["--admin-addr", &free(), "--operator-admin-addr", &free()])
        .args(["--audit-admin-addr", &free(), "--ui-addr", &free()])
        .arg("--state-dir")
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let demo = Demo(child);
    // The address, as a person reads it from the banner.
    let mut banner = String::new();
    let address = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            panic!("the demo ended early:\n{banner}\n{err}");
        }
        banner.push_str(&line);
        if let Some(rest) = line.strip_prefix("Web UI: ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading the demo's output so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let mut b = Browser::launch();
    b.open(&address);
    b.wait_for(
        "edge-2 in the node list",
        "[...document.querySelectorAll('#nodes tbody tr')].some(r => r.cells[0] && r.cells[0].innerText.trim() === 'edge-2')",
        Duration::from_secs(60),
    );
    b.eval(WATCH_EDGE_2);
    b.wait_for(
        "edge-2 to turn NetworkDegraded and back to Ready, live",
        "(s => { const d = s.indexOf('NetworkDegraded'); return d >= 0 && s.indexOf('Ready', d) > d; })(window.__edge2)",
        Duration::from_secs(90),
    );
    assert_eq!(
        b.eval("window.__noReload === true"),
        json!(true),
        "the page reloaded"
    );

    // The person goes to the Workflows view and watches the upgrade there.
    b.eval("document.querySelector('nav a[data-view=\"workflows\"]').click(); true");
    b.wait_for(
        "the Workflows view",
        "location.pathname === '/workflows' && document.body && Number(document.body.dataset.rendered || 0) >= 1",
        Duration::from_secs(15),
    );
    b.eval(WATCH_GRID);
    b.wait_for(
        "every node's upgrade to reach Completed",
        "(g => g.length > 0 && (last => Object.keys(last).length === 3 && Object.values(last).every(n => n.current === 'Completed'))(g[g.length - 1]))(window.__grid)",
        Duration::from_secs(150),
    );
    assert_eq!(
        b.eval("window.__noReload === true"),
        json!(true),
        "the page reloaded"
    );
    let seen = b.eval("window.__grid");
    let seen = seen.as_array().unwrap();
    // Node by node: the page saw one node Completed while another was still behind it, and saw
    // each node's row change after the page was open.
    let nodes = ["edge-1", "edge-2", "edge-3"];
    let entered = |s: &Value, node: &str| s[node]["entered"].as_u64().unwrap_or(0);
    let one_before_another = seen.iter().any(|s| {
        nodes.iter().any(|a| {
            s[a]["current"] == "Completed"
                && nodes
                    .iter()
                    .any(|b| s[b]["current"] != "Completed" && entered(s, b) < entered(s, a))
        })
    });
    assert!(
        one_before_another,
        "the nodes did not advance one by one: {seen:#?}"
    );
    for node in nodes {
        let counts: Vec<u64> = seen.iter().map(|s| entered(s, node)).collect();
        assert!(
            counts.windows(2).any(|w| w[1] > w[0]),
            "{node}'s row never advanced while watched: {counts:?}"
        );
    }
    b.errors.retain(|e| !e.contains("/events"));
    assert!(b.errors.is_empty(), "the page reported errors: {:#?}", b.errors);
    drop(b);
    drop(demo);
}

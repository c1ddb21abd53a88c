//! The scheduler runs node scripts concurrently yet serves their commands in one fixed order, so a
//! race between nodes comes out the same on every run.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nodewright_legacy_sim::sched::{Handler, NodeProcess, Reply, Request, run_round};

/// A tiny world: `get KEY` prints a value, `put KEY VALUE` stores one; every call is recorded.
#[derive(Default)]
struct Store {
    values: BTreeMap<String, i64>,
    calls: Vec<String>,
}

impl Handler for Store {
    fn handle(&mut self, request: &Request) -> Reply {
        self.calls
            .push(format!("{} {}", request.node, request.argv.join(" ")));
        match request.argv.as_slice() {
            [_, op, key] if op == "get" => Reply {
                stdout: format!("{}\n", self.values.get(key).copied().unwrap_or(0)),
                ..Reply::default()
            },
            [_, op, key, value] if op == "put" => {
                self.values.insert(key.clone(), value.parse().unwrap());
                Reply::default()
            }
            other => Reply {
                stderr: format!("bad call {other:?}\n"),
                code: 2,
                ..Reply::default()
            },
        }
    }
}

fn tool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vxr-sched-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("store");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vxr-sim"), &link).unwrap();
    dir
}

fn node(name: &str, tools: &Path, socket: &Path, script: &str) -> NodeProcess {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .env(
            "PATH",
            format!("{}:{}", tools.display(), std::env::var("PATH").unwrap()),
        )
        .env("VXR_SIM_SOCKET", socket)
        .env("NODE_NAME", name);
    NodeProcess {
        node: name.to_owned(),
        command,
    }
}

fn round(name: &str, scripts: &[(&str, &str)]) -> (Store, Vec<(String, String, i32)>) {
    let tools = tool_dir(name);
    let socket = tools.join("sched.sock");
    let processes = scripts.iter().map(|(n, s)| node(n, &tools, &socket, s)).collect();
    let mut store = Store::default();
    let outcomes = run_round(&socket, processes, &mut store, Duration::from_secs(20)).unwrap();
    let _ = std::fs::remove_dir_all(&tools);
    (
        store,
        outcomes.into_iter().map(|o| (o.node, o.stdout, o.code)).collect(),
    )
}

#[test]
fn commands_of_concurrent_nodes_are_served_round_robin() {
    let script = "store get a; store get b; store get c";
    let (store, outcomes) = round("rr", &[("n1", script), ("n2", script), ("n3", script)]);
    assert_eq!(
        store.calls,
        [
            "n1 store get a",
            "n2 store get a",
            "n3 store get a",
            "n1 store get b",
            "n2 store get b",
            "n3 store get b",
            "n1 store get c",
            "n2 store get c",
            "n3 store get c",
        ]
    );
    assert!(
        outcomes
            .iter()
            .all(|(_, out, code)| out == "0\n0\n0\n" && *code == 0)
    );
}

#[test]
fn two_nodes_acting_on_the_same_read_lose_an_update_every_time() {
    // Each node reads the counter, thinks, and writes it back plus one: the classic stale read.
    let script = "v=$(store get counter); sleep 0.05; store put counter $((v + 1))";
    for _ in 0..3 {
        let (store, _) = round("race", &[("n1", script), ("n2", script)]);
        assert_eq!(store.values["counter"], 1, "both nodes read 0 and wrote 1");
        assert_eq!(
            store.calls,
            [
                "n1 store get counter",
                "n2 store get counter",
                "n1 store put counter 1",
                "n2 store put counter 1"
            ]
        );
    }
}

#[test]
fn a_node_doing_long_local_work_is_waited_for_before_anyone_else_proceeds() {
    // n1 computes for a while between its calls; n2 must not overtake it in the order.
    let (store, _) = round(
        "slow",
        &[
            ("n1", "store get x; sleep 0.3; store get y"),
            ("n2", "store get x; store get y"),
        ],
    );
    assert_eq!(
        store.calls,
        [
            "n1 store get x",
            "n2 store get x",
            "n1 store get y",
            "n2 store get y"
        ]
    );
}

#[test]
fn exit_codes_and_output_of_each_script_are_returned() {
    let (_, outcomes) = round("exit", &[("n1", "store get a; exit 3"), ("n2", "store bogus")]);
    assert_eq!(outcomes[0], ("n1".to_owned(), "0\n".to_owned(), 3));
    assert_eq!(outcomes[1].2, 2, "the tool's exit code reaches the script");
}

#[test]
fn a_script_stuck_outside_the_simulated_tools_is_reported() {
    let tools = tool_dir("stuck");
    let socket = tools.join("sched.sock");
    let mut store = Store::default();
    let err = run_round(
        &socket,
        vec![node("n1", &tools, &socket, "sleep 5")],
        &mut store,
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert!(err.to_string().contains("n1"), "{err}");
    let _ = std::fs::remove_dir_all(&tools);
}

/// The store, with one node's `get` calls held for a number of rounds.
struct Holding {
    store: Store,
    node: &'static str,
    rounds_left: u32,
}

impl Handler for Holding {
    fn handle(&mut self, request: &Request) -> Reply {
        self.store.handle(request)
    }
    fn hold(&mut self, request: &Request) -> bool {
        request.node == self.node
            && request.argv.get(1).map(String::as_str) == Some("get")
            && self.rounds_left > 0
    }
}

#[test]
fn a_held_command_blocks_its_script_across_rounds_and_it_goes_on_from_where_it_was() {
    use nodewright_legacy_sim::sched::{Entry, Slot, run_round_carrying};
    let tools = tool_dir("hold");
    let socket = tools.join("sched.sock");
    // a reads x before b writes it, but its read is held; when it is answered, a acts on what
    // it reads then and prints it.
    let a = "v=$(store get x); store put seen \"$v\"; echo a saw $v";
    let b = "store put x 1";
    let mut h = Holding {
        store: Store::default(),
        node: "a",
        rounds_left: 2,
    };
    let entries = vec![
        Entry::Start(node("a", &tools, &socket, a)),
        Entry::Start(node("b", &tools, &socket, b)),
    ];
    let slots = run_round_carrying(&socket, entries, &mut h, Duration::from_secs(20)).unwrap();
    let mut carried = None;
    for slot in slots {
        match slot {
            Slot::Finished(o) => assert_eq!((o.node.as_str(), o.code), ("b", 0)),
            Slot::Carried(c) => {
                assert_eq!(c.held().argv, ["store", "get", "x"]);
                carried = Some(c);
            }
        }
    }
    // The next round: still held, and b runs again beside it.
    h.rounds_left -= 1;
    let entries = vec![
        Entry::Carry(carried.take().unwrap()),
        Entry::Start(node("b", &tools, &socket, "store put x 2")),
    ];
    let slots = run_round_carrying(&socket, entries, &mut h, Duration::from_secs(20)).unwrap();
    let carried = slots
        .into_iter()
        .find_map(|s| match s {
            Slot::Carried(c) => Some(c),
            Slot::Finished(_) => None,
        })
        .expect("a is still blocked");
    // Released: the read is answered with what the world holds now.
    h.rounds_left -= 1;
    let slots = run_round_carrying(
        &socket,
        vec![Entry::Carry(carried)],
        &mut h,
        Duration::from_secs(20),
    )
    .unwrap();
    let [Slot::Finished(o)] = slots.as_slice() else {
        panic!("a did not finish");
    };
    assert_eq!(
        (o.node.as_str(), o.stdout.as_str(), o.code),
        ("a", "a saw 2\n", 0)
    );
    assert_eq!(h.store.values["seen"], 2);
    assert_eq!(
        h.store.calls,
        [
            "b store put x 1",
            "b store put x 2",
            "a store get x",
            "a store put seen 2"
        ]
    );
    let _ = std::fs::remove_dir_all(&tools);
}

#[test]
fn a_script_still_blocked_when_a_plain_round_ends_is_killed_with_what_it_printed() {
    let tools = tool_dir("hold-kill");
    let socket = tools.join("sched.sock");
    let mut h = Holding {
        store: Store::default(),
        node: "a",
        rounds_left: 1,
    };
    let processes = vec![node("a", &tools, &socket, "echo before; store get x; echo after")];
    let outcomes = run_round(&socket, processes, &mut h, Duration::from_secs(20)).unwrap();
    assert_eq!(outcomes[0].stdout, "before\n");
    assert_ne!(outcomes[0].code, 0);
    assert!(h.store.calls.is_empty());
    let _ = std::fs::remove_dir_all(&tools);
}

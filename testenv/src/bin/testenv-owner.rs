//! `testenv-owner MODE`: a process that owns a control plane and then ends badly, for the life-cycle
//! tests (`tests/lifecycle.rs`), which check that the control plane never outlives it. It starts the
//! shared control plane, prints `control-plane PID DIR` on a line of standard output, and then
//! ends as `MODE` says: `abort` (SIGABRT), `panic` (an unwinding panic, exit 101), or `interrupt`
//! (SIGINT to itself).
//!
//! A program of its own rather than a `#[test]` run again with an environment variable: a test
//! that does nothing unless a variable is set passes on its own without checking anything.

// A test helper: its failures are panics with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if !matches!(mode.as_str(), "abort" | "panic" | "interrupt") {
        eprintln!("usage: testenv-owner abort|panic|interrupt (got {mode:?})");
        std::process::exit(2);
    }
    let cp = nodewright_testenv::shared().expect("the control plane starts");
    println!(
        "control-plane {} {}",
        cp.pid().expect("it runs"),
        cp.dir().display()
    );
    match mode.as_str() {
        "abort" => std::process::abort(),
        "panic" => panic!("a failing owner"),
        _ => {
            let me = std::process::id().to_string();
            Command::new("kill")
                .args(["-INT", &me])
                .status()
                .expect("kill runs");
            std::thread::sleep(Duration::from_secs(30));
            panic!("SIGINT did not end the process");
        }
    }
}

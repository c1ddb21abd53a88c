//! `nodewright agent` as a person or a DaemonSet starts it: its help names every option, and
//! without a node name it stops at once with a one-line error instead of acting on nothing.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn nodewright() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodewright"));
    // The tests decide what the agent sees of its environment.
    cmd.env_remove("NODE_NAME")
        .env_remove("POD_NAME")
        .env_remove("KUBECONFIG");
    cmd
}

#[test]
fn the_agents_help_names_every_option() {
    let out = nodewright().args(["agent", "--help"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--node",
        "--namespace",
        "--pod-name",
        "--state-dir",
        "--kubeconfig",
        "--command-timeout-seconds",
        "--host-os",
        "--host-root",
        "--operator-identity",
        "nodewright-system",
        "/var/lib/nodewright-agent",
        "NODE_NAME",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn the_agent_is_listed_among_the_subcommands() {
    let out = nodewright().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("agent"));
}

#[test]
fn an_agent_without_a_node_name_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = nodewright()
        .args(["agent", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no node name") && stderr.contains("NODE_NAME"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_empty_node_name_counts_as_missing() {
    let out = nodewright()
        .args(["agent", "--node", ""])
        .env("NODE_NAME", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no node name"), "{stderr}");
}

//! The agent's DaemonSet as the chart renders it holds what its steps need and no more, each
//! permission named in a comment of the template that says why:
//! - by default privileged (DRBD's netlink configuration and block devices, package installs), as
//!   root, with the host's `/` mounted at `/host`, where every host command runs through
//!   `nodewright host-exec`;
//! - with `agent.privileged=false`, every capability dropped but `SYS_CHROOT`, `NET_ADMIN` and
//!   `SYS_MODULE`, no privilege escalation, the runtime's seccomp profile;
//! - in both, exactly two host mounts: the journal and the host root; the host's PID and IPC
//!   namespaces are not shared, and no init container runs.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

use serde_yaml_ng::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/nodewright");
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/nodewright/templates/agent-daemonset.yaml"
);

/// The capabilities an unprivileged agent keeps: SYS_CHROOT for `host-exec`, NET_ADMIN for bond,
/// VLAN and address changes, SYS_MODULE for `modprobe`.
const CAPABILITIES: [&str; 3] = ["SYS_CHROOT", "NET_ADMIN", "SYS_MODULE"];

/// Host paths mounted (host path, mount path, writable, propagation).
const MOUNTS: [(&str, &str, bool, Option<&str>); 2] = [
    (
        "/var/lib/nodewright-agent",
        "/var/lib/nodewright-agent",
        true,
        None,
    ),
    ("/", "/host", true, Some("HostToContainer")),
];

fn daemonset(extra: &[&str]) -> Value {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", "nw", CHART, "--namespace", "nodewright-system"])
        .args(["--set", "agent.enabled=true"])
        .args(extra.iter().flat_map(|s| ["--set", s]))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run testenv/build.sh)", helm.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<Value>(doc).ok())
        .find(|doc| doc["kind"] == "DaemonSet")
        .expect("the agent's DaemonSet")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn container(ds: &Value) -> &Value {
    let pod = &ds["spec"]["template"]["spec"];
    assert!(pod["hostPID"].is_null() && pod["hostIPC"].is_null(), "{pod:?}");
    assert!(pod["initContainers"].is_null(), "no init container: {pod:?}");
    assert_eq!(
        pod["hostNetwork"], true,
        "host steps change the host's network stack"
    );
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

#[test]
fn by_default_the_agent_is_privileged_as_root_and_runs_host_commands_in_the_host_root() {
    let ds = daemonset(&[]);
    let c = container(&ds);
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], true);
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "the image's own files are never written"
    );
    assert!(
        sc["capabilities"].is_null(),
        "privileged holds every capability: {sc:?}"
    );
    let args = strings(&c["args"]);
    let pair = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(pair("--host-root").as_deref(), Some("/host"));
    assert_eq!(pair("--host-commands").as_deref(), Some("host-root"));
}

#[test]
fn unprivileged_the_agent_drops_every_capability_but_the_three_its_network_and_module_steps_need() {
    let ds = daemonset(&["agent.privileged=false"]);
    let sc = &container(&ds)["securityContext"];
    assert!(sc["privileged"].is_null(), "{sc:?}");
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let added: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    let wanted: BTreeSet<String> = CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
    assert_eq!(added, wanted);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn the_agent_mounts_exactly_its_journal_and_the_host_root_privileged_or_not() {
    for extra in [&[][..], &["agent.privileged=false"][..]] {
        let ds = daemonset(extra);
        let pod = &ds["spec"]["template"]["spec"];
        let volumes = pod["volumes"].as_sequence().unwrap();
        let mounts = pod["containers"][0]["volumeMounts"].as_sequence().unwrap();
        let mut seen = BTreeSet::new();
        for v in volumes {
            let name = v["name"].as_str().unwrap();
            let host = v["hostPath"]["path"].as_str().expect("only hostPath volumes");
            let mount = mounts
                .iter()
                .find(|m| m["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("volume {name} is mounted"));
            let at = mount["mountPath"].as_str().unwrap();
            let writable = mount["readOnly"] != true;
            let propagation = mount["mountPropagation"].as_str();
            assert!(
                MOUNTS.contains(&(host, at, writable, propagation)),
                "{host} at {at} (writable: {writable}, propagation {propagation:?}) is not one of the justified mounts"
            );
            seen.insert(host.to_owned());
        }
        assert_eq!(seen.len(), MOUNTS.len(), "{seen:?}");
        assert_eq!(mounts.len(), volumes.len());
    }
}

#[test]
fn the_template_says_why_for_each_capability_each_privileged_step_and_the_host_root() {
    let template = std::fs::read_to_string(TEMPLATE).unwrap();
    let comments: String = template
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for cap in CAPABILITIES {
        assert!(
            comments.contains(&format!("- {cap}:")),
            "no comment justifies {cap}"
        );
    }
    for what in [
        "drbd-demote, drbd-down, drbd-adjust",
        "package-install",
        "/lib/modules",
        "/dev",
        "systemd's private socket",
        "node.conf",
        "os-release",
        "journal",
        "HostToContainer",
    ] {
        assert!(comments.contains(what), "no comment mentions {what}");
    }
}

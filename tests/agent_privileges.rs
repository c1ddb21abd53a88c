//! The agent's DaemonSet as the chart renders it holds no more than its steps need: not
//! privileged, every capability dropped and exactly the justified ones added back, no privilege
//! escalation, and host mounts that are each read-only but the journal's. Each added capability
//! and each mount is named in a comment of the template, which says why (docs/components.md, "The
//! agent's rights", says the same per step).

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

/// The capabilities the catalogue's steps need: NET_ADMIN for bond-set-active's `ip link set`,
/// SYS_MODULE for module-load and module-unload's `modprobe`.
const CAPABILITIES: [&str; 2] = ["NET_ADMIN", "SYS_MODULE"];

/// Host paths mounted, and whether writable: the journal is the only one.
const MOUNTS: [(&str, &str, bool); 7] = [
    ("/var/lib/nodewright-agent", "/var/lib/nodewright-agent", true),
    ("/lib/modules", "/lib/modules", false),
    ("/run/systemd", "/run/systemd", false),
    ("/etc/linstor", "/etc/linstor", false),
    ("/etc/drbd.d", "/etc/drbd.d", false),
    ("/var/lib/linstor.d", "/var/lib/linstor.d", false),
    ("/usr/lib/os-release", "/host/usr/lib/os-release", false),
];

fn daemonset() -> Value {
    let helm = nodewright_testenv::default_bin_dir().join("helm");
    let out = Command::new(&helm)
        .args(["template", "nw", CHART, "--namespace", "nodewright-system"])
        .args(["--set", "agent.enabled=true"])
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

/// Every key named `key` anywhere under `v`.
fn find_key<'a>(v: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                if k.as_str() == Some(key) {
                    found.push(x);
                }
                find_key(x, key, found);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| find_key(x, key, found)),
        _ => {}
    }
}

#[test]
fn the_agent_is_not_privileged_and_adds_back_exactly_the_justified_capabilities() {
    let ds = daemonset();
    let mut privileged = Vec::new();
    find_key(&ds, "privileged", &mut privileged);
    assert!(privileged.is_empty(), "privileged appears: {privileged:?}");
    let pod = &ds["spec"]["template"]["spec"];
    assert!(pod["hostPID"].is_null() && pod["hostIPC"].is_null(), "{pod:?}");
    assert!(pod["initContainers"].is_null(), "no init container: {pod:?}");
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let sc = &containers[0]["securityContext"];
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let added: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    let wanted: BTreeSet<String> = CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
    assert_eq!(added, wanted);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn every_host_mount_is_justified_and_only_the_journal_is_writable() {
    let ds = daemonset();
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
        assert!(
            MOUNTS.contains(&(host, at, writable)),
            "{host} at {at} (writable: {writable}) is not one of the justified mounts"
        );
        seen.insert(host.to_owned());
    }
    assert_eq!(seen.len(), MOUNTS.len(), "{seen:?}");
    assert_eq!(mounts.len(), volumes.len());
}

#[test]
fn the_template_says_why_for_each_capability_and_each_mount() {
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
        "modprobe",
        "systemctl",
        "linstor client",
        "drbdadm status",
        "os-release",
        "journal",
    ] {
        assert!(comments.contains(what), "no comment mentions {what}");
    }
    assert!(
        comments.contains("package-install cannot be granted without privileged"),
        "the step that is not granted is named"
    );
}

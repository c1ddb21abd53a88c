//! The legacy DaemonSet as users run it today: its manifest is accepted by a real API server, and
//! its RBAC allows exactly what the script needs — nothing more.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nodewright_testenv::TestContext;

const SA: &str = "system:serviceaccount:kube-system:vx-rail-node-init";

fn kubectl(ctx: &TestContext, args: &[&str]) -> (bool, String) {
    let out = ctx.control_plane.kubectl().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn can_i(ctx: &TestContext, verb: &str, resource: &str, namespace: &str) -> bool {
    // The answer is on stdout; stderr may carry a warning (nodes are not namespaced).
    let out = ctx
        .control_plane
        .kubectl()
        .args(["auth", "can-i", verb, resource, "-n", namespace, "--as", SA])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[tokio::test]
async fn the_legacy_daemonset_applies_and_its_rbac_is_the_minimum_the_script_needs() {
    let ctx = TestContext::new("legacy").await.unwrap();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/legacy/daemonset.yaml");
    let (ok, out) = kubectl(&ctx, &["apply", "--server-side", "-f", manifest]);
    assert!(ok, "{out}");
    let (ok, ds) = kubectl(
        &ctx,
        &[
            "get",
            "daemonset",
            "vx-rail-node-init",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.spec.template.spec.hostNetwork} {.spec.template.spec.hostPID} {.spec.template.spec.containers[0].securityContext.privileged}",
        ],
    );
    assert!(ok, "{ds}");
    assert_eq!(ds, "true true true", "privileged, hostNetwork, hostPID");

    // What the script does.
    for (verb, resource, namespace) in [
        ("get", "nodes", "default"),
        ("list", "nodes", "default"),
        ("patch", "nodes", "default"),
        ("get", "configmaps", "kube-system"),
        ("create", "configmaps", "kube-system"),
        ("patch", "configmaps", "kube-system"),
    ] {
        assert!(
            can_i(&ctx, verb, resource, namespace),
            "the script may {verb} {resource} in {namespace}"
        );
    }
    // What it must not be able to do.
    for (verb, resource, namespace) in [
        ("delete", "nodes", "default"),
        ("create", "configmaps", "default"),
        ("delete", "configmaps", "kube-system"),
        ("get", "secrets", "kube-system"),
        ("create", "pods", "kube-system"),
    ] {
        assert!(
            !can_i(&ctx, verb, resource, namespace),
            "the script must not {verb} {resource} in {namespace}"
        );
    }
}

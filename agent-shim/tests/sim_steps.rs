//! Every mutating step of the catalogue, run twice against the simulated edge world (whose tools
//! print the real tools' formats): the first run mutates, the second finds it already done and
//! runs only its check. No API server here — this is the catalogue meeting real output formats.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{SimHost, count};
use nodewright_agent_shim::plan;
use nodewright_legacy_sim::host::{DEFAULT_EPOCH, NodeSpec, World};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs a step twice; returns the two outcomes' messages after checking the second mutated nothing.
fn twice(host: &mut SimHost, step: &str, a: &[&str]) -> (String, String) {
    let p = plan(step, &args(a)).unwrap();
    let first = p.execute(host, None);
    assert_eq!(first.code, 0, "{step} {a:?}: {first:?}");
    let before = host.ran().len();
    let second = p.execute(host, None);
    assert_eq!(second.code, 0, "{step} {a:?} again: {second:?}");
    assert_eq!(host.ran().len(), before + 1, "{step} again runs only its check");
    assert!(second.message.starts_with("already done"), "{}", second.message);
    (first.message, second.message)
}

#[test]
fn every_linstor_step_mutates_once_and_is_already_done_the_second_time() {
    let specs = [
        NodeSpec::edge("edge-1", "10.10.100.11")
            .with_controller()
            .with_pool("pool0", "vg0/thinpool", 100),
        NodeSpec::edge("edge-2", "10.10.100.12"),
    ];
    let world = Arc::new(Mutex::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap()));
    let mut host = SimHost::new(&world, "edge-1");

    twice(&mut host, "linstor-node-create", &["edge-2", "10.10.100.12"]);
    twice(
        &mut host,
        "storage-pool-create",
        &["edge-2", "pool0", "vg0/thinpool"],
    );
    twice(&mut host, "resource-create", &["edge-2", "pvc-1", "pool0"]);
    twice(&mut host, "resource-delete", &["edge-2", "pvc-1"]);
    twice(&mut host, "linstor-node-delete", &["edge-2"]);

    let ran = host.ran();
    for words in [
        &[
            "node",
            "create",
            "edge-2",
            "10.10.100.12",
            "--node-type",
            "satellite",
        ][..],
        &[
            "storage-pool",
            "create",
            "lvmthin",
            "edge-2",
            "pool0",
            "vg0/thinpool",
        ],
        &["resource", "create", "edge-2", "pvc-1", "--storage-pool", "pool0"],
        &["resource", "delete", "edge-2", "pvc-1"],
        &["node", "delete", "edge-2"],
    ] {
        assert_eq!(count(&ran, words), 1, "{words:?} ran once");
    }
}

#[test]
fn bond_set_active_flips_the_active_slave_once_and_refuses_a_slave_that_is_not_the_bonds() {
    let specs = [NodeSpec::edge("edge-1", "10.10.100.11").with_bond("bond0", "active-backup", 100)];
    let world = Arc::new(Mutex::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap()));
    let mut host = SimHost::new(&world, "edge-1");

    let p = plan("bond-set-active", &args(&["bond0", "eno1"])).unwrap();
    let out = p.execute(&mut host, None);
    assert_eq!(out.code, 0, "{out:?}");
    let active_first = if out.message.starts_with("already done") {
        "eno1"
    } else {
        "eno2"
    };
    let target = if active_first == "eno1" { "eno2" } else { "eno1" };

    let (first, _) = twice(&mut host, "bond-set-active", &["bond0", target]);
    assert_eq!(first, "done");
    let proc_bond = world
        .lock()
        .unwrap()
        .exec(
            "edge-1",
            &args(&["ip", "-d", "link", "show", "dev", "bond0"]),
            &[],
        )
        .stdout_str();
    assert!(
        proc_bond.contains(&format!("active_slave {target}")),
        "{proc_bond}"
    );
    assert_eq!(
        count(
            &host.ran(),
            &[
                "ip",
                "link",
                "set",
                "dev",
                "bond0",
                "type",
                "bond",
                "active_slave",
                target
            ]
        ),
        1
    );

    let refused = plan("bond-set-active", &args(&["bond0", "lo"]))
        .unwrap()
        .execute(&mut host, None);
    assert_ne!(refused.code, 0);
    assert!(
        refused.message.contains("lo is not a slave of bond0"),
        "{}",
        refused.message
    );
}

#[test]
fn read_only_steps_return_the_tools_output() {
    let specs = [NodeSpec::edge("edge-1", "10.10.100.11")
        .with_controller()
        .with_pool("pool0", "vg0/thinpool", 100)];
    let world = Arc::new(Mutex::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap()));
    let mut host = SimHost::new(&world, "edge-1");
    for (step, needle) in [
        ("linstor-node-list", "┊ edge-1 "),
        ("linstor-storage-pool-list", "┊ pool0 "),
        ("linstor-resource-list", "ResourceName"),
    ] {
        let out = plan(step, &[]).unwrap().execute(&mut host, None);
        assert_eq!(out.code, 0, "{step}: {out:?}");
        assert!(out.output.contains(needle), "{step}: {}", out.output);
    }
    // Without the DRBD module, `drbdadm status all` fails as the real one does, and the task says so.
    let drbd = plan("drbd-status", &[]).unwrap();
    let out = drbd.execute(&mut host, None);
    assert_eq!(out.code, 20, "{out:?}");
    assert!(out.output.contains("generic netlink"), "{}", out.output);
    assert_eq!(out.message, "`drbdadm status all` failed with exit code 20");
    world
        .lock()
        .unwrap()
        .exec("edge-1", &args(&["modprobe", "drbd"]), &[]);
    let out = drbd.execute(&mut host, None);
    assert_eq!(out.code, 0, "{out:?}");
}

/// Like [`twice`], on a host of the given family.
fn twice_on(host: &mut SimHost, os: nodewright_api::OsFamily, step: &str, a: &[&str]) -> String {
    let p = nodewright_agent_shim::plan_on(os, step, &args(a)).unwrap();
    let first = p.execute(host, None);
    assert_eq!(first.code, 0, "{step} {a:?} on {os}: {first:?}");
    assert_eq!(first.message, "done", "{step} {a:?} on {os}");
    let before = host.ran().len();
    let second = p.execute(host, None);
    assert_eq!(second.code, 0, "{step} {a:?} again on {os}: {second:?}");
    assert_eq!(host.ran().len(), before + 1, "{step} again runs only its check");
    assert!(second.message.starts_with("already done"), "{}", second.message);
    first.output
}

#[test]
fn os_steps_mutate_once_on_a_debian_and_on_an_rpm_host() {
    use nodewright_api::OsFamily;
    use nodewright_legacy_sim::host::OsFlavour;
    for (os, flavour) in [
        (OsFamily::Debian, OsFlavour::Debian),
        (OsFamily::Rpm, OsFlavour::Rpm),
    ] {
        let specs = [NodeSpec::edge("edge-1", "10.10.100.11").with_os(flavour)];
        let world = Arc::new(Mutex::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap()));
        let mut host = SimHost::new(&world, "edge-1");

        let output = twice_on(&mut host, os, "package-install", &["drbd-utils", "9.31.0-1"]);
        match os {
            OsFamily::Debian => {
                assert!(output.contains("$ apt-get install -y -qq --allow-downgrades drbd-utils=9.31.0-1"))
            }
            OsFamily::Rpm => {
                assert!(
                    output.contains("$ dnf install -y drbd-utils-9.31.0-1"),
                    "{output}"
                );
                assert!(
                    output.contains("Upgraded:\n  drbd-utils-9.31.0-1.x86_64"),
                    "{output}"
                );
            }
        }
        // Not installed before: the check's non-zero exit is an answer, not a failure.
        twice_on(&mut host, os, "package-install", &["drbd-reactor", "1.6.0-1"]);
        twice_on(&mut host, os, "service-stop", &["linstor-satellite"]);
        twice_on(&mut host, os, "service-start", &["linstor-satellite"]);
        twice_on(&mut host, os, "module-load", &["drbd"]);
        twice_on(&mut host, os, "module-load", &["drbd_transport_tcp"]);
        twice_on(&mut host, os, "module-unload", &["drbd_transport_tcp"]);

        let w = world.lock().unwrap();
        let node = &w.nodes["edge-1"];
        assert_eq!(node.packages["drbd-utils"].version, "9.31.0-1");
        assert!(node.unit_active("linstor-satellite"));
        assert!(node.has_module("drbd") && !node.has_module("drbd_transport_tcp"));
        drop(w);
        // The other family's tools are not there: its plan fails at the check and changes nothing.
        let other = if os == OsFamily::Debian {
            OsFamily::Rpm
        } else {
            OsFamily::Debian
        };
        let p = nodewright_agent_shim::plan_on(other, "package-install", &args(&["drbd-utils", "9.29.0-1"]))
            .unwrap();
        let before = host.ran().len();
        let out = p.execute(&mut host, None);
        assert_eq!(out.code, 127, "{out:?}");
        assert_eq!(host.ran().len(), before + 1);
    }
}

/// A three-node site with pvc-1 Primary on edge-1, on hosts of `flavour`.
fn upgrade_site(flavour: nodewright_legacy_sim::host::OsFlavour) -> Arc<Mutex<World>> {
    let specs = [
        NodeSpec::edge("edge-1", "10.10.100.11")
            .with_controller()
            .with_pool("pool0", "vg0/thinpool", 100)
            .with_os(flavour),
        NodeSpec::edge("edge-2", "10.10.100.12")
            .with_pool("pool0", "vg0/thinpool", 100)
            .with_os(flavour),
    ];
    let mut world = World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap();
    world
        .add_resource("pvc-1", 1024, &["edge-1", "edge-2"], Some("edge-1"))
        .unwrap();
    Arc::new(Mutex::new(world))
}

const FAMILIES: [(nodewright_api::OsFamily, nodewright_legacy_sim::host::OsFlavour); 2] = [
    (
        nodewright_api::OsFamily::Debian,
        nodewright_legacy_sim::host::OsFlavour::Debian,
    ),
    (
        nodewright_api::OsFamily::Rpm,
        nodewright_legacy_sim::host::OsFlavour::Rpm,
    ),
];

#[test]
fn the_upgrade_steps_take_a_node_down_and_up_once_on_a_debian_and_on_an_rpm_host() {
    for (os, flavour) in FAMILIES {
        let world = upgrade_site(flavour);
        let mut host = SimHost::new(&world, "edge-1");
        let state = std::env::temp_dir().join(format!("nodewright-sim-steps-{}-{os}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);

        // BACKUP_CONFIG: saved once, found there the second time.
        let backup = nodewright_agent_shim::plan_on(os, "storage-backup", &args(&["9.2.14-1"])).unwrap();
        let first = backup.execute_in(&mut host, None, Some(&state));
        assert_eq!((first.code, first.message.as_str()), (0, "done"), "{first:?}");
        let saved = std::fs::read_to_string(state.join("backup/9.2.14-1/drbdsetup-status.txt")).unwrap();
        assert!(saved.contains("pvc-1 node-id:0 role:Primary"), "{saved}");
        let before = host.ran().len();
        let again = backup.execute_in(&mut host, None, Some(&state));
        assert!(again.message.starts_with("already done"), "{}", again.message);
        assert_eq!(host.ran().len(), before, "a repeat runs nothing");

        twice_on(&mut host, os, "drbd-demote", &["pvc-1"]);
        twice_on(&mut host, os, "service-stop", &["linstor-satellite"]);
        twice_on(&mut host, os, "drbd-down", &[]);
        twice_on(&mut host, os, "module-unload", &["drbd_transport_tcp"]);
        twice_on(&mut host, os, "module-unload", &["drbd"]);

        // Nothing loaded: the version report says so rather than failing.
        let version = nodewright_agent_shim::plan_on(os, "drbd-version", &[]).unwrap();
        let out = version.execute(&mut host, None);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.output, "kernel=none\npackage=9.2.12-1\n");

        let refresh = nodewright_agent_shim::plan_on(os, "package-refresh", &[]).unwrap();
        assert_eq!(refresh.execute(&mut host, None).code, 0);
        twice_on(&mut host, os, "package-install", &["drbd-dkms", "9.2.14-1"]);
        twice_on(&mut host, os, "module-load", &["drbd"]);
        twice_on(&mut host, os, "module-load", &["drbd_transport_tcp"]);
        twice_on(&mut host, os, "service-start", &["linstor-satellite"]);
        twice_on(&mut host, os, "drbd-adjust", &[]);

        let out = version.execute(&mut host, None);
        assert_eq!(out.output, "kernel=9.2.14\npackage=9.2.14-1\n", "{out:?}");
        let status = nodewright_agent_shim::plan_on(os, "service-status", &args(&["linstor-satellite"]))
            .unwrap()
            .execute(&mut host, None);
        assert_eq!((status.code, status.output.as_str()), (0, "active\n"));
        let status = nodewright_agent_shim::plan_on(os, "service-status", &args(&["drbd-reactor"]))
            .unwrap()
            .execute(&mut host, None);
        assert_eq!((status.code, status.output.as_str()), (0, "inactive\n"));

        let ran = host.ran();
        for words in [
            &["drbdadm", "secondary", "pvc-1"][..],
            &["drbdadm", "down", "all"],
            &["drbdadm", "adjust", "all"],
        ] {
            assert_eq!(count(&ran, words), 1, "{words:?} ran once on {os}");
        }
        let refreshed = match os {
            nodewright_api::OsFamily::Debian => &["apt-get", "update", "-qq"][..],
            nodewright_api::OsFamily::Rpm => &["dnf", "makecache"],
        };
        assert_eq!(count(&ran, refreshed), 1, "{os}");
        let w = world.lock().unwrap();
        assert!(w.nodes["edge-1"].drbd.contains_key("pvc-1"), "pvc-1 is up again");
        drop(w);
        std::fs::remove_dir_all(&state).unwrap();
    }
}

#[test]
fn a_demote_of_a_device_a_pod_holds_open_fails_with_drbds_message_until_the_pod_is_gone() {
    for (os, flavour) in FAMILIES {
        let world = upgrade_site(flavour);
        world
            .lock()
            .unwrap()
            .open_device("edge-1", "pvc-1", "default/app-0")
            .unwrap();
        let mut host = SimHost::new(&world, "edge-1");
        let demote = nodewright_agent_shim::plan_on(os, "drbd-demote", &args(&["pvc-1"])).unwrap();
        let out = demote.execute(&mut host, None);
        assert_eq!(out.code, 11, "{out:?}");
        assert!(
            out.output
                .contains("pvc-1: State change failed: (-12) Device is held open by someone"),
            "{}",
            out.output
        );
        assert_eq!(out.message, "`drbdadm secondary pvc-1` failed with exit code 11");
        // The pod is evicted: its device closes, and the demote goes through.
        world.lock().unwrap().release_devices(&|h| h != "default/app-0");
        let out = demote.execute(&mut host, None);
        assert_eq!((out.code, out.message.as_str()), (0, "done"), "{out:?}");
    }
}

#[test]
fn an_exact_drbd_dkms_version_installs_and_a_failing_install_leaves_the_package_unusable() {
    use nodewright_legacy_sim::host::Fault;
    for (os, flavour) in FAMILIES {
        let world = upgrade_site(flavour);
        let mut host = SimHost::new(&world, "edge-2");
        let output = twice_on(&mut host, os, "package-install", &["drbd-dkms", "9.2.14-1"]);
        match os {
            nodewright_api::OsFamily::Debian => assert!(
                output.contains("$ apt-get install -y -qq --allow-downgrades drbd-dkms=9.2.14-1"),
                "{output}"
            ),
            nodewright_api::OsFamily::Rpm => {
                assert!(output.contains("$ dnf install -y drbd-dkms-9.2.14-1"), "{output}")
            }
        }
        assert_eq!(
            world.lock().unwrap().nodes["edge-2"].packages["drbd-dkms"].version,
            "9.2.14-1"
        );

        world
            .lock()
            .unwrap()
            .inject(Fault::FailedPackageInstall {
                node: "edge-2".into(),
                package: "drbd-dkms".into(),
            })
            .unwrap();
        let back =
            nodewright_agent_shim::plan_on(os, "package-install", &args(&["drbd-dkms", "9.2.12-1"])).unwrap();
        let failed = back.execute(&mut host, None);
        assert_ne!(failed.code, 0, "{failed:?}");
        assert!(
            failed.output.contains("post-installation script") || failed.output.contains("%post"),
            "{}",
            failed.output
        );
        let version = nodewright_agent_shim::plan_on(os, "drbd-version", &[]).unwrap();
        let reported = version.execute(&mut host, None).output;
        match os {
            // dpkg keeps it half-configured: not installed, so the next run installs it again.
            nodewright_api::OsFamily::Debian => {
                assert!(reported.ends_with("package=none\n"), "{reported}");
                let retry = back.execute(&mut host, None);
                assert_eq!((retry.code, retry.message.as_str()), (0, "done"), "{retry:?}");
            }
            // rpm records a package whose %post failed as installed: the check cannot tell, and
            // only the module that does not load shows it (what VERIFY_VERSION reads).
            nodewright_api::OsFamily::Rpm => {
                assert!(reported.ends_with("package=9.2.12-1\n"), "{reported}");
                let load = nodewright_agent_shim::plan_on(os, "module-load", &args(&["drbd"])).unwrap();
                let _ = nodewright_agent_shim::plan_on(os, "drbd-demote", &args(&["pvc-1"]))
                    .unwrap()
                    .execute(&mut host, None);
                let _ = nodewright_agent_shim::plan_on(os, "drbd-down", &[])
                    .unwrap()
                    .execute(&mut host, None);
                let _ = nodewright_agent_shim::plan_on(os, "module-unload", &args(&["drbd_transport_tcp"]))
                    .unwrap()
                    .execute(&mut host, None);
                let _ = nodewright_agent_shim::plan_on(os, "module-unload", &args(&["drbd"]))
                    .unwrap()
                    .execute(&mut host, None);
                let out = load.execute(&mut host, None);
                assert_ne!(out.code, 0, "{out:?}");
                assert!(out.output.contains("Module drbd not found"), "{}", out.output);
            }
        }
    }
}

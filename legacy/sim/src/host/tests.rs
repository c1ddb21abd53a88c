//! Behaviour tests of the host simulator: the bonding driver, DRBD handshakes and faults,
//! services and packages, time, determinism and robustness.

use super::*;

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn world() -> World {
    let specs = [
        NodeSpec::edge("n1", "10.0.0.1")
            .with_bond("bond0", "active-backup", 100)
            .with_pool("pool", "vg/thin", 100)
            .with_controller(),
        NodeSpec::edge("n2", "10.0.0.2")
            .with_bond("bond0", "active-backup", 100)
            .with_pool("pool", "vg/thin", 100),
    ];
    let mut w = World::from_specs(42, DEFAULT_EPOCH, &specs).expect("world");
    w.add_resource("r0", 1024, &["n1", "n2"], Some("n1"))
        .expect("resource");
    w
}

fn sh(w: &mut World, node: &str, cmd: &str) -> Output {
    w.exec(node, &argv(cmd), b"")
}

fn bond(w: &World, node: &str) -> Bond {
    match w
        .nodes
        .get(node)
        .and_then(|n| n.link("bond0"))
        .map(|l| l.kind.clone())
    {
        Some(LinkKind::Bond(b)) => b,
        other => panic!("no bond: {other:?}"),
    }
}

#[test]
fn bond_failover_moves_the_active_slave_and_counts_a_link_failure() {
    let mut w = world();
    assert_eq!(bond(&w, "n1").active_slave.as_deref(), Some("eno1"));
    w.inject(Fault::LinkDown {
        node: "n1".into(),
        nic: "eno1".into(),
    })
    .expect("fault");
    let b = bond(&w, "n1");
    assert_eq!(b.active_slave.as_deref(), Some("eno2"));
    assert_eq!(b.slaves[0].link_failure_count, 1);
    assert!(!b.slaves[0].mii_up);
    w.inject(Fault::LinkUp {
        node: "n1".into(),
        nic: "eno1".into(),
    })
    .expect("fault");
    // Without a primary the driver stays on the slave that took over.
    assert_eq!(bond(&w, "n1").active_slave.as_deref(), Some("eno2"));
}

#[test]
fn link_flapping_counts_one_failure_per_flap_and_ends_up() {
    let mut w = world();
    w.inject(Fault::LinkFlap {
        node: "n1".into(),
        nic: "eno2".into(),
        flaps: 3,
    })
    .expect("fault");
    let b = bond(&w, "n1");
    assert_eq!(b.slaves[1].link_failure_count, 3);
    assert!(b.slaves[1].mii_up);
}

#[test]
fn losing_every_slave_takes_the_bond_and_its_vlan_down() {
    let mut w = world();
    assert_eq!(
        sh(
            &mut w,
            "n1",
            "ip link add link bond0 name bond0.100 type vlan id 100"
        )
        .code,
        0
    );
    assert_eq!(sh(&mut w, "n1", "ip link set dev bond0.100 up").code, 0);
    for nic in ["eno1", "eno2"] {
        w.inject(Fault::LinkDown {
            node: "n1".into(),
            nic: nic.into(),
        })
        .expect("fault");
    }
    let n = w.node("n1").expect("node");
    let vlan = n.link("bond0.100").expect("vlan");
    assert_eq!(net::operstate(n, vlan), "lowerlayerdown");
    assert_eq!(net::operstate(n, n.link("bond0").expect("bond")), "down");
    assert_eq!(bond(&w, "n1").active_slave, None);
}

#[test]
fn the_kernel_refuses_a_mode_change_on_an_up_bond_or_one_with_slaves() {
    let mut w = world();
    let busy = sh(&mut w, "n1", "ip link set dev bond0 type bond mode 802.3ad");
    assert_eq!(
        (busy.code, busy.stderr_str().as_str()),
        (2, "RTNETLINK answers: Device or resource busy\n")
    );
    assert_eq!(sh(&mut w, "n1", "ip link set dev bond0 down").code, 0);
    let full = sh(&mut w, "n1", "ip link set dev bond0 type bond mode 802.3ad");
    assert_eq!(full.stderr_str(), "RTNETLINK answers: Directory not empty\n");
    for nic in ["eno1", "eno2"] {
        assert_eq!(
            sh(&mut w, "n1", &format!("ip link set dev {nic} nomaster")).code,
            0
        );
    }
    assert_eq!(
        sh(&mut w, "n1", "ip link set dev bond0 type bond mode 802.3ad").code,
        0
    );
}

#[test]
fn ip_json_lists_the_bond_with_its_active_slave() {
    let mut w = world();
    let out = sh(&mut w, "n1", "ip -j -d link show dev bond0").stdout_str();
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["linkinfo"]["info_data"]["active_slave"], "eno1");
    assert_eq!(v[0]["operstate"], "UP");
    let out = sh(&mut w, "n1", "ip -j addr show dev lo").stdout_str();
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["addr_info"][0]["local"], "127.0.0.1");
}

#[test]
fn unknown_devices_and_objects_get_the_real_errors() {
    let mut w = world();
    assert_eq!(
        sh(&mut w, "n1", "ip link set dev eth9 up").stderr_str(),
        "Cannot find device \"eth9\"\n"
    );
    let o = sh(&mut w, "n1", "ip route show");
    assert_eq!(
        (o.code, o.stderr_str().as_str()),
        (255, "Object \"route\" is unknown, try \"ip help\".\n")
    );
    assert_eq!(
        sh(&mut w, "n1", "ip link add bond0 type bond").stderr_str(),
        "RTNETLINK answers: File exists\n"
    );
}

#[test]
fn disk_failure_leaves_the_node_diskless_and_its_peer_sees_it() {
    let mut w = world();
    w.inject(Fault::DiskFailure {
        node: "n2".into(),
        resource: "r0".into(),
    })
    .expect("fault");
    let n1 = sh(&mut w, "n1", "drbdadm status r0").stdout_str();
    assert!(n1.contains("peer-disk:Diskless peer-client:no"), "{n1}");
    let n2 = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(n2.contains("  disk:Diskless client:no\n"), "{n2}");
}

#[test]
fn a_cut_while_primary_resyncs_after_reconnect_and_slow_resync_crawls() {
    let mut w = world();
    w.inject(Fault::DrbdDisconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("cut");
    assert!(
        sh(&mut w, "n1", "drbdadm status r0")
            .stdout_str()
            .contains("n2 connection:Connecting")
    );
    w.inject(Fault::SlowResync {
        resource: "r0".into(),
        permille: 1,
    })
    .expect("slow");
    w.inject(Fault::DrbdReconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("heal");
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(
        s.contains("disk:Inconsistent") && s.contains("replication:SyncTarget peer-disk:UpToDate done:0.00"),
        "{s}"
    );
    assert_eq!(sh(&mut w, "n2", "sleep 10").code, 0);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(s.contains("done:1.00"), "{s}");
    w.advance(1000);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(
        s.contains("  disk:UpToDate\n") && !s.contains("SyncTarget"),
        "{s}"
    );
}

#[test]
fn split_brain_goes_standalone_and_discard_my_data_resolves_it() {
    let mut w = world();
    w.inject(Fault::SplitBrain {
        resource: "r0".into(),
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("sb");
    w.inject(Fault::DrbdReconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("heal");
    for n in ["n1", "n2"] {
        let s = sh(&mut w, n, "drbdadm status r0").stdout_str();
        assert!(s.contains("connection:StandAlone"), "{n}: {s}");
    }
    assert_eq!(sh(&mut w, "n2", "drbdadm connect --discard-my-data r0").code, 0);
    assert!(
        sh(&mut w, "n2", "drbdadm status r0")
            .stdout_str()
            .contains("connection:Connecting")
    );
    assert_eq!(sh(&mut w, "n1", "drbdadm connect r0").code, 0);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(s.contains("replication:SyncTarget"), "{s}");
    w.advance(5);
    assert!(
        sh(&mut w, "n2", "drbdadm status r0")
            .stdout_str()
            .contains("peer-disk:UpToDate\n")
    );
}

#[test]
fn reboot_clears_runtime_state_and_restarts_only_enabled_services() {
    let mut w = world();
    let before = w.node("n2").expect("n").boot_id.clone();
    assert_eq!(sh(&mut w, "n2", "systemctl start drbd-reactor").code, 0);
    w.advance(100);
    w.inject(Fault::Reboot { node: "n2".into() }).expect("reboot");
    let n = w.node("n2").expect("n");
    assert_ne!(n.boot_id, before);
    assert!(n.link("bond0").is_none());
    assert!(n.drbd.is_empty() && n.modules.is_empty());
    assert!(n.unit_active("linstor-satellite") && !n.unit_active("drbd-reactor"));
    assert!(
        sh(&mut w, "n1", "drbdadm status r0")
            .stdout_str()
            .contains("n2 connection:Connecting")
    );
    let st = sh(&mut w, "n2", "drbdadm status r0");
    assert_eq!(
        (st.code, st.stderr_str().as_str()),
        (20, "Could not connect to 'drbd' generic netlink family\n")
    );
    assert_eq!(sh(&mut w, "n2", "drbdadm up r0").code, 0);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(
        s.contains("SyncTarget"),
        "writes on the primary while n2 was away resync: {s}"
    );
}

#[test]
fn a_failed_package_install_prints_dpkgs_error_and_leaves_it_half_configured() {
    let mut w = world();
    w.inject(Fault::FailedPackageInstall {
        node: "n1".into(),
        package: "drbd-dkms".into(),
    })
    .expect("f");
    let o = sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.14-1");
    assert_eq!(o.code, 100);
    assert!(
        o.stderr_str()
            .ends_with("E: Sub-process /usr/bin/dpkg returned an error code (1)\n")
    );
    let v = w.exec(
        "n1",
        &[
            "dpkg-query".into(),
            "-W".into(),
            "-f".into(),
            "${Version}".into(),
            "drbd-dkms".into(),
        ],
        b"",
    );
    assert_eq!(v.stdout_str(), "9.2.14-1");
    assert_eq!(
        sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.14-1").code,
        0
    );
    let missing = sh(&mut w, "n1", "apt-get install -y drbd-dkms=1.0");
    assert_eq!(
        missing.stderr_str(),
        "E: Version '1.0' for 'drbd-dkms' was not found\n"
    );
}

#[test]
fn a_powered_off_node_stops_its_services_and_its_peers_lose_it() {
    let mut w = world();
    w.inject(Fault::PowerOff { node: "n2".into() }).expect("f");
    assert_eq!(sh(&mut w, "n2", "systemctl is-active linstor-satellite").code, 3);
    let s = sh(&mut w, "n1", "drbdadm status r0").stdout_str();
    assert!(s.contains("n2 connection:Connecting"), "{s}");
    let nodes = sh(&mut w, "n1", "linstor --no-color node list").stdout_str();
    assert!(nodes.contains("OFFLINE"), "{nodes}");
}

#[test]
fn a_resource_created_on_an_online_satellite_comes_up_and_syncs() {
    let specs = [
        NodeSpec::edge("n1", "10.0.0.1")
            .with_pool("pool", "vg/thin", 100)
            .with_controller(),
        NodeSpec::edge("n2", "10.0.0.2").with_pool("pool", "vg/thin", 100),
    ];
    let mut w = World::from_specs(42, DEFAULT_EPOCH, &specs).expect("world");
    w.add_resource("r0", 1024, &["n1"], Some("n1")).expect("resource");
    assert_eq!(sh(&mut w, "n1", "systemctl start linstor-satellite").code, 0);
    assert_eq!(sh(&mut w, "n2", "systemctl start linstor-satellite").code, 0);
    let o = sh(
        &mut w,
        "n1",
        "linstor --no-color resource create n2 r0 --storage-pool pool",
    );
    assert_eq!(o.code, 0, "{}", o.stderr_str());
    let s = sh(&mut w, "n1", "drbdadm status r0").stdout_str();
    assert!(s.contains("replication:SyncSource"), "{s}");
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(s.contains("disk:Inconsistent"), "{s}");
}

#[test]
fn a_broken_package_build_fails_every_install_and_leaves_no_drbd_module() {
    let mut w = world();
    w.inject(Fault::BrokenPackageBuild {
        node: "n1".into(),
        package: "drbd-dkms".into(),
    })
    .expect("f");
    assert_eq!(sh(&mut w, "n1", "drbdadm down all").code, 0);
    assert_eq!(sh(&mut w, "n1", "modprobe -r drbd_transport_tcp drbd").code, 0);
    assert_eq!(
        sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.14-1").code,
        100
    );
    // The previous version does not build either: the rollback cannot go back.
    assert_eq!(
        sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.12-1").code,
        100
    );
    let o = sh(&mut w, "n1", "modprobe drbd");
    assert_eq!(o.code, 1);
    assert!(
        o.stderr_str()
            .starts_with("modprobe: FATAL: Module drbd not found"),
        "{}",
        o.stderr_str()
    );
    // Other nodes are not affected.
    assert_eq!(
        sh(&mut w, "n2", "apt-get install -y -qq drbd-dkms=9.2.14-1").code,
        0
    );
}

#[test]
fn a_skewed_clock_moves_date_on_its_node_only() {
    let mut w = World::new(1, 1_795_576_086);
    w.add_node(&NodeSpec::edge("x", "10.0.0.1")).expect("node");
    w.add_node(&NodeSpec::edge("y", "10.0.0.2")).expect("node");
    w.inject(Fault::ClockSkew {
        node: "y".into(),
        seconds: -3600,
    })
    .expect("skew");
    assert_eq!(sh(&mut w, "x", "date +%s").stdout_str(), "1795576086\n");
    assert_eq!(sh(&mut w, "y", "date +%s").stdout_str(), "1795572486\n");
    assert_eq!(sh(&mut w, "y", "date -u +%H:%M").stdout_str(), "02:08\n");
    // The simulated time itself, which the cluster stamps with, is not moved.
    assert_eq!(w.clock, 1_795_576_086);
    assert!(
        w.inject(Fault::ClockSkew {
            node: "z".into(),
            seconds: 1
        })
        .is_err()
    );
}

#[test]
fn date_prints_like_gnu_date_in_the_c_locale() {
    let mut w = World::new(1, 1_795_576_086);
    assert_eq!(sh(&mut w, "x", "date").code, 127);
    w.add_node(&NodeSpec::edge("x", "10.0.0.1")).expect("node");
    assert_eq!(
        sh(&mut w, "x", "date").stdout_str(),
        "Wed Nov 25 03:08:06 UTC 2026\n"
    );
    assert_eq!(
        sh(&mut w, "x", "date -u +%Y-%m-%dT%H:%M:%SZ").stdout_str(),
        "2026-11-25T03:08:06Z\n"
    );
    assert_eq!(sh(&mut w, "x", "date +%s").stdout_str(), "1795576086\n");
    sh(&mut w, "x", "sleep 5");
    assert_eq!(sh(&mut w, "x", "date +%T").stdout_str(), "03:08:11\n");
    assert_eq!(sh(&mut w, "x", "date -d @0 +%a%e%b").stdout_str(), "Thu 1Jan\n");
}

#[test]
fn modules_load_with_dependencies_and_refuse_removal_while_in_use() {
    let mut w = world();
    let ls = sh(&mut w, "n1", "lsmod").stdout_str();
    assert!(ls.starts_with("Module                  Size  Used by\n"));
    assert!(
        ls.contains("drbd                  983040  2 drbd_transport_tcp\n"),
        "{ls}"
    );
    let o = sh(&mut w, "n1", "modprobe -r drbd_transport_tcp drbd");
    assert_eq!(o.stderr_str(), "modprobe: FATAL: Module drbd is in use.\n");
    sh(&mut w, "n1", "drbdadm down r0");
    assert_eq!(sh(&mut w, "n1", "modprobe -r drbd_transport_tcp drbd").code, 0);
}

#[test]
fn systemctl_reports_states_with_the_real_exit_codes() {
    let mut w = world();
    assert_eq!(
        sh(&mut w, "n1", "systemctl is-active linstor-satellite").stdout_str(),
        "active\n"
    );
    let o = sh(&mut w, "n1", "systemctl is-active drbd-reactor");
    assert_eq!((o.stdout_str().as_str(), o.code), ("inactive\n", 3));
    let o = sh(&mut w, "n1", "systemctl start nope");
    assert_eq!(
        (o.code, o.stderr_str().as_str()),
        (5, "Failed to start nope.service: Unit nope.service not found.\n")
    );
}

#[test]
fn render_writes_proc_and_sys_and_removes_vanished_interfaces_but_not_etc_or_var() {
    let mut w = world();
    let dir = tempfile::tempdir().expect("tmp");
    let etc = dir.path().join("n2/etc/vx-rail/node.conf");
    std::fs::create_dir_all(etc.parent().expect("p")).expect("mk");
    std::fs::write(&etc, "BOND_NAME=bond0\n").expect("w");
    w.render(dir.path()).expect("render");
    let root = dir.path().join("n2");
    assert!(root.join("proc/net/bonding/bond0").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("sys/class/net/bond0/operstate")).expect("r"),
        "up\n"
    );
    assert!(root.join("proc/drbd").exists());
    w.inject(Fault::Reboot { node: "n2".into() }).expect("reboot");
    w.render(dir.path()).expect("render");
    assert!(!root.join("proc/net/bonding/bond0").exists());
    assert!(!root.join("sys/class/net/bond0").exists());
    assert!(
        !root.join("sys/class/net/eno1/carrier").exists(),
        "a down interface has no readable carrier"
    );
    assert!(!root.join("proc/drbd").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("proc/uptime")).expect("r"),
        "0.00 0.00\n"
    );
    assert_eq!(std::fs::read_to_string(&etc).expect("r"), "BOND_NAME=bond0\n");
}

fn script(w: &mut World) -> Vec<Output> {
    let cmds = [
        ("n1", "ip -d link show"),
        (
            "n1",
            "linstor --no-color resource create n2 r1 --storage-pool pool",
        ),
        ("n2", "ip -j addr show"),
        ("n1", "drbdsetup events2 --now"),
        ("n2", "sleep 3"),
        ("n1", "linstor --no-color resource list"),
        ("n1", "drbdsetup status --verbose --statistics"),
    ];
    cmds.iter().map(|(n, c)| sh(w, n, c)).collect()
}

#[test]
fn same_seed_and_same_commands_give_identical_outputs() {
    let mut a = world();
    let mut b = world();
    a.inject(Fault::DrbdDisconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("f");
    b.inject(Fault::DrbdDisconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("f");
    assert_eq!(script(&mut a), script(&mut b));
    assert_eq!(a, b);
}

#[test]
fn the_world_survives_a_json_round_trip() {
    let w = world();
    let json = serde_json::to_string(&w).expect("ser");
    let back: World = serde_json::from_str(&json).expect("de");
    assert_eq!(w, back);
}

#[test]
fn garbage_command_lines_never_panic() {
    let mut w = world();
    let words = [
        "ip",
        "-j",
        "-d",
        "link",
        "addr",
        "set",
        "dev",
        "add",
        "del",
        "type",
        "bond",
        "vlan",
        "mode",
        "id",
        "master",
        "nomaster",
        "up",
        "down",
        "bond0",
        "eno1",
        "4096",
        "10.0.0.1/33",
        "drbdadm",
        "drbdsetup",
        "status",
        "events2",
        "linstor",
        "--no-color",
        "node",
        "create",
        "r",
        "sp",
        "list",
        "systemctl",
        "dpkg-query",
        "-W",
        "-f",
        "apt-get",
        "install",
        "date",
        "+%",
        "-d",
        "sleep",
        "-1",
        "modprobe",
        "-r",
        "lsmod",
        "hostname",
        "all",
        "r0",
        "connect",
        "--discard-my-data",
        "primary",
        "",
        "=",
        "@",
    ];
    let mut rng = SplitMix64::new(99);
    for _ in 0..3000 {
        let len = rng.range(0, 7) as usize;
        let argv: Vec<String> = (0..len)
            .map(|_| words[rng.range(0, words.len() as u64 - 1) as usize].to_string())
            .collect();
        let _ = w.exec("n1", &argv, b"");
    }
}

#[test]
fn sh_resources_lists_the_configured_resources_and_nothing_without_any() {
    let mut w = world();
    let out = sh(&mut w, "n1", "drbdadm sh-resources");
    assert_eq!((out.code, out.stdout_str().as_str()), (0, "r0\n"));
    let specs = [NodeSpec::edge("n3", "10.0.0.3")];
    let mut empty = World::from_specs(42, DEFAULT_EPOCH, &specs).expect("world");
    let out = sh(&mut empty, "n3", "drbdadm sh-resources");
    assert_eq!((out.code, out.stdout_str().as_str()), (0, ""));
    assert_eq!(sh(&mut empty, "n3", "drbdadm adjust all").code, 1);
}

fn rpm_world() -> World {
    let specs = [
        NodeSpec::edge("n1", "10.0.0.1").with_os(OsFlavour::Rpm),
        NodeSpec::edge("n2", "10.0.0.2"),
    ];
    World::from_specs(7, DEFAULT_EPOCH, &specs).expect("world")
}

fn run(w: &mut World, node: &str, words: &[&str]) -> Output {
    let argv: Vec<String> = words.iter().map(|s| (*s).to_string()).collect();
    w.exec(node, &argv, b"")
}

#[test]
fn an_rpm_node_answers_rpm_queries_in_rpms_formats() {
    let mut w = rpm_world();
    let out = run(
        &mut w,
        "n1",
        &["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "drbd-utils"],
    );
    assert_eq!((out.code, out.stdout_str()), (0, "9.29.0-1\n".to_string()));
    let out = run(&mut w, "n1", &["rpm", "-q", "drbd-utils"]);
    assert_eq!(out.stdout_str(), "drbd-utils-9.29.0-1.x86_64\n");
    let out = run(
        &mut w,
        "n1",
        &["rpm", "-q", "--qf", "%{VERSION}\\n", "kmod-drbd", "drbd-utils"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout_str(), "package kmod-drbd is not installed\n9.29.0\n");
    let out = run(
        &mut w,
        "n1",
        &["rpm", "-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE}\\n"],
    );
    assert_eq!(
        out.stdout_str(),
        "drbd-dkms 9.2.12-1\ndrbd-utils 9.29.0-1\nlinstor-satellite 1.29.2-1\n"
    );
}

#[test]
fn each_flavour_has_only_its_own_package_tools() {
    let mut w = rpm_world();
    for tool in ["dpkg-query", "apt-get"] {
        let out = run(&mut w, "n1", &[tool, "-W", "drbd-dkms"]);
        assert_eq!(out.code, 127, "{tool}");
        assert_eq!(out.stderr_str(), format!("bash: {tool}: command not found\n"));
    }
    for tool in ["rpm", "dnf"] {
        assert_eq!(run(&mut w, "n2", &[tool, "-q", "drbd-dkms"]).code, 127, "{tool}");
    }
    assert_eq!(
        run(
            &mut w,
            "n2",
            &["dpkg-query", "-W", "-f", "${Version}", "drbd-dkms"]
        )
        .stdout_str(),
        "9.2.12-1"
    );
    // Services and modules are the same on both.
    assert_eq!(
        run(&mut w, "n1", &["systemctl", "is-active", "linstor-satellite"]).stdout_str(),
        "active\n"
    );
    assert_eq!(run(&mut w, "n1", &["modprobe", "drbd"]).code, 0);
    assert!(w.nodes["n1"].kernel.ends_with(".el9_4.x86_64"));
    assert!(
        OsFlavour::Rpm
            .os_release()
            .contains("ID_LIKE=\"rhel centos fedora\"")
    );
}

#[test]
fn dnf_installs_upgrades_downgrades_and_reports_nothing_to_do() {
    let mut w = rpm_world();
    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-utils-9.31.0-1"]);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let text = out.stdout_str();
    assert!(
        text.starts_with("Last metadata expiration check: 0:12:04 ago on Wed 31 Dec 2025 11:47:56 PM UTC.\n"),
        "{text}"
    );
    assert!(text.contains("Upgrading:\n drbd-utils "), "{text}");
    assert!(text.contains("Upgrade  1 Package\n"), "{text}");
    assert!(
        text.ends_with("Upgraded:\n  drbd-utils-9.31.0-1.x86_64\n\nComplete!\n"),
        "{text}"
    );
    assert_eq!(w.nodes["n1"].packages["drbd-utils"].version, "9.31.0-1");

    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-utils-9.31.0-1"]);
    assert!(out.stdout_str().contains("Package drbd-utils-9.31.0-1.x86_64 is already installed.\nDependencies resolved.\nNothing to do.\nComplete!\n"));

    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-utils-9.27.0-1"]);
    assert!(
        out.stdout_str()
            .contains("Downgraded:\n  drbd-utils-9.27.0-1.x86_64\n")
    );
    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-reactor"]);
    assert!(
        out.stdout_str()
            .contains("Installed:\n  drbd-reactor-1.6.0-1.x86_64\n")
    );

    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-utils-9.99.0-1"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr_str(),
        "No match for argument: drbd-utils-9.99.0-1\nError: Unable to find a match: drbd-utils-9.99.0-1\n"
    );
}

#[test]
fn a_failed_dnf_scriptlet_leaves_the_package_recorded_but_unusable() {
    let mut w = rpm_world();
    w.nodes.get_mut("n1").unwrap().failing_install = Some("drbd-dkms".into());
    let out = run(&mut w, "n1", &["dnf", "install", "-y", "drbd-dkms-9.2.14-1"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr_str()
            .contains("Error in POSTIN scriptlet in rpm package drbd-dkms\n")
    );
    let q = run(
        &mut w,
        "n1",
        &["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "drbd-dkms"],
    );
    assert_eq!(q.stdout_str(), "9.2.14-1\n");
    assert_eq!(run(&mut w, "n1", &["modprobe", "drbd"]).code, 1);
}

#[test]
fn a_primary_held_open_refuses_to_be_demoted_or_taken_down_until_released() {
    let mut w = world();
    w.open_device("n1", "r0", "default/app-0").expect("open");
    assert_eq!(
        w.device_holders().into_iter().collect::<Vec<_>>(),
        ["default/app-0"]
    );
    for (cmd, what) in [("drbdadm secondary r0", "secondary"), ("drbdadm down r0", "down")] {
        let out = sh(&mut w, "n1", cmd);
        assert_eq!(out.code, 11, "{cmd}");
        assert_eq!(
            out.stderr_str(),
            format!(
                "r0: State change failed: (-12) Device is held open by someone\nCommand 'drbdsetup {what} r0' terminated with exit code 11\n"
            )
        );
    }
    assert!(
        sh(&mut w, "n1", "drbdadm status r0")
            .stdout_str()
            .contains("role:Primary")
    );
    // The peer's Secondary is not open: it goes down as before.
    assert_eq!(sh(&mut w, "n2", "drbdadm secondary r0").code, 0);
    w.release_devices(&|h| h != "default/app-0");
    assert!(w.device_holders().is_empty());
    assert_eq!(sh(&mut w, "n1", "drbdadm secondary r0").code, 0);
    assert!(
        sh(&mut w, "n1", "drbdadm status r0")
            .stdout_str()
            .contains("role:Secondary")
    );
    assert!(w.open_device("n1", "nope", "default/x").is_err());
}

#[test]
fn a_dry_run_prints_what_drbdadm_would_do_and_changes_nothing() {
    let mut w = world();
    // Up and connected as configured: an adjust has nothing to do.
    let out = sh(&mut w, "n2", "drbdadm --dry-run adjust all");
    assert_eq!((out.code, out.stdout_str()), (0, String::new()));
    assert_eq!(sh(&mut w, "n2", "drbdadm down r0").code, 0);
    let out = sh(&mut w, "n2", "drbdadm -d adjust all");
    assert_eq!(out.code, 0);
    assert!(
        out.stdout_str()
            .starts_with("drbdsetup new-resource r0 1\ndrbdsetup new-minor r0 1000 0\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        sh(&mut w, "n2", "drbdadm status r0").code != 0,
        "the dry run brought nothing up"
    );
    let out = sh(&mut w, "n1", "drbdadm --dry-run secondary r0");
    assert_eq!(out.stdout_str(), "drbdsetup secondary r0\n");
    assert!(
        sh(&mut w, "n1", "drbdadm status r0")
            .stdout_str()
            .contains("role:Primary")
    );
}

#[test]
fn a_resync_that_takes_a_set_time_ends_on_its_last_second() {
    let mut w = world();
    w.inject(Fault::DrbdDisconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("cut");
    w.inject(Fault::ResyncTakes {
        resource: "r0".into(),
        seconds: 3600,
    })
    .expect("duration");
    w.inject(Fault::DrbdReconnect {
        a: "n1".into(),
        b: "n2".into(),
    })
    .expect("heal");
    w.advance(3599);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(s.contains("replication:SyncTarget"), "{s}");
    w.advance(1);
    let s = sh(&mut w, "n2", "drbdadm status r0").stdout_str();
    assert!(
        s.contains("  disk:UpToDate\n") && !s.contains("SyncTarget"),
        "{s}"
    );
    assert!(
        w.inject(Fault::ResyncTakes {
            resource: "nope".into(),
            seconds: 1,
        })
        .is_err()
    );
}

#[test]
fn cat_reads_the_proc_files_the_world_renders() {
    let mut w = world();
    let out = sh(&mut w, "n1", "cat /proc/drbd");
    assert_eq!(out.code, 0);
    assert!(
        out.stdout_str()
            .starts_with("version: 9.2.12 (api:2/proto:86-122)\n")
    );
    assert_eq!(
        sh(&mut w, "n1", "drbdadm down all").code,
        0,
        "a Primary nobody holds goes down"
    );
    assert_eq!(sh(&mut w, "n1", "modprobe -r drbd_transport_tcp drbd").code, 0);
    let out = sh(&mut w, "n1", "cat /proc/drbd");
    assert_eq!(
        (out.code, out.stderr_str()),
        (1, "cat: /proc/drbd: No such file or directory\n".to_string())
    );
}

#[test]
fn dnf_makecache_refreshes_the_metadata_on_an_rpm_node_only() {
    let specs = [NodeSpec::edge("n1", "10.0.0.1").with_os(OsFlavour::Rpm)];
    let mut w = World::from_specs(1, DEFAULT_EPOCH, &specs).expect("world");
    let out = sh(&mut w, "n1", "dnf makecache");
    assert_eq!(out.code, 0);
    assert!(out.stdout_str().ends_with("Metadata cache created.\n"));
    assert_eq!(sh(&mut w, "n1", "apt-get update -qq").code, 127);
}

#[test]
fn a_reboot_during_an_install_leaves_the_package_half_configured_and_the_node_freshly_booted() {
    let mut w = world();
    let boot = w.nodes["n1"].boot_id.clone();
    w.inject(Fault::RebootDuringInstall {
        node: "n1".into(),
        package: "drbd-dkms".into(),
    })
    .expect("fault");
    let out = sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.14-1");
    assert_eq!(out.code, 143, "the install dies with the node");
    let n = &w.nodes["n1"];
    assert_ne!(n.boot_id, boot, "the node booted again");
    assert!(n.drbd.is_empty(), "DRBD resources are down after the boot");
    let pkg = &n.packages["drbd-dkms"];
    assert_eq!((pkg.version.as_str(), pkg.configured), ("9.2.14-1", false));
    // The fault is spent: the next install goes through.
    assert_eq!(
        sh(&mut w, "n1", "apt-get install -y -qq drbd-dkms=9.2.14-1").code,
        0
    );
    assert!(w.nodes["n1"].packages["drbd-dkms"].configured);
}

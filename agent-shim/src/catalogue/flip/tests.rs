#![allow(clippy::unwrap_used)]

use super::*;
use crate::catalogue::plan;

/// A host with one bond and two slaves, driven by the `ip` commands the step runs, whose peers
/// answer `ping` only while `reachable` says so of the bond's mode.
struct Bonded {
    mode: String,
    active: Option<String>,
    up: bool,
    /// Slave, carrier, enslaved.
    slaves: Vec<(String, bool, bool)>,
    reachable: fn(&str) -> bool,
    ran: Vec<String>,
    /// A command (joined by spaces) that fails, once.
    fails: Option<String>,
}

impl Bonded {
    fn new(reachable: fn(&str) -> bool) -> Bonded {
        Bonded {
            mode: "active-backup".into(),
            active: Some("eno1".into()),
            up: true,
            slaves: vec![("eno1".into(), true, true), ("eno2".into(), true, true)],
            reachable,
            ran: Vec::new(),
            fails: None,
        }
    }

    fn json(&self) -> String {
        let mut links = Vec::new();
        for (i, (s, carrier, enslaved)) in self.slaves.iter().enumerate() {
            let flags = if *carrier {
                r#"["BROADCAST","UP","LOWER_UP"]"#
            } else {
                r#"["NO-CARRIER","BROADCAST","UP"]"#
            };
            let master = if *enslaved { r#","master":"bond0""# } else { "" };
            links.push(format!(
                r#"{{"ifindex":{},"ifname":"{s}","flags":{flags}{master}}}"#,
                i + 2
            ));
        }
        let active = self
            .active
            .as_deref()
            .map(|a| format!(r#","active_slave":"{a}""#))
            .unwrap_or_default();
        links.push(format!(
            r#"{{"ifindex":9,"ifname":"bond0","flags":["UP"],"linkinfo":{{"info_kind":"bond","info_data":{{"mode":"{}"{active}}}}}}}"#,
            self.mode
        ));
        format!("[{}]", links.join(","))
    }
}

impl HostOps for Bonded {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        let line = argv.join(" ");
        self.ran.push(line.clone());
        if self.fails.as_deref() == Some(line.as_str()) {
            self.fails = None;
            return HostOutput::failed(2, "RTNETLINK answers: Operation not permitted\n");
        }
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        let ok = HostOutput::default();
        match a.as_slice() {
            ["ip", "-j", "-d", "link", "show"] => HostOutput {
                code: 0,
                stdout: self.json(),
                stderr: String::new(),
            },
            ["ip", "link", "set", "dev", "bond0", "down"] => {
                self.up = false;
                ok
            }
            ["ip", "link", "set", "dev", "bond0", "up"] => {
                self.up = true;
                ok
            }
            ["ip", "link", "set", "dev", "bond0", "type", "bond", "mode", m] => {
                if self.up || self.slaves.iter().any(|s| s.2) {
                    return HostOutput::failed(2, "bond must be down and without slaves\n");
                }
                self.mode = (*m).to_owned();
                self.active = None;
                ok
            }
            [
                "ip",
                "link",
                "set",
                "dev",
                "bond0",
                "type",
                "bond",
                "active_slave",
                s,
            ] => {
                self.active = Some((*s).to_owned());
                ok
            }
            ["ip", "link", "set", "dev", s, "nomaster"] => {
                self.slaves
                    .iter_mut()
                    .filter(|x| x.0 == *s)
                    .for_each(|x| x.2 = false);
                if self.active.as_deref() == Some(*s) {
                    self.active = None;
                }
                ok
            }
            ["ip", "link", "set", "dev", s, "master", "bond0"] => {
                self.slaves
                    .iter_mut()
                    .filter(|x| x.0 == *s)
                    .for_each(|x| x.2 = true);
                if self.mode == "active-backup" && self.active.is_none() {
                    self.active = Some((*s).to_owned());
                }
                ok
            }
            ["ip", "link", "set", "dev", _, "down" | "up"] => ok,
            ["ping", "-c", "3", "-W", "1", "-I", "bond0.100", _] => {
                if self.up && (self.reachable)(&self.mode) {
                    ok
                } else {
                    HostOutput::failed(1, "")
                }
            }
            ["sed", "-i", "-e", _, "/etc/vx-rail/node.conf"] => ok,
            _ => HostOutput::failed(127, format!("unexpected command {line}")),
        }
    }
}

fn args(to: &str) -> Vec<String> {
    [
        "bond0",
        "active-backup:eno1",
        to,
        "bond0.100",
        "10.100.0.12,10.100.0.13",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn lacp_plan() -> crate::Plan {
    plan("bond-flip", &args("802.3ad")).unwrap()
}

#[test]
fn bad_arguments_name_the_argument_and_what_is_wrong() {
    let e = plan(
        "bond-flip",
        &["bond0", "fast", "802.3ad", "bond0.100", "-"].map(String::from),
    )
    .unwrap_err();
    assert!(e.to_string().contains("argument 2 (from)"), "{e}");
    let e = plan(
        "bond-flip",
        &["bond0", "active-backup", "802.3ad", "bond0.100", "10.1.2"].map(String::from),
    )
    .unwrap_err();
    assert!(e.to_string().contains("argument 5 (peers)"), "{e}");
    let e = plan(
        "bond-flip",
        &["bond0", "802.3ad", "802.3ad", "bond0.100", "-"].map(String::from),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nothing to flip"), "{e}");
    let e = plan("bond-flip", &["bond0", "802.3ad"].map(String::from)).unwrap_err();
    assert!(e.to_string().contains("takes 5 argument(s)"), "{e}");
}

#[test]
fn a_mode_flip_runs_the_scripts_mode_change_sequence_then_pings_every_peer_over_the_storage_vlan() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(out.succeeded(), "{out:?}");
    assert_eq!(host.mode, "802.3ad");
    let mutations: Vec<&str> = host
        .ran
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("ip link set"))
        .collect();
    assert_eq!(
        mutations,
        [
            "ip link set dev bond0 down",
            "ip link set dev eno1 nomaster",
            "ip link set dev eno2 nomaster",
            "ip link set dev bond0 type bond mode 802.3ad",
            "ip link set dev eno1 down",
            "ip link set dev eno1 master bond0",
            "ip link set dev eno1 up",
            "ip link set dev eno2 down",
            "ip link set dev eno2 master bond0",
            "ip link set dev eno2 up",
            "ip link set dev bond0 up",
        ]
    );
    assert!(
        host.ran
            .contains(&"ping -c 3 -W 1 -I bond0.100 10.100.0.12".to_owned())
    );
    assert!(
        host.ran
            .contains(&"ping -c 3 -W 1 -I bond0.100 10.100.0.13".to_owned())
    );
    // Applied but unconfirmed: the journal keeps `from` until the result is reported.
    let (left, _) = pending(dir.path());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].from.arg(), "active-backup:eno1");
    assert!(
        !host.ran.iter().any(|c| c.starts_with("sed")),
        "node.conf waits for the confirmation"
    );
}

#[test]
fn a_failed_probe_reverts_the_bond_on_the_node_and_says_so_first() {
    let dir = tempfile::tempdir().unwrap();
    // The switch does not speak LACP: nothing passes once the bond is 802.3ad.
    let mut host = Bonded::new(|mode| mode != "802.3ad");
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(!out.succeeded());
    assert!(
        out.output
            .starts_with("reverted: probe failed: 10.100.0.12, 10.100.0.13 not reachable over bond0.100"),
        "{}",
        out.output
    );
    assert!(
        out.message.contains("reverted to active-backup:eno1"),
        "{}",
        out.message
    );
    assert_eq!(
        (host.mode.as_str(), host.active.as_deref()),
        ("active-backup", Some("eno1"))
    );
    assert!(host.up);
    assert!(
        pending(dir.path()).0.is_empty(),
        "a completed revert leaves no journal entry"
    );
    // Several rounds were tried before giving up.
    let pings = host
        .ran
        .iter()
        .filter(|c| c.ends_with("10.100.0.12") && c.starts_with("ping"))
        .count();
    assert_eq!(pings, PROBE_ROUNDS);
}

#[test]
fn a_mutation_that_fails_midway_is_reverted_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    host.fails = Some("ip link set dev eno2 master bond0".into());
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(out.output.starts_with(REVERTED), "{}", out.output);
    // The revert found eno2 out of the bond and rebuilt the bond as it was.
    assert_eq!(host.mode, "active-backup");
    assert!(host.slaves.iter().all(|s| s.2), "{:?}", host.slaves);
}

#[test]
fn the_step_refuses_without_touching_the_host_when_the_bond_is_not_in_from_or_the_target_has_no_carrier() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    host.active = Some("eno2".into());
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(
        out.message
            .starts_with("refused: bond0 is in active-backup:eno2, not in active-backup:eno1"),
        "{}",
        out.message
    );
    assert!(!out.output.starts_with(REVERTED));
    assert_eq!(host.ran, ["ip -j -d link show"]);

    let mut host = Bonded::new(|_| true);
    host.slaves[1].1 = false;
    let out = plan("bond-flip", &args("active-backup:eno2"))
        .unwrap()
        .execute_in(&mut host, None, Some(dir.path()));
    assert_eq!(out.message, "refused: eno2 has no carrier; nothing was changed");
    assert_eq!(host.ran, ["ip -j -d link show"]);
    assert!(pending(dir.path()).0.is_empty());
}

#[test]
fn a_flip_found_done_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    host.mode = "802.3ad".into();
    host.active = None;
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(out.succeeded());
    assert!(out.message.starts_with("already done"), "{}", out.message);
    assert_eq!(host.ran, ["ip -j -d link show"]);
}

#[test]
fn confirming_persists_the_mode_in_node_conf_and_ends_the_journal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    assert!(
        lacp_plan()
            .execute_in(&mut host, None, Some(dir.path()))
            .succeeded()
    );
    assert_eq!(confirm(&mut host, dir.path(), "bond0"), Ok(true));
    assert_eq!(
        host.ran.last().unwrap(),
        "sed -i -e s/^BOND_MODE=.*/BOND_MODE=802.3ad/ /etc/vx-rail/node.conf"
    );
    assert!(pending(dir.path()).0.is_empty());
    assert_eq!(confirm(&mut host, dir.path(), "bond0"), Ok(false), "nothing left");
    assert_eq!(host.mode, "802.3ad");
}

#[test]
fn an_active_slave_flip_is_not_written_to_node_conf() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    let out = plan("bond-flip", &args("active-backup:eno2"))
        .unwrap()
        .execute_in(&mut host, None, Some(dir.path()));
    assert!(out.succeeded(), "{out:?}");
    assert_eq!(host.active.as_deref(), Some("eno2"));
    assert_eq!(confirm(&mut host, dir.path(), "bond0"), Ok(true));
    assert!(!host.ran.iter().any(|c| c.starts_with("sed")));
}

#[test]
fn a_flip_not_confirmed_in_time_is_reverted_without_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    assert!(
        lacp_plan()
            .execute_in(&mut host, None, Some(dir.path()))
            .succeeded()
    );
    assert_eq!(revert_pending(&mut host, dir.path(), "bond0"), Ok(true));
    assert_eq!(
        (host.mode.as_str(), host.active.as_deref()),
        ("active-backup", Some("eno1"))
    );
    assert!(pending(dir.path()).0.is_empty());
}

#[test]
fn an_agent_restarted_mid_flip_reverts_from_the_journal_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    assert!(
        lacp_plan()
            .execute_in(&mut host, None, Some(dir.path()))
            .succeeded()
    );
    // The agent stops here; a new one starts with the same state directory.
    let lines = recover(&mut host, dir.path());
    assert_eq!(
        lines,
        ["bond0: unconfirmed flip to 802.3ad reverted to active-backup:eno1"]
    );
    assert_eq!(host.mode, "active-backup");
    assert!(recover(&mut host, dir.path()).is_empty());
}

#[test]
fn a_rerun_with_an_unconfirmed_flip_left_reverts_it_before_deciding_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Bonded::new(|_| true);
    assert!(
        lacp_plan()
            .execute_in(&mut host, None, Some(dir.path()))
            .succeeded()
    );
    let out = lacp_plan().execute_in(&mut host, None, Some(dir.path()));
    assert!(out.succeeded(), "{out:?}");
    assert!(
        out.output
            .starts_with("an unconfirmed flip of bond0 to 802.3ad is reverted first"),
        "{}",
        out.output
    );
    assert_eq!(host.mode, "802.3ad");
    assert_eq!(pending(dir.path()).0.len(), 1);
}

#[test]
fn without_a_state_directory_nothing_is_changed() {
    let mut host = Bonded::new(|_| true);
    let out = lacp_plan().execute_in(&mut host, None, None);
    assert!(!out.succeeded());
    assert!(host.ran.is_empty());
}

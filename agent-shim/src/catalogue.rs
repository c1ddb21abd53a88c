//! The step catalogue: a `NodeTask`'s step name and arguments become a [`Plan`] — the host
//! commands the legacy script itself runs for that step (same argv as `legacy/lib/migration.sh`,
//! `host.sh` and `network.sh`), and, for a mutating step, a read-only check run first whose
//! output decides whether the step is already done, so a repeat never mutates twice.
//!
//! Planning and judging are pure. [`Plan::execute`] is the one place that runs a plan, and it
//! touches the host only through [`HostOps`].

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use nodewright_parsers::{
    BondMode, parse_ip_json, parse_linstor_node_list, parse_linstor_resource_list,
    parse_linstor_storage_pool_list,
};

use nodewright_api::StepName;

use crate::host::{EXIT_TIMED_OUT, HostOps, HostOutput};

/// Why a step name and arguments have no plan. No host command runs for such a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The catalogue has no step by that name.
    #[error("unknown step {step:?}; known steps: {}", known_steps())]
    UnknownStep {
        /// The step as given.
        step: String,
    },
    /// The step takes a different number of arguments.
    #[error("step {step} takes {expected} argument(s) ({usage}), got {got}")]
    WrongArgCount {
        /// The step.
        step: &'static str,
        /// How many it takes.
        expected: usize,
        /// Its usage line.
        usage: &'static str,
        /// How many were given.
        got: usize,
    },
    /// An argument is not acceptable (empty, looks like an option, not an address, …).
    #[error("step {step}: argument {index} ({name}) {value:?} is invalid: {reason}")]
    BadArgument {
        /// The step.
        step: &'static str,
        /// Position of the argument, from 1.
        index: usize,
        /// The argument's name in the usage line.
        name: &'static str,
        /// The argument as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl StepError {
    /// A short stable label for metrics and condition reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StepError::UnknownStep { .. } => "unknown_step",
            StepError::WrongArgCount { .. } => "wrong_arg_count",
            StepError::BadArgument { .. } => "bad_argument",
        }
    }
}

/// Every step of the catalogue with its arguments, in the order of [`StepName::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Register a LINSTOR satellite.
    LinstorNodeCreate {
        /// LINSTOR node name.
        node: String,
        /// Its storage address, without a prefix length.
        ip: String,
    },
    /// Remove a LINSTOR node (its pools and replicas go with it).
    LinstorNodeDelete {
        /// LINSTOR node name.
        node: String,
    },
    /// Register an LVM-thin storage pool on a node.
    StoragePoolCreate {
        /// LINSTOR node name.
        node: String,
        /// Pool name.
        pool: String,
        /// `vg/thinpool`.
        vg: String,
    },
    /// Place a replica of a resource on a node.
    ResourceCreate {
        /// LINSTOR node name.
        node: String,
        /// Resource name.
        resource: String,
        /// Storage pool for the replica.
        pool: String,
    },
    /// Remove a node's replica of a resource.
    ResourceDelete {
        /// LINSTOR node name.
        node: String,
        /// Resource name.
        resource: String,
    },
    /// Make `slave` the active slave of `bond`.
    BondSetActive {
        /// Bond interface.
        bond: String,
        /// The slave to make active.
        slave: String,
    },
    /// `drbdadm status all`, as the script reads it.
    DrbdStatus,
    /// `linstor node list`.
    LinstorNodeList,
    /// `linstor storage-pool list`.
    LinstorStoragePoolList,
    /// `linstor resource list`.
    LinstorResourceList,
}

/// The usage line of a step: its arguments, for messages and docs. The step names themselves are
/// the API's [`StepName`], the one list the CRD, the operator and the agent share.
pub const fn usage(step: StepName) -> &'static str {
    match step {
        StepName::LinstorNodeCreate => "<node> <ip>",
        StepName::LinstorNodeDelete => "<node>",
        StepName::StoragePoolCreate => "<node> <pool> <vg/thinpool>",
        StepName::ResourceCreate => "<node> <resource> <pool>",
        StepName::ResourceDelete => "<node> <resource>",
        StepName::BondSetActive => "<bond> <slave>",
        StepName::DrbdStatus
        | StepName::LinstorNodeList
        | StepName::LinstorStoragePoolList
        | StepName::LinstorResourceList => "",
    }
}

fn known_steps() -> String {
    StepName::ALL
        .iter()
        .map(|step| step.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a check's output says about a mutating step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The effect is already there; nothing runs. Says what was found.
    AlreadyDone(String),
    /// The effect is not there yet; the mutation runs.
    ToDo,
    /// The host is not in a state where the step may run (the legacy script refuses it too).
    Refused(String),
}

/// The commands of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The step.
    pub step: Step,
    /// A read-only command whose output [`Step::judge`] reads before any mutation; `None` for a
    /// read-only step.
    pub check: Option<Vec<String>>,
    /// The commands to run, in order; the first that fails ends the step.
    pub commands: Vec<Vec<String>>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// `0` on success, otherwise the failing command's exit code (124 when out of time).
    pub code: i32,
    /// What the step printed: a read-only step's standard output; for a mutating step, the
    /// mutation's output, or the check's output when it was already done.
    pub output: String,
    /// One line on what happened.
    pub message: String,
}

impl StepOutcome {
    /// Whether the step succeeded.
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn linstor(rest: &[&str]) -> Vec<String> {
    let mut argv = words(&["linstor", "--no-color"]);
    argv.extend(rest.iter().map(|w| (*w).to_owned()));
    argv
}

/// Checks a name-like argument: not empty, not an option, only characters host tools take in
/// names. Arguments are passed as argv words (no shell), so this guards the tools' own option
/// parsing, not a shell.
fn name_arg(step: &'static str, index: usize, name: &'static str, value: &str) -> Result<String, StepError> {
    let bad = |reason| StepError::BadArgument {
        step,
        index,
        name,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.starts_with('-') {
        return Err(bad("it starts with '-'"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
    {
        return Err(bad("only letters, digits and . _ - : / are allowed"));
    }
    Ok(value.to_owned())
}

/// An IP address, with an optional `/prefix` dropped as the legacy script does (`${ip%/*}`).
fn ip_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    let addr = value.split_once('/').map_or(value, |(a, _)| a);
    addr.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| StepError::BadArgument {
            step,
            index,
            name: "ip",
            value: value.to_owned(),
            reason: "not an IP address",
        })
}

/// The step a task names, with its arguments checked.
pub fn parse_step(step: &str, args: &[String]) -> Result<Step, StepError> {
    let Ok(step) = step.parse::<StepName>() else {
        return Err(StepError::UnknownStep {
            step: step.to_owned(),
        });
    };
    let (name, usage) = (step.as_str(), usage(step));
    let expected = usage.split_whitespace().count();
    if args.len() != expected {
        return Err(StepError::WrongArgCount {
            step: name,
            expected,
            usage,
            got: args.len(),
        });
    }
    let arg = |i: usize, what: &'static str| name_arg(name, i + 1, what, &args[i]);
    Ok(match step {
        StepName::LinstorNodeCreate => Step::LinstorNodeCreate {
            node: arg(0, "node")?,
            ip: ip_arg(name, 2, &args[1])?,
        },
        StepName::LinstorNodeDelete => Step::LinstorNodeDelete {
            node: arg(0, "node")?,
        },
        StepName::StoragePoolCreate => Step::StoragePoolCreate {
            node: arg(0, "node")?,
            pool: arg(1, "pool")?,
            vg: arg(2, "vg/thinpool")?,
        },
        StepName::ResourceCreate => Step::ResourceCreate {
            node: arg(0, "node")?,
            resource: arg(1, "resource")?,
            pool: arg(2, "pool")?,
        },
        StepName::ResourceDelete => Step::ResourceDelete {
            node: arg(0, "node")?,
            resource: arg(1, "resource")?,
        },
        StepName::BondSetActive => Step::BondSetActive {
            bond: arg(0, "bond")?,
            slave: arg(1, "slave")?,
        },
        StepName::DrbdStatus => Step::DrbdStatus,
        StepName::LinstorNodeList => Step::LinstorNodeList,
        StepName::LinstorStoragePoolList => Step::LinstorStoragePoolList,
        StepName::LinstorResourceList => Step::LinstorResourceList,
    })
}

/// The plan for a task's step and arguments.
pub fn plan(step: &str, args: &[String]) -> Result<Plan, StepError> {
    parse_step(step, args).map(Step::plan)
}

impl Step {
    /// The step's name in the catalogue.
    pub const fn name(&self) -> StepName {
        match self {
            Step::LinstorNodeCreate { .. } => StepName::LinstorNodeCreate,
            Step::LinstorNodeDelete { .. } => StepName::LinstorNodeDelete,
            Step::StoragePoolCreate { .. } => StepName::StoragePoolCreate,
            Step::ResourceCreate { .. } => StepName::ResourceCreate,
            Step::ResourceDelete { .. } => StepName::ResourceDelete,
            Step::BondSetActive { .. } => StepName::BondSetActive,
            Step::DrbdStatus => StepName::DrbdStatus,
            Step::LinstorNodeList => StepName::LinstorNodeList,
            Step::LinstorStoragePoolList => StepName::LinstorStoragePoolList,
            Step::LinstorResourceList => StepName::LinstorResourceList,
        }
    }

    /// The step's commands: the same argv the legacy script runs.
    pub fn plan(self) -> Plan {
        let (check, commands) = match &self {
            Step::LinstorNodeCreate { node, ip } => (
                Some(linstor(&["node", "list"])),
                vec![linstor(&["node", "create", node, ip, "--node-type", "satellite"])],
            ),
            Step::LinstorNodeDelete { node } => (
                Some(linstor(&["node", "list"])),
                vec![linstor(&["node", "delete", node])],
            ),
            Step::StoragePoolCreate { node, pool, vg } => (
                Some(linstor(&["storage-pool", "list"])),
                vec![linstor(&["storage-pool", "create", "lvmthin", node, pool, vg])],
            ),
            Step::ResourceCreate { node, resource, pool } => (
                Some(linstor(&["resource", "list"])),
                vec![linstor(&[
                    "resource",
                    "create",
                    node,
                    resource,
                    "--storage-pool",
                    pool,
                ])],
            ),
            Step::ResourceDelete { node, resource } => (
                Some(linstor(&["resource", "list"])),
                vec![linstor(&["resource", "delete", node, resource])],
            ),
            Step::BondSetActive { bond, slave } => (
                // Every link, so the slave's `master` can be checked against the bond.
                Some(words(&["ip", "-j", "-d", "link", "show"])),
                vec![words(&[
                    "ip",
                    "link",
                    "set",
                    "dev",
                    bond,
                    "type",
                    "bond",
                    "active_slave",
                    slave,
                ])],
            ),
            Step::DrbdStatus => (None, vec![words(&["drbdadm", "status", "all"])]),
            Step::LinstorNodeList => (None, vec![linstor(&["node", "list"])]),
            Step::LinstorStoragePoolList => (None, vec![linstor(&["storage-pool", "list"])]),
            Step::LinstorResourceList => (None, vec![linstor(&["resource", "list"])]),
        };
        Plan {
            step: self,
            check,
            commands,
        }
    }

    /// Reads the check's standard output: is the step's effect already there? `Err` when the
    /// output cannot be read — then nothing is mutated.
    pub fn judge(&self, check_stdout: &str) -> Result<Verdict, String> {
        let err = |e: nodewright_parsers::ParseError| e.to_string();
        match self {
            Step::LinstorNodeCreate { node, ip } => {
                let nodes = parse_linstor_node_list(check_stdout).map_err(err)?;
                Ok(match nodes.iter().find(|n| n.name == *node) {
                    Some(n) => {
                        let addr = n.addresses.as_deref().unwrap_or("");
                        // Registered with another address is not the effect asked for: refused,
                        // as the script's step mode refuses it, rather than reported done.
                        if addr.split(':').next() == Some(ip.as_str()) {
                            Verdict::AlreadyDone(format!("LINSTOR node {node} exists already"))
                        } else {
                            Verdict::Refused(format!(
                                "LINSTOR node {node} exists already with address {addr:?}, not {ip}"
                            ))
                        }
                    }
                    None => Verdict::ToDo,
                })
            }
            Step::LinstorNodeDelete { node } => {
                let nodes = parse_linstor_node_list(check_stdout).map_err(err)?;
                Ok(if nodes.iter().any(|n| n.name == *node) {
                    Verdict::ToDo
                } else {
                    Verdict::AlreadyDone(format!("LINSTOR node {node} does not exist"))
                })
            }
            Step::StoragePoolCreate { node, pool, .. } => {
                let pools = parse_linstor_storage_pool_list(check_stdout).map_err(err)?;
                Ok(
                    if pools
                        .iter()
                        .any(|p| p.name == *pool && p.node.as_deref() == Some(node.as_str()))
                    {
                        Verdict::AlreadyDone(format!("storage pool {pool} exists on {node} already"))
                    } else {
                        Verdict::ToDo
                    },
                )
            }
            Step::ResourceCreate { node, resource, .. } | Step::ResourceDelete { node, resource } => {
                let rows = parse_linstor_resource_list(check_stdout).map_err(err)?;
                let placed = rows
                    .iter()
                    .any(|r| r.name == *resource && r.node.as_deref() == Some(node.as_str()));
                Ok(match (self, placed) {
                    (Step::ResourceCreate { .. }, true) => {
                        Verdict::AlreadyDone(format!("resource {resource} is placed on {node} already"))
                    }
                    (Step::ResourceDelete { .. }, false) => {
                        Verdict::AlreadyDone(format!("resource {resource} is not placed on {node}"))
                    }
                    _ => Verdict::ToDo,
                })
            }
            Step::BondSetActive { bond, slave } => judge_bond(check_stdout, bond, slave),
            Step::DrbdStatus
            | Step::LinstorNodeList
            | Step::LinstorStoragePoolList
            | Step::LinstorResourceList => Ok(Verdict::ToDo),
        }
    }
}

/// `bond-set-active`: the same preconditions `bond_apply_flip_request` checks before it runs
/// `ip link set dev BOND type bond active_slave SLAVE` — the slave is the bond's, the mode has an
/// active slave, the slave has carrier — read from `ip -j -d link show` instead of
/// `/proc/net/bonding` and `/sys`, which the agent does not read.
fn judge_bond(check_stdout: &str, bond: &str, slave: &str) -> Result<Verdict, String> {
    let links = parse_ip_json(check_stdout).map_err(|e| e.to_string())?.links;
    let Some(b) = links.iter().find(|l| l.name == bond) else {
        return Ok(Verdict::Refused(format!("there is no interface {bond}")));
    };
    let Some(info) = &b.bond else {
        return Ok(Verdict::Refused(format!("{bond} is not a bond")));
    };
    let Some(s) = links.iter().find(|l| l.name == slave) else {
        return Ok(Verdict::Refused(format!("there is no interface {slave}")));
    };
    if s.master.as_deref() != Some(bond) {
        return Ok(Verdict::Refused(format!("{slave} is not a slave of {bond}")));
    }
    if info.options.get("active_slave").map(String::as_str) == Some(slave) {
        return Ok(Verdict::AlreadyDone(format!(
            "{slave} is the active slave of {bond} already"
        )));
    }
    if !matches!(
        info.mode,
        Some(BondMode::ActiveBackup | BondMode::BalanceTlb | BondMode::BalanceAlb)
    ) {
        let mode = info.mode_name.as_deref().unwrap_or("unknown");
        return Ok(Verdict::Refused(format!(
            "mode {mode} of {bond} has no active slave"
        )));
    }
    if s.flags.iter().any(|f| f == "NO-CARRIER") || !s.flags.iter().any(|f| f == "LOWER_UP") {
        return Ok(Verdict::Refused(format!("{slave} has no carrier")));
    }
    Ok(Verdict::ToDo)
}

/// `$ argv` and what the command printed, for a step's output.
fn transcript(out: &mut String, argv: &[String], result: &HostOutput) {
    let _ = writeln!(out, "$ {}", argv.join(" "));
    out.push_str(&result.stdout);
    out.push_str(&result.stderr);
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

impl Plan {
    /// Runs the plan: the check first (a mutating step), then the commands in order, stopping at
    /// the first failure or when `deadline` has passed between two commands.
    pub fn execute<H: HostOps + ?Sized>(&self, host: &mut H, deadline: Option<Instant>) -> StepOutcome {
        let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
        let timed_out = |output: String| StepOutcome {
            code: EXIT_TIMED_OUT,
            output,
            message: "timed out before the step finished".to_owned(),
        };
        if let Some(check) = &self.check {
            let result = host.run(check);
            if !result.success() {
                let mut output = String::new();
                transcript(&mut output, check, &result);
                return StepOutcome {
                    code: result.code,
                    output,
                    message: format!(
                        "the check `{}` failed with exit code {}; nothing was changed",
                        check.join(" "),
                        result.code
                    ),
                };
            }
            match self.step.judge(&result.stdout) {
                Ok(Verdict::AlreadyDone(what)) => {
                    return StepOutcome {
                        code: 0,
                        output: result.stdout,
                        message: format!("already done: {what}; nothing was changed"),
                    };
                }
                Ok(Verdict::Refused(why)) => {
                    return StepOutcome {
                        code: 1,
                        output: result.stdout,
                        message: format!("refused: {why}; nothing was changed"),
                    };
                }
                Err(e) => {
                    return StepOutcome {
                        code: 1,
                        output: result.stdout,
                        message: format!(
                            "could not read the output of `{}`: {e}; nothing was changed",
                            check.join(" ")
                        ),
                    };
                }
                Ok(Verdict::ToDo) => {}
            }
            if out_of_time() {
                return timed_out(String::new());
            }
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run(argv);
                transcript(&mut output, argv, &result);
                if !result.success() {
                    return StepOutcome {
                        code: result.code,
                        output,
                        message: format!("`{}` failed with exit code {}", argv.join(" "), result.code),
                    };
                }
                if out_of_time() {
                    return timed_out(output);
                }
            }
            StepOutcome {
                code: 0,
                output,
                message: "done".to_owned(),
            }
        } else {
            // A read-only step: its standard output is the task's output.
            let mut output = String::new();
            for argv in &self.commands {
                let result = host.run(argv);
                if !result.success() {
                    transcript(&mut output, argv, &result);
                    return StepOutcome {
                        code: result.code,
                        output,
                        message: format!("`{}` failed with exit code {}", argv.join(" "), result.code),
                    };
                }
                output.push_str(&result.stdout);
            }
            StepOutcome {
                code: 0,
                output,
                message: "done".to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        words(a)
    }

    const NODES: &str = "\
╭──────────────────────────────────────────────────────────╮
┊ Node   ┊ NodeType  ┊ Addresses                 ┊ State  ┊
╞══════════════════════════════════════════════════════════╡
┊ edge-1 ┊ COMBINED  ┊ 10.10.100.11:3366 (PLAIN) ┊ Online ┊
┊ edge-2 ┊ SATELLITE ┊ 10.10.100.12:3366 (PLAIN) ┊ Online ┊
╰──────────────────────────────────────────────────────────╯
";

    const NODES_ASCII: &str = "\
+----------------------------------------------------------+
| Node   | NodeType  | Addresses                 | State  |
|==========================================================|
| edge-1 | COMBINED  | 10.10.100.11:3366 (PLAIN) | Online |
+----------------------------------------------------------+
";

    #[test]
    fn every_catalogue_step_has_an_api_name_and_every_api_name_a_plan() {
        for name in StepName::ALL {
            let a: Vec<String> = usage(name)
                .split_whitespace()
                .enumerate()
                .map(|(i, _)| {
                    if name == StepName::LinstorNodeCreate && i == 1 {
                        "10.0.0.3"
                    } else {
                        "edge-3"
                    }
                    .to_owned()
                })
                .collect();
            let step = parse_step(name.as_str(), &a).unwrap();
            assert_eq!(step.name(), name);
            assert_eq!(plan(name.as_str(), &a).unwrap().step.name(), name);
        }
    }

    #[test]
    fn linstor_node_create_runs_the_legacy_command_after_a_node_list_check() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13/24"])).unwrap();
        assert_eq!(p.check, Some(args(&["linstor", "--no-color", "node", "list"])));
        assert_eq!(
            p.commands,
            vec![args(&[
                "linstor",
                "--no-color",
                "node",
                "create",
                "edge-3",
                "10.10.100.13",
                "--node-type",
                "satellite"
            ])]
        );
    }

    #[test]
    fn every_mutating_step_has_the_legacy_argv() {
        // step, args, check argv, mutation argv
        type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                "linstor-node-delete",
                &["edge-3"],
                &["linstor", "--no-color", "node", "list"],
                &["linstor", "--no-color", "node", "delete", "edge-3"],
            ),
            (
                "storage-pool-create",
                &["edge-3", "pool0", "vg0/thinpool"],
                &["linstor", "--no-color", "storage-pool", "list"],
                &[
                    "linstor",
                    "--no-color",
                    "storage-pool",
                    "create",
                    "lvmthin",
                    "edge-3",
                    "pool0",
                    "vg0/thinpool",
                ],
            ),
            (
                "resource-create",
                &["edge-3", "pvc-1", "pool0"],
                &["linstor", "--no-color", "resource", "list"],
                &[
                    "linstor",
                    "--no-color",
                    "resource",
                    "create",
                    "edge-3",
                    "pvc-1",
                    "--storage-pool",
                    "pool0",
                ],
            ),
            (
                "resource-delete",
                &["edge-3", "pvc-1"],
                &["linstor", "--no-color", "resource", "list"],
                &["linstor", "--no-color", "resource", "delete", "edge-3", "pvc-1"],
            ),
            (
                "bond-set-active",
                &["bond0", "eno2"],
                &["ip", "-j", "-d", "link", "show"],
                &[
                    "ip",
                    "link",
                    "set",
                    "dev",
                    "bond0",
                    "type",
                    "bond",
                    "active_slave",
                    "eno2",
                ],
            ),
        ];
        for (step, a, check, command) in cases {
            let p = plan(step, &args(a)).unwrap();
            assert_eq!(p.check, Some(args(check)), "{step}");
            assert_eq!(p.commands, vec![args(command)], "{step}");
        }
    }

    #[test]
    fn read_only_steps_run_one_command_and_no_check() {
        for (step, command) in [
            ("drbd-status", &["drbdadm", "status", "all"][..]),
            ("linstor-node-list", &["linstor", "--no-color", "node", "list"]),
            (
                "linstor-storage-pool-list",
                &["linstor", "--no-color", "storage-pool", "list"],
            ),
            (
                "linstor-resource-list",
                &["linstor", "--no-color", "resource", "list"],
            ),
        ] {
            let p = plan(step, &[]).unwrap();
            assert_eq!(p.check, None);
            assert_eq!(p.commands, vec![args(command)]);
        }
    }

    #[test]
    fn unknown_steps_and_wrong_argument_counts_have_no_plan() {
        let e = plan("format-disk", &[]).unwrap_err();
        assert!(e.to_string().contains("unknown step \"format-disk\""), "{e}");
        assert!(e.to_string().contains("linstor-node-create"), "{e}");
        let e = plan("linstor-node-create", &args(&["edge-3"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "step linstor-node-create takes 2 argument(s) (<node> <ip>), got 1"
        );
        assert!(plan("drbd-status", &args(&["r0"])).is_err());
    }

    #[test]
    fn arguments_that_look_like_options_or_are_not_addresses_are_refused() {
        let e = plan("linstor-node-delete", &args(&["--all"])).unwrap_err();
        assert_eq!(e.metric_label(), "bad_argument");
        let e = plan("linstor-node-create", &args(&["edge-3", "not-an-ip"])).unwrap_err();
        assert!(e.to_string().contains("not an IP address"), "{e}");
        assert!(plan("resource-delete", &args(&["edge 3", "r"])).is_err());
    }

    #[test]
    fn node_create_is_done_when_the_node_is_listed_with_its_address_and_refused_with_another() {
        let step = parse_step("linstor-node-create", &args(&["edge-2", "10.10.100.12"])).unwrap();
        assert!(matches!(step.judge(NODES), Ok(Verdict::AlreadyDone(_))));
        let step = parse_step("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        assert_eq!(step.judge(NODES), Ok(Verdict::ToDo));
        assert_eq!(step.judge(NODES_ASCII), Ok(Verdict::ToDo));
        let step = parse_step("linstor-node-create", &args(&["edge-1", "10.9.9.9"])).unwrap();
        let Ok(Verdict::Refused(msg)) = step.judge(NODES_ASCII) else {
            panic!("edge-1 is listed with another address");
        };
        assert!(msg.contains("not 10.9.9.9"), "{msg}");
    }

    #[test]
    fn node_delete_is_already_done_when_the_node_is_not_listed() {
        let step = parse_step("linstor-node-delete", &args(&["edge-3"])).unwrap();
        assert!(matches!(step.judge(NODES), Ok(Verdict::AlreadyDone(_))));
        let step = parse_step("linstor-node-delete", &args(&["edge-2"])).unwrap();
        assert_eq!(step.judge(NODES), Ok(Verdict::ToDo));
    }

    #[test]
    fn a_check_output_that_is_not_a_table_is_an_error_not_a_guess() {
        let step = parse_step("linstor-node-create", &args(&["edge-3", "10.0.0.3"])).unwrap();
        assert!(step.judge("ERROR:\nDescription:\n    something\n").is_err());
    }

    #[test]
    fn storage_pool_and_resource_checks_match_on_name_and_node() {
        let pools = "\
╭──────────────────────────────────────────────────────────────────────────────────────────────────╮
┊ StoragePool          ┊ Node   ┊ Driver   ┊ PoolName     ┊ FreeCapacity ┊ TotalCapacity ┊ CanSnapshots ┊ State ┊ SharedName ┊
╞══════════════════════════════════════════════════════════════════════════════════════════════════╡
┊ DfltDisklessStorPool ┊ edge-1 ┊ DISKLESS ┊              ┊              ┊               ┊ False        ┊ Ok    ┊            ┊
┊ pool0                ┊ edge-1 ┊ LVM_THIN ┊ vg0/thinpool ┊    100.00 GiB ┊    100.00 GiB ┊ True         ┊ Ok    ┊            ┊
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
";
        let on = |n: &str| parse_step("storage-pool-create", &args(&[n, "pool0", "vg0/thinpool"])).unwrap();
        assert!(matches!(on("edge-1").judge(pools), Ok(Verdict::AlreadyDone(_))));
        assert_eq!(on("edge-2").judge(pools), Ok(Verdict::ToDo));

        let res = "\
╭───────────────────────────────────────────────────────────────────────────────────╮
┊ ResourceName ┊ Node   ┊ Port ┊ Usage  ┊ Conns ┊    State ┊ CreatedOn           ┊
╞═══════════════════════════════════════════════════════════════════════════════════╡
┊ pvc-1        ┊ edge-1 ┊ 7000 ┊ InUse  ┊ Ok    ┊ UpToDate ┊ 2026-01-01 00:00:00 ┊
╰───────────────────────────────────────────────────────────────────────────────────╯
";
        let create = |n: &str| parse_step("resource-create", &args(&[n, "pvc-1", "pool0"])).unwrap();
        assert!(matches!(create("edge-1").judge(res), Ok(Verdict::AlreadyDone(_))));
        assert_eq!(create("edge-2").judge(res), Ok(Verdict::ToDo));
        let delete = |n: &str| parse_step("resource-delete", &args(&[n, "pvc-1"])).unwrap();
        assert_eq!(delete("edge-1").judge(res), Ok(Verdict::ToDo));
        assert!(matches!(delete("edge-2").judge(res), Ok(Verdict::AlreadyDone(_))));
    }

    const LINKS: &str = r#"[
 {"ifindex":2,"ifname":"eno1","flags":["BROADCAST","MULTICAST","SLAVE","UP","LOWER_UP"],"mtu":9000,"master":"bond0","operstate":"UP","link_type":"ether","linkinfo":{"info_slave_kind":"bond","info_slave_data":{"state":"ACTIVE","mii_status":"UP"}}},
 {"ifindex":3,"ifname":"eno2","flags":["BROADCAST","MULTICAST","SLAVE","UP","LOWER_UP"],"mtu":9000,"master":"bond0","operstate":"UP","link_type":"ether","linkinfo":{"info_slave_kind":"bond","info_slave_data":{"state":"BACKUP","mii_status":"UP"}}},
 {"ifindex":4,"ifname":"eno3","flags":["NO-CARRIER","BROADCAST","MULTICAST","SLAVE","UP"],"mtu":9000,"master":"bond0","operstate":"DOWN","link_type":"ether"},
 {"ifindex":5,"ifname":"bond0","flags":["BROADCAST","MULTICAST","MASTER","UP","LOWER_UP"],"mtu":9000,"operstate":"UP","link_type":"ether","linkinfo":{"info_kind":"bond","info_data":{"mode":"active-backup","active_slave":"eno1","miimon":100}}}
]"#;

    #[test]
    fn bond_set_active_checks_the_same_preconditions_as_the_legacy_flip() {
        let judge = |slave: &str| {
            parse_step("bond-set-active", &args(&["bond0", slave]))
                .unwrap()
                .judge(LINKS)
                .unwrap()
        };
        assert!(matches!(judge("eno1"), Verdict::AlreadyDone(_)));
        assert_eq!(judge("eno2"), Verdict::ToDo);
        assert_eq!(judge("eno3"), Verdict::Refused("eno3 has no carrier".into()));
        assert_eq!(
            judge("eno9"),
            Verdict::Refused("there is no interface eno9".into())
        );
        let lacp = LINKS.replace("active-backup", "802.3ad");
        let step = parse_step("bond-set-active", &args(&["bond0", "eno2"])).unwrap();
        assert!(matches!(step.judge(&lacp), Ok(Verdict::Refused(m)) if m.contains("no active slave")));
    }

    /// A host that answers from a script of outputs and records what it ran.
    struct Scripted {
        replies: Vec<HostOutput>,
        ran: Vec<Vec<String>>,
    }

    impl HostOps for Scripted {
        fn run(&mut self, argv: &[String]) -> HostOutput {
            self.ran.push(argv.to_vec());
            if self.replies.is_empty() {
                HostOutput::default()
            } else {
                self.replies.remove(0)
            }
        }
    }

    fn ok(stdout: &str) -> HostOutput {
        HostOutput {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_step_already_done_runs_only_its_check() {
        let p = plan("linstor-node-create", &args(&["edge-2", "10.10.100.12"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, 0);
        assert!(out.message.starts_with("already done"), "{}", out.message);
    }

    #[test]
    fn a_failing_check_mutates_nothing() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![HostOutput::failed(20, "Connection refused\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, 20);
        assert!(out.output.contains("Connection refused"));
    }

    #[test]
    fn a_step_to_do_runs_the_mutation_and_reports_its_output() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES), ok("SUCCESS:\n")],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(host.ran.len(), 2);
        assert_eq!(out.code, 0);
        assert!(out.output.contains("$ linstor --no-color node create edge-3"));
        assert!(out.output.contains("SUCCESS:"));
    }

    #[test]
    fn a_read_only_step_outputs_the_commands_stdout() {
        let p = plan("linstor-node-list", &[]).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, None);
        assert_eq!(out.output, NODES);
        assert_eq!(out.code, 0);
    }

    #[test]
    fn a_deadline_already_past_stops_before_the_mutation() {
        let p = plan("linstor-node-create", &args(&["edge-3", "10.10.100.13"])).unwrap();
        let mut host = Scripted {
            replies: vec![ok(NODES)],
            ran: vec![],
        };
        let out = p.execute(&mut host, Some(Instant::now()));
        assert_eq!(host.ran.len(), 1);
        assert_eq!(out.code, EXIT_TIMED_OUT);
    }
}

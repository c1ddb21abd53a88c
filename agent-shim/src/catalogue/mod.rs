//! The step catalogue: a `NodeTask`'s step name and arguments become a [`Plan`] — the host
//! commands the legacy script itself runs for that step (same argv as `legacy/lib/migration.sh`,
//! `host.sh` and `network.sh`), and, for a mutating step, a read-only check run first whose
//! output decides whether the step is already done, so a repeat never mutates twice.
//!
//! The package, service and module steps are the host OS's, not the script's: their argv and the
//! reading of their checks come from the [`crate::os`] seam for the host's family (`apt`/`dpkg` or
//! `dnf`/`rpm`; systemd and kmod on both), which the plan carries. The `linstor-*`,
//! `storage-pool-*` and `resource-*` steps are the site's storage backend's: their argv and the
//! reading of their checks come from the [`crate::storage`] seam (LINSTOR/DRBD today), which the
//! plan carries too.
//!
//! Planning and judging are pure. [`Plan::execute`] is the one place that runs a plan, and it
//! touches the host only through [`crate::HostOps`]. The argument checks are in `args`, the
//! running in `execute`.

mod args;
mod execute;
pub mod flip;

use nodewright_parsers::{BondMode, parse_ip_json};

use nodewright_api::{OsFamily, StepName};

use crate::host::HostOutput;
use crate::os::{self, PackageState};
use crate::storage::{self, BackendKind, StorageBackend};
use args::{ip_arg, label_arg, module_arg, name_arg, package_arg, resource_arg, unit_arg, version_arg};
pub use execute::{Recheck, StepOutcome};

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
    /// Install a package at exactly one version.
    PackageInstall {
        /// Package name.
        package: String,
        /// Version as the package manager spells it (`9.2.14-1`).
        version: String,
    },
    /// Start a systemd unit.
    ServiceStart {
        /// Unit name.
        unit: String,
    },
    /// Stop a systemd unit.
    ServiceStop {
        /// Unit name.
        unit: String,
    },
    /// Load a kernel module.
    ModuleLoad {
        /// Module name.
        module: String,
    },
    /// Unload a kernel module.
    ModuleUnload {
        /// Module name.
        module: String,
    },
    /// Demote this node's replica of a resource to Secondary.
    DrbdDemote {
        /// Resource name.
        resource: String,
    },
    /// Take every replica on this node down.
    DrbdDown,
    /// Bring every replica configured for this node up as configured.
    DrbdAdjust,
    /// Report the running kernel module's version and the installed module package's.
    DrbdVersion,
    /// Refresh the package manager's metadata.
    PackageRefresh,
    /// Report a systemd unit's state.
    ServiceStatus {
        /// Unit name.
        unit: String,
    },
    /// Save the node's storage state under the agent's state directory.
    StorageBackup {
        /// The backup's name: its directory is `backup/<label>/`.
        label: String,
    },
    /// Flip a bond's mode and/or active slave, probe the storage network, revert on the node
    /// when the probe fails ([`flip`]).
    BondFlip(flip::Flip),
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
        StepName::PackageInstall => "<package> <version>",
        StepName::ServiceStart | StepName::ServiceStop => "<unit>",
        StepName::ModuleLoad | StepName::ModuleUnload => "<module>",
        StepName::DrbdDemote => "<resource>",
        StepName::ServiceStatus => "<unit>",
        StepName::StorageBackup => "<label>",
        StepName::BondFlip => "<bond> <from> <to> <storage-interface> <peers>",
        StepName::DrbdDown
        | StepName::DrbdAdjust
        | StepName::DrbdVersion
        | StepName::PackageRefresh
        | StepName::DrbdStatus
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
    /// The host's OS family: it judges the checks of the package, service and module steps.
    pub os: OsFamily,
    /// The site's storage backend: it judges the checks of the node, pool and replica steps.
    pub storage: BackendKind,
    /// Where a backup step saves its commands' outputs, one file each, under the agent's state
    /// directory; `None` for every other step.
    pub backup: Option<Backup>,
}

/// The directory under the agent's state directory that holds the backups.
pub const BACKUP_DIR: &str = "backup";

/// Where `storage-backup` saves what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The directory, relative to the agent's state directory (`backup/<label>`).
    pub dir: String,
    /// The file each command's standard output goes to, in command order.
    pub files: Vec<&'static str>,
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
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
        StepName::PackageInstall => Step::PackageInstall {
            package: package_arg(name, 1, &args[0])?,
            version: version_arg(name, 2, &args[1])?,
        },
        StepName::ServiceStart => Step::ServiceStart {
            unit: unit_arg(name, 1, &args[0])?,
        },
        StepName::ServiceStop => Step::ServiceStop {
            unit: unit_arg(name, 1, &args[0])?,
        },
        StepName::ModuleLoad => Step::ModuleLoad {
            module: module_arg(name, 1, &args[0])?,
        },
        StepName::ModuleUnload => Step::ModuleUnload {
            module: module_arg(name, 1, &args[0])?,
        },
        StepName::DrbdDemote => Step::DrbdDemote {
            resource: resource_arg(name, 1, &args[0])?,
        },
        StepName::DrbdDown => Step::DrbdDown,
        StepName::DrbdAdjust => Step::DrbdAdjust,
        StepName::DrbdVersion => Step::DrbdVersion,
        StepName::PackageRefresh => Step::PackageRefresh,
        StepName::ServiceStatus => Step::ServiceStatus {
            unit: unit_arg(name, 1, &args[0])?,
        },
        StepName::StorageBackup => Step::StorageBackup {
            label: label_arg(name, 1, &args[0])?,
        },
        StepName::BondFlip => Step::BondFlip(flip::parse(args)?),
    })
}

/// The plan for a task's step and arguments on a Debian host (today's shape); [`plan_on`] for
/// another family.
pub fn plan(step: &str, args: &[String]) -> Result<Plan, StepError> {
    plan_on(OsFamily::Debian, step, args)
}

/// The plan for a task's step and arguments on a host of the `os` family, at a site with the
/// API's default storage backend (LINSTOR/DRBD); [`plan_with`] for another.
pub fn plan_on(os: OsFamily, step: &str, args: &[String]) -> Result<Plan, StepError> {
    plan_with(os, BackendKind::default(), step, args)
}

/// The plan for a task's step and arguments on a host of the `os` family, at a site whose
/// storage backend is `storage`.
pub fn plan_with(os: OsFamily, storage: BackendKind, step: &str, args: &[String]) -> Result<Plan, StepError> {
    parse_step(step, args).map(|s| s.plan_with(os, storage))
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
            Step::PackageInstall { .. } => StepName::PackageInstall,
            Step::ServiceStart { .. } => StepName::ServiceStart,
            Step::ServiceStop { .. } => StepName::ServiceStop,
            Step::ModuleLoad { .. } => StepName::ModuleLoad,
            Step::ModuleUnload { .. } => StepName::ModuleUnload,
            Step::DrbdDemote { .. } => StepName::DrbdDemote,
            Step::DrbdDown => StepName::DrbdDown,
            Step::DrbdAdjust => StepName::DrbdAdjust,
            Step::DrbdVersion => StepName::DrbdVersion,
            Step::PackageRefresh => StepName::PackageRefresh,
            Step::ServiceStatus { .. } => StepName::ServiceStatus,
            Step::StorageBackup { .. } => StepName::StorageBackup,
            Step::BondFlip(_) => StepName::BondFlip,
        }
    }

    /// The step's commands on a host of the `os` family, at a site with the API's default
    /// storage backend (LINSTOR/DRBD): the same argv the legacy script runs, and for the
    /// package, service and module steps the OS seam's.
    pub fn plan(self, os: OsFamily) -> Plan {
        self.plan_with(os, BackendKind::default())
    }

    /// The step's commands on a host of the `os` family, at a site whose storage backend is
    /// `storage`: the node, pool and replica steps are the storage seam's, the package, service
    /// and module steps the OS seam's, the others the legacy script's own argv.
    pub fn plan_with(self, os: OsFamily, storage: BackendKind) -> Plan {
        let host = os::for_family(os);
        let backend = storage::for_backend(storage);
        let (check, commands) = match &self {
            Step::LinstorNodeCreate { node, ip } => {
                (Some(backend.node_list()), vec![backend.node_create(node, ip)])
            }
            Step::LinstorNodeDelete { node } => (Some(backend.node_list()), vec![backend.node_delete(node)]),
            Step::StoragePoolCreate { node, pool, vg } => (
                Some(backend.pool_list()),
                vec![backend.pool_create(node, pool, vg)],
            ),
            Step::ResourceCreate { node, resource, pool } => (
                Some(backend.replica_list()),
                vec![backend.replica_create(node, resource, pool)],
            ),
            Step::ResourceDelete { node, resource } => (
                Some(backend.replica_list()),
                vec![backend.replica_delete(node, resource)],
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
            Step::LinstorNodeList => (None, vec![backend.node_list()]),
            Step::LinstorStoragePoolList => (None, vec![backend.pool_list()]),
            Step::LinstorResourceList => (None, vec![backend.replica_list()]),
            Step::PackageInstall { package, version } => (
                Some(host.package_query(package)),
                vec![host.package_install(package, version)],
            ),
            Step::ServiceStart { unit } => (Some(host.service_query(unit)), vec![host.service_start(unit)]),
            Step::ServiceStop { unit } => (Some(host.service_query(unit)), vec![host.service_stop(unit)]),
            Step::ModuleLoad { module } => (Some(host.module_query()), vec![host.module_load(module)]),
            Step::ModuleUnload { module } => (Some(host.module_query()), vec![host.module_unload(module)]),
            Step::DrbdDemote { resource } => (
                Some(backend.local_resource_status(resource)),
                vec![backend.demote(resource)],
            ),
            Step::DrbdDown => (Some(backend.local_status()), vec![backend.down_all()]),
            Step::DrbdAdjust => (Some(backend.adjust_preview()), vec![backend.adjust_all()]),
            Step::DrbdVersion => (
                None,
                vec![
                    backend.kernel_version_query(),
                    host.package_query(backend.module_package()),
                ],
            ),
            // Refreshing is idempotent and leaves nothing a check could find done: it just runs.
            Step::PackageRefresh => (None, vec![host.package_refresh()]),
            Step::ServiceStatus { unit } => (None, vec![host.service_query(unit)]),
            // Its check is the backup directory itself (see `execute`); the reads are the commands.
            Step::StorageBackup { .. } => (
                None,
                backend.backup_reads().into_iter().map(|(_, argv)| argv).collect(),
            ),
            // The mutation depends on the slaves the check finds, and the probe and the revert
            // on how the mutation went: `flip::execute` runs them.
            Step::BondFlip(_) => (Some(words(&["ip", "-j", "-d", "link", "show"])), Vec::new()),
        };
        let backup = match &self {
            Step::StorageBackup { label } => Some(Backup {
                dir: format!("{BACKUP_DIR}/{label}"),
                files: backend.backup_reads().into_iter().map(|(file, _)| file).collect(),
            }),
            _ => None,
        };
        Plan {
            step: self,
            check,
            commands,
            os,
            storage,
            backup,
        }
    }

    /// Whether the commands' exit codes are part of a read-only step's answer, read whole by
    /// [`Step::report`] (`cat /proc/drbd` of an unloaded module, `systemctl is-active` of a
    /// stopped unit exit non-zero), rather than a non-zero exit ending the step.
    fn reports(&self) -> bool {
        matches!(self, Step::DrbdVersion | Step::ServiceStatus { .. })
    }

    /// The output of a read-only step that [`Step::reports`], from its commands' whole outputs
    /// in plan order: `drbd-version`'s `kernel=` and `package=` lines, `service-status`'s state.
    /// `Err` when an output cannot be read.
    pub fn report(
        &self,
        os: OsFamily,
        storage: BackendKind,
        outputs: &[HostOutput],
    ) -> Result<String, String> {
        let host = os::for_family(os);
        let backend = storage::for_backend(storage);
        match (self, outputs) {
            (Step::DrbdVersion, [kernel, package]) => {
                let kernel = backend.kernel_version(kernel)?;
                let package = match host.package_state(backend.module_package(), package)? {
                    PackageState::Installed(v) => Some(v),
                    PackageState::Absent | PackageState::Broken { .. } => None,
                };
                Ok(format!(
                    "kernel={}\npackage={}\n",
                    kernel.as_deref().unwrap_or("none"),
                    package.as_deref().unwrap_or("none")
                ))
            }
            (Step::ServiceStatus { .. }, [state]) => host.service_state(state).map(|s| format!("{s}\n")),
            _ => Err(format!(
                "{} has no report of {} output(s)",
                self.name(),
                outputs.len()
            )),
        }
    }

    /// Whether the check's exit code is part of its answer (`rpm -q` of a missing package and
    /// `systemctl is-active` of a stopped unit exit non-zero), so the OS seam judges it rather
    /// than a non-zero exit ending the step.
    fn check_answers_by_exit_code(&self) -> bool {
        matches!(
            self,
            Step::PackageInstall { .. }
                | Step::ServiceStart { .. }
                | Step::ServiceStop { .. }
                | Step::DrbdDemote { .. }
                | Step::DrbdDown
        )
    }

    /// Reads the check's whole output on a host of the `os` family, at a site with the API's
    /// default storage backend (LINSTOR/DRBD); [`Step::judge_with`] for another.
    pub fn judge_on(&self, os: OsFamily, check: &HostOutput) -> Result<Verdict, String> {
        self.judge_with(os, BackendKind::default(), check)
    }

    /// Reads the check's whole output on a host of the `os` family, at a site whose storage
    /// backend is `storage`. The package, service and module steps are judged by the OS seam;
    /// the others on standard output, as [`Step::judge`] does.
    pub fn judge_with(
        &self,
        os: OsFamily,
        storage: BackendKind,
        check: &HostOutput,
    ) -> Result<Verdict, String> {
        let host = os::for_family(os);
        match self {
            Step::PackageInstall { package, version } => Ok(match host.package_state(package, check)? {
                PackageState::Installed(v) if v == *version => {
                    Verdict::AlreadyDone(format!("{package} {version} is installed already"))
                }
                _ => Verdict::ToDo,
            }),
            Step::ServiceStart { unit } => Ok(if host.service_active(check)? {
                Verdict::AlreadyDone(format!("{unit} is active already"))
            } else {
                Verdict::ToDo
            }),
            Step::ServiceStop { unit } => Ok(if host.service_active(check)? {
                Verdict::ToDo
            } else {
                Verdict::AlreadyDone(format!("{unit} is not active"))
            }),
            Step::ModuleLoad { module } => Ok(if host.module_loaded(module, check)? {
                Verdict::AlreadyDone(format!("module {module} is loaded already"))
            } else {
                Verdict::ToDo
            }),
            Step::ModuleUnload { module } => Ok(if host.module_loaded(module, check)? {
                Verdict::ToDo
            } else {
                Verdict::AlreadyDone(format!("module {module} is not loaded"))
            }),
            Step::DrbdDemote { resource } => storage::for_backend(storage).judge_demote(resource, check),
            Step::DrbdDown => storage::for_backend(storage).judge_down_all(check),
            Step::DrbdAdjust => storage::for_backend(storage).judge_adjust_all(check),
            _ => self.judge_stdout(storage::for_backend(storage), &check.stdout),
        }
    }

    /// Reads the check's standard output, at a site with the API's default storage backend
    /// (LINSTOR/DRBD): is the step's effect already there? `Err` when the output cannot be read
    /// — then nothing is mutated.
    pub fn judge(&self, check_stdout: &str) -> Result<Verdict, String> {
        self.judge_stdout(storage::for_backend(BackendKind::default()), check_stdout)
    }

    /// [`Step::judge`] with the node, pool and replica steps judged by `backend`.
    fn judge_stdout(&self, backend: &dyn StorageBackend, check_stdout: &str) -> Result<Verdict, String> {
        match self {
            Step::LinstorNodeCreate { node, ip } => backend.judge_node_create(node, ip, check_stdout),
            Step::LinstorNodeDelete { node } => backend.judge_node_delete(node, check_stdout),
            Step::StoragePoolCreate { node, pool, .. } => backend.judge_pool_create(node, pool, check_stdout),
            Step::ResourceCreate { node, resource, .. } => {
                backend.judge_replica_create(node, resource, check_stdout)
            }
            Step::ResourceDelete { node, resource } => {
                backend.judge_replica_delete(node, resource, check_stdout)
            }
            Step::BondSetActive { bond, slave } => judge_bond(check_stdout, bond, slave),
            Step::BondFlip(f) => flip::judge(check_stdout, f),
            Step::DrbdStatus
            | Step::LinstorNodeList
            | Step::LinstorStoragePoolList
            | Step::LinstorResourceList
            | Step::DrbdVersion
            | Step::PackageRefresh
            | Step::ServiceStatus { .. }
            | Step::StorageBackup { .. } => Ok(Verdict::ToDo),
            // Their checks are read whole, exit code included, by the host's OS: `judge_on`.
            Step::PackageInstall { .. }
            | Step::ServiceStart { .. }
            | Step::ServiceStop { .. }
            | Step::ModuleLoad { .. }
            | Step::ModuleUnload { .. } => Err(format!(
                "{} is judged by the host's OS seam, with the check's exit code",
                self.name()
            )),
            // Their checks are read whole, exit code included, by the storage seam: `judge_with`.
            Step::DrbdDemote { .. } | Step::DrbdDown | Step::DrbdAdjust => Err(format!(
                "{} is judged by the storage seam, with the check's exit code",
                self.name()
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn args(a: &[&str]) -> Vec<String> {
        words(a)
    }

    pub(super) const NODES: &str = "\
╭──────────────────────────────────────────────────────────╮
┊ Node   ┊ NodeType  ┊ Addresses                 ┊ State  ┊
╞══════════════════════════════════════════════════════════╡
┊ edge-1 ┊ COMBINED  ┊ 10.10.100.11:3366 (PLAIN) ┊ Online ┊
┊ edge-2 ┊ SATELLITE ┊ 10.10.100.12:3366 (PLAIN) ┊ Online ┊
╰──────────────────────────────────────────────────────────╯
";

    #[test]
    fn every_catalogue_step_has_an_api_name_and_every_api_name_a_plan() {
        for name in StepName::ALL {
            let a: Vec<String> = usage(name)
                .split_whitespace()
                .enumerate()
                .map(|(i, _)| {
                    match (name, i) {
                        (StepName::LinstorNodeCreate, 1) => "10.0.0.3",
                        (StepName::PackageInstall, 1) => "9.2.14-1",
                        (StepName::BondFlip, 1) => "active-backup",
                        (StepName::BondFlip, 2) => "802.3ad",
                        (StepName::BondFlip, 4) => "10.0.0.3",
                        _ => "edge-3",
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
    fn bond_set_active_runs_the_legacy_flip_after_a_link_check() {
        let p = plan("bond-set-active", &args(&["bond0", "eno2"])).unwrap();
        assert_eq!(p.check, Some(args(&["ip", "-j", "-d", "link", "show"])));
        assert_eq!(
            p.commands,
            vec![args(&[
                "ip",
                "link",
                "set",
                "dev",
                "bond0",
                "type",
                "bond",
                "active_slave",
                "eno2"
            ])]
        );
    }

    #[test]
    fn storage_steps_plan_and_judge_through_the_sites_backend() {
        let b = storage::for_backend(BackendKind::LinstorDrbd);
        // step, args, check argv, command
        type Case<'a> = (&'a str, &'a [&'a str], Option<Vec<String>>, Vec<String>);
        let cases: &[Case] = &[
            (
                "linstor-node-create",
                &["edge-3", "10.10.100.13/24"],
                Some(b.node_list()),
                b.node_create("edge-3", "10.10.100.13"),
            ),
            (
                "linstor-node-delete",
                &["edge-3"],
                Some(b.node_list()),
                b.node_delete("edge-3"),
            ),
            (
                "storage-pool-create",
                &["edge-3", "pool0", "vg0/thinpool"],
                Some(b.pool_list()),
                b.pool_create("edge-3", "pool0", "vg0/thinpool"),
            ),
            (
                "resource-create",
                &["edge-3", "pvc-1", "pool0"],
                Some(b.replica_list()),
                b.replica_create("edge-3", "pvc-1", "pool0"),
            ),
            (
                "resource-delete",
                &["edge-3", "pvc-1"],
                Some(b.replica_list()),
                b.replica_delete("edge-3", "pvc-1"),
            ),
            ("linstor-node-list", &[], None, b.node_list()),
            ("linstor-storage-pool-list", &[], None, b.pool_list()),
            ("linstor-resource-list", &[], None, b.replica_list()),
        ];
        for (step, a, check, command) in cases {
            let p = plan_with(OsFamily::Rpm, BackendKind::LinstorDrbd, step, &args(a)).unwrap();
            assert_eq!(p.storage, BackendKind::LinstorDrbd);
            assert_eq!(&p.check, check, "{step}");
            assert_eq!(p.commands, vec![command.clone()], "{step}");
            assert_eq!(
                plan(step, &args(a)).unwrap(),
                p.step.clone().plan(OsFamily::Debian)
            );
        }
        let create = parse_step("linstor-node-create", &args(&["edge-1", "10.9.9.9"])).unwrap();
        assert_eq!(
            create.judge(NODES),
            b.judge_node_create("edge-1", "10.9.9.9", NODES)
        );
        assert!(matches!(create.judge(NODES), Ok(Verdict::Refused(_))));
        let delete = parse_step("resource-delete", &args(&["edge-2", "pvc-1"])).unwrap();
        assert_eq!(
            delete.judge_with(
                OsFamily::Debian,
                BackendKind::LinstorDrbd,
                &HostOutput {
                    code: 0,
                    stdout: "not a table".into(),
                    stderr: String::new(),
                }
            ),
            b.judge_replica_delete("edge-2", "pvc-1", "not a table")
        );
    }

    #[test]
    fn drbd_status_runs_one_command_and_no_check() {
        let p = plan("drbd-status", &[]).unwrap();
        assert_eq!(p.check, None);
        assert_eq!(p.commands, vec![args(&["drbdadm", "status", "all"])]);
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

    #[test]
    fn os_steps_check_and_change_through_the_seam_of_the_hosts_family() {
        type Case<'a> = (&'a str, &'a [&'a str], OsFamily, &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                "package-install",
                &["drbd-dkms", "9.2.14-1"],
                OsFamily::Debian,
                &["dpkg-query", "-W", "-f", "${Status} ${Version}\\n", "drbd-dkms"],
                &[
                    "apt-get",
                    "install",
                    "-y",
                    "-qq",
                    "--allow-downgrades",
                    "drbd-dkms=9.2.14-1",
                ],
            ),
            (
                "package-install",
                &["drbd-utils", "9.31.0-1"],
                OsFamily::Rpm,
                &["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "drbd-utils"],
                &["dnf", "install", "-y", "drbd-utils-9.31.0-1"],
            ),
            (
                "service-start",
                &["linstor-satellite"],
                OsFamily::Rpm,
                &["systemctl", "is-active", "linstor-satellite"],
                &["systemctl", "start", "linstor-satellite"],
            ),
            (
                "service-stop",
                &["linstor-satellite"],
                OsFamily::Debian,
                &["systemctl", "is-active", "linstor-satellite"],
                &["systemctl", "stop", "linstor-satellite"],
            ),
            (
                "module-load",
                &["drbd"],
                OsFamily::Rpm,
                &["lsmod"],
                &["modprobe", "drbd"],
            ),
            (
                "module-unload",
                &["drbd_transport_tcp"],
                OsFamily::Debian,
                &["lsmod"],
                &["modprobe", "-r", "drbd_transport_tcp"],
            ),
        ];
        for (step, a, os, check, command) in cases {
            let p = plan_on(*os, step, &args(a)).unwrap();
            assert_eq!(p.os, *os);
            assert_eq!(p.check, Some(args(check)), "{step} on {os}");
            assert_eq!(p.commands, vec![args(command)], "{step} on {os}");
        }
        assert_eq!(
            plan("package-install", &args(&["drbd-dkms", "9.2.14-1"]))
                .unwrap()
                .os,
            OsFamily::Debian
        );
    }

    #[test]
    fn os_step_arguments_are_names_not_options_and_versions_start_with_a_digit() {
        for (step, a, reason) in [
            (
                "package-install",
                &["-y", "1"][..],
                "start with a letter or digit",
            ),
            ("package-install", &["Drbd", "1"], "only a-z"),
            ("package-install", &["drbd-dkms", "latest"], "starts with a digit"),
            ("package-install", &["drbd-dkms", "1.0 2"], "only letters"),
            ("package-install", &["drbd-dkms", "1;reboot"], "only letters"),
            ("service-start", &["--all"], "start with a letter or digit"),
            ("service-stop", &["a/b"], "only letters"),
            ("module-load", &["DRBD"], "lower case"),
            ("module-unload", &["drbd.ko"], "only letters"),
        ] {
            let e = plan(step, &args(a)).unwrap_err();
            assert_eq!(e.metric_label(), "bad_argument", "{step} {a:?}");
            assert!(e.to_string().contains(reason), "{step} {a:?}: {e}");
        }
        assert!(plan("package-install", &args(&["drbd-dkms", "1:9.2.14-1+deb12u1~bpo"])).is_ok());
        assert!(plan("service-start", &args(&["getty@tty1.service"])).is_ok());
    }

    #[test]
    fn os_steps_are_judged_with_the_checks_exit_code() {
        let out = |code: i32, stdout: &str| HostOutput {
            code,
            stdout: stdout.into(),
            stderr: String::new(),
        };
        let install = parse_step("package-install", &args(&["drbd-utils", "9.31.0-1"])).unwrap();
        assert!(matches!(
            install.judge_on(OsFamily::Rpm, &out(0, "9.31.0-1\n")),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(
            install.judge_on(OsFamily::Rpm, &out(0, "9.29.0-1\n")),
            Ok(Verdict::ToDo)
        );
        assert_eq!(
            install.judge_on(OsFamily::Rpm, &out(1, "package drbd-utils is not installed\n")),
            Ok(Verdict::ToDo)
        );
        assert_eq!(
            install.judge_on(OsFamily::Debian, &out(0, "install ok half-configured 9.31.0-1")),
            Ok(Verdict::ToDo),
            "a half-configured package at the version is installed again, not reported done"
        );
        assert!(install.judge("9.31.0-1").is_err());
        let start = parse_step("service-start", &args(&["linstor-satellite"])).unwrap();
        assert!(matches!(
            start.judge_on(OsFamily::Debian, &out(0, "active\n")),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(
            start.judge_on(OsFamily::Debian, &out(3, "inactive\n")),
            Ok(Verdict::ToDo)
        );
        let stop = parse_step("service-stop", &args(&["linstor-satellite"])).unwrap();
        assert!(matches!(
            stop.judge_on(OsFamily::Rpm, &out(3, "inactive\n")),
            Ok(Verdict::AlreadyDone(_))
        ));
        let lsmod = "Module                  Size  Used by\ndrbd                  995328  0\n";
        let load = parse_step("module-load", &args(&["drbd"])).unwrap();
        assert!(matches!(
            load.judge_on(OsFamily::Rpm, &out(0, lsmod)),
            Ok(Verdict::AlreadyDone(_))
        ));
        let unload = parse_step("module-unload", &args(&["drbd_transport_tcp"])).unwrap();
        assert!(matches!(
            unload.judge_on(OsFamily::Rpm, &out(0, lsmod)),
            Ok(Verdict::AlreadyDone(_))
        ));
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> HostOutput {
        HostOutput {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn upgrade_steps_plan_the_legacy_scripts_argv_through_the_seams() {
        // step, args, family, check argv, commands
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            OsFamily,
            Option<&'a [&'a str]>,
            &'a [&'a [&'a str]],
        );
        let cases: &[Case] = &[
            (
                "drbd-demote",
                &["pvc-1"],
                OsFamily::Debian,
                Some(&["drbdadm", "status", "pvc-1"]),
                &[&["drbdadm", "secondary", "pvc-1"]],
            ),
            (
                "drbd-down",
                &[],
                OsFamily::Rpm,
                Some(&["drbdadm", "status", "all"]),
                &[&["drbdadm", "down", "all"]],
            ),
            (
                "drbd-adjust",
                &[],
                OsFamily::Debian,
                Some(&["drbdadm", "--dry-run", "adjust", "all"]),
                &[&["drbdadm", "adjust", "all"]],
            ),
            (
                "drbd-version",
                &[],
                OsFamily::Debian,
                None,
                &[
                    &["cat", "/proc/drbd"],
                    &["dpkg-query", "-W", "-f", "${Status} ${Version}\\n", "drbd-dkms"],
                ],
            ),
            (
                "drbd-version",
                &[],
                OsFamily::Rpm,
                None,
                &[
                    &["cat", "/proc/drbd"],
                    &["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "drbd-dkms"],
                ],
            ),
            (
                "package-refresh",
                &[],
                OsFamily::Debian,
                None,
                &[&["apt-get", "update", "-qq"]],
            ),
            (
                "package-refresh",
                &[],
                OsFamily::Rpm,
                None,
                &[&["dnf", "makecache"]],
            ),
            (
                "service-status",
                &["linstor-satellite"],
                OsFamily::Rpm,
                None,
                &[&["systemctl", "is-active", "linstor-satellite"]],
            ),
            (
                "storage-backup",
                &["9.2.14-1767225690"],
                OsFamily::Debian,
                None,
                &[
                    &["drbdsetup", "status", "--verbose", "--statistics"],
                    &["drbdadm", "status", "all"],
                ],
            ),
        ];
        for (step, a, os, check, commands) in cases {
            let p = plan_on(*os, step, &args(a)).unwrap();
            assert_eq!(p.check, check.map(args), "{step} on {os}");
            let want: Vec<Vec<String>> = commands.iter().map(|c| args(c)).collect();
            assert_eq!(p.commands, want, "{step} on {os}");
            assert_eq!(p.backup.is_some(), *step == "storage-backup", "{step}");
        }
        let backup = plan("storage-backup", &args(&["before-9.2.14"]))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(backup.dir, "backup/before-9.2.14");
        assert_eq!(backup.files, ["drbdsetup-status.txt", "drbdadm-status.txt"]);
    }

    const PRIMARY: &str =
        "pvc-1 role:Primary\n  disk:UpToDate\n  edge-2 role:Secondary\n    peer-disk:UpToDate\n\n";

    #[test]
    fn drbd_demote_is_done_when_the_replica_is_not_primary_or_not_up_and_refused_when_not_ours() {
        let demote = parse_step("drbd-demote", &args(&["pvc-1"])).unwrap();
        let judge = |o: HostOutput| demote.judge_on(OsFamily::Debian, &o);
        assert_eq!(judge(out(0, PRIMARY, "")), Ok(Verdict::ToDo));
        assert_eq!(
            judge(out(0, &PRIMARY.replace("role:Primary", "role:Secondary"), "")),
            Ok(Verdict::AlreadyDone("pvc-1 is Secondary already".into()))
        );
        assert_eq!(
            judge(out(10, "", "pvc-1: No such resource\n")),
            Ok(Verdict::AlreadyDone("pvc-1 is not up on this node".into()))
        );
        assert!(matches!(
            judge(out(
                20,
                "",
                "Could not connect to 'drbd' generic netlink family\n"
            )),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(
            judge(out(
                10,
                "",
                "'pvc-9' not defined in your config (for this host).\n"
            )),
            Ok(Verdict::Refused(
                "pvc-1 is not a DRBD resource of this node".into()
            ))
        );
        assert!(judge(out(1, "", "drbdadm: something else\n")).is_err());
        assert!(
            demote.judge(PRIMARY).is_err(),
            "judged with the exit code, not stdout alone"
        );
    }

    #[test]
    fn drbd_down_is_done_when_nothing_is_up_and_drbd_adjust_when_the_dry_run_has_nothing_to_do() {
        let down = parse_step("drbd-down", &[]).unwrap();
        assert_eq!(
            down.judge_on(OsFamily::Rpm, &out(0, PRIMARY, "")),
            Ok(Verdict::ToDo)
        );
        assert_eq!(
            down.judge_on(
                OsFamily::Rpm,
                &out(0, "# No currently configured DRBD found.\n", "")
            ),
            Ok(Verdict::AlreadyDone("no DRBD resource is up".into()))
        );
        assert!(matches!(
            down.judge_on(
                OsFamily::Debian,
                &out(20, "", "Could not connect to 'drbd' generic netlink family\n")
            ),
            Ok(Verdict::AlreadyDone(_))
        ));
        let adjust = parse_step("drbd-adjust", &[]).unwrap();
        assert_eq!(
            adjust.judge_on(OsFamily::Debian, &out(0, "", "")),
            Ok(Verdict::AlreadyDone(
                "every DRBD resource is up as configured".into()
            ))
        );
        assert_eq!(
            adjust.judge_on(OsFamily::Debian, &out(0, "drbdsetup new-resource pvc-1 1\n", "")),
            Ok(Verdict::ToDo)
        );
        assert!(
            adjust
                .judge_on(OsFamily::Debian, &out(10, "", "drbd.conf: parse error\n"))
                .is_err()
        );
    }

    #[test]
    fn a_node_with_no_drbd_resource_configured_has_nothing_to_take_down_or_bring_up() {
        let none = out(1, "", "no resources defined!\n");
        let down = parse_step("drbd-down", &[]).unwrap();
        assert!(matches!(
            down.judge_on(OsFamily::Debian, &none),
            Ok(Verdict::AlreadyDone(_))
        ));
        let adjust = parse_step("drbd-adjust", &[]).unwrap();
        assert!(matches!(
            adjust.judge_on(OsFamily::Rpm, &none),
            Ok(Verdict::AlreadyDone(_))
        ));
    }

    #[test]
    fn drbd_version_reports_the_kernel_modules_and_the_packages_version_or_none() {
        let version = parse_step("drbd-version", &[]).unwrap();
        let proc = "version: 9.2.14 (api:2/proto:86-122)\nGIT-hash: 0123 build by @buildsystem, 2024-11-05 12:34:56\nTransports (api:21): tcp (9.2.14)\n";
        let report = |os, outputs: &[HostOutput]| version.report(os, BackendKind::LinstorDrbd, outputs);
        assert_eq!(
            report(
                OsFamily::Debian,
                &[out(0, proc, ""), out(0, "install ok installed 9.2.14-1\n", "")]
            ),
            Ok("kernel=9.2.14\npackage=9.2.14-1\n".into())
        );
        assert_eq!(
            report(
                OsFamily::Rpm,
                &[
                    out(1, "", "cat: /proc/drbd: No such file or directory\n"),
                    out(1, "package drbd-dkms is not installed\n", "")
                ]
            ),
            Ok("kernel=none\npackage=none\n".into())
        );
        assert_eq!(
            report(
                OsFamily::Debian,
                &[
                    out(0, proc, ""),
                    out(0, "install ok half-configured 9.2.14-1\n", "")
                ]
            ),
            Ok("kernel=9.2.14\npackage=none\n".into()),
            "a package whose install failed is not installed"
        );
        assert!(report(OsFamily::Debian, &[out(0, "garbage", ""), out(0, "", "")]).is_err());
        assert!(report(OsFamily::Debian, &[out(0, proc, "")]).is_err());
    }

    #[test]
    fn service_status_reports_the_units_state_whatever_the_exit_code() {
        let status = parse_step("service-status", &args(&["linstor-satellite"])).unwrap();
        let report = |o: HostOutput| status.report(OsFamily::Debian, BackendKind::LinstorDrbd, &[o]);
        assert_eq!(report(out(0, "active\n", "")), Ok("active\n".into()));
        assert_eq!(report(out(3, "inactive\n", "")), Ok("inactive\n".into()));
        assert_eq!(report(out(3, "failed\n", "")), Ok("failed\n".into()));
        assert!(report(out(0, "inactive\n", "")).is_err());
        assert!(report(out(1, "", "Failed to connect to bus\n")).is_err());
    }

    #[test]
    fn resource_names_and_backup_labels_are_one_safe_word() {
        for (step, a, reason) in [
            ("drbd-demote", "-all", "start with a letter, digit or _"),
            ("drbd-demote", "pvc-1/0", "only letters, digits, _ and -"),
            ("drbd-demote", "pvc-1:edge-2", "only letters, digits, _ and -"),
            ("drbd-demote", "", "it is empty"),
            ("storage-backup", "..", "must start with a letter or digit"),
            ("storage-backup", "a/b", "only letters, digits and . _ -"),
            ("storage-backup", ".hidden", "must start with a letter or digit"),
            ("service-status", "--all", "must start with a letter or digit"),
        ] {
            let e = plan(step, &args(&[a])).unwrap_err();
            assert_eq!(e.metric_label(), "bad_argument", "{step} {a:?}");
            assert!(e.to_string().contains(reason), "{step} {a:?}: {e}");
        }
        assert!(plan("drbd-demote", &args(&[&"r".repeat(49)])).is_err());
        assert!(plan("drbd-demote", &args(&["_pvc_2"])).is_ok());
        assert!(plan("storage-backup", &args(&["9.2.14-1767225690"])).is_ok());
        assert!(plan("drbd-down", &args(&["all"])).is_err(), "takes no argument");
    }
}

//! LINSTOR in front of DRBD 9: the `linstor` client's argv, as the legacy script runs it
//! (`legacy/lib/migration.sh`), and the reading of its `node list`, `storage-pool list` and
//! `resource list` tables through the parsers; `drbdadm` for the node's own replicas, as the
//! script's upgrade runs it (`legacy/lib/upgrade.sh`), and `/proc/drbd` for the module's version.

use nodewright_parsers::{
    ParseError, parse_drbd_status, parse_linstor_node_list, parse_linstor_resource_list,
    parse_linstor_storage_pool_list, parse_proc_drbd,
};

use super::{BackendKind, StorageBackend};
use crate::catalogue::Verdict;
use crate::host::HostOutput;

/// LINSTOR managing DRBD 9 replicated volumes; the replicas are LINSTOR resources.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinstorDrbd;

/// `linstor --no-color …`: the tables are read by the parsers, which take no colour codes.
fn linstor(rest: &[&str]) -> Vec<String> {
    ["linstor", "--no-color"]
        .iter()
        .chain(rest)
        .map(|w| (*w).to_owned())
        .collect()
}

fn err(e: ParseError) -> String {
    e.to_string()
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// `drbdadm`/`drbdsetup` without the kernel module: nothing is up.
fn no_module(out: &HostOutput) -> bool {
    out.code == 20 && out.stderr.contains("generic netlink family")
}

/// `drbdadm … all` on a node whose configuration has no DRBD resource (a member that holds no
/// replica): drbdadm refuses with `no resources defined!`, and there is nothing to take down or
/// bring up.
fn no_resources(out: &HostOutput) -> bool {
    out.code == 1 && out.stderr.contains("no resources defined")
}

/// What a failed `drbdadm status` said, for an error.
fn failed(out: &HostOutput) -> String {
    format!("drbdadm status exited {}: {}", out.code, out.stderr.trim())
}

/// Whether `resource` has a replica on `node`, by `resource list`.
fn placed(node: &str, resource: &str, list: &str) -> Result<bool, String> {
    let rows = parse_linstor_resource_list(list).map_err(err)?;
    Ok(rows
        .iter()
        .any(|r| r.name == resource && r.node.as_deref() == Some(node)))
}

impl StorageBackend for LinstorDrbd {
    fn kind(&self) -> BackendKind {
        BackendKind::LinstorDrbd
    }

    fn node_list(&self) -> Vec<String> {
        linstor(&["node", "list"])
    }

    fn pool_list(&self) -> Vec<String> {
        linstor(&["storage-pool", "list"])
    }

    fn replica_list(&self) -> Vec<String> {
        linstor(&["resource", "list"])
    }

    fn node_create(&self, node: &str, ip: &str) -> Vec<String> {
        linstor(&["node", "create", node, ip, "--node-type", "satellite"])
    }

    fn judge_node_create(&self, node: &str, ip: &str, list: &str) -> Result<Verdict, String> {
        let nodes = parse_linstor_node_list(list).map_err(err)?;
        Ok(match nodes.iter().find(|n| n.name == node) {
            Some(n) => {
                let addr = n.addresses.as_deref().unwrap_or("");
                // Registered with another address is not the effect asked for: refused, as the
                // script's step mode refuses it, rather than reported done.
                if addr.split(':').next() == Some(ip) {
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

    fn node_delete(&self, node: &str) -> Vec<String> {
        linstor(&["node", "delete", node])
    }

    fn judge_node_delete(&self, node: &str, list: &str) -> Result<Verdict, String> {
        let nodes = parse_linstor_node_list(list).map_err(err)?;
        Ok(if nodes.iter().any(|n| n.name == node) {
            Verdict::ToDo
        } else {
            Verdict::AlreadyDone(format!("LINSTOR node {node} does not exist"))
        })
    }

    fn pool_create(&self, node: &str, pool: &str, vg: &str) -> Vec<String> {
        linstor(&["storage-pool", "create", "lvmthin", node, pool, vg])
    }

    fn judge_pool_create(&self, node: &str, pool: &str, list: &str) -> Result<Verdict, String> {
        let pools = parse_linstor_storage_pool_list(list).map_err(err)?;
        Ok(
            if pools
                .iter()
                .any(|p| p.name == pool && p.node.as_deref() == Some(node))
            {
                Verdict::AlreadyDone(format!("storage pool {pool} exists on {node} already"))
            } else {
                Verdict::ToDo
            },
        )
    }

    fn replica_create(&self, node: &str, resource: &str, pool: &str) -> Vec<String> {
        linstor(&["resource", "create", node, resource, "--storage-pool", pool])
    }

    fn judge_replica_create(&self, node: &str, resource: &str, list: &str) -> Result<Verdict, String> {
        Ok(if placed(node, resource, list)? {
            Verdict::AlreadyDone(format!("resource {resource} is placed on {node} already"))
        } else {
            Verdict::ToDo
        })
    }

    fn replica_delete(&self, node: &str, resource: &str) -> Vec<String> {
        linstor(&["resource", "delete", node, resource])
    }

    fn judge_replica_delete(&self, node: &str, resource: &str, list: &str) -> Result<Verdict, String> {
        Ok(if placed(node, resource, list)? {
            Verdict::ToDo
        } else {
            Verdict::AlreadyDone(format!("resource {resource} is not placed on {node}"))
        })
    }

    fn local_status(&self) -> Vec<String> {
        words(&["drbdadm", "status", "all"])
    }

    fn local_resource_status(&self, resource: &str) -> Vec<String> {
        words(&["drbdadm", "status", resource])
    }

    fn demote(&self, resource: &str) -> Vec<String> {
        words(&["drbdadm", "secondary", resource])
    }

    fn judge_demote(&self, resource: &str, check: &HostOutput) -> Result<Verdict, String> {
        if no_module(check) {
            return Ok(Verdict::AlreadyDone(
                "the DRBD module is not loaded: nothing is up".into(),
            ));
        }
        if check.code == 10 && check.stderr.contains("not defined in your config") {
            return Ok(Verdict::Refused(format!(
                "{resource} is not a DRBD resource of this node"
            )));
        }
        if check.code == 10 && check.stderr.contains("No such resource") {
            return Ok(Verdict::AlreadyDone(format!("{resource} is not up on this node")));
        }
        if !check.success() {
            return Err(failed(check));
        }
        let status = parse_drbd_status(&check.stdout).map_err(err)?;
        let Some(r) = status.resources.iter().find(|r| r.name == resource) else {
            return Err(format!("drbdadm status {resource} does not show {resource}"));
        };
        Ok(if r.role == "Primary" {
            Verdict::ToDo
        } else {
            Verdict::AlreadyDone(format!("{resource} is {} already", r.role))
        })
    }

    fn down_all(&self) -> Vec<String> {
        words(&["drbdadm", "down", "all"])
    }

    fn judge_down_all(&self, check: &HostOutput) -> Result<Verdict, String> {
        if no_module(check) {
            return Ok(Verdict::AlreadyDone(
                "the DRBD module is not loaded: nothing is up".into(),
            ));
        }
        if no_resources(check) {
            return Ok(Verdict::AlreadyDone(
                "no DRBD resource is configured on this node".into(),
            ));
        }
        if !check.success() {
            return Err(failed(check));
        }
        let status = parse_drbd_status(&check.stdout).map_err(err)?;
        Ok(if status.resources.is_empty() {
            Verdict::AlreadyDone("no DRBD resource is up".into())
        } else {
            Verdict::ToDo
        })
    }

    fn adjust_all(&self) -> Vec<String> {
        // The script's UP_RESOURCES: adjust rather than up, which fails on a resource already up.
        words(&["drbdadm", "adjust", "all"])
    }

    fn adjust_preview(&self) -> Vec<String> {
        words(&["drbdadm", "--dry-run", "adjust", "all"])
    }

    fn judge_adjust_all(&self, check: &HostOutput) -> Result<Verdict, String> {
        if no_resources(check) {
            return Ok(Verdict::AlreadyDone(
                "no DRBD resource is configured on this node: nothing to bring up".into(),
            ));
        }
        if !check.success() {
            return Err(format!(
                "drbdadm --dry-run adjust all exited {}: {}",
                check.code,
                check.stderr.trim()
            ));
        }
        // The dry run prints each drbdsetup call adjust would make; none: nothing differs.
        Ok(if check.stdout.trim().is_empty() {
            Verdict::AlreadyDone("every DRBD resource is up as configured".into())
        } else {
            Verdict::ToDo
        })
    }

    fn kernel_version_query(&self) -> Vec<String> {
        words(&["cat", "/proc/drbd"])
    }

    fn kernel_version(&self, out: &HostOutput) -> Result<Option<String>, String> {
        if out.code == 1 && out.stderr.contains("No such file or directory") {
            return Ok(None);
        }
        if !out.success() {
            return Err(format!(
                "cat /proc/drbd exited {}: {}",
                out.code,
                out.stderr.trim()
            ));
        }
        let proc = parse_proc_drbd(&out.stdout).map_err(err)?;
        Ok(proc.version.split_whitespace().next().map(str::to_owned))
    }

    fn module_package(&self) -> &'static str {
        "drbd-dkms"
    }

    fn backup_reads(&self) -> Vec<(&'static str, Vec<String>)> {
        // The script's BACKUP_CONFIG, file names included (`legacy/lib/upgrade.sh`).
        vec![
            (
                "drbdsetup-status.txt",
                words(&["drbdsetup", "status", "--verbose", "--statistics"]),
            ),
            ("drbdadm-status.txt", words(&["drbdadm", "status", "all"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
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
    fn every_command_is_the_legacy_scripts_linstor_argv() {
        let l = LinstorDrbd;
        assert_eq!(l.node_list(), words(&["linstor", "--no-color", "node", "list"]));
        assert_eq!(
            l.pool_list(),
            words(&["linstor", "--no-color", "storage-pool", "list"])
        );
        assert_eq!(
            l.replica_list(),
            words(&["linstor", "--no-color", "resource", "list"])
        );
        assert_eq!(
            l.node_create("edge-3", "10.10.100.13"),
            words(&[
                "linstor",
                "--no-color",
                "node",
                "create",
                "edge-3",
                "10.10.100.13",
                "--node-type",
                "satellite"
            ])
        );
        assert_eq!(
            l.node_delete("edge-3"),
            words(&["linstor", "--no-color", "node", "delete", "edge-3"])
        );
        assert_eq!(
            l.pool_create("edge-3", "pool0", "vg0/thinpool"),
            words(&[
                "linstor",
                "--no-color",
                "storage-pool",
                "create",
                "lvmthin",
                "edge-3",
                "pool0",
                "vg0/thinpool",
            ])
        );
        assert_eq!(
            l.replica_create("edge-3", "pvc-1", "pool0"),
            words(&[
                "linstor",
                "--no-color",
                "resource",
                "create",
                "edge-3",
                "pvc-1",
                "--storage-pool",
                "pool0",
            ])
        );
        assert_eq!(
            l.replica_delete("edge-3", "pvc-1"),
            words(&["linstor", "--no-color", "resource", "delete", "edge-3", "pvc-1"])
        );
    }

    #[test]
    fn node_create_is_done_when_the_node_is_listed_with_its_address_and_refused_with_another() {
        let l = LinstorDrbd;
        assert!(matches!(
            l.judge_node_create("edge-2", "10.10.100.12", NODES),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(
            l.judge_node_create("edge-3", "10.10.100.13", NODES),
            Ok(Verdict::ToDo)
        );
        assert_eq!(
            l.judge_node_create("edge-3", "10.10.100.13", NODES_ASCII),
            Ok(Verdict::ToDo)
        );
        let Ok(Verdict::Refused(msg)) = l.judge_node_create("edge-1", "10.9.9.9", NODES_ASCII) else {
            panic!("edge-1 is listed with another address");
        };
        assert!(msg.contains("not 10.9.9.9"), "{msg}");
    }

    #[test]
    fn node_delete_is_already_done_when_the_node_is_not_listed() {
        assert!(matches!(
            LinstorDrbd.judge_node_delete("edge-3", NODES),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(LinstorDrbd.judge_node_delete("edge-2", NODES), Ok(Verdict::ToDo));
    }

    #[test]
    fn a_check_output_that_is_not_a_table_is_an_error_not_a_guess() {
        let out = "ERROR:\nDescription:\n    something\n";
        assert!(LinstorDrbd.judge_node_create("edge-3", "10.0.0.3", out).is_err());
        assert!(LinstorDrbd.judge_node_delete("edge-3", out).is_err());
        assert!(LinstorDrbd.judge_pool_create("edge-3", "pool0", out).is_err());
        assert!(LinstorDrbd.judge_replica_create("edge-3", "pvc-1", out).is_err());
        assert!(LinstorDrbd.judge_replica_delete("edge-3", "pvc-1", out).is_err());
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
        let l = LinstorDrbd;
        assert!(matches!(
            l.judge_pool_create("edge-1", "pool0", pools),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(l.judge_pool_create("edge-2", "pool0", pools), Ok(Verdict::ToDo));

        let res = "\
╭───────────────────────────────────────────────────────────────────────────────────╮
┊ ResourceName ┊ Node   ┊ Port ┊ Usage  ┊ Conns ┊    State ┊ CreatedOn           ┊
╞═══════════════════════════════════════════════════════════════════════════════════╡
┊ pvc-1        ┊ edge-1 ┊ 7000 ┊ InUse  ┊ Ok    ┊ UpToDate ┊ 2026-01-01 00:00:00 ┊
╰───────────────────────────────────────────────────────────────────────────────────╯
";
        assert!(matches!(
            l.judge_replica_create("edge-1", "pvc-1", res),
            Ok(Verdict::AlreadyDone(_))
        ));
        assert_eq!(l.judge_replica_create("edge-2", "pvc-1", res), Ok(Verdict::ToDo));
        assert_eq!(l.judge_replica_delete("edge-1", "pvc-1", res), Ok(Verdict::ToDo));
        assert!(matches!(
            l.judge_replica_delete("edge-2", "pvc-1", res),
            Ok(Verdict::AlreadyDone(_))
        ));
    }
}

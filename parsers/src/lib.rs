//! Parsers for the host-tool outputs the legacy edge script copies into its logs and ConfigMaps:
//! `/proc/net/bonding/*`, DRBD (`drbdadm status`, `drbdsetup events2`, `/proc/drbd`), `linstor`
//! list tables and iproute2 (`ip link`/`ip addr`, text and JSON); what the package and module
//! tools say about one package or module (`dpkg-query`, `rpm -q`, `lsmod`); the node's own
//! `/etc/vx-rail/node.conf`, read as the script reads it; and the artefacts the script
//! writes itself (ConfigMap blobs, member list, network plan, Node annotations, labels and taints,
//! and its logs of both generations, read by a streaming [`LogReader`]).
//!
//! Pure functions from `&str` to typed values: no I/O, no Kubernetes. Every public entry point
//! is `parse_<format>(input) -> Result<T, ParseError>`, rejects input it does not recognise
//! (including trailing garbage) with a positioned [`ParseError`], and never panics. Lines the
//! real tools are known to add across versions are kept raw in `unknown` fields instead.
//!
//! The registry of every format by name, and the detection of an input's format, are in
//! [`formats`] / [`detect`].

mod bonding;
mod drbd;
mod error;
mod formats;
mod iproute;
mod legacy;
mod linstor;
mod nodeconf;
mod packages;
mod text;

pub use bonding::{
    ActiveAggregator, BondMode, BondSlave, BondingStatus, LacpInfo, LacpPdu, LinkState,
    parse_proc_net_bonding,
};
pub use drbd::{
    DrbdConnection, DrbdDevice, DrbdEvent, DrbdEventVerb, DrbdEvents, DrbdPeerDevice, DrbdResource,
    DrbdStatus, ProcDrbd, ProcDrbdMinor, SyncProgress, parse_drbd_events2, parse_drbd_status,
    parse_proc_drbd,
};
pub use error::ParseError;
pub use formats::{Detected, Format, detect, find_format, formats};
pub use iproute::{
    IpAddress, IpBondInfo, IpBondSlaveInfo, IpLink, IpLinks, IpVlanInfo, parse_ip_json, parse_ip_text,
};
pub use legacy::contract;
pub use legacy::{
    AnnotatedState, Blob, BlobPair, BlockEvent, BondFlip, BondFlipAction, BondFlipState, BootRecovery,
    BootRecoveryPhase, ClusterBlob, Component, DrbdHealth, Field, Fields, LastRun, LegacyLog, Level,
    LogEvent, LogFormat, LogReader, LogRecord, LogStats, Member, MemberRole, Migration, MigrationPhase,
    MiiState, NetHealth, NetworkPlan, NodeAnnotations, NodeLabels, NodeRole, NodeState, NodeStatus,
    NodeTaint, Outcome, OwnedLogEvent, PlanBond, PlanNode, PlanVlan, SlaveStatus, StorageTaintReason,
    TaintEffect, Timestamp, Topology, UnknownLine, Upgrade, UpgradeState, UpgradeStateAnnotation, VlanStatus,
    parse_blob, parse_bond_flip, parse_boot_recovery, parse_cluster_blob, parse_heartbeat, parse_last_run,
    parse_legacy_log, parse_linstor_nodes, parse_log_line, parse_members, parse_migration,
    parse_network_plan, parse_node_annotations, parse_node_labels, parse_node_status, parse_node_taints,
    parse_upgrade, parse_upgrade_state_annotation,
};
pub use linstor::{
    LinstorNode, LinstorResource, LinstorStoragePool, LinstorTable, LinstorVolume, parse_linstor_node_list,
    parse_linstor_resource_list, parse_linstor_storage_pool_list, parse_linstor_table,
    parse_linstor_volume_list,
};
pub use nodeconf::{ConfValue, KEYS as NODE_CONF_KEYS, NodeConf, NodeConfError, UnknownKey, parse_node_conf};
pub use packages::{
    DpkgPackage, LsmodModule, RpmQuery, parse_dpkg_query_status, parse_lsmod, parse_rpm_query,
};

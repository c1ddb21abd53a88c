//! The artefacts the legacy `vx-rail-node-init` script writes, as `docs/legacy-contract.md`
//! specifies them: ConfigMap blobs, the member list, the network plan, the captured LINSTOR
//! table, Node annotations, labels and taints, and its logs in both generations; [`contract`]
//! names the objects, keys and messages themselves.
//!
//! Like the rest of the crate this is pure: text in, typed values out. Values the contract does
//! not list (a state a newer script adds, a key a person wrote by hand) are never dropped: enums
//! keep them in an `Unknown` variant and blobs keep unknown keys in an `unknown` map, so the
//! bridge can report them instead of guessing.

mod blob;
pub mod contract;
mod log;
mod members;
mod node;
mod time;

pub use blob::{
    Blob, BlobPair, BondFlip, BondFlipAction, BondFlipState, BootRecovery, BootRecoveryPhase, ClusterBlob,
    DrbdHealth, LastRun, Migration, MigrationPhase, MiiState, NetHealth, NodeRole, NodeState, NodeStatus,
    Outcome, SlaveStatus, StorageTaintReason, Topology, Upgrade, UpgradeState, UpgradeStateAnnotation,
    VlanStatus, parse_blob, parse_bond_flip, parse_boot_recovery, parse_cluster_blob, parse_last_run,
    parse_migration, parse_node_status, parse_upgrade, parse_upgrade_state_annotation,
};
pub use log::{
    BlockEvent, Component, Field, Fields, LegacyLog, Level, LogEvent, LogFormat, LogReader, LogRecord,
    LogStats, OwnedLogEvent, UnknownLine, parse_legacy_log, parse_log_line,
};
pub use members::{
    Member, MemberRole, NetworkPlan, PlanBond, PlanNode, PlanVlan, parse_linstor_nodes, parse_members,
    parse_network_plan,
};
pub use node::{
    AnnotatedState, NodeAnnotations, NodeLabels, NodeTaint, TaintEffect, parse_node_annotations,
    parse_node_labels, parse_node_taints,
};
pub use time::{Timestamp, parse_heartbeat};

/// Declares a closed set of values as the contract spells them, plus `Unknown` for anything
/// else. Unknown values are kept (a newer script may add states) and serialise as
/// `{"unknown": "<value>"}` so they stand out in JSON instead of passing for a known one.
macro_rules! known_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* #[doc = concat!("`", $text, "`")] $variant,)+
            /// A value the contract does not list, kept as written.
            Unknown(String),
        }

        impl $name {
            /// Every value the contract lists, in its order.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The value for `text`; anything not listed becomes `Unknown`.
            pub fn from_text(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }

            /// The value as the script writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(text) => text,
                }
            }

            /// Whether the contract lists this value.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::Unknown(text) => {
                        use serde::ser::SerializeMap;
                        let mut map = s.serialize_map(Some(1))?;
                        map.serialize_entry("unknown", text)?;
                        map.end()
                    }
                    known => s.serialize_str(known.as_str()),
                }
            }
        }
    };
}
pub(crate) use known_enum;

/// Drops one trailing line ending: ConfigMap values have none, but the same value saved to a
/// file (or pasted by support) usually gains one.
pub(crate) fn trim_final_newline(input: &str) -> &str {
    let s = input.strip_suffix('\n').unwrap_or(input);
    s.strip_suffix('\r').unwrap_or(s)
}

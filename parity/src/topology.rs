//! The site-topology seam: what the decisions read about the site's shape — which nodes may join
//! it, the address a node's storage is reached at, how many replicas a volume gets. Pure.
//!
//! [`SmallSite`] is today's shape, the one the legacy script builds: one to a few nodes, one
//! bond, a storage and a management VLAN, the storage address taken from the member row the
//! node's script wrote. Both `SingleNode` and `MultiNode` profiles are that shape today (a single
//! node is a small site before its migration); [`for_profile`] is where another shape is chosen.
//!
//! To add a shape: an implementation of [`SiteTopology`] and the profile value that selects it
//! in [`for_profile`]; the migration's decision takes it through [`crate::migration::decide_in`].

use nodewright_api::edgecluster::Topology;
use nodewright_parsers::Member;

/// What the decisions need to know about the site's shape.
pub trait SiteTopology: Send + Sync {
    /// The shape's name, for logs and messages.
    fn name(&self) -> &'static str;

    /// The member row of `node` if it may take part in the site (join it, receive replicas).
    fn member<'a>(&self, members: &'a [Member], node: &str) -> Option<&'a Member>;

    /// The address a node's storage (its LINSTOR satellite) is registered with.
    fn storage_address(&self, member: &Member) -> String;

    /// How many replicas each volume gets, given what was asked for (`None`: the shape's default).
    fn replicas(&self, requested: Option<i32>) -> u32;
}

/// Today's shape: one to a few nodes, one bond, storage and management VLANs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmallSite;

impl SiteTopology for SmallSite {
    fn name(&self) -> &'static str {
        "small-site"
    }

    // Only nodes whose script wrote a member row take part; the row carries the storage address
    // its node.conf names.
    fn member<'a>(&self, members: &'a [Member], node: &str) -> Option<&'a Member> {
        members.iter().find(|m| m.node == node)
    }

    // The member row's `storage_ip` is a CIDR on the storage VLAN; LINSTOR wants the address, as
    // the script's `${ip%/*}`.
    fn storage_address(&self, member: &Member) -> String {
        member.storage_ip.split('/').next().unwrap_or_default().to_owned()
    }

    // Two copies unless asked otherwise, as the script's migration default.
    fn replicas(&self, requested: Option<i32>) -> u32 {
        requested.and_then(|r| u32::try_from(r).ok()).unwrap_or(2)
    }
}

/// The shape a profile's topology names.
pub fn for_profile(topology: Topology) -> &'static dyn SiteTopology {
    match topology {
        Topology::SingleNode | Topology::MultiNode => &SmallSite,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nodewright_parsers::parse_members;

    #[test]
    fn a_small_site_reads_members_addresses_and_replicas_as_the_script_does() {
        let members = parse_members("node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,joining,200")
            .unwrap();
        let site = for_profile(Topology::MultiNode);
        assert_eq!(site.name(), "small-site");
        let m = site.member(&members, "edge-2").unwrap();
        assert_eq!(site.storage_address(m), "10.100.0.12");
        assert!(site.member(&members, "edge-9").is_none());
        assert_eq!(site.replicas(None), 2);
        assert_eq!(site.replicas(Some(3)), 3);
        assert_eq!(site.replicas(Some(-1)), 2);
        assert_eq!(for_profile(Topology::SingleNode).name(), "small-site");
    }
}

//! The member list (`members`, a header and one CSV row per node), the network plan
//! (`network-plan`, one line of JSON) and the captured `linstor-nodes` table of the cluster-state
//! ConfigMap.

use serde::{Deserialize, Serialize};

use super::{blob::NodeRole, trim_final_newline};
use crate::{LinstorNode, ParseError, parse_linstor_node_list};

const MEMBERS: &str = "legacy-members";
const HEADER: &str = "node,storage_ip,role,joined";

/// One row of the member list.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Member {
    /// The Node name.
    pub node: String,
    /// The storage IP with prefix length, for example `10.10.100.11/24`.
    pub storage_ip: String,
    /// `primary`, `member` or `joining`.
    pub role: MemberRole,
    /// Epoch the node joined.
    pub joined: u64,
}

/// A member's role; the same values as [`NodeRole`] without `none`.
pub type MemberRole = NodeRole;

/// Parses the `members` CSV: the header `node,storage_ip,role,joined`, then one row per member.
/// Rows may end in CRLF; one trailing line ending is allowed.
pub fn parse_members(input: &str) -> Result<Vec<Member>, ParseError> {
    let body = trim_final_newline(input);
    let mut rows = crate::text::lines(body).into_iter();
    let Some(header) = rows.next() else {
        return Err(ParseError::at(
            MEMBERS,
            input,
            0,
            "the header `node,storage_ip,role,joined`",
        ));
    };
    if header.text != HEADER {
        return Err(ParseError::at(
            MEMBERS,
            input,
            0,
            "the header `node,storage_ip,role,joined`",
        ));
    }
    let mut members = Vec::new();
    for line in rows {
        let cells: Vec<&str> = line.text.split(',').collect();
        let [node, ip, role, joined] = cells.as_slice() else {
            let at = line
                .text
                .match_indices(',')
                .nth(3)
                .map_or(line.text.len(), |(i, _)| i);
            return Err(ParseError::at(
                MEMBERS,
                input,
                line.offset + at,
                "four comma-separated cells: node, storage IP, role, joined",
            ));
        };
        if node.is_empty() {
            return Err(ParseError::at(MEMBERS, input, line.offset, "a node name"));
        }
        if !valid_cidr(ip) {
            return Err(ParseError::at(
                MEMBERS,
                input,
                line.offset_of(ip),
                "an IPv4 address with a prefix length",
            ));
        }
        let joined_value = joined
            .parse::<u64>()
            .ok()
            .filter(|_| joined.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| {
                ParseError::at(
                    MEMBERS,
                    input,
                    line.offset_of(joined),
                    "an epoch (unsigned number)",
                )
            })?;
        members.push(Member {
            node: (*node).to_owned(),
            storage_ip: (*ip).to_owned(),
            role: MemberRole::from_text(role),
            joined: joined_value,
        });
    }
    Ok(members)
}

fn valid_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::Ipv4Addr>().is_ok()
        && prefix.parse::<u8>().is_ok_and(|p| p <= 32)
        && prefix.bytes().all(|c| c.is_ascii_digit())
}

/// The `network-plan` JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPlan {
    /// Always 1.
    pub version: u32,
    /// The primary's bond settings.
    pub bond: PlanBond,
    /// The storage VLAN id and prefix length.
    pub storage_vlan: PlanVlan,
    /// The management VLAN, `null` when unset.
    pub mgmt_vlan: Option<PlanVlan>,
    /// One entry per member, in member-list order.
    pub nodes: Vec<PlanNode>,
}

/// `bond` of the network plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PlanBond {
    /// `BOND_NAME`.
    pub name: String,
    /// `BOND_MODE`.
    pub mode: String,
    /// `BOND_MIIMON`.
    pub miimon: u64,
    /// `BOND_SLAVES`.
    pub slaves: Vec<String>,
}

/// `storageVlan` / `mgmtVlan` of the network plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanVlan {
    /// The VLAN id.
    pub id: u16,
    /// The prefix length of `STORAGE_IP`; absent for the management VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<u8>,
}

/// One node of the network plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanNode {
    /// Node name.
    pub name: String,
    /// Storage IP with prefix length.
    pub storage_ip: String,
    /// Role as in the member list.
    pub role: String,
}

/// Parses the `network-plan` JSON with serde_json; a JSON or shape error is positioned where
/// serde_json stopped.
pub fn parse_network_plan(input: &str) -> Result<NetworkPlan, ParseError> {
    serde_json::from_str(input).map_err(|e| {
        let line_start: usize = input
            .split_inclusive('\n')
            .take(e.line().saturating_sub(1))
            .map(str::len)
            .sum();
        let line = input.get(line_start..).unwrap_or("");
        // serde_json counts columns in bytes and points at the last byte it read; at the end of
        // input there is no such byte, so the error belongs just past the end.
        let col = if e.is_eof() {
            e.column()
        } else {
            e.column().saturating_sub(1)
        }
        .min(line.len());
        let expected = match e.classify() {
            serde_json::error::Category::Data => {
                // The message without serde_json's own " at line L column C" suffix.
                let text = e.to_string();
                let text = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(m, _)| m)
                    .to_owned();
                format!("a network plan: {text}")
            }
            _ => "valid JSON".to_owned(),
        };
        ParseError::at("legacy-network-plan", input, line_start + col, expected)
    })
}

/// Parses the `linstor-nodes` value: `linstor --no-color node list` output, read by the
/// crate's LINSTOR table parser.
pub fn parse_linstor_nodes(input: &str) -> Result<Vec<LinstorNode>, ParseError> {
    parse_linstor_node_list(input)
}

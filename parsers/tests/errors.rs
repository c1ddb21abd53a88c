//! Error positions: every rejection names the line, column and byte offset where parsing
//! stopped, what was expected there and what was found.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nodewright_parsers as p;

fn offset_of_line(input: &str, line: usize) -> usize {
    input.split_inclusive('\n').take(line - 1).map(str::len).sum()
}

#[test]
fn a_truncated_peer_line_reports_its_line_and_column() {
    let input = "r0 role:Primary\n  disk:UpToDate\n  peer role\n";
    let e = p::parse_drbd_status(input).unwrap_err();
    assert_eq!((e.line, e.column), (3, 8));
    assert_eq!(e.offset, offset_of_line(input, 3) + 7);
    assert_eq!(e.found, "\"role\"");
}

#[test]
fn a_resource_line_without_a_role_is_rejected_at_its_end() {
    let input = "r0 suspended:no\n";
    let e = p::parse_drbd_status(input).unwrap_err();
    assert_eq!((e.line, e.column), (1, 16));
    assert_eq!(e.expected, "`role:` on the resource line");
}

#[test]
fn a_non_numeric_done_percentage_reports_its_column() {
    let input =
        "r0 role:Secondary\n  disk:Inconsistent\n  n2 role:Primary\n    replication:SyncTarget done:abc\n";
    let e = p::parse_drbd_status(input).unwrap_err();
    assert_eq!((e.line, e.column), (4, 33));
    assert_eq!(e.expected, "a percentage");
}

#[test]
fn a_missing_bonding_header_is_reported_on_the_first_line() {
    let e = p::parse_proc_net_bonding("Bonding Mode: load balancing (xor)\n").unwrap_err();
    assert_eq!((e.line, e.column, e.offset), (1, 1, 0));
    assert_eq!(e.expected, "`Ethernet Channel Bonding Driver:` header");
    assert_eq!(e.found, "\"Bonding Mode: load balancing (xo\"…");
}

#[test]
fn a_non_numeric_link_failure_count_reports_its_line_and_column() {
    let input = "Ethernet Channel Bonding Driver: v3.7.1 (April 27, 2011)\n\nSlave Interface: eth0\nMII Status: up\nLink Failure Count: many\n";
    let e = p::parse_proc_net_bonding(input).unwrap_err();
    assert_eq!((e.line, e.column), (5, 21));
    assert_eq!(e.offset, offset_of_line(input, 5) + 20);
    assert_eq!(e.expected, "an unsigned number");
    assert_eq!(e.found, "\"many\"");
}

#[test]
fn a_shell_prompt_after_a_bond_file_is_rejected_as_trailing_input() {
    let input = "Ethernet Channel Bonding Driver: v3.7.1 (April 27, 2011)\n\nBonding Mode: fault-tolerance (active-backup)\n[root@VAAA ~]# \n";
    let e = p::parse_proc_net_bonding(input).unwrap_err();
    assert_eq!((e.line, e.column), (4, 1));
    assert_eq!(e.expected, "a `Key: value` line");
}

#[test]
fn an_empty_bond_file_reports_the_end_of_input() {
    let e = p::parse_proc_net_bonding("\n\n").unwrap_err();
    assert_eq!((e.line, e.column, e.offset), (3, 1, 2));
    assert_eq!(e.found, "end of input");
}

#[test]
fn an_events2_line_with_an_unknown_verb_reports_column_one() {
    let input = "exists resource name:r0 role:Primary\nfrobnicate device name:r0\n";
    let e = p::parse_drbd_events2(input).unwrap_err();
    assert_eq!((e.line, e.column), (2, 1));
    assert!(e.expected.contains("event verb"), "{e}");
}

#[test]
fn an_events2_line_cut_after_its_verb_reports_where_the_object_belongs() {
    let e = p::parse_drbd_events2("2024-01-01T00:00:00.000000+00:00 change").unwrap_err();
    assert_eq!((e.line, e.column), (1, 40));
    assert_eq!(e.found, "end of input");
}

#[test]
fn a_proc_drbd_minor_without_a_connection_state_reports_its_line() {
    let input = "version: 8.4.11 (api:1/proto:86-101)\n 0: ro:Primary/Secondary\n";
    let e = p::parse_proc_drbd(input).unwrap_err();
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(e.expected, "`cs:` connection state");
}

#[test]
fn a_proc_drbd_counter_that_is_not_a_number_reports_its_column() {
    let input = "version: 8.4.6 (api:1/proto:86-101)\n 1: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    ns:12 nr:x\n";
    let e = p::parse_proc_drbd(input).unwrap_err();
    assert_eq!((e.line, e.column), (3, 14));
}

#[test]
fn a_linstor_row_with_a_missing_cell_reports_its_line() {
    let input = "╭──────────────╮\n┊ Node ┊ State ┊\n╞══════════════╡\n┊ n1 ┊\n╰──────────────╯\n";
    let e = p::parse_linstor_node_list(input).unwrap_err();
    assert_eq!((e.line, e.column), (4, 1));
    assert_eq!(e.expected, "a row of 2 cells, as in the header");
}

#[test]
fn text_after_a_linstor_table_is_rejected() {
    let input = "╭─────╮\n┊ Node ┊\n╞═════╡\n┊ n1 ┊\n╰─────╯\nUnsupported storage providers:\n";
    let e = p::parse_linstor_node_list(input).unwrap_err();
    assert_eq!((e.line, e.column), (6, 1));
    assert_eq!(e.expected, "end of input after the table");
}

#[test]
fn a_linstor_table_without_the_key_column_points_at_the_header() {
    let input = "+------+\n| Name |\n|======|\n| n1   |\n+------+\n";
    let e = p::parse_linstor_node_list(input).unwrap_err();
    assert_eq!((e.line, e.column), (2, 1));
    assert_eq!(
        e.expected,
        "the `Node` (or `NodeName`) and `NodeType` columns of a `linstor node list` table"
    );
}

#[test]
fn an_ip_detail_line_before_any_interface_is_rejected() {
    let e = p::parse_ip_text("    link/ether 00:11:22:33:44:55\n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 5));
}

#[test]
fn an_ip_head_with_unclosed_flags_reports_the_end_of_the_line() {
    let input = "2: eth0: <BROADCAST,MULTICAST\n";
    let e = p::parse_ip_text(input).unwrap_err();
    assert_eq!(e.line, 1);
    assert_eq!(e.expected, "`>` closing the flags");
}

#[test]
fn a_vlan_detail_without_an_id_is_rejected() {
    let input = "5: v@eth0: <UP> mtu 1500\n    vlan protocol 802.1Q\n";
    let e = p::parse_ip_text(input).unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.expected, "`id N` in the vlan details");
}

#[test]
fn truncated_ip_json_reports_the_end_of_input() {
    let input = "[{\"ifindex\":1,\"ifname\":\"lo\"";
    let e = p::parse_ip_json(input).unwrap_err();
    assert_eq!(e.line, 1);
    assert_eq!(e.offset, input.len());
    assert_eq!(e.found, "end of input");
}

#[test]
fn ip_json_with_trailing_garbage_is_rejected() {
    let e = p::parse_ip_json("[]\n# done\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 1));
}

#[test]
fn crlf_input_parses_like_lf() {
    let lf = "r0 role:Primary\n  disk:UpToDate\n  n2 role:Secondary\n    peer-disk:UpToDate\n";
    let crlf = lf.replace('\n', "\r\n");
    assert_eq!(
        p::parse_drbd_status(lf).unwrap(),
        p::parse_drbd_status(&crlf).unwrap()
    );
}

#[test]
fn an_error_displays_where_what_was_expected_and_what_was_found() {
    let e = p::parse_proc_drbd("hello\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "proc-drbd: line 1, column 1 (byte 0): expected `version:`, found \"hello\""
    );
    assert_eq!(e.metric_label(), "proc-drbd");
}

#[test]
fn a_blob_pair_without_an_equals_sign_is_reported_at_the_key_end() {
    let e = p::parse_blob("state=WAIT_RESYNC;from").unwrap_err();
    assert_eq!((e.line, e.column, e.offset), (1, 23, 22));
    assert_eq!(e.expected, "`=` after the key");
    assert_eq!(e.found, "end of input");
}

#[test]
fn a_repeated_blob_key_is_rejected_at_its_second_occurrence() {
    let e = p::parse_blob("node=edge-1;done=;node=edge-2").unwrap_err();
    assert_eq!(e.offset, 18);
    assert_eq!(e.expected, "a key not already in the blob");
}

#[test]
fn an_upgrade_blob_without_a_state_names_the_missing_field() {
    let input = "from=9.2.5;to=9.2.8";
    let e = p::parse_upgrade(input).unwrap_err();
    assert_eq!(e.offset, input.len());
    assert_eq!(e.expected, "a `state=` field");
}

#[test]
fn a_non_numeric_epoch_in_a_migration_points_at_the_value() {
    let input = "phase=PREFLIGHT;since=soon";
    let e = p::parse_migration(input).unwrap_err();
    assert_eq!((e.column, e.offset), (23, 22));
    assert_eq!(e.expected, "an unsigned number");
    assert_eq!(e.found, "\"soon\"");
}

#[test]
fn a_status_slave_without_a_failure_count_points_at_the_entry() {
    let input = "at=1;state=ready;role=primary;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;slaves=eno1:up:0,eno2:up;storage_vlan=bond0.100:up;mgmt_vlan=;satellite=active;drbd=ok;resources=0;uptodate=0;syncing=0;taint=none;boot=;upgrade=;drbd_version=";
    let e = p::parse_node_status(input).unwrap_err();
    assert_eq!(e.offset, input.find("eno2:up;").unwrap());
    assert_eq!(e.expected, "`<if>:<mii>:<link failures>`");
}

#[test]
fn a_member_row_with_a_bad_storage_ip_reports_its_line_and_column() {
    let input = "node,storage_ip,role,joined\nedge-1,10.10.100.11/24,primary,1714557600\nedge-2,10.10.100/24,member,1714557690";
    let e = p::parse_members(input).unwrap_err();
    assert_eq!((e.line, e.column), (3, 8));
    assert_eq!(e.expected, "an IPv4 address with a prefix length");
}

#[test]
fn a_member_list_without_its_header_is_rejected_on_line_one() {
    let e = p::parse_members("edge-1,10.10.100.11/24,primary,1714557600").unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert!(e.expected.contains("header"), "{e}");
}

#[test]
fn a_network_plan_with_a_string_vlan_id_is_a_positioned_shape_error() {
    let input = r#"{"version":1,"bond":{"name":"bond0","mode":"active-backup","miimon":100,"slaves":["eno1"]},"storageVlan":{"id":"100","prefixLength":24},"mgmtVlan":null,"nodes":[]}"#;
    let e = p::parse_network_plan(input).unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.offset > input.find("storageVlan").unwrap(), "{e}");
    assert!(e.expected.starts_with("a network plan: invalid type"), "{e}");
}

#[test]
fn truncated_network_plan_json_is_reported_at_its_end() {
    let input = r#"{"version":1,"bond":{"name":"bond0""#;
    let e = p::parse_network_plan(input).unwrap_err();
    assert_eq!(e.offset, input.len());
    assert_eq!(e.expected, "valid JSON");
}

#[test]
fn a_last_run_annotation_with_a_local_time_points_at_the_timestamp() {
    let input = "vx-rail.io/state: ready\nvx-rail.io/last-run: ts=2024-05-01 10:05:02;version=4.12.3;outcome=ok;step=finished;rc=0;duration=5\n";
    let e = p::parse_node_annotations(input).unwrap_err();
    assert_eq!((e.line, e.column), (2, 25));
    assert_eq!(e.expected, "an RFC 3339 UTC time");
}

#[test]
fn a_storage_ready_label_that_is_not_a_boolean_is_rejected() {
    let e = p::parse_node_labels("vx-rail.io/role=member\nvx-rail.io/storage-ready=yes\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 26));
    assert_eq!(e.expected, "`true` or `false`");
}

#[test]
fn a_taint_without_an_effect_is_rejected_at_the_line_end() {
    let e = p::parse_node_taints("vx-rail.io/storage-not-ready=resync\n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 36));
    assert!(e.expected.contains("Effect"), "{e}");
}

#[test]
fn a_kv_line_with_an_unterminated_message_reports_the_line_end() {
    let input = "ts=2024-05-01T10:00:05Z level=warn node=edge-1 component=network msg=\"bond failover";
    let e = p::parse_log_line(input).unwrap_err();
    assert_eq!(e.offset, input.len());
    assert_eq!(e.expected, "a closing `\"`");
}

#[test]
fn a_kv_line_with_a_bad_timestamp_points_after_ts() {
    let e =
        p::parse_log_line("ts=2024-05-01 10:00:05 level=info node=a component=main msg=\"x\"").unwrap_err();
    assert_eq!((e.column, e.offset), (4, 3));
    assert_eq!(e.expected, "an RFC 3339 UTC time");
}

#[test]
fn a_legacy_line_without_a_level_reports_where_the_bracket_belongs() {
    let e = p::parse_log_line("Wed May  1 10:00:05 UTC 2024 network: bond failover detected").unwrap_err();
    assert_eq!(e.offset, 28);
    assert_eq!(e.expected, "` [LEVEL]`");
}

#[test]
fn a_log_with_no_log_line_at_all_is_not_a_log() {
    let e = p::parse_legacy_log("hello\nworld\n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert!(e.expected.contains("script log line"), "{e}");
}

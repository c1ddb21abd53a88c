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
    assert_eq!(e.expected, "a `Node` column");
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

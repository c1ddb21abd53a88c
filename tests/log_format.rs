//! Logs fit for a pipeline: a long-running command (the audit writer, which needs no cluster with
//! `--no-publish`) run with `--log-format json` writes nothing to standard error but JSON
//! objects, one a line, through to its shutdown; with text, no colour codes when standard error is
//! not a terminal; a fatal error of a JSON-logging command is a JSON line too; and a misspelt
//! level is refused before anything starts.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn nodewright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodewright"))
}

/// Runs `nodewright audit serve --no-publish` with `log_args` until it says where its webhook
/// listens, stops it with SIGTERM (as Kubernetes does) and returns all it wrote to standard error.
fn audit_writer_log(dir: &Path, log_args: &[&str]) -> String {
    let key = dir.join("signer.key");
    let out = nodewright()
        .args(["audit", "keygen", "--origin", "log.test/site", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut writer = nodewright()
        .args(["audit", "serve", "--no-publish", "--listen", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0", "--dir"])
        .arg(dir.join("log"))
        .arg("--key")
        .arg(&key)
        .args(log_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(writer.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("webhook on") {
        assert!(
            stderr.read_line(&mut log).unwrap() > 0,
            "the writer exited before it listened: {log}"
        );
    }
    let term = Command::new("kill")
        .args(["-TERM", &writer.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    stderr.read_to_string(&mut log).unwrap();
    let status = writer.wait().unwrap();
    assert!(
        status.success(),
        "the writer did not stop cleanly on SIGTERM: {log}"
    );
    log
}

#[test]
fn a_long_running_command_with_log_format_json_writes_one_json_object_per_line_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let log = audit_writer_log(dir.path(), &["--log-format", "json"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.len() >= 2,
        "the admin server's and the webhook's lines: {log}"
    );
    for line in &lines {
        let object: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        assert!(object["target"].is_string(), "{line}");
        assert!(object["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("nodewright audit serve: log ")),
        "the start-up line goes through the logger: {log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
}

#[test]
fn text_logs_carry_no_colour_codes_when_standard_error_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let log = audit_writer_log(dir.path(), &[]);
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
}

#[test]
fn log_level_filters_by_module_and_level() {
    let dir = tempfile::tempdir().unwrap();
    // The kit's admin server logs at info too; only the command's own module stays at info.
    let log = audit_writer_log(dir.path(), &["--log-level", "warn,nodewright::audit=info"]);
    assert!(log.contains("nodewright audit serve: log "), "{log}");
    assert!(!log.contains("admin server listening"), "{log}");
    let log = audit_writer_log(tempfile::tempdir().unwrap().path(), &[]);
    assert!(
        log.contains("admin server listening"),
        "at the default level, info: {log}"
    );
}

#[test]
fn a_json_logging_command_that_fails_says_why_in_a_json_line() {
    let out = nodewright()
        .args(["ui", "--audit-dir", "/nonexistent/audit", "--log-format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("--audit-dir /nonexistent/audit: not a directory"),
        "{stderr}"
    );
}

#[test]
fn a_misspelt_log_level_is_refused_before_anything_starts() {
    let out = nodewright()
        .args(["bridge", "--log-level", "verbose"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"verbose\" is not a level (off, error, warn, info, debug, trace)"),
        "{stderr}"
    );
}

//! `nodewright host-exec` and the agent's host-root commands: a command runs with the tools and
//! files of the root it is given (the host's, in a pod), found in the host's PATH, and what cannot
//! run says where and why with `chroot(1)`'s exit statuses.
//!
//! Changing root needs `CAP_SYS_CHROOT`: CI runs as root. Run as another user, these tests say so
//! and check nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodewright_agent_shim::host::{EXIT_CHROOT_FAILED, HOST_PATH};
use nodewright_agent_shim::{HostOps, ProcessHost};

const NODEWRIGHT: &str = env!("CARGO_BIN_EXE_nodewright");

fn may_chroot() -> bool {
    let root = effective_uid() == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run these tests as root (they change root)"
        );
        eprintln!("not root: changing root is not permitted, nothing checked");
    }
    root
}

/// The effective uid, from /proc (no libc call needed).
fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e.parse().unwrap()))
        .unwrap()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// Copies `binary` and the shared libraries it loads (as `ldd` lists them) into `root`, at the
/// same paths.
fn install(root: &Path, binary: &str, at: &str) {
    let place = |from: &Path, to: &Path| {
        let dest = root.join(to.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap();
    };
    place(Path::new(binary), Path::new(at));
    let ldd = std::process::Command::new("ldd").arg(binary).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(lib) = path {
            place(&lib, &lib);
        }
    }
}

/// A root file system with a shell and one "host tool", `/usr/sbin/ip`, that says where it ran.
fn host_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "/bin/dash", "/bin/sh");
    let ip = root.path().join("usr/sbin/ip");
    std::fs::create_dir_all(ip.parent().unwrap()).unwrap();
    std::fs::write(
        &ip,
        "#!/bin/sh\necho \"the host's ip: $* (PATH=$PATH, in $(pwd))\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&ip, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    root
}

#[test]
fn a_command_in_the_host_root_runs_the_hosts_tool_found_in_the_hosts_path_from_its_root_directory() {
    if !may_chroot() {
        return;
    }
    let root = host_root();
    let mut host = ProcessHost::new(Duration::from_secs(30)).in_host_root(NODEWRIGHT, root.path());
    let out = host.run(&argv(&["ip", "-j", "-d", "link", "show"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!("the host's ip: -j -d link show (PATH={HOST_PATH}, in /)\n")
    );
}

#[test]
fn a_tool_the_host_root_lacks_is_exit_127_naming_the_tool_and_the_root() {
    if !may_chroot() {
        return;
    }
    let root = host_root();
    let mut host = ProcessHost::new(Duration::from_secs(30)).in_host_root(NODEWRIGHT, root.path());
    // The agent's own system has drbdadm or not; the host root here has not.
    let out = host.run(&argv(&["drbdadm", "status", "all"]));
    assert_eq!(out.code, 127, "{out:?}");
    assert!(
        out.stderr.contains("drbdadm") && out.stderr.contains(&root.path().display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn a_host_root_that_does_not_exist_is_exit_125_saying_so() {
    if !may_chroot() {
        return;
    }
    let mut host =
        ProcessHost::new(Duration::from_secs(30)).in_host_root(NODEWRIGHT, "/nonexistent/nodewright-host");
    let out = host.run(&argv(&["ip", "link"]));
    assert_eq!(out.code, EXIT_CHROOT_FAILED, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot change root to /nonexistent/nodewright-host"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_timeout_ends_a_host_root_command_like_any_other() {
    if !may_chroot() {
        return;
    }
    let root = host_root();
    std::fs::write(
        root.path().join("usr/sbin/ip"),
        "#!/bin/sh\nwhile :; do :; done\n",
    )
    .unwrap();
    let mut host = ProcessHost::new(Duration::from_millis(300)).in_host_root(NODEWRIGHT, root.path());
    let out = host.run(&argv(&["ip", "link"]));
    assert_eq!(out.code, 124, "{out:?}");
}

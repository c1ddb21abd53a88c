//! The control plane's life cycle: it restarts with its address, credentials and objects intact, and
//! it never outlives the process that started it, however that process ends.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use nodewright_testenv::{ControlPlane, Options};

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not collected it yet.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .is_some_and(|s| !s.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_control_plane_keeps_its_address_credentials_and_objects() {
    let cp = ControlPlane::start(Options::default()).unwrap();
    let server = cp.server().to_owned();
    let client = cp.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &config_map("survives"))
        .await
        .unwrap();

    // A graceful stop, then a start on the same directory.
    let first = cp.pid().unwrap();
    tokio::task::block_in_place(|| cp.stop()).unwrap();
    assert!(wait_until_gone(first, Duration::from_secs(5)));
    assert!(
        api.get("survives").await.is_err(),
        "nothing answers while stopped"
    );
    tokio::task::block_in_place(|| cp.start_again()).unwrap();
    assert_eq!(cp.server(), server);
    let again: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    assert_eq!(again.get("survives").await.unwrap().data.unwrap()["k"], "v");

    // A crash (SIGKILL), then a start on the same directory.
    let second = cp.pid().unwrap();
    tokio::task::block_in_place(|| cp.kill()).unwrap();
    assert!(wait_until_gone(second, Duration::from_secs(5)));
    tokio::task::block_in_place(|| cp.start_again()).unwrap();
    let after_crash: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    assert_eq!(after_crash.get("survives").await.unwrap().data.unwrap()["k"], "v");

    let dir = cp.dir().to_path_buf();
    drop(cp);
    assert!(!dir.exists(), "a temporary state directory is removed on drop");
}

/// Runs `testenv-owner`, which starts a control plane and then ends in the given way; returns the
/// control plane's pid and state directory once the owner is gone.
fn run_owner(mode: &str) -> (u32, PathBuf) {
    let mut owner = Command::new(env!("CARGO_BIN_EXE_testenv-owner"))
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(owner.stdout.take().unwrap());
    let mut pid = None;
    let mut dir = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some((_, rest)) = line.split_once("control-plane ") {
            let (p, d) = rest.split_once(' ').unwrap();
            pid = Some(p.parse().unwrap());
            dir = Some(PathBuf::from(d));
        }
    }
    let status = owner.wait().unwrap();
    assert!(
        !status.success(),
        "the owner was meant to die ({mode}), but exited cleanly"
    );
    (pid.expect("the owner reported its control plane"), dir.unwrap())
}

fn assert_cleaned_up_after(mode: &str) {
    let (pid, dir) = run_owner(mode);
    assert!(
        wait_until_gone(pid, Duration::from_secs(30)),
        "control plane {pid} outlived its owner ({mode})"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} outlived its owner ({mode})", dir.display());
}

#[test]
fn the_control_plane_exits_when_its_owner_aborts() {
    assert_cleaned_up_after("abort");
}

#[test]
fn the_control_plane_exits_when_its_owner_panics() {
    assert_cleaned_up_after("panic");
}

#[test]
fn the_control_plane_exits_when_its_owner_is_interrupted() {
    assert_cleaned_up_after("interrupt");
}

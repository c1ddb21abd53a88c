//! `vxr-tool`, the small binary the simulated tools are linked to, speaks the scheduler's protocol
//! as `vxr-sim` does under a tool's name: the same request reaches the handler, and the same reply
//! comes out, whatever the bytes in the arguments and the answer.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nodewright_legacy_sim::sched::{Handler, NodeOutcome, NodeProcess, Reply, Request, run_round};

/// Text with every kind of character JSON escapes, and some it does not.
const AWKWARD: &str = "quote \" backslash \\ slash / tab \t cr \r bell \u{7} del \u{7f} é ∑ 🙂 end";

/// Records each request and answers with awkward text and the exit code the first argument names.
#[derive(Default)]
struct Echo {
    requests: Vec<Request>,
}

impl Handler for Echo {
    fn handle(&mut self, request: &Request) -> Reply {
        self.requests.push(request.clone());
        Reply {
            stdout: format!("{}\n{AWKWARD}\nline two\n", request.argv.join("|")),
            stderr: format!("warning: {AWKWARD}\n"),
            code: request.argv.get(1).and_then(|c| c.parse().ok()).unwrap_or(0),
        }
    }
}

fn round(binary: &str, name: &str) -> (Vec<Request>, Vec<NodeOutcome>) {
    let dir = std::env::temp_dir().join(format!("vxr-tool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(binary, dir.join("linstor")).unwrap();
    let socket = dir.join("sched.sock");
    // Exit codes as the shell sees them; 300 is out of range and comes out as 255.
    let script = "linstor 0 'a b' \"$AWKWARD\" ''; echo \"rc=$?\"; linstor 3 --x=\"{\\\"k\\\": [1]}\"; \
                  echo \"rc=$?\"; linstor 300; echo \"rc=$?\"; linstor -1; echo \"rc=$?\"";
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("VXR_SIM_SOCKET", &socket)
        .env("NODE_NAME", "edge-1")
        .env("AWKWARD", AWKWARD);
    let process = NodeProcess {
        node: "edge-1".into(),
        command,
    };
    let mut echo = Echo::default();
    let outcomes = run_round(&socket, vec![process], &mut echo, Duration::from_secs(20)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // The working directory differs between the two rounds; everything else must not.
    for r in &mut echo.requests {
        assert_eq!(Path::new(&r.cwd).file_name().unwrap(), dir.file_name().unwrap());
        r.cwd.clear();
    }
    (echo.requests, outcomes)
}

#[test]
fn the_small_tool_binary_sends_and_prints_what_the_simulator_binary_does() {
    let (small_requests, small) = round(env!("CARGO_BIN_EXE_vxr-tool"), "small");
    let (full_requests, full) = round(env!("CARGO_BIN_EXE_vxr-sim"), "full");
    assert_eq!(small_requests.len(), 4);
    assert_eq!(
        small_requests[0].argv,
        ["linstor", "0", "a b", AWKWARD, ""],
        "the arguments arrive as given"
    );
    assert_eq!(small_requests, full_requests);
    assert_eq!(small, full);
    let out = &small[0].stdout;
    assert!(out.contains(&format!("{AWKWARD}\nline two\n")), "{out}");
    assert!(
        out.contains("rc=0\n") && out.contains("rc=3\n") && out.contains("rc=255\n"),
        "{out}"
    );
    assert!(out.ends_with("rc=0\n"), "a negative code is clamped to 0: {out}");
    assert!(small[0].stderr.contains(&format!("warning: {AWKWARD}\n")));
}

#[test]
fn the_small_tool_binary_outside_a_simulation_says_so_and_exits_127() {
    let output = Command::new(env!("CARGO_BIN_EXE_vxr-tool"))
        .env_remove("VXR_SIM_SOCKET")
        .env_remove("NODE_NAME")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("simulated tool started outside a simulation"),
        "{stderr}"
    );
}

//! `vxr-sim run SCENARIO [--mode WORKFLOW=MODE …]`: runs a scenario in any modes, prints its
//! trace (and Nodewright's report when a workflow is not `legacy`), names every violation of an
//! invariant, and ends with the line `invariants: N checked, M violated`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use nodewright_api::WorkflowMode;
use nodewright_legacy_sim::run::{RunConfig, Scenario};
use nodewright_parity::Workflow;

use crate::parity;

/// The usage text.
pub const USAGE: &str = "\
usage: vxr-sim run SCENARIO.yaml [--mode WORKFLOW=MODE ...]
  Runs the scenario with the in-memory cluster, the legacy script on every node, and prints its
  trace: every host command, every Kubernetes write, every node's log; with a workflow in shadow
  or operator mode, also Nodewright's report (divergences, its actions and its agents' tasks).
  Then the invariants are checked over the whole run: each violation is named on a line of its
  own, and the last line is `invariants: N checked, M violated`.
  --mode WORKFLOW=MODE   run WORKFLOW (migration, storage-upgrade, taints, ...) in MODE (legacy,
                         shadow or operator), projected into the takeover ConfigMap before the
                         first tick; repeat for several workflows. Default: every workflow legacy.
  VXR_SCRIPT             the legacy script to run (default: the repository's).
  Exit status: 0 when every invariant holds, 1 when one is violated, 2 when the command line is
  wrong or the scenario cannot be run.
Under the name of a simulated tool (a link named ip, drbdadm, kubectl, ...) it is that tool.";

/// What `vxr-sim run` was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The workflows not in `legacy` mode, with their modes.
    pub modes: Vec<(Workflow, WorkflowMode)>,
}

/// Reads `run SCENARIO [--mode WORKFLOW=MODE …]`.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let mut args = args.iter();
    if args.next().map(String::as_str) != Some("run") {
        return Err("expected `run`".into());
    }
    let mut scenario = None;
    let mut modes = Vec::new();
    while let Some(arg) = args.next() {
        let value = if arg == "--mode" {
            args.next().ok_or("--mode needs WORKFLOW=MODE")?
        } else if let Some(v) = arg.strip_prefix("--mode=") {
            v
        } else if arg.starts_with('-') {
            return Err(format!("unknown option {arg}"));
        } else if scenario.is_none() {
            scenario = Some(PathBuf::from(arg));
            continue;
        } else {
            return Err(format!("one scenario only; also given {arg}"));
        };
        let (w, m) = parse_mode(value)?;
        if modes
            .iter()
            .any(|(seen, _): &(Workflow, WorkflowMode)| *seen == w)
        {
            return Err(format!("--mode {value}: {w} already has a mode"));
        }
        if m != WorkflowMode::Legacy {
            modes.push((w, m));
        }
    }
    parity::check_modes(&modes)?;
    Ok(Request {
        scenario: scenario.ok_or("no scenario given")?,
        modes,
    })
}

/// Reads one `WORKFLOW=MODE`.
pub fn parse_mode(value: &str) -> Result<(Workflow, WorkflowMode), String> {
    let (w, m) = value
        .split_once('=')
        .ok_or_else(|| format!("--mode {value}: expected WORKFLOW=MODE"))?;
    let known: Vec<&str> = Workflow::ALL.iter().map(|w| w.key()).collect();
    let workflow = Workflow::from_key(w)
        .ok_or_else(|| format!("--mode {value}: no workflow `{w}` (one of {})", known.join(", ")))?;
    let mode = match m {
        "legacy" => WorkflowMode::Legacy,
        "shadow" => WorkflowMode::Shadow,
        "operator" => WorkflowMode::Operator,
        _ => {
            return Err(format!(
                "--mode {value}: no mode `{m}` (legacy, shadow or operator)"
            ));
        }
    };
    Ok((workflow, mode))
}

/// `vxr-sim` with its arguments (without `argv[0]`).
pub fn main(args: Vec<String>) -> ExitCode {
    let request = match parse(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vxr-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&request) {
        Ok((text, violated)) => {
            // A reader that stops early (`| head`) is not an error.
            let _ = std::io::stdout().write_all(text.as_bytes());
            if violated {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("vxr-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the request: the text to print, and whether an invariant was violated.
fn run(request: &Request) -> Result<(String, bool), String> {
    let path = &request.scenario;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let scenario = Scenario::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let script = std::env::var_os("VXR_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../vx-rail-node-init.sh"));
    // The tools are linked to the small `vxr-tool` built beside this binary, when it is there.
    let tool = me.with_file_name("vxr-tool");
    let config = RunConfig {
        script,
        sim_binary: if tool.is_file() { tool } else { me },
        work_dir: std::env::temp_dir().join(format!("vxr-sim-run-{}", std::process::id())),
        stuck_after: Duration::from_secs(60),
    };
    let run =
        parity::run(scenario, &request.modes, 0, &config).map_err(|e| format!("{}: {e}", path.display()))?;
    let trace = &run.trace;
    let mut out = format!(
        "##### host commands\n{}##### kubernetes writes\n{}",
        trace.host_commands(),
        trace.kube_writes()
    );
    for (node, log) in &trace.logs {
        out.push_str(&format!("##### log of {node}\n{log}"));
    }
    if !request.modes.is_empty() {
        let modes: Vec<String> = request
            .modes
            .iter()
            .map(|(w, m)| format!("{w}={}", m.as_str()))
            .collect();
        out.push_str(&format!("##### nodewright ({})\n{}", modes.join(" "), run.report));
    }
    let report = run.invariants();
    out.push_str("##### invariants\n");
    out.push_str(&report.to_string());
    Ok((out, !report.violations.is_empty()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn modes_are_read_workflow_by_workflow_and_legacy_is_the_default() {
        let r = parse(&args(
            "run s.yaml --mode migration=operator --mode=taints=shadow --mode bond-flip=legacy",
        ))
        .unwrap();
        assert_eq!(r.scenario, PathBuf::from("s.yaml"));
        assert_eq!(
            r.modes,
            vec![
                (Workflow::Migration, WorkflowMode::Operator),
                (Workflow::Taints, WorkflowMode::Shadow)
            ]
        );
        assert_eq!(parse(&args("run s.yaml")).unwrap().modes, vec![]);
        assert_eq!(
            parse(&args("run s.yaml --mode storage-upgrade=operator"))
                .unwrap()
                .modes,
            vec![(Workflow::StorageUpgrade, WorkflowMode::Operator)]
        );
    }

    #[test]
    fn a_wrong_mode_is_refused_with_what_was_expected() {
        let e = parse(&args("run s.yaml --mode taints=owner")).unwrap_err();
        assert!(e.contains("no mode `owner`"), "{e}");
        let e = parse(&args("run s.yaml --mode taint=shadow")).unwrap_err();
        assert!(
            e.contains("no workflow `taint`") && e.contains("storage-upgrade"),
            "{e}"
        );
        let e = parse(&args("run s.yaml --mode bond-flip=operator")).unwrap_err();
        assert!(e.contains("no operator controller"), "{e}");
        let e = parse(&args("run s.yaml --mode taints=shadow --mode taints=operator")).unwrap_err();
        assert!(e.contains("already has a mode"), "{e}");
        assert!(
            parse(&args("run --mode taints=shadow"))
                .unwrap_err()
                .contains("no scenario")
        );
        assert!(parse(&args("walk s.yaml")).is_err());
    }
}

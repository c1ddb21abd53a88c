//! `vxr-sim`: under the name of a host tool (`ip`, `drbdadm`, `kubectl`, ...) it is that tool on a
//! simulated node, forwarding its command line to the scenario's scheduler and printing the reply.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nodewright_legacy_sim::sched::{Request, call};

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let tool = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if tool == "vxr-sim" {
        return match (args.next().as_deref(), args.next()) {
            (Some("run"), Some(path)) => run_scenario(Path::new(&path)),
            _ => {
                eprintln!(
                    "usage: vxr-sim run SCENARIO.yaml   (run a scenario with the in-memory cluster and print its trace)\n\
                     \x20      under the name of a simulated tool (a link named ip, drbdadm, kubectl, ...), be that tool"
                );
                ExitCode::from(2)
            }
        };
    }
    let (Some(socket), Ok(node)) = (std::env::var_os("VXR_SIM_SOCKET"), std::env::var("NODE_NAME")) else {
        eprintln!("{tool}: simulated tool started outside a simulation (VXR_SIM_SOCKET and NODE_NAME unset)");
        return ExitCode::from(127);
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let request = Request {
        node,
        argv: std::iter::once(tool.clone()).chain(args).collect(),
        cwd: cwd.to_string_lossy().into_owned(),
    };
    match call(Path::new(&socket), &request) {
        Ok(reply) => {
            let _ = std::io::stdout().write_all(reply.stdout.as_bytes());
            let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
            ExitCode::from(u8::try_from(reply.code.clamp(0, 255)).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::from(127)
        }
    }
}

/// `vxr-sim run`: one scenario, the in-memory cluster, the trace on standard output.
fn run_scenario(path: &Path) -> ExitCode {
    use nodewright_legacy_sim::{cluster::Cluster, run};
    let result = (|| -> Result<run::Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let scenario = run::Scenario::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let script = std::env::var_os("VXR_SCRIPT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../vx-rail-node-init.sh"));
        let config = run::RunConfig {
            script,
            sim_binary: me,
            work_dir: std::env::temp_dir().join(format!("vxr-sim-run-{}", std::process::id())),
            stuck_after: std::time::Duration::from_secs(60),
        };
        let mut world = run::world_for(&scenario).map_err(|e| e.to_string())?;
        let trace = run::run(&scenario, &mut world, &mut Cluster::new(), &config).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&config.work_dir);
        trace
    })();
    match result {
        Ok(trace) => {
            let mut text = format!(
                "##### host commands\n{}##### kubernetes writes\n{}",
                trace.host_commands(),
                trace.kube_writes()
            );
            for (node, log) in &trace.logs {
                text.push_str(&format!("##### log of {node}\n{log}"));
            }
            // A reader that stops early (`| head`) is not an error.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vxr-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

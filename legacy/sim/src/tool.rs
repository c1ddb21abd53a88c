//! A simulated host tool: the `vxr-sim` binary, started under the name of a tool (`ip`, `drbdadm`,
//! `kubectl`, ...) on a simulated node, forwards its command line to the run's scheduler and prints
//! the reply. The binary lives in `nodewright-sim-harness` (which also runs scenarios); this is the
//! part of it that must stay in the simulator.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::sched::{Request, call};

/// Runs tool `tool` with arguments `args` (without `argv[0]`) on the node named by `NODE_NAME`,
/// through the scheduler listening on `VXR_SIM_SOCKET`; exits as the simulated tool exits.
pub fn tool_main(tool: &str, args: impl Iterator<Item = String>) -> ExitCode {
    let (Some(socket), Ok(node)) = (std::env::var_os("VXR_SIM_SOCKET"), std::env::var("NODE_NAME")) else {
        eprintln!("{tool}: simulated tool started outside a simulation (VXR_SIM_SOCKET and NODE_NAME unset)");
        return ExitCode::from(127);
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let request = Request {
        node,
        argv: std::iter::once(tool.to_owned()).chain(args).collect(),
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

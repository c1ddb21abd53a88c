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
        eprintln!("vxr-sim: run under the name of a simulated tool (a link named ip, drbdadm, kubectl, ...)");
        return ExitCode::from(2);
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

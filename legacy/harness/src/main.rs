//! `vxr-sim`: under the name of a host tool (`ip`, `drbdadm`, `kubectl`, ...) it is that tool on a
//! simulated node; as `vxr-sim run SCENARIO [--mode WORKFLOW=MODE …]` it runs a scenario and checks
//! the invariants over its trace.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let tool = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if tool == "vxr-sim" {
        nodewright_sim_harness::cli::main(args.collect())
    } else {
        nodewright_legacy_sim::tool::tool_main(&tool, args)
    }
}

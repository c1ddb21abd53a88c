//! What the benchmarks measure about the machine and its processes, and how they print it: CPU
//! time of a process from `/proc`, the machine's description for the figures in
//! `docs/performance.md`, and a Markdown table with one column per run. Linux only, read-only; no
//! Nodewright logic.

use std::fmt::Write as _;

/// User plus system CPU time of process `pid` (a number, or `self`), in clock ticks.
pub fn cpu_ticks(pid: &str) -> std::io::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat =
        std::fs::read_to_string(&path).map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    // The command name may contain spaces; the fields after it may not.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize, name: &str| -> std::io::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{path}: no {name} field"),
            )
        })
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's usual value, if it cannot be asked).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The machine, as a figure needs it: cores, CPU model, memory and the load average now.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("MemTotal:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or_else(
            || "unknown".into(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("nproc {nproc}, CPU `{cpu}`, memory {mem}, load average {load}")
}

/// A Markdown table with a label column and one column per run; a run that failed shows `—` in
/// every row.
pub struct Table<'a, R> {
    runs: &'a [R],
    failed: fn(&R) -> bool,
    text: String,
}

impl<'a, R> Table<'a, R> {
    /// A table whose columns are `runs`, headed `column(run)`.
    pub fn new(runs: &'a [R], column: impl Fn(&R) -> String, failed: fn(&R) -> bool) -> Self {
        let mut header = "| |".to_owned();
        let mut rule = "|---|".to_owned();
        for r in runs {
            let _ = write!(header, " {} |", column(r));
            rule.push_str("---|");
        }
        Table {
            runs,
            failed,
            text: format!("{header}\n{rule}\n"),
        }
    }

    /// One row: `label`, then `cell(run)` for each run.
    pub fn row(&mut self, label: &str, cell: impl Fn(&R) -> String) {
        let _ = write!(self.text, "| {label} |");
        for r in self.runs {
            let value = if (self.failed)(r) {
                "—".to_owned()
            } else {
                cell(r)
            };
            let _ = write!(self.text, " {value} |");
        }
        self.text.push('\n');
    }

    /// The table's Markdown.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_one_column_per_run_and_a_dash_for_a_failed_one() {
        let runs = [(500, true), (5000, false)];
        let mut t = Table::new(&runs, |r| format!("N = {}", r.0), |r| !r.1);
        t.row("p99, ms", |r| (r.0 / 10).to_string());
        assert_eq!(
            t.finish(),
            "| | N = 500 | N = 5000 |\n|---|---|---|\n| p99, ms | 50 | — |\n"
        );
    }

    #[test]
    fn this_process_has_spent_some_cpu_and_the_machine_says_its_cores() {
        assert!(cpu_ticks("self").is_ok());
        assert!(cpu_ticks("no-such-process").is_err());
        assert!(machine().starts_with("nproc "));
    }
}

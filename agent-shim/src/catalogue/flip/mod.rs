//! `bond-flip <bond> <from> <to> <storage-interface> <peers>`: a bond's mode and/or active slave
//! changed with the legacy script's own commands (`bond_change_mode` and the `active_slave` flip
//! of `legacy/lib/network.sh`), then a storage-network probe, and a **local revert** when the probe
//! fails — all on the node, without the API: the agent's own link to the API server may run over
//! the bond it changes.
//!
//! 1. The check (`ip -j -d link show`) must find the bond in `from` (`to` already: nothing to do)
//!    and the target slave with carrier (for a mode change, some slave with carrier); otherwise
//!    the step is refused and nothing changes.
//! 2. Before any mutation, `from` is journalled in `<state dir>/bond-flip/<bond>.json` (written to
//!    a scratch file, fsync'd and renamed into place): whatever happens next, the agent knows how
//!    to put the bond back.
//! 3. The flip runs; then every DRBD peer's replication address (`<peers>`) must answer `ping`
//!    sent out of the storage VLAN interface, within the step's deadline less the time a revert
//!    needs. A probe that fails, or a mutation that fails, reverts the bond to `from` from the
//!    journal; the output then starts with [`REVERTED`] and the step fails.
//! 4. A flip whose probe passed is *applied but unconfirmed*: its journal entry stays until the
//!    agent has reported the task's success to the API server ([`confirm`]: then, and only then,
//!    `node.conf`'s `BOND_MODE` is rewritten so that the mode survives a reboot, and the entry is
//!    removed). The runtime reverts it ([`revert_pending`]) when the report does not land by the
//!    entry's deadline, and at start ([`recover`]) for an agent that stopped mid-flip.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nodewright_api::bondflip::{BondState, REVERTED, has_active_slave, mode_name, mode_named};
use nodewright_parsers::parse_ip_json;
use serde::{Deserialize, Serialize};

use super::{StepError, Verdict};
use crate::host::{HostOps, HostOutput};

/// The directory under the agent's state directory that holds the flips not yet confirmed.
pub const FLIP_DIR: &str = "bond-flip";

/// The legacy script's configuration file, whose `BOND_MODE` a confirmed mode flip rewrites.
pub const NODE_CONF: &str = "/etc/vx-rail/node.conf";

/// What a revert needs of the step's deadline: the probe stops this long before it.
pub const REVERT_RESERVE: Duration = Duration::from_secs(15);

/// How many rounds of pings the probe sends at most (LACP negotiation and the switch learning
/// the new port take a few seconds; each round's `ping` waits up to three).
pub const PROBE_ROUNDS: usize = 5;

/// A bond state as a step argument names it (`mode` or `mode:slave`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The mode's name (`802.3ad`, `active-backup`, …).
    pub mode: String,
    /// The active slave, when named.
    pub active_slave: Option<String>,
}

impl Want {
    fn parse(arg: &str) -> Result<Want, String> {
        let s = BondState::from_arg(arg)?;
        Ok(Want {
            mode: mode_name(s.mode).to_owned(),
            active_slave: s.active_slave,
        })
    }

    /// `mode` or `mode:slave`.
    pub fn arg(&self) -> String {
        match &self.active_slave {
            Some(s) => format!("{}:{s}", self.mode),
            None => self.mode.clone(),
        }
    }

    fn matches(&self, mode: &str, active: Option<&str>) -> bool {
        self.mode == mode && self.active_slave.as_deref().is_none_or(|s| active == Some(s))
    }

    fn has_active_slave(&self) -> bool {
        mode_named(&self.mode).is_some_and(has_active_slave)
    }
}

/// The arguments of a `bond-flip` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    /// The bond.
    pub bond: String,
    /// The state it must be in.
    pub from: Want,
    /// The state to put it in.
    pub to: Want,
    /// The storage VLAN interface the probe goes out of.
    pub storage_interface: String,
    /// The peers' replication addresses.
    pub peers: Vec<String>,
}

const STEP: &str = "bond-flip";

fn bad(index: usize, name: &'static str, value: &str, reason: &'static str) -> StepError {
    StepError::BadArgument {
        step: STEP,
        index,
        name,
        value: value.to_owned(),
        reason,
    }
}

fn interface_arg(index: usize, name: &'static str, value: &str) -> Result<String, StepError> {
    let ok = !value.is_empty()
        && value.len() <= 15
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(bad(
            index,
            name,
            value,
            "not an interface name (1 to 15 letters, digits, `.`, `_`, `-`)",
        ))
    }
}

/// Reads a `bond-flip` task's arguments.
pub fn parse(args: &[String]) -> Result<Flip, StepError> {
    let bond = interface_arg(1, "bond", &args[0])?;
    let from = Want::parse(&args[1]).map_err(|_| {
        bad(
            2,
            "from",
            &args[1],
            "not a bond state (`mode` or `mode:active-slave`, with a mode that has one)",
        )
    })?;
    let to = Want::parse(&args[2]).map_err(|_| {
        bad(
            3,
            "to",
            &args[2],
            "not a bond state (`mode` or `mode:active-slave`, with a mode that has one)",
        )
    })?;
    if to.matches(&from.mode, from.active_slave.as_deref())
        && from.matches(&to.mode, to.active_slave.as_deref())
    {
        return Err(bad(3, "to", &args[2], "the same state as from: nothing to flip"));
    }
    let storage_interface = interface_arg(4, "storage-interface", &args[3])?;
    let peers = if args[4] == "-" {
        Vec::new()
    } else {
        args[4]
            .split(',')
            .map(|p| {
                p.parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| bad(5, "peers", &args[4], "not `-` or comma-separated IP addresses"))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Flip {
        bond,
        from,
        to,
        storage_interface,
        peers,
    })
}

/// The bond as `ip -j -d link show` shows it: its mode, active slave and slaves in order with
/// their carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The mode's name.
    pub mode: String,
    /// The active slave.
    pub active_slave: Option<String>,
    /// Each slave and whether it has carrier.
    pub slaves: Vec<(String, bool)>,
}

/// Reads the bond out of `ip -j -d link show`; `Err` when the output cannot be read, `Ok(None)`
/// when there is no such bond.
pub fn seen(check_stdout: &str, bond: &str) -> Result<Result<Seen, String>, String> {
    let links = parse_ip_json(check_stdout).map_err(|e| e.to_string())?.links;
    let Some(b) = links.iter().find(|l| l.name == bond) else {
        return Ok(Err(format!("there is no interface {bond}")));
    };
    let Some(info) = &b.bond else {
        return Ok(Err(format!("{bond} is not a bond")));
    };
    let slaves = links
        .iter()
        .filter(|l| l.master.as_deref() == Some(bond))
        .map(|l| {
            let carrier =
                !l.flags.iter().any(|f| f == "NO-CARRIER") && l.flags.iter().any(|f| f == "LOWER_UP");
            (l.name.clone(), carrier)
        })
        .collect();
    Ok(Ok(Seen {
        mode: info.mode_name.clone().unwrap_or_default(),
        active_slave: info.options.get("active_slave").cloned(),
        slaves,
    }))
}

/// The check's verdict: already in `to`, refused (not in `from`, or the target has no carrier),
/// or to do.
pub fn judge(check_stdout: &str, flip: &Flip) -> Result<Verdict, String> {
    let bond = match seen(check_stdout, &flip.bond)? {
        Ok(b) => b,
        Err(why) => return Ok(Verdict::Refused(why)),
    };
    if flip.to.matches(&bond.mode, bond.active_slave.as_deref()) {
        return Ok(Verdict::AlreadyDone(format!(
            "{} is in {} already",
            flip.bond,
            flip.to.arg()
        )));
    }
    if !flip.from.matches(&bond.mode, bond.active_slave.as_deref()) {
        return Ok(Verdict::Refused(format!(
            "{} is in {}{}, not in {}",
            flip.bond,
            bond.mode,
            bond.active_slave
                .as_deref()
                .map(|s| format!(":{s}"))
                .unwrap_or_default(),
            flip.from.arg()
        )));
    }
    match &flip.to.active_slave {
        Some(s) => match bond.slaves.iter().find(|(n, _)| n == s) {
            None => return Ok(Verdict::Refused(format!("{s} is not a slave of {}", flip.bond))),
            Some((_, false)) => return Ok(Verdict::Refused(format!("{s} has no carrier"))),
            Some((_, true)) => {}
        },
        None if !bond.slaves.iter().any(|(_, up)| *up) => {
            return Ok(Verdict::Refused(format!("no slave of {} has carrier", flip.bond)));
        }
        None => {}
    }
    Ok(Verdict::ToDo)
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// The legacy script's commands that take `bond` (in mode `now`, slaves `slaves`) to `want`:
/// for a mode change `bond_change_mode`'s sequence (down, release every slave, set the mode,
/// enslave each one down-master-up, up), then `ip link set … active_slave` when `want` names
/// one.
pub fn commands(bond: &str, now: &str, slaves: &[String], want: &Want) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if want.mode != now {
        out.push(words(&["ip", "link", "set", "dev", bond, "down"]));
        for s in slaves {
            out.push(words(&["ip", "link", "set", "dev", s, "nomaster"]));
        }
        out.push(words(&[
            "ip", "link", "set", "dev", bond, "type", "bond", "mode", &want.mode,
        ]));
        for s in slaves {
            out.push(words(&["ip", "link", "set", "dev", s, "down"]));
            out.push(words(&["ip", "link", "set", "dev", s, "master", bond]));
            out.push(words(&["ip", "link", "set", "dev", s, "up"]));
        }
        out.push(words(&["ip", "link", "set", "dev", bond, "up"]));
    }
    if let Some(s) = &want.active_slave
        && want.has_active_slave()
    {
        out.push(words(&[
            "ip",
            "link",
            "set",
            "dev",
            bond,
            "type",
            "bond",
            "active_slave",
            s,
        ]));
    }
    out
}

/// The probe of one peer: one round of `ping` out of the storage VLAN interface.
pub fn ping(interface: &str, peer: &str) -> Vec<String> {
    words(&["ping", "-c", "3", "-W", "1", "-I", interface, peer])
}

/// The command that persists `mode` in `node.conf`: GNU `sed -i` writes a new file and renames
/// it over the old one, so a reader sees the old file or the new one, never half of one.
pub fn persist(mode: &str) -> Vec<String> {
    words(&[
        "sed",
        "-i",
        "-e",
        &format!("s/^BOND_MODE=.*/BOND_MODE={mode}/"),
        NODE_CONF,
    ])
}

/// A flip that is applied on the host but not confirmed: what a revert needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The bond.
    pub bond: String,
    /// The state to revert to.
    pub from: Want,
    /// The state flipped to.
    pub to: Want,
    /// The bond's slaves, in order.
    pub slaves: Vec<String>,
    /// Unix seconds by which the flip must be confirmed, or it is reverted.
    pub deadline: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The journal file of `bond`'s unconfirmed flip.
pub fn pending_path(state_dir: &Path, bond: &str) -> PathBuf {
    state_dir.join(FLIP_DIR).join(format!("{bond}.json"))
}

/// Writes `p` durably: a scratch file, fsync'd, renamed into place, the directory fsync'd.
fn write_pending(state_dir: &Path, p: &Pending) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = state_dir.join(FLIP_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = pending_path(state_dir, &p.bond);
    let scratch = dir.join(format!(".{}.json.partial", p.bond));
    let text = serde_json::to_vec(p).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&scratch)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&scratch, &path)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// Every unconfirmed flip journalled under `state_dir`, with the files that could not be read.
pub fn pending(state_dir: &Path) -> (Vec<Pending>, Vec<String>) {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir.join(FLIP_DIR)) else {
        return (found, unreadable);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()))
        {
            Ok(p) => found.push(p),
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
    (found, unreadable)
}

/// Runs `argv`, recording it in `out`.
fn run<H: HostOps + ?Sized>(
    host: &mut H,
    out: &mut String,
    argv: &[String],
    deadline: Option<Instant>,
) -> HostOutput {
    let r = host.run_until(argv, deadline);
    out.push_str(&format!("$ {}\n", argv.join(" ")));
    out.push_str(&r.stdout);
    out.push_str(&r.stderr);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    r
}

/// Puts `p`'s bond back in its `from` state, whatever state it is in now, and removes the
/// journal entry once that worked. No API involved. `Err` says what failed (the entry stays:
/// a later [`recover`] tries again).
pub fn revert<H: HostOps + ?Sized>(
    host: &mut H,
    state_dir: &Path,
    p: &Pending,
    out: &mut String,
) -> Result<(), String> {
    let check = words(&["ip", "-j", "-d", "link", "show"]);
    let r = run(host, out, &check, None);
    let now_mode = match (r.success(), seen(&r.stdout, &p.bond)) {
        (true, Ok(Ok(b))) => {
            if p.from.matches(&b.mode, b.active_slave.as_deref()) {
                None
            } else {
                Some(b.mode)
            }
        }
        // Unreadable: take it apart and rebuild it as it was.
        _ => Some(p.to.mode.clone()),
    };
    if let Some(now) = now_mode {
        for argv in commands(&p.bond, &now, &p.slaves, &p.from) {
            let r = run(host, out, &argv, None);
            if !r.success() {
                return Err(format!("`{}` failed with exit code {}", argv.join(" "), r.code));
            }
        }
    }
    std::fs::remove_file(pending_path(state_dir, &p.bond))
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            format!(
                "the bond is back in {}, but its journal entry stays: {e}",
                p.from.arg()
            )
        })
}

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// `0` for a flip applied and probed (unconfirmed), or found done; otherwise failed.
    pub code: i32,
    /// The transcript; starts with [`REVERTED`] when the flip was undone.
    pub output: String,
    /// One line.
    pub message: String,
}

/// Runs a `bond-flip`: check, journal, flip, probe, and revert on a failed probe. A flip found
/// done is confirmed at once (nothing is pending). See the module's documentation.
pub fn execute<H: HostOps + ?Sized>(
    host: &mut H,
    flip: &Flip,
    deadline: Option<Instant>,
    state_dir: Option<&Path>,
) -> Ran {
    let fail = |code: i32, output: String, message: String| Ran {
        code,
        output,
        message,
    };
    let Some(state_dir) = state_dir else {
        return fail(
            1,
            String::new(),
            "the agent has no state directory to journal the flip in; nothing was changed".to_owned(),
        );
    };
    let mut out = String::new();
    // A flip of this bond left unconfirmed (the agent stopped mid-flip, or could not confirm):
    // put it back first, then decide from the bond as it is.
    let (left, _) = pending(state_dir);
    if let Some(p) = left.iter().find(|p| p.bond == flip.bond) {
        out.push_str(&format!(
            "an unconfirmed flip of {} to {} is reverted first\n",
            p.bond,
            p.to.arg()
        ));
        if let Err(e) = revert(host, state_dir, p, &mut out) {
            return fail(
                1,
                out,
                format!("reverting an earlier unconfirmed flip failed: {e}; nothing else was changed"),
            );
        }
    }
    let check = words(&["ip", "-j", "-d", "link", "show"]);
    let r = run(host, &mut out, &check, deadline);
    if !r.success() {
        return fail(
            r.code,
            out,
            format!(
                "the check `{}` failed with exit code {}; nothing was changed",
                check.join(" "),
                r.code
            ),
        );
    }
    let bond = match judge(&r.stdout, flip) {
        Ok(Verdict::ToDo) => match seen(&r.stdout, &flip.bond) {
            Ok(Ok(b)) => b,
            _ => {
                return fail(
                    1,
                    out,
                    "the bond disappeared between two reads; nothing was changed".to_owned(),
                );
            }
        },
        Ok(Verdict::AlreadyDone(what)) => {
            return Ran {
                code: 0,
                output: out,
                message: format!("already done: {what}; nothing was changed"),
            };
        }
        Ok(Verdict::Refused(why)) => return fail(1, out, format!("refused: {why}; nothing was changed")),
        Err(e) => {
            return fail(
                1,
                out,
                format!("could not read the bond: {e}; nothing was changed"),
            );
        }
    };
    let slaves: Vec<String> = bond.slaves.iter().map(|(n, _)| n.clone()).collect();
    let left_s = deadline.map_or(600, |d| d.saturating_duration_since(Instant::now()).as_secs());
    let p = Pending {
        bond: flip.bond.clone(),
        from: Want {
            mode: bond.mode.clone(),
            active_slave: bond.active_slave.clone(),
        },
        to: flip.to.clone(),
        slaves: slaves.clone(),
        deadline: unix_now() + left_s,
    };
    if let Err(e) = write_pending(state_dir, &p) {
        return fail(
            1,
            out,
            format!("could not journal the bond's state before the flip: {e}; nothing was changed"),
        );
    }
    let reverted = |mut out: String, why: String, host: &mut H| -> Ran {
        let mut log = String::new();
        let undone = revert(host, state_dir, &p, &mut log);
        out.push_str(&log);
        match undone {
            Ok(()) => Ran {
                code: 1,
                output: format!("{REVERTED}: {why}\n{out}"),
                message: format!("{why}; the bond was reverted to {} on the node", p.from.arg()),
            },
            Err(e) => Ran {
                code: 1,
                output: out,
                message: format!("{why}; the revert to {} failed: {e}", p.from.arg()),
            },
        }
    };
    for argv in commands(&flip.bond, &bond.mode, &slaves, &flip.to) {
        let r = run(host, &mut out, &argv, deadline);
        if !r.success() {
            let why = format!("`{}` failed with exit code {}", argv.join(" "), r.code);
            return reverted(out, why, host);
        }
    }
    // The probe, until the time a revert needs.
    let probe_until = deadline.map(|d| d.checked_sub(REVERT_RESERVE).unwrap_or(d));
    let mut unreachable: Vec<String> = flip.peers.clone();
    for _ in 0..PROBE_ROUNDS {
        if unreachable.is_empty() || probe_until.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let mut still = Vec::new();
        for peer in &unreachable {
            let r = run(host, &mut out, &ping(&flip.storage_interface, peer), probe_until);
            if !r.success() {
                still.push(peer.clone());
            }
        }
        unreachable = still;
    }
    if !unreachable.is_empty() {
        let why = format!(
            "probe failed: {} not reachable over {} after the flip",
            unreachable.join(", "),
            flip.storage_interface
        );
        return reverted(out, why, host);
    }
    Ran {
        code: 0,
        output: out,
        message: format!(
            "{} flipped to {}; {} reachable over {}; unconfirmed until this result is reported",
            flip.bond,
            flip.to.arg(),
            if flip.peers.is_empty() {
                "no DRBD peer to probe".to_owned()
            } else {
                flip.peers.join(", ")
            },
            flip.storage_interface
        ),
    }
}

/// The flip of `bond` is confirmed (its result reached the API server): a mode flip is
/// persisted in `node.conf`, then the journal entry goes. `Ok(false)` when nothing was pending.
pub fn confirm<H: HostOps + ?Sized>(host: &mut H, state_dir: &Path, bond: &str) -> Result<bool, String> {
    let (left, _) = pending(state_dir);
    let Some(p) = left.into_iter().find(|p| p.bond == bond) else {
        return Ok(false);
    };
    if p.to.mode != p.from.mode {
        let argv = persist(&p.to.mode);
        let r = host.run(&argv);
        if !r.success() {
            return Err(format!(
                "`{}` failed with exit code {}: {}",
                argv.join(" "),
                r.code,
                r.stderr.trim()
            ));
        }
    }
    std::fs::remove_file(pending_path(state_dir, bond)).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Reverts `bond`'s unconfirmed flip (its result could not be reported in time). `Ok(false)`
/// when nothing was pending.
pub fn revert_pending<H: HostOps + ?Sized>(
    host: &mut H,
    state_dir: &Path,
    bond: &str,
) -> Result<bool, String> {
    let (left, _) = pending(state_dir);
    let Some(p) = left.into_iter().find(|p| p.bond == bond) else {
        return Ok(false);
    };
    let mut out = String::new();
    revert(host, state_dir, &p, &mut out).map(|()| true)
}

/// At the agent's start: every flip left unconfirmed is reverted, before anything else and
/// without the API. Returns one line per flip (reverted, or why not).
pub fn recover<H: HostOps + ?Sized>(host: &mut H, state_dir: &Path) -> Vec<String> {
    let (left, unreadable) = pending(state_dir);
    let mut lines: Vec<String> = unreadable
        .into_iter()
        .map(|u| format!("unreadable flip journal {u}; left in place"))
        .collect();
    for p in left {
        let mut out = String::new();
        lines.push(match revert(host, state_dir, &p, &mut out) {
            Ok(()) => format!(
                "{}: unconfirmed flip to {} reverted to {}",
                p.bond,
                p.to.arg(),
                p.from.arg()
            ),
            Err(e) => format!(
                "{}: reverting the unconfirmed flip to {} failed: {e}",
                p.bond,
                p.to.arg()
            ),
        });
    }
    lines
}

#[cfg(test)]
mod tests;

//! Kernel modules, systemd units, packages, and time/identity commands.

use super::model::*;
use super::util::civil;
use super::{Output, World};

/// Module sizes as a current x86-64 kernel reports them, and their dependencies.
fn module_info(name: &str) -> Option<(u64, &'static [&'static str])> {
    Some(match name {
        "drbd" => (983_040, &["libcrc32c"]),
        "drbd_transport_tcp" => (28_672, &["drbd"]),
        "libcrc32c" => (12_288, &[]),
        "bonding" => (233_472, &[]),
        "8021q" => (45_056, &["garp", "mrp"]),
        "garp" => (20_480, &["stp", "llc"]),
        "mrp" => (20_480, &[]),
        "stp" => (12_288, &["llc"]),
        "llc" => (16_384, &[]),
        "dm_thin_pool" => (90_112, &[]),
        _ => return None,
    })
}

/// Loads `name` and its dependencies, if not loaded.
pub fn load_module(node: &mut Node, name: &str) {
    if node.has_module(name) {
        return;
    }
    let (size, deps) = module_info(name).unwrap_or((16_384, &[]));
    for d in deps {
        load_module(node, d);
    }
    node.modules.push(Module {
        name: name.to_string(),
        size,
    });
}

fn holders(node: &Node, name: &str) -> Vec<String> {
    node.modules
        .iter()
        .filter(|m| module_info(&m.name).is_some_and(|(_, deps)| deps.contains(&name)))
        .map(|m| m.name.clone())
        .collect()
}

fn refcount(node: &Node, name: &str) -> usize {
    let mut n = holders(node, name).len();
    if name == "drbd" {
        n += node.drbd.len();
    }
    if name == "bonding" {
        n += node
            .links
            .iter()
            .filter(|l| matches!(l.kind, LinkKind::Bond(_)))
            .count();
    }
    n
}

/// `/proc/modules`, newest first as the kernel lists them.
pub fn proc_modules(node: &Node) -> String {
    let mut s = String::new();
    for m in node.modules.iter().rev() {
        let h = holders(node, &m.name);
        let hs = if h.is_empty() {
            "-".to_string()
        } else {
            h.iter().map(|x| format!("{x},")).collect()
        };
        s.push_str(&format!(
            "{} {} {} {} Live 0x0000000000000000{}\n",
            m.name,
            m.size,
            refcount(node, &m.name),
            hs,
            if m.name.starts_with("drbd") { " (OE)" } else { "" }
        ));
    }
    s
}

/// `lsmod` (kmod's format: `%-19s %8lu  %d` and comma-joined holders).
pub fn lsmod(world: &mut World, node: &str, args: &[&str]) -> Output {
    if let Some(a) = args.first() {
        return Output::err(1, format!("Usage: lsmod\nlsmod: ERROR: unknown argument '{a}'\n"));
    }
    let Some(n) = world.nodes.get(node) else {
        return Output::err(1, "");
    };
    let mut s = String::from("Module                  Size  Used by\n");
    for m in n.modules.iter().rev() {
        let h = holders(n, &m.name);
        s.push_str(&format!("{:<19} {:>8}  {}", m.name, m.size, refcount(n, &m.name)));
        if !h.is_empty() {
            s.push(' ');
            s.push_str(&h.join(","));
        }
        s.push('\n');
    }
    Output::ok(s)
}

/// `modprobe [-r] MODULE...`.
pub fn modprobe(world: &mut World, node: &str, args: &[&str]) -> Output {
    let Some(n) = world.nodes.get_mut(node) else {
        return Output::err(1, "");
    };
    let mut remove = false;
    let mut mods = Vec::new();
    for a in args {
        match *a {
            "-r" | "--remove" => remove = true,
            "-q" | "--quiet" | "-v" => {}
            f if f.starts_with('-') => {
                return Output::err(1, format!("modprobe: unrecognized option '{f}'\n"));
            }
            m => mods.push(m.replace('-', "_")),
        }
    }
    if mods.is_empty() {
        return Output::err(1, "modprobe: ERROR: missing parameters. See -h.\n");
    }
    if !remove {
        // modprobe only loads the first name; the rest are module parameters.
        let m = &mods[0];
        let available = match m.as_str() {
            // DKMS builds the module in the package's post-installation script: a package left
            // half-configured by a failed install has none (the old version's was removed).
            "drbd" | "drbd_transport_tcp" => n.packages.get("drbd-dkms").is_some_and(|p| p.configured),
            other => module_info(other).is_some(),
        };
        if !available {
            return Output::err(
                1,
                format!(
                    "modprobe: FATAL: Module {m} not found in directory /lib/modules/{}\n",
                    n.kernel
                ),
            );
        }
        load_module(n, m);
        return Output::ok("");
    }
    for m in &mods {
        if !n.has_module(m) {
            continue;
        }
        if refcount(n, m) > 0 {
            return Output::err(1, format!("modprobe: FATAL: Module {m} is in use.\n"));
        }
        n.modules.retain(|x| &x.name != m);
    }
    Output::ok("")
}

/// `systemctl is-active|start|stop|restart|enable|disable|is-enabled UNIT`.
pub fn systemctl(world: &mut World, node: &str, args: &[&str]) -> Output {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "-q" | "--quiet" | "--no-pager"))
        .collect();
    let Some(n) = world.nodes.get_mut(node) else {
        return Output::err(1, "");
    };
    let (Some(cmd), Some(unit)) = (args.first(), args.get(1)) else {
        return Output::err(1, "Too few arguments.\n");
    };
    let key = unit.strip_suffix(".service").unwrap_or(unit).to_string();
    let full = format!("{key}.service");
    match *cmd {
        "is-active" => match n.units.get(&key) {
            Some(u) if u.active => Output::ok("active\n"),
            Some(_) => Output {
                stdout: b"inactive\n".to_vec(),
                stderr: Vec::new(),
                code: 3,
            },
            None => Output {
                stdout: b"inactive\n".to_vec(),
                stderr: Vec::new(),
                code: 4,
            },
        },
        "is-enabled" => match n.units.get(&key) {
            Some(u) if u.enabled => Output::ok("enabled\n"),
            Some(_) => Output {
                stdout: b"disabled\n".to_vec(),
                stderr: Vec::new(),
                code: 1,
            },
            None => Output::err(
                1,
                format!("Failed to get unit file state for {full}: No such file or directory\n"),
            ),
        },
        "start" | "stop" | "restart" | "enable" | "disable" => {
            let Some(u) = n.units.get_mut(&key) else {
                let verb = cmd.to_string();
                return Output::err(5, format!("Failed to {verb} {full}: Unit {full} not found.\n"));
            };
            match *cmd {
                "start" | "restart" => u.active = true,
                "stop" => u.active = false,
                "enable" => u.enabled = true,
                _ => u.enabled = false,
            }
            Output::ok("")
        }
        other => Output::err(1, format!("Unknown command verb '{other}'.\n")),
    }
}

/// `dpkg-query -W [-f FORMAT] PKG`.
pub fn dpkg_query(world: &mut World, node: &str, args: &[&str]) -> Output {
    let Some(n) = world.nodes.get(node) else {
        return Output::err(1, "");
    };
    let mut show = false;
    let mut format = "${binary:Package}\t${Version}\n".to_string();
    let mut pkgs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-W" | "--show" => show = true,
            "-f" | "--showformat" => {
                format = args.get(i + 1).copied().unwrap_or("").to_string();
                i += 1;
            }
            a if a.starts_with("--showformat=") => format = a["--showformat=".len()..].to_string(),
            a if a.starts_with('-') => {
                return Output::err(
                    2,
                    format!(
                        "dpkg-query: error: unknown option {a}\n\nUse --help for help about querying packages.\n"
                    ),
                );
            }
            p => pkgs.push(p),
        }
        i += 1;
    }
    if !show || pkgs.is_empty() {
        return Output::err(
            2,
            "dpkg-query: error: need an action option\n\nUse --help for help about querying packages.\n",
        );
    }
    let mut out = String::new();
    let mut missing = String::new();
    for p in pkgs {
        match n.packages.get(p) {
            Some(pk) => out.push_str(
                &format
                    .replace("${Version}", &pk.version)
                    .replace("${binary:Package}", p)
                    .replace("${Package}", p)
                    .replace(
                        "${Status}",
                        if pk.configured {
                            "install ok installed"
                        } else {
                            "install ok half-configured"
                        },
                    )
                    .replace("\\n", "\n")
                    .replace("\\t", "\t"),
            ),
            None => missing.push_str(&format!("dpkg-query: no packages found matching {p}\n")),
        }
    }
    Output {
        stdout: out.into_bytes(),
        code: i32::from(!missing.is_empty()),
        stderr: missing.into_bytes(),
    }
}

/// `apt-get update` and `apt-get install -y PKG=VERSION...`.
pub fn apt_get(world: &mut World, node: &str, args: &[&str]) -> Output {
    let positional: Vec<&str> = args.iter().copied().filter(|a| !a.starts_with('-')).collect();
    let Some((cmd, pkgs)) = positional.split_first() else {
        return Output::err(100, "E: Invalid operation \n");
    };
    match *cmd {
        "update" => Output::ok(""),
        "install" => {
            let mut wanted = Vec::new();
            for p in pkgs {
                let (name, version) = match p.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (*p, None),
                };
                let Some(versions) = world.repo.get(name) else {
                    return Output::err(100, format!("E: Unable to locate package {name}\n"));
                };
                let v = match version {
                    Some(v) if versions.iter().any(|x| x == v) => v.to_string(),
                    Some(v) => {
                        return Output::err(100, format!("E: Version '{v}' for '{name}' was not found\n"));
                    }
                    None => versions.last().cloned().unwrap_or_default(),
                };
                wanted.push((name.to_string(), v));
            }
            let Some(n) = world.nodes.get_mut(node) else {
                return Output::err(100, "");
            };
            if let Some((name, v)) = wanted
                .iter()
                .find(|(name, _)| n.reboot_during_install.as_deref() == Some(name.as_str()))
            {
                n.reboot_during_install = None;
                n.packages.insert(
                    name.clone(),
                    Package {
                        version: v.clone(),
                        configured: false,
                    },
                );
                return match super::faults::reboot(world, node) {
                    Ok(()) => Output::err(143, ""),
                    Err(e) => Output::err(100, format!("{e}\n")),
                };
            }
            for (name, v) in wanted {
                if n.failing_install.as_deref() == Some(name.as_str()) || n.broken_installs.contains(&name) {
                    n.failing_install = None;
                    n.packages.insert(
                        name.clone(),
                        Package {
                            version: v,
                            configured: false,
                        },
                    );
                    return Output::err(
                        100,
                        format!(
                            "dpkg: error processing package {name} (--configure):\n installed {name} package post-installation script subprocess returned error exit status 10\nErrors were encountered while processing:\n {name}\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n"
                        ),
                    );
                }
                n.packages.insert(
                    name.clone(),
                    Package {
                        version: v,
                        configured: true,
                    },
                );
                if let Some(unit) = ["linstor-satellite", "linstor-controller", "drbd-reactor"]
                    .iter()
                    .find(|u| **u == name)
                {
                    n.units.entry(unit.to_string()).or_insert(Unit {
                        active: false,
                        enabled: true,
                    });
                }
            }
            Output::ok("")
        }
        other => Output::err(100, format!("E: Invalid operation {other}\n")),
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// strftime for the C locale in UTC.
pub fn strftime(fmt: &str, epoch: i64) -> String {
    let c = civil(epoch);
    let day = DAYS[c.weekday as usize % 7];
    let mon = MONTHS[(c.month as usize + 11) % 12];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&c.year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{:02}", c.month)),
            Some('d') => out.push_str(&format!("{:02}", c.day)),
            Some('e') => out.push_str(&format!("{:>2}", c.day)),
            Some('H') => out.push_str(&format!("{:02}", c.hour)),
            Some('I') => out.push_str(&format!("{:02}", (c.hour + 11) % 12 + 1)),
            Some('M') => out.push_str(&format!("{:02}", c.minute)),
            Some('S') => out.push_str(&format!("{:02}", c.second)),
            Some('N') => out.push_str("000000000"),
            Some('s') => out.push_str(&epoch.to_string()),
            Some('F') => out.push_str(&format!("{}-{:02}-{:02}", c.year, c.month, c.day)),
            Some('T') => out.push_str(&format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second)),
            Some('R') => out.push_str(&format!("{:02}:{:02}", c.hour, c.minute)),
            Some('D') => out.push_str(&format!(
                "{:02}/{:02}/{:02}",
                c.month,
                c.day,
                c.year.rem_euclid(100)
            )),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('a') => out.push_str(&day[..3]),
            Some('A') => out.push_str(day),
            Some('b') | Some('h') => out.push_str(&mon[..3]),
            Some('B') => out.push_str(mon),
            Some('j') => out.push_str(&format!("{:03}", c.yday)),
            Some('p') => out.push_str(if c.hour < 12 { "AM" } else { "PM" }),
            Some('u') => out.push_str(&(if c.weekday == 0 { 7 } else { c.weekday }).to_string()),
            Some('w') => out.push_str(&c.weekday.to_string()),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// GNU `date` in the C locale, always UTC in the simulation, by the node's own clock (the
/// simulated time plus the node's [`clock_offset`](super::Node::clock_offset)).
pub fn date(world: &mut World, node: &str, args: &[&str]) -> Output {
    let offset = world.nodes.get(node).map_or(0, |n| n.clock_offset);
    let mut epoch = world.clock as i64 + offset;
    let mut fmt = "%a %b %e %H:%M:%S %Z %Y".to_string();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        match a {
            "-u" | "--utc" | "--universal" => {}
            "-d" | "--date" => {
                let Some(v) = args.get(i + 1) else {
                    return Output::err(
                        1,
                        "date: option requires an argument -- 'd'\nTry 'date --help' for more information.\n",
                    );
                };
                match v.strip_prefix('@').and_then(|e| e.parse().ok()) {
                    Some(e) => epoch = e,
                    None => return Output::err(1, format!("date: invalid date '{v}'\n")),
                }
                i += 1;
            }
            "-I" | "-Iseconds" | "--iso-8601=seconds" => fmt = "%Y-%m-%dT%H:%M:%S+00:00".into(),
            "-Idate" | "--iso-8601" | "--iso-8601=date" => fmt = "%Y-%m-%d".into(),
            "-R" | "--rfc-email" => fmt = "%a, %d %b %Y %H:%M:%S +0000".into(),
            "--rfc-3339=seconds" => fmt = "%Y-%m-%d %H:%M:%S+00:00".into(),
            f if f.starts_with('+') => fmt = f[1..].to_string(),
            f if f.starts_with("--date=@") => match f["--date=@".len()..].parse() {
                Ok(e) => epoch = e,
                Err(_) => return Output::err(1, format!("date: invalid date '{}'\n", &f["--date=".len()..])),
            },
            f => {
                return Output::err(
                    1,
                    format!(
                        "date: invalid option -- '{}'\nTry 'date --help' for more information.\n",
                        f.trim_start_matches('-')
                    ),
                );
            }
        }
        i += 1;
    }
    Output::ok(format!("{}\n", strftime(&fmt, epoch)))
}

/// `sleep N[smhd]`: advances the simulated clock instead of waiting.
pub fn sleep(world: &mut World, args: &[&str]) -> Output {
    if args.is_empty() {
        return Output::err(
            1,
            "sleep: missing operand\nTry 'sleep --help' for more information.\n",
        );
    }
    let mut total: f64 = 0.0;
    for a in args {
        let (num, mult) = match a.chars().last() {
            Some('s') => (&a[..a.len() - 1], 1.0),
            Some('m') => (&a[..a.len() - 1], 60.0),
            Some('h') => (&a[..a.len() - 1], 3600.0),
            Some('d') => (&a[..a.len() - 1], 86400.0),
            _ => (*a, 1.0),
        };
        match num.parse::<f64>() {
            Ok(v) if v >= 0.0 && v.is_finite() => total += v * mult,
            _ => {
                return Output::err(
                    1,
                    format!("sleep: invalid time interval '{a}'\nTry 'sleep --help' for more information.\n"),
                );
            }
        }
    }
    world.advance(total.ceil() as u64);
    Output::ok("")
}

/// `cat FILE...` of the `/proc` files the world renders (`/proc/drbd`, `/proc/modules`,
/// `/proc/uptime`, `/proc/sys/kernel/random/boot_id`), as the node agent reads them: it runs
/// commands, where the script reads the rendered files. Anything else is not there.
pub fn cat(world: &mut World, node: &str, args: &[&str]) -> Output {
    let Some(n) = world.nodes.get(node) else {
        return Output::err(1, "");
    };
    if args.is_empty() {
        return Output::err(1, "cat: reading standard input is not simulated\n");
    }
    let mut out = String::new();
    let mut err = String::new();
    for path in args {
        let text = match *path {
            "/proc/drbd" => super::drbd::proc_drbd(n),
            "/proc/modules" => Some(proc_modules(n)),
            "/proc/sys/kernel/random/boot_id" => Some(format!("{}\n", n.boot_id)),
            "/proc/uptime" => {
                let up = world.clock.saturating_sub(n.booted_at);
                let idle = up * n.idle_centis_per_sec;
                Some(format!("{up}.00 {}.{:02}\n", idle / 100, idle % 100))
            }
            _ => world.files.get(node).and_then(|f| f.get(*path)).cloned(),
        };
        match text {
            Some(t) => out.push_str(&t),
            None => err.push_str(&format!("cat: {path}: No such file or directory\n")),
        }
    }
    Output {
        stdout: out.into_bytes(),
        code: i32::from(!err.is_empty()),
        stderr: err.into_bytes(),
    }
}

/// `hostname`.
pub fn hostname(world: &mut World, node: &str, args: &[&str]) -> Output {
    if let Some(a) = args.first() {
        if a.starts_with('-') && *a != "-s" && *a != "--short" {
            return Output::err(
                1,
                format!("hostname: invalid option -- '{}'\n", a.trim_start_matches('-')),
            );
        }
        if !a.starts_with('-') {
            return Output::err(1, "hostname: you must be root to change the host name\n");
        }
    }
    world
        .nodes
        .get(node)
        .map_or_else(|| Output::err(1, ""), |n| Output::ok(format!("{}\n", n.name)))
}

//! The package tools of an RPM-based node (Rocky/RHEL 9): `rpm -q` / `rpm -qa` with
//! `--queryformat`, `dnf makecache` and `dnf install -y SPEC...`, in their real output formats. A package's
//! `VERSION-RELEASE` is the version the world records (`9.2.12-1`: version `9.2.12`, release `1`).

use super::model::*;
use super::sys::strftime;
use super::{Output, World};

const ARCH: &str = "x86_64";

/// `VERSION` and `RELEASE` of a recorded `VERSION-RELEASE`.
fn split(v: &str) -> (&str, &str) {
    v.rsplit_once('-').unwrap_or((v, "1"))
}

/// Expands an rpm query format for one package: `%{NAME}`, `%{VERSION}`, `%{RELEASE}`,
/// `%{ARCH}` (with or without a width such as `%-20{NAME}`), `\n` and `\t`.
fn query_format(fmt: &str, name: &str, version: &str) -> String {
    let (v, r) = split(version);
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(at) = rest.find(['%', '\\']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(esc) = tail.strip_prefix('\\') {
            match esc.chars().next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
                None => {}
            }
            rest = esc.get(1..).unwrap_or("");
            continue;
        }
        let Some(open) = tail.find('{') else {
            out.push_str(tail);
            return out;
        };
        let Some(close) = tail.find('}') else {
            out.push_str(tail);
            return out;
        };
        let width = &tail[1..open];
        let tag = &tail[open + 1..close];
        let value = match tag.to_ascii_uppercase().as_str() {
            "NAME" => name,
            "VERSION" => v,
            "RELEASE" => r,
            "ARCH" => ARCH,
            "EPOCH" => "(none)",
            _ => "(none)",
        };
        let w: usize = width.trim_start_matches('-').parse().unwrap_or(0);
        if width.starts_with('-') {
            out.push_str(&format!("{value:<w$}"));
        } else {
            out.push_str(&format!("{value:>w$}"));
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `rpm -q [--qf FORMAT] PKG...` and `rpm -qa [--qf FORMAT]`.
pub fn rpm(world: &mut World, node: &str, args: &[&str]) -> Output {
    let Some(n) = world.nodes.get(node) else {
        return Output::err(1, "");
    };
    let mut query = false;
    let mut all = false;
    let mut format = "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n".to_string();
    let mut pkgs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-q" | "--query" => query = true,
            "-qa" => {
                query = true;
                all = true;
            }
            "-a" | "--all" => all = true,
            "--qf" | "--queryformat" => {
                format = args.get(i + 1).copied().unwrap_or("").to_string();
                i += 1;
            }
            a if a.starts_with("--qf=") => format = a["--qf=".len()..].to_string(),
            a if a.starts_with("--queryformat=") => format = a["--queryformat=".len()..].to_string(),
            a if a.starts_with('-') => {
                return Output::err(1, format!("rpm: {a}: unknown option\n"));
            }
            p => pkgs.push(p),
        }
        i += 1;
    }
    if !query {
        return Output::err(1, "rpm: no operation specified\n");
    }
    let mut out = String::new();
    if all {
        for (name, p) in &n.packages {
            out.push_str(&query_format(&format, name, &p.version));
        }
        return Output::ok(out);
    }
    if pkgs.is_empty() {
        return Output::err(1, "rpm: no arguments given for query\n");
    }
    // rpm prints the "not installed" line on standard output and exits with the number of
    // names it did not find.
    let mut missing = 0;
    for p in pkgs {
        match n.packages.get(p) {
            Some(pk) => out.push_str(&query_format(&format, p, &pk.version)),
            None => {
                missing += 1;
                out.push_str(&format!("package {p} is not installed\n"));
            }
        }
    }
    Output {
        stdout: out.into_bytes(),
        stderr: Vec::new(),
        code: missing,
    }
}

/// One line of dnf's transaction table.
fn table_row(name: &str, version: &str, size: &str) -> String {
    format!(
        " {name:<27} {ARCH:<15} {version:<23} {:<19} {size:>6}\n",
        "linbit"
    )
}

const RULE: &str = "================================================================================\n";

/// `dnf install -y SPEC...`, where SPEC is `NAME` (the newest the repository has) or
/// `NAME-VERSION-RELEASE`; installing an older version than the installed one downgrades.
pub fn dnf(world: &mut World, node: &str, args: &[&str]) -> Output {
    let positional: Vec<&str> = args.iter().copied().filter(|a| !a.starts_with('-')).collect();
    let assume_yes = args.iter().any(|a| matches!(*a, "-y" | "--assumeyes"));
    let Some((cmd, specs)) = positional.split_first() else {
        return Output::err(1, "usage: dnf [options] COMMAND\n\nList of Main Commands:\n");
    };
    let header = format!(
        "Last metadata expiration check: 0:12:04 ago on {}.\n",
        strftime(
            "%a %d %b %Y %I:%M:%S %p %Z",
            i64::try_from(world.clock).unwrap_or(0) - 724
        )
    );
    if *cmd == "makecache" {
        // Refreshes the repositories' metadata; the simulated repository is always current.
        return Output::ok(format!(
            "{:<48} 3.1 kB/s | 2.9 kB     00:00\nMetadata cache created.\n",
            "LINBIT packages for drbd-9 - rhel9"
        ));
    }
    if *cmd != "install" {
        return Output::err(
            1,
            format!("No such command: {cmd}. Please use /usr/bin/dnf --help\n"),
        );
    }
    if specs.is_empty() {
        return Output::err(1, "Error: Need to pass a list of pkgs to install\n");
    }
    // Resolve every spec against the repository first: one unknown spec fails the whole command.
    let mut wanted: Vec<(String, String)> = Vec::new();
    for spec in specs {
        let found = world.repo.iter().find_map(|(name, versions)| {
            if *spec == name {
                return versions.last().map(|v| (name.clone(), v.clone()));
            }
            let v = spec.strip_prefix(name.as_str())?.strip_prefix('-')?;
            versions
                .iter()
                .find(|x| *x == v)
                .map(|x| (name.clone(), x.clone()))
        });
        match found {
            Some(w) => wanted.push(w),
            None => {
                return Output {
                    stdout: header.into_bytes(),
                    stderr: format!("No match for argument: {spec}\nError: Unable to find a match: {spec}\n")
                        .into_bytes(),
                    code: 1,
                };
            }
        }
    }
    let Some(n) = world.nodes.get_mut(node) else {
        return Output::err(1, "");
    };
    let mut out = header;
    let mut installing = Vec::new();
    let mut upgrading = Vec::new();
    let mut downgrading = Vec::new();
    for (name, v) in &wanted {
        match n.packages.get(name) {
            Some(p) if p.version == *v => {
                out.push_str(&format!("Package {name}-{v}.{ARCH} is already installed.\n"))
            }
            Some(p) if version_lt(&p.version, v) => upgrading.push((name.clone(), v.clone())),
            Some(_) => downgrading.push((name.clone(), v.clone())),
            None => installing.push((name.clone(), v.clone())),
        }
    }
    out.push_str("Dependencies resolved.\n");
    let count = installing.len() + upgrading.len() + downgrading.len();
    if count == 0 {
        out.push_str("Nothing to do.\nComplete!\n");
        return Output::ok(out);
    }
    if !assume_yes {
        return Output {
            stdout: out.into_bytes(),
            stderr: b"Error: This command has to be run with superuser privileges (under the root user on most systems).\n"
                .to_vec(),
            code: 1,
        };
    }
    out.push_str(RULE);
    out.push_str(&format!(
        " {:<27} {:<15} {:<23} {:<19} {:>6}\n",
        "Package", "Architecture", "Version", "Repository", "Size"
    ));
    out.push_str(RULE);
    for (title, list) in [
        ("Installing:", &installing),
        ("Upgrading:", &upgrading),
        ("Downgrading:", &downgrading),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push_str(title);
        out.push('\n');
        for (name, v) in list.iter() {
            out.push_str(&table_row(name, v, "1.2 M"));
        }
    }
    out.push_str("\nTransaction Summary\n");
    out.push_str(RULE);
    for (verb, list) in [
        ("Install", &installing),
        ("Upgrade", &upgrading),
        ("Downgrade", &downgrading),
    ] {
        if !list.is_empty() {
            let plural = if list.len() == 1 { "Package" } else { "Packages" };
            out.push_str(&format!("{verb:<9}{} {plural}\n", list.len()));
        }
    }
    out.push_str("\nDownloading Packages:\nRunning transaction check\nTransaction check succeeded.\nRunning transaction test\nTransaction test succeeded.\nRunning transaction\n");
    let mut failed = None;
    for (name, v) in &wanted {
        if n.packages
            .get(name)
            .is_some_and(|p| p.version == *v && p.configured)
        {
            continue;
        }
        let broken = n.failing_install.as_deref() == Some(name.as_str()) || n.broken_installs.contains(name);
        if broken {
            n.failing_install = None;
            failed.get_or_insert_with(|| name.clone());
        }
        // rpm records the package even when its %post scriptlet fails (DKMS builds the module
        // there), so a failed install leaves it installed but unusable.
        n.packages.insert(
            name.clone(),
            Package {
                version: v.clone(),
                configured: !broken,
            },
        );
        if ["linstor-satellite", "linstor-controller", "drbd-reactor"].contains(&name.as_str()) {
            n.units.entry(name.clone()).or_insert(Unit {
                active: false,
                enabled: true,
            });
        }
    }
    if let Some(name) = failed {
        let v = wanted
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        return Output {
            stdout: out.into_bytes(),
            stderr: format!(
                "warning: %post({name}-{v}.{ARCH}) scriptlet failed, exit status 10\n\nError in POSTIN scriptlet in rpm package {name}\nError: Transaction failed\n"
            )
            .into_bytes(),
            code: 1,
        };
    }
    for (title, list) in [
        ("Installed:", &installing),
        ("Upgraded:", &upgrading),
        ("Downgraded:", &downgrading),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(title);
        out.push('\n');
        for (name, v) in list.iter() {
            out.push_str(&format!("  {name}-{v}.{ARCH}\n"));
        }
    }
    out.push_str("\nComplete!\n");
    Output::ok(out)
}

/// `a < b` comparing dot- and dash-separated numeric parts (enough for the repository's
/// versions; rpm's rpmvercmp is more general).
fn version_lt(a: &str, b: &str) -> bool {
    let parts = |s: &str| -> Vec<u64> { s.split(['.', '-']).map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a) < parts(b)
}

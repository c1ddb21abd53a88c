//! Debian hosts: dpkg tells what is installed, apt installs.

use nodewright_parsers::parse_dpkg_query_status;

use super::{HostOs, OsFamily, PackageState, words};
use crate::host::HostOutput;

/// Debian and its derivatives (dpkg, apt).
#[derive(Debug, Clone, Copy, Default)]
pub struct Debian;

impl HostOs for Debian {
    fn family(&self) -> OsFamily {
        OsFamily::Debian
    }

    // `${Status}` as well as `${Version}`: a package whose post-installation script failed keeps
    // the new version on record as `half-configured`, and must not pass for installed.
    fn package_query(&self, package: &str) -> Vec<String> {
        words(&["dpkg-query", "-W", "-f", "${Status} ${Version}\\n", package])
    }

    fn package_state(&self, package: &str, out: &HostOutput) -> Result<PackageState, String> {
        if !out.success() {
            // dpkg-query exits 1 with this message for a package it has never heard of.
            if out
                .stderr
                .contains(&format!("no packages found matching {package}"))
            {
                return Ok(PackageState::Absent);
            }
            return Err(format!("dpkg-query exited {}: {}", out.code, out.stderr.trim()));
        }
        let p = parse_dpkg_query_status(&out.stdout).map_err(|e| e.to_string())?;
        Ok(if p.installed() {
            PackageState::Installed(p.version)
        } else if p.version.is_empty() || p.status == "not-installed" {
            PackageState::Absent
        } else {
            PackageState::Broken {
                version: p.version,
                state: format!("{} {} {}", p.want, p.error, p.status),
            }
        })
    }

    fn package_refresh(&self) -> Vec<String> {
        // The script's PREFLIGHT form.
        words(&["apt-get", "update", "-qq"])
    }

    fn package_install(&self, package: &str, version: &str) -> Vec<String> {
        // The legacy script's own form (`legacy/lib/upgrade.sh`); `--allow-downgrades` because a
        // rollback installs the older version.
        words(&[
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--allow-downgrades",
            &format!("{package}={version}"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> HostOutput {
        HostOutput {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn argv_is_dpkg_query_and_apt_get() {
        assert_eq!(
            Debian.package_query("drbd-dkms"),
            words(&["dpkg-query", "-W", "-f", "${Status} ${Version}\\n", "drbd-dkms"])
        );
        assert_eq!(
            Debian.package_install("drbd-dkms", "9.2.14-1"),
            words(&[
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--allow-downgrades",
                "drbd-dkms=9.2.14-1"
            ])
        );
    }

    #[test]
    fn installed_half_configured_and_unknown_packages_are_told_apart() {
        let state = |o: HostOutput| Debian.package_state("drbd-dkms", &o);
        assert_eq!(
            state(out(0, "install ok installed 9.2.12-1", "")),
            Ok(PackageState::Installed("9.2.12-1".into()))
        );
        assert!(matches!(
            state(out(0, "install ok half-configured 9.2.14-1", "")),
            Ok(PackageState::Broken { version, .. }) if version == "9.2.14-1"
        ));
        assert_eq!(
            state(out(1, "", "dpkg-query: no packages found matching drbd-dkms\n")),
            Ok(PackageState::Absent)
        );
        assert!(state(out(2, "", "dpkg-query: error: need an action option\n")).is_err());
        assert!(state(out(0, "9.2.12-1", "")).is_err());
    }
}

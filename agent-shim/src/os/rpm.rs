//! RPM-based hosts: rpm tells what is installed, dnf installs.

use nodewright_parsers::{RpmQuery, parse_rpm_query};

use super::{HostOs, OsFamily, PackageState, words};
use crate::host::HostOutput;

/// RPM-based distributions with dnf (RHEL, Rocky, AlmaLinux, CentOS Stream, Fedora, Oracle).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rpm;

impl HostOs for Rpm {
    fn family(&self) -> OsFamily {
        OsFamily::Rpm
    }

    fn package_query(&self, package: &str) -> Vec<String> {
        words(&["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", package])
    }

    fn package_state(&self, package: &str, out: &HostOutput) -> Result<PackageState, String> {
        // rpm prints `package NAME is not installed` on standard output and exits 1.
        match parse_rpm_query(&out.stdout) {
            Ok(RpmQuery::NotInstalled { name }) if out.code == 1 && name == package => {
                Ok(PackageState::Absent)
            }
            Ok(RpmQuery::Installed { mut versions }) if out.success() => match versions.len() {
                1 => Ok(PackageState::Installed(versions.remove(0))),
                // Several instances (an interrupted transaction, or an install-only package):
                // no one version is "the" installed one.
                _ => Ok(PackageState::Broken {
                    version: versions.join(" "),
                    state: "several versions installed".into(),
                }),
            },
            Ok(_) => Err(format!(
                "rpm -q exited {} with {:?}: {}",
                out.code,
                out.stdout.trim(),
                out.stderr.trim()
            )),
            Err(e) => Err(format!("rpm -q exited {}: {e} {}", out.code, out.stderr.trim())),
        }
    }

    fn package_refresh(&self) -> Vec<String> {
        words(&["dnf", "makecache"])
    }

    fn package_install(&self, package: &str, version: &str) -> Vec<String> {
        // `NAME-VERSION-RELEASE` is a package spec dnf resolves; dnf install of an older
        // version than the installed one downgrades.
        words(&["dnf", "install", "-y", &format!("{package}-{version}")])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str) -> HostOutput {
        HostOutput {
            code,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn argv_is_rpm_query_and_dnf_install() {
        assert_eq!(
            Rpm.package_query("drbd-utils"),
            words(&["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "drbd-utils"])
        );
        assert_eq!(
            Rpm.package_install("drbd-utils", "9.31.0-1"),
            words(&["dnf", "install", "-y", "drbd-utils-9.31.0-1"])
        );
    }

    #[test]
    fn installed_missing_and_doubly_installed_packages_are_told_apart() {
        let state = |o: HostOutput| Rpm.package_state("drbd-utils", &o);
        assert_eq!(
            state(out(0, "9.29.0-1\n")),
            Ok(PackageState::Installed("9.29.0-1".into()))
        );
        assert_eq!(
            state(out(1, "package drbd-utils is not installed\n")),
            Ok(PackageState::Absent)
        );
        assert!(matches!(
            state(out(0, "9.29.0-1\n9.31.0-1\n")),
            Ok(PackageState::Broken { .. })
        ));
        // The message for another package, or with exit 0, is not an answer to this question.
        assert!(state(out(1, "package drbd-dkms is not installed\n")).is_err());
        assert!(state(out(0, "package drbd-utils is not installed\n")).is_err());
        assert!(state(out(127, "")).is_err());
    }
}

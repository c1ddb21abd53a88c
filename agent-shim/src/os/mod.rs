//! The host OS seam: how the agent asks the host's package manager, service manager and kernel
//! module tools a question, and how it reads the answer. Each method builds an argv or judges a
//! command's output; nothing here runs a command (that is [`crate::catalogue`]'s, through
//! [`crate::HostOps`]).
//!
//! [`Debian`] (dpkg/apt) and [`Rpm`] (rpm/dnf) are the implementations; services are systemd's
//! and modules kmod's in both, so those are the trait's provided methods. [`for_family`] picks
//! one from the API's [`OsFamily`], the value `--host-os` and `profile.operatingSystem` name.
//!
//! To add a family: an implementation of [`HostOs`] here, a variant of `OsFamily` with its
//! `/etc/os-release` IDs in the API, and the simulator's answers to its tools (`legacy/sim`).

mod debian;
mod rpm;

use std::path::Path;

pub use debian::Debian;
pub use nodewright_api::OsFamily;
use nodewright_parsers::parse_lsmod;
pub use rpm::Rpm;

use crate::host::HostOutput;

/// A package's state as the package manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageState {
    /// Installed and usable at this version.
    Installed(String),
    /// Present but not usable: a failed post-installation script, config files left behind.
    Broken {
        /// The version the package manager has on record.
        version: String,
        /// What state it is in.
        state: String,
    },
    /// Not installed.
    Absent,
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// What the agent needs from a host's operating system. Implementations are stateless.
pub trait HostOs: Send + Sync {
    /// The family this implements.
    fn family(&self) -> OsFamily;

    /// The read-only command that tells a package's installed version.
    fn package_query(&self, package: &str) -> Vec<String>;

    /// Judges [`HostOs::package_query`]'s output. `Err` when it cannot be read (then nothing is
    /// changed on the strength of it).
    fn package_state(&self, package: &str, out: &HostOutput) -> Result<PackageState, String>;

    /// The command that installs `package` at exactly `version` (upgrading or downgrading).
    fn package_install(&self, package: &str, version: &str) -> Vec<String>;

    /// The command that refreshes the package manager's metadata, so that a version just
    /// published can be installed.
    fn package_refresh(&self) -> Vec<String>;

    /// The read-only command that tells whether a unit is running.
    fn service_query(&self, unit: &str) -> Vec<String> {
        words(&["systemctl", "is-active", unit])
    }

    /// Judges [`HostOs::service_query`]: `systemctl is-active` prints the state and exits 0 only
    /// for `active`; `inactive`, `failed` and an unknown unit exit non-zero and are "not running".
    fn service_active(&self, out: &HostOutput) -> Result<bool, String> {
        let state = out.stdout.trim();
        match (out.code, state) {
            (0, "active") => Ok(true),
            (0, other) => Err(format!("systemctl is-active exited 0 with {other:?}")),
            (_, "inactive" | "failed" | "activating" | "deactivating" | "unknown") => Ok(false),
            (code, other) => Err(format!(
                "systemctl is-active exited {code} with {other:?}: {}",
                out.stderr.trim()
            )),
        }
    }

    /// Judges [`HostOs::service_query`] for a report: the state `systemctl is-active` printed
    /// (`active`, `inactive`, `failed`, …), whatever its exit code says.
    fn service_state(&self, out: &HostOutput) -> Result<String, String> {
        let state = out.stdout.trim();
        let known = matches!(
            state,
            "active" | "inactive" | "failed" | "activating" | "deactivating" | "reloading" | "unknown"
        );
        if known && (out.code == 0) == (state == "active" || state == "reloading") {
            Ok(state.to_owned())
        } else {
            Err(format!(
                "systemctl is-active exited {} with {state:?}: {}",
                out.code,
                out.stderr.trim()
            ))
        }
    }

    /// The command that starts a unit.
    fn service_start(&self, unit: &str) -> Vec<String> {
        words(&["systemctl", "start", unit])
    }

    /// The command that stops a unit.
    fn service_stop(&self, unit: &str) -> Vec<String> {
        words(&["systemctl", "stop", unit])
    }

    /// The read-only command that lists loaded modules.
    fn module_query(&self) -> Vec<String> {
        words(&["lsmod"])
    }

    /// Judges [`HostOs::module_query`]: is `module` loaded? (`-` and `_` are the same to kmod.)
    fn module_loaded(&self, module: &str, out: &HostOutput) -> Result<bool, String> {
        if !out.success() {
            return Err(format!("lsmod exited {}: {}", out.code, out.stderr.trim()));
        }
        let want = module.replace('-', "_");
        let modules = parse_lsmod(&out.stdout).map_err(|e| e.to_string())?;
        Ok(modules.iter().any(|m| m.name == want))
    }

    /// The command that loads a module.
    fn module_load(&self, module: &str) -> Vec<String> {
        words(&["modprobe", module])
    }

    /// The command that unloads a module.
    fn module_unload(&self, module: &str) -> Vec<String> {
        words(&["modprobe", "-r", module])
    }
}

/// The implementation for a family.
pub fn for_family(family: OsFamily) -> &'static dyn HostOs {
    match family {
        OsFamily::Debian => &Debian,
        OsFamily::Rpm => &Rpm,
    }
}

/// Why the host's OS family could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// `/etc/os-release` (and `/usr/lib/os-release`) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file names an OS the agent does not know.
    #[error("{path}: {source}")]
    Unknown {
        /// The file.
        path: String,
        /// What it named.
        source: nodewright_api::UnknownOs,
    },
}

/// The host's family from `os-release` under `host_root` (the host's `/` as the agent's pod
/// mounts it): `etc/os-release`, else `usr/lib/os-release`, as os-release(5) says.
pub fn detect(host_root: &Path) -> Result<OsFamily, DetectError> {
    let etc = host_root.join("etc/os-release");
    let usr = host_root.join("usr/lib/os-release");
    let (path, text) = match std::fs::read_to_string(&etc) {
        Ok(text) => (etc, text),
        Err(_) => match std::fs::read_to_string(&usr) {
            Ok(text) => (usr, text),
            Err(source) => {
                return Err(DetectError::Read {
                    path: etc.display().to_string(),
                    source,
                });
            }
        },
    };
    let (id, like) = nodewright_api::hostos::os_release_ids(&text);
    OsFamily::from_os_release(id.as_deref().unwrap_or(""), like.as_deref().unwrap_or("")).map_err(|source| {
        DetectError::Unknown {
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn out(code: i32, stdout: &str) -> HostOutput {
        HostOutput {
            code,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn services_and_modules_are_systemd_and_kmod_on_every_family() {
        for family in [OsFamily::Debian, OsFamily::Rpm] {
            let os = for_family(family);
            assert_eq!(os.family(), family);
            assert_eq!(
                os.service_query("linstor-satellite"),
                words(&["systemctl", "is-active", "linstor-satellite"])
            );
            assert_eq!(
                os.service_start("drbd-reactor"),
                words(&["systemctl", "start", "drbd-reactor"])
            );
            assert_eq!(
                os.service_stop("drbd-reactor"),
                words(&["systemctl", "stop", "drbd-reactor"])
            );
            assert_eq!(os.module_query(), words(&["lsmod"]));
            assert_eq!(os.module_load("drbd"), words(&["modprobe", "drbd"]));
            assert_eq!(os.module_unload("drbd"), words(&["modprobe", "-r", "drbd"]));
        }
    }

    #[test]
    fn systemctl_is_active_is_judged_by_state_and_exit_code() {
        let os = for_family(OsFamily::Debian);
        assert_eq!(os.service_active(&out(0, "active\n")), Ok(true));
        assert_eq!(os.service_active(&out(3, "inactive\n")), Ok(false));
        assert_eq!(os.service_active(&out(3, "failed\n")), Ok(false));
        assert_eq!(os.service_active(&out(4, "inactive\n")), Ok(false));
        assert!(os.service_active(&out(1, "")).is_err());
        assert!(os.service_active(&out(0, "reloading\n")).is_err());
    }

    #[test]
    fn a_module_is_loaded_when_lsmod_lists_it_dashes_or_underscores() {
        let os = for_family(OsFamily::Rpm);
        let lsmod = out(
            0,
            "Module                  Size  Used by\ndrbd_transport_tcp     28672  0\ndrbd                  995328  1 drbd_transport_tcp\n",
        );
        assert_eq!(os.module_loaded("drbd", &lsmod), Ok(true));
        assert_eq!(os.module_loaded("drbd-transport-tcp", &lsmod), Ok(true));
        assert_eq!(os.module_loaded("bonding", &lsmod), Ok(false));
        assert!(os.module_loaded("drbd", &out(0, "drbd 1 0\n")).is_err());
    }

    #[test]
    fn the_family_is_detected_from_os_release_under_the_host_root() {
        let dir = std::env::temp_dir().join(format!("nodewright-os-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("usr/lib")).unwrap();
        std::fs::write(
            dir.join("usr/lib/os-release"),
            "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
        )
        .unwrap();
        assert_eq!(detect(&dir).unwrap(), OsFamily::Rpm);
        std::fs::write(dir.join("etc/os-release"), "ID=debian\n").unwrap();
        assert_eq!(detect(&dir).unwrap(), OsFamily::Debian);
        std::fs::write(dir.join("etc/os-release"), "ID=arch\n").unwrap();
        let e = detect(&dir).unwrap_err();
        assert!(e.to_string().contains("\"arch\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(detect(&dir), Err(DetectError::Read { .. })));
    }
}

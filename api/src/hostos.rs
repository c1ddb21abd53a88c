//! The host operating system's family, as far as Nodewright's seams care: which package manager
//! the node agent drives. One pure mapping from an `/etc/os-release` `ID` (and `ID_LIKE`) or an
//! `EdgeCluster`'s `profile.operatingSystem` to the family, shared by the operator and the agent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A family of host operating systems that install packages the same way. Services (systemd)
/// and kernel modules (kmod) are managed alike in every family Nodewright knows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OsFamily {
    /// Debian and its derivatives: dpkg and apt.
    Debian,
    /// RPM-based distributions with dnf: RHEL, Rocky, AlmaLinux, CentOS Stream, Fedora, Oracle.
    Rpm,
}

/// An operating system the mapping does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown operating system {0:?}: known are debian, ubuntu (dpkg/apt) and rhel, rocky, almalinux, centos, fedora, ol (rpm/dnf)"
)]
pub struct UnknownOs(pub String);

/// The `ID`s of each family. `ID_LIKE` is read with the same table.
const KNOWN: &[(&str, OsFamily)] = &[
    ("debian", OsFamily::Debian),
    ("ubuntu", OsFamily::Debian),
    ("rhel", OsFamily::Rpm),
    ("rocky", OsFamily::Rpm),
    ("almalinux", OsFamily::Rpm),
    ("centos", OsFamily::Rpm),
    ("fedora", OsFamily::Rpm),
    ("ol", OsFamily::Rpm),
];

impl OsFamily {
    /// The family's name as a flag or a profile spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            OsFamily::Debian => "debian",
            OsFamily::Rpm => "rpm",
        }
    }

    /// The family of an operating system `ID` (`debian`, `rocky`, …) or a family name (`rpm`).
    /// Case does not matter; an unknown value is an error that names it.
    pub fn from_id(id: &str) -> Result<Self, UnknownOs> {
        let lower = id.trim().to_ascii_lowercase();
        if lower == "rpm" {
            return Ok(OsFamily::Rpm);
        }
        KNOWN
            .iter()
            .find(|(known, _)| *known == lower)
            .map(|(_, family)| *family)
            .ok_or_else(|| UnknownOs(id.to_owned()))
    }

    /// The family from `/etc/os-release`'s `ID` and `ID_LIKE` (space-separated): the `ID` if it is
    /// known, else the first known word of `ID_LIKE` (a derivative says whom it is like).
    pub fn from_os_release(id: &str, id_like: &str) -> Result<Self, UnknownOs> {
        Self::from_id(id).or_else(|e| {
            id_like
                .split_whitespace()
                .find_map(|like| Self::from_id(like).ok())
                .ok_or(e)
        })
    }
}

impl fmt::Display for OsFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OsFamily {
    type Err = UnknownOs;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_id(s)
    }
}

/// `ID` and `ID_LIKE` of an `/etc/os-release` file (quotes removed), `None` for a missing key.
pub fn os_release_ids(text: &str) -> (Option<String>, Option<String>) {
    let mut id = None;
    let mut like = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
        match key.trim() {
            "ID" => id = Some(value),
            "ID_LIKE" => like = Some(value),
            _ => {}
        }
    }
    (id, like)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_ids_map_to_their_family_and_unknown_ones_are_named() {
        assert_eq!(OsFamily::from_id("debian"), Ok(OsFamily::Debian));
        assert_eq!(OsFamily::from_id("Ubuntu"), Ok(OsFamily::Debian));
        for id in ["rhel", "rocky", "almalinux", "centos", "fedora", "ol", "rpm"] {
            assert_eq!(OsFamily::from_id(id), Ok(OsFamily::Rpm), "{id}");
        }
        let e = OsFamily::from_id("opensuse-leap").unwrap_err();
        assert!(e.to_string().contains("\"opensuse-leap\""), "{e}");
    }

    #[test]
    fn a_derivative_is_known_by_its_id_like() {
        assert_eq!(
            OsFamily::from_os_release("linuxmint", "ubuntu debian"),
            Ok(OsFamily::Debian)
        );
        assert_eq!(
            OsFamily::from_os_release("navy", "rhel centos fedora"),
            Ok(OsFamily::Rpm)
        );
        assert_eq!(
            OsFamily::from_os_release("arch", ""),
            Err(UnknownOs("arch".into()))
        );
    }

    #[test]
    fn os_release_ids_are_read_with_and_without_quotes() {
        let rocky = "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n";
        assert_eq!(
            os_release_ids(rocky),
            (Some("rocky".into()), Some("rhel centos fedora".into()))
        );
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(os_release_ids(debian), (Some("debian".into()), None));
    }
}

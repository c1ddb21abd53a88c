//! What the host's package manager and module tools print about one package or module, as the
//! node agent's OS seam asks for it: `dpkg-query -W -f '${Status} ${Version}\n' PKG` (Debian),
//! `rpm -q --qf '%{VERSION}-%{RELEASE}\n' PKG` (RPM-based hosts) and `lsmod` (kmod, both).
//!
//! Pure: text in, typed value or positioned [`ParseError`] out. The agent judges these outputs
//! before it changes anything, so an output that is not exactly one of these shapes is an error,
//! never a guess.

use nom::{
    Parser,
    bytes::complete::{tag, take_while1},
    character::complete::char,
    combinator::{cut, opt},
    error::context,
    sequence::{preceded, terminated},
};
use serde::Serialize;

use crate::ParseError;
use crate::text::{Line, PResult, blanks1, lines, run};

const DPKG: &str = "dpkg-query-status";
const RPM: &str = "rpm-query";
const LSMOD: &str = "lsmod";

/// One package as `dpkg-query -W -f '${Status} ${Version}\n'` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DpkgPackage {
    /// The selection state (`install`, `hold`, `deinstall`, `purge`, `unknown`).
    pub want: String,
    /// The error flag (`ok`, `reinstreq`).
    pub error: String,
    /// The package state (`installed`, `half-configured`, `unpacked`, `config-files`, …).
    pub status: String,
    /// `${Version}`; empty for a package dpkg knows but that has no version installed.
    pub version: String,
}

impl DpkgPackage {
    /// Installed and configured: the version is the one in use. A package left
    /// `half-configured` by a failed post-installation script is not.
    pub fn installed(&self) -> bool {
        self.status == "installed" && self.error == "ok" && !self.version.is_empty()
    }
}

/// What `rpm -q --qf '%{VERSION}-%{RELEASE}\n' PKG` says about one package name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RpmQuery {
    /// Installed, one `VERSION-RELEASE` per installed instance (kernel packages can have
    /// several), in the order rpm printed them.
    Installed {
        /// `VERSION-RELEASE` of each instance.
        versions: Vec<String>,
    },
    /// `package NAME is not installed` (rpm exits 1).
    NotInstalled {
        /// The name rpm echoed.
        name: String,
    },
}

/// One loaded module as `lsmod` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LsmodModule {
    /// Module name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Reference count.
    pub used: u64,
    /// Modules that use it.
    pub used_by: Vec<String>,
}

/// Characters of a Debian or RPM version string (epoch, upstream version, revision, release).
fn version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-' | '_' | '^')
}

/// Characters of a package or module name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')
}

fn status_word(i: &str) -> PResult<'_, &str> {
    take_while1(|c: char| c.is_ascii_lowercase() || c == '-').parse(i)
}

fn dpkg_line(i: &str) -> PResult<'_, DpkgPackage> {
    let (i, want) = context("a selection state such as `install`", status_word).parse(i)?;
    let (i, error) = cut(preceded(
        blanks1,
        context("an error flag such as `ok`", status_word),
    ))
    .parse(i)?;
    let (i, status) = cut(preceded(
        blanks1,
        context("a package state such as `installed`", status_word),
    ))
    .parse(i)?;
    // `${Version}` may be empty, and then the line ends in the separating blank.
    let (i, version) = cut(opt(preceded(
        char(' '),
        opt(context("a version", take_while1(version_char))),
    )))
    .parse(i)?;
    Ok((
        i,
        DpkgPackage {
            want: want.to_owned(),
            error: error.to_owned(),
            status: status.to_owned(),
            version: version.flatten().unwrap_or("").to_owned(),
        },
    ))
}

/// The one non-blank line of `input`, or an error at the second one.
fn one_line<'a>(
    format: &'static str,
    input: &'a str,
    expected: &'static str,
) -> Result<Line<'a>, ParseError> {
    let all = lines(input);
    let mut it = all.iter().filter(|l| !l.is_blank());
    let first = *it
        .next()
        .ok_or_else(|| ParseError::at(format, input, input.len(), expected))?;
    if let Some(extra) = it.next() {
        return Err(ParseError::at(format, input, extra.offset, "end of input"));
    }
    Ok(first)
}

/// Parses `dpkg-query -W -f '${Status} ${Version}\n' PKG` for one package. A package dpkg has
/// never heard of prints nothing on standard output (and `no packages found matching PKG` on
/// standard error, exit 1): that is the caller's to judge from the exit code.
pub fn parse_dpkg_query_status(input: &str) -> Result<DpkgPackage, ParseError> {
    let line = one_line(DPKG, input, "`want error status version`")?;
    run(
        DPKG,
        input,
        &line,
        line.text,
        "`want error status version`",
        dpkg_line,
    )
}

fn rpm_not_installed(i: &str) -> PResult<'_, &str> {
    preceded(
        tag("package "),
        cut(terminated(
            context("a package name", take_while1(|c: char| !c.is_whitespace())),
            context("` is not installed`", tag(" is not installed")),
        )),
    )
    .parse(i)
}

fn rpm_version(i: &str) -> PResult<'_, &str> {
    // VERSION-RELEASE: both parts non-empty.
    let (rest, v) = context("`VERSION-RELEASE`", take_while1(version_char)).parse(i)?;
    match v.rsplit_once('-') {
        Some((version, release)) if !version.is_empty() && !release.is_empty() => Ok((rest, v)),
        _ => Err(nom::Err::Error(crate::text::NomErr {
            input: i,
            expected: Some("`VERSION-RELEASE`"),
            kind: nom::error::ErrorKind::Verify,
        })),
    }
}

/// Parses `rpm -q --qf '%{VERSION}-%{RELEASE}\n' PKG` for one package name: one
/// `VERSION-RELEASE` line per installed instance, or rpm's `package PKG is not installed`.
pub fn parse_rpm_query(input: &str) -> Result<RpmQuery, ParseError> {
    let all = lines(input);
    let body: Vec<&Line<'_>> = all.iter().filter(|l| !l.is_blank()).collect();
    let Some(first) = body.first() else {
        return Err(ParseError::at(
            RPM,
            input,
            input.len(),
            "`VERSION-RELEASE` or `package NAME is not installed`",
        ));
    };
    if first.text.starts_with("package ") {
        let name = run(
            RPM,
            input,
            first,
            first.text,
            "`package NAME is not installed`",
            rpm_not_installed,
        )?;
        if let Some(extra) = body.get(1) {
            return Err(ParseError::at(RPM, input, extra.offset, "end of input"));
        }
        return Ok(RpmQuery::NotInstalled {
            name: name.to_owned(),
        });
    }
    let mut versions = Vec::new();
    for line in body {
        let v = run(RPM, input, line, line.text, "`VERSION-RELEASE`", rpm_version)?;
        versions.push(v.to_owned());
    }
    Ok(RpmQuery::Installed { versions })
}

fn lsmod_line(i: &str) -> PResult<'_, LsmodModule> {
    let (i, name) = context("a module name", take_while1(name_char)).parse(i)?;
    let (i, size) = cut(preceded(blanks1, crate::text::number)).parse(i)?;
    let (i, used) = cut(preceded(blanks1, crate::text::number)).parse(i)?;
    let (i, holders) = opt(preceded(
        blanks1,
        context(
            "comma-separated module names",
            take_while1(|c: char| name_char(c) || c == ','),
        ),
    ))
    .parse(i)?;
    let used_by = holders
        .map(|h| {
            h.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok((
        i,
        LsmodModule {
            name: name.to_owned(),
            size,
            used,
            used_by,
        },
    ))
}

/// Parses `lsmod`: the `Module Size Used by` header, then one module per line.
pub fn parse_lsmod(input: &str) -> Result<Vec<LsmodModule>, ParseError> {
    let all = lines(input);
    let mut it = all.iter().filter(|l| !l.is_blank());
    let header = it
        .next()
        .ok_or_else(|| ParseError::at(LSMOD, input, input.len(), "`Module Size Used by`"))?;
    let words: Vec<&str> = header.text.split_whitespace().collect();
    if words != ["Module", "Size", "Used", "by"] {
        return Err(ParseError::at(
            LSMOD,
            input,
            header.offset,
            "`Module Size Used by`",
        ));
    }
    let mut out = Vec::new();
    for line in it {
        out.push(run(
            LSMOD,
            input,
            line,
            line.text.trim_end_matches([' ', '\t']),
            "`name size used [holders]`",
            lsmod_line,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dpkg_status_and_version_of_an_installed_package() {
        let p = parse_dpkg_query_status("install ok installed 9.2.12-1\n").unwrap();
        assert!(p.installed());
        assert_eq!(p.version, "9.2.12-1");
        let p = parse_dpkg_query_status("install ok installed 1:2.36.1-8+deb12u1").unwrap();
        assert_eq!(p.version, "1:2.36.1-8+deb12u1");
    }

    #[test]
    fn a_half_configured_or_removed_package_is_not_installed() {
        let p = parse_dpkg_query_status("install ok half-configured 9.2.14-1\n").unwrap();
        assert!(!p.installed());
        let p = parse_dpkg_query_status("deinstall ok config-files 9.2.9-1\n").unwrap();
        assert!(!p.installed());
        let p = parse_dpkg_query_status("unknown ok not-installed \n").unwrap();
        assert_eq!(p.version, "");
        assert!(!p.installed());
    }

    #[test]
    fn dpkg_output_that_is_not_one_status_line_is_refused_with_a_position() {
        let e = parse_dpkg_query_status("install ok\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 11));
        let e = parse_dpkg_query_status("install ok installed 1-1\ninstall ok installed 2-1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse_dpkg_query_status("").is_err());
        assert!(parse_dpkg_query_status("9.2.12-1").is_err());
    }

    #[test]
    fn rpm_query_of_installed_and_missing_packages() {
        assert_eq!(
            parse_rpm_query("9.2.12-1.el9\n").unwrap(),
            RpmQuery::Installed {
                versions: vec!["9.2.12-1.el9".into()]
            }
        );
        assert_eq!(
            parse_rpm_query("5.14.0-427.13.1.el9_4\n5.14.0-503.11.1.el9_5\n").unwrap(),
            RpmQuery::Installed {
                versions: vec!["5.14.0-427.13.1.el9_4".into(), "5.14.0-503.11.1.el9_5".into()]
            }
        );
        assert_eq!(
            parse_rpm_query("package drbd-utils is not installed\n").unwrap(),
            RpmQuery::NotInstalled {
                name: "drbd-utils".into()
            }
        );
    }

    #[test]
    fn rpm_output_without_a_release_or_with_other_text_is_refused() {
        assert!(parse_rpm_query("9.2.12\n").is_err());
        assert!(parse_rpm_query("").is_err());
        let e = parse_rpm_query("package drbd-utils is installed\n").unwrap_err();
        assert_eq!(e.expected, "` is not installed`");
        assert!(parse_rpm_query("error: rpmdb open failed\n").is_err());
    }

    #[test]
    fn lsmod_lists_modules_with_their_holders() {
        let out = "Module                  Size  Used by\n\
                   drbd_transport_tcp     28672  1\n\
                   drbd                  995328  2 drbd_transport_tcp\n\
                   libcrc32c              12288  2 drbd,xfs\n";
        let m = parse_lsmod(out).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].name, "drbd");
        assert_eq!(m[1].used_by, vec!["drbd_transport_tcp"]);
        assert_eq!(m[2].used_by, vec!["drbd", "xfs"]);
        assert!(
            parse_lsmod("Module                  Size  Used by\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_lsmod("drbd 1 0\n").is_err());
        assert!(parse_lsmod("Module Size Used by\ndrbd x 0\n").is_err());
    }
}

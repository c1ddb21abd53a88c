//! The checks of a step's arguments: each is a name, a version or an address the host tool takes
//! as one argv word, never an option. [`super::parse_step`] applies them; they build nothing.

use std::net::IpAddr;

use super::StepError;

/// Checks a name-like argument: not empty, not an option, only characters host tools take in
/// names. Arguments are passed as argv words (no shell), so this guards the tools' own option
/// parsing, not a shell.
pub(super) fn name_arg(
    step: &'static str,
    index: usize,
    name: &'static str,
    value: &str,
) -> Result<String, StepError> {
    let bad = |reason| StepError::BadArgument {
        step,
        index,
        name,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.starts_with('-') {
        return Err(bad("it starts with '-'"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
    {
        return Err(bad("only letters, digits and . _ - : / are allowed"));
    }
    Ok(value.to_owned())
}

/// A package, unit or module name: `^[A-Za-z0-9][A-Za-z0-9._+@:-]*$` narrowed per kind by
/// `extra` (the punctuation allowed besides letters and digits), so it can never be read as an
/// option and names only what the tools take as one name.
fn os_name_arg(
    step: &'static str,
    index: usize,
    name: &'static str,
    value: &str,
    extra: &'static [char],
    reason: &'static str,
) -> Result<String, StepError> {
    let bad = |reason| StepError::BadArgument {
        step,
        index,
        name,
        value: value.to_owned(),
        reason,
    };
    let mut chars = value.chars();
    match chars.next() {
        None => return Err(bad("it is empty")),
        Some(c) if !c.is_ascii_alphanumeric() => return Err(bad("it must start with a letter or digit")),
        Some(_) => {}
    }
    if value.len() > 255 || !chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(&c)) {
        return Err(bad(reason));
    }
    Ok(value.to_owned())
}

/// A package name (Debian policy's and rpm's common ground): lower case, digits, `. + - _`.
pub(super) fn package_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    os_name_arg(
        step,
        index,
        "package",
        value,
        &['.', '+', '-', '_'],
        "only a-z 0-9 . + - _ are allowed",
    )
    .and_then(|v| {
        if v.chars().any(|c| c.is_ascii_uppercase()) {
            Err(StepError::BadArgument {
                step,
                index,
                name: "package",
                value: value.to_owned(),
                reason: "only a-z 0-9 . + - _ are allowed",
            })
        } else {
            Ok(v)
        }
    })
}

/// A version as dpkg or rpm spells it: starts with a digit (or an epoch `N:`), then letters,
/// digits and `. + ~ : - _`.
pub(super) fn version_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    let v = os_name_arg(
        step,
        index,
        "version",
        value,
        &['.', '+', '~', ':', '-', '_'],
        "only letters, digits and . + ~ : - _ are allowed",
    )?;
    if !v.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(StepError::BadArgument {
            step,
            index,
            name: "version",
            value: value.to_owned(),
            reason: "a version starts with a digit",
        });
    }
    Ok(v)
}

/// A systemd unit name: letters, digits and `: _ . @ -`.
pub(super) fn unit_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    os_name_arg(
        step,
        index,
        "unit",
        value,
        &[':', '_', '.', '@', '-'],
        "only letters, digits and : _ . @ - are allowed",
    )
}

/// A kernel module name: lower case, digits, `_` and `-`.
pub(super) fn module_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    os_name_arg(
        step,
        index,
        "module",
        value,
        &['_', '-'],
        "only letters, digits, _ and - are allowed",
    )
    .and_then(|v| {
        if v.chars().any(|c| c.is_ascii_uppercase()) {
            Err(StepError::BadArgument {
                step,
                index,
                name: "module",
                value: value.to_owned(),
                reason: "module names are lower case",
            })
        } else {
            Ok(v)
        }
    })
}

/// An IP address, with an optional `/prefix` dropped as the legacy script does (`${ip%/*}`).
pub(super) fn ip_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    let addr = value.split_once('/').map_or(value, |(a, _)| a);
    addr.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| StepError::BadArgument {
            step,
            index,
            name: "ip",
            value: value.to_owned(),
            reason: "not an IP address",
        })
}

/// A DRBD resource name as LINSTOR allows it: a letter, digit or `_` first, then letters,
/// digits, `_` and `-`, at most 48 characters. No `/` or `:`, which `drbdadm` reads as a
/// volume or a peer.
pub(super) fn resource_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    let bad = |reason| StepError::BadArgument {
        step,
        index,
        name: "resource",
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("it must start with a letter, digit or _"));
    }
    if value.len() > 48
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(bad("only letters, digits, _ and - are allowed, at most 48"));
    }
    Ok(value.to_owned())
}

/// A backup's label, the name of its directory: a letter or digit first (so never `.` or `..`),
/// then letters, digits and `. _ -`, at most 128 characters.
pub(super) fn label_arg(step: &'static str, index: usize, value: &str) -> Result<String, StepError> {
    os_name_arg(
        step,
        index,
        "label",
        value,
        &['.', '_', '-'],
        "only letters, digits and . _ - are allowed",
    )
    .and_then(|v| {
        if v.len() > 128 {
            Err(StepError::BadArgument {
                step,
                index,
                name: "label",
                value: value.to_owned(),
                reason: "at most 128 characters",
            })
        } else {
            Ok(v)
        }
    })
}

//! The script's marks on its own Node object: the `vx-rail.io/*` annotations and labels, read
//! from `key: value` (or `key=value`) lines as the contract prints them, the labels from
//! `key=value` lines as `kubectl label` takes them, and the
//! taints in `kubectl taint` syntax (`key[=value]:Effect`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::blob::{
    LastRun, NodeRole, StorageTaintReason, UpgradeStateAnnotation, parse_last_run,
    parse_upgrade_state_annotation,
};
use super::contract::{PREFIX, annotation, label, taint};
use super::known_enum;
use crate::{ParseError, text::lines};

known_enum! {
    /// The `vx-rail.io/state` annotation: the `status` states plus `error`.
    AnnotatedState {
        Ready = "ready", Degraded = "degraded", Recovering = "recovering",
        Upgrading = "upgrading", Joining = "joining", Error = "error",
    }
}

known_enum! {
    /// A taint's effect.
    TaintEffect {
        NoSchedule = "NoSchedule", PreferNoSchedule = "PreferNoSchedule", NoExecute = "NoExecute",
    }
}

/// Moves an error found in a value to its place in the whole input.
fn reposition(e: ParseError, input: &str, base: usize) -> ParseError {
    ParseError::at(e.format, input, base + e.offset, e.expected)
}

/// Splits `key=value`, or also `key: value` when `colon` is set; keys contain neither `:` nor
/// `=`. Labels are only ever written `key=value`, which keeps them apart from annotations.
fn key_value<'a>(
    format: &'static str,
    input: &str,
    line: &crate::text::Line<'a>,
    colon: bool,
) -> Result<(&'a str, &'a str, usize), ParseError> {
    let text = line.text;
    let found = if colon {
        text.find([':', '='])
    } else {
        text.find('=')
    };
    let Some(sep) = found else {
        let expected = if colon {
            "`: ` or `=` after the key"
        } else {
            "`=` after the key"
        };
        return Err(ParseError::at(format, input, line.offset + text.len(), expected));
    };
    let key = text.get(..sep).unwrap_or("").trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(ParseError::at(
            format,
            input,
            line.offset,
            "an annotation or label key",
        ));
    }
    let rest = text.get(sep + 1..).unwrap_or("");
    let value = if text.as_bytes().get(sep) == Some(&b':') {
        rest.strip_prefix(' ').unwrap_or(rest)
    } else {
        rest
    };
    Ok((key, value, line.offset_of(value)))
}

/// The `vx-rail.io/*` annotations.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct NodeAnnotations {
    /// `vx-rail.io/state`.
    pub state: Option<AnnotatedState>,
    /// `vx-rail.io/last-run`.
    pub last_run: Option<LastRun>,
    /// `vx-rail.io/upgrade-state`.
    pub upgrade_state: Option<UpgradeStateAnnotation>,
    /// `vx-rail.io/bond-active`: `Some(None)` when the annotation says `none`.
    pub bond_active: Option<Option<String>>,
    /// `vx-rail.io/boot-id`.
    pub boot_id: Option<String>,
    /// Other `vx-rail.io/` annotations, which the contract does not list.
    pub unknown: BTreeMap<String, String>,
    /// Annotations outside `vx-rail.io/`, kept as written.
    pub other: BTreeMap<String, String>,
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Parses Node annotations, one `key: value` per line; blank lines are skipped.
pub fn parse_node_annotations(input: &str) -> Result<NodeAnnotations, ParseError> {
    const FORMAT: &str = "legacy-node-annotations";
    let mut out = NodeAnnotations::default();
    for line in lines(input).iter().filter(|l| !l.is_blank()) {
        let (key, value, at) = key_value(FORMAT, input, line, true)?;
        match key {
            annotation::STATE => out.state = Some(AnnotatedState::from_text(value)),
            annotation::LAST_RUN => {
                out.last_run = Some(parse_last_run(value).map_err(|e| reposition(e, input, at))?);
            }
            annotation::UPGRADE_STATE => {
                out.upgrade_state =
                    Some(parse_upgrade_state_annotation(value).map_err(|e| reposition(e, input, at))?);
            }
            annotation::BOND_ACTIVE => {
                out.bond_active = Some(
                    Some(value)
                        .filter(|v| *v != "none" && !v.is_empty())
                        .map(str::to_owned),
                );
            }
            annotation::BOOT_ID => {
                if !is_uuid(value) {
                    return Err(ParseError::at(FORMAT, input, at, "a boot id (UUID)"));
                }
                out.boot_id = Some(value.to_owned());
            }
            k if k.starts_with(PREFIX) => {
                out.unknown.insert(k.to_owned(), value.to_owned());
            }
            k => {
                out.other.insert(k.to_owned(), value.to_owned());
            }
        }
    }
    Ok(out)
}

/// The `vx-rail.io/*` labels.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct NodeLabels {
    /// `vx-rail.io/role`.
    pub role: Option<NodeRole>,
    /// `vx-rail.io/storage-ready`.
    pub storage_ready: Option<bool>,
    /// Other `vx-rail.io/` labels, which the contract does not list.
    pub unknown: BTreeMap<String, String>,
    /// Labels outside `vx-rail.io/`, kept as written.
    pub other: BTreeMap<String, String>,
}

/// Parses Node labels, one `key=value` per line; blank lines are skipped.
pub fn parse_node_labels(input: &str) -> Result<NodeLabels, ParseError> {
    const FORMAT: &str = "legacy-node-labels";
    let mut out = NodeLabels::default();
    for line in lines(input).iter().filter(|l| !l.is_blank()) {
        let (key, value, at) = key_value(FORMAT, input, line, false)?;
        match key {
            label::ROLE => out.role = Some(NodeRole::from_text(value)),
            label::STORAGE_READY => {
                out.storage_ready = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ParseError::at(FORMAT, input, at, "`true` or `false`")),
                });
            }
            k if k.starts_with(PREFIX) => {
                out.unknown.insert(k.to_owned(), value.to_owned());
            }
            k => {
                out.other.insert(k.to_owned(), value.to_owned());
            }
        }
    }
    Ok(out)
}

/// One Node taint.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NodeTaint {
    /// The taint key.
    pub key: String,
    /// The taint value, if any.
    pub value: Option<String>,
    /// The effect.
    pub effect: TaintEffect,
    /// For `vx-rail.io/storage-not-ready`: the reason (its value).
    pub storage_not_ready: Option<StorageTaintReason>,
    /// For `vx-rail.io/upgrade-in-progress`: the upgrade's target version (its value).
    pub upgrade_to: Option<String>,
}

/// Parses taints, one `key[=value]:Effect` per line as `kubectl taint` writes them.
pub fn parse_node_taints(input: &str) -> Result<Vec<NodeTaint>, ParseError> {
    const FORMAT: &str = "legacy-node-taints";
    let mut out = Vec::new();
    for line in lines(input).iter().filter(|l| !l.is_blank()) {
        let text = line.text.trim_end();
        let Some((spec, effect)) = text.rsplit_once(':') else {
            return Err(ParseError::at(
                FORMAT,
                input,
                line.offset + text.len(),
                "`:<Effect>` after the taint",
            ));
        };
        let (key, value) = match spec.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (spec, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ParseError::at(FORMAT, input, line.offset, "a taint key"));
        }
        if effect.is_empty() || !effect.bytes().all(|c| c.is_ascii_alphabetic()) {
            return Err(ParseError::at(
                FORMAT,
                input,
                line.offset + text.len(),
                "a taint effect (`NoSchedule`, …)",
            ));
        }
        out.push(NodeTaint {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect: TaintEffect::from_text(effect),
            storage_not_ready: (key == taint::STORAGE_NOT_READY)
                .then(|| value.map(StorageTaintReason::from_text))
                .flatten(),
            upgrade_to: (key == taint::UPGRADE_IN_PROGRESS)
                .then(|| value.map(str::to_owned))
                .flatten(),
        });
    }
    Ok(out)
}

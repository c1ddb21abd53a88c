//! `linstor` list tables (`node list`, `resource list`, `storage-pool list`, `volume list`) as
//! the Python client prints them: UTF-8 box drawing (`╭ ┊ ╞ ╰`, the default since client 1.0) or
//! ASCII (`+---+`, `|`, older clients and `--no-utf8`), with or without ANSI colours.
//!
//! Columns differ across client versions (`CreatedOn`, `SharedName`, `Layers` came and went), so
//! rows are read by header name; columns a typed view does not know land in its `extra` map.
//! Cells the client wraps over several lines (the first cell empty on the continuation line) are
//! joined with a newline.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    ParseError,
    text::{Line, lines},
};

const FORMAT: &str = "linstor-table";

/// A table as printed: header names and rows of cells, colour codes removed.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LinstorTable {
    /// Header names, in order.
    pub columns: Vec<String>,
    /// Rows; each has one cell per column.
    pub rows: Vec<Vec<String>>,
    /// The line each row starts on, for positioning errors in typed views.
    #[serde(skip)]
    row_lines: Vec<(usize, usize)>,
}

impl LinstorTable {
    /// The cell of `row` in the column named `name` (or any of its aliases).
    pub fn cell<'a>(&'a self, row: &'a [String], names: &[&str]) -> Option<&'a str> {
        let idx = self
            .columns
            .iter()
            .position(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))?;
        row.get(idx).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn has_column(&self, names: &[&str]) -> bool {
        self.columns
            .iter()
            .any(|c| names.iter().any(|n| c.eq_ignore_ascii_case(n)))
    }

    fn extra(&self, row: &[String], known: &[&[&str]]) -> BTreeMap<String, String> {
        self.columns
            .iter()
            .zip(row)
            .filter(|(c, _)| {
                !known
                    .iter()
                    .flat_map(|k| k.iter())
                    .any(|n| c.eq_ignore_ascii_case(n))
            })
            .map(|(c, v)| (c.clone(), v.clone()))
            .collect()
    }
}

/// Removes ANSI escape sequences (`ESC [ … letter`) the client adds for colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

const BORDER_CHARS: &str = "╭╮╰╯╞╡═─┄┈├┤┼╪+-=|┊│ ";
const RULE_CHARS: &str = "═─┄┈-=";
const CELL_SEPARATORS: [char; 3] = ['┊', '│', '|'];

enum Row {
    Border,
    Cells(Vec<(usize, String)>),
}

fn classify(line: &Line<'_>, input: &str) -> Result<Row, ParseError> {
    let clean = strip_ansi(line.text);
    let clean = clean.trim();
    if clean.chars().all(|c| BORDER_CHARS.contains(c)) && clean.chars().any(|c| RULE_CHARS.contains(c)) {
        return Ok(Row::Border);
    }
    let Some(sep) = clean.chars().next().filter(|c| CELL_SEPARATORS.contains(c)) else {
        return Err(ParseError::at(
            FORMAT,
            input,
            line.offset_of(line.text.trim_start()),
            "a table row or border",
        ));
    };
    if !clean.ends_with(sep) || clean.chars().count() < 2 {
        return Err(ParseError::at(
            FORMAT,
            input,
            line.offset + line.text.len(),
            format!("`{sep}` closing the row"),
        ));
    }
    // Split the original line so every cell keeps its offset; colours are removed per cell.
    let raw = line.text.trim_end();
    let mut cells = Vec::new();
    let mut parts = raw.split(sep);
    parts.next();
    let parts: Vec<&str> = parts.collect();
    let count = parts.len().saturating_sub(1);
    for part in parts.into_iter().take(count) {
        cells.push((line.offset_of(part), strip_ansi(part).trim().to_owned()));
    }
    Ok(Row::Cells(cells))
}

/// Parses one `linstor … list` table. Blank lines around it are fine; anything else outside the
/// table, or a second table, is an error.
pub fn parse_linstor_table(input: &str) -> Result<LinstorTable, ParseError> {
    let mut table = LinstorTable::default();
    let mut header_seen = false;
    let mut closed = false;
    for line in lines(input) {
        if line.is_blank() || strip_ansi(line.text).trim().is_empty() {
            continue;
        }
        if closed {
            return Err(ParseError::at(
                FORMAT,
                input,
                line.offset_of(line.text.trim_start()),
                "end of input after the table",
            ));
        }
        match classify(&line, input)? {
            Row::Border => {
                // Only the UTF-8 style has a distinct bottom border; ASCII tables end at input end.
                closed = strip_ansi(line.text).trim_start().starts_with('╰');
            }
            Row::Cells(cells) => {
                if !header_seen {
                    table.columns = cells.into_iter().map(|(_, c)| c).collect();
                    header_seen = true;
                    continue;
                }
                if cells.len() != table.columns.len() {
                    return Err(ParseError::at(
                        FORMAT,
                        input,
                        line.offset_of(line.text.trim_start()),
                        format!("a row of {} cells, as in the header", table.columns.len()),
                    ));
                }
                let continuation = cells.first().is_some_and(|(_, c)| c.is_empty());
                if continuation && let Some(prev) = table.rows.last_mut() {
                    for (cell, (_, more)) in prev.iter_mut().zip(cells) {
                        if !more.is_empty() {
                            if !cell.is_empty() {
                                cell.push('\n');
                            }
                            cell.push_str(&more);
                        }
                    }
                    continue;
                }
                table
                    .row_lines
                    .push((line.offset, cells.first().map_or(line.offset, |c| c.0)));
                table.rows.push(cells.into_iter().map(|(_, c)| c).collect());
            }
        }
    }
    if !header_seen {
        return Err(ParseError::at(
            FORMAT,
            input,
            input.len(),
            "a table with a header row",
        ));
    }
    Ok(table)
}

/// Refuses a table that lacks one of the columns defining a kind of `linstor … list` (`command`),
/// naming every missing column, at the header line. Each kind has a column no other kind's table
/// has (in the Python client's headers since 2018: `NodeType`, `Driver`, `ResourceName` beside
/// `Node`, `VolNr`/`VolumeNr`), so a table of one kind is never read as another.
fn require_columns(
    table: &LinstorTable,
    input: &str,
    command: &str,
    defining: &[&[&str]],
) -> Result<(), ParseError> {
    let missing: Vec<String> = defining
        .iter()
        .filter(|names| !table.has_column(names))
        .map(|names| {
            let mut spellings = names.iter().map(|n| format!("`{n}`"));
            let first = spellings.next().unwrap_or_default();
            let others: Vec<String> = spellings.collect();
            if others.is_empty() {
                first
            } else {
                format!("{first} (or {})", others.join(", "))
            }
        })
        .collect();
    let columns = match missing.as_slice() {
        [] => return Ok(()),
        [one] => format!("the {one} column"),
        [init @ .., last] => format!("the {} and {last} columns", init.join(", ")),
    };
    let header_offset = lines(input)
        .into_iter()
        .find(|l| {
            let t = strip_ansi(l.text);
            let t = t.trim();
            t.starts_with(CELL_SEPARATORS)
        })
        .map_or(0, |l| l.offset);
    Err(ParseError::at(
        FORMAT,
        input,
        header_offset,
        format!("{columns} of a `{command}` table"),
    ))
}

/// Converts `1.00 GiB`-style sizes (binary units, as the client prints them) to bytes.
fn capacity_bytes(text: &str) -> Option<u64> {
    let (num, unit) = text.trim().split_once(' ').unwrap_or((text.trim(), "B"));
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0_f64.powi(2),
        "GiB" => 1024.0_f64.powi(3),
        "TiB" => 1024.0_f64.powi(4),
        "PiB" => 1024.0_f64.powi(5),
        _ => return None,
    };
    let bytes = (n * mult).round();
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// One row of `linstor node list`.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LinstorNode {
    /// `Node`.
    pub name: String,
    /// `NodeType` (`SATELLITE`, `COMBINED`, `CONTROLLER`).
    pub node_type: Option<String>,
    /// `Addresses`, for example `10.10.12.1:3366 (PLAIN)`.
    pub addresses: Option<String>,
    /// `State` as printed (`Online`, `OFFLINE`, `Connected`, `OFFLINE (VERSION MISMATCH)`, …).
    pub state: Option<String>,
    /// Columns this view does not know.
    pub extra: BTreeMap<String, String>,
}

/// One row of `linstor storage-pool list`.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LinstorStoragePool {
    /// `StoragePool`.
    pub name: String,
    /// `Node`.
    pub node: Option<String>,
    /// `Driver` (`LVM_THIN`, `ZFS`, `DISKLESS`, …).
    pub driver: Option<String>,
    /// `PoolName`, the backing VG/zpool.
    pub pool_name: Option<String>,
    /// `FreeCapacity` in bytes.
    pub free_bytes: Option<u64>,
    /// `TotalCapacity` in bytes.
    pub total_bytes: Option<u64>,
    /// `CanSnapshots`.
    pub can_snapshots: Option<bool>,
    /// `State` (`Ok`, `Warning`, `Error`).
    pub state: Option<String>,
    /// `SharedName`, since client 1.7.
    pub shared_name: Option<String>,
    /// Columns this view does not know.
    pub extra: BTreeMap<String, String>,
}

/// One row of `linstor resource list`.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LinstorResource {
    /// `ResourceName`.
    pub name: String,
    /// `Node`.
    pub node: Option<String>,
    /// `Port`.
    pub port: Option<u64>,
    /// `Usage` (`InUse`, `Unused`).
    pub usage: Option<String>,
    /// `Conns` (`Ok`, `StandAlone(node)`, …).
    pub conns: Option<String>,
    /// `State` (`UpToDate`, `Diskless`, `SyncTarget(97.93%)`, …).
    pub state: Option<String>,
    /// Resync progress from a `SyncTarget(…%)`/`SyncSource(…%)` state.
    pub sync_percent: Option<f64>,
    /// `CreatedOn`, since client 1.4.
    pub created_on: Option<String>,
    /// Columns this view does not know.
    pub extra: BTreeMap<String, String>,
}

/// One row of `linstor volume list`.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct LinstorVolume {
    /// `Node`.
    pub node: String,
    /// `Resource`.
    pub resource: Option<String>,
    /// `StoragePool`.
    pub storage_pool: Option<String>,
    /// `VolNr` / `VolumeNr`.
    pub volume_number: Option<u64>,
    /// `MinorNr`.
    pub minor: Option<u64>,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `Allocated` in bytes.
    pub allocated_bytes: Option<u64>,
    /// `InUse`.
    pub in_use: Option<String>,
    /// `State`.
    pub state: Option<String>,
    /// Columns this view does not know.
    pub extra: BTreeMap<String, String>,
}

fn numeric_cell(
    table: &LinstorTable,
    input: &str,
    row_idx: usize,
    cell: Option<&str>,
) -> Result<Option<u64>, ParseError> {
    match cell {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            let at = table.row_lines.get(row_idx).map_or(0, |r| r.1);
            ParseError::at(FORMAT, input, at, format!("a number, not `{v}`"))
        }),
    }
}

const NODE: &[&str] = &["Node", "NodeName"];

/// Parses `linstor node list`; a table without `Node` and `NodeType` columns is refused.
pub fn parse_linstor_node_list(input: &str) -> Result<Vec<LinstorNode>, ParseError> {
    let t = parse_linstor_table(input)?;
    require_columns(&t, input, "linstor node list", &[NODE, &["NodeType"]])?;
    let known: &[&[&str]] = &[NODE, &["NodeType"], &["Addresses"], &["State"]];
    Ok(t.rows
        .iter()
        .map(|r| LinstorNode {
            name: t.cell(r, NODE).unwrap_or_default().to_owned(),
            node_type: owned(t.cell(r, &["NodeType"])),
            addresses: owned(t.cell(r, &["Addresses"])),
            state: owned(t.cell(r, &["State"])),
            extra: t.extra(r, known),
        })
        .collect())
}

const POOL: &[&str] = &["StoragePool"];

/// Parses `linstor storage-pool list`; a table without `StoragePool`, `Node` and `Driver` columns
/// is refused (a `volume list` has the first two).
pub fn parse_linstor_storage_pool_list(input: &str) -> Result<Vec<LinstorStoragePool>, ParseError> {
    let t = parse_linstor_table(input)?;
    require_columns(&t, input, "linstor storage-pool list", &[POOL, NODE, &["Driver"]])?;
    let known: &[&[&str]] = &[
        POOL,
        NODE,
        &["Driver"],
        &["PoolName"],
        &["FreeCapacity"],
        &["TotalCapacity"],
        &["CanSnapshots", "SupportsSnapshots"],
        &["State"],
        &["SharedName"],
    ];
    Ok(t.rows
        .iter()
        .map(|r| LinstorStoragePool {
            name: t.cell(r, POOL).unwrap_or_default().to_owned(),
            node: owned(t.cell(r, NODE)),
            driver: owned(t.cell(r, &["Driver"])),
            pool_name: owned(t.cell(r, &["PoolName"])),
            free_bytes: t.cell(r, &["FreeCapacity"]).and_then(capacity_bytes),
            total_bytes: t.cell(r, &["TotalCapacity"]).and_then(capacity_bytes),
            can_snapshots: t
                .cell(r, &["CanSnapshots", "SupportsSnapshots"])
                .map(|v| v.eq_ignore_ascii_case("true")),
            state: owned(t.cell(r, &["State"])),
            shared_name: owned(t.cell(r, &["SharedName"])),
            extra: t.extra(r, known),
        })
        .collect())
}

const RESOURCE: &[&str] = &["ResourceName", "Resource"];

fn sync_percent(state: &str) -> Option<f64> {
    let inner = state.split_once('(')?.1.strip_suffix("%)")?;
    inner.parse().ok()
}

/// Parses `linstor resource list`; a table without `ResourceName` and `Node` columns is refused.
/// `ResourceName` alone is not enough: `resource-definition list` has it too, without `Node`; and
/// `volume list` names its column `Resource`.
pub fn parse_linstor_resource_list(input: &str) -> Result<Vec<LinstorResource>, ParseError> {
    let t = parse_linstor_table(input)?;
    require_columns(&t, input, "linstor resource list", &[&["ResourceName"], NODE])?;
    let known: &[&[&str]] = &[
        RESOURCE,
        NODE,
        &["Port"],
        &["Usage"],
        &["Conns"],
        &["State"],
        &["CreatedOn"],
    ];
    t.rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let state = owned(t.cell(r, &["State"]));
            Ok(LinstorResource {
                name: t.cell(r, RESOURCE).unwrap_or_default().to_owned(),
                node: owned(t.cell(r, NODE)),
                port: numeric_cell(&t, input, i, t.cell(r, &["Port"]))?,
                usage: owned(t.cell(r, &["Usage"])),
                conns: owned(t.cell(r, &["Conns"])),
                sync_percent: state.as_deref().and_then(sync_percent),
                state,
                created_on: owned(t.cell(r, &["CreatedOn"])),
                extra: t.extra(r, known),
            })
        })
        .collect()
}

/// Parses `linstor volume list`; a table without `Node`, `Resource` and `VolNr` (`VolumeNr` in clients
/// before 2020) columns is refused.
pub fn parse_linstor_volume_list(input: &str) -> Result<Vec<LinstorVolume>, ParseError> {
    let t = parse_linstor_table(input)?;
    let vol_nr: &[&str] = &["VolNr", "VolumeNr"];
    require_columns(
        &t,
        input,
        "linstor volume list",
        &[NODE, &["Resource", "ResourceName"], vol_nr],
    )?;
    let known: &[&[&str]] = &[
        NODE,
        RESOURCE,
        POOL,
        vol_nr,
        &["MinorNr"],
        &["DeviceName"],
        &["Allocated"],
        &["InUse"],
        &["State"],
    ];
    t.rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(LinstorVolume {
                node: t.cell(r, NODE).unwrap_or_default().to_owned(),
                resource: owned(t.cell(r, RESOURCE)),
                storage_pool: owned(t.cell(r, POOL)),
                volume_number: numeric_cell(&t, input, i, t.cell(r, vol_nr))?,
                minor: numeric_cell(&t, input, i, t.cell(r, &["MinorNr"]))?,
                device_name: owned(t.cell(r, &["DeviceName"])),
                allocated_bytes: t.cell(r, &["Allocated"]).and_then(capacity_bytes),
                in_use: owned(t.cell(r, &["InUse"])),
                state: owned(t.cell(r, &["State"])),
                extra: t.extra(r, known),
            })
        })
        .collect()
}

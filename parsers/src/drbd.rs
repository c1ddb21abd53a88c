//! DRBD: `drbdadm status` / `drbdsetup status [--verbose --statistics]` of DRBD 9,
//! `drbdsetup events2 [--now] [--statistics]` lines, and `/proc/drbd` of DRBD 8.x (8.3, 8.4; on
//! DRBD 9 it only carries the version lines).
//!
//! All three are sequences of `key:value` tokens; the status output nests resources, volumes,
//! peer connections and peer volumes by indentation. Tokens this parser does not type are kept in
//! `other` maps, so newer fields (`open:`, `tls:`) survive without failing the parse.

use std::collections::BTreeMap;

use nom::{
    Parser,
    bytes::complete::{tag, take_while1},
    character::complete::char,
    combinator::{cut, opt, recognize, rest},
    error::context,
    multi::many0,
    sequence::{preceded, terminated},
};
use serde::Serialize;

use crate::{
    ParseError,
    text::{Line, PResult, blanks, blanks1, key, key_value, lines, numeric_field, run, word, yes_no},
};

const STATUS: &str = "drbd-status";
const EVENTS: &str = "drbd-events2";
const PROC: &str = "proc-drbd";

/// `drbdadm status` / `drbdsetup status` output: one entry per resource.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdStatus {
    /// Resources in output order.
    pub resources: Vec<DrbdResource>,
}

/// One resource as seen from this node.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdResource {
    /// Resource name.
    pub name: String,
    /// `node-id` (verbose output).
    pub node_id: Option<u64>,
    /// This node's role.
    pub role: String,
    /// `suspended` (`no`, `user`, `quorum`, …), verbose or when suspended.
    pub suspended: Option<String>,
    /// `write-ordering` (verbose).
    pub write_ordering: Option<String>,
    /// Local volumes.
    pub devices: Vec<DrbdDevice>,
    /// Peer connections.
    pub connections: Vec<DrbdConnection>,
    /// Other resource-level tokens.
    pub other: BTreeMap<String, String>,
}

/// One local volume.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdDevice {
    /// `volume`; absent in the short form of single-volume resources.
    pub volume: Option<u64>,
    /// `minor` (verbose).
    pub minor: Option<u64>,
    /// Disk state.
    pub disk: String,
    /// `client:yes` marks a diskless client (verbose).
    pub client: Option<bool>,
    /// `quorum`.
    pub quorum: Option<bool>,
    /// `open` (DRBD 9.1+).
    pub open: Option<bool>,
    /// `--statistics` counters (`size`, `read`, `written`, `al-writes`, …) in KiB or counts.
    pub statistics: BTreeMap<String, u64>,
    /// Other tokens (`al-suspended`, `blocked`, …).
    pub other: BTreeMap<String, String>,
}

/// One peer connection.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdConnection {
    /// Peer node name.
    pub name: String,
    /// `node-id` of the peer (verbose).
    pub node_id: Option<u64>,
    /// Connection state; DRBD prints none when `Connected` in the short form.
    pub connection: Option<String>,
    /// The peer's role.
    pub role: Option<String>,
    /// `congested` (verbose).
    pub congested: Option<bool>,
    /// Peer volumes.
    pub peer_devices: Vec<DrbdPeerDevice>,
    /// Other tokens (`ap-in-flight`, `rs-in-flight`, …).
    pub other: BTreeMap<String, String>,
}

/// One peer volume.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdPeerDevice {
    /// `volume`.
    pub volume: Option<u64>,
    /// `replication`; DRBD prints none when `Established` in the short form.
    pub replication: Option<String>,
    /// `peer-disk`.
    pub peer_disk: Option<String>,
    /// `peer-client` (verbose).
    pub peer_client: Option<bool>,
    /// `done`: resync progress in percent.
    pub done_percent: Option<f64>,
    /// `resync-suspended`.
    pub resync_suspended: Option<String>,
    /// `--statistics` counters (`received`, `sent`, `out-of-sync`, `pending`, `unacked`, …).
    pub statistics: BTreeMap<String, u64>,
    /// Other tokens.
    pub other: BTreeMap<String, String>,
}

const DEVICE_COUNTERS: &[&str] = &[
    "size",
    "read",
    "written",
    "al-writes",
    "bm-writes",
    "upper-pending",
    "lower-pending",
];
const PEER_COUNTERS: &[&str] = &[
    "received",
    "sent",
    "out-of-sync",
    "pending",
    "unacked",
    "dbdt1",
    "eta",
];

/// Zero or more blank-separated `key:value` tokens.
fn tokens(i: &str) -> PResult<'_, Vec<(&str, &str)>> {
    many0(preceded(blanks, key_value)).parse(i)
}

/// A resource or peer line: a name, then tokens.
fn named_line(i: &str) -> PResult<'_, (&str, Vec<(&str, &str)>)> {
    (
        context(
            "a resource or peer name",
            take_while1(|c: char| !c.is_whitespace() && c != ':'),
        ),
        terminated(tokens, blanks),
    )
        .parse(i)
}

fn token_line(i: &str) -> PResult<'_, Vec<(&str, &str)>> {
    terminated(tokens, blanks).parse(i)
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Resource,
    Device,
    Connection,
    PeerDevice,
}

/// Parses `drbdadm status` or `drbdsetup status`, with or without `--verbose --statistics`.
pub fn parse_drbd_status(input: &str) -> Result<DrbdStatus, ParseError> {
    let mut status = DrbdStatus::default();
    let mut ctx = Ctx::Resource;
    for line in lines(input) {
        if line.is_blank() {
            continue;
        }
        let text = line.text.trim_end_matches([' ', '\t']);
        let body = text.trim_start_matches([' ', '\t']);
        let starts_with_token = body.split_whitespace().next().is_some_and(|t| t.contains(':'));
        // drbdsetup prints a comment, `# No currently configured DRBD found.`, when there are no
        // resources: an empty status, not an error.
        if line.indent() == 0 && body.starts_with('#') {
            continue;
        }
        if line.indent() == 0 {
            let (name, toks) = run(STATUS, input, &line, body, "a resource line", named_line)?;
            let mut res = DrbdResource {
                name: name.to_owned(),
                ..DrbdResource::default()
            };
            resource_tokens(&mut res, &toks, &line, input)?;
            if res.role.is_empty() {
                return Err(ParseError::at(
                    STATUS,
                    input,
                    line.offset_of(body) + body.len(),
                    "`role:` on the resource line",
                ));
            }
            status.resources.push(res);
            ctx = Ctx::Resource;
            continue;
        }
        let Some(res) = status.resources.last_mut() else {
            return Err(ParseError::at(
                STATUS,
                input,
                line.offset,
                "a resource line at the start of the line",
            ));
        };
        if !starts_with_token {
            let (name, toks) = run(STATUS, input, &line, body, "a peer line", named_line)?;
            let mut conn = DrbdConnection {
                name: name.to_owned(),
                ..DrbdConnection::default()
            };
            connection_tokens(&mut conn, &toks, &line, input)?;
            res.connections.push(conn);
            ctx = Ctx::Connection;
            continue;
        }
        let toks = run(STATUS, input, &line, body, "`key:value` tokens", token_line)?;
        let first = toks.first().map(|(k, _)| *k).unwrap_or("");
        match ctx {
            Ctx::Resource if first == "volume" || first == "disk" => {
                let mut dev = DrbdDevice::default();
                device_tokens(&mut dev, &toks, &line, input)?;
                res.devices.push(dev);
                ctx = Ctx::Device;
            }
            Ctx::Resource => resource_tokens(res, &toks, &line, input)?,
            Ctx::Device if first == "volume" || first == "disk" => {
                let mut dev = DrbdDevice::default();
                device_tokens(&mut dev, &toks, &line, input)?;
                res.devices.push(dev);
            }
            Ctx::Device => {
                if let Some(dev) = res.devices.last_mut() {
                    device_tokens(dev, &toks, &line, input)?;
                }
            }
            Ctx::Connection | Ctx::PeerDevice => {
                let Some(conn) = res.connections.last_mut() else {
                    continue;
                };
                let new_peer_device =
                    ctx == Ctx::Connection || matches!(first, "volume" | "replication" | "peer-disk");
                if new_peer_device && !matches!(first, "received" | "sent" | "out-of-sync") {
                    let mut pd = DrbdPeerDevice::default();
                    peer_device_tokens(&mut pd, &toks, &line, input)?;
                    conn.peer_devices.push(pd);
                    ctx = Ctx::PeerDevice;
                } else if let Some(pd) = conn.peer_devices.last_mut() {
                    peer_device_tokens(pd, &toks, &line, input)?;
                }
            }
        }
    }
    Ok(status)
}

fn resource_tokens(
    res: &mut DrbdResource,
    toks: &[(&str, &str)],
    line: &Line<'_>,
    input: &str,
) -> Result<(), ParseError> {
    for &(k, v) in toks {
        match k {
            "role" => res.role = v.to_owned(),
            "node-id" => res.node_id = Some(numeric_field(STATUS, input, line, v)?),
            "suspended" => res.suspended = Some(v.to_owned()),
            "write-ordering" => res.write_ordering = Some(v.to_owned()),
            _ => {
                res.other.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(())
}

fn device_tokens(
    dev: &mut DrbdDevice,
    toks: &[(&str, &str)],
    line: &Line<'_>,
    input: &str,
) -> Result<(), ParseError> {
    for &(k, v) in toks {
        match k {
            "volume" => dev.volume = Some(numeric_field(STATUS, input, line, v)?),
            "minor" => dev.minor = Some(numeric_field(STATUS, input, line, v)?),
            "disk" => dev.disk = v.to_owned(),
            "client" => dev.client = Some(yes_no(STATUS, input, line, v)?),
            "quorum" => dev.quorum = Some(yes_no(STATUS, input, line, v)?),
            "open" => dev.open = Some(yes_no(STATUS, input, line, v)?),
            c if DEVICE_COUNTERS.contains(&c) => {
                dev.statistics
                    .insert(k.to_owned(), numeric_field(STATUS, input, line, v)?);
            }
            _ => {
                dev.other.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(())
}

fn connection_tokens(
    conn: &mut DrbdConnection,
    toks: &[(&str, &str)],
    line: &Line<'_>,
    input: &str,
) -> Result<(), ParseError> {
    for &(k, v) in toks {
        match k {
            "node-id" => conn.node_id = Some(numeric_field(STATUS, input, line, v)?),
            "connection" => conn.connection = Some(v.to_owned()),
            "role" => conn.role = Some(v.to_owned()),
            "congested" => conn.congested = Some(yes_no(STATUS, input, line, v)?),
            _ => {
                conn.other.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(())
}

fn peer_device_tokens(
    pd: &mut DrbdPeerDevice,
    toks: &[(&str, &str)],
    line: &Line<'_>,
    input: &str,
) -> Result<(), ParseError> {
    for &(k, v) in toks {
        match k {
            "volume" => pd.volume = Some(numeric_field(STATUS, input, line, v)?),
            "replication" => pd.replication = Some(v.to_owned()),
            "peer-disk" => pd.peer_disk = Some(v.to_owned()),
            "peer-client" => pd.peer_client = Some(yes_no(STATUS, input, line, v)?),
            "resync-suspended" => pd.resync_suspended = Some(v.to_owned()),
            "done" => {
                let pct = v.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p));
                pd.done_percent = Some(
                    pct.ok_or_else(|| ParseError::at(STATUS, input, line.offset_of(v), "a percentage"))?,
                );
            }
            c if PEER_COUNTERS.contains(&c) => {
                pd.statistics
                    .insert(k.to_owned(), numeric_field(STATUS, input, line, v)?);
            }
            _ => {
                pd.other.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(())
}

/// What happened to the object an `events2` line is about.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DrbdEventVerb {
    /// The object exists (initial state dump).
    Exists,
    /// The object was created.
    Create,
    /// The object changed.
    Change,
    /// The object was destroyed.
    Destroy,
    /// A user-mode helper was called.
    Call,
    /// A user-mode helper returned.
    Response,
}

/// All lines of an `events2` capture.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct DrbdEvents {
    /// Events in order, without the `exists -` marker.
    pub events: Vec<DrbdEvent>,
    /// Index into `events` where the `--now`/initial dump ended (`exists -`), if it did.
    pub initial_state_end: Option<usize>,
}

/// One `events2` line.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DrbdEvent {
    /// The timestamp, with `--timestamps`.
    pub timestamp: Option<String>,
    /// What happened.
    pub verb: DrbdEventVerb,
    /// The object type: `resource`, `connection`, `device`, `peer-device`, `path`, `helper`, …
    pub object: String,
    /// `name` (the resource), when present.
    pub name: Option<String>,
    /// All `key:value` fields, including `name`.
    pub fields: BTreeMap<String, String>,
}

fn event_verb(i: &str) -> PResult<'_, DrbdEventVerb> {
    context(
        "an event verb (`exists`, `create`, `change`, `destroy`, `call`, `response`)",
        nom::branch::alt((
            tag("exists").map(|_| DrbdEventVerb::Exists),
            tag("create").map(|_| DrbdEventVerb::Create),
            tag("change").map(|_| DrbdEventVerb::Change),
            tag("destroy").map(|_| DrbdEventVerb::Destroy),
            tag("call").map(|_| DrbdEventVerb::Call),
            tag("response").map(|_| DrbdEventVerb::Response),
        )),
    )
    .parse(i)
}

fn timestamp(i: &str) -> PResult<'_, &str> {
    terminated(
        nom::combinator::recognize((
            take_while1(|c: char| c.is_ascii_digit()),
            char('-'),
            take_while1(|c: char| !c.is_whitespace()),
        )),
        blanks1,
    )
    .parse(i)
}

type RawEvent<'a> = (Option<&'a str>, DrbdEventVerb, &'a str, Vec<(&'a str, &'a str)>);

fn event_line(i: &str) -> PResult<'_, RawEvent<'_>> {
    let (i, ts) = opt(timestamp).parse(i)?;
    let (i, verb) = event_verb(i)?;
    // Once the verb matched, the line is an event: the object must follow.
    let (i, object) = cut(preceded(
        blanks1,
        context(
            "an object type",
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-'),
        ),
    ))
    .parse(i)?;
    let (i, fields) = cut(terminated(tokens, blanks)).parse(i)?;
    Ok((i, (ts, verb, object, fields)))
}

/// Parses `drbdsetup events2` output, one event per line; `exists -` marks the end of the
/// initial state dump.
pub fn parse_drbd_events2(input: &str) -> Result<DrbdEvents, ParseError> {
    let mut out = DrbdEvents::default();
    for line in lines(input) {
        if line.is_blank() {
            continue;
        }
        let (ts, verb, object, fields) = run(
            EVENTS,
            input,
            &line,
            line.trimmed(),
            "an events2 line",
            event_line,
        )?;
        if object == "-" || (verb == DrbdEventVerb::Exists && object.is_empty()) {
            out.initial_state_end = Some(out.events.len());
            continue;
        }
        let fields: BTreeMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        out.events.push(DrbdEvent {
            timestamp: ts.map(str::to_owned),
            verb,
            object: object.to_owned(),
            name: fields.get("name").cloned(),
            fields,
        });
    }
    Ok(out)
}

/// `/proc/drbd` of DRBD 8.x.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct ProcDrbd {
    /// `version:`, for example `8.4.11 (api:1/proto:86-101)`.
    pub version: String,
    /// `GIT-hash:` line content.
    pub git_hash: Option<String>,
    /// `srcversion:`.
    pub srcversion: Option<String>,
    /// Minors in file order.
    pub minors: Vec<ProcDrbdMinor>,
    /// Top-level `Key: value` lines this parser does not know (DRBD 9 adds `Transports …:`).
    pub unknown: Vec<String>,
}

/// One minor (`N: cs:… ro:… ds:…`).
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct ProcDrbdMinor {
    /// The minor number.
    pub minor: u64,
    /// `cs`: connection state.
    pub connection_state: String,
    /// Local role from `ro:` (or `st:` before 8.3).
    pub role: Option<String>,
    /// Peer role.
    pub peer_role: Option<String>,
    /// Local disk state from `ds:` (or `ld:` before 8.3).
    pub disk_state: Option<String>,
    /// Peer disk state.
    pub peer_disk_state: Option<String>,
    /// Replication protocol letter (`A`, `B`, `C`).
    pub protocol: Option<String>,
    /// I/O state flags such as `r-----`.
    pub io_flags: Option<String>,
    /// Counters from the second line (`ns`, `nr`, `dw`, `dr`, `al`, `bm`, `lo`, `pe`, `ua`, `ap`, `ep`, `oos`).
    pub counters: BTreeMap<String, u64>,
    /// `wo:` write ordering (`f` flush, `d` drain, `b` barrier, `n` none).
    pub write_ordering: Option<String>,
    /// Resync or verify progress, while one runs.
    pub sync: Option<SyncProgress>,
    /// Lines of this minor this parser does not know (`resync:`, `act_log:`, …).
    pub unknown: Vec<String>,
}

/// The progress lines under a syncing minor.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct SyncProgress {
    /// `sync'ed:` (or `verified:`) percentage.
    pub percent: f64,
    /// Remaining amount, from `(remaining/total)`.
    pub remaining: Option<u64>,
    /// Total amount.
    pub total: Option<u64>,
    /// Unit of `remaining`/`total` (`K` or `M`).
    pub unit: Option<String>,
    /// `finish:` estimate as printed (`h:mm:ss`).
    pub finish: Option<String>,
    /// `speed:` as printed, for example `83,088 (100,400) K/sec`.
    pub speed: Option<String>,
}

fn minor_head(i: &str) -> PResult<'_, (u64, &str)> {
    (terminated(crate::text::number, char(':')), preceded(blanks, rest)).parse(i)
}

/// Parses `/proc/drbd`.
pub fn parse_proc_drbd(input: &str) -> Result<ProcDrbd, ParseError> {
    let all = lines(input);
    let mut it = all.iter().filter(|l| !l.is_blank());
    let first = it
        .next()
        .ok_or_else(|| ParseError::at(PROC, input, input.len(), "`version:`"))?;
    let version = run(
        PROC,
        input,
        first,
        first.trimmed(),
        "`version:`",
        context("`version:`", preceded((tag("version:"), blanks), rest)),
    )?;
    let mut out = ProcDrbd {
        version: version.trim().to_owned(),
        ..ProcDrbd::default()
    };
    for line in it {
        let body = line.trimmed();
        if let Some(v) = body.strip_prefix("GIT-hash:") {
            out.git_hash = Some(v.trim().to_owned());
            continue;
        }
        if let Some(v) = body.strip_prefix("srcversion:") {
            out.srcversion = Some(v.trim().to_owned());
            continue;
        }
        let looks_like_minor = body
            .split(':')
            .next()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if looks_like_minor {
            let (minor, rest_of_line) = run(PROC, input, line, body, "`N: cs:…`", minor_head)?;
            let mut m = ProcDrbdMinor {
                minor,
                ..ProcDrbdMinor::default()
            };
            minor_state(&mut m, line, rest_of_line, input)?;
            out.minors.push(m);
            continue;
        }
        if line.indent() == 0 && out.minors.is_empty() && body.contains(':') {
            out.unknown.push(body.to_owned());
            continue;
        }
        let Some(m) = out.minors.last_mut() else {
            return Err(ParseError::at(
                PROC,
                input,
                line.offset_of(body),
                "a minor line (`N: cs:…`)",
            ));
        };
        if line.indent() == 0 {
            return Err(ParseError::at(
                PROC,
                input,
                line.offset,
                "an indented line under a minor",
            ));
        }
        minor_detail(m, line, body, input)?;
    }
    Ok(out)
}

fn minor_state(m: &mut ProcDrbdMinor, line: &Line<'_>, text: &str, input: &str) -> Result<(), ParseError> {
    for tok in text.split_whitespace() {
        match tok.split_once(':') {
            Some(("cs", v)) => m.connection_state = v.to_owned(),
            Some(("ro" | "st", v)) => {
                let (a, b) = v.split_once('/').unwrap_or((v, ""));
                m.role = Some(a.to_owned());
                m.peer_role = (!b.is_empty()).then(|| b.to_owned());
            }
            Some(("ds" | "ld", v)) => {
                let (a, b) = v.split_once('/').unwrap_or((v, ""));
                m.disk_state = Some(a.to_owned());
                m.peer_disk_state = (!b.is_empty()).then(|| b.to_owned());
            }
            Some(_) => m.unknown.push(tok.to_owned()),
            None if tok.len() == 1 && tok.chars().all(|c| c.is_ascii_uppercase()) => {
                m.protocol = Some(tok.to_owned());
            }
            None => m.io_flags = Some(tok.to_owned()),
        }
    }
    if m.connection_state.is_empty() {
        return Err(ParseError::at(
            PROC,
            input,
            line.offset_of(text),
            "`cs:` connection state",
        ));
    }
    Ok(())
}

fn minor_detail(m: &mut ProcDrbdMinor, line: &Line<'_>, body: &str, input: &str) -> Result<(), ParseError> {
    if body.starts_with("ns:") {
        let toks = run(PROC, input, line, body, "counters", token_line)?;
        for (k, v) in toks {
            if k == "wo" {
                m.write_ordering = Some(v.to_owned());
            } else {
                m.counters
                    .insert(k.to_owned(), numeric_field(PROC, input, line, v)?);
            }
        }
        return Ok(());
    }
    if body.starts_with('[') {
        let (sync, extra) = sync_line(line, body, input)?;
        m.sync = Some(sync);
        if !extra.is_empty() {
            m.unknown.push(extra.to_owned());
        }
        return Ok(());
    }
    if body.starts_with("finish:") {
        let sync = m.sync.get_or_insert_with(SyncProgress::default);
        let after = body.trim_start_matches("finish:").trim_start();
        let (finish, speed) = match after.split_once("speed:") {
            Some((f, s)) => (f.trim(), Some(s.trim().to_owned())),
            None => (after.trim(), None),
        };
        sync.finish = Some(finish.to_owned());
        sync.speed = speed;
        return Ok(());
    }
    m.unknown.push(body.to_owned());
    Ok(())
}

/// `(remaining/total)unit` after the percentage.
type Amounts<'a> = (u64, u64, &'a str);

/// `key: value` pairs after the amounts, such as the `delay_probe: 145637` of DRBD 8.3.8.
fn trailing_pairs(i: &str) -> PResult<'_, &str> {
    recognize(many0(terminated((key, char(':'), blanks1, word), blanks))).parse(i)
}

/// `[==>....] sync'ed: 17.9% (3134016/3815352)M` (or `verified:` during online verify), then
/// any `key: value` pairs, returned as printed.
fn parse_sync_progress(i: &str) -> PResult<'_, (&str, Option<Amounts<'_>>, &str)> {
    let (i, _bar) = (char('['), take_while1(|c| c != ']'), char(']')).parse(i)?;
    let (i, _) = (blanks, word, blanks).parse(i)?;
    let (i, pct) = cut(context(
        "a percentage",
        take_while1(|c: char| c.is_ascii_digit() || c == '.'),
    ))
    .parse(i)?;
    let (i, _) = (char('%'), blanks).parse(i)?;
    let (i, amounts) = opt((
        preceded(char('('), crate::text::number),
        preceded(char('/'), crate::text::number),
        preceded(char(')'), take_while1(|c: char| c.is_ascii_alphabetic())),
    ))
    .parse(i)?;
    let (i, _) = blanks(i)?;
    let (i, extra) = trailing_pairs(i)?;
    Ok((i, (pct, amounts, extra.trim_end())))
}

/// The progress of a sync line and the pairs after it that [`SyncProgress`] does not type.
fn sync_line<'a>(line: &Line<'a>, body: &'a str, input: &str) -> Result<(SyncProgress, &'a str), ParseError> {
    let (pct, amounts, extra) = run(
        PROC,
        input,
        line,
        body,
        "a sync progress line",
        parse_sync_progress,
    )?;
    let percent = pct
        .parse::<f64>()
        .map_err(|_| ParseError::at(PROC, input, line.offset_of(pct), "a percentage"))?;
    let sync = SyncProgress {
        percent,
        remaining: amounts.map(|a| a.0),
        total: amounts.map(|a| a.1),
        unit: amounts.map(|a| a.2.to_owned()),
        ..SyncProgress::default()
    };
    Ok((sync, extra))
}

//! The offline verifier.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::Path;

use tlog_tiles::Hash;

use crate::TILE_WIDTH;
use crate::entry::Entry;
use crate::keys::Verifier;
use crate::layout::{self, TileId, Tree};
use crate::log::{CHECKPOINT_FILE, Hashes};

/// What [`verify`] trusts.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The keys whose signatures are trusted (more than one during a key rotation). The log's
    /// checkpoint must carry a valid signature by at least one of them.
    pub verifiers: Vec<Verifier>,
    /// An earlier checkpoint known to be genuine (the signed note text, e.g. as published to the
    /// cluster). The log must hold at least its entries, its checkpoint must not be older, and the
    /// two trees must be consistent: a rollback or a rewritten history is caught.
    pub checkpoint: Option<String>,
}

/// What a successful verification checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries in the log.
    pub entries: u64,
    /// Entries covered by the signed checkpoint.
    pub checkpoint_size: u64,
    /// The checkpoint's root hash (base64).
    pub root: String,
    /// The names and key ids (`name+hex`) of the trusted keys that signed the checkpoint.
    pub signed_by: Vec<String>,
    /// Entries appended after the checkpoint: their tiles are consistent, but no signature covers
    /// them yet.
    pub unsigned_entries: u64,
    /// Hash tiles compared against the entries.
    pub hash_tiles: usize,
    /// The trusted checkpoint's size, when one was given.
    pub trusted_size: Option<u64>,
}

/// Where verification found the first problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An entry: the lowest index that is wrong (modified, missing, out of order, unreadable, or
    /// the first entry no trusted signature covers).
    Entry(u64),
    /// A hash tile (its path) that disagrees with entries that are themselves consistent.
    Tile(String),
    /// The trusted checkpoint given in [`VerifyOptions`].
    TrustedCheckpoint,
    /// The log's `checkpoint` file.
    Checkpoint,
    /// The directory itself.
    Directory,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Entry(i) => write!(f, "entry {i}"),
            Location::Tile(path) => write!(f, "{path}"),
            Location::TrustedCheckpoint => write!(f, "trusted checkpoint"),
            Location::Checkpoint => write!(f, "checkpoint"),
            Location::Directory => write!(f, "log directory"),
        }
    }
}

/// The first problem found: where and what. Displayed as `<where>: <what>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {what}")]
pub struct VerifyError {
    /// Where.
    pub location: Location,
    /// What is wrong there.
    pub what: String,
}

impl VerifyError {
    fn new(location: Location, what: impl Into<String>) -> VerifyError {
        VerifyError {
            location,
            what: what.into(),
        }
    }

    /// The first bad entry index, when the problem is located at an entry.
    #[must_use]
    pub fn index(&self) -> Option<u64> {
        match self.location {
            Location::Entry(i) => Some(i),
            _ => None,
        }
    }

    /// Problems are reported in this order: entries (lowest index first), then tiles, then the
    /// trusted checkpoint, then the checkpoint.
    fn rank(&self) -> (u8, u64) {
        match &self.location {
            Location::Directory => (0, 0),
            Location::Entry(i) => (1, *i),
            Location::Tile(_) => (2, 0),
            Location::TrustedCheckpoint => (3, 0),
            Location::Checkpoint => (4, 0),
        }
    }
}

/// A checkpoint note: parsed, and whether a trusted key signed it.
struct Signed {
    size: u64,
    root: Hash,
    origin: String,
    signed_by: Vec<String>,
}

fn parse_note(bytes: &[u8], verifiers: &[Verifier], location: &Location) -> Result<Signed, VerifyError> {
    let fail = |what: String| VerifyError::new(location.clone(), what);
    let note = signed_note::Note::from_bytes(bytes).map_err(|e| fail(format!("not a signed note: {e}")))?;
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|e| fail(format!("not a C2SP checkpoint: {e}")))?;
    let list = signed_note::VerifierList::new(
        verifiers
            .iter()
            .map(|v| Box::new(v.note_verifier().clone()) as Box<dyn signed_note::Verifier>)
            .collect(),
    );
    let (verified, _unknown) = note.verify(&list).map_err(|e| {
        let signers = signature_names(bytes);
        fail(format!(
            "not signed by a trusted key ({e}); signed by: {}; trusted: {}",
            if signers.is_empty() {
                "nobody".to_string()
            } else {
                signers.join(", ")
            },
            verifiers
                .iter()
                .map(|v| v.text().split('+').take(2).collect::<Vec<_>>().join("+"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if verified.iter().any(|s| s.name() != checkpoint.origin()) {
        return Err(fail(format!(
            "signed by a key named {:?}, but the checkpoint's origin is {:?}",
            verified
                .first()
                .map(signed_note::Signature::name)
                .unwrap_or_default(),
            checkpoint.origin()
        )));
    }
    Ok(Signed {
        size: checkpoint.size(),
        root: *checkpoint.hash(),
        origin: checkpoint.origin().to_string(),
        signed_by: verified
            .iter()
            .map(|s| format!("{}+{:08x}", s.name(), s.id()))
            .collect(),
    })
}

/// The `name+id` of each signature line of a note, for error messages.
fn signature_names(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let Some((_, sigs)) = text.rsplit_once("\n\n") else {
        return Vec::new();
    };
    sigs.lines()
        .filter_map(|line| signed_note::Signature::from_bytes(line.as_bytes()).ok())
        .map(|s| format!("{}+{:08x}", s.name(), s.id()))
        .collect()
}

/// Verifies the log in `dir` offline: every entry bundle decodes to canonical entries with
/// distinct ids; every hash tile matches the entries; the checkpoint is signed by a trusted key
/// and its root is the tree of its first `size` entries (each entry's inclusion proof is checked
/// against it); and, given a trusted earlier checkpoint, the log holds all of its entries, the
/// checkpoint is not older, and the two trees are consistent (a consistency proof checked
/// between the two signed roots).
///
/// # Errors
/// The first problem: the lowest bad entry index and what is wrong there, else the tile, the
/// trusted checkpoint, or the checkpoint.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Result<Report, VerifyError> {
    if opts.verifiers.is_empty() {
        return Err(VerifyError::new(
            Location::Directory,
            "no verifier key given: nothing to check the signatures with",
        ));
    }
    // A directory a writer is appending to changes while it is read: tiles listed in one
    // directory may be newer than those listed in another. When verification fails and the
    // listing has changed since, it is read and checked again; on a directory nobody writes to
    // (a copy), the first result stands.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let snapshot = Snapshot::load(dir)?;
        let result = check(&snapshot, opts);
        if result.is_ok() || attempts >= 5 {
            return result;
        }
        match layout::list_tiles(dir) {
            Ok((now, _)) if now != snapshot.tiles => continue,
            _ => return result,
        }
    }
}

/// A log directory as read from disk: verification's only I/O. [`check`] decides from it.
struct Snapshot {
    /// Every tile file, sorted.
    tiles: Vec<TileId>,
    /// Each tile file's bytes, or why it could not be read.
    files: HashMap<TileId, Result<Vec<u8>, String>>,
    /// The `checkpoint` file's bytes, or why it could not be read.
    checkpoint: Result<Vec<u8>, String>,
}

impl Snapshot {
    /// Reads the directory. The checkpoint is read first, so that the tiles read after it hold
    /// at least the entries it covers even while a writer appends. A writer removes a partial
    /// tile once a wider one is durable; a tile listed and then gone is read again from a new
    /// listing.
    fn load(dir: &Path) -> Result<Snapshot, VerifyError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let path = dir.join(CHECKPOINT_FILE);
            let checkpoint = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()));
            let (tiles, _others) = layout::list_tiles(dir).map_err(|e| {
                VerifyError::new(Location::Directory, format!("cannot list {}: {e}", dir.display()))
            })?;
            let mut vanished = false;
            let mut files = HashMap::new();
            for id in &tiles {
                let read = match fs::read(id.path(dir)) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 10 => {
                        vanished = true;
                        break;
                    }
                    read => read.map_err(|e| format!("cannot read {}: {e}", id.rel_path())),
                };
                files.insert(*id, read);
            }
            if !vanished {
                return Ok(Snapshot {
                    tiles,
                    files,
                    checkpoint,
                });
            }
        }
    }

    fn read(&self, id: &TileId) -> Result<&[u8], String> {
        match self.files.get(id) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("{} is not there", id.rel_path())),
        }
    }
}

/// Verification proper, decided from what was read.
fn check(snapshot: &Snapshot, opts: &VerifyOptions) -> Result<Report, VerifyError> {
    let tiles = &snapshot.tiles;
    let mut problems: Vec<VerifyError> = Vec::new();

    // The checkpoints first: their sizes say which entries must be there.
    let trusted = opts
        .checkpoint
        .as_ref()
        .map(|text| parse_note(text.as_bytes(), &opts.verifiers, &Location::TrustedCheckpoint));
    let current = match &snapshot.checkpoint {
        Ok(bytes) => parse_note(bytes, &opts.verifiers, &Location::Checkpoint),
        Err(e) => Err(VerifyError::new(Location::Checkpoint, e.clone())),
    };

    // Entries: the run of bundles from index 0.
    let (leaves, bundle_problem) = read_leaves(snapshot);
    problems.extend(bundle_problem);
    let mut ids: HashMap<String, u64> = HashMap::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let index = i as u64;
        match Entry::from_leaf(leaf) {
            Ok(entry) => {
                if let Some(first) = ids.insert(entry.id.clone(), index) {
                    problems.push(VerifyError::new(
                        Location::Entry(index),
                        format!("id {:?} is already entry {first}: an entry was copied", entry.id),
                    ));
                    break;
                }
            }
            Err(what) => {
                problems.push(VerifyError::new(Location::Entry(index), what));
                break;
            }
        }
    }
    let size = leaves.len() as u64;
    let mut hashes = Hashes::default();
    for (i, leaf) in leaves.iter().enumerate() {
        hashes
            .push_leaf(i as u64, leaf)
            .map_err(|e| VerifyError::new(Location::Entry(i as u64), e.to_string()))?;
    }

    // Hash tiles against the entries.
    let hash_tiles = check_hash_tiles(snapshot, &hashes, size, &mut problems);

    // Every hash tile of the tree must be there (a wider partial stands for a narrower one).
    check_tiles_present(tiles, &hashes, size, &mut problems);

    // Partial bundles left beside the run must agree with it.
    check_other_bundles(snapshot, &leaves, &mut problems);

    let trusted = match trusted {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
        None => None,
    };
    if let Some(t) = &trusted {
        if t.size > size {
            problems.push(VerifyError::new(
                Location::Entry(size),
                format!(
                    "missing: the trusted checkpoint covers {} entries, the log holds {size} (truncated)",
                    t.size
                ),
            ));
        } else if hashes.root(t.size).ok() != Some(t.root) {
            problems.push(VerifyError::new(Location::TrustedCheckpoint, format!(
                "the log's first {} entries do not hash to the trusted root {}: history before entry {} was rewritten", t.size, t.root, t.size)));
        }
    }
    // A trusted checkpoint that the entries match vouches for its entries: a bad signature on the
    // current checkpoint then leaves exactly the entries after it unvouched for.
    let vouched = trusted
        .as_ref()
        .filter(|t| t.size <= size && hashes.root(t.size).ok() == Some(t.root))
        .map(|t| t.size);
    let report = match current {
        Err(e) => {
            let e = match vouched {
                Some(t) if e.what.starts_with("not signed by a trusted key") => VerifyError::new(
                    Location::Entry(t),
                    format!(
                        "entries from {t} on are covered only by a checkpoint that is {}",
                        e.what
                    ),
                ),
                _ => e,
            };
            problems.push(e);
            None
        }
        Ok(c) => check_current(&c, trusted.as_ref(), &hashes, &leaves, size, &mut problems).map(|()| c),
    };
    if let Some(first) = problems.into_iter().min_by_key(VerifyError::rank) {
        return Err(first);
    }
    let Some(c) = report else {
        return Err(VerifyError::new(Location::Checkpoint, "not verified"));
    };
    Ok(Report {
        entries: size,
        checkpoint_size: c.size,
        root: c.root.to_string(),
        signed_by: c.signed_by,
        unsigned_entries: size - c.size,
        hash_tiles,
        trusted_size: trusted.map(|t| t.size),
    })
}

/// The current checkpoint against the entries and the trusted checkpoint.
fn check_current(
    c: &Signed,
    trusted: Option<&Signed>,
    hashes: &Hashes,
    leaves: &[Vec<u8>],
    size: u64,
    problems: &mut Vec<VerifyError>,
) -> Option<()> {
    let at = Location::Checkpoint;
    if let Some(t) = trusted {
        if t.origin != c.origin {
            problems.push(VerifyError::new(
                at,
                format!(
                    "origin {:?}, but the trusted checkpoint's is {:?}",
                    c.origin, t.origin
                ),
            ));
            return None;
        }
        if c.size < t.size {
            problems.push(VerifyError::new(
                at,
                format!(
                    "rolled back: it covers {} entries, the trusted checkpoint already covered {}",
                    c.size, t.size
                ),
            ));
            return None;
        }
    }
    if c.size > size {
        problems.push(VerifyError::new(
            Location::Entry(size),
            format!(
                "missing: the checkpoint covers {} entries, the log holds {size} (truncated)",
                c.size
            ),
        ));
        return None;
    }
    match hashes.root(c.size) {
        Ok(root) if root == c.root => {}
        _ => {
            problems.push(VerifyError::new(
                at,
                format!(
                    "the log's first {} entries do not hash to the signed root {}",
                    c.size, c.root
                ),
            ));
            return None;
        }
    }
    if let Some(t) = trusted {
        let consistent = tlog_tiles::prove_tree(c.size, t.size, hashes)
            .and_then(|proof| tlog_tiles::check_tree(&proof, c.size, c.root, t.size, t.root));
        if let Err(e) = consistent {
            problems.push(VerifyError::new(
                at,
                format!(
                    "not consistent with the trusted checkpoint of size {}: {e}",
                    t.size
                ),
            ));
            return None;
        }
    }
    for (i, leaf) in leaves
        .iter()
        .take(usize::try_from(c.size).unwrap_or(usize::MAX))
        .enumerate()
    {
        let index = i as u64;
        let included = tlog_tiles::prove_record(c.size, index, hashes).and_then(|proof| {
            tlog_tiles::check_record(&proof, c.size, c.root, index, tlog_tiles::record_hash(leaf))
        });
        if let Err(e) = included {
            problems.push(VerifyError::new(
                Location::Entry(index),
                format!("no valid inclusion proof in the checkpoint's tree: {e}"),
            ));
            return None;
        }
    }
    Some(())
}

/// The leaves of the run of entry bundles from index 0, and the first problem in them.
fn read_leaves(snapshot: &Snapshot) -> (Vec<Vec<u8>>, Option<VerifyError>) {
    let mut leaves = Vec::new();
    for id in crate::log::bundle_run(&snapshot.tiles) {
        let start = id.n * TILE_WIDTH;
        let bytes = match snapshot.read(&id) {
            Ok(bytes) => bytes,
            Err(e) => return (leaves, Some(VerifyError::new(Location::Entry(start), e))),
        };
        match layout::decode_bundle(bytes) {
            Ok(bundle) => {
                let count = bundle.len() as u64;
                leaves.extend(bundle);
                if count != id.width() {
                    // Keep the leaves: the hash tiles then say which entry is the first wrong one.
                    let index = start + count.min(id.width());
                    return (
                        leaves,
                        Some(VerifyError::new(
                            Location::Entry(index),
                            format!(
                                "{} holds {count} entries, its name says {}: an entry was deleted or inserted",
                                id.rel_path(),
                                id.width()
                            ),
                        )),
                    );
                }
            }
            Err((at, what)) => {
                return (
                    leaves,
                    Some(VerifyError::new(
                        Location::Entry(start + at as u64),
                        format!("{}: {what}", id.rel_path()),
                    )),
                );
            }
        }
    }
    (leaves, None)
}

/// Compares every hash tile on disk with the hashes of the entries. A mismatch in a level-0 tile
/// names the entry; one in a higher tile (whose level-0 tiles match) names the tile. Returns how
/// many tiles were compared.
fn check_hash_tiles(
    snapshot: &Snapshot,
    hashes: &Hashes,
    size: u64,
    problems: &mut Vec<VerifyError>,
) -> usize {
    let mut by_level: BTreeMap<u8, Vec<TileId>> = BTreeMap::new();
    for id in &snapshot.tiles {
        if let Tree::Level(l) = id.tree {
            by_level.entry(l).or_default().push(*id);
        }
    }
    let mut checked = 0;
    for (level, ids) in by_level {
        let mut level_problem: Option<VerifyError> = None;
        for id in ids {
            checked += 1;
            let data = match snapshot.read(&id) {
                Ok(data) => data,
                Err(e) => {
                    problems.push(VerifyError::new(Location::Tile(id.rel_path()), e));
                    continue;
                }
            };
            if data.len() as u64 != id.width() * 32 {
                problems.push(VerifyError::new(
                    Location::Tile(id.rel_path()),
                    format!(
                        "{} bytes, a tile of width {} has {}",
                        data.len(),
                        id.width(),
                        id.width() * 32
                    ),
                ));
                continue;
            }
            // Each hash in a level-L tile covers 256^L entries.
            let span = TILE_WIDTH.saturating_pow(u32::from(level));
            for (j, got) in data.chunks_exact(32).enumerate() {
                let first = (id.n * TILE_WIDTH + j as u64).saturating_mul(span);
                let stored = tlog_tiles::stored_hash_index(
                    level * crate::layout::HEIGHT,
                    id.n * TILE_WIDTH + j as u64,
                );
                let expected = usize::try_from(stored).ok().and_then(|s| hashes.0.get(s));
                let problem = match expected {
                    _ if first.saturating_add(span) > size => Some(VerifyError::new(
                        Location::Entry(size),
                        format!(
                            "missing: {} holds the hash of entries up to {}, the log holds {size} (truncated)",
                            id.rel_path(),
                            first + span
                        ),
                    )),
                    Some(h) if h.0 == got => None,
                    _ if level == 0 => Some(VerifyError::new(
                        Location::Entry(first),
                        format!(
                            "its hash does not match {} (the entry was modified, deleted, or moved)",
                            id.rel_path()
                        ),
                    )),
                    _ => Some(VerifyError::new(
                        Location::Tile(id.rel_path()),
                        format!(
                            "hash {j} (entries {first}..{}) does not match the entries",
                            first + span
                        ),
                    )),
                };
                if let Some(p) = problem {
                    if level_problem.as_ref().is_none_or(|q| p.rank() < q.rank()) {
                        level_problem = Some(p);
                    }
                    break;
                }
            }
        }
        if let Some(p) = level_problem {
            let at_entry = p.index().is_some();
            problems.push(p);
            if at_entry && level == 0 {
                // The higher tiles can only repeat the same problem less precisely.
                break;
            }
        }
    }
    checked
}

/// Partial bundles that are not part of the run (kept after a later one was written) must hold
/// the same entries as the run at their positions.
fn check_other_bundles(snapshot: &Snapshot, leaves: &[Vec<u8>], problems: &mut Vec<VerifyError>) {
    let tiles = &snapshot.tiles;
    let run = crate::log::bundle_run(tiles);
    for id in tiles
        .iter()
        .filter(|id| id.tree == Tree::Entries && !run.contains(id))
    {
        let start = id.n * TILE_WIDTH;
        if start >= leaves.len() as u64 {
            continue; // beyond the run: written by an append that never completed
        }
        let Ok(bytes) = snapshot.read(id) else {
            continue;
        };
        let Ok(bundle) = layout::decode_bundle(bytes) else {
            problems.push(VerifyError::new(
                Location::Entry(start),
                format!("{} cannot be decoded", id.rel_path()),
            ));
            continue;
        };
        for (j, leaf) in bundle.iter().enumerate() {
            let index = start + j as u64;
            if usize::try_from(index).ok().and_then(|i| leaves.get(i)) != Some(leaf) {
                problems.push(VerifyError::new(
                    Location::Entry(index),
                    format!("{} disagrees with the log at this entry", id.rel_path()),
                ));
                break;
            }
        }
    }
}

/// Every hash tile of a tree of `size` entries is on disk, full or as a partial at least as wide.
fn check_tiles_present(tiles: &[TileId], hashes: &Hashes, size: u64, problems: &mut Vec<VerifyError>) {
    let Ok(expected) = hashes.tiles(0, size) else {
        return;
    };
    let mut widest: HashMap<(Tree, u64), u64> = HashMap::new();
    for t in tiles {
        let w = widest.entry((t.tree, t.n)).or_default();
        *w = (*w).max(t.width());
    }
    for (id, _) in expected {
        let present = widest.get(&(id.tree, id.n)).is_some_and(|&w| w >= id.width());
        if !present {
            problems.push(VerifyError::new(
                Location::Tile(id.rel_path()),
                format!("missing: the tree of the log's {size} entries needs it"),
            ));
            return;
        }
    }
}

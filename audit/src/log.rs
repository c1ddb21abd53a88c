//! The writer: durable appends, deduplication, checkpoints, crash recovery; and the reader.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tlog_tiles::{Hash, HashReader};

use crate::entry::Entry;
use crate::keys::{KeyError, Signer};
use crate::layout::{self, HEIGHT, TileId, Tree};
use crate::{MAX_ENTRY_BYTES, TILE_WIDTH};

/// The name of the checkpoint file in a log directory.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";

/// The file a writer holds an exclusive lock on.
const LOCK_FILE: &str = "lock";

/// Why the log could not be opened, appended to, or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The signer key's name is not the log's origin.
    #[error(
        "the signer key is named {key:?} but the log's origin is {origin:?}: the key name must be the origin"
    )]
    KeyName {
        /// The key's name.
        key: String,
        /// The origin asked for.
        origin: String,
    },
    /// A key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An entry is too large for an entry bundle.
    #[error("entry {id:?} is {bytes} bytes of JSON; an entry can be at most {max} bytes")]
    EntryTooLarge {
        /// The entry's id.
        id: String,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// An entry has an empty id.
    #[error("an entry of kind {kind:?} at {time} has an empty id; every entry needs its deduplication key")]
    EmptyId {
        /// The entry's kind.
        kind: crate::EntryKind,
        /// Its time.
        time: String,
    },
    /// The directory holds something that is not a valid log.
    #[error("log {dir}: entry {index}: {what}")]
    Corrupt {
        /// The log directory.
        dir: PathBuf,
        /// The first index that is wrong.
        index: u64,
        /// What is wrong there.
        what: String,
    },
    /// The checkpoint on disk does not match the entries on disk.
    #[error("log {dir}: checkpoint: {what}")]
    Checkpoint {
        /// The log directory.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Another process has the log open for writing.
    #[error("log {0}: another writer has it open (the lock on its `lock` file is held)")]
    Locked(PathBuf),
    /// An earlier append failed to write; the files may hold part of it.
    #[error("log {0}: an earlier append failed part-way; open the log again to recover it before appending")]
    NeedsRecovery(PathBuf),
    /// The tree library refused an operation (a bug if it happens).
    #[error("tree computation failed: {0}")]
    Tree(String),
}

impl Error {
    /// A short, stable label for a failure metric.
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::KeyName { .. } | Error::Key(_) => "key",
            Error::EntryTooLarge { .. } => "entry_too_large",
            Error::EmptyId { .. } => "empty_id",
            Error::Corrupt { .. } => "corrupt",
            Error::Checkpoint { .. } => "checkpoint_mismatch",
            Error::Locked(_) => "locked",
            Error::NeedsRecovery(_) => "needs_recovery",
            Error::Tree(_) => "tree",
        }
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// The outcome of appending one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry's index in the log: the new one, or for a duplicate the index of the entry with
    /// the same id already there.
    pub index: u64,
    /// True when an entry with the same id was already in the log (then nothing was appended).
    pub duplicate: bool,
}

/// A signed checkpoint, as written to the log directory's `checkpoint` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (first line of the checkpoint).
    pub origin: String,
    /// The tree size: the number of entries the checkpoint covers.
    pub size: u64,
    /// The root hash, base64 as in the checkpoint's third line.
    pub root: String,
    /// The whole signed note (checkpoint text, blank line, signature lines): what to publish.
    pub note: String,
}

/// The stored hashes of a tree (the `tlog_tiles` storage order), kept in memory.
#[derive(Debug, Default, Clone)]
pub(crate) struct Hashes(pub Vec<Hash>);

impl HashReader for Hashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Hashes {
    /// Adds the leaf `n` (which must be the next one).
    pub fn push_leaf(&mut self, n: u64, leaf: &[u8]) -> Result<Hash, Error> {
        let record = tlog_tiles::record_hash(leaf);
        let new = tlog_tiles::stored_hashes_for_record_hash(n, record, self)
            .map_err(|e| Error::Tree(e.to_string()))?;
        self.0.extend(new);
        Ok(record)
    }

    /// Drops every hash of leaves from `size` on.
    pub fn truncate(&mut self, size: u64) {
        let keep = usize::try_from(tlog_tiles::stored_hash_count(size)).unwrap_or(usize::MAX);
        self.0.truncate(keep);
    }

    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        tlog_tiles::tree_hash(size, self).map_err(|e| Error::Tree(e.to_string()))
    }

    /// The hash tiles of a tree of `size` leaves, with their contents.
    pub fn tiles(&self, old: u64, size: u64) -> Result<Vec<(TileId, Vec<u8>)>, Error> {
        tlog_tiles::Tile::new_tiles(HEIGHT, old, size)
            .into_iter()
            .map(|t| {
                let data = t.read_data(self).map_err(|e| Error::Tree(e.to_string()))?;
                let id = TileId {
                    tree: Tree::Level(t.level()),
                    n: t.level_index(),
                    w: (u64::from(t.width()) < TILE_WIDTH).then_some(t.width()),
                };
                Ok((id, data))
            })
            .collect()
    }
}

/// An open log directory, the single writer of it.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    signer: Signer,
    origin: String,
    size: u64,
    hashes: Hashes,
    ids: HashMap<String, u64>,
    /// The leaves of the last, incomplete entry bundle.
    tail: Vec<Vec<u8>>,
    discarded: Vec<String>,
    /// Set when a write failed part-way: the files may be ahead of the memory state.
    poisoned: bool,
    /// Held for the life of the writer: one writer per directory.
    _lock: File,
}

impl Log {
    /// Opens the log in `dir`, creating it when absent.
    ///
    /// After a crash it recovers: left-over temporary files are removed; the entries are the
    /// longest run of complete bundles from the start (a bundle beyond a gap was never
    /// acknowledged and is removed, see [`Log::discarded`]); superseded partial tiles are removed;
    /// hash tiles are rebuilt from the entries; the id index is rebuilt. An existing checkpoint
    /// must match the recovered entries (its tree is a prefix of them) or opening fails: a log
    /// that lost signed entries is not silently continued.
    ///
    /// # Errors
    /// The key is not named `origin`; the directory cannot be read or written; an entry or bundle
    /// is corrupt (the error names its index); the checkpoint does not match the entries.
    pub fn open(dir: &Path, signer: Signer, origin: &str) -> Result<Log, Error> {
        if signer.name() != origin {
            return Err(Error::KeyName {
                key: signer.name().to_string(),
                origin: origin.to_string(),
            });
        }
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io("locking", &lock_path)(e)),
        }
        let (tiles, others) = layout::list_tiles(dir).map_err(io("listing", dir))?;
        let mut discarded = Vec::new();
        // Temporary files of a write that did not finish (`.<name>.tmp`); anything else that is
        // not a tile is left alone.
        for other in others {
            let name = other.rsplit('/').next().unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let path = dir.join(&other);
                fs::remove_file(&path).map_err(io("removing", &path))?;
                discarded.push(other);
            }
        }
        let leaves = read_prefix(dir, &tiles)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            signer,
            origin: origin.to_string(),
            size: 0,
            hashes: Hashes::default(),
            ids: HashMap::new(),
            tail: Vec::new(),
            discarded,
            poisoned: false,
            _lock: lock,
        };
        for leaf in leaves {
            let index = log.size;
            let entry = Entry::from_leaf(&leaf).map_err(|what| log.corrupt(index, what))?;
            log.hashes.push_leaf(index, &leaf)?;
            log.ids.entry(entry.id).or_insert(index);
            log.size += 1;
            log.tail.push(leaf);
            if log.tail.len() as u64 == TILE_WIDTH {
                log.tail.clear();
            }
        }
        log.check_checkpoint()?;
        log.repair_tiles(&tiles)?;
        Ok(log)
    }

    /// Files removed by [`Log::open`] while recovering: temporary files of a write that did not
    /// finish, entry bundles beyond a gap, superseded partial tiles. Empty after a clean shutdown
    /// apart from superseded partials.
    #[must_use]
    pub fn discarded(&self) -> &[String] {
        &self.discarded
    }

    /// The number of entries in the log.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index of the entry with this id, if the log holds one.
    #[must_use]
    pub fn index_of(&self, id: &str) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// Appends `entries` in order and returns once they are durable: entry bundles and hash tiles
    /// are written to temporary files, fsync'd, renamed into place, and their directories
    /// fsync'd. An entry whose id is already in the log (or earlier in the same batch) is not
    /// appended again: its result says `duplicate` and the index of the entry already there.
    ///
    /// The batch is checked first (every entry has an id and fits in a bundle); if one does not,
    /// nothing is appended. If writing fails, nothing of the batch is acknowledged; the files may
    /// hold part of it, so every later `append` and `checkpoint` fails with
    /// [`Error::NeedsRecovery`] until the log is opened again (which recovers it).
    ///
    /// # Errors
    /// An entry has an empty id or is larger than [`MAX_ENTRY_BYTES`]; a write fails.
    pub fn append(&mut self, entries: &[Entry]) -> Result<Vec<Appended>, Error> {
        if self.poisoned {
            return Err(Error::NeedsRecovery(self.dir.clone()));
        }
        let mut leaves = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.id.is_empty() {
                return Err(Error::EmptyId {
                    kind: entry.kind,
                    time: entry.time.clone(),
                });
            }
            let leaf = entry
                .to_leaf()
                .map_err(|e| Error::Tree(format!("encoding entry {:?}: {e}", entry.id)))?;
            if leaf.len() > MAX_ENTRY_BYTES {
                return Err(Error::EntryTooLarge {
                    id: entry.id.clone(),
                    bytes: leaf.len(),
                    max: MAX_ENTRY_BYTES,
                });
            }
            leaves.push(leaf);
        }

        let old_size = self.size;
        let old_tail = self.tail.clone();
        let mut results = Vec::with_capacity(entries.len());
        let mut new_ids = Vec::new();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut pending = std::mem::take(&mut self.tail);
        let outcome = (|| -> Result<(), Error> {
            for (entry, leaf) in entries.iter().zip(leaves) {
                if let Some(&index) = self.ids.get(&entry.id) {
                    results.push(Appended {
                        index,
                        duplicate: true,
                    });
                    continue;
                }
                let index = self.size;
                self.hashes.push_leaf(index, &leaf)?;
                self.ids.insert(entry.id.clone(), index);
                new_ids.push(entry.id.clone());
                self.size += 1;
                results.push(Appended {
                    index,
                    duplicate: false,
                });
                pending.push(leaf);
                if pending.len() as u64 == TILE_WIDTH {
                    let id = TileId {
                        tree: Tree::Entries,
                        n: index / TILE_WIDTH,
                        w: None,
                    };
                    files.push((
                        id.rel_path(),
                        layout::encode_bundle(pending.iter().map(Vec::as_slice)),
                    ));
                    pending.clear();
                }
            }
            if self.size == old_size {
                return Ok(());
            }
            if !pending.is_empty() {
                let id = TileId {
                    tree: Tree::Entries,
                    n: self.size / TILE_WIDTH,
                    w: u32::try_from(pending.len()).ok(),
                };
                files.push((
                    id.rel_path(),
                    layout::encode_bundle(pending.iter().map(Vec::as_slice)),
                ));
            }
            files.extend(
                self.hashes
                    .tiles(old_size, self.size)?
                    .into_iter()
                    .map(|(id, data)| (id.rel_path(), data)),
            );
            write_durably(&self.dir, &files)?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                self.tail = pending;
                if self.size != old_size {
                    self.remove_superseded(old_size);
                }
                Ok(results)
            }
            Err(e) => {
                for id in new_ids {
                    self.ids.remove(&id);
                }
                self.size = old_size;
                self.hashes.truncate(old_size);
                self.tail = old_tail;
                // The files may now hold part of this batch (e.g. a wider partial bundle than
                // the next append would write): only `open`'s recovery may continue from here.
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Signs a checkpoint of the current tree with the log's key and writes it durably to the
    /// `checkpoint` file (temporary file, fsync, rename, directory fsync). Returns it, to publish.
    ///
    /// # Errors
    /// Signing or writing fails.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, Error> {
        if self.poisoned {
            return Err(Error::NeedsRecovery(self.dir.clone()));
        }
        let root = self.hashes.root(self.size)?;
        let text = tlog_tiles::Checkpoint::new(&self.origin, self.size, root, "")
            .map_err(|e| Error::Tree(format!("checkpoint: {e}")))?
            .to_bytes();
        let mut note =
            signed_note::Note::new(&text, &[]).map_err(|e| Error::Tree(format!("checkpoint note: {e}")))?;
        note.add_sigs(&[self.signer.note_signer()])
            .map_err(|e| Error::Tree(format!("signing the checkpoint: {e}")))?;
        let bytes = note.to_bytes();
        write_durably(&self.dir, &[(CHECKPOINT_FILE.to_string(), bytes.clone())])?;
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: self.size,
            root: root.to_string(),
            note: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    fn corrupt(&self, index: u64, what: impl Into<String>) -> Error {
        Error::Corrupt {
            dir: self.dir.clone(),
            index,
            what: what.into(),
        }
    }

    /// An existing checkpoint must describe a prefix of the recovered entries.
    fn check_checkpoint(&self) -> Result<(), Error> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        let fail = |what: String| Error::Checkpoint {
            dir: self.dir.clone(),
            what,
        };
        let note =
            signed_note::Note::from_bytes(&bytes).map_err(|e| fail(format!("not a signed note: {e}")))?;
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(note.text()).map_err(|e| fail(format!("{e}")))?;
        if checkpoint.origin() != self.origin {
            return Err(fail(format!(
                "origin {:?}, but this log is {:?}",
                checkpoint.origin(),
                self.origin
            )));
        }
        if checkpoint.size() > self.size {
            return Err(fail(format!(
                "signed for {} entries, but only {} are on disk: entries from {} on are lost",
                checkpoint.size(),
                self.size,
                self.size
            )));
        }
        let root = self.hashes.root(checkpoint.size())?;
        if &root != checkpoint.hash() {
            return Err(fail(format!(
                "the first {} entries on disk do not hash to the signed root {}",
                checkpoint.size(),
                checkpoint.hash()
            )));
        }
        Ok(())
    }

    /// Makes the tile files exactly those of the recovered tree: writes missing or wrong hash
    /// tiles and removes every tile file that is not part of it.
    fn repair_tiles(&mut self, on_disk: &[TileId]) -> Result<(), Error> {
        let expected_hashes = self.hashes.tiles(0, self.size)?;
        let mut expected: BTreeSet<TileId> = expected_hashes.iter().map(|(id, _)| *id).collect();
        let full = self.size / TILE_WIDTH;
        expected.extend((0..full).map(|n| TileId {
            tree: Tree::Entries,
            n,
            w: None,
        }));
        if !self.tail.is_empty() {
            expected.insert(TileId {
                tree: Tree::Entries,
                n: full,
                w: u32::try_from(self.tail.len()).ok(),
            });
        }
        let mut rewrite = Vec::new();
        for (id, data) in expected_hashes {
            let path = id.path(&self.dir);
            let same = match fs::read(&path) {
                Ok(existing) => existing == data,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(io("reading", &path)(e)),
            };
            if !same {
                rewrite.push((id.rel_path(), data));
            }
        }
        write_durably(&self.dir, &rewrite)?;
        for id in on_disk {
            if !expected.contains(id) {
                let path = id.path(&self.dir);
                fs::remove_file(&path).map_err(io("removing", &path))?;
                self.discarded.push(id.rel_path());
            }
        }
        Ok(())
    }

    /// After an append from `old_size` is durable: removes the partial tiles it superseded.
    /// Failures are ignored: a left-over partial is harmless and the next `open` removes it.
    fn remove_superseded(&self, old_size: u64) {
        let mut old = Vec::new();
        let mut level = 0u8;
        let mut width_old = old_size;
        let mut width_new = self.size;
        while width_old > 0 {
            let rem = width_old % TILE_WIDTH;
            let tree = if level == 0 {
                vec![Tree::Entries, Tree::Level(0)]
            } else {
                vec![Tree::Level(level)]
            };
            if rem != 0 && width_old != width_new {
                for tree in tree {
                    old.push(TileId {
                        tree,
                        n: width_old / TILE_WIDTH,
                        w: u32::try_from(rem).ok(),
                    });
                }
            }
            width_old /= TILE_WIDTH;
            width_new /= TILE_WIDTH;
            level += 1;
        }
        for id in old {
            let _ = fs::remove_file(id.path(&self.dir));
        }
    }
}

/// The entry bundles that form a contiguous run from index 0: full bundles 0..k, then the widest
/// partial bundle of k, if any.
pub(crate) fn bundle_run(tiles: &[TileId]) -> Vec<TileId> {
    let mut full = BTreeSet::new();
    let mut partial: HashMap<u64, u32> = HashMap::new();
    for id in tiles.iter().filter(|id| id.tree == Tree::Entries) {
        match id.w {
            None => {
                full.insert(id.n);
            }
            Some(w) => {
                let widest = partial.entry(id.n).or_insert(w);
                *widest = (*widest).max(w);
            }
        }
    }
    let mut run = Vec::new();
    for n in 0.. {
        if full.contains(&n) {
            run.push(TileId {
                tree: Tree::Entries,
                n,
                w: None,
            });
        } else {
            if let Some(&w) = partial.get(&n) {
                run.push(TileId {
                    tree: Tree::Entries,
                    n,
                    w: Some(w),
                });
            }
            break;
        }
    }
    run
}

/// Reads the leaves of the run of entry bundles (see [`bundle_run`]).
fn read_prefix(dir: &Path, tiles: &[TileId]) -> Result<Vec<Vec<u8>>, Error> {
    let mut leaves = Vec::new();
    for id in bundle_run(tiles) {
        let n = id.n;
        let path = id.path(dir);
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        let bundle = layout::decode_bundle(&bytes).map_err(|(at, what)| Error::Corrupt {
            dir: dir.to_path_buf(),
            index: n * TILE_WIDTH + at as u64,
            what: format!("{}: {what}", id.rel_path()),
        })?;
        if bundle.len() as u64 != id.width() {
            return Err(Error::Corrupt {
                dir: dir.to_path_buf(),
                index: n * TILE_WIDTH + (bundle.len() as u64).min(id.width()),
                what: format!(
                    "{}: holds {} entries, its name says {}",
                    id.rel_path(),
                    bundle.len(),
                    id.width()
                ),
            });
        }
        leaves.extend(bundle);
    }
    Ok(leaves)
}

/// Writes each `(relative path, bytes)` durably: to a temporary file in the same directory,
/// fsync'd, renamed into place; then every directory touched is fsync'd (and the parents of
/// directories created). Only when this returns are the files guaranteed to survive a crash.
///
/// The fsyncs of one step run concurrently, so that the file system can commit them together:
/// which of the files reach the disk first does not matter, since nothing is acknowledged before
/// all have, and recovery keeps only a contiguous run of entries.
pub(crate) fn write_durably(dir: &Path, files: &[(impl AsRef<str>, Vec<u8>)]) -> Result<(), Error> {
    let mut dirs = BTreeSet::new();
    let mut written = Vec::with_capacity(files.len());
    for (rel, bytes) in files {
        let path = dir.join(rel.as_ref());
        let parent = path.parent().unwrap_or(dir).to_path_buf();
        if !parent.is_dir() {
            // Every directory created, up to the log directory, must reach the disk too.
            let mut p = parent.as_path();
            while p != dir && !p.is_dir() {
                if let Some(up) = p.parent() {
                    dirs.insert(up.to_path_buf());
                    p = up;
                } else {
                    break;
                }
            }
            fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.tmp"));
        let mut file = File::create(&tmp).map_err(io("creating", &tmp))?;
        file.write_all(bytes).map_err(io("writing", &tmp))?;
        written.push((tmp, path, file));
        dirs.insert(parent);
    }
    sync_concurrently(written.iter().map(|(tmp, _, file)| (tmp.as_path(), file)))?;
    for (tmp, path, file) in written {
        drop(file);
        fs::rename(&tmp, &path).map_err(io("renaming into place", &path))?;
    }
    let opened = dirs
        .into_iter()
        .map(|d| {
            File::open(&d)
                .map(|f| (d.clone(), f))
                .map_err(io("opening directory", &d))
        })
        .collect::<Result<Vec<_>, _>>()?;
    sync_concurrently(opened.iter().map(|(d, f)| (d.as_path(), f)))
}

/// `fsync`s the files, up to eight at a time on their own threads.
fn sync_concurrently<'a>(files: impl Iterator<Item = (&'a Path, &'a File)>) -> Result<(), Error> {
    let files: Vec<_> = files.collect();
    if let [(path, file)] = files.as_slice() {
        return file.sync_all().map_err(io("syncing", path));
    }
    for chunk in files.chunks(8) {
        std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|(path, file)| (path, scope.spawn(|| file.sync_all())))
                .collect();
            for (path, thread) in running {
                match thread.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(io("syncing", path)(e)),
                    Err(_) => {
                        return Err(io("syncing", path)(std::io::Error::other(
                            "the syncing thread panicked",
                        )));
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The entries of the log in `dir`, in order, with their indexes: the contiguous run of entry
/// bundles from the start, as [`Log::open`] would recover it. Nothing is verified; see
/// [`crate::verify`].
///
/// # Errors
/// The directory cannot be listed; the iterator yields an error for a bundle or entry that
/// cannot be read (naming its index) and then ends.
pub fn read(dir: &Path) -> Result<impl Iterator<Item = Result<(u64, Entry), Error>> + use<>, Error> {
    let (tiles, _) = layout::list_tiles(dir).map_err(io("listing", dir))?;
    let bundles = bundle_run(&tiles);
    Ok(Reader {
        dir: dir.to_path_buf(),
        bundles: bundles.into_iter(),
        current: Vec::new().into_iter(),
        index: 0,
        failed: false,
    })
}

struct Reader {
    dir: PathBuf,
    bundles: std::vec::IntoIter<TileId>,
    current: std::vec::IntoIter<Vec<u8>>,
    index: u64,
    failed: bool,
}

impl Iterator for Reader {
    type Item = Result<(u64, Entry), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(leaf) = self.current.next() {
                let index = self.index;
                self.index += 1;
                return Some(match Entry::from_leaf(&leaf) {
                    Ok(entry) => Ok((index, entry)),
                    Err(what) => {
                        self.failed = true;
                        Err(Error::Corrupt {
                            dir: self.dir.clone(),
                            index,
                            what,
                        })
                    }
                });
            }
            let id = self.bundles.next()?;
            let path = id.path(&self.dir);
            let start = id.n * TILE_WIDTH;
            let result = fs::read(&path).map_err(io("reading", &path)).and_then(|bytes| {
                layout::decode_bundle(&bytes).map_err(|(at, what)| Error::Corrupt {
                    dir: self.dir.clone(),
                    index: start + at as u64,
                    what: format!("{}: {what}", id.rel_path()),
                })
            });
            match result {
                Ok(leaves) => {
                    self.index = start;
                    self.current = leaves.into_iter();
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

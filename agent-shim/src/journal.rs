//! The agent's local journal: one JSON object per line in `<state dir>/journal.jsonl`, each
//! appended and fsync'd before the agent acts on it. `started` is written before a step runs,
//! `finished` after; so after a reboot or a kill the journal tells, per idempotency key, whether a
//! step never ran, was interrupted (started, not finished: re-run it, which is safe because every
//! step checks first), or finished (never run it again; report the recorded result).
//!
//! [`replay`] is pure: text in, state and corrupt-line diagnostics out. [`Journal`] adds the file:
//! an exclusive lock (one agent per state directory), appends with fsync, and compaction, which
//! keeps the file bounded by dropping the oldest finished keys.
//!
//! A step that ran out of time after it may have changed the host gets a `timedOut` record instead
//! of `finished`: its key is *unsettled* until the host's check says whether the step took effect,
//! and then a `finished` record closes it. A command that completes after its step timed out is
//! never a result.
//!
//! Record format (field names in camelCase):
//! ```json
//! {"record":"started","key":"mig-1:edge-3:node-create","taskUid":"…","taskName":"t1","step":"linstor-node-create","args":["edge-3","10.0.0.3"],"attempt":1,"at":"2026-11-29T19:00:00Z"}
//! {"record":"finished","key":"mig-1:edge-3:node-create","code":0,"outputTail":"…","message":"done","at":"2026-11-29T19:00:02Z"}
//! {"record":"timedOut","key":"mig-1:edge-3:pool","outputTail":"…","message":"timed out after 60s","at":"2026-11-29T19:01:02Z"}
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The lock file that keeps a second agent off the same state directory.
pub const LOCK_FILE: &str = "journal.lock";

/// A step is about to run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// The task's idempotency key.
    pub key: String,
    /// The uid of the `NodeTask` that ran it.
    pub task_uid: String,
    /// Its name, for people reading the file.
    #[serde(default)]
    pub task_name: String,
    /// The step.
    #[serde(default)]
    pub step: String,
    /// The step's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The task's attempt number (its `status.attempts` after the claim).
    pub attempt: i32,
    /// When (RFC 3339).
    pub at: String,
}

/// A step ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    /// The task's idempotency key.
    pub key: String,
    /// Exit code; 0 is success.
    pub code: i32,
    /// The end of the step's output, as reported in the task's status.
    pub output_tail: String,
    /// What happened, in one line.
    #[serde(default)]
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A step ran out of time after it may have changed the host: its outcome is not known. Not a
/// result: the key stays open until the host's check settles it with a [`Finished`], and nothing
/// else runs on the node meanwhile. Whatever the killed command did later is not a result either.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TimedOut {
    /// The task's idempotency key.
    pub key: String,
    /// What the step printed before it was killed.
    #[serde(default)]
    pub output_tail: String,
    /// What happened, in one line.
    #[serde(default)]
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One line of the journal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum Record {
    /// Written before a step runs.
    Started(Started),
    /// Written when a step ran out of time with its outcome unknown.
    TimedOut(TimedOut),
    /// Written after it ends (or, after a [`TimedOut`], once the host's check has settled it).
    Finished(Finished),
}

impl Record {
    fn key(&self) -> &str {
        match self {
            Record::Started(s) => &s.key,
            Record::TimedOut(t) => &t.key,
            Record::Finished(f) => &f.key,
        }
    }
}

/// A journal line that could not be read; it is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptLine {
    /// Line number, from 1.
    pub line: usize,
    /// Why it could not be read.
    pub error: String,
}

impl std::fmt::Display for CorruptLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// What the journal knows about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    started: Option<Started>,
    timed_out: Option<TimedOut>,
    finished: Option<Finished>,
    /// Line of the last record, to keep the most recent keys on compaction.
    seq: usize,
}

/// What the journal says about an idempotency key: what to do with a task that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState<'a> {
    /// Never started here.
    New,
    /// Started and never finished: the agent was stopped mid-step (reboot, kill).
    Interrupted(&'a Started),
    /// Ran out of time with its outcome unknown: the host's check settles it before anything
    /// else runs on the node. `started` is `None` only in a journal edited by hand.
    Unsettled {
        /// The start record.
        started: Option<&'a Started>,
        /// The time-out record.
        timed_out: &'a TimedOut,
    },
    /// Finished: report this result, never run it again.
    Finished {
        /// The start record, if still kept.
        started: Option<&'a Started>,
        /// The result.
        finished: &'a Finished,
    },
}

/// The journal's content, keyed by idempotency key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalState {
    entries: BTreeMap<String, Entry>,
    next_seq: usize,
}

impl JournalState {
    /// What the journal says about `key`.
    pub fn key_state(&self, key: &str) -> KeyState<'_> {
        match self.entries.get(key) {
            None => KeyState::New,
            Some(Entry {
                finished: Some(finished),
                started,
                ..
            }) => KeyState::Finished {
                started: started.as_ref(),
                finished,
            },
            Some(Entry {
                timed_out: Some(timed_out),
                started,
                ..
            }) => KeyState::Unsettled {
                started: started.as_ref(),
                timed_out,
            },
            Some(Entry {
                started: Some(started),
                ..
            }) => KeyState::Interrupted(started),
            Some(_) => KeyState::New,
        }
    }

    /// Keys that were started and never finished nor timed out.
    pub fn interrupted(&self) -> impl Iterator<Item = &Started> {
        self.entries.values().filter_map(|e| match e {
            Entry {
                started: Some(s),
                timed_out: None,
                finished: None,
                ..
            } => Some(s),
            _ => None,
        })
    }

    /// Keys that timed out with their outcome unknown and are not settled yet, oldest first:
    /// (start record if kept, time-out record).
    pub fn unsettled(&self) -> Vec<(Option<&Started>, &TimedOut)> {
        let mut open: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.finished.is_none() && e.timed_out.is_some())
            .collect();
        open.sort_by_key(|e| e.seq);
        open.into_iter()
            .filter_map(|e| Some((e.started.as_ref(), e.timed_out.as_ref()?)))
            .collect()
    }

    /// How many keys the journal holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the journal holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies one record. A `started` after a `finished` starts the key over.
    pub fn apply(&mut self, record: Record) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = self.entries.entry(record.key().to_owned()).or_insert(Entry {
            started: None,
            timed_out: None,
            finished: None,
            seq,
        });
        entry.seq = seq;
        match record {
            Record::Started(s) => {
                entry.started = Some(s);
                entry.timed_out = None;
                entry.finished = None;
            }
            Record::TimedOut(t) => {
                // A time-out after a result would be a journal written out of order; the result
                // stands.
                if entry.finished.is_none() {
                    entry.timed_out = Some(t);
                }
            }
            Record::Finished(f) => entry.finished = Some(f),
        }
    }

    /// The records of a compacted journal: at most `max_keys` keys, the most recent ones, and
    /// every interrupted or unsettled key whatever its age (it still has to be resumed or
    /// settled).
    pub fn compacted(&self, max_keys: usize) -> Vec<Record> {
        let mut entries: Vec<&Entry> = self.entries.values().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
        let mut kept = 0;
        let mut keep: Vec<&Entry> = Vec::new();
        for e in entries {
            if e.finished.is_none() || kept < max_keys {
                kept += 1;
                keep.push(e);
            }
        }
        keep.sort_by_key(|e| e.seq);
        keep.into_iter()
            .flat_map(|e| {
                e.started
                    .iter()
                    .cloned()
                    .map(Record::Started)
                    .chain(e.timed_out.iter().cloned().map(Record::TimedOut))
                    .chain(e.finished.iter().cloned().map(Record::Finished))
            })
            .collect()
    }
}

/// Reads journal text: the state, and every line that could not be read (skipped, never fatal).
pub fn replay(text: &str) -> (JournalState, Vec<CorruptLine>) {
    let mut state = JournalState::default();
    let mut corrupt = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => state.apply(record),
            Err(e) => corrupt.push(CorruptLine {
                line: i + 1,
                error: e.to_string(),
            }),
        }
    }
    (state, corrupt)
}

/// Bounds of the journal file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// Finished keys kept on compaction (a key older than this would run again — safely, as
    /// every step checks first — instead of being reported from the journal).
    pub max_keys: usize,
    /// Characters of output kept per finished key.
    pub output_tail_chars: usize,
}

impl Default for JournalLimits {
    fn default() -> Self {
        JournalLimits {
            max_keys: 1024,
            output_tail_chars: crate::status::OUTPUT_MAX_CHARS,
        }
    }
}

/// The journal file, locked for this agent.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    // Held for the journal's lifetime: the lock is released when the file is closed.
    _lock: File,
    state: JournalState,
    lines: usize,
    limits: JournalLimits,
}

fn io_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Journal { path, what, source }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "syncing the directory"))
}

impl Journal {
    /// Opens (creating if needed) the journal in `state_dir` and reads it. Corrupt lines are
    /// returned, skipped, and dropped by the compaction that follows them (the previous file is
    /// kept as `journal.jsonl.bak`). Fails with [`Error::StateDirInUse`] when another agent holds
    /// the directory.
    pub fn open(state_dir: &Path, limits: JournalLimits) -> Result<(Journal, Vec<CorruptLine>), Error> {
        std::fs::create_dir_all(state_dir).map_err(io_err(state_dir, "creating the state directory"))?;
        let lock_path = state_dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path, "opening the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::StateDirInUse {
                    path: state_dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "locking")(e)),
        }
        let path = state_dir.join(JOURNAL_FILE);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path, "reading")(e)),
        };
        let (state, corrupt) = replay(&text);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "opening"))?;
        if !existed {
            sync_dir(state_dir)?;
        }
        let mut journal = Journal {
            path,
            file,
            _lock: lock,
            state,
            lines,
            limits,
        };
        // A torn last line (no newline) would glue the next record onto it: rewrite the file.
        if !corrupt.is_empty() || (!text.is_empty() && !text.ends_with('\n')) {
            let backup = journal.path.with_extension("jsonl.bak");
            std::fs::copy(&journal.path, &backup).map_err(io_err(&backup, "keeping a copy of"))?;
            journal.compact()?;
        } else if journal.over_limit() {
            journal.compact()?;
        }
        Ok((journal, corrupt))
    }

    /// The journal's state.
    pub fn state(&self) -> &JournalState {
        &self.state
    }

    /// What the journal says about `key`.
    pub fn key_state(&self, key: &str) -> KeyState<'_> {
        self.state.key_state(key)
    }

    /// The journal file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many records the file holds.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The limits the journal keeps to.
    pub fn limits(&self) -> JournalLimits {
        self.limits
    }

    fn over_limit(&self) -> bool {
        let open = self.state.interrupted().count() + self.state.unsettled().len();
        self.lines > 2 * self.limits.max_keys + 3 * open + 16
    }

    /// Appends a record and fsyncs it; returns once it is on disk.
    pub fn append(&mut self, mut record: Record) -> Result<(), Error> {
        if let Record::Finished(f) = &mut record {
            f.output_tail =
                crate::status::tail_chars(&f.output_tail, self.limits.output_tail_chars).to_owned();
        }
        let mut line = serde_json::to_string(&record).map_err(|e| Error::Journal {
            path: self.path.clone(),
            what: "encoding a record for",
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        let point = match &record {
            Record::Started(_) => "journal.append.started",
            Record::TimedOut(_) => "journal.append.timedOut",
            Record::Finished(_) => "journal.append.finished",
        };
        if let Some(stop) = nodewright_kit::failpoint::reached(point) {
            // A crash test's torn record: half the line reaches the file, the rest never does.
            let _ = self.file.write_all(&line.as_bytes()[..line.len() / 2]);
            stop.now();
        }
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(io_err(&self.path, "appending to"))?;
        nodewright_kit::failpoint::hit("journal.append.synced");
        self.state.apply(record);
        self.lines += 1;
        if self.over_limit() {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with [`JournalState::compacted`]: a new file, fsync'd, renamed over the
    /// old one, and the directory fsync'd, so a crash leaves either the old or the new journal.
    pub fn compact(&mut self) -> Result<(), Error> {
        let records = self.state.compacted(self.limits.max_keys);
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut text = String::new();
        for r in &records {
            let line = serde_json::to_string(r).map_err(|e| Error::Journal {
                path: tmp.clone(),
                what: "encoding a record for",
                source: std::io::Error::other(e),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut f = File::create(&tmp).map_err(io_err(&tmp, "creating"))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp, "writing"))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path, "replacing"))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path, "reopening"))?;
        let (state, _) = replay(&text);
        self.state = state;
        self.lines = records.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(key: &str, attempt: i32) -> Record {
        Record::Started(Started {
            key: key.into(),
            task_uid: format!("uid-{key}"),
            task_name: key.into(),
            step: "linstor-node-create".into(),
            args: vec!["edge-3".into(), "10.0.0.3".into()],
            attempt,
            at: "2026-11-29T19:00:00Z".into(),
        })
    }

    fn finished(key: &str, code: i32) -> Record {
        Record::Finished(Finished {
            key: key.into(),
            code,
            output_tail: format!("output of {key}"),
            message: "done".into(),
            at: "2026-11-29T19:00:01Z".into(),
        })
    }

    fn lines(records: &[Record]) -> String {
        records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect()
    }

    #[test]
    fn a_key_started_and_never_finished_is_interrupted() {
        let (state, corrupt) = replay(&lines(&[started("a", 1), finished("a", 0), started("b", 1)]));
        assert!(corrupt.is_empty());
        assert!(matches!(state.key_state("b"), KeyState::Interrupted(s) if s.attempt == 1));
        assert_eq!(state.interrupted().count(), 1);
    }

    fn timed_out(key: &str) -> Record {
        Record::TimedOut(TimedOut {
            key: key.into(),
            output_tail: "$ linstor node create".into(),
            message: "timed out after 1s".into(),
            at: "2026-11-29T19:00:02Z".into(),
        })
    }

    #[test]
    fn a_key_that_timed_out_is_unsettled_until_a_result_closes_it() {
        let (state, _) = replay(&lines(&[started("a", 1), timed_out("a")]));
        assert!(matches!(
            state.key_state("a"),
            KeyState::Unsettled { started: Some(s), timed_out } if s.attempt == 1 && timed_out.message.contains("timed out")
        ));
        assert_eq!(
            state.interrupted().count(),
            0,
            "a time-out is not an interruption"
        );
        assert_eq!(state.unsettled().len(), 1);
        let (state, _) = replay(&lines(&[started("a", 1), timed_out("a"), finished("a", 0)]));
        assert!(matches!(state.key_state("a"), KeyState::Finished { finished, .. } if finished.code == 0));
        assert!(state.unsettled().is_empty());
    }

    #[test]
    fn a_time_out_written_after_a_result_does_not_reopen_the_key() {
        let (state, _) = replay(&lines(&[started("a", 1), finished("a", 0), timed_out("a")]));
        assert!(matches!(state.key_state("a"), KeyState::Finished { .. }));
    }

    #[test]
    fn compaction_keeps_every_unsettled_key() {
        let mut records = vec![started("slow", 1), timed_out("slow")];
        for k in ["k1", "k2", "k3"] {
            records.push(started(k, 1));
            records.push(finished(k, 0));
        }
        let (state, _) = replay(&lines(&records));
        let (after, _) = replay(&lines(&state.compacted(1)));
        assert!(matches!(after.key_state("slow"), KeyState::Unsettled { .. }));
        assert!(matches!(after.key_state("k3"), KeyState::Finished { .. }));
        assert_eq!(after.key_state("k1"), KeyState::New);
    }

    #[test]
    fn a_finished_key_reports_its_earlier_result() {
        let (state, _) = replay(&lines(&[started("a", 1), finished("a", 3)]));
        let KeyState::Finished { finished, started } = state.key_state("a") else {
            panic!("a finished");
        };
        assert_eq!(finished.code, 3);
        assert_eq!(finished.output_tail, "output of a");
        assert_eq!(started.map(|s| s.task_uid.as_str()), Some("uid-a"));
        assert_eq!(state.key_state("never"), KeyState::New);
    }

    #[test]
    fn a_corrupt_line_is_skipped_and_reported_with_its_line_number() {
        let text = lines(&[started("a", 1)])
            + "{\"record\":\"finished\",\"key\":\"a\",\"co\n"
            + &lines(&[started("b", 1)]);
        let (state, corrupt) = replay(&text);
        assert_eq!(corrupt.len(), 1);
        assert_eq!(corrupt[0].line, 2);
        assert!(corrupt[0].to_string().starts_with("line 2: "), "{}", corrupt[0]);
        assert!(matches!(state.key_state("a"), KeyState::Interrupted(_)));
        assert!(matches!(state.key_state("b"), KeyState::Interrupted(_)));
    }

    #[test]
    fn an_unknown_record_kind_is_a_corrupt_line_too() {
        let (state, corrupt) = replay("{\"record\":\"exploded\",\"key\":\"a\"}\n\n");
        assert_eq!(corrupt.len(), 1);
        assert!(state.is_empty());
    }

    #[test]
    fn compaction_keeps_the_newest_finished_keys_and_every_interrupted_one() {
        let mut records = vec![started("old-interrupted", 1)];
        for k in ["k1", "k2", "k3", "k4"] {
            records.push(started(k, 1));
            records.push(finished(k, 0));
        }
        let (state, _) = replay(&lines(&records));
        let kept = state.compacted(2);
        let (after, _) = replay(&lines(&kept));
        assert_eq!(after.len(), 3);
        assert!(matches!(
            after.key_state("old-interrupted"),
            KeyState::Interrupted(_)
        ));
        assert_eq!(after.key_state("k1"), KeyState::New);
        assert_eq!(after.key_state("k2"), KeyState::New);
        assert!(matches!(after.key_state("k3"), KeyState::Finished { .. }));
        assert!(matches!(after.key_state("k4"), KeyState::Finished { .. }));
    }

    #[test]
    fn the_file_survives_reopening_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limits = JournalLimits {
            max_keys: 4,
            output_tail_chars: 8,
        };
        {
            let (mut j, corrupt) = Journal::open(dir.path(), limits).unwrap();
            assert!(corrupt.is_empty());
            for i in 0..100 {
                let k = format!("k{i}");
                j.append(started(&k, 1)).unwrap();
                j.append(finished(&k, 0)).unwrap();
            }
            j.append(started("open", 2)).unwrap();
            assert!(j.lines() <= 2 * 4 + 2 + 16 + 1, "{} lines", j.lines());
        }
        let (j, corrupt) = Journal::open(dir.path(), limits).unwrap();
        assert!(corrupt.is_empty());
        assert!(
            matches!(j.key_state("k99"), KeyState::Finished { finished, .. } if finished.output_tail.chars().count() <= 8)
        );
        assert!(matches!(j.key_state("open"), KeyState::Interrupted(s) if s.attempt == 2));
        assert_eq!(j.key_state("k0"), KeyState::New);
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_next_record_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, lines(&[started("a", 1)]) + "{\"record\":\"fini").unwrap();
        {
            let (mut j, corrupt) = Journal::open(dir.path(), JournalLimits::default()).unwrap();
            assert_eq!(corrupt.len(), 1);
            assert_eq!(corrupt[0].line, 2);
            j.append(finished("a", 0)).unwrap();
        }
        let (j, corrupt) = Journal::open(dir.path(), JournalLimits::default()).unwrap();
        assert!(corrupt.is_empty());
        assert!(matches!(j.key_state("a"), KeyState::Finished { .. }));
        assert!(dir.path().join("journal.jsonl.bak").exists());
    }

    #[test]
    fn a_second_agent_cannot_open_a_journal_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (_first, _) = Journal::open(dir.path(), JournalLimits::default()).unwrap();
        let second = Journal::open(dir.path(), JournalLimits::default());
        assert!(matches!(second, Err(Error::StateDirInUse { .. })));
    }
}

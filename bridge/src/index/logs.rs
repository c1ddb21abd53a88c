//! The index fed from each node's legacy log, read incrementally in chunks of any size: the last
//! iteration, the script version, bond mode changes, storage-upgrade starts and unknown lines. The
//! workflow transitions a log shows are recorded by `history`.

use nodewright_parsers as p;
use nodewright_parsers::contract::Message;

use super::history::Workflow;
use super::{Diagnostic, Index, Transition, UpgradeEvent, UpgradeLogged};

/// Upgrade starts kept per node.
const KEEP_UPGRADE_STARTS: usize = 8;
/// Upgrade events (starts and state changes) kept per node: a full upgrade of a few nodes with
/// its rollback is well under this.
const KEEP_UPGRADE_EVENTS: usize = 512;

impl Index {
    /// Feeds a chunk of the node's legacy log (any split, any size). Returns how many records,
    /// blocks and unknown lines it completed.
    pub fn feed_log(&mut self, node: &str, chunk: &[u8], now: i64) -> (u64, u64, u64) {
        let mut transitions = Vec::new();
        let entry = self.node(node);
        let log = entry.log.get_or_insert_with(Box::default);
        let mut counts = (0, 0, 0);
        let mut unknown = None;
        let mut last_iteration = None;
        let mut version = None;
        let mut mode_change = None;
        let mut starts = Vec::new();
        let mut events = Vec::new();
        let base = log.records;
        log.reader.feed(chunk, |event| match event {
            p::LogEvent::Record(r) => {
                counts.0 += 1;
                let at = r.time.unix_seconds().unwrap_or(now);
                let msg = r.message();
                let field = |k: &str| r.fields.get(k).map(|f| f.value().into_owned());
                match Message::of(&r.component, &msg) {
                    Some(Message::IterationFinished) => {
                        last_iteration = Some((
                            at,
                            field("outcome").unwrap_or_default(),
                            field("step").unwrap_or_default(),
                        ));
                    }
                    Some(Message::Starting) => version = field("version"),
                    Some(Message::ChangingBondMode) => {
                        if let (Some(bond), Some(from), Some(to)) =
                            (field("bond"), field("from"), field("to"))
                        {
                            mode_change = Some((bond, from, to));
                        }
                    }
                    Some(Message::StorageUpgradeStarted) => {
                        if let Some(to) = field("to") {
                            starts.push((at, to.clone()));
                            events.push(UpgradeLogged {
                                at,
                                seq: base + counts.0,
                                event: UpgradeEvent::Started {
                                    from: field("from").filter(|f| !f.is_empty()),
                                    to,
                                    order: field("order")
                                        .map(|o| {
                                            o.split(',')
                                                .filter(|n| !n.is_empty())
                                                .map(str::to_owned)
                                                .collect()
                                        })
                                        .unwrap_or_default(),
                                },
                            });
                        }
                    }
                    Some(Message::UpgradeStateChanged) => {
                        if let Some(to) = field("to") {
                            events.push(UpgradeLogged {
                                at,
                                seq: base + counts.0,
                                event: UpgradeEvent::Changed {
                                    from: field("from").unwrap_or_else(|| "none".to_owned()),
                                    to: to.clone(),
                                    node: field("node").filter(|n| !n.is_empty()),
                                    message: field("msg"),
                                },
                            });
                            transitions.push((
                                Workflow::Upgrade,
                                Transition {
                                    at,
                                    state: to,
                                    node: field("node").filter(|n| !n.is_empty()),
                                    message: field("msg"),
                                },
                            ));
                        }
                    }
                    Some(Message::MigrationPhaseChanged) => {
                        if let Some(to) = field("to") {
                            transitions.push((
                                Workflow::Migration,
                                Transition {
                                    at,
                                    state: to,
                                    node: None,
                                    message: field("msg"),
                                },
                            ));
                        }
                    }
                    _ => {}
                }
            }
            p::LogEvent::Block(_) => counts.1 += 1,
            p::LogEvent::ToolError { .. } => counts.0 += 1,
            p::LogEvent::Unknown(u) => {
                counts.2 += 1;
                unknown = Some(Diagnostic {
                    source: format!("log/{node}"),
                    format: "legacy-log",
                    line: usize::try_from(u.line).unwrap_or(usize::MAX),
                    column: u.column,
                    offset: 0,
                    message: format!("expected {}, found {:?}", u.expected, truncate(u.text, 64)),
                    first_seen: now,
                });
            }
        });
        log.records += counts.0;
        log.blocks += counts.1;
        log.unknown_lines += counts.2;
        if let Some(it) = last_iteration {
            log.last_iteration = Some(it);
        }
        if version.is_some() {
            log.script_version = version;
        }
        if mode_change.is_some() {
            log.last_mode_change = mode_change;
        }
        log.upgrade_starts.extend(starts);
        let excess = log.upgrade_starts.len().saturating_sub(KEEP_UPGRADE_STARTS);
        log.upgrade_starts.drain(..excess);
        log.upgrade_events.extend(events);
        let excess = log.upgrade_events.len().saturating_sub(KEEP_UPGRADE_EVENTS);
        log.upgrade_events.drain(..excess);
        if let Some(d) = unknown {
            log.last_unknown = Some(d.clone());
            self.new_errors.push(d);
        }
        for (workflow, t) in transitions {
            self.record_logged_transition(workflow, t);
        }
        counts
    }

    /// The node's log source restarted from scratch (a new pod): forget the partial line.
    pub fn reset_log(&mut self, node: &str) {
        if let Some(e) = self.nodes.get_mut(node)
            && let Some(log) = &mut e.log
        {
            log.reader = p::LogReader::new();
        }
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

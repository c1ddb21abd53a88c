//! The deterministic scheduler: runs one script process per node at once, and makes the order in
//! which their host and cluster commands take effect a function of the scenario alone.
//!
//! Every command the script runs on a simulated node is a small client (the `vxr-sim` binary under
//! the tool's name) that sends its argv over a Unix socket and waits for the answer. The scheduler
//! answers one request at a time, and only when every live node process is either waiting for an
//! answer or has exited — so no process is ever between two commands while another command takes
//! effect, and which request goes next is chosen by a fixed rule (round-robin over nodes in
//! scenario order). Two nodes that read the same state and then both act on it do so here exactly
//! as they would at a real site, but the same way on every run.
//!
//! The one thing a script must not do for this to hold is run two simulated commands of the same
//! node at the same time (for example both sides of a pipe): `HOST-INTERFACE.md` forbids it.
//!
//! A handler may *hold* a request ([`Handler::hold`]): its node's script blocks in that command, as
//! behind a `linstor` call that hangs. A round ends when every process has exited or is blocked in
//! a held command; [`run_round_carrying`] hands the blocked ones back as [`Carried`], to be carried
//! into a later round, where the request is offered to the handler again, and answered once it is
//! no longer held.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One command sent by a node's script.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The node whose script sent it.
    pub node: String,
    /// The command line, `argv[0]` being the tool's name (`ip`, `drbdadm`, `kubectl`, ...).
    pub argv: Vec<String>,
    /// The working directory of the caller, for relative file arguments.
    pub cwd: String,
}

/// The answer to a request: what the real tool would have printed and returned.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
}

/// Errors of the scheduler and its client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket or process call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A message on the socket was not valid.
    #[error("malformed message on the scheduler socket: {0}")]
    Protocol(String),
    /// No node made progress for too long: a script is stuck outside the simulated tools.
    #[error("no progress for {after:?}; nodes still running: {busy:?}")]
    Stuck {
        /// How long nothing happened.
        after: Duration,
        /// The nodes that neither asked for anything nor exited.
        busy: Vec<String>,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Writes one length-prefixed JSON message.
fn send<T: Serialize>(stream: &mut UnixStream, message: &T) -> Result<(), Error> {
    let body = serde_json::to_vec(message).map_err(|e| Error::Protocol(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| Error::Protocol("message over 4 GiB".into()))?;
    stream
        .write_all(&len.to_be_bytes())
        .map_err(io("writing to the scheduler socket"))?;
    stream
        .write_all(&body)
        .map_err(io("writing to the scheduler socket"))
}

/// Reads one length-prefixed JSON message.
fn receive<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> Result<T, Error> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(io("reading from the scheduler socket"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(Error::Protocol(format!("message of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .map_err(io("reading from the scheduler socket"))?;
    serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
}

/// The client side: sends one request and waits for its reply. Used by the `vxr-sim` binary when
/// it is invoked as a simulated tool.
pub fn call(socket: &Path, request: &Request) -> Result<Reply, Error> {
    let mut stream =
        UnixStream::connect(socket).map_err(io(format!("connecting to {}", socket.display())))?;
    send(&mut stream, request)?;
    receive(&mut stream)
}

/// Answers requests; the scheduler calls it for one request at a time, in the scheduled order.
pub trait Handler {
    /// Executes one command against the simulated world and returns what the tool prints.
    fn handle(&mut self, request: &Request) -> Reply;

    /// Whether to leave `request` unanswered for now: its script stays blocked in the command.
    /// Asked before every answer, again in each later round the request is carried into.
    fn hold(&mut self, request: &Request) -> bool {
        let _ = request;
        false
    }
}

/// One script process to run on a node.
pub struct NodeProcess {
    /// Node name, as sent in requests.
    pub node: String,
    /// The command to start (the script with its mode and environment set up by the caller).
    pub command: Command,
}

/// What a node's process left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOutcome {
    /// The node.
    pub node: String,
    /// Everything the script printed on standard output.
    pub stdout: String,
    /// Everything the script printed on standard error.
    pub stderr: String,
    /// Its exit code (`-1` when killed by a signal).
    pub code: i32,
}

enum State {
    Busy,
    Waiting(VecDeque<(Request, UnixStream)>),
    Held(Request, UnixStream),
    Exited,
}

/// A node's script that did not finish its round: it is blocked in a held command.
pub struct Carried {
    node: String,
    child: Child,
    readers: (JoinHandle<String>, JoinHandle<String>),
    held: (Request, UnixStream),
}

impl Carried {
    /// The node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The command it is blocked in.
    pub fn held(&self) -> &Request {
        &self.held.0
    }

    /// Kills the script (its node lost power, or the run is over) and returns what it printed.
    pub fn kill(mut self) -> NodeOutcome {
        let _ = self.child.kill();
        let code = self.child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
        drop(self.held);
        NodeOutcome {
            node: self.node,
            stdout: self.readers.0.join().unwrap_or_default(),
            stderr: self.readers.1.join().unwrap_or_default(),
            code,
        }
    }
}

/// What a round is given for one node: a script to start, or one carried from an earlier round.
pub enum Entry {
    /// Start this process.
    Start(NodeProcess),
    /// Carry this blocked script on.
    Carry(Carried),
}

/// What a round left of one node's script.
pub enum Slot {
    /// It exited.
    Finished(NodeOutcome),
    /// It is blocked in a held command.
    Carried(Carried),
}

/// Runs one round: starts every node's process at once and serves their requests in the
/// deterministic order until all have exited. Returns each node's outcome, in the given order.
/// A script left blocked in a held command is killed at the end of the round.
pub fn run_round(
    socket: &Path,
    processes: Vec<NodeProcess>,
    handler: &mut dyn Handler,
    stuck_after: Duration,
) -> Result<Vec<NodeOutcome>, Error> {
    let entries = processes.into_iter().map(Entry::Start).collect();
    Ok(run_round_carrying(socket, entries, handler, stuck_after)?
        .into_iter()
        .map(|slot| match slot {
            Slot::Finished(outcome) => outcome,
            Slot::Carried(carried) => carried.kill(),
        })
        .collect())
}

/// Runs one round of the given entries, in their order: starts the new processes, offers each
/// carried one's held request to the handler again, and serves every request in the
/// deterministic order until each script has exited or is blocked in a held command. Returns one
/// slot per entry, in the given order.
pub fn run_round_carrying(
    socket: &Path,
    entries: Vec<Entry>,
    handler: &mut dyn Handler,
    stuck_after: Duration,
) -> Result<Vec<Slot>, Error> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(io(format!("binding {}", socket.display())))?;
    let (tx, rx) = mpsc::channel::<Result<(Request, UnixStream), Error>>();
    let accept_socket = socket.to_path_buf();
    std::thread::spawn(move || accept_loop(listener, tx, accept_socket));

    let mut names: Vec<String> = Vec::with_capacity(entries.len());
    let mut children: Vec<Child> = Vec::with_capacity(entries.len());
    let mut readers: Vec<(JoinHandle<String>, JoinHandle<String>)> = Vec::with_capacity(entries.len());
    let mut states: Vec<State> = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Entry::Start(mut p) => {
                let mut child = p
                    .command
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(io(format!("starting the script for {}", p.node)))?;
                readers.push((drain(child.stdout.take()), drain(child.stderr.take())));
                children.push(child);
                names.push(p.node);
                states.push(State::Busy);
            }
            Entry::Carry(c) => {
                names.push(c.node);
                children.push(c.child);
                readers.push(c.readers);
                states.push(State::Waiting(VecDeque::from([c.held])));
            }
        }
    }
    let mut codes: Vec<i32> = vec![0; names.len()];
    let mut last_granted: Option<usize> = None;
    let mut last_progress = Instant::now();

    loop {
        // Collect what arrived and which processes ended. Only a running process can send
        // anything or end: while one runs, wait a little for its next request (or poll for its
        // end); once none runs, take what is there and go on without waiting.
        loop {
            let message = if states.iter().any(|s| matches!(s, State::Busy)) {
                match rx.recv_timeout(POLL) {
                    Ok(message) => message,
                    Err(_) => break,
                }
            } else {
                match rx.try_recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            };
            let (request, stream) = message?;
            let Some(index) = names.iter().position(|n| *n == request.node) else {
                let mut stream = stream;
                let reply = Reply {
                    stderr: format!("unknown node {}\n", request.node),
                    code: 127,
                    ..Reply::default()
                };
                send(&mut stream, &reply)?;
                continue;
            };
            match &mut states[index] {
                State::Waiting(queue) => queue.push_back((request, stream)),
                state => *state = State::Waiting(VecDeque::from([(request, stream)])),
            }
            last_progress = Instant::now();
        }
        for (index, child) in children.iter_mut().enumerate() {
            if matches!(states[index], State::Busy)
                && let Some(status) = child.try_wait().map_err(io("waiting for a script"))?
            {
                codes[index] = status.code().unwrap_or(-1);
                states[index] = State::Exited;
                last_progress = Instant::now();
            }
        }
        if states
            .iter()
            .all(|s| matches!(s, State::Exited | State::Held(..)))
        {
            break;
        }
        if states.iter().any(|s| matches!(s, State::Busy)) {
            if last_progress.elapsed() > stuck_after {
                let busy = names
                    .iter()
                    .zip(&states)
                    .filter(|(_, s)| matches!(s, State::Busy))
                    .map(|(n, _)| n.clone());
                let busy = busy.collect();
                for child in &mut children {
                    let _ = child.kill();
                }
                return Err(Error::Stuck {
                    after: stuck_after,
                    busy,
                });
            }
            continue;
        }
        // Everyone alive is waiting: grant the next node after the last one granted.
        let count = names.len();
        let start = last_granted.map_or(0, |i| i + 1);
        let next = (0..count)
            .map(|k| (start + k) % count)
            .find(|i| matches!(states[*i], State::Waiting(_)));
        let Some(index) = next else { continue };
        let State::Waiting(queue) = &mut states[index] else {
            continue;
        };
        let Some((request, mut stream)) = queue.pop_front() else {
            continue;
        };
        last_granted = Some(index);
        if handler.hold(&request) {
            // The script blocks in this command; it sends nothing else meanwhile.
            states[index] = State::Held(request, stream);
            last_progress = Instant::now();
            continue;
        }
        if queue.is_empty() {
            states[index] = State::Busy;
        }
        let reply = handler.handle(&request);
        // A client that went away (its script was killed) is not an error of the round.
        let _ = send(&mut stream, &reply);
        last_progress = Instant::now();
    }

    // Wake the accept thread so that it notices the round is over and ends.
    drop(rx);
    let _ = UnixStream::connect(socket);
    let _ = std::fs::remove_file(socket);
    let mut slots = Vec::with_capacity(names.len());
    let parts = names
        .into_iter()
        .zip(codes)
        .zip(readers)
        .zip(children)
        .zip(states);
    for ((((node, code), (out, err)), child), state) in parts {
        if let State::Held(request, stream) = state {
            slots.push(Slot::Carried(Carried {
                node,
                child,
                readers: (out, err),
                held: (request, stream),
            }));
            continue;
        }
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        slots.push(Slot::Finished(NodeOutcome {
            node,
            stdout,
            stderr,
            code,
        }));
    }
    Ok(slots)
}

/// How long the scheduler waits for a running script's next request before it looks whether
/// the script has ended.
const POLL: Duration = Duration::from_millis(2);

fn accept_loop(
    listener: UnixListener,
    tx: mpsc::Sender<Result<(Request, UnixStream), Error>>,
    path: PathBuf,
) {
    for stream in listener.incoming() {
        let message = stream
            .map_err(io(format!("accepting on {}", path.display())))
            .and_then(|mut stream| {
                let request: Request = receive(&mut stream)?;
                Ok((request, stream))
            });
        if tx.send(message).is_err() {
            return;
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

//! Simulated FTP clients: each draws its next action from a model of FTP
//! (login right and wrong, directories, listings, uploads, downloads,
//! resume, rename, delete, abort, pipelined and malformed commands, quit,
//! or vanishing), talks to the server through the simulated network, and
//! checks every reply against the model of allowed codes and every
//! acknowledged transfer against the model of file contents.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::model::{describe, from_crlf, to_crlf, Content, Expect, Model};
use crate::net::{ConnId, SimStack, CONTROL_PORT, SERVER_IP};
use crate::observe::Seen;
use crate::reply::{self, Cmd, Reply};
use crate::rng::{Shared, Source};
use crate::trace::{show, SharedTrace};
use ferry_core::Config;

/// Files each client owns, in its own directory `/c<id>`.
pub const FILES: usize = 4;
/// Read-only files everyone may download: `/pub/p<i>`.
pub const PUB_FILES: usize = 3;
/// Files every client may write: `/shared/s<i>` (not in the model).
pub const SHARED_FILES: usize = 3;

/// How long the server may try to send a goodbye (421) to a client that
/// does not read it before it closes anyway (the engine's grace time).
pub const GOODBYE_GRACE_MS: u64 = 5_000;

/// How long a client waits for a reply before it calls the server hung.
pub const REPLY_DEADLINE_MS: u64 = 60_000;

/// What a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Logs in and works.
    Normal,
    /// Connects, sends nothing or garbage, and never leaves (an accept flood).
    Flood,
}

/// Where a client is in its life.
#[derive(Debug)]
enum Phase {
    /// Not connected; connects at the time given.
    Offline(u64),
    /// Connected, waiting for the greeting since the time given.
    Greeting(u64),
    /// Connected and idle: draws its next action.
    Ready,
    /// Carrying out an action.
    Busy(Box<Run>),
    /// Holds its connection open and does nothing (vanished, or a flood).
    Silent,
    /// Finished.
    Done,
}

/// What the data connection of a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Connects and moves the data.
    Normal,
    /// Never connects.
    Never,
    /// Connects from another address (the server must refuse it).
    WrongIp,
    /// Someone else connects first from another address, then the client:
    /// the transfer goes to the client, nothing to the other.
    Thief,
    /// Resets the data connection part way.
    Reset,
    /// Sends ABOR part way.
    Abort,
}

/// How a transfer's data connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PASV: the client connects to the port in the 227 reply.
    Pasv,
    /// EPSV: the client connects to the port in the 229 reply.
    Epsv,
    /// PORT or EPRT: the server connects to the client.
    Port,
}

#[derive(Debug, Clone)]
enum Xfer {
    /// LIST, NLST or MLSD of a directory.
    List(&'static str, String),
    /// RETR from an offset (REST first when not 0).
    Retr(String, usize),
    /// STOR, or APPE.
    Stor(String, Vec<u8>, bool),
    /// REST and STOR: writes in place from an offset.
    StorAt(String, Vec<u8>, usize),
    /// STOU: a new file whose name the server picks.
    Stou(Vec<u8>),
}

impl Xfer {
    /// The bytes an upload sends.
    fn upload(&self) -> Option<&[u8]> {
        match self {
            Xfer::Stor(_, b, _) | Xfer::StorAt(_, b, _) | Xfer::Stou(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// USER and PASS (the right password or not; PASS pipelined behind
    /// USER or sent after the 331).
    Login(bool, bool),
    /// One or more simple commands, sent at once (pipelined).
    Simple(Vec<(String, Cmd)>),
    /// A malformed line, then SYST as a sentinel.
    Malformed(Vec<u8>),
    Rename(String, String),
    /// A command on one path whose reply the model checks (DELE, SIZE...).
    OnPath(Cmd, &'static str, String),
    Transfer(Xfer, Mode, Plan),
    /// PASV or EPSV, and then no data connection at all.
    PasvOnly(bool),
    Quit(bool),
}

#[derive(Debug)]
struct Data {
    conn: ConnId,
    got: Vec<u8>,
    sent: usize,
    closed: bool,
    reset: bool,
}

#[derive(Debug)]
struct Run {
    op: Op,
    /// Replies awaited, in order: the command and its line for the trace.
    waits: VecDeque<(Cmd, String)>,
    /// Last progress (a reply, data moved).
    since: u64,
    data: Option<Data>,
    /// A 150 arrived: the transfer runs.
    started: bool,
    /// ABOR was sent.
    aborted: bool,
    /// The transfer's final reply arrived (code).
    ended: Option<u16>,
    /// Paths under this directory go out relative to it (the client's
    /// working directory).
    strip: Option<String>,
    /// QUIT was pipelined behind the transfer: the client leaves after it.
    quit: bool,
    /// Another host's connection to the passive port ([`Plan::Thief`]).
    thief: Option<ConnId>,
    /// Where the client listens for the server's active connection.
    listen: Option<SocketAddr>,
    /// When PASS was sent.
    since_pass: u64,
}

impl Run {
    /// Takes the server's active connection once it has come.
    fn accept_active(&mut self, cx: &mut Ctx<'_>, id: usize) {
        let Some(addr) = self.listen else { return };
        if self.data.is_some() {
            return;
        }
        if let Some(conn) = cx.stack.client_accept(addr) {
            cx.log(format!(
                "c{id} takes the server's data connection to {addr} (conn {conn})"
            ));
            self.data = Some(Data {
                conn,
                got: Vec::new(),
                sent: 0,
                closed: false,
                reset: false,
            });
        }
    }

    /// The client's side of the data connection goes (and its listener).
    fn close_data(&mut self, cx: &mut Ctx<'_>, orderly: bool) {
        if let Some(d) = &self.data {
            if orderly {
                cx.stack.close(d.conn, true);
            } else {
                cx.stack.reset(d.conn);
            }
        }
        if let Some(addr) = self.listen.take() {
            cx.stack.client_unlisten(addr);
        }
    }
}

/// A path as the client sends it: relative to `strip` when that is set.
fn wire(path: &str, strip: &Option<String>) -> String {
    match strip {
        Some(dir) => path
            .strip_prefix(dir.as_str())
            .and_then(|p| p.strip_prefix('/'))
            .map_or_else(|| path.to_string(), str::to_string),
        None => path.to_string(),
    }
}

/// Everything a client's step uses besides itself.
pub struct Ctx<'a> {
    /// The network.
    pub stack: &'a mut SimStack,
    /// The run's choices.
    pub rng: &'a Shared,
    /// The trace.
    pub trace: &'a SharedTrace,
    /// Expectations of file contents.
    pub model: &'a mut Model,
    /// The simulated time (ms).
    pub now: u64,
    /// What the server reported through its observer.
    pub seen: &'a Seen,
    /// The server's settings (for its timeouts).
    pub config: &'a Config,
    /// Paths to read straight from storage and check, after this step.
    pub checks: &'a mut Vec<String>,
    /// The first invariant broken, if any.
    pub failure: &'a mut Option<String>,
}

impl Ctx<'_> {
    fn fail(&mut self, why: String) {
        self.log(format!("FAILURE: {why}"));
        if self.failure.is_none() {
            *self.failure = Some(why);
        }
    }

    fn log(&self, line: impl AsRef<str>) {
        self.trace.borrow_mut().log(line);
    }

    fn chance(&self, per_mille: u64) -> bool {
        self.rng.borrow_mut().chance(per_mille)
    }

    fn range(&self, lo: usize, hi: usize) -> usize {
        self.rng.borrow_mut().range_usize(lo, hi)
    }
}

/// One simulated client.
#[derive(Debug)]
pub struct Client {
    /// Its number (its directory is `/c<id>`).
    pub id: usize,
    kind: Kind,
    ip: Ipv4Addr,
    user: &'static str,
    ctrl: Option<ConnId>,
    inbox: Vec<u8>,
    logged_in: bool,
    last_code: u16,
    /// The port of the last 227 or 229 reply.
    last_port: Option<u16>,
    /// The working directory, as the client believes it is.
    cwd: String,
    /// TYPE A is in effect (contents are converted: not checked).
    ascii: bool,
    /// Active-mode listeners opened so far (for their ports).
    active_seq: u16,
    /// What the next transfer pipelines behind its command: 0 nothing,
    /// 1 NOOP, 2 PWD, 3 STAT, 4 QUIT.
    pipeline: u8,
    ops_left: u32,
    retries_left: u32,
    phase: Phase,
}

/// The path of a client's file `i`.
pub fn file_path(id: usize, i: usize) -> String {
    format!("/c{id}/f{i}")
}

/// The path of shared file `i`.
pub fn shared_path(i: usize) -> String {
    format!("/shared/s{i}")
}

/// The path of public file `i`.
pub fn pub_path(i: usize) -> String {
    format!("/pub/p{i}")
}

impl Client {
    /// A client drawn from `rng`, connecting first at `start` (ms).
    pub fn new(id: usize, kind: Kind, rng: &mut Source, start: u64) -> Client {
        let host = u8::try_from(2 + rng.below(24)).unwrap_or(2);
        Client {
            id,
            kind,
            ip: Ipv4Addr::new(10, 0, 0, host),
            user: if rng.chance(150) { "ro" } else { "u" },
            ctrl: None,
            inbox: Vec::new(),
            logged_in: false,
            last_code: 0,
            last_port: None,
            cwd: "/".into(),
            ascii: false,
            pipeline: 0,
            active_seq: 0,
            ops_left: u32::try_from(rng.range(1, 30)).unwrap_or(1),
            retries_left: u32::try_from(rng.range(2, 12)).unwrap_or(2),
            phase: Phase::Offline(start),
        }
    }

    /// Whether the client is finished (or silent for good).
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Silent)
    }

    /// The control connection, if any.
    pub fn ctrl(&self) -> Option<ConnId> {
        self.ctrl
    }

    /// A one-line state for a failure report.
    pub fn describe(&self) -> String {
        let phase = match &self.phase {
            Phase::Offline(t) => format!("offline until {t} ms"),
            Phase::Greeting(t) => format!("awaiting the greeting since {t} ms"),
            Phase::Ready => "idle".into(),
            Phase::Busy(run) => format!(
                "running {:?}, awaiting {:?}",
                short(&run.op),
                run.waits.iter().map(|w| &w.1).collect::<Vec<_>>()
            ),
            Phase::Silent => "silent".into(),
            Phase::Done => "done".into(),
        };
        format!("c{}: {phase}", self.id)
    }

    fn log(&self, cx: &mut Ctx<'_>, what: impl AsRef<str>) {
        cx.log(format!("c{} {}", self.id, what.as_ref()));
    }

    fn send_line(&mut self, cx: &mut Ctx<'_>, line: &str) {
        self.log(cx, format!("> {line}"));
        if let Some(c) = self.ctrl {
            let mut bytes = line.as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            cx.stack.send(c, &bytes);
        }
    }

    /// One step: read what arrived, check it, and act.
    pub fn step(&mut self, cx: &mut Ctx<'_>) {
        if cx.failure.is_some() {
            return;
        }
        self.read_control(cx);
        if cx.failure.is_some() {
            return;
        }
        match self.phase {
            Phase::Offline(at) if cx.now >= at => self.connect(cx),
            Phase::Greeting(since) if cx.now.saturating_sub(since) > REPLY_DEADLINE_MS => {
                let why = format!("c{}: no greeting within {REPLY_DEADLINE_MS} ms", self.id);
                cx.fail(why);
            }
            Phase::Ready => self.next_action(cx),
            Phase::Busy(_) => self.drive(cx),
            _ => {}
        }
    }

    fn connect(&mut self, cx: &mut Ctx<'_>) {
        let to = SocketAddr::new(IpAddr::V4(SERVER_IP), CONTROL_PORT);
        self.inbox.clear();
        self.logged_in = false;
        self.last_code = 0;
        self.cwd = "/".into();
        self.ascii = false;
        match cx.stack.connect(self.ip, to) {
            Some(c) => {
                self.log(cx, format!("connects from {} (conn {c})", self.ip));
                self.ctrl = Some(c);
                if self.kind == Kind::Flood {
                    cx.stack.mark_faulted(c);
                    if cx.chance(500) {
                        let n = cx.range(1, 300);
                        let mut junk = cx.rng.borrow_mut().fill(n);
                        if cx.chance(500) {
                            junk.extend_from_slice(b"\r\n");
                        }
                        self.log(cx, format!("floods: sends {}", show(&junk, 40)));
                        cx.stack.send(c, &junk);
                    } else {
                        self.log(cx, "floods: sends nothing");
                    }
                    self.phase = Phase::Silent;
                } else {
                    self.phase = Phase::Greeting(cx.now);
                }
            }
            None => {
                self.log(cx, "cannot connect: nothing listens");
                self.lost(cx);
            }
        }
    }

    /// Reads the control connection and handles each complete reply.
    fn read_control(&mut self, cx: &mut Ctx<'_>) {
        let Some(c) = self.ctrl else { return };
        if matches!(self.phase, Phase::Silent) {
            return;
        }
        // A slow reader now and then: the server's sends block.
        let max = if cx.chance(100) { 0 } else { cx.range(1, 4096) };
        let bytes = cx.stack.recv(c, max);
        self.inbox.extend_from_slice(&bytes);
        loop {
            match reply::take(&mut self.inbox) {
                Ok(Some(r)) => {
                    self.on_reply(cx, r);
                    if cx.failure.is_some() || self.ctrl.is_none() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(why) => {
                    let text = show(&self.inbox, 200);
                    return cx.fail(format!("c{}: malformed reply ({why}): {text}", self.id));
                }
            }
        }
        if cx.stack.at_eof(c) {
            let reset = cx.stack.is_reset(c);
            let orderly = !cx.stack.faulted(c);
            let greeting = matches!(self.phase, Phase::Greeting(_));
            self.log(
                cx,
                if reset {
                    "control connection reset"
                } else {
                    "control connection closed by the server"
                },
            );
            if !self.inbox.is_empty() {
                // The server gives up on a goodbye the client does not read
                // (after a grace time), and sends the refusal of a
                // connection it has no room for once, best effort.
                let text = show(&self.inbox, 80);
                self.log(cx, format!("closed in the middle of a reply: {text}"));
            } else if orderly
                && !greeting
                && !matches!(self.last_code, 221 | 421 | 530)
                // An evicted session's 421 is sent once, best effort.
                && !cx.seen.evicted(cx.stack.peer(c))
                // A goodbye is lost only when the server's sends blocked and
                // its grace time, which starts no earlier than the last
                // command the server took from this connection, ran out.
                && (!cx.stack.send_blocked(c)
                    || cx.now.saturating_sub(cx.seen.last_command(cx.stack.peer(c)))
                        < GOODBYE_GRACE_MS)
            {
                let last = self.last_code;
                return cx.fail(format!(
                    "c{}: the server closed the control connection without a goodbye (last reply {last})",
                    self.id
                ));
            }
            self.lost(cx);
        }
    }

    /// The connection is gone: whatever was running has an unknown outcome.
    fn lost(&mut self, cx: &mut Ctx<'_>) {
        if let Phase::Busy(run) = std::mem::replace(&mut self.phase, Phase::Ready) {
            if run.ended.is_none() || !run.waits.is_empty() {
                self.unknown_outcome(cx, &run);
            }
            let mut run = run;
            run.close_data(cx, false);
        }
        if let Some(c) = self.ctrl.take() {
            cx.stack.close(c, true);
        }
        self.logged_in = false;
        self.phase = if self.ops_left > 0 && self.retries_left > 0 && self.kind == Kind::Normal {
            self.retries_left -= 1;
            Phase::Offline(cx.now + cx.rng.borrow_mut().range(50, 3000))
        } else {
            Phase::Done
        };
    }

    /// Widens the model for an action whose result the client never saw.
    fn unknown_outcome(&self, cx: &mut Ctx<'_>, run: &Run) {
        match &run.op {
            Op::Transfer(Xfer::Stor(path, data, append), _, _) if run.ended.is_none() => {
                let old = cx.model.get(path);
                let new = if *append || !old.surely_exists() {
                    Expect::Unknown
                } else if self.ascii {
                    old.or(Some(from_crlf(data)))
                } else {
                    old.or(Some(data.clone()))
                };
                cx.model.set(path, new);
            }
            Op::OnPath(Cmd::Dele, _, path) => {
                let e = cx.model.get(path).or(None);
                cx.model.set(path, e);
            }
            Op::Transfer(Xfer::StorAt(path, ..), _, _) => cx.model.set(path, Expect::Unknown),
            Op::Rename(from, to) => {
                let e = cx.model.get(from).or(None);
                cx.model.set(from, e);
                cx.model.set(to, Expect::Unknown);
            }
            _ => {}
        }
    }

    fn on_reply(&mut self, cx: &mut Ctx<'_>, r: Reply) {
        self.log(
            cx,
            format!("< {}", show(&r.text, 120).trim_end_matches("\\r\\n")),
        );
        self.last_code = r.code;
        if matches!(r.code, 227 | 229) {
            self.last_port = passive_port(&r.text);
        }
        if r.code == 421 && r.text.starts_with(b"421 Idle timeout") {
            // Sent once the session was idle that long since its last command.
            let idle = cx.now.saturating_sub(
                cx.seen
                    .last_command(self.ctrl.and_then(|c| cx.stack.peer(c))),
            );
            if idle < cx.config.idle_timeout_ms {
                return cx.fail(format!(
                    "c{}: idle timeout after {idle} ms; the limit is {} ms",
                    self.id, cx.config.idle_timeout_ms
                ));
            }
        }
        if r.code == 421 {
            // The server is closing: whatever runs has an unknown outcome.
            self.log(cx, "server said 421: leaves");
            self.lost(cx);
            return;
        }
        if matches!(self.phase, Phase::Greeting(_)) && r.code == 220 {
            self.phase = Phase::Ready;
            return;
        }
        match &mut self.phase {
            Phase::Busy(run) => {
                run.since = cx.now;
                // An urgent command pipelined behind a running transfer
                // (NOOP) is answered before the transfer ends.
                let overtakes = run.started
                    && run.waits.front().is_some_and(|w| w.0.is_transfer())
                    && run.waits.get(1).is_some_and(|w| match w.0 {
                        Cmd::Noop => r.code == 200,
                        Cmd::Stat => (211..=213).contains(&r.code),
                        _ => false,
                    });
                if overtakes {
                    run.waits.remove(1);
                    return;
                }
                let Some((cmd, line)) = run.waits.front().cloned() else {
                    return cx.fail(format!("c{}: unsolicited reply {}", self.id, r.code));
                };
                if cmd == Cmd::Malformed {
                    if r.code == 215 {
                        run.waits.pop_front();
                    } else if !cmd.allowed(self.logged_in).contains(&r.code) {
                        return cx.fail(format!(
                            "c{}: reply {} to a malformed line, allowed {:?}",
                            self.id,
                            r.code,
                            cmd.allowed(self.logged_in)
                        ));
                    }
                } else if (100..200).contains(&r.code) {
                    if !(cmd.is_transfer() && r.code == 150 && !run.started && self.logged_in) {
                        return cx.fail(format!(
                            "c{}: preliminary reply {} to {line}",
                            self.id, r.code
                        ));
                    }
                    run.started = true;
                } else {
                    let allowed = cmd.allowed(self.logged_in);
                    if !allowed.contains(&r.code) {
                        return cx.fail(format!(
                            "c{}: reply {} to {line}, allowed {allowed:?}",
                            self.id, r.code
                        ));
                    }
                    run.waits.pop_front();
                    self.on_final(cx, cmd, &line, &r);
                }
                if let Phase::Busy(run) = &self.phase {
                    if run.waits.is_empty() {
                        self.finish(cx);
                    }
                }
            }
            _ => cx.fail(format!(
                "c{}: unexpected reply {} ({})",
                self.id,
                r.code,
                self.describe()
            )),
        }
    }

    /// A final reply to `cmd` (sent as `line`) arrived: moves the action on
    /// and checks what the model can tell.
    fn on_final(&mut self, cx: &mut Ctx<'_>, cmd: Cmd, line: &str, r: &Reply) {
        let (id, ctrl, code) = (self.id, self.ctrl, r.code);
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        let mut passive = false;
        let mut ended = false;
        let mut next: Option<(Cmd, String)> = None;
        let text = String::from_utf8_lossy(&r.text).into_owned();
        match (&run.op, cmd) {
            (Op::Login(ok, false), Cmd::User) if code == 331 => {
                let pass = if *ok { "p" } else { "wrong" };
                next = Some((Cmd::Pass, format!("PASS {pass}")));
            }
            (Op::Login(..), Cmd::Pass) if code == 530 => {
                // A failed login is answered only after the delay.
                let waited = cx.now.saturating_sub(run.since_pass);
                if waited < u64::from(cx.config.login_fail_delay_ms) {
                    return cx.fail(format!(
                        "c{id}: 530 for a wrong password after {waited} ms; the delay is {} ms",
                        cx.config.login_fail_delay_ms
                    ));
                }
                self.logged_in = false;
            }
            (Op::Login(..), Cmd::User | Cmd::Pass) => self.logged_in = code == 230,
            (_, Cmd::Rein) => {
                self.logged_in = false;
                self.cwd = "/".into();
                self.ascii = false;
            }
            (_, Cmd::Type) if code == 200 => self.ascii = line.ends_with('A'),
            (_, Cmd::Cwd) if code == 250 => {
                self.cwd = match line.strip_prefix("CWD ") {
                    Some(dir) => dir.to_string(),
                    None => match self.cwd.rfind('/') {
                        Some(0) | None => "/".into(),
                        Some(i) => self.cwd.get(..i).unwrap_or("/").to_string(),
                    },
                };
            }
            (_, Cmd::Pwd) if code == 257 => {
                let quoted = format!("\"{}\"", self.cwd);
                if !text.contains(&quoted) {
                    return cx.fail(format!(
                        "c{id}: PWD says {}, the client is in {quoted}",
                        text.trim_end()
                    ));
                }
            }
            (Op::Simple(_), Cmd::Retr) if code == 226 => {
                return cx.fail(format!(
                    "c{id}: 226 for an active-mode transfer whose connection was refused"
                ));
            }
            (Op::OnPath(Cmd::Dele, _, path), Cmd::Dele) if code == 250 => {
                cx.model.set(path, Expect::exactly(None));
            }
            (Op::OnPath(Cmd::Size, _, path), Cmd::Size) if code == 213 && !self.ascii => {
                let size: Option<usize> = text.get(4..).and_then(|t| t.trim().parse().ok());
                if let (Some(size), Expect::OneOf(options)) = (size, cx.model.get(path)) {
                    if !options
                        .iter()
                        .any(|c| c.as_ref().map(Vec::len) == Some(size))
                    {
                        let lens: Vec<Option<usize>> =
                            options.iter().map(|c| c.as_ref().map(Vec::len)).collect();
                        return cx.fail(format!(
                            "c{id}: SIZE {path} says {size}; the model allows {lens:?} (None: absent)"
                        ));
                    }
                }
            }
            (Op::Rename(_, to), Cmd::Rnfr) if code == 350 => {
                next = Some((Cmd::Rnto, format!("RNTO {}", wire(to, &run.strip))));
            }
            (Op::Rename(from, to), Cmd::Rnto) if code == 250 && from != to => {
                let moved = cx.model.get(from);
                cx.model.set(to, moved);
                cx.model.set(from, Expect::exactly(None));
            }
            (Op::Transfer(..) | Op::PasvOnly(_), Cmd::Pasv | Cmd::Epsv)
            | (Op::Transfer(..), Cmd::Port) => passive = true,
            (Op::Transfer(..), Cmd::List | Cmd::Retr | Cmd::Stor) => {
                run.ended = Some(code);
                ended = true;
            }
            _ => {}
        }
        if let Some((cmd, line)) = next {
            run.since_pass = cx.now;
            run.waits.push_back((cmd, line.clone()));
            cx.log(format!("c{id} > {line}"));
            if let Some(c) = ctrl {
                cx.stack.send(c, format!("{line}\r\n").as_bytes());
            }
        }
        if passive {
            self.on_passive(cx, code);
        }
        if ended {
            self.on_transfer_end(cx, code);
        }
    }

    /// PASV/EPSV (or PORT/EPRT) answered: connect the data connection as
    /// planned and send the transfer command.
    fn on_passive(&mut self, cx: &mut Ctx<'_>, code: u16) {
        let id = self.id;
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        if !matches!(run.op, Op::Transfer(..)) {
            return; // PasvOnly: nothing more
        }
        if !matches!(code, 200 | 227 | 229) {
            return;
        }
        let port = if run.listen.is_some() {
            None // active: the server connects
        } else if let Some(port) = self.last_port.take() {
            Some(port)
        } else {
            return cx.fail(format!("c{id}: cannot parse the passive reply"));
        };
        if let Some(port) = port {
            self.connect_passive(cx, port);
        }
        self.send_transfer(cx);
    }

    /// Connects to the passive port as the transfer's plan says.
    fn connect_passive(&mut self, cx: &mut Ctx<'_>, port: u16) {
        let id = self.id;
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        let Op::Transfer(_, _, plan) = &run.op else {
            return;
        };
        if *plan == Plan::Thief {
            let to = SocketAddr::new(IpAddr::V4(SERVER_IP), port);
            run.thief = cx.stack.connect(Ipv4Addr::new(10, 9, 9, 8), to);
            cx.log(format!("c{id} another host connects first to port {port}"));
        }
        let from = match plan {
            Plan::Never => None,
            Plan::WrongIp => Some(Ipv4Addr::new(10, 9, 9, 9)),
            _ => Some(self.ip),
        };
        if let Some(ip) = from {
            let to = SocketAddr::new(IpAddr::V4(SERVER_IP), port);
            match cx.stack.connect(ip, to) {
                Some(conn) => {
                    cx.log(format!(
                        "c{id} data connection from {ip} to port {port} (conn {conn})"
                    ));
                    run.data = Some(Data {
                        conn,
                        got: Vec::new(),
                        sent: 0,
                        closed: false,
                        reset: false,
                    });
                }
                None => cx.log(format!("c{id} data connection to port {port} refused")),
            }
        } else {
            cx.log(format!("c{id} never opens the data connection"));
        }
    }

    /// Sends the transfer command (and what is pipelined behind it).
    fn send_transfer(&mut self, cx: &mut Ctx<'_>) {
        let id = self.id;
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        let Op::Transfer(xfer, _, _) = &run.op else {
            return;
        };
        let w = |p: &str| wire(p, &run.strip);
        let mut lines: Vec<(Cmd, String)> = match xfer {
            Xfer::List(verb, dir) => vec![(Cmd::List, format!("{verb} {}", w(dir)))],
            Xfer::Retr(path, 0) => vec![(Cmd::Retr, format!("RETR {}", w(path)))],
            Xfer::Retr(path, rest) => vec![
                (Cmd::Rest, format!("REST {rest}")),
                (Cmd::Retr, format!("RETR {}", w(path))),
            ],
            Xfer::Stor(path, _, false) => vec![(Cmd::Stor, format!("STOR {}", w(path)))],
            Xfer::Stor(path, _, true) => vec![(Cmd::Stor, format!("APPE {}", w(path)))],
            Xfer::StorAt(path, _, at) => vec![
                (Cmd::Rest, format!("REST {at}")),
                (Cmd::Stor, format!("STOR {}", w(path))),
            ],
            Xfer::Stou(_) => vec![(Cmd::Stor, "STOU".into())],
        };
        // Pipelined behind the transfer: NOOP is answered at once, PWD
        // after the transfer's end.
        match self.pipeline {
            1 => lines.push((Cmd::Noop, "NOOP".into())),
            2 => lines.push((Cmd::Pwd, "PWD".into())),
            3 => lines.push((Cmd::Stat, "STAT".into())),
            4 => {
                // RFC 959: QUIT during a transfer is answered after it.
                lines.push((Cmd::Quit, "QUIT".into()));
                run.quit = true;
            }
            _ => {}
        }
        for (cmd, line) in lines {
            run.waits.push_back((cmd, line.clone()));
            cx.log(format!("c{id} > {line}"));
            if let Some(c) = self.ctrl {
                cx.stack.send(c, format!("{line}\r\n").as_bytes());
            }
        }
    }

    /// The transfer's final reply: check what moved against the model.
    fn on_transfer_end(&mut self, cx: &mut Ctx<'_>, code: u16) {
        let (id, ascii) = (self.id, self.ascii);
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        run.accept_active(cx, id);
        let Op::Transfer(xfer, _, plan) = run.op.clone() else {
            return;
        };
        if code == 226 {
            if matches!(plan, Plan::Never | Plan::WrongIp) {
                return cx.fail(format!(
                    "c{id}: 226 for a transfer whose data connection never came ({plan:?})"
                ));
            }
            let Some(data) = run.data.as_mut() else {
                return cx.fail(format!("c{id}: 226 without a data connection"));
            };
            if !data.reset && !cx.stack.server_closed(data.conn) {
                return cx.fail(format!(
                    "c{id}: 226 before the server closed the data connection"
                ));
            }
            let rest = cx.stack.recv(data.conn, usize::MAX);
            data.got.extend_from_slice(&rest);
            if data.reset && matches!(xfer, Xfer::Retr(..)) {
                return; // what the reset threw away is unknown
            }
            if let Some(bytes) = xfer.upload() {
                if data.sent < bytes.len() || !data.closed {
                    return cx.fail(format!(
                        "c{id}: 226 for an upload the client had not finished ({} of {} bytes sent)",
                        data.sent,
                        bytes.len()
                    ));
                }
            }
            match &xfer {
                // TYPE A converts line ends: contents are not compared.
                // TYPE A from an offset: the offset counts stored bytes.
                Xfer::Retr(_, from) if ascii && *from > 0 => {}
                Xfer::StorAt(path, ..) => cx.model.set(path, Expect::Unknown),
                Xfer::Retr(path, from) => {
                    let got = Some(data.got.clone());
                    let checked = if ascii {
                        cx.model.check_as(path, &got, 0, to_crlf)
                    } else {
                        cx.model.check(path, &got, *from)
                    };
                    if let Err(why) = checked {
                        let mode = if ascii { " (TYPE A)" } else { "" };
                        cx.fail(format!("c{id}: RETR{mode} got 226 but {why}"));
                    }
                }
                Xfer::Stor(path, sent, append) => {
                    // TYPE A stores CR LF as LF.
                    let stored = if ascii { from_crlf(sent) } else { sent.clone() };
                    let bytes = &stored;
                    let new = if *append {
                        match cx.model.get(path) {
                            Expect::OneOf(v) => Expect::OneOf(
                                v.into_iter()
                                    .map(|c| {
                                        let mut c = c.unwrap_or_default();
                                        c.extend_from_slice(bytes);
                                        Some(c)
                                    })
                                    .collect(),
                            ),
                            Expect::Unknown => Expect::Unknown,
                        }
                    } else {
                        Expect::exactly(Some(bytes.clone()))
                    };
                    cx.model.set(path, new);
                    cx.checks.push(path.clone());
                }
                Xfer::List(verb, dir) if !data.reset => {
                    if let Err(why) = check_listing(cx.model, id, verb, dir, &data.got) {
                        cx.fail(format!("c{id}: {verb} {dir} got 226 but {why}"));
                    }
                }
                Xfer::List(..) | Xfer::Stou(_) => {}
            }
        } else if let Xfer::StorAt(path, ..) = &xfer {
            cx.model.set(path, Expect::Unknown);
        } else if let Xfer::Stor(path, _, append) = &xfer {
            // A replacing STOR that failed leaves the old file whole.
            let old = cx.model.get(path);
            if *append || !old.surely_exists() {
                cx.model.set(path, Expect::Unknown);
            } else {
                cx.checks.push(path.clone());
            }
        }
    }

    /// The action is over.
    fn finish(&mut self, cx: &mut Ctx<'_>) {
        let Phase::Busy(run) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        let mut run = run;
        run.close_data(cx, true);
        if let Some(t) = run.thief {
            let stolen = cx.stack.recv(t, usize::MAX);
            cx.stack.close(t, false);
            if !stolen.is_empty() {
                return cx.fail(format!(
                    "c{}: {} bytes of a transfer went to another host's connection",
                    self.id,
                    stolen.len()
                ));
            }
        }
        if matches!(run.op, Op::Quit(_)) || run.quit {
            self.ops_left = 0;
            if let Some(c) = self.ctrl.take() {
                cx.stack.close(c, true);
            }
            self.log(cx, "done");
            self.phase = Phase::Done;
        }
    }

    /// Moves the data connection of a running transfer, and checks time.
    fn drive(&mut self, cx: &mut Ctx<'_>) {
        let id = self.id;
        let ctrl = self.ctrl;
        let Phase::Busy(run) = &mut self.phase else {
            return;
        };
        if cx.now.saturating_sub(run.since) > REPLY_DEADLINE_MS {
            let waits: Vec<&String> = run.waits.iter().map(|w| &w.1).collect();
            return cx.fail(format!(
                "c{id}: no reply within {REPLY_DEADLINE_MS} ms, awaiting {waits:?}"
            ));
        }
        // The network resets the control connection at any point, rarely.
        if cx.chance(2) {
            if let Some(c) = ctrl {
                cx.log(format!("c{id} net: control connection reset"));
                cx.stack.reset(c);
                return;
            }
        }
        run.accept_active(cx, id);
        let Op::Transfer(xfer, _, plan) = &run.op else {
            return;
        };
        let Some(data) = run.data.as_mut() else {
            return;
        };
        if !run.started || data.reset || run.ended.is_some() {
            return;
        }
        match plan {
            Plan::Reset if !data.closed && cx.chance(200) => {
                cx.log(format!("c{id} resets the data connection"));
                cx.stack.reset(data.conn);
                data.reset = true;
                return;
            }
            Plan::Abort if !run.aborted && !run.quit && cx.chance(200) => {
                run.aborted = true;
                run.waits.push_back((Cmd::Abor, "ABOR".into()));
                cx.log(format!("c{id} > ABOR"));
                if let Some(c) = ctrl {
                    cx.stack.send(c, b"ABOR\r\n");
                }
                return;
            }
            _ => {}
        }
        match xfer.upload() {
            Some(bytes) => {
                if data.sent < bytes.len() {
                    let n = cx.range(1, 3000).min(bytes.len() - data.sent);
                    let chunk = bytes.get(data.sent..data.sent + n).unwrap_or(&[]);
                    cx.stack.send(data.conn, chunk);
                    data.sent += n;
                    run.since = cx.now;
                } else if !data.closed {
                    cx.log(format!(
                        "c{id} closes the data connection after {} bytes",
                        data.sent
                    ));
                    cx.stack.close(data.conn, true);
                    data.closed = true;
                }
            }
            None => {
                let max = cx.range(0, 4096);
                let got = cx.stack.recv(data.conn, max);
                if !got.is_empty() {
                    run.since = cx.now;
                }
                data.got.extend_from_slice(&got);
            }
        }
    }

    /// Draws and starts the next action.
    fn next_action(&mut self, cx: &mut Ctx<'_>) {
        if self.ops_left == 0 {
            return self.leave(cx);
        }
        self.ops_left -= 1;
        let op = if !self.logged_in && (self.last_code == 220 || cx.chance(300)) {
            Op::Login(!cx.chance(120), cx.chance(300))
        } else {
            match self.draw(cx) {
                // Nobody else can take an active connection.
                Op::Transfer(x, Mode::Port, Plan::WrongIp | Plan::Thief) => {
                    Op::Transfer(x, Mode::Port, Plan::Normal)
                }
                op => op,
            }
        };
        self.start(cx, op);
    }

    /// How the client ends: QUIT, or it drops, resets, or goes silent.
    fn leave(&mut self, cx: &mut Ctx<'_>) {
        let Some(c) = self.ctrl else {
            self.phase = Phase::Done;
            return;
        };
        let how = cx.rng.borrow_mut().weighted(&[70, 6, 10, 6, 8]);
        match how {
            0 => self.start(cx, Op::Quit(false)),
            1 => self.start(cx, Op::Quit(true)),
            2 => {
                self.log(cx, "drops the connection without QUIT");
                cx.stack.close(c, false);
                self.ctrl = None;
                self.phase = Phase::Done;
            }
            3 => {
                self.log(cx, "resets the connection");
                cx.stack.reset(c);
                self.ctrl = None;
                self.phase = Phase::Done;
            }
            _ => {
                self.log(cx, "goes silent, holding the connection");
                cx.stack.mark_faulted(c);
                self.phase = Phase::Silent;
            }
        }
    }

    fn draw(&mut self, cx: &mut Ctx<'_>) -> Op {
        let id = self.id;
        let own = format!("/c{id}");
        let mut guard = cx.rng.borrow_mut();
        let r = &mut *guard;
        // Mostly the client's own files; sometimes a shared one that other
        // clients write too (the model does not follow those).
        let file = |r: &mut Source| {
            if r.chance(120) {
                shared_path(r.range_usize(0, SHARED_FILES - 1))
            } else {
                file_path(id, r.range_usize(0, FILES - 1))
            }
        };
        let plan = |r: &mut Source| match r.weighted(&[80, 4, 3, 3, 6, 7]) {
            0 => Plan::Normal,
            1 => Plan::Never,
            2 => Plan::WrongIp,
            3 => Plan::Thief,
            4 => Plan::Reset,
            _ => Plan::Abort,
        };
        let mode = |r: &mut Source| match r.weighted(&[45, 45, 10]) {
            0 => Mode::Pasv,
            1 => Mode::Epsv,
            _ => Mode::Port,
        };
        let upload_len = |r: &mut Source| match r.below(4) {
            0 => r.range_usize(0, 10),
            1 => r.range_usize(0, 600),
            _ => r.range_usize(0, 9000),
        };
        // Random bytes, or text full of line ends (CR LF, LF, lone CR) to
        // exercise TYPE A's conversions across chunk boundaries.
        let payload = |r: &mut Source, n: usize| {
            if r.chance(300) {
                (0..n).map(|_| b"ab\r\n\n\r"[r.range_usize(0, 5)]).collect()
            } else {
                r.fill(n)
            }
        };
        self.pipeline = match r.below(16) {
            n @ 1..=4 => n as u8,
            _ => 0,
        };
        match r.weighted(&[10, 6, 22, 16, 5, 4, 5, 5, 5, 3, 4, 3, 2, 6, 4, 2, 2, 2, 1]) {
            0 => {
                let cmds: Vec<(String, Cmd)> = (0..r.range(1, 4))
                    .map(|_| match r.below(8) {
                        0 => ("NOOP".into(), Cmd::Noop),
                        1 => ("PWD".into(), Cmd::Pwd),
                        2 => ("TYPE I".into(), Cmd::Type),
                        3 => ("TYPE A".into(), Cmd::Type),
                        4 | 5 => (format!("CWD {own}"), Cmd::Cwd),
                        6 => ("CWD /nowhere".into(), Cmd::Cwd),
                        _ => ("CDUP".into(), Cmd::Cwd),
                    })
                    .collect();
                Op::Simple(cmds)
            }
            1 => {
                let verb = ["LIST", "NLST", "MLSD"][r.range_usize(0, 2)];
                let dir = match r.below(4) {
                    0 => "/pub".into(),
                    1 => "/shared".into(),
                    _ => own,
                };
                Op::Transfer(Xfer::List(verb, dir), mode(r), plan(r))
            }
            2 => {
                let n = upload_len(r);
                let bytes = payload(r, n);
                Op::Transfer(Xfer::Stor(file(r), bytes, false), mode(r), plan(r))
            }
            3 => {
                let path = if r.chance(300) {
                    pub_path(r.range_usize(0, PUB_FILES - 1))
                } else {
                    file(r)
                };
                Op::Transfer(Xfer::Retr(path, 0), mode(r), plan(r))
            }
            4 => {
                let n = r.range_usize(0, 2000);
                let bytes = payload(r, n);
                Op::Transfer(Xfer::Stor(file(r), bytes, true), mode(r), plan(r))
            }
            5 => {
                let path = if r.chance(500) {
                    pub_path(r.range_usize(0, PUB_FILES - 1))
                } else {
                    file(r)
                };
                let rest = r.range_usize(1, 3000);
                Op::Transfer(Xfer::Retr(path, rest), mode(r), plan(r))
            }
            6 => {
                let from = file(r);
                let to = if from.starts_with("/shared/") {
                    shared_path(r.range_usize(0, SHARED_FILES - 1))
                } else {
                    file_path(id, r.range_usize(0, FILES - 1))
                };
                Op::Rename(from, to)
            }
            7 => Op::OnPath(Cmd::Dele, "DELE", file(r)),
            8 => {
                let d = format!("{own}/d{}", r.below(2));
                if r.chance(500) {
                    Op::Simple(vec![(format!("MKD {d}"), Cmd::Mkd)])
                } else {
                    Op::Simple(vec![(format!("RMD {d}"), Cmd::Rmd)])
                }
            }
            9 => Op::PasvOnly(r.chance(500)),
            10 => Op::Malformed(malformed(r)),
            11 => Op::Simple(vec![("ABOR".into(), Cmd::Abor)]),
            12 => Op::Simple(vec![("SYST".into(), Cmd::Syst)]),
            13 => Op::OnPath(Cmd::Size, "SIZE", file(r)),
            14 => match r.below(7) {
                0 => Op::Simple(vec![("FEAT".into(), Cmd::Feat)]),
                1 => Op::Simple(vec![("HELP".into(), Cmd::Help)]),
                2 => Op::Simple(vec![("STAT".into(), Cmd::Stat)]),
                3 => Op::Simple(vec![("OPTS UTF8 ON".into(), Cmd::Opts)]),
                4 => Op::OnPath(Cmd::Mdtm, "MDTM", file(r)),
                5 => Op::OnPath(Cmd::Mlst, "MLST", file(r)),
                _ => Op::OnPath(Cmd::Site, "SITE CHMOD 644", file(r)),
            },
            15 => {
                let n = upload_len(r);
                let bytes = payload(r, n);
                let at = r.range_usize(1, 5000);
                Op::Transfer(Xfer::StorAt(file(r), bytes, at), mode(r), plan(r))
            }
            16 => {
                let n = upload_len(r);
                let bytes = payload(r, n);
                Op::Transfer(Xfer::Stou(bytes), mode(r), plan(r))
            }
            17 => {
                // Active mode: the simulated network refuses every connect.
                let [a, b, c, d] = self.ip.octets();
                let port = match r.below(5) {
                    0 => format!("PORT {a},{b},{c},{d},195,80"),
                    1 => format!("EPRT |1|{}|50000|", self.ip),
                    2 => format!("PORT {a},{b},{c},{d},0,21"),
                    3 => "PORT 10,9,9,9,195,80".into(),
                    _ => "PORT 1,2,3".into(),
                };
                let retr = format!("RETR {}", pub_path(1));
                Op::Simple(vec![(port, Cmd::Port), (retr, Cmd::Retr)])
            }
            _ => Op::Simple(vec![("REIN".into(), Cmd::Rein)]),
        }
    }

    fn start(&mut self, cx: &mut Ctx<'_>, op: Op) {
        let own = format!("/c{}", self.id);
        let strip = (self.cwd == own && cx.chance(600)).then_some(own);
        let mut run = Run {
            op: op.clone(),
            waits: VecDeque::new(),
            since: cx.now,
            data: None,
            started: false,
            aborted: false,
            ended: None,
            strip,
            quit: false,
            thief: None,
            listen: None,
            since_pass: cx.now,
        };
        let mut lines: Vec<(Cmd, String)> = Vec::new();
        match &op {
            Op::Login(ok, pipelined) => {
                lines.push((Cmd::User, format!("USER {}", self.user)));
                if *pipelined {
                    let pass = if *ok { "p" } else { "wrong" };
                    lines.push((Cmd::Pass, format!("PASS {pass}")));
                }
            }
            Op::Simple(cmds) => lines.extend(cmds.iter().map(|(l, c)| (*c, l.clone()))),
            Op::Malformed(bytes) => {
                self.log(cx, format!("> (malformed) {}", show(bytes, 80)));
                if let Some(c) = self.ctrl {
                    cx.stack.send(c, bytes);
                }
                run.waits.push_back((Cmd::Malformed, "(malformed)".into()));
                lines.push((Cmd::Syst, "SYST".into()));
            }
            Op::Rename(from, _) => {
                lines.push((Cmd::Rnfr, format!("RNFR {}", wire(from, &run.strip))));
            }
            Op::OnPath(cmd, verb, path) => {
                lines.push((*cmd, format!("{verb} {}", wire(path, &run.strip))));
            }
            Op::Transfer(_, Mode::Port, plan) => {
                // A port of the client's own (unique per client).
                self.active_seq = self.active_seq.wrapping_add(1);
                let port = 40_000 + (self.id as u16 % 250) * 100 + self.active_seq % 100;
                let addr = SocketAddr::new(IpAddr::V4(self.ip), port);
                if *plan != Plan::Never {
                    cx.stack.client_listen(addr);
                }
                run.listen = Some(addr);
                let [a, b, c, d] = self.ip.octets();
                let line = if cx.chance(500) {
                    format!("PORT {a},{b},{c},{d},{},{}", port >> 8, port & 0xff)
                } else {
                    format!("EPRT |1|{}|{port}|", self.ip)
                };
                lines.push((Cmd::Port, line));
            }
            Op::Transfer(_, Mode::Epsv, _) | Op::PasvOnly(true) => {
                lines.push((Cmd::Epsv, "EPSV".into()));
            }
            Op::Transfer(_, Mode::Pasv, _) | Op::PasvOnly(false) => {
                lines.push((Cmd::Pasv, "PASV".into()));
            }
            Op::Quit(_) => lines.push((Cmd::Quit, "QUIT".into())),
        }
        for (cmd, line) in lines {
            if cmd != Cmd::Syst || !matches!(op, Op::Malformed(_)) {
                run.waits.push_back((cmd, line.clone()));
            } else {
                // The sentinel's 215 ends the malformed wait.
            }
            self.send_line(cx, &line);
        }
        if let (Op::Quit(true), Some(c)) = (&op, self.ctrl) {
            self.log(cx, "half-closes (shuts down its sending side)");
            cx.stack.shutdown(c);
            cx.stack.mark_faulted(c);
        }
        self.phase = Phase::Busy(Box::new(run));
    }
}

/// Checks a complete listing of `dir`: CR LF lines, no upload's temporary
/// name, and in the client's own directory each file the model knows
/// listed exactly when it exists.
fn check_listing(
    model: &Model,
    id: usize,
    verb: &str,
    dir: &str,
    got: &[u8],
) -> Result<(), String> {
    let text = String::from_utf8_lossy(got);
    if !text.is_empty() && !text.ends_with("\r\n") {
        return Err(format!(
            "the listing does not end in CR LF: {}",
            show(got, 200)
        ));
    }
    let mut names = Vec::new();
    for line in text.split_terminator("\r\n") {
        if line.contains('\n') || line.contains('\r') {
            return Err(format!("a listing line holds a bare CR or LF: {line:?}"));
        }
        let name = match verb {
            "MLSD" => line.rsplit_once("; ").map_or(line, |(_, n)| n),
            "LIST" => line.rsplit(' ').next().unwrap_or(line),
            _ => line.rsplit('/').next().unwrap_or(line),
        };
        if name.ends_with(".ferry-part") {
            return Err(format!("it shows a temporary upload: {line:?}"));
        }
        names.push(name.to_string());
    }
    if dir != format!("/c{id}") {
        return Ok(());
    }
    for i in 0..FILES {
        let path = file_path(id, i);
        let listed = names.iter().any(|n| *n == format!("f{i}"));
        if let Expect::OneOf(options) = model.get(&path) {
            let exists = options.iter().all(Option::is_some);
            let absent = options.iter().all(Option::is_none);
            if (exists && !listed) || (absent && listed) {
                return Err(format!(
                    "{path} is {}listed, and the model says it {}: {names:?}",
                    if listed { "" } else { "not " },
                    if exists { "exists" } else { "does not exist" }
                ));
            }
        }
    }
    Ok(())
}

/// A malformed command line, ending in CR LF.
fn malformed(r: &mut Source) -> Vec<u8> {
    let mut line = match r.below(5) {
        // Garbage that cannot be a verb.
        0 => {
            let n = r.range_usize(1, 60);
            let mut g = r.fill(n);
            g.retain(|b| *b != b'\n' && *b != b'\r');
            g.insert(0, b'#');
            g
        }
        // Over-long.
        1 => vec![b'A'; r.range_usize(300, 1500)],
        // CR inside.
        2 => b"CWD a\rb".to_vec(),
        3 => b"NO\rOP".to_vec(),
        // An empty line.
        _ => Vec::new(),
    };
    line.extend_from_slice(b"\r\n");
    line
}

fn short(op: &Op) -> String {
    match op {
        Op::Transfer(Xfer::Stor(p, b, a), _, plan) => {
            format!(
                "{} {p} {} {plan:?}",
                if *a { "APPE" } else { "STOR" },
                describe(&Some(b.clone()))
            )
        }
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

/// Parses the port of a 227 or 229 reply.
pub fn passive_port(text: &[u8]) -> Option<u16> {
    let s = String::from_utf8_lossy(text);
    if let Some(i) = s.find("(|||") {
        let rest = s.get(i + 4..)?;
        return rest.get(..rest.find('|')?)?.parse().ok();
    }
    let inner = s.get(s.find('(')? + 1..s.find(')')?)?;
    let n: Vec<u16> = inner
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    match n.as_slice() {
        [_, _, _, _, hi, lo] => Some(hi * 256 + lo),
        _ => None,
    }
}

/// Contents of a client's initial files and the public files.
pub fn initial(rng: &mut Source) -> Content {
    if rng.chance(400) {
        None
    } else {
        let n = rng.range_usize(0, 4000);
        Some(rng.fill(n))
    }
}

impl Client {
    /// The server lost power: the client's connections are gone, and what
    /// it was doing has an unknown outcome.
    pub fn power_cut(&mut self, cx: &mut Ctx<'_>) {
        match self.phase {
            Phase::Done => {}
            Phase::Silent => {
                self.ctrl = None;
                self.phase = Phase::Done;
            }
            _ if self.ctrl.is_some() => {
                self.log(cx, "loses its connections to the power cut");
                self.lost(cx);
            }
            _ => {}
        }
    }
}

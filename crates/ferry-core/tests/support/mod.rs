//! Test support for scripted sessions: an in-memory TCP stack where the test
//! plays the clients, a virtual clock, a small authenticator, an event
//! recorder, and a [`Harness`] that owns a whole server over a temporary
//! directory.
//!
//! Everything is deterministic: no sockets, no threads, no wall clock. Time
//! moves only when the test calls [`Harness::advance`].
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ferry_core::server::{Event, Observer, TransferKind};
use ferry_core::{AuthError, Authenticator, Config, Permissions, Poll, Server, User};
use ferry_fs::std_dir::StdDir;
use ferry_net::{
    nb, Clock, Instant, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, TcpLocalAddr,
};

// ---------------------------------------------------------------------------
// MockStack
// ---------------------------------------------------------------------------

/// The error of [`MockStack`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MockError {
    /// What the test stack reports.
    pub kind: TcpErrorKind,
    /// Why, for panic messages.
    pub why: &'static str,
}

impl TcpError for MockError {
    fn kind(&self) -> TcpErrorKind {
        self.kind
    }
}

fn other(why: &'static str) -> MockError {
    MockError {
        kind: TcpErrorKind::Other,
        why,
    }
}

fn pipe_closed() -> MockError {
    MockError {
        kind: TcpErrorKind::PipeClosed,
        why: "peer closed",
    }
}

/// A server-side socket handle: an index into the stack's socket table.
/// Neither `Clone` nor `Copy`, like a real stack's handle.
#[derive(Debug)]
pub struct MockSocket(usize);

/// A test-side handle on one TCP connection (the client end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub usize);

#[derive(Debug)]
enum SockState {
    Fresh,
    Bound(SocketAddr),
    Listening {
        addr: SocketAddr,
        backlog: VecDeque<usize>,
    },
    /// Active open in progress: the connection (if the client side listens).
    Connecting {
        remote: SocketAddr,
        conn: Option<usize>,
    },
    Connected(usize),
}

/// One TCP connection between a server socket and a test client.
#[derive(Debug)]
pub struct Conn {
    /// The server-side address of the connection.
    pub server_local: SocketAddr,
    /// The client-side address.
    pub client: SocketAddr,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    /// The client closed (both directions).
    pub client_closed: bool,
    /// The client shut down its sending side but still reads.
    pub client_shut_write: bool,
    /// The server closed its socket (or never accepted it and closed the
    /// listener).
    pub server_closed: bool,
    /// Most unread bytes the client side buffers; server sends beyond it are
    /// partial or `WouldBlock`.
    pub send_cap: Option<usize>,
    /// Server `send` calls that took fewer bytes than offered (but some).
    pub partial_sends: usize,
    /// Server `send` calls answered with `WouldBlock`.
    pub would_blocks: usize,
    /// Bytes the server sent in total.
    pub sent_total: usize,
}

/// An in-memory `embedded-nal` stack where the test plays every client.
///
/// Server sockets are handles into a table; each connection has one byte
/// queue per direction. The server's `receive` returns `WouldBlock` when its
/// queue is empty and `Ok(0)` once the client closed and the queue is
/// drained; `send` to a closed client fails with `PipeClosed`.
///
/// `connect` (active mode) follows the `std` stack's contract: the first call
/// starts the connection and returns `WouldBlock`; a later call reports
/// success if the test listens on the address ([`MockStack::client_listen`])
/// and an error (connection refused) otherwise.
#[derive(Debug)]
pub struct MockStack {
    next_sock: usize,
    socks: BTreeMap<usize, SockState>,
    conns: Vec<Conn>,
    /// Client-side listeners (active mode) and the connections made to them
    /// that the test has not taken yet.
    client_listeners: BTreeMap<SocketAddr, VecDeque<usize>>,
    /// Every address the server tried to `connect` to, in order.
    pub connect_attempts: Vec<SocketAddr>,
    /// Addresses held by someone else: `bind_addr` on them fails.
    occupied: Vec<SocketAddr>,
    /// Send capacity given to every new connection.
    pub default_send_cap: Option<usize>,
    next_client_port: u16,
    /// Whether the pretend security layer offers TLS.
    pub tls_available: bool,
    /// Every `start_tls` call: (socket, its control connection's socket).
    /// Bytes are not really encrypted: the test checks the engine's sequence.
    pub tls_log: Vec<(usize, Option<usize>)>,
    /// The connection ([`ClientId`]'s number) of every server `send` that
    /// took bytes, in order: which reply or data left first in a poll.
    pub send_log: Vec<usize>,
}

impl Default for MockStack {
    fn default() -> Self {
        Self::new()
    }
}

fn addr_overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl MockStack {
    /// An empty stack.
    pub fn new() -> Self {
        MockStack {
            next_sock: 1,
            socks: BTreeMap::new(),
            conns: Vec::new(),
            client_listeners: BTreeMap::new(),
            connect_attempts: Vec::new(),
            occupied: Vec::new(),
            default_send_cap: None,
            next_client_port: 40_000,
            tls_available: false,
            tls_log: Vec::new(),
            send_log: Vec::new(),
        }
    }

    /// A fresh client port (for tests that need many clients from one IP).
    pub fn ephemeral_port(&mut self) -> u16 {
        self.next_client_port += 1;
        self.next_client_port
    }

    fn conn(&self, id: ClientId) -> &Conn {
        self.conns.get(id.0).expect("no such client")
    }

    fn conn_mut(&mut self, id: ClientId) -> &mut Conn {
        self.conns.get_mut(id.0).expect("no such client")
    }

    fn new_conn(&mut self, server_local: SocketAddr, client: SocketAddr) -> usize {
        self.conns.push(Conn {
            server_local,
            client,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_closed: false,
            client_shut_write: false,
            server_closed: false,
            send_cap: self.default_send_cap,
            partial_sends: 0,
            would_blocks: 0,
            sent_total: 0,
        });
        self.conns.len() - 1
    }

    /// Connects a client from `from` to a server listener on `to`; `None` if
    /// nothing listens there (connection refused).
    pub fn try_connect_client(&mut self, to: SocketAddr, from: SocketAddr) -> Option<ClientId> {
        let sock = self.socks.iter().find_map(|(k, s)| match s {
            SockState::Listening { addr, .. }
                if addr.port() == to.port()
                    && (addr.ip() == to.ip() || addr.ip().is_unspecified()) =>
            {
                Some(*k)
            }
            _ => None,
        })?;
        let c = self.new_conn(to, from);
        if let Some(SockState::Listening { backlog, .. }) = self.socks.get_mut(&sock) {
            backlog.push_back(c);
        }
        Some(ClientId(c))
    }

    /// Connects a client from `from` to `to`, which must be listening.
    pub fn connect_client(&mut self, to: SocketAddr, from: SocketAddr) -> ClientId {
        self.try_connect_client(to, from)
            .unwrap_or_else(|| panic!("nothing listens on {to}"))
    }

    /// Sends bytes from the client (ignored by a server that closed).
    pub fn client_send(&mut self, id: ClientId, bytes: &[u8]) {
        let c = self.conn_mut(id);
        assert!(
            !c.client_closed && !c.client_shut_write,
            "client {id:?} sends after closing"
        );
        c.to_server.extend(bytes.iter().copied());
    }

    /// Takes everything the server sent to the client so far.
    pub fn client_recv(&mut self, id: ClientId) -> Vec<u8> {
        self.conn_mut(id).to_client.drain(..).collect()
    }

    /// Takes at most `max` bytes the server sent to the client.
    pub fn client_recv_max(&mut self, id: ClientId, max: usize) -> Vec<u8> {
        let q = &mut self.conn_mut(id).to_client;
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Closes the client end (both directions).
    pub fn client_close(&mut self, id: ClientId) {
        self.conn_mut(id).client_closed = true;
    }

    /// Shuts down the client's sending side (a TCP half-close): the server
    /// reads end of stream after the queued bytes, and can still send.
    pub fn client_shutdown_write(&mut self, id: ClientId) {
        self.conn_mut(id).client_shut_write = true;
    }

    /// Whether the server closed its end of the connection.
    pub fn server_closed(&self, id: ClientId) -> bool {
        self.conn(id).server_closed
    }

    /// Whether the client has read everything and the server closed.
    pub fn client_eof(&self, id: ClientId) -> bool {
        let c = self.conn(id);
        c.server_closed && c.to_client.is_empty()
    }

    /// Bytes the client sent that the server has not read yet.
    pub fn unread_by_server(&self, id: ClientId) -> usize {
        self.conn(id).to_server.len()
    }

    /// Limits how many unread bytes the client side buffers (`None`: no limit).
    pub fn set_send_cap(&mut self, id: ClientId, cap: Option<usize>) {
        self.conn_mut(id).send_cap = cap;
    }

    /// The connection's record (counters and addresses).
    pub fn connection(&self, id: ClientId) -> &Conn {
        self.conn(id)
    }

    /// Addresses the server listens on (control and passive listeners).
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.socks
            .values()
            .filter_map(|s| match s {
                SockState::Listening { addr, .. } => Some(*addr),
                _ => None,
            })
            .collect()
    }

    /// Server sockets not yet closed (listeners included).
    pub fn open_sockets(&self) -> usize {
        self.socks.len()
    }

    /// Makes `addr` taken by someone else, so `bind_addr` on it fails.
    pub fn occupy(&mut self, addr: SocketAddr) {
        self.occupied.push(addr);
    }

    /// Listens on a client-side address for the server's active connections.
    pub fn client_listen(&mut self, addr: SocketAddr) {
        self.client_listeners.entry(addr).or_default();
    }

    /// Takes a connection the server made to a client-side listener.
    pub fn client_accept(&mut self, addr: SocketAddr) -> Option<ClientId> {
        self.client_listeners
            .get_mut(&addr)
            .and_then(VecDeque::pop_front)
            .map(ClientId)
    }

    fn taken(&self, addr: SocketAddr) -> bool {
        self.occupied.iter().any(|o| addr_overlaps(*o, addr))
            || self.socks.values().any(|s| match s {
                SockState::Bound(a) | SockState::Listening { addr: a, .. } => {
                    addr_overlaps(*a, addr)
                }
                _ => false,
            })
    }

    fn state(&mut self, socket: &MockSocket) -> Result<&mut SockState, MockError> {
        self.socks
            .get_mut(&socket.0)
            .ok_or_else(|| other("closed socket handle"))
    }
}

impl TcpClientStack for MockStack {
    type TcpSocket = MockSocket;
    type Error = MockError;

    fn socket(&mut self) -> Result<MockSocket, MockError> {
        let id = self.next_sock;
        self.next_sock += 1;
        self.socks.insert(id, SockState::Fresh);
        Ok(MockSocket(id))
    }

    fn connect(
        &mut self,
        socket: &mut MockSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), MockError> {
        match self.socks.get(&socket.0) {
            None => Err(nb::Error::Other(other("closed socket handle"))),
            Some(SockState::Fresh) => {
                // Start the connection: it completes on a later call.
                self.connect_attempts.push(remote);
                let conn = if self.client_listeners.contains_key(&remote) {
                    let local = SocketAddr::new(IpAddr::V4(SERVER_IP), 20);
                    let c = self.new_conn(local, remote);
                    if let Some(q) = self.client_listeners.get_mut(&remote) {
                        q.push_back(c);
                    }
                    Some(c)
                } else {
                    None
                };
                self.socks
                    .insert(socket.0, SockState::Connecting { remote, conn });
                Err(nb::Error::WouldBlock)
            }
            Some(SockState::Connecting { remote: r, conn }) => {
                assert_eq!(*r, remote, "connect continued to another address");
                match *conn {
                    Some(c) => {
                        self.socks.insert(socket.0, SockState::Connected(c));
                        Ok(())
                    }
                    None => {
                        self.socks.insert(socket.0, SockState::Fresh);
                        Err(nb::Error::Other(other("connection refused")))
                    }
                }
            }
            Some(SockState::Connected(_)) => Ok(()),
            Some(_) => Err(nb::Error::Other(other("connect on a bound socket"))),
        }
    }

    fn send(&mut self, socket: &mut MockSocket, buffer: &[u8]) -> nb::Result<usize, MockError> {
        let c = match self.state(socket)? {
            SockState::Connected(c) => *c,
            SockState::Connecting { .. } => return Err(nb::Error::WouldBlock),
            _ => return Err(nb::Error::Other(other("send on an unconnected socket"))),
        };
        let conn = self.conns.get_mut(c).expect("connection");
        if conn.client_closed {
            return Err(nb::Error::Other(pipe_closed()));
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        let space = match conn.send_cap {
            Some(cap) => cap.saturating_sub(conn.to_client.len()),
            None => buffer.len(),
        };
        if space == 0 {
            conn.would_blocks += 1;
            return Err(nb::Error::WouldBlock);
        }
        let n = space.min(buffer.len());
        if n < buffer.len() {
            conn.partial_sends += 1;
        }
        conn.to_client.extend(buffer.iter().take(n).copied());
        conn.sent_total += n;
        self.send_log.push(c);
        Ok(n)
    }

    fn receive(
        &mut self,
        socket: &mut MockSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, MockError> {
        let c = match self.state(socket)? {
            SockState::Connected(c) => *c,
            SockState::Connecting { .. } => return Err(nb::Error::WouldBlock),
            _ => return Err(nb::Error::Other(other("receive on an unconnected socket"))),
        };
        let conn = self.conns.get_mut(c).expect("connection");
        if conn.to_server.is_empty() {
            return if conn.client_closed || conn.client_shut_write {
                Ok(0)
            } else {
                Err(nb::Error::WouldBlock)
            };
        }
        let n = buffer.len().min(conn.to_server.len());
        for (dst, src) in buffer.iter_mut().zip(conn.to_server.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn close(&mut self, socket: MockSocket) -> Result<(), MockError> {
        let state = self
            .socks
            .remove(&socket.0)
            .ok_or_else(|| other("double close"))?;
        match state {
            SockState::Connected(c) | SockState::Connecting { conn: Some(c), .. } => {
                if let Some(conn) = self.conns.get_mut(c) {
                    conn.server_closed = true;
                }
            }
            SockState::Listening { backlog, .. } => {
                // Connections never accepted are reset.
                for c in backlog {
                    if let Some(conn) = self.conns.get_mut(c) {
                        conn.server_closed = true;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl TcpFullStack for MockStack {
    fn bind(&mut self, socket: &mut MockSocket, local_port: u16) -> Result<(), MockError> {
        self.bind_addr(
            socket,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), local_port),
        )
    }

    fn listen(&mut self, socket: &mut MockSocket) -> Result<(), MockError> {
        let state = self.state(socket)?;
        match *state {
            SockState::Bound(addr) => {
                *state = SockState::Listening {
                    addr,
                    backlog: VecDeque::new(),
                };
                Ok(())
            }
            _ => Err(other("listen on an unbound socket")),
        }
    }

    fn accept(
        &mut self,
        socket: &mut MockSocket,
    ) -> nb::Result<(MockSocket, SocketAddr), MockError> {
        let c = match self.state(socket)? {
            SockState::Listening { backlog, .. } => {
                backlog.pop_front().ok_or(nb::Error::WouldBlock)?
            }
            _ => return Err(nb::Error::Other(other("accept on a non-listener"))),
        };
        let peer = self.conns.get(c).expect("connection").client;
        let id = self.next_sock;
        self.next_sock += 1;
        self.socks.insert(id, SockState::Connected(c));
        Ok((MockSocket(id), peer))
    }
}

impl TcpLocalAddr for MockStack {
    fn bind_addr(&mut self, socket: &mut MockSocket, local: SocketAddr) -> Result<(), MockError> {
        if self.taken(local) {
            return Err(other("address in use"));
        }
        let state = self.state(socket)?;
        match state {
            SockState::Fresh => {
                *state = SockState::Bound(local);
                Ok(())
            }
            _ => Err(other("bind on a used socket")),
        }
    }

    fn local_addr(&mut self, socket: &MockSocket) -> Result<SocketAddr, MockError> {
        match self
            .socks
            .get(&socket.0)
            .ok_or_else(|| other("closed socket handle"))?
        {
            SockState::Bound(a) | SockState::Listening { addr: a, .. } => Ok(*a),
            SockState::Connected(c) => Ok(self.conns.get(*c).expect("connection").server_local),
            _ => Err(other("socket has no local address")),
        }
    }
}

// ---------------------------------------------------------------------------
// Clock, users, events
// ---------------------------------------------------------------------------

/// A clock that moves only when the test says so.
#[derive(Debug)]
pub struct VirtualClock {
    now: Cell<u64>,
}

/// The wall-clock time the virtual clock reports (2023-11-14).
pub const UNIX_TIME: u64 = 1_700_000_000;

impl VirtualClock {
    /// A clock at 1 000 ms.
    pub fn new() -> Self {
        VirtualClock {
            now: Cell::new(1_000),
        }
    }
    /// Moves time forward.
    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
    /// Sets the time (must not go back).
    pub fn set(&self, t: Instant) {
        assert!(t.0 >= self.now.get(), "time goes back");
        self.now.set(t.0);
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        Instant(self.now.get())
    }
    fn unix_time(&self) -> Option<u64> {
        Some(UNIX_TIME + self.now.get() / 1000)
    }
}

/// Users: "u"/"p" (everything, home "/"), "ro"/"p" (read-only, home "/"),
/// "h"/"p" (everything, home "/home/h").
#[derive(Debug, Default)]
pub struct TestAuth {
    /// Every (user, peer) authentication attempt.
    pub attempts: Vec<(Vec<u8>, IpAddr)>,
    /// Checks answer `Pending` (as a host that hashes on a worker thread):
    /// their results wait in `pending` until the test sets `ready`.
    pub slow: bool,
    /// Results of pending checks by session slot, and whether each is done.
    pub pending: BTreeMap<usize, (Result<User, AuthError>, bool)>,
}

impl TestAuth {
    /// Makes every pending check done.
    pub fn finish_checks(&mut self) {
        for (_, done) in self.pending.values_mut() {
            *done = true;
        }
    }
}

impl Authenticator for TestAuth {
    fn begin_login(
        &mut self,
        slot: usize,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        let result = self.authenticate(user, password, peer);
        if !self.slow {
            return result;
        }
        self.pending.insert(slot, (result, false));
        Err(AuthError::Pending)
    }
    fn poll_login(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        match self.pending.get(&slot) {
            Some((_, true)) => self.pending.remove(&slot).map(|(r, _)| r),
            _ => None,
        }
    }
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        self.attempts.push((user.to_vec(), peer));
        if password != b"p" {
            return Err(AuthError::Invalid);
        }
        match user {
            b"u" => Ok(User {
                id: 0,
                permissions: Permissions::ALL,
            }),
            b"ro" => Ok(User {
                id: 1,
                permissions: Permissions::READ_ONLY,
            }),
            b"h" => Ok(User {
                id: 2,
                permissions: Permissions::ALL,
            }),
            _ => Err(AuthError::Invalid),
        }
    }
    fn home(&self, user: &User) -> &[u8] {
        match user.id {
            2 => b"/home/h",
            _ => b"/",
        }
    }
}

/// An [`Event`] with owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// See [`Event::Connected`].
    Connected { session: usize, peer: SocketAddr },
    /// See [`Event::Refused`].
    Refused { peer: SocketAddr },
    /// See [`Event::Evicted`].
    Evicted { session: usize },
    /// See [`Event::Command`].
    Command { session: usize, line: Vec<u8> },
    /// See [`Event::Login`].
    Login {
        session: usize,
        user: Vec<u8>,
        ok: bool,
    },
    /// See [`Event::Transfer`].
    Transfer {
        session: usize,
        kind: TransferKind,
        path: Vec<u8>,
        bytes: u64,
        ok: bool,
    },
    /// See [`Event::Disconnected`].
    Disconnected { session: usize },
    /// See `Event::Parked` (feature `scale`).
    #[cfg(feature = "scale")]
    Parked { session: usize, parked: usize },
    /// See `Event::Resumed` (feature `scale`).
    #[cfg(feature = "scale")]
    Resumed { parked: usize, session: usize },
    /// See `Event::Swapped` (feature `scale`).
    #[cfg(feature = "scale")]
    Swapped { session: usize, parked: usize },
}

/// Records every event.
#[derive(Debug, Default)]
pub struct Recorder {
    /// The events so far.
    pub events: Vec<Ev>,
    /// What [`Observer::sessions_elsewhere`] answers.
    pub elsewhere: usize,
}

impl Observer for Recorder {
    fn sessions_elsewhere(&mut self) -> usize {
        self.elsewhere
    }

    fn event(&mut self, event: Event<'_>) {
        self.events.push(match event {
            Event::Connected { session, peer } => Ev::Connected { session, peer },
            Event::Refused { peer } => Ev::Refused { peer },
            Event::Evicted { session } => Ev::Evicted { session },
            Event::Command { session, line } => Ev::Command {
                session,
                line: line.to_vec(),
            },
            Event::Login { session, user, ok } => Ev::Login {
                session,
                user: user.to_vec(),
                ok,
            },
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => Ev::Transfer {
                session,
                kind,
                path: path.to_vec(),
                bytes,
                ok,
            },
            Event::Disconnected { session } => Ev::Disconnected { session },
            #[cfg(feature = "scale")]
            Event::Parked { session, parked } => Ev::Parked { session, parked },
            #[cfg(feature = "scale")]
            Event::Resumed { parked, session } => Ev::Resumed { parked, session },
            #[cfg(feature = "scale")]
            Event::Swapped { session, parked } => Ev::Swapped { session, parked },
            _ => return,
        });
    }
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// The server's address as clients reach it.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The default client address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The control port.
pub const CONTROL_PORT: u16 = 21;
/// Transfer buffer size of the server under test (small on purpose).
pub const BUF: usize = 1024;
/// Most polls one [`Harness::run`] may take before it counts as a livelock.
pub const MAX_POLLS: usize = 10_000;

/// The server type under test.
#[cfg(not(feature = "scale"))]
pub type TestServer = Server<MockStack, StdDir, 4, BUF>;
/// The server type under test: with the feature `scale`, idle sessions
/// are parked (up to [`PARKED`] of them), so that every scripted test also
/// runs with sessions leaving the table between commands.
#[cfg(feature = "scale")]
pub type TestServer = Server<
    MockStack,
    StdDir,
    4,
    BUF,
    [ferry_core::Slot<MockSocket, StdDir>; 4],
    Vec<ferry_core::server::Parked<MockSocket>>,
>;
/// Parked sessions the server under test holds (feature `scale`).
#[cfg(feature = "scale")]
pub const PARKED: usize = 8;

/// A server, its stack, storage, clock, users and event log, in one place.
pub struct Harness {
    /// The server under test.
    pub server: TestServer,
    /// The in-memory network.
    pub stack: MockStack,
    /// Storage over `dir`.
    pub fs: StdDir,
    /// The served directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// Virtual time.
    pub clock: VirtualClock,
    /// Users.
    pub auth: TestAuth,
    /// Events seen.
    pub obs: Recorder,
    /// The result of the last poll.
    pub last_poll: Option<Poll>,
    /// Polls made so far.
    pub polls: usize,
}

/// A configuration with small, distinct timeouts for tests.
pub fn test_config() -> Config {
    Config {
        idle_timeout_ms: 60_000,
        data_timeout_ms: 5_000,
        login_fail_delay_ms: 1_000,
        ..Config::default()
    }
}

/// The server's control address.
pub fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_IP), CONTROL_PORT)
}

impl Harness {
    /// A server with [`test_config`].
    pub fn new() -> Self {
        Self::with_config(test_config())
    }

    /// A server with `config`, listening on `0.0.0.0:21`, serving a fresh
    /// temporary directory that holds an empty `home/h`.
    pub fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home/h")).expect("home/h");
        let fs = StdDir::open(dir.path()).expect("StdDir");
        let mut stack = MockStack::new();
        #[cfg(not(feature = "scale"))]
        let mut server = TestServer::new(config);
        #[cfg(feature = "scale")]
        let mut server = TestServer::with_table(
            config,
            core::array::from_fn(|_| ferry_core::Slot::default()),
        );
        #[cfg(feature = "scale")]
        server
            .parked_mut()
            .extend((0..PARKED).map(|_| ferry_core::server::Parked::default()));
        server
            .listen(
                &mut stack,
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTROL_PORT),
            )
            .expect("listen");
        Harness {
            server,
            stack,
            fs,
            dir,
            clock: VirtualClock::new(),
            auth: TestAuth::default(),
            obs: Recorder::default(),
            last_poll: None,
            polls: 0,
        }
    }

    /// Keeps every session in the table (feature `scale`: no parked
    /// entries), for tests of what a full table does. Call it first.
    pub fn no_parking(&mut self) {
        #[cfg(feature = "scale")]
        self.server.parked_mut().clear();
    }

    /// Polls once.
    pub fn poll(&mut self) -> Poll {
        let p = self.server.poll(
            &mut self.stack,
            &mut self.fs,
            &mut self.auth,
            &self.clock,
            &mut self.obs,
        );
        self.polls += 1;
        self.last_poll = Some(p);
        p
    }

    /// Polls until the server is not busy; panics if it stays busy for
    /// [`MAX_POLLS`] polls (a livelock).
    pub fn run(&mut self) -> Poll {
        for _ in 0..MAX_POLLS {
            let p = self.poll();
            if !p.busy {
                return p;
            }
        }
        panic!("server still busy after {MAX_POLLS} polls");
    }

    /// Moves the virtual clock forward and runs.
    pub fn advance(&mut self, ms: u64) -> Poll {
        self.clock.advance(ms);
        self.run()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Connects a client from `ip` (fresh port) to the control port and runs.
    pub fn connect_from(&mut self, ip: Ipv4Addr) -> ClientId {
        let port = self.stack.ephemeral_port();
        let id = self
            .stack
            .connect_client(server_addr(), SocketAddr::new(IpAddr::V4(ip), port));
        self.run();
        id
    }

    /// Connects a client from [`CLIENT_IP`] and runs (the greeting is left
    /// unread).
    pub fn connect(&mut self) -> ClientId {
        self.connect_from(CLIENT_IP)
    }

    /// Sends `line` CR LF without running.
    pub fn send(&mut self, id: ClientId, line: &str) {
        self.stack.client_send(id, line.as_bytes());
        self.stack.client_send(id, b"\r\n");
    }

    /// What the server sent on `id` so far, as text.
    pub fn recv(&mut self, id: ClientId) -> String {
        String::from_utf8_lossy(&self.stack.client_recv(id)).into_owned()
    }

    /// Sends `line` CR LF, runs, and returns every reply byte received.
    pub fn cmd(&mut self, id: ClientId, line: &str) -> String {
        self.send(id, line);
        self.run();
        self.recv(id)
    }

    /// Connects from `ip`, reads the greeting and logs in as `user`/`pass`.
    pub fn login_from(&mut self, ip: Ipv4Addr, user: &str, pass: &str) -> ClientId {
        let id = self.connect_from(ip);
        let greeting = self.recv(id);
        assert!(greeting.starts_with("220 "), "greeting: {greeting:?}");
        let r = self.cmd(id, &format!("USER {user}"));
        assert!(r.starts_with("331 "), "USER: {r:?}");
        let r = self.cmd(id, &format!("PASS {pass}"));
        assert!(r.starts_with("230 "), "PASS: {r:?}");
        id
    }

    /// Logs in as `user` with password "p" from [`CLIENT_IP`].
    pub fn login_as(&mut self, user: &str) -> ClientId {
        self.login_from(CLIENT_IP, user, "p")
    }

    /// Logs in as "u" from [`CLIENT_IP`].
    pub fn login(&mut self) -> ClientId {
        self.login_as("u")
    }

    /// The client address of connection `id`.
    pub fn client_addr(&self, id: ClientId) -> SocketAddr {
        self.stack.connection(id).client
    }

    /// Sends PASV, parses the 227 reply, and connects a data client from the
    /// control client's IP to the announced address.
    pub fn pasv_connect(&mut self, id: ClientId) -> ClientId {
        let addr = self.pasv(id);
        let ip = self.client_addr(id).ip();
        self.data_connect(addr, ip)
    }

    /// Sends EPSV, parses the 229 reply, and connects a data client from the
    /// control client's IP to the control connection's server address.
    pub fn epsv_connect(&mut self, id: ClientId) -> ClientId {
        let addr = self.epsv(id);
        let ip = self.client_addr(id).ip();
        self.data_connect(addr, ip)
    }

    /// Connects a data client from `ip` to `addr` and runs.
    pub fn data_connect(&mut self, addr: SocketAddr, ip: IpAddr) -> ClientId {
        let port = self.stack.ephemeral_port();
        let d = self.stack.connect_client(addr, SocketAddr::new(ip, port));
        self.run();
        d
    }

    /// Sends PASV and returns the announced address.
    pub fn pasv(&mut self, id: ClientId) -> SocketAddr {
        let r = self.cmd(id, "PASV");
        parse_227(&r).unwrap_or_else(|| panic!("PASV reply: {r:?}"))
    }

    /// Sends EPSV and returns the server address with the announced port.
    pub fn epsv(&mut self, id: ClientId) -> SocketAddr {
        let r = self.cmd(id, "EPSV");
        let port = parse_229(&r).unwrap_or_else(|| panic!("EPSV reply: {r:?}"));
        SocketAddr::new(self.stack.connection(id).server_local.ip(), port)
    }

    /// Runs, reading both connections, until the server closed `data` and
    /// the client read all of it; returns the data and the control text.
    /// Time does not move. Panics after 50 000 rounds (a stuck transfer).
    pub fn drain_transfer(&mut self, ctrl: ClientId, data: ClientId) -> (Vec<u8>, String) {
        let mut got = Vec::new();
        let mut text = String::new();
        for _ in 0..50_000 {
            self.run();
            got.extend(self.stack.client_recv(data));
            text.push_str(&self.recv(ctrl));
            if self.stack.client_eof(data) {
                self.run();
                text.push_str(&self.recv(ctrl));
                return (got, text);
            }
        }
        panic!("transfer did not finish; control so far: {text:?}");
    }

    /// Sends `bytes` on `data`, closes it, runs, and returns the control text.
    pub fn upload(&mut self, ctrl: ClientId, data: ClientId, bytes: &[u8]) -> String {
        self.stack.client_send(data, bytes);
        self.run();
        self.stack.client_close(data);
        self.run();
        self.recv(ctrl)
    }

    /// The host path of a served path (`"a/b"` relative to the root).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file in the served directory.
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, bytes).expect("write");
    }

    /// Reads a file in the served directory.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Names in a served directory, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Events recorded so far.
    pub fn events(&self) -> &[Ev] {
        &self.obs.events
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses `227 ... (h1,h2,h3,h4,p1,p2)`.
pub fn parse_227(reply: &str) -> Option<SocketAddr> {
    let line = reply.lines().find(|l| l.starts_with("227 "))?;
    let inner = line.get(line.find('(')? + 1..line.find(')')?)?;
    let n: Vec<u8> = inner
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    if n.len() != 6 {
        return None;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddr::new(
        IpAddr::V4(ip),
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

/// Parses `229 ... (|||port|)`.
pub fn parse_229(reply: &str) -> Option<u16> {
    let line = reply.lines().find(|l| l.starts_with("229 "))?;
    let inner = line.get(line.find("(|||")? + 4..)?;
    inner.get(..inner.find('|')?)?.parse().ok()
}

/// The reply codes of the complete reply lines in `text` (`"226 ..."` lines,
/// not multi-line continuations).
pub fn codes(text: &str) -> Vec<u16> {
    text.split("\r\n")
        .filter_map(|l| {
            let code = l.get(..3)?.parse().ok()?;
            (l.as_bytes().get(3) == Some(&b' ')).then_some(code)
        })
        .collect()
}

/// A small deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// LF → CR LF as TYPE A downloads do: an LF already after a CR stays.
pub fn to_crlf(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut prev = 0u8;
    for &b in src {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

impl ferry_net::SecureStack for MockStack {
    fn tls_available(&self) -> bool {
        self.tls_available
    }
    fn start_tls(
        &mut self,
        socket: &mut MockSocket,
        control: Option<&MockSocket>,
    ) -> Result<(), ferry_net::TlsError> {
        if !self.tls_available {
            return Err(ferry_net::TlsError::Unavailable);
        }
        self.tls_log.push((socket.0, control.map(|c| c.0)));
        Ok(())
    }
    fn is_tls(&self, socket: &MockSocket) -> bool {
        self.tls_log.iter().any(|(s, _)| *s == socket.0)
    }
}

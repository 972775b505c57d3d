//! The simulated network: byte pipes per TCP connection between the server
//! under test and simulated clients, with faults drawn from the run's
//! [`Source`](crate::rng::Source).
//!
//! The server side implements embedded-nal's `TcpClientStack` and
//! `TcpFullStack`, `ferry_net::TcpLocalAddr` and `ferry_net::SecureStack`
//! (its defaults: no TLS). Faults: `receive` and `send` move a random part of
//! what they could, return `WouldBlock` now and then or in storms of many
//! calls, and `socket` fails sometimes (no free socket); a connection can be
//! reset (both ends see errors) or half-closed by its client at any point.
//! A client's receive window is bounded, so a client that does not read
//! blocks the server's sends.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_net::{nb, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, TcpLocalAddr};

use crate::rng::Shared;
use crate::trace::SharedTrace;

/// The server's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The control port.
pub const CONTROL_PORT: u16 = 21;

/// How often the network misbehaves, per call (per mille).
#[derive(Debug, Clone, Copy, Default)]
pub struct NetFaults {
    /// A `receive` or `send` that could move bytes returns `WouldBlock`.
    pub would_block: u64,
    /// A `WouldBlock` starts a storm: the next 1..=`storm_len` calls on that
    /// connection block too.
    pub storm: u64,
    /// Longest storm, in calls.
    pub storm_len: u64,
    /// A `receive` or `send` moves only part of what it could.
    pub partial: u64,
    /// `socket()` fails (the stack's sockets are all in use).
    pub socket_fails: u64,
}

/// The error of [`SimStack`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimError {
    kind: TcpErrorKind,
    /// What happened, for the trace.
    pub why: &'static str,
}

impl TcpError for SimError {
    fn kind(&self) -> TcpErrorKind {
        self.kind
    }
}

fn other(why: &'static str) -> SimError {
    SimError {
        kind: TcpErrorKind::Other,
        why,
    }
}

/// A server-side socket: an index into the stack's table (neither `Clone`
/// nor `Copy`, like a real stack's handle).
#[derive(Debug)]
pub struct SimSocket(u32);

/// A client's handle on one connection.
pub type ConnId = usize;

#[derive(Debug)]
enum SockState {
    Fresh,
    Bound(SocketAddr),
    Listening {
        addr: SocketAddr,
        backlog: VecDeque<ConnId>,
    },
    /// An active open (PORT/EPRT) to a client that listens: established
    /// on a later `connect` call.
    Connecting(ConnId),
    Connected(ConnId),
}

/// One TCP connection between a server socket and a simulated client.
#[derive(Debug)]
pub struct Conn {
    /// The server-side address the client connected to.
    pub server_local: SocketAddr,
    /// The client's address.
    pub client: SocketAddr,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    /// The client closed its sending side (FIN); it may still read.
    pub client_fin: bool,
    /// The client is gone entirely (closed both ways).
    pub client_closed: bool,
    /// Reset: every later call on it, at either end, fails.
    pub reset: bool,
    /// The server closed its socket (or the listener it waited on).
    pub server_closed: bool,
    /// Most unread bytes the client side holds.
    window: usize,
    /// Calls left in a `WouldBlock` storm.
    storm: u64,
    /// The server's last `send` on it moved less than it offered (so
    /// bytes may have been left unsent when it closed).
    pub send_blocked: bool,
    /// Something other than an orderly exchange happened to it (a reset,
    /// a client that closed or went silent, a power cut): the server may
    /// then close it without a goodbye.
    pub faulted: bool,
}

/// The simulated network.
#[derive(Debug)]
pub struct SimStack {
    rng: Shared,
    trace: SharedTrace,
    /// Fault rates.
    pub faults: NetFaults,
    socks: BTreeMap<u32, SockState>,
    next_sock: u32,
    conns: Vec<Conn>,
    next_port: u16,
    /// Addresses clients listen on for active-mode data connections, with
    /// the connections the server made there and the client has not taken.
    client_listeners: BTreeMap<SocketAddr, VecDeque<ConnId>>,
}

impl SimStack {
    /// An empty network.
    pub fn new(rng: Shared, trace: SharedTrace, faults: NetFaults) -> SimStack {
        SimStack {
            rng,
            trace,
            faults,
            socks: BTreeMap::new(),
            next_sock: 1,
            conns: Vec::new(),
            next_port: 30_000,
            client_listeners: BTreeMap::new(),
        }
    }

    fn chance(&self, per_mille: u64) -> bool {
        self.rng.borrow_mut().chance(per_mille)
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id)
    }

    /// Server sockets open (listeners included).
    pub fn open_sockets(&self) -> usize {
        self.socks.len()
    }

    /// Server sockets listening (control and passive listeners).
    pub fn listeners(&self) -> usize {
        self.socks
            .values()
            .filter(|s| matches!(s, SockState::Listening { .. }))
            .count()
    }

    /// A client at `ip` connects to `to`; `None` if nothing listens there.
    pub fn connect(&mut self, ip: Ipv4Addr, to: SocketAddr) -> Option<ConnId> {
        let sock = self.socks.iter().find_map(|(k, s)| match s {
            SockState::Listening { addr, .. }
                if addr.port() == to.port()
                    && (addr.ip() == to.ip() || addr.ip().is_unspecified()) =>
            {
                Some(*k)
            }
            _ => None,
        })?;
        self.next_port = self.next_port.checked_add(1).unwrap_or(30_000);
        let id = self.new_conn(to, SocketAddr::new(IpAddr::V4(ip), self.next_port));
        if let Some(SockState::Listening { backlog, .. }) = self.socks.get_mut(&sock) {
            backlog.push_back(id);
        }
        Some(id)
    }

    /// A new connection between `server_local` and the client at `client`.
    fn new_conn(&mut self, server_local: SocketAddr, client: SocketAddr) -> ConnId {
        let window = self.rng.borrow_mut().range_usize(1, 8192);
        self.conns.push(Conn {
            server_local,
            client,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_fin: false,
            client_closed: false,
            reset: false,
            server_closed: false,
            window,
            storm: 0,
            send_blocked: false,
            faulted: false,
        });
        self.conns.len() - 1
    }

    /// A client listens on `addr` for the server's active connection.
    pub fn client_listen(&mut self, addr: SocketAddr) {
        self.client_listeners.entry(addr).or_default();
    }

    /// Takes a connection the server made to the client's `addr`.
    pub fn client_accept(&mut self, addr: SocketAddr) -> Option<ConnId> {
        self.client_listeners.get_mut(&addr)?.pop_front()
    }

    /// The client stops listening on `addr`; connections it did not take
    /// are reset.
    pub fn client_unlisten(&mut self, addr: SocketAddr) {
        for c in self.client_listeners.remove(&addr).unwrap_or_default() {
            self.reset(c);
        }
    }

    /// The client sends bytes (dropped if the connection is reset or the
    /// client already closed its side).
    pub fn send(&mut self, id: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conn_mut(id) {
            if !c.reset && !c.client_fin && !c.client_closed {
                c.to_server.extend(bytes.iter().copied());
            }
        }
    }

    /// The client reads at most `max` bytes.
    pub fn recv(&mut self, id: ConnId, max: usize) -> Vec<u8> {
        match self.conn_mut(id) {
            Some(c) if !c.reset => {
                let n = max.min(c.to_client.len());
                c.to_client.drain(..n).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The client's address of a connection (as the server sees its peer).
    pub fn peer(&self, id: ConnId) -> Option<SocketAddr> {
        self.conn(id).map(|c| c.client)
    }

    /// Whether the client has read everything and the server closed (or the
    /// connection was reset).
    pub fn at_eof(&self, id: ConnId) -> bool {
        self.conn(id)
            .is_none_or(|c| c.reset || (c.server_closed && c.to_client.is_empty()))
    }

    /// Whether the connection was reset.
    pub fn is_reset(&self, id: ConnId) -> bool {
        self.conn(id).is_none_or(|c| c.reset)
    }

    /// Whether the server closed its end.
    pub fn server_closed(&self, id: ConnId) -> bool {
        self.conn(id).is_none_or(|c| c.server_closed)
    }

    /// Whether the server's last send on it moved less than it offered.
    pub fn send_blocked(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.send_blocked)
    }

    /// Whether something other than an orderly exchange happened to it.
    pub fn faulted(&self, id: ConnId) -> bool {
        self.conn(id).is_none_or(|c| c.faulted)
    }

    /// The client shuts down its sending side (a half-close).
    pub fn shutdown(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.client_fin = true;
        }
    }

    /// The client closes the connection; `orderly`: after the exchange it
    /// expected (else the server may drop it without a goodbye).
    pub fn close(&mut self, id: ConnId, orderly: bool) {
        if let Some(c) = self.conn_mut(id) {
            c.client_fin = true;
            c.client_closed = true;
            c.faulted |= !orderly;
        }
    }

    /// Marks the connection as one the server may drop without a goodbye
    /// (its client went silent, or is flooding).
    pub fn mark_faulted(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.faulted = true;
        }
    }

    /// Resets the connection: both ends see errors from now on.
    pub fn reset(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.reset = true;
            c.faulted = true;
            c.to_server.clear();
            c.to_client.clear();
        }
    }

    /// The server lost power: every socket is gone, every connection reset.
    pub fn power_cut(&mut self) {
        self.socks.clear();
        for c in &mut self.conns {
            c.reset = true;
            c.faulted = true;
            c.server_closed = true;
        }
    }

    fn state(&mut self, socket: &SimSocket) -> Result<&mut SockState, SimError> {
        self.socks
            .get_mut(&socket.0)
            .ok_or_else(|| other("closed socket handle"))
    }

    fn connected(&mut self, socket: &SimSocket) -> nb::Result<ConnId, SimError> {
        match self.state(socket)? {
            SockState::Connected(c) => Ok(*c),
            SockState::Connecting(_) => Err(nb::Error::WouldBlock),
            _ => Err(nb::Error::Other(other("not connected"))),
        }
    }

    /// Whether this call is a spurious `WouldBlock` (maybe starting a storm).
    fn blocks(&mut self, id: ConnId) -> bool {
        let in_storm = self.conn(id).is_some_and(|c| c.storm > 0);
        if in_storm {
            if let Some(c) = self.conn_mut(id) {
                c.storm -= 1;
            }
            return true;
        }
        if !self.chance(self.faults.would_block) {
            return false;
        }
        if self.chance(self.faults.storm) {
            let len = self.rng.borrow_mut().range(1, self.faults.storm_len.max(1));
            self.trace
                .borrow_mut()
                .log(format!("net: WouldBlock storm of {len} calls on conn {id}"));
            if let Some(c) = self.conn_mut(id) {
                c.storm = len;
            }
        }
        true
    }

    /// How many of `n` bytes a call moves.
    fn part(&mut self, n: usize) -> usize {
        if n > 1 && self.chance(self.faults.partial) {
            self.rng.borrow_mut().range_usize(1, n - 1)
        } else {
            n
        }
    }
}

impl TcpClientStack for SimStack {
    type TcpSocket = SimSocket;
    type Error = SimError;

    fn socket(&mut self) -> Result<SimSocket, SimError> {
        if self.chance(self.faults.socket_fails) {
            self.trace
                .borrow_mut()
                .log("net: socket() fails (no free socket)");
            return Err(other("no free socket"));
        }
        let id = self.next_sock;
        self.next_sock += 1;
        self.socks.insert(id, SockState::Fresh);
        Ok(SimSocket(id))
    }

    fn connect(&mut self, socket: &mut SimSocket, remote: SocketAddr) -> nb::Result<(), SimError> {
        match self.state(socket)? {
            SockState::Fresh => {
                if !self.client_listeners.contains_key(&remote) {
                    return Err(nb::Error::Other(other("connection refused")));
                }
                let local = SocketAddr::new(IpAddr::V4(SERVER_IP), 20);
                let c = self.new_conn(local, remote);
                if let Some(q) = self.client_listeners.get_mut(&remote) {
                    q.push_back(c);
                }
                if let Ok(state) = self.state(socket) {
                    *state = SockState::Connecting(c);
                }
                Err(nb::Error::WouldBlock)
            }
            SockState::Connecting(c) => {
                let c = *c;
                if self.blocks(c) {
                    return Err(nb::Error::WouldBlock);
                }
                if self.is_reset(c) {
                    return Err(nb::Error::Other(other("connection refused")));
                }
                if let Ok(state) = self.state(socket) {
                    *state = SockState::Connected(c);
                }
                Ok(())
            }
            SockState::Connected(_) => Ok(()),
            _ => Err(nb::Error::Other(other("connect on a bound socket"))),
        }
    }

    fn send(&mut self, socket: &mut SimSocket, buffer: &[u8]) -> nb::Result<usize, SimError> {
        let id = self.connected(socket)?;
        let Some(c) = self.conn(id) else {
            return Err(nb::Error::Other(other("no connection")));
        };
        if c.reset {
            return Err(nb::Error::Other(other("connection reset")));
        }
        if c.client_closed {
            return Err(nb::Error::Other(SimError {
                kind: TcpErrorKind::PipeClosed,
                why: "peer closed",
            }));
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        let space = c.window.saturating_sub(c.to_client.len());
        if space == 0 || self.blocks(id) {
            if let Some(c) = self.conn_mut(id) {
                c.send_blocked = true;
            }
            return Err(nb::Error::WouldBlock);
        }
        let n = self.part(space.min(buffer.len()));
        if let Some(c) = self.conn_mut(id) {
            c.to_client.extend(buffer.iter().take(n).copied());
            c.send_blocked = n < buffer.len();
        }
        Ok(n)
    }

    fn receive(
        &mut self,
        socket: &mut SimSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, SimError> {
        let id = self.connected(socket)?;
        let Some(c) = self.conn(id) else {
            return Err(nb::Error::Other(other("no connection")));
        };
        if c.reset {
            return Err(nb::Error::Other(other("connection reset")));
        }
        if c.to_server.is_empty() {
            return if c.client_fin {
                Ok(0)
            } else {
                Err(nb::Error::WouldBlock)
            };
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.blocks(id) {
            return Err(nb::Error::WouldBlock);
        }
        let avail = self.conn(id).map_or(0, |c| c.to_server.len());
        let n = self.part(avail.min(buffer.len()));
        if let Some(c) = self.conn_mut(id) {
            for (dst, src) in buffer.iter_mut().zip(c.to_server.drain(..n)) {
                *dst = src;
            }
        }
        Ok(n)
    }

    fn close(&mut self, socket: SimSocket) -> Result<(), SimError> {
        let state = self
            .socks
            .remove(&socket.0)
            .ok_or_else(|| other("double close"))?;
        let closed: Vec<ConnId> = match state {
            SockState::Connected(c) | SockState::Connecting(c) => vec![c],
            // Connections never accepted are reset with their listener.
            SockState::Listening { backlog, .. } => backlog.into_iter().collect(),
            _ => Vec::new(),
        };
        for c in closed {
            if let Some(conn) = self.conn_mut(c) {
                conn.server_closed = true;
            }
        }
        Ok(())
    }
}

fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl TcpFullStack for SimStack {
    fn bind(&mut self, socket: &mut SimSocket, local_port: u16) -> Result<(), SimError> {
        self.bind_addr(
            socket,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), local_port),
        )
    }

    fn listen(&mut self, socket: &mut SimSocket) -> Result<(), SimError> {
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

    fn accept(&mut self, socket: &mut SimSocket) -> nb::Result<(SimSocket, SocketAddr), SimError> {
        let c = match self.state(socket)? {
            SockState::Listening { backlog, .. } => {
                backlog.pop_front().ok_or(nb::Error::WouldBlock)?
            }
            _ => return Err(nb::Error::Other(other("accept on a non-listener"))),
        };
        let peer = self
            .conn(c)
            .map(|c| c.client)
            .ok_or(nb::Error::Other(other("no connection")))?;
        let id = self.next_sock;
        self.next_sock += 1;
        self.socks.insert(id, SockState::Connected(c));
        Ok((SimSocket(id), peer))
    }
}

impl TcpLocalAddr for SimStack {
    fn bind_addr(&mut self, socket: &mut SimSocket, local: SocketAddr) -> Result<(), SimError> {
        let taken = self.socks.values().any(|s| match s {
            SockState::Bound(a) | SockState::Listening { addr: a, .. } => overlaps(*a, local),
            _ => false,
        });
        if taken {
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

    fn local_addr(&mut self, socket: &SimSocket) -> Result<SocketAddr, SimError> {
        match self
            .socks
            .get(&socket.0)
            .ok_or_else(|| other("closed socket handle"))?
        {
            SockState::Bound(a) | SockState::Listening { addr: a, .. } => Ok(*a),
            SockState::Connected(c) | SockState::Connecting(c) => self
                .conn(*c)
                .map(|c| c.server_local)
                .ok_or_else(|| other("no connection")),
            SockState::Fresh => Err(other("socket has no local address")),
        }
    }
}

impl ferry_net::SecureStack for SimStack {}

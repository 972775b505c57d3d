//! smoltcp as an `embedded-nal` stack for a TCP server: [`SmoltcpStack`]
//! implements [`TcpFullStack`](crate::TcpFullStack) and Ferry's
//! [`TcpLocalAddr`](crate::TcpLocalAddr) over a smoltcp
//! 0.12 [`Interface`] and a pool of smoltcp TCP sockets, with no heap and no
//! `std`.
//!
//! # What smoltcp lacks, and how this adapter fills it
//!
//! A smoltcp TCP socket in LISTEN *becomes* the connection when a SYN
//! arrives: there is no accept queue. So a listening handle here owns a few
//! pool sockets in LISTEN on its endpoint ([`StackConfig::backlog`], 2 by
//! default). When a SYN takes one, the stack arms another free pool socket
//! in LISTEN before it looks at the next received frame, so a burst of SYNs
//! (five clients at once) finds a listening socket for each, up to
//! [`StackConfig::max_pending`] connections per listener that are opening
//! or waiting for `accept` (a SYN flood cannot take the whole pool, and a
//! handshake that does not complete within
//! [`StackConfig::handshake_timeout`] gives its socket back).
//! [`accept`](crate::TcpFullStack::accept) hands out a socket whose connection is
//! established. The same holds for the control port and for every passive
//! data port.
//!
//! # Contract (the same as the host adapter's, `std_stack`)
//!
//! - Nothing blocks: an operation that cannot complete now returns
//!   [`nb::Error::WouldBlock`]. No operation moves packets; only
//!   [`SmoltcpStack::poll`] does, so the board loop is: `stack.poll(now,
//!   &mut device)`, then the engine's `Server::poll`, then sleep until
//!   [`SmoltcpStack::poll_delay`] or the engine's deadline, whichever comes
//!   first (or until the device has a frame). See `docs/PORTING.md`.
//! - `connect` starts the connection on its first call (from an ephemeral
//!   port of [`StackConfig::ephemeral_ports`]) and returns `WouldBlock`
//!   until it is established; it fails ([`SmoltcpError::ConnectionRefused`])
//!   when the SYN is answered by a reset or the attempt dies, and the
//!   handle is then unbound again so a new call starts a new attempt.
//! - `receive` returning `Ok(0)` (for a non-empty buffer) means the peer
//!   closed its sending side and everything it sent has been read; a reset
//!   connection gives [`SmoltcpError::ConnectionReset`] (kind `PipeClosed`).
//! - `send` takes what fits in the socket's transmit buffer (maybe less
//!   than given; `WouldBlock` when it is full).
//! - `close` of a connection sends a FIN *after* the queued data: the pool
//!   socket stays allocated, and keeps transmitting, until the connection
//!   reaches CLOSED or TIME-WAIT, or the peer has been silent for
//!   [`StackConfig::close_timeout`]. Closing with unread received data
//!   resets the connection instead, as Linux does; so does data arriving
//!   after the close. Closing a listener resets its not yet accepted
//!   connections.
//! - A [`SmolSocket`] is a handle (index and generation) into the stack's
//!   table: neither `Clone` nor `Copy`; a stale handle is refused with
//!   [`SmoltcpError::InvalidHandle`], never a panic. Dropping a handle
//!   without `close` leaks its table entry and pool socket.
//! - Addresses are reported as plain IPv4 (`::ffff:a.b.c.d` given to
//!   `connect` or `bind_addr` is unmapped first). IPv6 needs the
//!   `smoltcp-ipv6` feature; without it an IPv6 address is
//!   [`SmoltcpError::Unsupported`].
//!
//! # Memory
//!
//! Everything is caller-provided: a `SocketStorage` slot and one receive
//! and one transmit buffer per pool socket ([`SmoltcpStack::add_socket`],
//! or a whole [`StackStorage`]). The RAM cost of one pool socket is its
//! receive buffer, plus its transmit buffer, plus 336 bytes of smoltcp
//! socket state (`size_of::<SocketStorage>()` on thumbv7m; 432 on x86_64),
//! plus 72 bytes of this adapter's tables (per unit of `N`). The interface
//! and the rest of the stack are about 430 bytes (thumbv7m). The receive
//! buffer is the advertised window: 2–4 KB per socket is a workable minimum
//! on a microcontroller (one or two full segments); a fast link wants 64 KB
//! or more (smoltcp scales the window). A transmit buffer smaller than the
//! engine's transfer buffer only means more, smaller sends.
//!
//! How many sockets an FTP server needs is worked out in [`StackConfig`];
//! `N` (the const generic) bounds both the pool and the handle table.
//!
//! # What came from `smoltcp-nal`
//!
//! The published `smoltcp-nal` 0.7 implements only the client side
//! (`connect`/`send`/`receive`/`close`, no `bind`/`listen`/`accept`), owns
//! the device, depends on `embedded-time` and recycles a socket on `close`
//! at once (which can lose the tail of a transfer). No code is shared;
//! from it this module took two ideas: a fixed pool of pre-added sockets
//! handed out as handles, and a `connect` that starts the connection on its
//! first call and then reports the socket's state. The listen backlog, the
//! accept and re-arm logic, the delayed recycling after close, the port
//! allocator and the address handling were written here.

use core::fmt;

use smoltcp::iface::{
    Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant as SmolInstant};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::{nb, IpAddr, SocketAddr, TcpError, TcpErrorKind};

mod nal;
mod storage;

pub use storage::StackStorage;

/// Settings of a [`SmoltcpStack`]; plain data.
///
/// Sizing the pool for an FTP server with `S` sessions: `backlog` sockets
/// for the control listener, `S` control connections, and per session with
/// a passive transfer `backlog` listening plus 1 data connection, plus a
/// few sockets that are still flushing after `close`. With the default
/// backlog of 2 and 4 sessions: 2 + 4 + 4 × 3 + 2 = 20 sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    /// Pool sockets each listening handle keeps in LISTEN, so that many
    /// clients can connect at once. At least 1.
    pub backlog: u8,
    /// Most connections per listener that are opening (SYN-RECEIVED) or
    /// established and waiting for `accept`; beyond it no more sockets are
    /// armed for that listener until `accept` takes one.
    pub max_pending: u8,
    /// A connection still in SYN-RECEIVED this long after its SYN is
    /// dropped and its socket re-armed.
    pub handshake_timeout: Duration,
    /// Local ports for outgoing connections (active-mode data), inclusive.
    pub ephemeral_ports: (u16, u16),
    /// Where the ephemeral port search starts: give it the random value
    /// given to smoltcp's `iface::Config::random_seed`, so a reboot does not
    /// reuse the ports of the last run.
    pub random_seed: u64,
    /// After `close`, how long the peer may stay silent before the
    /// connection is reset and its pool socket reused.
    pub close_timeout: Duration,
    /// Whether connections use Nagle's algorithm. Off by default (like
    /// `TCP_NODELAY` on the host): replies are small writes.
    pub nagle: bool,
    /// Most frames one [`SmoltcpStack::poll`] takes from the device, and
    /// most transmit passes over the sockets, so that a flood cannot starve
    /// the engine. At least 1.
    pub budget: u16,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            backlog: 2,
            max_pending: 8,
            handshake_timeout: Duration::from_secs(10),
            ephemeral_ports: (49152, 65535),
            random_seed: 0,
            close_timeout: Duration::from_secs(30),
            nagle: false,
            budget: 64,
        }
    }
}

/// An error of the smoltcp stack. Small and `Copy`, like smoltcp's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmoltcpError {
    /// No free pool socket (or no room for one more in `add_socket`).
    NoSocket,
    /// The handle table is full.
    NoHandle,
    /// The handle is stale (already closed) or from another stack.
    InvalidHandle,
    /// The operation does not fit the socket's state (e.g. `send` on a
    /// listener, `bind` twice).
    InvalidState,
    /// Another socket is bound to this port and an overlapping address.
    AddrInUse,
    /// The interface does not have this local address.
    AddrNotAvailable,
    /// No free ephemeral port.
    NoPort,
    /// An IPv6 address without the `smoltcp-ipv6` feature, or an address
    /// smoltcp cannot send to.
    Unsupported,
    /// `connect` failed: reset by the peer, or the attempt died.
    ConnectionRefused,
    /// The connection was reset or aborted.
    ConnectionReset,
    /// The socket is not connected.
    NotConnected,
}

impl fmt::Display for SmoltcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmoltcpError::NoSocket => "no free socket in the pool",
            SmoltcpError::NoHandle => "socket handle table full",
            SmoltcpError::InvalidHandle => "unknown socket handle",
            SmoltcpError::InvalidState => "operation not allowed in this socket state",
            SmoltcpError::AddrInUse => "address in use",
            SmoltcpError::AddrNotAvailable => "address not available",
            SmoltcpError::NoPort => "no free ephemeral port",
            SmoltcpError::Unsupported => "address family not supported",
            SmoltcpError::ConnectionRefused => "connection refused",
            SmoltcpError::ConnectionReset => "connection reset",
            SmoltcpError::NotConnected => "not connected",
        })
    }
}

impl TcpError for SmoltcpError {
    /// `PipeClosed` for a reset or unconnected socket; `Other` for
    /// everything else (including a port in use).
    fn kind(&self) -> TcpErrorKind {
        match self {
            SmoltcpError::ConnectionReset | SmoltcpError::NotConnected => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

/// A handle to one socket of a [`SmoltcpStack`].
///
/// Not `Clone`/`Copy`: the handle is the socket's only owner. Give it back
/// with [`crate::TcpClientStack::close`].
#[derive(Debug, PartialEq, Eq)]
pub struct SmolSocket {
    index: u16,
    generation: u16,
}

/// What a handle stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandleState {
    /// The table entry is unused.
    Free,
    /// Created by `socket()`: no pool socket yet.
    Unbound,
    /// Bound to a local address (port reserved), not yet listening.
    Bound(SocketAddr),
    /// Listening: pool sockets marked [`Role::Armed`] with this handle's
    /// index listen for it.
    Listening(SocketAddr),
    /// Connecting (SYN sent) on pool socket `.0`.
    Connecting(u16),
    /// An established (or accepted) connection on pool socket `.0`.
    Connected(u16),
}

/// One entry of the handle table.
#[derive(Debug, Clone, Copy)]
struct HandleSlot {
    generation: u16,
    state: HandleState,
}

/// What a pool socket is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Unused (CLOSED or TIME-WAIT).
    Free,
    /// Listening for the listener handle with index `listener`; stays armed
    /// through SYN-RECEIVED (first seen at `since`) and ESTABLISHED until
    /// `accept` takes it.
    Armed {
        listener: u16,
        since: Option<SmolInstant>,
    },
    /// The connection of a `Connecting` or `Connected` handle.
    Owned,
    /// Closed by its handle, flushing its data and FIN; reset at
    /// `deadline` unless the transmit queue (`queued` bytes) shrinks first.
    Closing {
        deadline: SmolInstant,
        queued: usize,
    },
}

/// One pool socket: its smoltcp handle and its role.
#[derive(Debug, Clone, Copy)]
struct Pooled {
    handle: SocketHandle,
    role: Role,
}

/// smoltcp's interface and a pool of up to `N` TCP sockets as an
/// `embedded-nal` [`TcpFullStack`](crate::TcpFullStack) plus
/// [`TcpLocalAddr`](crate::TcpLocalAddr). See the [module docs](self).
pub struct SmoltcpStack<'a, const N: usize> {
    iface: Interface,
    sockets: SocketSet<'a>,
    /// How many sockets `sockets` can hold (its storage length).
    capacity: usize,
    pool: [Option<Pooled>; N],
    handles: [HandleSlot; N],
    config: StackConfig,
    next_port: u16,
    /// The time of the last [`SmoltcpStack::poll`].
    now: SmolInstant,
}

impl<const N: usize> fmt::Debug for SmoltcpStack<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmoltcpStack")
            .field("pool", &self.pool_size())
            .field("free", &self.free_sockets())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'a, const N: usize> SmoltcpStack<'a, N> {
    /// A stack over `iface` with no pool sockets yet: add them with
    /// [`SmoltcpStack::add_socket`]. `storage` holds smoltcp's socket slots;
    /// at most `min(storage.len(), N)` sockets can be added.
    pub fn new(
        iface: Interface,
        storage: &'a mut [SocketStorage<'a>],
        config: StackConfig,
    ) -> Self {
        let capacity = storage.len();
        let (lo, hi) = ordered(config.ephemeral_ports);
        let span = u64::from(hi - lo) + 1;
        // `seed % span` < span <= 65536, so the sum stays within lo..=hi.
        let next_port = lo.saturating_add(u16::try_from(config.random_seed % span).unwrap_or(0));
        SmoltcpStack {
            iface,
            sockets: SocketSet::new(storage),
            capacity,
            pool: [None; N],
            handles: [HandleSlot {
                generation: 0,
                state: HandleState::Free,
            }; N],
            config,
            next_port,
            now: SmolInstant::from_millis(0),
        }
    }

    /// Adds one TCP socket to the pool, with `rx` and `tx` as its receive
    /// and transmit buffers (the receive buffer is the advertised window).
    /// [`SmoltcpError::NoSocket`] when the pool or the storage is full.
    pub fn add_socket(&mut self, rx: &'a mut [u8], tx: &'a mut [u8]) -> Result<(), SmoltcpError> {
        if self.pool_size() >= self.capacity {
            return Err(SmoltcpError::NoSocket);
        }
        let Some(free) = self.pool.iter_mut().find(|p| p.is_none()) else {
            return Err(SmoltcpError::NoSocket);
        };
        // Cannot panic: the storage has room (checked above; only this
        // method adds sockets).
        let handle = self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(rx),
            tcp::SocketBuffer::new(tx),
        ));
        *free = Some(Pooled {
            handle,
            role: Role::Free,
        });
        Ok(())
    }

    /// Moves packets: takes received frames from `device` (at most
    /// [`StackConfig::budget`]), lets the sockets transmit, then recycles
    /// closed sockets and re-arms listeners.
    ///
    /// Returns `true` when a frame was received or sent: the engine may
    /// have work, and the caller should poll again before sleeping.
    pub fn poll<D: Device + ?Sized>(&mut self, now: SmolInstant, device: &mut D) -> bool {
        self.now = now;
        let budget = self.config.budget.max(1);
        let mut activity = false;
        for _ in 0..budget {
            match self
                .iface
                .poll_ingress_single(now, device, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => activity = true,
                PollIngressSingleResult::SocketStateChanged => {
                    activity = true;
                    // A SYN may just have taken a listening socket: arm
                    // another before the next frame (maybe another SYN).
                    self.maintain();
                }
            }
        }
        // Each pass sends at most one segment per socket.
        for _ in 0..budget {
            match self.iface.poll_egress(now, device, &mut self.sockets) {
                PollResult::SocketStateChanged => activity = true,
                PollResult::None => break,
            }
        }
        self.maintain();
        activity
    }

    /// When [`SmoltcpStack::poll`] must run next at the latest (a
    /// retransmission, a delayed ACK, a close timeout); `None` when only a
    /// received frame can change anything. May be in the past: poll now.
    pub fn poll_at(&mut self, now: SmolInstant) -> Option<SmolInstant> {
        let mut own: Option<SmolInstant> = None;
        for i in 0..N {
            let deadline = match self.role(i) {
                Some(Role::Closing { deadline, .. }) => deadline,
                Some(Role::Armed { since: Some(t), .. })
                    if self.tcp_state(i) == State::SynReceived =>
                {
                    t + self.config.handshake_timeout
                }
                _ => continue,
            };
            own = Some(own.map_or(deadline, |d| d.min(deadline)));
        }
        match (self.iface.poll_at(now, &self.sockets), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long from `now` until [`SmoltcpStack::poll_at`]; zero when it
    /// has passed, `None` when there is no deadline.
    pub fn poll_delay(&mut self, now: SmolInstant) -> Option<Duration> {
        self.poll_at(now)
            .map(|at| if at > now { at - now } else { Duration::ZERO })
    }

    /// The interface (addresses, routes, MAC).
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The interface, to change its addresses or routes. Changing an
    /// address that sockets are bound to leaves them bound to the old one.
    pub fn interface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The settings.
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// How many sockets the pool has.
    pub fn pool_size(&self) -> usize {
        self.pool.iter().flatten().count()
    }

    /// How many pool sockets are free right now (not listening, connected
    /// or still closing).
    pub fn free_sockets(&self) -> usize {
        self.pool
            .iter()
            .flatten()
            .filter(|p| p.role == Role::Free)
            .count()
    }

    /// How many handles are open (created and not yet closed).
    pub fn handle_count(&self) -> usize {
        self.handles
            .iter()
            .filter(|h| h.state != HandleState::Free)
            .count()
    }

    // ---- handles ----

    /// The table index of `socket`, if it is a live handle of this stack.
    fn index(&self, socket: &SmolSocket) -> Result<usize, SmoltcpError> {
        let index = usize::from(socket.index);
        match self.handles.get(index) {
            Some(slot)
                if slot.generation == socket.generation && slot.state != HandleState::Free =>
            {
                Ok(index)
            }
            _ => Err(SmoltcpError::InvalidHandle),
        }
    }

    /// The state of the live handle at `index` (`Free` if out of range).
    fn state(&self, index: usize) -> HandleState {
        self.handles
            .get(index)
            .map_or(HandleState::Free, |h| h.state)
    }

    /// Sets the state of the handle at `index`.
    fn set_state(&mut self, index: usize, state: HandleState) {
        if let Some(slot) = self.handles.get_mut(index) {
            slot.state = state;
        }
    }

    /// A new handle in `state`.
    fn new_handle(&mut self, state: HandleState) -> Result<SmolSocket, SmoltcpError> {
        let (index, slot) = self
            .handles
            .iter_mut()
            .enumerate()
            .find(|(_, h)| h.state == HandleState::Free)
            .ok_or(SmoltcpError::NoHandle)?;
        slot.state = state;
        Ok(SmolSocket {
            index: u16::try_from(index).map_err(|_| SmoltcpError::NoHandle)?,
            generation: slot.generation,
        })
    }

    /// Frees the handle at `index`; its old handles become stale.
    fn free_handle(&mut self, index: usize) {
        if let Some(slot) = self.handles.get_mut(index) {
            slot.state = HandleState::Free;
            slot.generation = slot.generation.wrapping_add(1);
        }
    }

    // ---- pool ----

    /// The role of pool socket `i` (`Free` if there is none).
    fn role(&self, i: usize) -> Option<Role> {
        self.pool.get(i).and_then(|p| p.as_ref()).map(|p| p.role)
    }

    /// Sets the role of pool socket `i`.
    fn set_role(&mut self, i: usize, role: Role) {
        if let Some(Some(p)) = self.pool.get_mut(i) {
            p.role = role;
        }
    }

    /// The smoltcp socket of pool entry `i`.
    fn tcp(&mut self, i: usize) -> Option<&mut tcp::Socket<'a>> {
        let handle = self.pool.get(i)?.as_ref()?.handle;
        // Cannot panic: `handle` came from `SocketSet::add` of a TCP socket
        // and sockets are never removed.
        Some(self.sockets.get_mut::<tcp::Socket>(handle))
    }

    /// The TCP state of pool socket `i` (`Closed` if there is none).
    fn tcp_state(&mut self, i: usize) -> State {
        self.tcp(i).map_or(State::Closed, |s| s.state())
    }

    /// Takes a free pool socket (one in CLOSED first, then one in
    /// TIME-WAIT) for `role`, with the connection options applied.
    fn take_socket(&mut self, role: Role) -> Option<usize> {
        let mut candidate = None;
        for i in 0..N {
            if self.role(i) != Some(Role::Free) {
                continue;
            }
            if self.tcp_state(i) == State::Closed {
                candidate = Some(i);
                break;
            }
            candidate = candidate.or(Some(i));
        }
        let i = candidate?;
        let nagle = self.config.nagle;
        let socket = self.tcp(i)?;
        // TIME-WAIT is left early only when the pool needs the socket.
        socket.abort();
        socket.set_nagle_enabled(nagle);
        socket.set_timeout(None);
        socket.set_keep_alive(None);
        self.set_role(i, role);
        Some(i)
    }

    /// Arms free pool sockets in LISTEN for the listener at handle
    /// `listener`, which has `listening` sockets in LISTEN and `pending`
    /// connections not yet accepted, until it has `backlog` listening (or
    /// `max_pending` is reached, or the pool runs out); returns how many
    /// listen now.
    fn top_up(&mut self, listener: usize, listening: u8, pending: u8) -> u8 {
        let HandleState::Listening(local) = self.state(listener) else {
            return listening;
        };
        let (Ok(endpoint), Ok(tag)) = (listen_endpoint(local), u16::try_from(listener)) else {
            return listening;
        };
        let backlog = self.config.backlog.max(1);
        let limit = backlog.saturating_add(self.config.max_pending);
        let mut listening = listening;
        while listening < backlog && listening.saturating_add(pending) < limit {
            let role = Role::Armed {
                listener: tag,
                since: None,
            };
            let Some(i) = self.take_socket(role) else {
                break;
            };
            if self.tcp(i).map(|s| s.listen(endpoint).is_ok()) != Some(true) {
                self.set_role(i, Role::Free);
                break;
            }
            listening += 1;
        }
        listening
    }

    /// Counts the sockets of the listener with handle index `listener`:
    /// `(in LISTEN, opening or established but not accepted)`.
    fn listener_counts(&mut self, listener: u16) -> (u8, u8) {
        let (mut listening, mut pending) = (0u8, 0u8);
        for i in 0..N {
            if !matches!(self.role(i), Some(Role::Armed { listener: l, .. }) if l == listener) {
                continue;
            }
            match self.tcp_state(i) {
                State::Listen => listening = listening.saturating_add(1),
                State::Closed | State::TimeWait => {}
                _ => pending = pending.saturating_add(1),
            }
        }
        (listening, pending)
    }

    /// Recycles pool sockets whose close finished (or timed out), drops
    /// handshakes that timed out, frees listening sockets that fell back to
    /// CLOSED (a reset before `accept`), and tops up every listener.
    fn maintain(&mut self) {
        let mut listening = [0u8; N];
        let mut pending = [0u8; N];
        let (now, close_timeout) = (self.now, self.config.close_timeout);
        let handshake_timeout = self.config.handshake_timeout;
        for i in 0..N {
            let Some(role) = self.role(i) else { continue };
            let Some(socket) = self.tcp(i) else { continue };
            match role {
                Role::Closing { deadline, queued } => {
                    let left = socket.send_queue();
                    if socket.recv_queue() > 0 || (left >= queued && now >= deadline) {
                        // Data after close (reset, as Linux does, rather
                        // than keep a socket whose window has closed), or
                        // a peer silent for `close_timeout`.
                        socket.abort();
                    }
                    if matches!(socket.state(), State::Closed | State::TimeWait) {
                        self.set_role(i, Role::Free);
                    } else if left < queued {
                        // Progress: the peer is alive, restart the timer.
                        let deadline = now + close_timeout;
                        self.set_role(
                            i,
                            Role::Closing {
                                deadline,
                                queued: left,
                            },
                        );
                    }
                }
                Role::Armed { listener, since } => {
                    let state = socket.state();
                    let slot = usize::from(listener);
                    match state {
                        State::Closed | State::TimeWait => self.set_role(i, Role::Free),
                        State::Listen => {
                            if let Some(n) = listening.get_mut(slot) {
                                *n = n.saturating_add(1);
                            }
                            if since.is_some() {
                                // A reset handshake fell back to LISTEN.
                                self.set_role(
                                    i,
                                    Role::Armed {
                                        listener,
                                        since: None,
                                    },
                                );
                            }
                        }
                        _ => {
                            if let Some(n) = pending.get_mut(slot) {
                                *n = n.saturating_add(1);
                            }
                            match since {
                                None => self.set_role(
                                    i,
                                    Role::Armed {
                                        listener,
                                        since: Some(now),
                                    },
                                ),
                                Some(t)
                                    if state == State::SynReceived
                                        && now >= t + handshake_timeout =>
                                {
                                    socket.abort();
                                    self.set_role(i, Role::Free);
                                }
                                Some(_) => {}
                            }
                        }
                    }
                }
                Role::Free | Role::Owned => {}
            }
        }
        for listener in 0..N {
            let (Some(&l), Some(&p)) = (listening.get(listener), pending.get(listener)) else {
                continue;
            };
            if matches!(self.state(listener), HandleState::Listening(_))
                && l < self.config.backlog.max(1)
            {
                self.top_up(listener, l, p);
            }
        }
    }

    /// Whether `port` is taken on `addr`: by a bound or listening handle
    /// with an overlapping address, or (for ephemeral ports) by any pool
    /// socket's local endpoint.
    fn port_taken(&mut self, addr: IpAddr, port: u16, by_connections: bool) -> bool {
        let listeners = self.handles.iter().any(|h| match h.state {
            HandleState::Bound(local) | HandleState::Listening(local) => {
                local.port() == port
                    && (local.ip().is_unspecified() || addr.is_unspecified() || local.ip() == addr)
            }
            _ => false,
        });
        if listeners || !by_connections {
            return listeners;
        }
        (0..N).any(|i| {
            self.role(i).is_some_and(|r| r != Role::Free)
                && self
                    .tcp(i)
                    .and_then(|s| s.local_endpoint())
                    .is_some_and(|e| e.port == port)
        })
    }

    /// A free port from [`StackConfig::ephemeral_ports`], after the last
    /// one given out.
    fn ephemeral_port(&mut self) -> Result<u16, SmoltcpError> {
        let (lo, hi) = ordered(self.config.ephemeral_ports);
        let mut port = self.next_port.clamp(lo, hi);
        for _ in 0..=u32::from(hi - lo) {
            let candidate = port;
            port = if port >= hi { lo } else { port + 1 };
            if candidate != 0
                && !self.port_taken(IpAddr::V4(crate::Ipv4Addr::UNSPECIFIED), candidate, true)
            {
                self.next_port = port;
                return Ok(candidate);
            }
        }
        Err(SmoltcpError::NoPort)
    }

    /// Whether the interface has `ip` (or it is unspecified).
    fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_unspecified()
            || self
                .iface
                .ip_addrs()
                .iter()
                .any(|cidr| IpAddr::from(cidr.address()) == ip)
    }

    /// The pool socket of a connecting or connected handle, once it is
    /// established: `WouldBlock` while it connects, an error if the
    /// attempt failed or the handle is not a connection.
    fn connection(&mut self, index: usize) -> nb::Result<usize, SmoltcpError> {
        match self.state(index) {
            HandleState::Connected(i) => Ok(usize::from(i)),
            HandleState::Connecting(i) => match self.tcp_state(usize::from(i)) {
                State::SynSent | State::SynReceived => Err(nb::Error::WouldBlock),
                State::Closed | State::TimeWait | State::Listen => {
                    // The attempt failed; the handle is unbound again.
                    self.set_role(usize::from(i), Role::Free);
                    self.set_state(index, HandleState::Unbound);
                    Err(nb::Error::Other(SmoltcpError::ConnectionRefused))
                }
                _ => {
                    self.set_state(index, HandleState::Connected(i));
                    Ok(usize::from(i))
                }
            },
            _ => Err(nb::Error::Other(SmoltcpError::NotConnected)),
        }
    }
}

/// `(lo, hi)` with `lo <= hi`.
fn ordered((a, b): (u16, u16)) -> (u16, u16) {
    (a.min(b), a.max(b))
}

/// `addr` with an IPv4-mapped IPv6 address turned into plain IPv4.
fn unmap_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::unmap(addr.ip()), addr.port())
}

/// Ferry's address as smoltcp's.
fn to_smol(ip: IpAddr) -> Result<IpAddress, SmoltcpError> {
    match crate::unmap(ip) {
        IpAddr::V4(v4) => Ok(IpAddress::Ipv4(v4)),
        #[cfg(feature = "smoltcp-ipv6")]
        IpAddr::V6(v6) => Ok(IpAddress::Ipv6(v6)),
        #[cfg(not(feature = "smoltcp-ipv6"))]
        IpAddr::V6(_) => Err(SmoltcpError::Unsupported),
    }
}

/// smoltcp's endpoint as Ferry's address.
fn to_socket_addr(endpoint: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(endpoint.addr), endpoint.port)
}

/// What a listener bound to `local` listens on: any address for an
/// unspecified one.
fn listen_endpoint(local: SocketAddr) -> Result<IpListenEndpoint, SmoltcpError> {
    let addr = if local.ip().is_unspecified() {
        None
    } else {
        Some(to_smol(local.ip())?)
    };
    Ok(IpListenEndpoint {
        addr,
        port: local.port(),
    })
}

/// Converts Ferry's millisecond [`crate::Instant`] to smoltcp's
/// (microseconds in an `i64`: saturating after ~292,000 years).
pub fn smol_instant(now: crate::Instant) -> SmolInstant {
    const MAX_MS: i64 = i64::MAX / 1000;
    SmolInstant::from_millis(i64::try_from(now.0).map_or(MAX_MS, |ms| ms.min(MAX_MS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        assert_eq!(
            SmoltcpError::ConnectionReset.kind(),
            TcpErrorKind::PipeClosed
        );
        assert_eq!(SmoltcpError::NotConnected.kind(), TcpErrorKind::PipeClosed);
        assert_eq!(SmoltcpError::AddrInUse.kind(), TcpErrorKind::Other);
    }

    #[test]
    fn listen_endpoint_of_any_has_no_address() {
        let any = SocketAddr::new(IpAddr::V4(crate::Ipv4Addr::UNSPECIFIED), 21);
        assert_eq!(
            listen_endpoint(any),
            Ok(IpListenEndpoint {
                addr: None,
                port: 21
            })
        );
        let one = SocketAddr::new(IpAddr::V4(crate::Ipv4Addr::new(10, 0, 0, 2)), 21);
        assert_eq!(
            listen_endpoint(one).map(|e| e.addr.map(IpAddr::from)),
            Ok(Some(one.ip()))
        );
    }

    #[test]
    fn mapped_addresses_are_unmapped() {
        let mapped = IpAddr::V6(crate::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            to_smol(mapped).map(IpAddr::from),
            Ok(IpAddr::V4(crate::Ipv4Addr::new(10, 0, 0, 1)))
        );
    }

    #[test]
    fn instants_convert() {
        assert_eq!(smol_instant(crate::Instant(1500)).total_millis(), 1500);
        assert_eq!(
            smol_instant(crate::Instant(u64::MAX)).total_millis(),
            i64::MAX / 1000
        );
    }
}

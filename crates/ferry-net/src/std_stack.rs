//! Host sockets as an `embedded-nal` stack, with readiness waiting.
//!
//! [`StdStack`] implements [`TcpFullStack`] and Ferry's [`TcpLocalAddr`]
//! over host TCP sockets, and [`StdStack::wait`] blocks until a socket has
//! an event, so a host server's poll loop uses ~0 CPU while idle.
//! [`StdClock`] is the matching [`Clock`].
//!
//! Why not `std-embedded-nal`: its `bind(port)` can only bind `[::]`, it
//! cannot bind one address, cannot report a socket's local address (`PASV`
//! needs it), its `connect` blocks (an active-mode `PORT` to an unreachable
//! port would stall the single poll loop), and it exposes raw fds only on
//! Unix. So this module implements the traits directly on `mio` 1.x
//! (cross-platform epoll/kqueue/IOCP) and `socket2` where needed.
//!
//! # Contract
//!
//! - Every operation is non-blocking: it returns [`nb::Error::WouldBlock`]
//!   when it cannot complete now. `connect` starts the connection on its
//!   first call and reports completion (or failure) on later calls.
//! - Readiness is edge-triggered: [`StdStack::wait`] returns on *new*
//!   events only. Call it only after a pass in which every operation the
//!   caller is waiting for was attempted and returned `WouldBlock`;
//!   otherwise an event that already fired may never be reported again.
//! - `receive` returning `Ok(0)` for a non-empty buffer means the peer
//!   closed its sending side (end of stream).
//! - A [`StdSocket`] is a handle into the stack's socket table. It is
//!   neither `Clone` nor `Copy`; dropping it without
//!   [`TcpClientStack::close`] leaks the table entry and the OS socket until
//!   the [`StdStack`] itself is dropped.
//! - Peer and local addresses are reported with IPv4-mapped IPv6 addresses
//!   (`::ffff:a.b.c.d`) turned into plain IPv4 (see [`crate::unmap`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{
    nb, Clock, Instant, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpClientStack, TcpError,
    TcpErrorKind, TcpFullStack, TcpLocalAddr,
};

/// The token of the [`StdWaker`]; socket tokens are slab indices, which
/// never reach `usize::MAX`.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// How many events one `wait` collects; more stay queued for the next one.
const EVENT_CAPACITY: usize = 256;

/// The listen backlog of every listener (Linux caps it at
/// `net.core.somaxconn`, 4096 by default). 128 was too short for a burst
/// of thousands of connections: with the queue full, Linux answers with
/// SYN cookies and drops the handshake's last ACK, and a client that waits
/// for the greeting waits for good.
const LISTEN_BACKLOG: i32 = 1024;

/// An error of the host stack: the underlying OS error.
#[derive(Debug)]
pub struct StdNetError(pub io::Error);

impl StdNetError {
    /// An error for a call the socket's state does not allow.
    fn invalid(message: &'static str) -> Self {
        StdNetError(io::Error::new(io::ErrorKind::InvalidInput, message))
    }
}

impl From<io::Error> for StdNetError {
    fn from(error: io::Error) -> Self {
        StdNetError(error)
    }
}

impl fmt::Display for StdNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StdNetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl TcpError for StdNetError {
    /// `PipeClosed` for a broken, reset, aborted or unconnected socket;
    /// `Other` for everything else (including a port already in use).
    fn kind(&self) -> TcpErrorKind {
        match self.0.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

/// A handle to one socket of a [`StdStack`].
///
/// Not `Clone`/`Copy`: the handle is the socket's only owner. Give it back
/// with [`TcpClientStack::close`]; dropping it instead leaks the socket
/// until the stack is dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct StdSocket {
    index: usize,
    generation: u32,
}

/// Interrupts a [`StdStack::wait`] from another thread (a Ctrl-C handler,
/// say). Cheap to clone; all clones wake the same stack.
#[derive(Debug, Clone)]
pub struct StdWaker(Arc<mio::Waker>);

impl StdWaker {
    /// Makes the current or next [`StdStack::wait`] return.
    pub fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

/// What a socket of the table is.
#[derive(Debug)]
enum SocketState {
    /// Created by `socket()`, not yet bound or connected.
    Unbound,
    /// Bound and listening.
    Listening(TcpListener),
    /// Connected (or, while `connecting`, connecting). `local`: its local
    /// address once asked for (it cannot change): `PASV` asks for the
    /// control connection's at every transfer.
    Stream {
        stream: TcpStream,
        connecting: bool,
        local: Option<std::net::SocketAddr>,
    },
}

/// One slot of the socket table; `generation` outlives the socket so a
/// handle from an earlier occupant (or another stack) is refused.
#[derive(Debug)]
struct Slot {
    generation: u32,
    state: Option<SocketState>,
    /// Whether reading (or accepting) may make progress: set by a
    /// readiness event (and for a new socket), cleared when the OS answers
    /// `WouldBlock`. Consulted only once [`StdStack::wait`] has been used.
    readable: bool,
    /// An event has said that the peer closed its side (or the socket
    /// failed): a short read no longer means that nothing is left, the end
    /// of the stream is.
    closed: bool,
    /// The [`StdStack::waits`] during which a read took less than it was
    /// offered: it is not tried again before the next wait, unless the peer
    /// has closed (then the next call sees the end at once).
    short_at: u64,
}

/// Host TCP sockets as an `embedded-nal` [`TcpFullStack`] plus
/// [`TcpLocalAddr`], with [`StdStack::wait`] to sleep until something
/// happens. See the [module docs](self) for the contract.
pub struct StdStack {
    poll: Poll,
    events: Events,
    waker: Arc<mio::Waker>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// [`StdStack::wait`] has been called: from then on `accept` and
    /// `receive` make no system call for a socket that has reported no
    /// readiness since its last `WouldBlock` (the edge-triggered contract
    /// guarantees the event). A caller that never waits polls the OS.
    tracking: bool,
    /// How many times [`StdStack::wait`] has returned (from 1).
    waits: u64,
    /// Listeners bound now join a group of this many sharing their address
    /// (see [`StdStack::share_listeners`]), and how it spreads connections.
    group: Option<(u32, Spread)>,
    /// The pipe (read end, write end) that [`crate::SecureStack::receive_file`]
    /// splices through, made at its first use; always empty between calls.
    #[cfg(target_os = "linux")]
    pipe: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
}

impl fmt::Debug for StdStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdStack")
            .field("sockets", &self.socket_count())
            .finish_non_exhaustive()
    }
}

impl StdStack {
    /// Creates a stack with no sockets (and its OS poller and waker).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER_TOKEN)?);
        Ok(StdStack {
            poll,
            events: Events::with_capacity(EVENT_CAPACITY),
            waker,
            slots: Vec::new(),
            free: Vec::new(),
            tracking: false,
            waits: 1,
            group: None,
            #[cfg(target_os = "linux")]
            pipe: None,
        })
    }

    /// Linux: the listeners bound from now on share their address with
    /// those of `workers` stacks in all (`SO_REUSEPORT`, each stack on its
    /// own thread), and the system hands each connection to the one chosen
    /// as `spread` says. `None` (the default): listeners are exclusive. Set
    /// it around the control listeners only: a passive listener must stay
    /// its session's own.
    #[cfg(target_os = "linux")]
    pub fn share_listeners(&mut self, workers: Option<u32>, spread: Spread) {
        self.group = workers.map(|n| (n, spread));
    }

    /// Blocks until a socket of this stack has a readiness event, a
    /// [`StdWaker`] fires, or `timeout` passes (`None`: no timeout).
    ///
    /// May return early (a signal, a spurious event); the caller retries
    /// its operations and waits again. Only new events wake it: see the
    /// edge-triggered rule in the [module docs](self).
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tracking = true;
        let result = match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        };
        // Any event (readable, closed, error, or only writable) lets the
        // next read be tried: over-reporting costs one call, missing one
        // would stall the socket.
        for event in self.events.iter() {
            if let Some(slot) = self.slots.get_mut(event.token().0) {
                slot.readable = true;
                slot.closed |= event.is_read_closed() || event.is_error();
            }
        }
        self.waits += 1;
        result
    }

    /// Collects events without sleeping, again and again, until one comes
    /// (`Ok(true)`) or `limit` has passed (`Ok(false)`): a loop that was
    /// just busy catches the next request without the cost of waking from
    /// sleep (large on a virtual machine), at the price of the CPU time it
    /// spins. Between two looks it yields the CPU to any thread that is
    /// ready to run. Events are taken as [`StdStack::wait`] takes them.
    /// A zero `limit` answers `Ok(false)` at once, without a look.
    pub fn spin(&mut self, limit: Duration) -> io::Result<bool> {
        if limit.is_zero() {
            return Ok(false);
        }
        let start = std::time::Instant::now();
        loop {
            self.wait(Some(Duration::ZERO))?;
            if !self.events.is_empty() {
                return Ok(true);
            }
            if start.elapsed() >= limit {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }

    /// Whether a read or accept on `socket` is worth a system call.
    fn may_read(&self, socket: &StdSocket) -> bool {
        !self.tracking
            || self.slots.get(socket.index).is_none_or(|s| {
                s.generation != socket.generation
                    || (s.readable && (s.short_at != self.waits || s.closed))
            })
    }

    /// Notes what a read or accept on `socket` answered: after
    /// `WouldBlock` it waits for the next event.
    fn read_result<T>(
        &mut self,
        socket: &StdSocket,
        result: nb::Result<T, StdNetError>,
    ) -> nb::Result<T, StdNetError> {
        if matches!(result, Err(nb::Error::WouldBlock)) {
            if let Some(slot) = self.slots.get_mut(socket.index) {
                if slot.generation == socket.generation {
                    slot.readable = false;
                }
            }
        }
        result
    }

    /// Notes that a read of `socket` took `got` (> 0) of the `offered`
    /// bytes: it is not tried again before the next wait, unless the peer
    /// has closed (then the next read sees the end at once). A short read
    /// has most often taken all that had arrived, so a second read in the
    /// same pass would be a call for nothing; but not always (a `recv`
    /// stops at TCP urgent data, which Python's ftplib sends with ABOR,
    /// and a `splice` when its pipe is full), so the next pass reads again.
    ///
    /// Linux only: epoll reports new bytes whether or not the last read
    /// drained the socket. Elsewhere mio promises an event only after an
    /// operation said `WouldBlock` (on Windows a TLS record cut in two then
    /// waited for good: CI's Wine test), so a socket is read until then.
    fn note_short(&mut self, socket: &StdSocket, got: usize, offered: usize) {
        if !cfg!(target_os = "linux") {
            return;
        }
        let waits = self.waits;
        if let Some(slot) = self.slots.get_mut(socket.index) {
            if slot.generation == socket.generation && 0 < got && got < offered && !slot.closed {
                slot.short_at = waits;
            }
        }
    }

    /// A handle that interrupts [`StdStack::wait`] from any thread.
    ///
    /// Never fails today (the waker is created by [`StdStack::new`]); the
    /// `Result` leaves room for lazily created wakers.
    pub fn waker(&self) -> io::Result<StdWaker> {
        Ok(StdWaker(Arc::clone(&self.waker)))
    }

    /// How many sockets are open (created and not yet closed).
    pub fn socket_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The state of `socket`, or an error for a stale or foreign handle.
    fn state(&mut self, socket: &StdSocket) -> Result<&mut SocketState, StdNetError> {
        slot_state(&mut self.slots, socket)
    }

    /// Puts `state` in a free slot and returns its handle.
    fn insert(&mut self, state: SocketState) -> StdSocket {
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index) {
                slot.state = Some(state);
                slot.readable = true;
                slot.closed = false;
                slot.short_at = 0;
                return StdSocket {
                    index,
                    generation: slot.generation,
                };
            }
        }
        let index = self.slots.len();
        self.slots.push(Slot {
            generation: 0,
            state: Some(state),
            readable: true,
            closed: false,
            short_at: 0,
        });
        StdSocket {
            index,
            generation: 0,
        }
    }

    /// Binds an unbound `socket` to `local` and starts listening.
    fn bind_listener(
        &mut self,
        socket: &StdSocket,
        local: SocketAddr,
        fall_back_to_v4: bool,
    ) -> Result<(), StdNetError> {
        let token = Token(socket.index);
        let registry = self.poll.registry();
        let state = slot_state(&mut self.slots, socket)?;
        if !matches!(state, SocketState::Unbound) {
            return Err(StdNetError::invalid("socket is already bound or connected"));
        }
        let group = self.group;
        let mut listener = match open_listener(local, group) {
            Ok(listener) => listener,
            // `[::]` on a host without IPv6: serve IPv4 alone. A port in
            // use is a real error (the caller may try another port).
            Err(e) if fall_back_to_v4 && e.kind() != io::ErrorKind::AddrInUse => open_listener(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), local.port()),
                group,
            )?,
            Err(e) => return Err(e.into()),
        };
        registry.register(&mut listener, token, Interest::READABLE)?;
        *state = SocketState::Listening(listener);
        Ok(())
    }
}

/// Opens a non-blocking listener on exactly `local`.
///
/// IPv6 sockets are dual-stack only when `local` is `::`; SO_REUSEADDR is
/// set on Unix so a restarted server can rebind while old connections sit
/// in TIME_WAIT (on Windows the same option would allow port stealing).
/// With `group` (Linux), it joins the listeners sharing `local`.
fn open_listener(local: SocketAddr, group: Option<(u32, Spread)>) -> io::Result<TcpListener> {
    let domain = match local {
        SocketAddr::V4(_) => Domain::IPV4,
        SocketAddr::V6(_) => Domain::IPV6,
    };
    // Non-blocking from its creation where the system can (one passive
    // listener per transfer: two calls fewer each).
    #[cfg(target_os = "linux")]
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    #[cfg(not(target_os = "linux"))]
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if let SocketAddr::V6(v6) = local {
        socket.set_only_v6(*v6.ip() != Ipv6Addr::UNSPECIFIED)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    connection_options(&socket);
    #[cfg(target_os = "linux")]
    if group.is_some() {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(target_os = "linux"))]
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(local))?;
    socket.listen(LISTEN_BACKLOG)?;
    // After binding: attached before, the program would make the socket a
    // group of its own, which the others could not join.
    #[cfg(target_os = "linux")]
    if let Some((workers, spread)) = group {
        spread_connections(&socket, workers, spread)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = group;
    Ok(TcpListener::from_std(socket.into()))
}

/// The options of every accepted connection (on Linux set on the listener,
/// whose connections inherit them). A socket without them still works, so
/// a failure is not fatal.
fn connection_options(socket: &Socket) {
    // Replies and listings are small writes; Nagle would delay them.
    let _ = socket.set_nodelay(true);
    // Telnet "Synch" (RFC 959 ABOR) sends its last byte as TCP urgent
    // data; without OOBINLINE the kernel removes it from the stream, and
    // `ABOR\r\n` arrives as `ABOR\r` (Python's ftplib.abort() hangs).
    let _ = socket.set_out_of_band_inline(true);
    #[cfg(target_os = "linux")]
    limit_unsent(socket);
}

/// Most bytes a connection's kernel buffer holds that TCP has not sent yet
/// (`TCP_NOTSENT_LOWAT`; bytes in flight, which a long path needs many
/// of, do not count). Past it a send or `sendfile` takes no more, so a
/// loop pumping downloads sleeps until its clients have read, instead of
/// running on and making its other sessions wait for the CPU. On 2 vCPUs
/// (with the two sweeps of `ferry_core`'s pass): NOOP p99 behind four curl
/// downloads 5.69-6.73 ms without it, 2.81-3.50 with it, 3 runs each of
/// `xtask/bench/latency.py`; 256 MiB RETR, 10 runs each, 2088 MiB/s on
/// average without it, 2345 with it. The accepted connections of a
/// listener inherit it.
#[cfg(target_os = "linux")]
const UNSENT_LIMIT: i32 = 256 << 10;

/// Sets [`UNSENT_LIMIT`] on `socket`; a socket without it still works.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn limit_unsent(socket: &impl std::os::fd::AsRawFd) {
    let limit: i32 = UNSENT_LIMIT;
    // SAFETY: a valid socket and an int option of the int's size.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&limit as *const i32).cast(),
            core::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
}

/// How listeners sharing an address (`StdStack::share_listeners`, Linux)
/// share out the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// By the client's address: one address is always served by the same
    /// stack, so a per-address limit holds as with one.
    ByAddress,
    /// By the client's port: the connections of one address (a NAT, a
    /// proxy, a host with many clients) are served by all the stacks.
    ByPort,
}

/// Makes the system hand a connection to the listener of its group (in
/// the order they were bound) numbered by the client's address, or its
/// port, modulo `workers`: a classic BPF program on the group
/// (`SO_ATTACH_REUSEPORT_CBPF`) reads the source address from the IP
/// header (IPv4: all of it; IPv6: its last 32 bits), or the source port
/// from the TCP header, halved (Linux gives `connect` even ports first).
/// Until `workers` listeners have joined, the system falls back to its own
/// hash.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn spread_connections(socket: &Socket, workers: u32, spread: Spread) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // Offsets from the network header (`SKF_NET_OFF`), as the kernel
    // reads a negative offset.
    const NET: u32 = (-0x10_0000_i32) as u32;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let (v4, v6) = match spread {
        // A = IPv4 source address; A = last word of the IPv6 one.
        Spread::ByAddress => (
            [op(0x20, 0, 0, NET + 12), op(0x05, 0, 0, 0)],
            [op(0x20, 0, 0, NET + 20), op(0x05, 0, 0, 0)],
        ),
        // X = IPv4 header's length, A = the port after it; A = the port
        // after IPv6's fixed header; then A >>= 1.
        Spread::ByPort => (
            [op(0xb1, 0, 0, NET), op(0x48, 0, 0, NET)],
            [op(0x28, 0, 0, NET + 40), op(0x05, 0, 0, 0)],
        ),
    };
    let halve = u32::from(spread == Spread::ByPort);
    let [v4a, v4b] = v4;
    let [v6a, v6b] = v6;
    let program = [
        op(0x30, 0, 0, NET),            // A = first byte of the IP header
        op(0x74, 0, 0, 4),              // A >>= 4: the IP version
        op(0x15, 3, 0, 6),              // IPv6: skip to 6
        v4a,                            // IPv4: as above
        v4b,                            //
        op(0x05, 0, 0, 2),              // to 8
        v6a,                            // IPv6: as above
        v6b,                            //
        op(0x74, 0, 0, halve),          // A >>= halve
        op(0x94, 0, 0, workers.max(1)), // A %= workers
        op(0x16, 0, 0, 0),              // return A: the listener's index
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: a valid socket and a program that outlives the call (the
    // kernel copies it); the option's size is the struct's.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            core::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The state of `socket` in `slots`, or an error for a stale or foreign
/// handle.
fn slot_state<'a>(
    slots: &'a mut [Slot],
    socket: &StdSocket,
) -> Result<&'a mut SocketState, StdNetError> {
    match slots.get_mut(socket.index) {
        Some(Slot {
            generation,
            state: Some(state),
            ..
        }) if *generation == socket.generation => Ok(state),
        _ => Err(StdNetError::invalid("unknown socket handle")),
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned into plain IPv4.
fn unmap_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::unmap(addr.ip()), addr.port())
}

/// Whether `error` says a non-blocking connect is still in progress.
fn connect_in_progress(error: &io::Error) -> bool {
    // EINPROGRESS has no stable `ErrorKind` at our MSRV.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const EINPROGRESS: Option<i32> = Some(115);
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    const EINPROGRESS: Option<i32> = Some(36);
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    const EINPROGRESS: Option<i32> = None;
    error.kind() == io::ErrorKind::NotConnected
        || error.kind() == io::ErrorKind::WouldBlock
        || (EINPROGRESS.is_some() && error.raw_os_error() == EINPROGRESS)
}

/// Checks whether a connecting stream has connected: `Ok(true)` connected,
/// `Ok(false)` still connecting, `Err` failed.
fn check_connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if connect_in_progress(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `op` again while the OS reports `Interrupted`, and maps
/// `WouldBlock` to [`nb::Error::WouldBlock`].
///
/// Retrying at once (rather than reporting `WouldBlock`) matters: with
/// edge-triggered readiness, data already pending would never wake `wait`.
fn retry_nb<T>(mut op: impl FnMut() -> io::Result<T>) -> nb::Result<T, StdNetError> {
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(nb::Error::WouldBlock),
            Err(e) => return Err(nb::Error::Other(StdNetError(e))),
        }
    }
}

/// The connected stream of `state`, or `WouldBlock` while it is still
/// connecting, or an error if it is not a stream.
fn connected_stream(state: &mut SocketState) -> nb::Result<&mut TcpStream, StdNetError> {
    match state {
        SocketState::Stream {
            stream, connecting, ..
        } => {
            if *connecting {
                match check_connected(stream) {
                    Ok(true) => *connecting = false,
                    Ok(false) => return Err(nb::Error::WouldBlock),
                    Err(e) => return Err(nb::Error::Other(StdNetError(e))),
                }
            }
            Ok(stream)
        }
        _ => Err(nb::Error::Other(StdNetError(io::Error::from(
            io::ErrorKind::NotConnected,
        )))),
    }
}

impl TcpClientStack for StdStack {
    type TcpSocket = StdSocket;
    type Error = StdNetError;

    /// A new, unbound socket (no OS socket exists until `connect` or a
    /// bind).
    fn socket(&mut self) -> Result<StdSocket, StdNetError> {
        Ok(self.insert(SocketState::Unbound))
    }

    /// Starts a non-blocking connect on the first call (returning
    /// `WouldBlock`), then reports completion on later calls: `Ok(())` once
    /// connected, `WouldBlock` while connecting, an error if it failed (the
    /// socket is then unbound again, so a new call starts a new attempt).
    /// `remote` is only used by the first call (and is compared with the
    /// peer once connected).
    fn connect(
        &mut self,
        socket: &mut StdSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), StdNetError> {
        let remote = unmap_addr(remote);
        let token = Token(socket.index);
        let registry = self.poll.registry();
        let state = slot_state(&mut self.slots, socket)?;
        match state {
            SocketState::Unbound => {
                let mut stream = TcpStream::connect(remote).map_err(StdNetError)?;
                // An active-mode data connection (PORT/EPRT).
                #[cfg(target_os = "linux")]
                limit_unsent(&stream);
                registry
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    .map_err(StdNetError)?;
                *state = SocketState::Stream {
                    stream,
                    connecting: true,
                    local: None,
                };
                Err(nb::Error::WouldBlock)
            }
            SocketState::Stream {
                stream, connecting, ..
            } if *connecting => {
                match check_connected(stream) {
                    Ok(true) => {
                        *connecting = false;
                        Ok(())
                    }
                    Ok(false) => Err(nb::Error::WouldBlock),
                    Err(e) => {
                        // Dropping the stream closes it whatever deregister
                        // says, so its failure changes nothing.
                        let _ = registry.deregister(stream);
                        *state = SocketState::Unbound;
                        Err(nb::Error::Other(StdNetError(e)))
                    }
                }
            }
            SocketState::Stream { stream, .. } => match stream.peer_addr() {
                Ok(peer) if unmap_addr(peer) == remote => Ok(()),
                Ok(_) => Err(nb::Error::Other(StdNetError::invalid(
                    "socket is connected to another peer",
                ))),
                Err(e) => Err(nb::Error::Other(StdNetError(e))),
            },
            SocketState::Listening(_) => Err(nb::Error::Other(StdNetError::invalid(
                "socket is listening",
            ))),
        }
    }

    /// Writes what the socket buffer takes now (maybe less than `buffer`);
    /// `WouldBlock` when it is full or the socket is still connecting.
    fn send(&mut self, socket: &mut StdSocket, buffer: &[u8]) -> nb::Result<usize, StdNetError> {
        let stream = connected_stream(self.state(socket)?)?;
        retry_nb(|| stream.write(buffer))
    }

    /// Reads what has arrived; `WouldBlock` when nothing has. `Ok(0)` (for
    /// a non-empty `buffer`) means the peer closed its sending side.
    fn receive(
        &mut self,
        socket: &mut StdSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, StdNetError> {
        if !self.may_read(socket) {
            return Err(nb::Error::WouldBlock);
        }
        let stream = connected_stream(self.state(socket)?)?;
        let result = retry_nb(|| stream.read(buffer));
        if let Ok(got) = result {
            self.note_short(socket, got, buffer.len());
        }
        self.read_result(socket, result)
    }

    /// Closes the OS socket (if any) and frees the handle's table entry.
    fn close(&mut self, socket: StdSocket) -> Result<(), StdNetError> {
        let slot = match self.slots.get_mut(socket.index) {
            Some(slot) if slot.generation == socket.generation && slot.state.is_some() => slot,
            _ => return Err(StdNetError::invalid("unknown socket handle")),
        };
        let state = slot.state.take();
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(socket.index);
        // Dropping the mio socket closes it. On Linux that also takes it out
        // of the epoll set (no other descriptor refers to it), so it is not
        // deregistered first: one call fewer per socket (two per transfer:
        // its passive listener and its data connection).
        // Elsewhere deregistering keeps the poller's bookkeeping exact. Its
        // failure would change nothing for the caller: not reported.
        #[cfg(not(target_os = "linux"))]
        {
            let registry = self.poll.registry();
            match state {
                Some(SocketState::Listening(mut listener)) => {
                    let _ = registry.deregister(&mut listener);
                }
                Some(SocketState::Stream { mut stream, .. }) => {
                    let _ = registry.deregister(&mut stream);
                }
                Some(SocketState::Unbound) | None => {}
            }
        }
        #[cfg(target_os = "linux")]
        drop(state);
        Ok(())
    }
}

impl TcpFullStack for StdStack {
    /// Binds `[::]:local_port`, dual-stack (IPv4 and IPv6), falling back to
    /// `0.0.0.0:local_port` when the host has no IPv6, and starts listening
    /// (backlog 128). A port in use is an error.
    fn bind(&mut self, socket: &mut StdSocket, local_port: u16) -> Result<(), StdNetError> {
        let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), local_port);
        self.bind_listener(socket, any, true)
    }

    /// A no-op for a bound socket (binding already listens); an error for
    /// any other.
    fn listen(&mut self, socket: &mut StdSocket) -> Result<(), StdNetError> {
        match self.state(socket)? {
            SocketState::Listening(_) => Ok(()),
            _ => Err(StdNetError::invalid("socket is not bound")),
        }
    }

    /// Accepts a pending connection: a connected, non-blocking socket with
    /// `TCP_NODELAY` set, and the peer's address (IPv4-mapped addresses
    /// unmapped). `WouldBlock` when none is pending.
    fn accept(
        &mut self,
        socket: &mut StdSocket,
    ) -> nb::Result<(StdSocket, SocketAddr), StdNetError> {
        if !self.may_read(socket) {
            return Err(nb::Error::WouldBlock);
        }
        let accepted = self.accept_now(socket);
        let accepted = self.read_result(socket, accepted)?;
        self.adopt(accepted)
    }
}

impl StdStack {
    /// The `sendfile(2)` of [`crate::SecureStack::send_file`].
    #[cfg(target_os = "linux")]
    fn send_file_now(
        &mut self,
        socket: &mut StdSocket,
        file: crate::OsFile,
        len: usize,
    ) -> nb::Result<usize, StdNetError> {
        let stream = connected_stream(self.state(socket)?)?;
        retry_nb(|| send_file(stream, file, len))
    }

    /// The `splice(2)`s of [`crate::SecureStack::receive_file`]: what has
    /// arrived on `socket` into the stack's pipe, then all of it from the
    /// pipe into `file`.
    #[cfg(target_os = "linux")]
    fn receive_file_now(
        &mut self,
        socket: &mut StdSocket,
        file: crate::OsFile,
        len: usize,
    ) -> nb::Result<usize, crate::FileError<StdNetError>> {
        use std::os::fd::AsRawFd;
        let net = |e: nb::Error<StdNetError>| e.map(crate::FileError::Net);
        if !self.may_read(socket) {
            return Err(nb::Error::WouldBlock);
        }
        let (out, into) = match &self.pipe {
            Some((out, into)) => (out.as_raw_fd(), into.as_raw_fd()),
            None => {
                let made = make_pipe().map_err(StdNetError).map_err(nb::Error::Other);
                let (out, into) = made.map_err(net)?;
                let fds = (out.as_raw_fd(), into.as_raw_fd());
                self.pipe = Some((out, into));
                fds
            }
        };
        let stream = connected_stream(self.state(socket).map_err(nb::Error::Other).map_err(net)?)
            .map_err(net)?;
        let from = stream.as_raw_fd();
        let taken = retry_nb(|| splice(from, into, len));
        let taken = self.read_result(socket, taken).map_err(net)?;
        self.note_short(socket, taken, len);
        let mut left = taken;
        while left > 0 {
            match splice(out, file.0, left) {
                Ok(n) if n > 0 => left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => {
                    // What the file did not take is lost with the pipe,
                    // which must be empty for the next call.
                    self.pipe = None;
                    let code = other.err().and_then(|e| e.raw_os_error());
                    let no_space = matches!(code, Some(libc::ENOSPC | libc::EDQUOT));
                    return Err(nb::Error::Other(crate::FileError::Storage { no_space }));
                }
            }
        }
        Ok(taken)
    }

    /// The OS accept of [`TcpFullStack::accept`].
    fn accept_now(
        &mut self,
        socket: &mut StdSocket,
    ) -> nb::Result<(TcpStream, std::net::SocketAddr), StdNetError> {
        Ok(match self.state(socket)? {
            SocketState::Listening(listener) => loop {
                match retry_nb(|| listener.accept()) {
                    // A connection reset before it was accepted: take the
                    // next one, if any.
                    Err(nb::Error::Other(StdNetError(e)))
                        if e.kind() == io::ErrorKind::ConnectionAborted =>
                    {
                        continue
                    }
                    other => break other?,
                }
            },
            _ => {
                return Err(nb::Error::Other(StdNetError::invalid(
                    "socket is not listening",
                )))
            }
        })
    }

    /// Makes an accepted connection a socket of this stack (see
    /// [`TcpFullStack::accept`]).
    fn adopt(
        &mut self,
        (mut stream, peer): (TcpStream, std::net::SocketAddr),
    ) -> nb::Result<(StdSocket, SocketAddr), StdNetError> {
        // Linux: set on the listener, which its connections inherit (two
        // calls fewer each).
        #[cfg(not(target_os = "linux"))]
        connection_options(&socket2::SockRef::from(&stream));
        let handle = self.insert(SocketState::Unbound);
        let registered = self.poll.registry().register(
            &mut stream,
            Token(handle.index),
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                if let Some(slot) = self.slots.get_mut(handle.index) {
                    slot.state = Some(SocketState::Stream {
                        stream,
                        connecting: false,
                        local: None,
                    });
                }
                Ok((handle, unmap_addr(peer)))
            }
            Err(e) => {
                // `close` of a fresh, unbound handle cannot fail.
                let _ = self.close(handle);
                Err(nb::Error::Other(StdNetError(e)))
            }
        }
    }
}

impl TcpLocalAddr for StdStack {
    /// Binds exactly `local` (an IPv4-mapped address is bound as IPv4) and
    /// starts listening. An IPv6 address other than `::` is bound IPv6-only;
    /// `::` is dual-stack like [`TcpFullStack::bind`]. A port in use is an
    /// error of kind `Other`.
    fn bind_addr(&mut self, socket: &mut StdSocket, local: SocketAddr) -> Result<(), StdNetError> {
        let local = unmap_addr(local);
        let any_v6 = local.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        self.bind_listener(socket, local, any_v6)
    }

    /// The local address of a listening or connected socket (IPv4-mapped
    /// addresses unmapped). For a connection accepted on a dual-stack
    /// listener it is the address the peer connected to.
    fn local_addr(&mut self, socket: &StdSocket) -> Result<SocketAddr, StdNetError> {
        let addr = match self.state(socket)? {
            SocketState::Listening(listener) => listener.local_addr()?,
            SocketState::Stream {
                stream,
                connecting: false,
                local,
            } => match local {
                Some(known) => *known,
                None => *local.insert(stream.local_addr()?),
            },
            SocketState::Stream { stream, .. } => stream.local_addr()?,
            SocketState::Unbound => return Err(StdNetError::invalid("socket is not bound")),
        };
        Ok(unmap_addr(addr))
    }
}

/// The host's clock: monotonic milliseconds since the clock was created,
/// and the system's wall clock.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: std::time::Instant,
}

impl StdClock {
    /// A clock whose [`Clock::now`] starts at 0 now.
    pub fn new() -> Self {
        StdClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        let ms = self.origin.elapsed().as_millis();
        Instant(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// `None` if the system clock is set before 1970.
    fn unix_time(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// Host sockets carry no TLS themselves; `ferry-tls` wraps this stack.
impl crate::SecureStack for StdStack {
    /// Linux: `sendfile(2)` from the file to the connection.
    #[cfg(target_os = "linux")]
    fn send_file(
        &mut self,
        socket: &mut StdSocket,
        file: crate::OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, StdNetError>> {
        Some(self.send_file_now(socket, file, len))
    }

    /// Linux: `splice(2)` from the connection to a pipe of the stack's,
    /// and from the pipe to the file.
    #[cfg(target_os = "linux")]
    fn receive_file(
        &mut self,
        socket: &mut StdSocket,
        file: crate::OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, crate::FileError<StdNetError>>> {
        Some(self.receive_file_now(socket, file, len))
    }
}

/// `sendfile(2)` of up to `len` bytes of `file`, from its position (which
/// moves past them), to `stream`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn send_file(stream: &TcpStream, file: crate::OsFile, len: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain FFI on two descriptors (the kernel checks them; the
    // caller lends a file it holds open); a null offset means the file's.
    let sent = unsafe { libc::sendfile(stream.as_raw_fd(), file.0, std::ptr::null_mut(), len) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// How much the pipe of [`StdStack::receive_file_now`] holds, if the
/// system lets it (an unprivileged process may go up to 1 MiB by default);
/// a pipe holds 64 KiB otherwise.
#[cfg(target_os = "linux")]
const PIPE_SIZE: i32 = 1 << 20;

/// A non-blocking pipe (read end, write end) as large as [`PIPE_SIZE`]
/// where the system allows.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn make_pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by no
    // one else.
    let ends = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: fcntl on a descriptor just made; failing leaves the pipe as
    // it was, which only holds less.
    let _ = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE) };
    Ok(ends)
}

/// `splice(2)` of up to `len` bytes from `from` to `to` (one of them a
/// pipe), at each file's own position, without waiting.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn splice(from: i32, to: i32, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let null = std::ptr::null_mut();
    // SAFETY: plain FFI on descriptors the caller holds open; null offsets
    // mean each file's own position.
    let moved = unsafe { libc::splice(from, null, to, null, len, flags) };
    usize::try_from(moved).map_err(|_| io::Error::last_os_error())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// `TCP_NOTSENT_LOWAT` of `socket`.
    #[allow(unsafe_code)]
    fn unsent_limit(socket: &impl AsRawFd) -> i32 {
        let mut value: i32 = -1;
        let mut len = core::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: a valid socket, and an int with its size for the answer.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut value as *mut i32).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn accepted_and_connected_sockets_keep_little_unsent() {
        let listener = open_listener("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let address = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(address).unwrap();
        assert_ne!(
            unsent_limit(&client),
            UNSENT_LIMIT,
            "a plain socket has none"
        );
        // The listener is non-blocking: the connection is queued already.
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(unsent_limit(&accepted), UNSENT_LIMIT);

        let mut stack = StdStack::new().unwrap();
        let mut active = stack.socket().unwrap();
        let _ = stack.connect(&mut active, address);
        let SocketState::Stream { stream, .. } = slot_state(&mut stack.slots, &active).unwrap()
        else {
            panic!("connect made no stream");
        };
        assert_eq!(unsent_limit(stream), UNSENT_LIMIT);
    }
}

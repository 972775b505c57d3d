//! [`TlsStack`]: a plain TCP/IP stack with TLS on the sockets the engine
//! asks for, and the lingering closes that let clients finish cleanly.
use alloc::vec::Vec;
use core::fmt;

use ferry_net::{
    nb, Clock, Instant, SecureStack, SocketAddr, TcpClientStack, TcpFullStack, TcpLocalAddr,
    TlsError,
};

use crate::config::TlsConfig;
use crate::conn::{ReadMode, TlsConn};
use crate::error::TlsStackError;

/// After `close_notify` has gone out, how long a closed connection waits
/// for the client to close first (ms).
const LINGER_AFTER_NOTIFY_MS: u64 = 1_500;

/// The longest a closed connection lingers at all (ms): a handshake still
/// running at close gets this long to finish.
const LINGER_MAX_MS: u64 = 10_000;

/// How many more records one `receive` decrypts into the caller's buffer.
const RECEIVE_ROUNDS: usize = 8;

/// Where a socket's TLS state lives in the stack's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnId {
    index: usize,
    generation: u32,
}

/// A socket of a [`TlsStack`]: the plain stack's socket, plus TLS once
/// started. Like the plain socket, give it back with `close`.
pub struct TlsSocket<T> {
    inner: T,
    tls: Option<ConnId>,
    /// A listener whose connections start TLS at accept (implicit FTPS).
    implicit: bool,
}

impl<T> TlsSocket<T> {
    /// The plain stack's socket underneath.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for TlsSocket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("inner", &self.inner)
            .field("tls", &self.tls.is_some())
            .field("implicit", &self.implicit)
            .finish()
    }
}

/// One slot of the TLS table; the generation outlives the connection so a
/// stale handle is refused.
struct Slot {
    generation: u32,
    conn: Option<TlsConn>,
}

/// A closed TLS connection still finishing: handshake, pending ciphertext,
/// `close_notify`, then waiting for the client to close.
struct Lingering<T> {
    socket: T,
    conn: TlsConn,
    since: Instant,
    /// When `close_notify` had been sent completely.
    notified: Option<Instant>,
}

/// A plain TCP/IP stack `S` with TLS (rustls) on the sockets the engine
/// asks for: the [`ferry_net::SecureStack`] that ferry-core calls. See the
/// [crate docs](crate) for the contract; `C` tells the time (lingering
/// closes, handshake timeouts).
pub struct TlsStack<S: TcpClientStack, C> {
    inner: S,
    clock: C,
    config: Option<TlsConfig>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    lingering: Vec<Lingering<S::TcpSocket>>,
    implicit_ports: Vec<u16>,
    implicit_addrs: Vec<SocketAddr>,
}

impl<S: TcpClientStack, C> fmt::Debug for TlsStack<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStack")
            .field("tls", &self.config)
            .field("connections", &(self.slots.len() - self.free.len()))
            .field("lingering", &self.lingering.len())
            .field("implicit_ports", &self.implicit_ports)
            .field("implicit_addrs", &self.implicit_addrs)
            .finish_non_exhaustive()
    }
}

impl<S: TcpLocalAddr, C: Clock> TlsStack<S, C> {
    /// `inner` with TLS as `config` says.
    pub fn new(inner: S, clock: C, config: TlsConfig) -> Self {
        Self::build(inner, clock, Some(config))
    }

    /// `inner` without TLS: `tls_available` is false, and every socket
    /// stays plain (for a server started without a certificate).
    pub fn without_tls(inner: S, clock: C) -> Self {
        Self::build(inner, clock, None)
    }

    fn build(inner: S, clock: C, config: Option<TlsConfig>) -> Self {
        TlsStack {
            inner,
            clock,
            config,
            slots: Vec::new(),
            free: Vec::new(),
            lingering: Vec::new(),
            implicit_ports: Vec::new(),
            implicit_addrs: Vec::new(),
        }
    }

    /// Listeners bound to local port `port` (on any address) are
    /// implicit-TLS listeners: TLS starts on their connections at accept.
    /// Keep the port out of the passive range. No effect without TLS.
    pub fn implicit_port(mut self, port: u16) -> Self {
        self.implicit_ports.push(port);
        self
    }

    /// A listener bound (by `bind_addr`) to exactly `addr` is an
    /// implicit-TLS listener; port 0 matches a listener asked for port 0.
    /// No effect without TLS.
    pub fn implicit_addr(mut self, addr: SocketAddr) -> Self {
        self.implicit_addrs.push(addr);
        self
    }

    /// The TLS settings, if TLS is on.
    pub fn config(&self) -> Option<&TlsConfig> {
        self.config.as_ref()
    }

    /// The plain stack.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The plain stack, e.g. to wait for readiness. Operating its sockets
    /// directly bypasses TLS.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Whether bytes arrived on a TLS connection, since the last call, that
    /// the plain stack's readiness will not report again (they wait
    /// decrypted or undecrypted inside this layer). A loop that sleeps on
    /// readiness polls the engine once more, without sleeping, when this
    /// is true.
    pub fn has_pending(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .fold(false, |any, c| c.take_fresh() | any)
    }

    /// When this layer needs a call at the latest (a lingering close or a
    /// handshake timing out); `None` when it needs none.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.handshake_timeout();
        let handshakes = self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .filter_map(|c| c.handshake_deadline(timeout));
        let closes = self.lingering.iter().map(|l| match l.notified {
            Some(t) => t.add_millis(LINGER_AFTER_NOTIFY_MS),
            None => l.since.add_millis(LINGER_MAX_MS),
        });
        handshakes.chain(closes).min()
    }

    /// How many closed TLS connections are still finishing.
    pub fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// How many TLS connections are open (not counting lingering ones).
    pub fn tls_connections(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Advances the lingering closes; every other call does this too.
    pub fn drive(&mut self) {
        if self.lingering.is_empty() {
            return;
        }
        let now = self.clock.now();
        let timeout = self.handshake_timeout();
        let mut i = 0;
        while let Some(entry) = self.lingering.get_mut(i) {
            if linger(&mut self.inner, entry, now, timeout) {
                let entry = self.lingering.swap_remove(i);
                let _ = self.inner.close(entry.socket);
            } else {
                i += 1;
            }
        }
    }

    /// Closes every lingering connection at once (e.g. before exiting).
    pub fn abandon_lingering(&mut self) {
        for entry in self.lingering.drain(..) {
            let _ = self.inner.close(entry.socket);
        }
    }

    fn handshake_timeout(&self) -> u64 {
        self.config
            .as_ref()
            .map_or(LINGER_MAX_MS, TlsConfig::handshake_timeout)
    }

    /// Puts `conn` in a free slot.
    fn insert(&mut self, conn: TlsConn) -> ConnId {
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index) {
                slot.conn = Some(conn);
                return ConnId {
                    index,
                    generation: slot.generation,
                };
            }
        }
        self.slots.push(Slot {
            generation: 0,
            conn: Some(conn),
        });
        ConnId {
            index: self.slots.len() - 1,
            generation: 0,
        }
    }

    /// Takes a connection out of the table.
    fn remove(&mut self, id: ConnId) -> Option<TlsConn> {
        let slot = self
            .slots
            .get_mut(id.index)
            .filter(|s| s.generation == id.generation)?;
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(conn)
    }

    fn conn(&self, id: ConnId) -> Option<&TlsConn> {
        conn_in(&self.slots, id)
    }

    /// Starts a server handshake on `socket`, with `control`'s config (and
    /// so its sessions) for a data connection.
    fn start(
        &mut self,
        socket: &mut TlsSocket<S::TcpSocket>,
        control: Option<&TlsSocket<S::TcpSocket>>,
    ) -> Result<(), TlsError> {
        let Some(config) = self.config.as_ref() else {
            return Err(TlsError::Unavailable);
        };
        if socket.tls.is_some() {
            // TLS cannot start twice on one connection.
            return Err(TlsError::Unavailable);
        }
        let open = self.slots.iter().filter(|s| s.conn.is_some()).count() + self.lingering.len();
        if open >= config.connection_limit() {
            return Err(TlsError::Unavailable);
        }
        let (server, data, require) = match control {
            None => {
                let configs = config.for_control();
                (configs.control, Some(configs.data), false)
            }
            Some(control) => {
                let own = control
                    .tls
                    .and_then(|id| self.conn(id))
                    .and_then(TlsConn::data_config)
                    .map(alloc::sync::Arc::clone);
                (
                    own.unwrap_or_else(|| config.for_control().data),
                    None,
                    config.session_reuse_required(),
                )
            }
        };
        let conn = TlsConn::new(server, data, require, self.clock.now())
            .map_err(|_| TlsError::Unavailable)?;
        #[cfg(feature = "release-idle")]
        let conn = conn.releasing_idle_buffers(config.releases_idle_buffers());
        socket.tls = Some(self.insert(conn));
        Ok(())
    }
}

fn conn_in(slots: &[Slot], id: ConnId) -> Option<&TlsConn> {
    slots
        .get(id.index)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.conn.as_ref())
}

fn conn_mut(slots: &mut [Slot], id: ConnId) -> Option<&mut TlsConn> {
    slots
        .get_mut(id.index)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.conn.as_mut())
}

/// One step of a lingering close; true when the plain socket can close.
fn linger<S: TcpClientStack>(
    stack: &mut S,
    entry: &mut Lingering<S::TcpSocket>,
    now: Instant,
    handshake_timeout: u64,
) -> bool {
    let Lingering {
        socket,
        conn,
        since,
        notified,
    } = entry;
    // Read (and drop) what the client still sends, so its close is seen
    // and the plain socket does not close on unread bytes (a reset).
    for _ in 0..8 {
        if conn
            .pump(stack, socket, ReadMode::Always, now, handshake_timeout)
            .is_err()
        {
            return true;
        }
        if conn.peer_done() || !conn.take_fresh() {
            break;
        }
        conn.discard_plain();
    }
    conn.discard_plain();
    if conn.may_send() && conn.close_notify(stack, socket).is_err() {
        return true;
    }
    if conn.close_queued() && !conn.out_pending() && notified.is_none() {
        *notified = Some(now);
    }
    if notified.is_some() && conn.peer_done() {
        return true;
    }
    if conn.peer_done() && conn.handshaking() {
        return true;
    }
    match notified {
        Some(t) => now.millis_since(*t) >= LINGER_AFTER_NOTIFY_MS,
        None => now.millis_since(*since) >= LINGER_MAX_MS,
    }
}

/// A plain stack's error as this stack's.
fn net<E>(e: nb::Error<E>) -> nb::Error<TlsStackError<E>> {
    match e {
        nb::Error::WouldBlock => nb::Error::WouldBlock,
        nb::Error::Other(e) => nb::Error::Other(TlsStackError::Net(e)),
    }
}

impl<S: TcpLocalAddr, C: Clock> TcpClientStack for TlsStack<S, C> {
    type TcpSocket = TlsSocket<S::TcpSocket>;
    type Error = TlsStackError<S::Error>;

    fn socket(&mut self) -> Result<Self::TcpSocket, Self::Error> {
        self.drive();
        let inner = self.inner.socket().map_err(TlsStackError::Net)?;
        Ok(TlsSocket {
            inner,
            tls: None,
            implicit: false,
        })
    }

    fn connect(
        &mut self,
        socket: &mut Self::TcpSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), Self::Error> {
        self.inner.connect(&mut socket.inner, remote).map_err(net)
    }

    /// Plain sockets: the plain stack's `send`. TLS sockets: encrypts as
    /// many records of `buffer` as [`TlsConfig::send_batch`] allows (one on
    /// a device) once the handshake allows and earlier ciphertext has gone
    /// out; `WouldBlock` until then.
    fn send(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &[u8],
    ) -> nb::Result<usize, Self::Error> {
        let Some(id) = socket.tls else {
            return self.inner.send(&mut socket.inner, buffer).map_err(net);
        };
        let now = self.clock.now();
        let timeout = self.handshake_timeout();
        let conn = conn_mut(&mut self.slots, id).ok_or(TlsStackError::UnknownSocket)?;
        conn.pump(
            &mut self.inner,
            &mut socket.inner,
            ReadMode::Handshake,
            now,
            timeout,
        )?;
        if buffer.is_empty() {
            return Ok(0);
        }
        if !conn.may_send() || conn.out_pending() {
            return Err(nb::Error::WouldBlock);
        }
        let batch = self.config.as_ref().map_or(1, TlsConfig::batch);
        match conn.encrypt(&mut self.inner, &mut socket.inner, buffer, batch)? {
            0 => Err(nb::Error::WouldBlock),
            n => Ok(n),
        }
    }

    /// Plain sockets: the plain stack's `receive`. TLS sockets: decrypted
    /// bytes; `Ok(0)` after the client's `close_notify` or TCP end of
    /// stream; `WouldBlock` while nothing is decrypted.
    fn receive(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        let Some(id) = socket.tls else {
            return self.inner.receive(&mut socket.inner, buffer).map_err(net);
        };
        let now = self.clock.now();
        let timeout = self.handshake_timeout();
        let conn = conn_mut(&mut self.slots, id).ok_or(TlsStackError::UnknownSocket)?;
        // Fill the caller's buffer with the records that have come, as far
        // as they reach (one record is decrypted at a time, in place).
        let mut n = 0;
        for _ in 0..=RECEIVE_ROUNDS {
            conn.pump(
                &mut self.inner,
                &mut socket.inner,
                ReadMode::Always,
                now,
                timeout,
            )?;
            match buffer.get_mut(n..).map_or(0, |rest| conn.read_plain(rest)) {
                0 => break,
                more => n += more,
            }
            if n >= buffer.len() {
                break;
            }
        }
        if n > 0 || buffer.is_empty() {
            return Ok(n);
        }
        if conn.peer_done() {
            return Ok(0);
        }
        Err(nb::Error::WouldBlock)
    }

    /// Plain sockets: the plain stack's `close`. TLS sockets: the
    /// connection lingers (handshake, `close_notify`, the client's close);
    /// the plain socket closes later.
    fn close(&mut self, socket: Self::TcpSocket) -> Result<(), Self::Error> {
        self.drive();
        let TlsSocket {
            inner: mut plain,
            tls,
            ..
        } = socket;
        let conn = tls.and_then(|id| self.remove(id));
        match conn {
            Some(conn) if !conn.failed() => {
                let now = self.clock.now();
                let timeout = self.handshake_timeout();
                let mut entry = Lingering {
                    socket: plain,
                    conn,
                    since: now,
                    notified: None,
                };
                if linger(&mut self.inner, &mut entry, now, timeout) {
                    plain = entry.socket;
                } else {
                    self.lingering.push(entry);
                    return Ok(());
                }
            }
            _ => {}
        }
        self.inner.close(plain).map_err(TlsStackError::Net)
    }
}

impl<S: TcpLocalAddr, C: Clock> TcpFullStack for TlsStack<S, C> {
    /// The plain stack's `bind`; a port named by
    /// [`TlsStack::implicit_port`] makes an implicit-TLS listener.
    fn bind(&mut self, socket: &mut Self::TcpSocket, local_port: u16) -> Result<(), Self::Error> {
        self.inner
            .bind(&mut socket.inner, local_port)
            .map_err(TlsStackError::Net)?;
        socket.implicit = self.implicit_ports.contains(&local_port);
        Ok(())
    }

    fn listen(&mut self, socket: &mut Self::TcpSocket) -> Result<(), Self::Error> {
        self.inner
            .listen(&mut socket.inner)
            .map_err(TlsStackError::Net)
    }

    /// The plain stack's `accept`; on an implicit-TLS listener the
    /// connection starts TLS at once (`is_tls` is true).
    fn accept(
        &mut self,
        socket: &mut Self::TcpSocket,
    ) -> nb::Result<(Self::TcpSocket, SocketAddr), Self::Error> {
        self.drive();
        let (inner, peer) = self.inner.accept(&mut socket.inner).map_err(net)?;
        let mut accepted = TlsSocket {
            inner,
            tls: None,
            implicit: false,
        };
        if socket.implicit && self.config.is_some() && self.start(&mut accepted, None).is_err() {
            let _ = self.inner.close(accepted.inner);
            return Err(nb::Error::Other(TlsStackError::Tls(
                rustls::Error::General("cannot start TLS".into()),
            )));
        }
        Ok((accepted, peer))
    }
}

impl<S: TcpLocalAddr, C: Clock> TcpLocalAddr for TlsStack<S, C> {
    /// The plain stack's `bind_addr`; an address named by
    /// [`TlsStack::implicit_addr`] (or a port by [`TlsStack::implicit_port`])
    /// makes an implicit-TLS listener.
    fn bind_addr(
        &mut self,
        socket: &mut Self::TcpSocket,
        local: SocketAddr,
    ) -> Result<(), Self::Error> {
        self.inner
            .bind_addr(&mut socket.inner, local)
            .map_err(TlsStackError::Net)?;
        socket.implicit =
            self.implicit_addrs.contains(&local) || self.implicit_ports.contains(&local.port());
        Ok(())
    }

    fn local_addr(&mut self, socket: &Self::TcpSocket) -> Result<SocketAddr, Self::Error> {
        self.inner
            .local_addr(&socket.inner)
            .map_err(TlsStackError::Net)
    }
}

impl<S: SecureStack, C: Clock> SecureStack for TlsStack<S, C> {
    fn tls_available(&self) -> bool {
        self.config.is_some()
    }

    /// Starts a server handshake on `socket`. A data connection (`control`
    /// given) uses its control connection's config, so it can resume that
    /// connection's sessions (and, with
    /// [`TlsConfig::require_session_reuse`], must).
    fn start_tls(
        &mut self,
        socket: &mut Self::TcpSocket,
        control: Option<&Self::TcpSocket>,
    ) -> Result<(), TlsError> {
        self.start(socket, control)
    }

    fn is_tls(&self, socket: &Self::TcpSocket) -> bool {
        socket.tls.is_some()
    }

    /// The plain stack's, for a socket without TLS (TLS must encrypt what
    /// it sends, so it copies).
    fn send_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: ferry_net::OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, Self::Error>> {
        if socket.tls.is_some() {
            return None;
        }
        self.inner
            .send_file(&mut socket.inner, file, len)
            .map(|r| r.map_err(net))
    }

    /// The plain stack's, for a socket without TLS (TLS must decrypt what
    /// arrives, so it copies).
    fn receive_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: ferry_net::OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, ferry_net::FileError<Self::Error>>> {
        if socket.tls.is_some() {
            return None;
        }
        self.inner
            .receive_file(&mut socket.inner, file, len)
            .map(|r| r.map_err(|e| e.map(|e| e.map_net(TlsStackError::Net))))
    }
}

//! An in-memory TCP/IP stack where the probe plays the client: a socket
//! table and a few connections, each a byte pipe per direction, in fixed
//! arrays (no allocation).
//!
//! The server's side goes through `embedded-nal` as on a board. The
//! client's side is plain methods: connect to a listening port, push bytes,
//! take what the server sent, half-close. Active mode works: `connect` to
//! the client's address succeeds on the second call (the first starts the
//! connection and returns `WouldBlock`, as smoltcp's and std's do), and the
//! connection becomes the client's data connection. TLS is a pass-through
//! that says it is there, so the engine's FTPS paths (`AUTH TLS`, `PROT P`
//! data connections) run; no byte is encrypted.
use ferry_net::{
    nb, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack,
    TcpLocalAddr,
};

/// The server's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The client's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The client's control connection port.
const CLIENT_PORT: u16 = 50_123;

/// Sockets the server may hold at once.
const SOCKETS: usize = 8;
/// Connections at once (control, data, and a data connection being torn
/// down).
const CONNECTIONS: usize = 4;
/// Bytes each direction of a connection buffers.
const PIPE: usize = 1024;
/// The most a single `send` or `receive` moves, so that transfers take
/// several calls, as over a real stack.
const SEGMENT: usize = 536;

/// One direction of a connection.
pub struct Pipe {
    buf: [u8; PIPE],
    start: usize,
    end: usize,
}

impl Pipe {
    const EMPTY: Pipe = Pipe {
        buf: [0; PIPE],
        start: 0,
        end: 0,
    };

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// The waiting bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Drops the first `n` waiting bytes.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Appends what fits of `data`; how much did.
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.end + data.len() > PIPE && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = data.len().min(PIPE - self.end);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.end..self.end + n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.end += n;
        n
    }

    /// Moves up to `out.len()` bytes out; how many.
    fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = self.len().min(out.len()).min(SEGMENT);
        if let (Some(dst), Some(src)) = (out.get_mut(..n), self.buf.get(self.start..self.start + n))
        {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        n
    }
}

/// One TCP connection between a server socket and the client.
pub struct Conn {
    /// In use.
    used: bool,
    /// A port of the server's that the connection waits on (not accepted yet).
    pending_on: Option<u16>,
    /// The server's port of the connection.
    local_port: u16,
    /// Client to server.
    pub to_server: Pipe,
    /// Server to client.
    pub to_client: Pipe,
    /// The client will send no more (a half-close, or gone).
    pub client_shut: bool,
    /// The server closed its socket.
    pub server_closed: bool,
}

impl Conn {
    const EMPTY: Conn = Conn {
        used: false,
        pending_on: None,
        local_port: 0,
        to_server: Pipe::EMPTY,
        to_client: Pipe::EMPTY,
        client_shut: false,
        server_closed: false,
    };
}

/// A server socket's state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sock {
    Free,
    Fresh,
    Bound(u16),
    Listening(u16),
    Connecting(usize),
    Connected(usize),
}

/// A server socket handle: an index into the socket table.
#[derive(Debug)]
pub struct Handle(usize);

/// Why a call failed.
#[derive(Debug, Clone, Copy)]
pub struct NetError(TcpErrorKind);

impl TcpError for NetError {
    fn kind(&self) -> TcpErrorKind {
        self.0
    }
}

/// Fails the call with a kind.
fn fail<T>(kind: TcpErrorKind) -> Result<T, NetError> {
    Err(NetError(kind))
}

/// The stack and the client's ends of its connections.
pub struct Net {
    socks: [Sock; SOCKETS],
    /// Which sockets run the pretend TLS.
    tls: [bool; SOCKETS],
    conns: [Conn; CONNECTIONS],
    /// The latest connection the server opened to the client (active mode),
    /// not yet taken by the client.
    pub active: Option<usize>,
}

impl Net {
    /// No socket, no connection.
    pub const fn new() -> Net {
        Net {
            socks: [Sock::Free; SOCKETS],
            tls: [false; SOCKETS],
            conns: [const { Conn::EMPTY }; CONNECTIONS],
            active: None,
        }
    }

    /// Connection `c`.
    pub fn conn(&mut self, c: usize) -> Option<&mut Conn> {
        self.conns.get_mut(c).filter(|conn| conn.used)
    }

    /// A free connection, set up; `None` if all are in use.
    fn open_conn(&mut self, local_port: u16, pending_on: Option<u16>) -> Option<usize> {
        let c = self.conns.iter().position(|conn| !conn.used)?;
        let conn = self.conns.get_mut(c)?;
        *conn = Conn::EMPTY;
        conn.used = true;
        conn.local_port = local_port;
        conn.pending_on = pending_on;
        Some(c)
    }

    /// The client connects to the server's `port`; `None` if nothing
    /// listens there.
    pub fn client_connect(&mut self, port: u16) -> Option<usize> {
        if !self.socks.contains(&Sock::Listening(port)) {
            return None;
        }
        self.open_conn(port, Some(port))
    }

    /// The client is done with connection `c`: it sends no more, and the
    /// connection is forgotten once the server closed its end (or never
    /// took it).
    pub fn client_close(&mut self, c: usize) {
        if let Some(conn) = self.conns.get_mut(c) {
            conn.client_shut = true;
            if conn.server_closed || conn.pending_on.is_some() {
                conn.used = false;
            }
        }
    }

    fn sock(&mut self, h: &Handle) -> Result<&mut Sock, NetError> {
        match self.socks.get_mut(h.0) {
            Some(s) if *s != Sock::Free => Ok(s),
            _ => fail(TcpErrorKind::Other),
        }
    }

    fn connected(&mut self, h: &Handle) -> Result<&mut Conn, NetError> {
        match *self.sock(h)? {
            Sock::Connected(c) => self.conns.get_mut(c).ok_or(NetError(TcpErrorKind::Other)),
            _ => fail(TcpErrorKind::Other),
        }
    }

    /// Binds `h` to `port` unless another socket holds it.
    fn bind_port(&mut self, h: &Handle, port: u16) -> Result<(), NetError> {
        let taken = self
            .socks
            .iter()
            .any(|s| matches!(s, Sock::Bound(p) | Sock::Listening(p) if *p == port));
        let sock = self.sock(h)?;
        if taken || *sock != Sock::Fresh {
            return fail(TcpErrorKind::Other);
        }
        *sock = Sock::Bound(port);
        Ok(())
    }
}

impl TcpClientStack for Net {
    type TcpSocket = Handle;
    type Error = NetError;

    fn socket(&mut self) -> Result<Handle, NetError> {
        let free = self.socks.iter().position(|s| *s == Sock::Free);
        let Some(i) = free else {
            return fail(TcpErrorKind::Other);
        };
        if let (Some(sock), Some(tls)) = (self.socks.get_mut(i), self.tls.get_mut(i)) {
            *sock = Sock::Fresh;
            *tls = false;
        }
        Ok(Handle(i))
    }

    fn connect(&mut self, h: &mut Handle, remote: SocketAddr) -> nb::Result<(), NetError> {
        match *self.sock(h)? {
            Sock::Fresh if remote.ip() == IpAddr::V4(CLIENT_IP) => {
                let c = self
                    .open_conn(20, None)
                    .ok_or(NetError(TcpErrorKind::Other))?;
                *self.sock(h)? = Sock::Connecting(c);
                Err(nb::Error::WouldBlock)
            }
            Sock::Connecting(c) => {
                *self.sock(h)? = Sock::Connected(c);
                self.active = Some(c);
                Ok(())
            }
            _ => Err(nb::Error::Other(NetError(TcpErrorKind::Other))),
        }
    }

    fn send(&mut self, h: &mut Handle, buffer: &[u8]) -> nb::Result<usize, NetError> {
        if let Sock::Connecting(_) = *self.sock(h)? {
            return Err(nb::Error::WouldBlock);
        }
        let conn = self.connected(h)?;
        let n = conn
            .to_client
            .push(buffer.get(..buffer.len().min(SEGMENT)).unwrap_or(&[]));
        if n == 0 && !buffer.is_empty() {
            return Err(nb::Error::WouldBlock);
        }
        Ok(n)
    }

    fn receive(&mut self, h: &mut Handle, buffer: &mut [u8]) -> nb::Result<usize, NetError> {
        let conn = self.connected(h)?;
        match conn.to_server.pop(buffer) {
            0 if conn.client_shut => Ok(0),
            0 => Err(nb::Error::WouldBlock),
            n => Ok(n),
        }
    }

    fn close(&mut self, h: Handle) -> Result<(), NetError> {
        let state = *self.sock(&h)?;
        match state {
            Sock::Connected(c) | Sock::Connecting(c) => {
                if let Some(conn) = self.conns.get_mut(c) {
                    conn.server_closed = true;
                    // Forgotten once the client has read everything.
                    if conn.client_shut && conn.to_client.len() == 0 {
                        conn.used = false;
                    }
                }
            }
            Sock::Listening(port) => {
                // Connections nobody accepted are refused.
                for conn in self.conns.iter_mut() {
                    if conn.pending_on == Some(port) {
                        conn.used = false;
                    }
                }
            }
            _ => {}
        }
        if let Some(sock) = self.socks.get_mut(h.0) {
            *sock = Sock::Free;
        }
        Ok(())
    }
}

impl TcpFullStack for Net {
    fn bind(&mut self, h: &mut Handle, local_port: u16) -> Result<(), NetError> {
        self.bind_port(h, local_port)
    }

    fn listen(&mut self, h: &mut Handle) -> Result<(), NetError> {
        let sock = self.sock(h)?;
        match *sock {
            Sock::Bound(port) => {
                *sock = Sock::Listening(port);
                Ok(())
            }
            _ => fail(TcpErrorKind::Other),
        }
    }

    fn accept(&mut self, h: &mut Handle) -> nb::Result<(Handle, SocketAddr), NetError> {
        let Sock::Listening(port) = *self.sock(h)? else {
            return Err(nb::Error::Other(NetError(TcpErrorKind::Other)));
        };
        let Some(c) = self
            .conns
            .iter()
            .position(|conn| conn.used && conn.pending_on == Some(port))
        else {
            return Err(nb::Error::WouldBlock);
        };
        let new = self.socket()?;
        if let Some(conn) = self.conns.get_mut(c) {
            conn.pending_on = None;
        }
        *self.sock(&new)? = Sock::Connected(c);
        let peer = SocketAddr::new(IpAddr::V4(CLIENT_IP), CLIENT_PORT);
        Ok((new, peer))
    }
}

impl TcpLocalAddr for Net {
    fn bind_addr(&mut self, h: &mut Handle, local: SocketAddr) -> Result<(), NetError> {
        self.bind_port(h, local.port())
    }

    fn local_addr(&mut self, h: &Handle) -> Result<SocketAddr, NetError> {
        let port = match *self.sock(h)? {
            Sock::Bound(p) | Sock::Listening(p) => p,
            Sock::Connected(c) | Sock::Connecting(c) => {
                self.conns.get(c).map_or(0, |conn| conn.local_port)
            }
            _ => 0,
        };
        Ok(SocketAddr::new(IpAddr::V4(SERVER_IP), port))
    }
}

impl ferry_net::SecureStack for Net {
    fn tls_available(&self) -> bool {
        true
    }

    fn start_tls(
        &mut self,
        h: &mut Handle,
        _control: Option<&Handle>,
    ) -> Result<(), ferry_net::TlsError> {
        match self.tls.get_mut(h.0) {
            Some(tls) => {
                *tls = true;
                Ok(())
            }
            None => Err(ferry_net::TlsError::Unavailable),
        }
    }

    fn is_tls(&self, h: &Handle) -> bool {
        self.tls.get(h.0).copied().unwrap_or(false)
    }
}

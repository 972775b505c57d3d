//! The `embedded-nal` traits and Ferry's [`TcpLocalAddr`] for
//! [`SmoltcpStack`]: each operation checks the handle, then acts on the
//! handle's pool socket (see the parent module for the contract).

use smoltcp::socket::tcp::{ConnectError, RecvError, State};
use smoltcp::wire::IpEndpoint;

use super::{
    to_smol, to_socket_addr, unmap_addr, HandleState, Role, SmolSocket, SmoltcpError, SmoltcpStack,
};
use crate::{nb, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpFullStack, TcpLocalAddr};

impl<'a, const N: usize> TcpClientStack for SmoltcpStack<'a, N> {
    type TcpSocket = SmolSocket;
    type Error = SmoltcpError;

    /// A new, unbound handle (no pool socket is taken until `connect` or
    /// `listen`). [`SmoltcpError::NoHandle`] when the table is full.
    fn socket(&mut self) -> Result<SmolSocket, SmoltcpError> {
        self.new_handle(HandleState::Unbound)
    }

    /// Starts connecting on the first call (returning `WouldBlock`), from a
    /// free pool socket and an ephemeral port; later calls return
    /// `WouldBlock` until the connection is established, then `Ok(())`.
    /// A refused or dead attempt is [`SmoltcpError::ConnectionRefused`],
    /// and the handle is unbound again.
    fn connect(
        &mut self,
        socket: &mut SmolSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), SmoltcpError> {
        let index = self.index(socket)?;
        let remote = unmap_addr(remote);
        match self.state(index) {
            HandleState::Unbound => {
                let endpoint = IpEndpoint::new(to_smol(remote.ip())?, remote.port());
                let port = self.ephemeral_port()?;
                let i = self
                    .take_socket(Role::Owned)
                    .ok_or(SmoltcpError::NoSocket)?;
                let Some(handle) = self.pool.get(i).and_then(|p| p.as_ref()).map(|p| p.handle)
                else {
                    return Err(nb::Error::Other(SmoltcpError::NoSocket));
                };
                let started = self
                    .sockets
                    .get_mut::<smoltcp::socket::tcp::Socket>(handle)
                    .connect(self.iface.context(), endpoint, port);
                if let Err(e) = started {
                    self.set_role(i, Role::Free);
                    return Err(nb::Error::Other(match e {
                        ConnectError::Unaddressable => SmoltcpError::Unsupported,
                        ConnectError::InvalidState => SmoltcpError::InvalidState,
                    }));
                }
                let tag = u16::try_from(i).map_err(|_| SmoltcpError::NoSocket)?;
                self.set_state(index, HandleState::Connecting(tag));
                Err(nb::Error::WouldBlock)
            }
            HandleState::Connecting(_) => self.connection(index).map(|_| ()),
            HandleState::Connected(i) => {
                let peer = self
                    .tcp(usize::from(i))
                    .and_then(|s| s.remote_endpoint())
                    .map(to_socket_addr);
                if peer == Some(remote) {
                    Ok(())
                } else {
                    Err(nb::Error::Other(SmoltcpError::InvalidState))
                }
            }
            _ => Err(nb::Error::Other(SmoltcpError::InvalidState)),
        }
    }

    /// Queues what fits in the transmit buffer (maybe less than `buffer`);
    /// `WouldBlock` when it is full or the socket is still connecting;
    /// [`SmoltcpError::ConnectionReset`] once the connection is gone.
    fn send(&mut self, socket: &mut SmolSocket, buffer: &[u8]) -> nb::Result<usize, SmoltcpError> {
        let index = self.index(socket)?;
        let i = self.connection(index)?;
        let s = self.tcp(i).ok_or(SmoltcpError::InvalidHandle)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        match s.send_slice(buffer) {
            Ok(0) => Err(nb::Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(_) => Err(nb::Error::Other(SmoltcpError::ConnectionReset)),
        }
    }

    /// Reads what has arrived; `WouldBlock` when nothing has. `Ok(0)` (for
    /// a non-empty `buffer`) means the peer closed its sending side and
    /// everything it sent has been read.
    fn receive(
        &mut self,
        socket: &mut SmolSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, SmoltcpError> {
        let index = self.index(socket)?;
        let i = self.connection(index)?;
        let s = self.tcp(i).ok_or(SmoltcpError::InvalidHandle)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        match s.recv_slice(buffer) {
            Ok(0) => Err(nb::Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(RecvError::Finished) => Ok(0),
            Err(RecvError::InvalidState) => Err(nb::Error::Other(SmoltcpError::ConnectionReset)),
        }
    }

    /// Frees the handle. A connection sends its queued data and a FIN and
    /// keeps its pool socket until it is closed (see the module docs); one
    /// with unread received data is reset. A listener resets the
    /// connections it has not handed out.
    fn close(&mut self, socket: SmolSocket) -> Result<(), SmoltcpError> {
        let index = self.index(&socket)?;
        match self.state(index) {
            HandleState::Free | HandleState::Unbound | HandleState::Bound(_) => {}
            HandleState::Listening(_) => {
                let tag = u16::try_from(index).ok();
                for i in 0..N {
                    let armed = matches!(
                        (self.role(i), tag),
                        (Some(Role::Armed { listener, .. }), Some(tag)) if listener == tag
                    );
                    if !armed {
                        continue;
                    }
                    if let Some(s) = self.tcp(i) {
                        if s.state() == State::Listen {
                            s.close();
                        } else {
                            s.abort();
                        }
                    }
                    self.set_role(i, Role::Free);
                }
            }
            HandleState::Connecting(i) => {
                let i = usize::from(i);
                if let Some(s) = self.tcp(i) {
                    s.abort();
                }
                self.set_role(i, Role::Free);
            }
            HandleState::Connected(i) => {
                let i = usize::from(i);
                let deadline = self.now + self.config.close_timeout;
                let queued = match self.tcp(i) {
                    Some(s) if s.recv_queue() > 0 => {
                        s.abort();
                        0
                    }
                    Some(s) => {
                        s.close();
                        s.send_queue()
                    }
                    None => 0,
                };
                // `maintain` frees it once CLOSED or TIME-WAIT.
                self.set_role(i, Role::Closing { deadline, queued });
            }
        }
        self.free_handle(index);
        Ok(())
    }
}

impl<'a, const N: usize> TcpFullStack for SmoltcpStack<'a, N> {
    /// Binds all local addresses on `local_port` (0: an ephemeral port).
    fn bind(&mut self, socket: &mut SmolSocket, local_port: u16) -> Result<(), SmoltcpError> {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), local_port);
        self.bind_addr(socket, any)
    }

    /// Arms [`super::StackConfig::backlog`] pool sockets in LISTEN (at
    /// least one, else [`SmoltcpError::NoSocket`]); a no-op for a
    /// listening socket.
    fn listen(&mut self, socket: &mut SmolSocket) -> Result<(), SmoltcpError> {
        let index = self.index(socket)?;
        match self.state(index) {
            HandleState::Listening(_) => Ok(()),
            HandleState::Bound(local) => {
                self.set_state(index, HandleState::Listening(local));
                if self.top_up(index, 0, 0) == 0 {
                    self.set_state(index, HandleState::Bound(local));
                    return Err(SmoltcpError::NoSocket);
                }
                Ok(())
            }
            _ => Err(SmoltcpError::InvalidState),
        }
    }

    /// Hands out an established connection (and the peer's address) and
    /// arms another pool socket in LISTEN in its place; `WouldBlock` when
    /// none is established yet.
    fn accept(
        &mut self,
        socket: &mut SmolSocket,
    ) -> nb::Result<(SmolSocket, SocketAddr), SmoltcpError> {
        let index = self.index(socket)?;
        if !matches!(self.state(index), HandleState::Listening(_)) {
            return Err(nb::Error::Other(SmoltcpError::InvalidState));
        }
        let tag = u16::try_from(index).map_err(|_| SmoltcpError::InvalidHandle)?;
        let mut found = None;
        for i in 0..N {
            let armed =
                matches!(self.role(i), Some(Role::Armed { listener, .. }) if listener == tag);
            // A client may send and close before it is accepted.
            if armed && matches!(self.tcp_state(i), State::Established | State::CloseWait) {
                found = Some(i);
                break;
            }
        }
        let Some(i) = found else {
            return Err(nb::Error::WouldBlock);
        };
        let peer = self
            .tcp(i)
            .and_then(|s| s.remote_endpoint())
            .map(to_socket_addr)
            .ok_or(SmoltcpError::InvalidState)?;
        let pool_index = u16::try_from(i).map_err(|_| SmoltcpError::NoSocket)?;
        let handle = self.new_handle(HandleState::Connected(pool_index))?;
        self.set_role(i, Role::Owned);
        let (listening, pending) = self.listener_counts(tag);
        self.top_up(index, listening, pending);
        Ok((handle, unmap_addr(peer)))
    }
}

impl<'a, const N: usize> TcpLocalAddr for SmoltcpStack<'a, N> {
    /// Reserves `local` (an address of the interface, or unspecified for
    /// all; an IPv4-mapped address counts as IPv4; port 0 picks an
    /// ephemeral port) for a later `listen`. Another listener on the same
    /// port and an overlapping address is [`SmoltcpError::AddrInUse`].
    fn bind_addr(
        &mut self,
        socket: &mut SmolSocket,
        local: SocketAddr,
    ) -> Result<(), SmoltcpError> {
        let index = self.index(socket)?;
        if self.state(index) != HandleState::Unbound {
            return Err(SmoltcpError::InvalidState);
        }
        let local = unmap_addr(local);
        let ip = local.ip();
        if !ip.is_unspecified() {
            to_smol(ip)?;
            if !self.is_local(ip) {
                return Err(SmoltcpError::AddrNotAvailable);
            }
        }
        let port = match local.port() {
            0 => self.ephemeral_port()?,
            port if self.port_taken(ip, port, false) => return Err(SmoltcpError::AddrInUse),
            port => port,
        };
        self.set_state(index, HandleState::Bound(SocketAddr::new(ip, port)));
        Ok(())
    }

    /// The bound address of a listener; the concrete local address and
    /// port of a connection (the address the peer reached).
    fn local_addr(&mut self, socket: &SmolSocket) -> Result<SocketAddr, SmoltcpError> {
        let index = self.index(socket)?;
        match self.state(index) {
            HandleState::Bound(local) | HandleState::Listening(local) => Ok(local),
            HandleState::Connecting(i) | HandleState::Connected(i) => self
                .tcp(usize::from(i))
                .and_then(|s| s.local_endpoint())
                .map(|e| unmap_addr(to_socket_addr(e)))
                .ok_or(SmoltcpError::NotConnected),
            HandleState::Free | HandleState::Unbound => Err(SmoltcpError::InvalidState),
        }
    }
}

/// No TLS on this stack itself; `ferry-tls` wraps it.
impl<'a, const N: usize> crate::SecureStack for SmoltcpStack<'a, N> {}

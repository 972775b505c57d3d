//! Ferry's network seam.
//!
//! The engine speaks to any TCP/IP stack through `embedded-nal`'s
//! [`TcpFullStack`], plus the one thing embedded-nal cannot express and FTP
//! needs: [`TcpLocalAddr`] — bind a listener to one local address, and ask a
//! connected socket which local address the peer reached (a `PASV` reply
//! names it). Time comes from a [`Clock`].
//!
//! Adapters behind features:
//! - `std`: [`std_stack::StdStack`], host sockets with readiness waiting.
//! - `smoltcp`: [`smoltcp_stack::SmoltcpStack`], the embedded TCP/IP stack
//!   (`no_std`, no `alloc`); `smoltcp-ipv6` adds IPv6 addresses.
//! - `w5500`: [`w5500_stack::W5500Stack`], the WIZnet W5500's TCP/IP in
//!   the chip, over SPI (`no_std`, no `alloc`, IPv4).
//! - `w5500-emulator`: `w5500_emulator::W5500Emulator`, that chip emulated
//!   over host sockets, to run the `w5500` adapter on a PC.
#![no_std]
// Exceptions, allowed where they are (std_stack.rs): Linux's
// SO_ATTACH_REUSEPORT_CBPF, a setsockopt that socket2 does not wrap, and
// sendfile(2), splice(2) and pipe2(2), which std does not.
#![deny(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod std_stack;

#[cfg(feature = "smoltcp")]
pub mod smoltcp_stack;

#[cfg(feature = "w5500")]
pub mod w5500_stack;

/// A W5500 emulated over host sockets (tests, host-w5500).
#[cfg(feature = "w5500-emulator")]
pub mod w5500_emulator;

pub use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
pub use embedded_nal;
pub use embedded_nal::nb;
pub use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind, TcpFullStack};

/// The extension of [`TcpFullStack`] that an FTP server needs.
///
/// # For stack porters
///
/// - [`TcpLocalAddr::bind_addr`] is [`TcpFullStack::bind`] restricted to one
///   local address (`0.0.0.0`/`::` meaning any). Return an error whose
///   `kind()` is `Other` when the port is taken: the engine then tries the
///   next port of the passive range.
/// - [`TcpLocalAddr::local_addr`] returns the local address and port of a
///   connected or bound socket. For a connection that arrived on a listener
///   bound to "any", it is the concrete address the peer connected to.
///
/// A stack with one address can return that address and ignore the address
/// given to `bind_addr` (other than checking it is its own or unspecified).
pub trait TcpLocalAddr: TcpFullStack {
    /// Binds `socket` to `local` (address and port) for a later `listen`.
    fn bind_addr(
        &mut self,
        socket: &mut Self::TcpSocket,
        local: SocketAddr,
    ) -> Result<(), Self::Error>;
    /// The local address of a bound or connected socket.
    fn local_addr(&mut self, socket: &Self::TcpSocket) -> Result<SocketAddr, Self::Error>;
}

/// A stack used through a mutable reference: a board's stack lives in a
/// `static` it holds as `&'static mut`, and a layer that owns the stack it
/// wraps (ferry-tls's `TlsStack`) takes `Borrowed(stack)`. Every call goes
/// to the stack as it is (embedded-nal implements `TcpClientStack` for
/// `&mut S`, but not `TcpFullStack`).
#[derive(Debug)]
pub struct Borrowed<'a, S>(pub &'a mut S);

impl<S: TcpClientStack> TcpClientStack for Borrowed<'_, S> {
    type TcpSocket = S::TcpSocket;
    type Error = S::Error;

    fn socket(&mut self) -> Result<Self::TcpSocket, Self::Error> {
        self.0.socket()
    }
    fn connect(
        &mut self,
        socket: &mut Self::TcpSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), Self::Error> {
        self.0.connect(socket, remote)
    }
    fn send(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &[u8],
    ) -> nb::Result<usize, Self::Error> {
        self.0.send(socket, buffer)
    }
    fn receive(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        self.0.receive(socket, buffer)
    }
    fn close(&mut self, socket: Self::TcpSocket) -> Result<(), Self::Error> {
        self.0.close(socket)
    }
}

impl<S: TcpFullStack> TcpFullStack for Borrowed<'_, S> {
    fn bind(&mut self, socket: &mut Self::TcpSocket, local_port: u16) -> Result<(), Self::Error> {
        self.0.bind(socket, local_port)
    }
    fn listen(&mut self, socket: &mut Self::TcpSocket) -> Result<(), Self::Error> {
        self.0.listen(socket)
    }
    fn accept(
        &mut self,
        socket: &mut Self::TcpSocket,
    ) -> nb::Result<(Self::TcpSocket, SocketAddr), Self::Error> {
        self.0.accept(socket)
    }
}

impl<S: TcpLocalAddr> TcpLocalAddr for Borrowed<'_, S> {
    fn bind_addr(
        &mut self,
        socket: &mut Self::TcpSocket,
        local: SocketAddr,
    ) -> Result<(), Self::Error> {
        self.0.bind_addr(socket, local)
    }
    fn local_addr(&mut self, socket: &Self::TcpSocket) -> Result<SocketAddr, Self::Error> {
        self.0.local_addr(socket)
    }
}

impl<S: SecureStack> SecureStack for Borrowed<'_, S> {
    fn tls_available(&self) -> bool {
        self.0.tls_available()
    }
    fn start_tls(
        &mut self,
        socket: &mut Self::TcpSocket,
        control: Option<&Self::TcpSocket>,
    ) -> Result<(), TlsError> {
        self.0.start_tls(socket, control)
    }
    fn is_tls(&self, socket: &Self::TcpSocket) -> bool {
        self.0.is_tls(socket)
    }
    fn send_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, Self::Error>> {
        self.0.send_file(socket, file, len)
    }
    fn receive_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, FileError<Self::Error>>> {
        self.0.receive_file(socket, file, len)
    }
}

/// Why [`SecureStack::start_tls`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsError {
    /// This stack has no TLS (no security layer, or no certificate).
    Unavailable,
    /// The socket is unknown or not connected.
    NotConnected,
}

/// The security layer the engine calls for FTPS (RFC 4217): TLS on control
/// and data connections, kept out of the engine itself.
///
/// Every method has a default for stacks without TLS, so a plain stack only
/// writes `impl SecureStack for MyStack {}`. A TLS layer (`ferry-tls`) wraps
/// a plain stack and implements this trait for real: after
/// [`SecureStack::start_tls`], `send` and `receive` on that socket carry
/// plaintext through TLS (returning `WouldBlock` while the handshake runs),
/// and `close` sends `close_notify` first.
pub trait SecureStack: TcpLocalAddr {
    /// Whether [`SecureStack::start_tls`] can succeed (FEAT then lists
    /// `AUTH TLS`, `PBSZ` and `PROT`).
    fn tls_available(&self) -> bool {
        false
    }
    /// Starts a server-side TLS handshake on a connected socket. For a data
    /// connection, `control` is its session's control connection, whose TLS
    /// session the data connection may (or, by the layer's policy, must)
    /// resume.
    fn start_tls(
        &mut self,
        socket: &mut Self::TcpSocket,
        control: Option<&Self::TcpSocket>,
    ) -> Result<(), TlsError> {
        let _ = (socket, control);
        Err(TlsError::Unavailable)
    }
    /// Whether traffic on `socket` goes through TLS (started by
    /// [`SecureStack::start_tls`], or at accept on an implicit-TLS listener).
    fn is_tls(&self, socket: &Self::TcpSocket) -> bool {
        let _ = socket;
        false
    }
    /// Sends up to `len` bytes of the operating system's open file `file`,
    /// from its position, which moves past what went, on `socket` without
    /// copying them through the caller (zero-copy: Linux `sendfile`);
    /// `Ok(0)` at the file's end. `None`: this stack, or this socket (one
    /// carrying TLS), cannot; the caller copies as usual.
    fn send_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, Self::Error>> {
        let _ = (socket, file, len);
        None
    }
    /// Writes up to `len` bytes that have arrived on `socket` to the
    /// operating system's open file `file`, at its position, which moves
    /// past them, without copying them through the caller (Linux
    /// `splice`). Like [`TcpClientStack::receive`]: `WouldBlock` when
    /// nothing has arrived, `Ok(0)` when the peer closed its sending side.
    /// Every byte taken from the connection is in the file when it returns
    /// `Ok`; a [`FileError::Storage`] loses what the file did not take.
    /// `None`: this stack, or this socket, cannot, and nothing was done.
    fn receive_file(
        &mut self,
        socket: &mut Self::TcpSocket,
        file: OsFile,
        len: usize,
    ) -> Option<nb::Result<usize, FileError<Self::Error>>> {
        let _ = (socket, file, len);
        None
    }
}

/// Why a [`SecureStack::receive_file`] failed: the connection or the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError<E> {
    /// The connection failed, as [`TcpClientStack::receive`] reports it.
    Net(E),
    /// Writing the file failed; `no_space`: the storage is full.
    Storage {
        /// The storage has no room left (or the quota is used up).
        no_space: bool,
    },
}

impl<E> FileError<E> {
    /// The same failure with the connection's error mapped by `f`.
    pub fn map_net<E2>(self, f: impl FnOnce(E) -> E2) -> FileError<E2> {
        match self {
            FileError::Net(e) => FileError::Net(f(e)),
            FileError::Storage { no_space } => FileError::Storage { no_space },
        }
    }
}

/// An open file of the host's operating system, by its descriptor, lent
/// to [`SecureStack::send_file`] or [`SecureStack::receive_file`] for one
/// call by the storage that opened it (`ferry_fs::FileSystem::os_file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsFile(pub i32);

/// Milliseconds on a monotonic clock (the origin is arbitrary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// This instant plus `ms` milliseconds (saturating).
    pub const fn add_millis(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }
    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn millis_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Time for the engine: monotonic for timeouts, wall clock for listings.
pub trait Clock {
    /// The monotonic time now.
    fn now(&self) -> Instant;
    /// Seconds since 1970-01-01 UTC, if the device knows the date.
    fn unix_time(&self) -> Option<u64>;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn unix_time(&self) -> Option<u64> {
        (**self).unix_time()
    }
}

/// Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) into plain IPv4;
/// other addresses are returned unchanged.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmap_turns_mapped_v6_into_v4() {
        let mapped: IpAddr = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(unmap(mapped), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(unmap(v6), v6);
    }
}

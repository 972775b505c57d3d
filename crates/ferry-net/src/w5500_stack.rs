//! The WIZnet W5500 as an `embedded-nal` stack for a TCP server:
//! [`W5500Stack`] implements [`TcpFullStack`](crate::TcpFullStack) and
//! Ferry's [`TcpLocalAddr`](crate::TcpLocalAddr) over the chip's eight
//! hardware sockets, with no heap and no `std`.
//!
//! The W5500 runs TCP/IP itself (retransmission, windows, the handshake);
//! the microcontroller talks to it over SPI through registers. This adapter
//! uses `w5500-ll`'s [`Registers`] trait for that register access, so any
//! SPI setup `w5500-ll` supports works (`w5500_ll::eh1::vdm::W5500` over an
//! `embedded-hal` 1.0 `SpiDevice` on a board; `w5500_emulator` on a PC).
//! It does not use `w5500-hl`: its `tcp_listen` refuses two sockets on one
//! port (in debug builds), and a listen backlog needs exactly that.
//!
//! # What the chip lacks, and how this adapter fills it
//!
//! A hardware socket in LISTEN becomes the connection when a SYN arrives:
//! there is no accept queue, and a SYN that finds no socket listening is
//! reset. So a listening handle here keeps up to [`W5500Config::backlog`]
//! free hardware sockets in LISTEN on its port (at least one), and every
//! [`accept`](crate::TcpFullStack::accept) and [`W5500Stack::poll`] arms
//! another one in place of a socket that became a connection. Eight
//! sockets are few: see [`W5500Config`] for an FTP server's budget.
//!
//! # Contract (the same as the other adapters')
//!
//! - Nothing blocks: what cannot complete now returns
//!   [`nb::Error::WouldBlock`]. The chip works by itself; the board loop
//!   calls [`W5500Stack::poll`] (re-arms listeners, finishes closes), then
//!   the engine's `Server::poll`, then sleeps until the engine's deadline,
//!   a millisecond tick, or the chip's INTn pin.
//! - `connect` starts the connection on its first call (from an ephemeral
//!   port of [`W5500Config::ephemeral_ports`]) and returns `WouldBlock`
//!   until it is established; a refused or timed-out attempt is
//!   [`W5500Error::ConnectionRefused`] and the handle is unbound again.
//! - `receive` returning `Ok(0)` (for a non-empty buffer) means the peer
//!   closed its sending side and everything it sent has been read; a reset
//!   or timed-out connection is [`W5500Error::ConnectionReset`] (kind
//!   `PipeClosed`).
//! - `send` copies what fits in the socket's transmit buffer and issues one
//!   SEND; the next `send` returns `WouldBlock` until the chip reports that
//!   SEND done (SEND_OK), as WIZnet's own driver does.
//! - `close` of a connection sends a FIN once the chip has sent the queued
//!   data: the hardware socket stays taken until the connection is closed
//!   or [`W5500Config::close_timeout_ms`] has passed. Closing with unread
//!   received data closes the socket at once. Closing a listener closes
//!   its not yet accepted connections.
//! - A [`W5500Socket`] is a handle (index and generation): neither `Clone`
//!   nor `Copy`; a stale handle is [`W5500Error::InvalidHandle`], never a
//!   panic.
//! - IPv4 only (the chip has no IPv6): an IPv6 address is
//!   [`W5500Error::Unsupported`]; `::ffff:a.b.c.d` is taken as IPv4.
//!
//! # Memory
//!
//! 344 bytes on thumbv7em with the register access (`size_of` of the stack
//! with `w5500_ll::eh1::vdm::W5500` over an SPI device): 24 bytes per
//! hardware socket, 6 per handle table entry, the config. Socket buffers
//! are in the chip: 2 KiB to send and 2 KiB to receive per socket (its
//! 32 KiB split evenly).

use core::fmt;

use w5500_ll::net::Eui48Addr;
use w5500_ll::{
    BufferSize, LinkStatus, Mode, Protocol, Registers, Sn, SocketCommand, SocketInterrupt,
    SocketMode, SocketStatus, SOCKETS,
};

use crate::{
    nb, unmap, Instant, IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpClientStack, TcpError,
    TcpErrorKind, TcpFullStack, TcpLocalAddr,
};

/// Hardware sockets of the chip.
const HW_SOCKETS: usize = 8;
/// Entries of the handle table: more than the hardware sockets, because a
/// bound or listening handle owns none until it listens, and a listener
/// and its connections are separate handles.
const HANDLES: usize = 16;
/// Each socket's transmit and receive buffer, in bytes.
const BUFFER_BYTES: u16 = 2048;
/// Status reads allowed for a socket command's state change (the chip
/// takes commands within a few SPI transactions).
const SETTLE_READS: usize = 256;
/// MR reads allowed for the soft reset to finish: tens of milliseconds at
/// any SPI clock.
const RESET_READS: usize = 20_000;

/// Settings of a [`W5500Stack`]; plain data.
///
/// Socket budget of an FTP server on eight hardware sockets: the control
/// listener keeps `backlog` in LISTEN, each session holds its control
/// connection, and a passive transfer briefly `backlog` more in LISTEN
/// (the engine closes the listener once the data connection arrives) and
/// then the data connection. A closing connection holds its socket until
/// its FIN is answered. With `backlog` 2, two sessions transferring take
/// 2 + 2 × 2 sockets: configure the engine for at most two or three
/// sessions. A listener arms fewer than `backlog` when sockets are short,
/// but at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct W5500Config {
    /// The chip's MAC address (SHAR).
    pub mac: [u8; 6],
    /// The chip's IPv4 address (SIPR).
    pub ip: Ipv4Addr,
    /// Subnet mask (SUBR).
    pub subnet: Ipv4Addr,
    /// Default gateway (GAR); `0.0.0.0` for none.
    pub gateway: Ipv4Addr,
    /// Hardware sockets kept in LISTEN per listening handle (at least 1).
    pub backlog: u8,
    /// The inclusive range of local ports for `connect` (active-mode data).
    pub ephemeral_ports: (u16, u16),
    /// How long a closing connection may take to finish its FIN handshake
    /// before its socket is closed hard, in milliseconds.
    pub close_timeout_ms: u64,
    /// The chip's retransmission timeout (RTR), in units of 100 µs.
    pub retry_time: u16,
    /// The chip's retransmission count (RCR) before a connection times out.
    pub retry_count: u8,
}

impl Default for W5500Config {
    /// `192.168.1.2/24`, no gateway, a locally administered MAC; backlog 2;
    /// ports 49152–65535; close timeout 10 s; the chip's reset values for
    /// retries (200 ms, 8 times).
    fn default() -> Self {
        W5500Config {
            mac: [0x02, 0x00, 0x00, 0x00, 0x55, 0x00],
            ip: Ipv4Addr::new(192, 168, 1, 2),
            subnet: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            backlog: 2,
            ephemeral_ports: (49152, 65535),
            close_timeout_ms: 10_000,
            retry_time: 2000,
            retry_count: 8,
        }
    }
}

/// Errors of a [`W5500Stack`]; `E` is the register access's (SPI) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum W5500Error<E> {
    /// The register access (SPI) failed.
    Bus(E),
    /// No VERSIONR of 0x04: no W5500 answers (the value read is given).
    ChipNotFound(u8),
    /// The chip did not leave its soft reset, or a socket its command.
    Timeout,
    /// All eight hardware sockets are taken.
    NoSocket,
    /// The handle table is full.
    NoHandle,
    /// The handle is unknown (closed, or never issued).
    InvalidHandle,
    /// The operation is not allowed in the socket's state.
    InvalidState,
    /// Another handle is bound to this port.
    AddrInUse,
    /// The address is not the chip's.
    AddrNotAvailable,
    /// No ephemeral port is free.
    NoPort,
    /// IPv6: the chip has IPv4 only.
    Unsupported,
    /// The connection attempt was refused or timed out.
    ConnectionRefused,
    /// The connection was reset or timed out.
    ConnectionReset,
    /// The socket is not connected.
    NotConnected,
}

impl<E> From<E> for W5500Error<E> {
    fn from(e: E) -> Self {
        W5500Error::Bus(e)
    }
}

impl<E: fmt::Debug> fmt::Display for W5500Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            W5500Error::Bus(e) => write!(f, "register access failed: {e:?}"),
            W5500Error::ChipNotFound(v) => write!(f, "no W5500 (VERSIONR reads {v:#04x})"),
            W5500Error::Timeout => f.write_str("the chip did not take a command"),
            W5500Error::NoSocket => f.write_str("all hardware sockets are taken"),
            W5500Error::NoHandle => f.write_str("socket handle table full"),
            W5500Error::InvalidHandle => f.write_str("unknown socket handle"),
            W5500Error::InvalidState => f.write_str("operation not allowed in this socket state"),
            W5500Error::AddrInUse => f.write_str("address in use"),
            W5500Error::AddrNotAvailable => f.write_str("address not available"),
            W5500Error::NoPort => f.write_str("no free ephemeral port"),
            W5500Error::Unsupported => f.write_str("IPv6 is not supported by the W5500"),
            W5500Error::ConnectionRefused => f.write_str("connection refused"),
            W5500Error::ConnectionReset => f.write_str("connection reset"),
            W5500Error::NotConnected => f.write_str("not connected"),
        }
    }
}

impl<E: fmt::Debug> TcpError for W5500Error<E> {
    fn kind(&self) -> TcpErrorKind {
        match self {
            W5500Error::ConnectionReset | W5500Error::NotConnected => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

/// A socket handle of a [`W5500Stack`].
#[derive(Debug, PartialEq, Eq)]
pub struct W5500Socket {
    index: u8,
    generation: u16,
}

/// What a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandleState {
    Free,
    Unbound,
    Bound(u16),
    Listening(u16),
    /// Connecting on a hardware socket.
    Connecting(u8),
    /// Connected on a hardware socket.
    Connected(u8),
}

#[derive(Debug, Clone, Copy)]
struct HandleSlot {
    generation: u16,
    state: HandleState,
}

/// What a hardware socket is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Free,
    /// In LISTEN (or connected, not yet accepted) for a listening handle.
    Armed {
        listener: u8,
    },
    /// A handle's connection (or connection attempt).
    Owned,
    /// Closed by its handle: the FIN goes out once the data has.
    Closing {
        deadline: Instant,
        fin_sent: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct HwSocket {
    role: Role,
    port: u16,
    /// A SEND was issued and its SEND_OK not yet seen.
    sending: bool,
}

/// The W5500 as a TCP stack for the engine (see the module docs).
pub struct W5500Stack<R: Registers> {
    chip: R,
    config: W5500Config,
    handles: [HandleSlot; HANDLES],
    hw: [HwSocket; HW_SOCKETS],
    next_port: u16,
    now: Instant,
}

impl<R: Registers> fmt::Debug for W5500Stack<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("W5500Stack")
            .field("config", &self.config)
            .field("hw", &self.hw)
            .finish_non_exhaustive()
    }
}

type Result<T, E> = core::result::Result<T, W5500Error<E>>;

fn sn(i: usize) -> Sn {
    SOCKETS[i % HW_SOCKETS]
}

impl<R: Registers> W5500Stack<R> {
    /// A stack on `chip` with `config`. Nothing is sent to the chip before
    /// [`W5500Stack::init`].
    pub fn new(chip: R, config: W5500Config) -> Self {
        W5500Stack {
            chip,
            config,
            handles: [HandleSlot {
                generation: 0,
                state: HandleState::Free,
            }; HANDLES],
            hw: [HwSocket {
                role: Role::Free,
                port: 0,
                sending: false,
            }; HW_SOCKETS],
            next_port: config.ephemeral_ports.0,
            now: Instant(0),
        }
    }

    /// Resets the chip (soft reset), checks that it is a W5500, and sets
    /// its addresses, retry timing and socket buffers from the config.
    pub fn init(&mut self) -> Result<(), R::Error> {
        // Before the reset: no chip (MISO floating high or low) is told
        // apart from a chip stuck in reset.
        let version = self.chip.version()?;
        if version != w5500_ll::VERSION {
            return Err(W5500Error::ChipNotFound(version));
        }
        self.chip.set_mr(Mode::DEFAULT.rst())?;
        let mut reset = false;
        for _ in 0..RESET_READS {
            if u8::from(self.chip.mr()?) & Mode::RST_MASK == 0 {
                reset = true;
                break;
            }
        }
        if !reset {
            return Err(W5500Error::Timeout);
        }
        let version = self.chip.version()?;
        if version != w5500_ll::VERSION {
            return Err(W5500Error::ChipNotFound(version));
        }
        let [a, b, c, d, e, f] = self.config.mac;
        self.chip.set_shar(&Eui48Addr::new(a, b, c, d, e, f))?;
        self.chip.set_sipr(&self.config.ip)?;
        self.chip.set_subr(&self.config.subnet)?;
        self.chip.set_gar(&self.config.gateway)?;
        self.chip.set_rtr(self.config.retry_time)?;
        self.chip.set_rcr(self.config.retry_count)?;
        for i in 0..HW_SOCKETS {
            self.chip.set_sn_rxbuf_size(sn(i), BufferSize::KB2)?;
            self.chip.set_sn_txbuf_size(sn(i), BufferSize::KB2)?;
            self.chip.set_sn_cr(sn(i), SocketCommand::Close)?;
            self.hw[i] = HwSocket {
                role: Role::Free,
                port: 0,
                sending: false,
            };
        }
        Ok(())
    }

    /// Whether the chip's PHY reports a link.
    pub fn link_up(&mut self) -> Result<bool, R::Error> {
        Ok(self.chip.phycfgr()?.lnk() == LinkStatus::Up)
    }

    /// The settings.
    pub fn config(&self) -> &W5500Config {
        &self.config
    }

    /// The register access, for what this adapter does not cover (the
    /// interrupt mask registers, for example).
    pub fn chip_mut(&mut self) -> &mut R {
        &mut self.chip
    }

    /// When [`W5500Stack::poll`] next has something to do without the chip
    /// saying so: the earliest close timeout. `None` when no connection is
    /// closing. (The chip's own events — a connection, data, a FIN — come
    /// through its INTn pin or the next poll.)
    pub fn poll_at(&self) -> Option<Instant> {
        self.hw
            .iter()
            .filter_map(|h| match h.role {
                Role::Closing { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Hardware sockets not in use.
    pub fn free_sockets(&self) -> usize {
        self.hw.iter().filter(|h| h.role == Role::Free).count()
    }

    /// Does the adapter's part of the work: re-arms listeners whose
    /// sockets became connections (or were reset before `accept`), sends
    /// the FIN of closed connections once their data is out, and frees
    /// sockets whose connection has closed or whose close timed out.
    /// Returns whether anything changed. Call it on every pass of the
    /// board loop with the time now.
    pub fn poll(&mut self, now: Instant) -> Result<bool, R::Error> {
        self.now = now;
        let mut changed = false;
        for i in 0..HW_SOCKETS {
            if let Role::Closing { .. } = self.hw[i].role {
                changed |= self.finish_close(i)?;
            }
        }
        for h in 0..HANDLES {
            if let HandleState::Listening(port) = self.handles[h].state {
                changed |= self.top_up(h, port)? > 0;
            }
        }
        Ok(changed)
    }

    fn status(&mut self, i: usize) -> Result<Option<SocketStatus>, R::Error> {
        Ok(self.chip.sn_sr(sn(i))?.ok())
    }

    /// A 16-bit register the chip may change between its two bytes: read
    /// until two reads agree (the datasheet's advice).
    fn stable(
        &mut self,
        i: usize,
        read: fn(&mut R, Sn) -> core::result::Result<u16, R::Error>,
    ) -> Result<u16, R::Error> {
        let mut last = read(&mut self.chip, sn(i))?;
        for _ in 0..4 {
            let next = read(&mut self.chip, sn(i))?;
            if next == last {
                return Ok(next);
            }
            last = next;
        }
        Ok(last)
    }

    /// Closes hardware socket `i` at once and frees it.
    fn release(&mut self, i: usize) -> Result<(), R::Error> {
        self.hw[i] = HwSocket {
            role: Role::Free,
            port: 0,
            sending: false,
        };
        self.chip.set_sn_cr(sn(i), SocketCommand::Close)?;
        Ok(())
    }

    /// Opens hardware socket `i` for TCP on `port` (status INIT).
    fn open(&mut self, i: usize, port: u16, role: Role) -> Result<(), R::Error> {
        let s = sn(i);
        self.chip.set_sn_cr(s, SocketCommand::Close)?;
        self.chip
            .set_sn_mr(s, SocketMode::DEFAULT.set_protocol(Protocol::Tcp))?;
        self.chip.set_sn_port(s, port)?;
        self.chip.set_sn_ir(s, 0xFFu8)?;
        self.chip.set_sn_cr(s, SocketCommand::Open)?;
        self.hw[i] = HwSocket {
            role,
            port,
            sending: false,
        };
        for _ in 0..SETTLE_READS {
            if self.status(i)? == Some(SocketStatus::Init) {
                return Ok(());
            }
        }
        self.release(i)?;
        Err(W5500Error::Timeout)
    }

    fn free_hw(&self) -> Option<usize> {
        self.hw.iter().position(|h| h.role == Role::Free)
    }

    /// Keeps up to `backlog` sockets of listener `h` in LISTEN on `port`
    /// (re-arming any that were reset before `accept`); returns how many
    /// it armed.
    fn top_up(&mut self, h: usize, port: u16) -> Result<usize, R::Error> {
        let tag = Role::Armed { listener: h as u8 };
        let mut listening = 0;
        for i in 0..HW_SOCKETS {
            if self.hw[i].role != tag {
                continue;
            }
            match self.status(i)? {
                Some(SocketStatus::Listen | SocketStatus::SynRecv) => listening += 1,
                // Reset before it was accepted: listen again.
                Some(SocketStatus::Closed) if self.arm(i, h, port).is_ok() => listening += 1,
                _ => {}
            }
        }
        let mut armed = 0;
        while listening < usize::from(self.config.backlog.max(1)) {
            let Some(i) = self.free_hw() else { break };
            match self.arm(i, h, port) {
                Ok(()) => {
                    listening += 1;
                    armed += 1;
                }
                Err(W5500Error::Timeout) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(armed)
    }

    fn arm(&mut self, i: usize, h: usize, port: u16) -> Result<(), R::Error> {
        self.open(i, port, Role::Armed { listener: h as u8 })?;
        self.chip.set_sn_cr(sn(i), SocketCommand::Listen)?;
        Ok(())
    }

    /// Moves a closing socket on: FIN once everything queued was sent,
    /// free once closed or timed out. Returns whether it changed.
    fn finish_close(&mut self, i: usize) -> Result<bool, R::Error> {
        let Role::Closing { deadline, fin_sent } = self.hw[i].role else {
            return Ok(false);
        };
        let status = self.status(i)?;
        if matches!(status, Some(SocketStatus::Closed | SocketStatus::TimeWait))
            || self.now >= deadline
        {
            self.release(i)?;
            return Ok(true);
        }
        if fin_sent
            || !matches!(
                status,
                Some(SocketStatus::Established | SocketStatus::CloseWait)
            )
        {
            return Ok(false);
        }
        if self.hw[i].sending && !self.send_done(i)? {
            return Ok(false);
        }
        if self.stable(i, R::sn_tx_fsr)? < BUFFER_BYTES {
            return Ok(false);
        }
        self.chip.set_sn_cr(sn(i), SocketCommand::Disconnect)?;
        self.hw[i].role = Role::Closing {
            deadline,
            fin_sent: true,
        };
        Ok(true)
    }

    /// Whether the last SEND of socket `i` is done (clearing its SEND_OK).
    fn send_done(&mut self, i: usize) -> Result<bool, R::Error> {
        let ir = self.chip.sn_ir(sn(i))?;
        if ir.sendok_raised() || ir.timeout_raised() {
            self.chip.set_sn_ir(sn(i), SocketInterrupt::SENDOK_MASK)?;
            self.hw[i].sending = false;
            return Ok(true);
        }
        Ok(false)
    }

    fn index(&self, socket: &W5500Socket) -> Result<usize, R::Error> {
        let i = usize::from(socket.index);
        match self.handles.get(i) {
            Some(slot)
                if slot.generation == socket.generation && slot.state != HandleState::Free =>
            {
                Ok(i)
            }
            _ => Err(W5500Error::InvalidHandle),
        }
    }

    fn new_handle(&mut self, state: HandleState) -> Result<W5500Socket, R::Error> {
        let i = self
            .handles
            .iter()
            .position(|h| h.state == HandleState::Free)
            .ok_or(W5500Error::NoHandle)?;
        let slot = &mut self.handles[i];
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = state;
        Ok(W5500Socket {
            index: i as u8,
            generation: slot.generation,
        })
    }

    fn port_taken(&self, port: u16) -> bool {
        let by_handle = self.handles.iter().any(
            |h| matches!(h.state, HandleState::Bound(p) | HandleState::Listening(p) if p == port),
        );
        by_handle
            || self
                .hw
                .iter()
                .any(|h| h.role != Role::Free && h.port == port)
    }

    fn ephemeral_port(&mut self) -> Result<u16, R::Error> {
        let (low, high) = self.config.ephemeral_ports;
        let span = u32::from(high.saturating_sub(low)) + 1;
        for _ in 0..span.min(4096) {
            let port = self.next_port.clamp(low, high);
            self.next_port = if port >= high { low } else { port + 1 };
            if port != 0 && !self.port_taken(port) {
                return Ok(port);
            }
        }
        Err(W5500Error::NoPort)
    }

    /// The hardware socket of a connected handle.
    fn connection(&self, index: usize) -> Result<usize, R::Error> {
        match self.handles[index].state {
            HandleState::Connected(i) => Ok(usize::from(i)),
            HandleState::Connecting(_) => Err(W5500Error::NotConnected),
            _ => Err(W5500Error::InvalidState),
        }
    }
}

fn v4(addr: SocketAddr) -> core::result::Result<SocketAddrV4, ()> {
    match (unmap(addr.ip()), addr.port()) {
        (IpAddr::V4(ip), port) => Ok(SocketAddrV4::new(ip, port)),
        _ => Err(()),
    }
}

impl<R: Registers> TcpClientStack for W5500Stack<R>
where
    R::Error: fmt::Debug,
{
    type TcpSocket = W5500Socket;
    type Error = W5500Error<R::Error>;

    /// A new, unbound handle (no hardware socket is taken until `connect`
    /// or `listen`). [`W5500Error::NoHandle`] when the table is full.
    fn socket(&mut self) -> Result<W5500Socket, R::Error> {
        self.new_handle(HandleState::Unbound)
    }

    /// Starts connecting on the first call (returning `WouldBlock`), then
    /// `WouldBlock` until established. A refused or timed-out attempt is
    /// [`W5500Error::ConnectionRefused`] and the handle is unbound again.
    fn connect(
        &mut self,
        socket: &mut W5500Socket,
        remote: SocketAddr,
    ) -> nb::Result<(), Self::Error> {
        let index = self.index(socket)?;
        let remote = v4(remote).map_err(|_| W5500Error::Unsupported)?;
        match self.handles[index].state {
            HandleState::Unbound => {
                let port = self.ephemeral_port()?;
                let i = self.free_hw().ok_or(W5500Error::NoSocket)?;
                self.open(i, port, Role::Owned)?;
                self.chip
                    .set_sn_dest(sn(i), &remote)
                    .map_err(W5500Error::Bus)?;
                self.chip
                    .set_sn_cr(sn(i), SocketCommand::Connect)
                    .map_err(W5500Error::Bus)?;
                self.handles[index].state = HandleState::Connecting(i as u8);
                Err(nb::Error::WouldBlock)
            }
            HandleState::Connecting(i) => {
                let i = usize::from(i);
                match self.status(i)? {
                    Some(SocketStatus::Established | SocketStatus::CloseWait) => {
                        self.handles[index].state = HandleState::Connected(i as u8);
                        Ok(())
                    }
                    Some(SocketStatus::Closed) => {
                        self.release(i)?;
                        self.handles[index].state = HandleState::Unbound;
                        Err(nb::Error::Other(W5500Error::ConnectionRefused))
                    }
                    _ => Err(nb::Error::WouldBlock),
                }
            }
            HandleState::Connected(_) => Ok(()),
            _ => Err(nb::Error::Other(W5500Error::InvalidState)),
        }
    }

    /// Copies what fits in the transmit buffer (maybe less than `buffer`)
    /// and issues a SEND; `WouldBlock` while the previous SEND runs or the
    /// buffer is full; [`W5500Error::ConnectionReset`] once the connection
    /// is gone.
    fn send(&mut self, socket: &mut W5500Socket, buffer: &[u8]) -> nb::Result<usize, Self::Error> {
        let index = self.index(socket)?;
        let i = self.connection(index)?;
        match self.status(i)? {
            Some(SocketStatus::Established | SocketStatus::CloseWait) => {}
            Some(SocketStatus::Closed) => {
                return Err(nb::Error::Other(W5500Error::ConnectionReset))
            }
            _ => return Err(nb::Error::WouldBlock),
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.hw[i].sending && !self.send_done(i)? {
            return Err(nb::Error::WouldBlock);
        }
        let free = self.stable(i, R::sn_tx_fsr)?;
        let n = usize::from(free).min(buffer.len());
        if n == 0 {
            return Err(nb::Error::WouldBlock);
        }
        let s = sn(i);
        let ptr = self.chip.sn_tx_wr(s).map_err(W5500Error::Bus)?;
        self.chip
            .set_sn_tx_buf(s, ptr, &buffer[..n])
            .map_err(W5500Error::Bus)?;
        // `n` fits: it is at most `free`, a u16.
        self.chip
            .set_sn_tx_wr(s, ptr.wrapping_add(n as u16))
            .map_err(W5500Error::Bus)?;
        self.chip
            .set_sn_cr(s, SocketCommand::Send)
            .map_err(W5500Error::Bus)?;
        self.hw[i].sending = true;
        Ok(n)
    }

    /// Reads what has arrived; `WouldBlock` when nothing has. `Ok(0)` (for
    /// a non-empty `buffer`) means the peer closed its sending side and
    /// everything it sent has been read.
    fn receive(
        &mut self,
        socket: &mut W5500Socket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        let index = self.index(socket)?;
        let i = self.connection(index)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        // The status first: data that arrives with a FIN after it is read
        // is found by the next call.
        let status = self.status(i)?;
        let queued = self.stable(i, R::sn_rx_rsr)?;
        if queued > 0 {
            let n = usize::from(queued).min(buffer.len());
            let s = sn(i);
            let ptr = self.chip.sn_rx_rd(s).map_err(W5500Error::Bus)?;
            self.chip
                .sn_rx_buf(s, ptr, &mut buffer[..n])
                .map_err(W5500Error::Bus)?;
            self.chip
                .set_sn_rx_rd(s, ptr.wrapping_add(n as u16))
                .map_err(W5500Error::Bus)?;
            self.chip
                .set_sn_cr(s, SocketCommand::Recv)
                .map_err(W5500Error::Bus)?;
            return Ok(n);
        }
        match status {
            Some(SocketStatus::CloseWait) => Ok(0),
            Some(SocketStatus::Closed) => Err(nb::Error::Other(W5500Error::ConnectionReset)),
            _ => Err(nb::Error::WouldBlock),
        }
    }

    /// Frees the handle. A connection sends its FIN after its queued data
    /// and keeps its hardware socket until closed (see the module docs);
    /// one with unread data is closed at once. A listener closes the
    /// connections it has not handed out.
    fn close(&mut self, socket: W5500Socket) -> Result<(), R::Error> {
        let index = self.index(&socket)?;
        match self.handles[index].state {
            HandleState::Free | HandleState::Unbound | HandleState::Bound(_) => {}
            HandleState::Listening(_) => {
                let tag = Role::Armed {
                    listener: index as u8,
                };
                for i in 0..HW_SOCKETS {
                    if self.hw[i].role == tag {
                        self.release(i)?;
                    }
                }
            }
            HandleState::Connecting(i) => self.release(usize::from(i))?,
            HandleState::Connected(i) => {
                let i = usize::from(i);
                if self.stable(i, R::sn_rx_rsr)? > 0 {
                    self.release(i)?;
                } else {
                    let deadline = self.now.add_millis(self.config.close_timeout_ms);
                    self.hw[i].role = Role::Closing {
                        deadline,
                        fin_sent: false,
                    };
                    self.finish_close(i)?;
                }
            }
        }
        self.handles[index].state = HandleState::Free;
        Ok(())
    }
}

impl<R: Registers> TcpFullStack for W5500Stack<R>
where
    R::Error: fmt::Debug,
{
    /// Binds `local_port` (0: an ephemeral port) on the chip's address.
    fn bind(&mut self, socket: &mut W5500Socket, local_port: u16) -> Result<(), R::Error> {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), local_port);
        self.bind_addr(socket, any)
    }

    /// Arms up to [`W5500Config::backlog`] hardware sockets in LISTEN (at
    /// least one, else [`W5500Error::NoSocket`]); a no-op for a listening
    /// handle.
    fn listen(&mut self, socket: &mut W5500Socket) -> Result<(), R::Error> {
        let index = self.index(socket)?;
        match self.handles[index].state {
            HandleState::Listening(_) => Ok(()),
            HandleState::Bound(port) => {
                if self.top_up(index, port)? == 0 {
                    return Err(W5500Error::NoSocket);
                }
                self.handles[index].state = HandleState::Listening(port);
                Ok(())
            }
            _ => Err(W5500Error::InvalidState),
        }
    }

    /// Hands out an established connection (and the peer's address) and
    /// arms another socket in LISTEN in its place; `WouldBlock` when none
    /// is established yet.
    fn accept(
        &mut self,
        socket: &mut W5500Socket,
    ) -> nb::Result<(W5500Socket, SocketAddr), Self::Error> {
        let index = self.index(socket)?;
        let HandleState::Listening(port) = self.handles[index].state else {
            return Err(nb::Error::Other(W5500Error::InvalidState));
        };
        let tag = Role::Armed {
            listener: index as u8,
        };
        let mut found = None;
        for i in 0..HW_SOCKETS {
            // A client may send and close before it is accepted.
            if self.hw[i].role == tag
                && matches!(
                    self.status(i)?,
                    Some(SocketStatus::Established | SocketStatus::CloseWait)
                )
            {
                found = Some(i);
                break;
            }
        }
        let Some(i) = found else {
            return Err(nb::Error::WouldBlock);
        };
        let peer = self.chip.sn_dest(sn(i)).map_err(W5500Error::Bus)?;
        let handle = self.new_handle(HandleState::Connected(i as u8))?;
        self.hw[i].role = Role::Owned;
        self.top_up(index, port)?;
        Ok((handle, SocketAddr::V4(peer)))
    }
}

impl<R: Registers> TcpLocalAddr for W5500Stack<R>
where
    R::Error: fmt::Debug,
{
    /// Reserves `local` (the chip's address or unspecified; port 0 picks an
    /// ephemeral port) for a later `listen`. A port another handle is
    /// bound to is [`W5500Error::AddrInUse`].
    fn bind_addr(&mut self, socket: &mut W5500Socket, local: SocketAddr) -> Result<(), R::Error> {
        let index = self.index(socket)?;
        if self.handles[index].state != HandleState::Unbound {
            return Err(W5500Error::InvalidState);
        }
        let local = v4(local).map_err(|_| W5500Error::Unsupported)?;
        if !local.ip().is_unspecified() && *local.ip() != self.config.ip {
            return Err(W5500Error::AddrNotAvailable);
        }
        let port = match local.port() {
            0 => self.ephemeral_port()?,
            port if self.port_taken(port) => return Err(W5500Error::AddrInUse),
            port => port,
        };
        self.handles[index].state = HandleState::Bound(port);
        Ok(())
    }

    /// The chip's address with the handle's local port.
    fn local_addr(&mut self, socket: &W5500Socket) -> Result<SocketAddr, R::Error> {
        let index = self.index(socket)?;
        let port = match self.handles[index].state {
            HandleState::Bound(port) | HandleState::Listening(port) => port,
            HandleState::Connecting(i) | HandleState::Connected(i) => self.hw[usize::from(i)].port,
            HandleState::Free | HandleState::Unbound => return Err(W5500Error::InvalidState),
        };
        Ok(SocketAddr::new(IpAddr::V4(self.config.ip), port))
    }
}

/// No TLS on this stack itself; `ferry-tls` could wrap it.
impl<R: Registers> crate::SecureStack for W5500Stack<R> where R::Error: fmt::Debug {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bus that reads zeros: enough for what needs no chip.
    struct Zeros;

    impl Registers for Zeros {
        type Error = ();
        fn read(&mut self, _: u16, _: u8, data: &mut [u8]) -> core::result::Result<(), ()> {
            data.fill(0);
            Ok(())
        }
        fn write(&mut self, _: u16, _: u8, _: &[u8]) -> core::result::Result<(), ()> {
            Ok(())
        }
    }

    #[test]
    fn stale_and_forged_handles_are_refused() {
        let mut stack = W5500Stack::new(Zeros, W5500Config::default());
        let first = stack.socket().unwrap();
        let copy = W5500Socket {
            index: first.index,
            generation: first.generation,
        };
        stack.close(first).unwrap();
        assert_eq!(stack.close(copy), Err(W5500Error::InvalidHandle));
        let forged = W5500Socket {
            index: 200,
            generation: 1,
        };
        assert_eq!(stack.close(forged), Err(W5500Error::InvalidHandle));
        // No chip answers: init says so instead of hanging.
        assert_eq!(stack.init(), Err(W5500Error::ChipNotFound(0)));
    }

    #[test]
    fn error_kinds() {
        let reset: W5500Error<()> = W5500Error::ConnectionReset;
        assert_eq!(reset.kind(), TcpErrorKind::PipeClosed);
        let in_use: W5500Error<()> = W5500Error::AddrInUse;
        assert_eq!(in_use.kind(), TcpErrorKind::Other);
    }

    #[test]
    fn ipv6_is_refused_and_mapped_v4_accepted() {
        let v6 = SocketAddr::new(IpAddr::V6(crate::Ipv6Addr::LOCALHOST), 21);
        assert!(v4(v6).is_err());
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()), 21);
        assert_eq!(
            v4(mapped),
            Ok(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 21))
        );
    }
}

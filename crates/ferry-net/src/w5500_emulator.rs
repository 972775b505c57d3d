//! A WIZnet W5500 emulated over host sockets, behind `w5500_ll::Registers`.
//!
//! [`W5500Emulator`](crate::w5500_emulator::W5500Emulator) answers register
//! reads and writes as the chip answers them on its SPI bus, and backs each
//! TCP socket with a non-blocking host socket (`std::net`), so a W5500
//! driver running on a PC serves real TCP clients — on loopback when the
//! driver sets SIPR to 127.0.0.1.
//!
//! # What is emulated
//!
//! - The common block: MR (`RST` resets the whole chip and self-clears),
//!   the address registers as plain storage, IR (write 1 to clear), SIR
//!   (socket `n` has an unmasked `Sn_IR` bit), PHYCFGR (link up, 100 Mbit/s,
//!   full duplex), VERSIONR (0x04). Reserved addresses read 0.
//! - Each socket's register block with the datasheet's read-only,
//!   write-1-to-clear and derived registers; `Sn_CR` reads 0 because a
//!   command is taken at once. Accesses may span registers (big-endian,
//!   auto-increment).
//! - Each socket's TX and RX buffer: an offset wraps modulo the socket's
//!   buffer size (0, 1, 2, 4, 8 or 16 KiB), also within one access.
//! - TCP (`Sn_MR` protocol TCP) with the commands OPEN, LISTEN, CONNECT,
//!   SEND, RECV, DISCON and CLOSE, and the interrupts CON, DISCON, RECV,
//!   TIMEOUT and SEND_OK in `Sn_IR`:
//!   - LISTEN: one host listener per port, bound to SIPR:`Sn_PORT`, exists
//!     while a socket LISTENs on that port; several sockets may (a
//!     backlog). A connection goes to the first of them that is pumped.
//!     With no socket left listening the listener closes, so the host
//!     refuses connections as the chip would reset them.
//!   - CONNECT: a non-blocking host connect from SIPR:`Sn_PORT` (from any
//!     port if the host refuses that one) to `Sn_DIPR`:`Sn_DPORT`; refused
//!     or not done within the chip's retransmission time (RTR, RCR):
//!     CLOSED and TIMEOUT.
//!   - SEND hands the bytes from `Sn_TX_RD` to `Sn_TX_WR` to the host, as
//!     fast as the kernel takes them; `Sn_TX_RD` follows, `Sn_TX_FSR` is the
//!     buffer size minus `Sn_TX_WR - Sn_TX_RD`.
//!   - Receiving fills the RX buffer up to the `Sn_RX_RD` of the last RECV
//!     and no further, so the peer's window closes when the driver stops
//!     reading.
//!   - The peer's FIN: CLOSE_WAIT and DISCON, received data stays readable.
//!     DISCON: FIN_WAIT (LAST_ACK from CLOSE_WAIT), our FIN once the queued
//!     bytes are out, then CLOSED (and DISCON) at the peer's FIN; data the
//!     peer sends after our DISCON is dropped. A reset or I/O error:
//!     CLOSED and DISCON.
//!
//! # What is not
//!
//! UDP and MACRAW (OPEN leaves such a socket CLOSED), the INTn pin and
//! INTLEVEL, ARP, ping, PPPoE and wake-on-LAN, timing (retransmission,
//! keep-alive, `Sn_KPALVTR`, SEND_KEEP), MSS, TTL, TOS and fragmentation
//! (plain storage), and the chip's shared 16 KiB of TX and of RX memory:
//! each socket has its own buffers, whatever the sizes add up to.
//!
//! # Pumping
//!
//! The chip works in the background; the emulator works when asked. Reading
//! a socket's `Sn_IR`, `Sn_SR`, `Sn_TX_FSR` or `Sn_RX_RSR` (alone or within
//! a longer read), and every `Sn_CR` command, first pumps that socket: it
//! accepts a connection, completes a connect, sends queued bytes, receives,
//! as its state calls for. Reading SIR pumps all eight. Every host call is
//! non-blocking, so a pump never waits; a socket nobody polls does no I/O,
//! which a driver cannot tell from a slow network.

use core::convert::Infallible;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::ops::Range;
use std::collections::btree_map::{BTreeMap, Entry};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

use w5500_ll::{
    BufferSize, Mode, PhyCfg, Protocol, Reg, Registers, SnReg, SocketCommand, SocketInterrupt,
    SocketMode, SocketStatus, COMMON_BLOCK_OFFSET, SOCKETS, VERSION,
};

/// Bytes of the common block that hold registers (MR at 0x00 to VERSIONR).
const COMMON_LEN: usize = 0x3A;
/// Bytes of a socket block that hold registers (`Sn_MR` to `Sn_KPALVTR`).
const SOCKET_REGS_LEN: usize = 0x30;
/// The largest TX or RX buffer of a socket (16 KiB).
const MAX_BUFFER: usize = 16 * 1024;
/// The socket registers whose read pumps the socket.
const PUMPING_REGS: [SnReg; 6] = [
    SnReg::IR,
    SnReg::SR,
    SnReg::TX_FSR0,
    SnReg::TX_FSR1,
    SnReg::RX_RSR0,
    SnReg::RX_RSR1,
];
/// How many reads of dropped data (after our FIN) one pump makes at most,
/// so that a peer sending without pause cannot hold a pump forever.
const MAX_DISCARD_READS: usize = 16;

/// A W5500 whose TCP sockets are host sockets.
///
/// Drive it through [`Registers`] as a driver drives the chip; the module
/// documentation says what is emulated and when the host I/O happens.
pub struct W5500Emulator {
    common: [u8; COMMON_LEN],
    sockets: [ChipSocket; SOCKETS.len()],
    /// The host listener of each port that a socket LISTENs on.
    listeners: BTreeMap<u16, TcpListener>,
    bus_accesses: u64,
}

impl W5500Emulator {
    /// A chip just out of power-on reset: every register at its reset value,
    /// every socket CLOSED.
    pub fn new() -> Self {
        let mut common = [0; COMMON_LEN];
        let mut set = |reg: Reg, value: u8| {
            if let Some(byte) = common.get_mut(usize::from(reg.addr())) {
                *byte = value;
            }
        };
        let [rtr_hi, rtr_lo] = 2000u16.to_be_bytes();
        set(Reg::RTR0, rtr_hi);
        set(Reg::RTR1, rtr_lo);
        set(Reg::RCR, 8);
        set(Reg::PTIMER, 0x28);
        set(Reg::PHYCFGR, PhyCfg::RESET);
        W5500Emulator {
            common,
            sockets: core::array::from_fn(|_| ChipSocket::new()),
            listeners: BTreeMap::new(),
            bus_accesses: 0,
        }
    }

    /// How many [`Registers::read`] and [`Registers::write`] calls (SPI
    /// transactions on a real chip) this emulator has served; a soft reset
    /// does not clear the count.
    pub fn bus_accesses(&self) -> u64 {
        self.bus_accesses
    }

    /// Soft reset (MR.RST): everything back to power-on values, host
    /// sockets and listeners closed.
    fn reset(&mut self) {
        let bus_accesses = self.bus_accesses;
        *self = W5500Emulator::new();
        self.bus_accesses = bus_accesses;
    }

    /// The value a driver reads from common register `addr`.
    fn common_reg(&self, addr: u16) -> u8 {
        let stored = self.common.get(usize::from(addr)).copied().unwrap_or(0);
        match Reg::try_from(addr) {
            Ok(Reg::SIR) => self
                .sockets
                .iter()
                .enumerate()
                .filter(|(_, socket)| socket.regs.get(SnReg::IR) & socket.regs.get(SnReg::IMR) != 0)
                .fold(0, |sir, (n, _)| sir | (1 << n)),
            // Out of PHY reset, link up, 100 Mbit/s, full duplex.
            Ok(Reg::PHYCFGR) => {
                (stored & (PhyCfg::OPMD_MASK | PhyCfg::OPMDC_MASK))
                    | PhyCfg::RST_MASK
                    | PhyCfg::DPX_MASK
                    | PhyCfg::SPD_MASK
                    | PhyCfg::LNK_MASK
            }
            Ok(Reg::VERSIONR) => VERSION,
            Ok(_) => stored,
            Err(_) => 0,
        }
    }

    /// A driver's write of `value` to common register `addr`.
    fn write_common_reg(&mut self, addr: u16, value: u8) {
        let Some(byte) = self.common.get_mut(usize::from(addr)) else {
            return;
        };
        match Reg::try_from(addr) {
            Ok(Reg::MR) if value & Mode::RST_MASK != 0 => self.reset(),
            Ok(Reg::IR) => *byte &= !value,
            Ok(Reg::SIR | Reg::UIPR0 | Reg::UIPR1 | Reg::UIPR2 | Reg::UIPR3)
            | Ok(Reg::UPORTR0 | Reg::UPORTR1 | Reg::VERSIONR)
            | Err(_) => {}
            Ok(_) => *byte = value,
        }
    }

    fn read_common(&mut self, addr: u16, data: &mut [u8]) {
        if covers(addr, data.len(), Reg::SIR.addr()) {
            for n in 0..self.sockets.len() {
                self.pump(n);
            }
        }
        for (addr, byte) in addresses(addr).zip(data.iter_mut()) {
            *byte = self.common_reg(addr);
        }
    }

    fn read_socket_regs(&mut self, n: usize, addr: u16, data: &mut [u8]) {
        if PUMPING_REGS
            .iter()
            .any(|reg| covers(addr, data.len(), reg.addr()))
        {
            self.pump(n);
        }
        let Some(socket) = self.sockets.get(n) else {
            return data.fill(0);
        };
        for (addr, byte) in addresses(addr).zip(data.iter_mut()) {
            *byte = SnReg::try_from(addr).map_or(0, |reg| socket.reg(reg));
        }
    }

    fn write_socket_regs(&mut self, n: usize, addr: u16, data: &[u8]) {
        for (addr, &value) in addresses(addr).zip(data) {
            match SnReg::try_from(addr) {
                Ok(SnReg::CR) => self.command(n, value),
                Ok(reg) => {
                    if let Some(socket) = self.sockets.get_mut(n) {
                        socket.write_reg(reg, value);
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// Executes the `Sn_CR` command `value` of socket `n`, then pumps it.
    fn command(&mut self, n: usize, value: u8) {
        let sipr = self.chip_ip();
        let timeout = self.retransmission_timeout();
        let Some(socket) = self.sockets.get_mut(n) else {
            return;
        };
        match SocketCommand::try_from(value) {
            Ok(SocketCommand::Open) => socket.open(),
            Ok(SocketCommand::Listen) => socket.listen(),
            Ok(SocketCommand::Connect) => socket.connect(sipr, timeout),
            Ok(SocketCommand::Disconnect) => socket.disconnect(),
            Ok(SocketCommand::Close) => socket.close(),
            Ok(SocketCommand::Send) => socket.send(),
            Ok(SocketCommand::Recv) => socket.recv(),
            // No command, UDP/MACRAW and keep-alive commands, unknown values.
            Ok(SocketCommand::Accepted | SocketCommand::SendMac | SocketCommand::SendKeep)
            | Err(_) => {}
        }
        self.pump(n);
    }

    /// Does the host I/O that socket `n`'s state calls for, then closes the
    /// listeners no socket listens on any more.
    fn pump(&mut self, n: usize) {
        let sipr = self.chip_ip();
        if let Some(socket) = self.sockets.get_mut(n) {
            match socket.regs.status() {
                SocketStatus::Listen => socket.accept(&mut self.listeners, sipr),
                SocketStatus::SynSent => socket.progress_connect(),
                SocketStatus::Established
                | SocketStatus::CloseWait
                | SocketStatus::FinWait
                | SocketStatus::LastAck => socket.exchange(),
                _ => {}
            }
        }
        let sockets = &self.sockets;
        self.listeners.retain(|&port, _| {
            sockets.iter().any(|socket| {
                socket.regs.status() == SocketStatus::Listen
                    && socket.regs.get16(SnReg::PORT0) == port
            })
        });
    }

    /// The chip's address (SIPR).
    fn chip_ip(&self) -> Ipv4Addr {
        let start = usize::from(Reg::SIPR0.addr());
        match self.common.get(start..start + 4) {
            Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
            _ => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// How long the chip retransmits before TIMEOUT: RTR (in 100 µs)
    /// doubles per retransmission while it fits 16 bits, RCR retransmissions
    /// (31.8 s at the reset values).
    fn retransmission_timeout(&self) -> Duration {
        let byte = |reg: Reg| u64::from(self.common_reg(reg.addr()));
        let mut rto = (byte(Reg::RTR0) << 8) | byte(Reg::RTR1);
        let mut total = 0;
        for _ in 0..=byte(Reg::RCR) {
            total += rto;
            if rto * 2 <= u64::from(u16::MAX) {
                rto *= 2;
            }
        }
        Duration::from_micros(total * 100)
    }
}

impl Default for W5500Emulator {
    fn default() -> Self {
        W5500Emulator::new()
    }
}

impl Registers for W5500Emulator {
    /// The emulated bus never fails.
    type Error = Infallible;

    fn read(&mut self, addr: u16, block: u8, data: &mut [u8]) -> Result<(), Infallible> {
        self.bus_accesses += 1;
        match Block::decode(block) {
            Some(Block::Common) => self.read_common(addr, data),
            Some(Block::SocketRegs(n)) => self.read_socket_regs(n, addr, data),
            Some(Block::Tx(n)) => match self.sockets.get(n) {
                Some(socket) => ring_read(&socket.tx, socket.regs.tx_size(), addr, data),
                None => data.fill(0),
            },
            Some(Block::Rx(n)) => match self.sockets.get(n) {
                Some(socket) => ring_read(&socket.rx, socket.regs.rx_size(), addr, data),
                None => data.fill(0),
            },
            None => data.fill(0),
        }
        Ok(())
    }

    fn write(&mut self, addr: u16, block: u8, data: &[u8]) -> Result<(), Infallible> {
        self.bus_accesses += 1;
        match Block::decode(block) {
            Some(Block::Common) => {
                for (addr, &value) in addresses(addr).zip(data) {
                    self.write_common_reg(addr, value);
                }
            }
            Some(Block::SocketRegs(n)) => self.write_socket_regs(n, addr, data),
            Some(Block::Tx(n)) => {
                if let Some(socket) = self.sockets.get_mut(n) {
                    let size = socket.regs.tx_size();
                    ring_write(&mut socket.tx, size, addr, data);
                }
            }
            Some(Block::Rx(n)) => {
                if let Some(socket) = self.sockets.get_mut(n) {
                    let size = socket.regs.rx_size();
                    ring_write(&mut socket.rx, size, addr, data);
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// What a block select value addresses.
enum Block {
    Common,
    SocketRegs(usize),
    Tx(usize),
    Rx(usize),
}

impl Block {
    /// The block that `block` selects; `None` for a reserved value.
    fn decode(block: u8) -> Option<Block> {
        if block == COMMON_BLOCK_OFFSET {
            return Some(Block::Common);
        }
        SOCKETS.iter().enumerate().find_map(|(n, sn)| {
            if block == sn.block() {
                Some(Block::SocketRegs(n))
            } else if block == sn.tx_block() {
                Some(Block::Tx(n))
            } else if block == sn.rx_block() {
                Some(Block::Rx(n))
            } else {
                None
            }
        })
    }
}

/// The addresses an access starting at `addr` auto-increments through.
fn addresses(addr: u16) -> impl Iterator<Item = u16> {
    core::iter::successors(Some(addr), |addr| Some(addr.wrapping_add(1)))
}

/// Whether an access of `len` bytes at `addr` includes address `reg`.
fn covers(addr: u16, len: usize, reg: u16) -> bool {
    usize::from(reg.wrapping_sub(addr)) < len
}

/// `ptr` advanced by `n` bytes, modulo 2^16 like the chip's pointers.
fn advance(ptr: u16, n: usize) -> u16 {
    ptr.wrapping_add(n as u16)
}

/// The memory of the first at most `len` bytes at buffer offset `ptr` that
/// lie contiguously before the buffer wraps (empty for a 0-byte buffer).
fn contiguous(ptr: u16, len: usize, size: u16) -> Range<usize> {
    let size = usize::from(size);
    match usize::from(ptr).checked_rem(size) {
        Some(start) => start..start + len.min(size - start),
        None => 0..0,
    }
}

/// Reads a buffer of `size` bytes at offset `ptr`, wrapping.
fn ring_read(memory: &[u8], size: u16, ptr: u16, out: &mut [u8]) {
    for (ptr, byte) in addresses(ptr).zip(out.iter_mut()) {
        let at = usize::from(ptr).checked_rem(usize::from(size));
        *byte = at.and_then(|at| memory.get(at)).copied().unwrap_or(0);
    }
}

/// Writes a buffer of `size` bytes at offset `ptr`, wrapping.
fn ring_write(memory: &mut [u8], size: u16, ptr: u16, data: &[u8]) {
    for (ptr, &value) in addresses(ptr).zip(data) {
        let at = usize::from(ptr).checked_rem(usize::from(size));
        if let Some(byte) = at.and_then(|at| memory.get_mut(at)) {
            *byte = value;
        }
    }
}

/// One socket's register block as the chip stores it (big-endian).
struct SocketRegs([u8; SOCKET_REGS_LEN]);

impl SocketRegs {
    fn new() -> Self {
        let mut regs = SocketRegs([0; SOCKET_REGS_LEN]);
        for reg in [
            SnReg::DHAR0,
            SnReg::DHAR1,
            SnReg::DHAR2,
            SnReg::DHAR3,
            SnReg::DHAR4,
            SnReg::DHAR5,
        ] {
            regs.set(reg, 0xFF);
        }
        regs.set(SnReg::TTL, 0x80);
        regs.set(SnReg::RXBUF_SIZE, BufferSize::KB2.into());
        regs.set(SnReg::TXBUF_SIZE, BufferSize::KB2.into());
        regs.set(SnReg::IMR, 0xFF);
        regs.set16(SnReg::FRAG0, 0x4000);
        regs
    }

    fn get(&self, reg: SnReg) -> u8 {
        self.0.get(usize::from(reg.addr())).copied().unwrap_or(0)
    }

    fn set(&mut self, reg: SnReg, value: u8) {
        if let Some(byte) = self.0.get_mut(usize::from(reg.addr())) {
            *byte = value;
        }
    }

    /// The 16-bit register whose high byte is `hi`.
    fn get16(&self, hi: SnReg) -> u16 {
        let start = usize::from(hi.addr());
        match self.0.get(start..start + 2) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => 0,
        }
    }

    fn set16(&mut self, hi: SnReg, value: u16) {
        let start = usize::from(hi.addr());
        if let Some(bytes) = self.0.get_mut(start..start + 2) {
            bytes.copy_from_slice(&value.to_be_bytes());
        }
    }

    fn status(&self) -> SocketStatus {
        SocketStatus::try_from(self.get(SnReg::SR)).unwrap_or_default()
    }

    fn set_status(&mut self, status: SocketStatus) {
        self.set(SnReg::SR, status.into());
    }

    /// Sets the `Sn_IR` bits of `mask`.
    fn raise(&mut self, mask: u8) {
        self.set(SnReg::IR, self.get(SnReg::IR) | mask);
    }

    fn tx_size(&self) -> u16 {
        buffer_bytes(self.get(SnReg::TXBUF_SIZE))
    }

    fn rx_size(&self) -> u16 {
        buffer_bytes(self.get(SnReg::RXBUF_SIZE))
    }
}

/// The bytes of a buffer of `kib` KiB (`Sn_TXBUF_SIZE`, `Sn_RXBUF_SIZE`).
fn buffer_bytes(kib: u8) -> u16 {
    BufferSize::try_from(kib).map_or(0, |size| size.size_in_bytes() as u16)
}

/// The host side of a socket.
enum Host {
    /// No host socket (CLOSED, INIT, LISTEN: the listener is shared).
    Idle,
    /// A host connect in progress (SYNSENT).
    Connecting {
        socket: socket2::Socket,
        deadline: Instant,
    },
    /// A connection (ESTABLISHED and the closing states).
    Stream(TcpStream),
}

/// One of the chip's eight sockets.
struct ChipSocket {
    regs: SocketRegs,
    tx: Vec<u8>,
    rx: Vec<u8>,
    host: Host,
    /// `Sn_TX_WR` at the last SEND: the bytes from `Sn_TX_RD` up to here go
    /// to the host.
    send_end: u16,
    /// `Sn_RX_RD` at the last RECV: the bytes from here to `Sn_RX_WR` are
    /// the driver's, the rest of the RX buffer is free.
    recv_start: u16,
    /// A SEND has bytes not yet handed to the host: SEND_OK is due.
    send_ok_due: bool,
    /// Our FIN is out (the host stream is shut down for writing).
    fin_sent: bool,
}

impl ChipSocket {
    fn new() -> Self {
        ChipSocket {
            regs: SocketRegs::new(),
            tx: vec![0; MAX_BUFFER],
            rx: vec![0; MAX_BUFFER],
            host: Host::Idle,
            send_end: 0,
            recv_start: 0,
            send_ok_due: false,
            fin_sent: false,
        }
    }

    /// The value a driver reads from `reg`.
    fn reg(&self, reg: SnReg) -> u8 {
        let [free_hi, free_lo] = self.tx_free().to_be_bytes();
        let [received_hi, received_lo] = self.received().to_be_bytes();
        match reg {
            SnReg::CR => 0,
            SnReg::TX_FSR0 => free_hi,
            SnReg::TX_FSR1 => free_lo,
            SnReg::RX_RSR0 => received_hi,
            SnReg::RX_RSR1 => received_lo,
            _ => self.regs.get(reg),
        }
    }

    /// A driver's write of `value` to `reg` (other than `Sn_CR`).
    fn write_reg(&mut self, reg: SnReg, value: u8) {
        match reg {
            SnReg::IR => self.regs.set(reg, self.regs.get(reg) & !value),
            SnReg::RXBUF_SIZE | SnReg::TXBUF_SIZE => {
                if BufferSize::try_from(value).is_ok() {
                    self.regs.set(reg, value);
                }
            }
            // Read-only: `SnReg::is_ro` also covers SR, TX_FSR, TX_RD and
            // RX_RSR, but not RX_WR.
            SnReg::CR | SnReg::RX_WR0 | SnReg::RX_WR1 => {}
            _ if reg.is_ro() => {}
            _ => self.regs.set(reg, value),
        }
    }

    /// `Sn_TX_FSR`: the buffer size minus the bytes written and not yet
    /// handed to the host.
    fn tx_free(&self) -> u16 {
        let used = self
            .regs
            .get16(SnReg::TX_WR0)
            .wrapping_sub(self.regs.get16(SnReg::TX_RD0));
        self.regs.tx_size().saturating_sub(used)
    }

    /// `Sn_RX_RSR`: the received bytes the driver has not RECV'd.
    fn received(&self) -> u16 {
        self.regs.get16(SnReg::RX_WR0).wrapping_sub(self.recv_start)
    }

    /// Bytes of past SENDs not yet handed to the host.
    fn queued(&self) -> usize {
        if self.regs.tx_size() == 0 {
            return 0;
        }
        usize::from(self.send_end.wrapping_sub(self.regs.get16(SnReg::TX_RD0)))
    }

    fn open(&mut self) {
        self.close();
        let mode = SocketMode::from(self.regs.get(SnReg::MR));
        if mode.protocol() != Ok(Protocol::Tcp) {
            return;
        }
        for pointer in [SnReg::TX_RD0, SnReg::TX_WR0, SnReg::RX_RD0, SnReg::RX_WR0] {
            self.regs.set16(pointer, 0);
        }
        self.send_end = 0;
        self.recv_start = 0;
        self.regs.set_status(SocketStatus::Init);
    }

    fn listen(&mut self) {
        if self.regs.status() == SocketStatus::Init {
            self.regs.set_status(SocketStatus::Listen);
        }
    }

    fn connect(&mut self, sipr: Ipv4Addr, timeout: Duration) {
        if self.regs.status() != SocketStatus::Init {
            return;
        }
        let start = usize::from(SnReg::DIPR0.addr());
        let ip = match self.regs.0.get(start..start + 4) {
            Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let remote = SocketAddrV4::new(ip, self.regs.get16(SnReg::DPORT0));
        let local = SocketAddrV4::new(sipr, self.regs.get16(SnReg::PORT0));
        let started = start_connect(Some(local), remote).or_else(|_| start_connect(None, remote));
        match started {
            Ok(socket) => {
                self.host = Host::Connecting {
                    socket,
                    deadline: Instant::now() + timeout,
                };
                self.regs.set_status(SocketStatus::SynSent);
            }
            Err(_) => {
                self.close();
                self.regs.raise(SocketInterrupt::TIMEOUT_MASK);
            }
        }
    }

    fn disconnect(&mut self) {
        match self.regs.status() {
            SocketStatus::Established => self.regs.set_status(SocketStatus::FinWait),
            SocketStatus::CloseWait => self.regs.set_status(SocketStatus::LastAck),
            _ => {}
        }
    }

    fn close(&mut self) {
        self.host = Host::Idle;
        self.send_ok_due = false;
        self.fin_sent = false;
        self.regs.set_status(SocketStatus::Closed);
    }

    fn send(&mut self) {
        if matches!(
            self.regs.status(),
            SocketStatus::Established | SocketStatus::CloseWait
        ) {
            self.send_end = self.regs.get16(SnReg::TX_WR0);
            self.send_ok_due = true;
        }
    }

    fn recv(&mut self) {
        self.recv_start = self.regs.get16(SnReg::RX_RD0);
    }

    /// Takes a connection from the host listener of this LISTEN socket's
    /// port, opening that listener first if needed.
    fn accept(&mut self, listeners: &mut BTreeMap<u16, TcpListener>, sipr: Ipv4Addr) {
        let port = self.regs.get16(SnReg::PORT0);
        let listener = match listeners.entry(port) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match open_listener(SocketAddrV4::new(sipr, port)) {
                Ok(listener) => entry.insert(listener),
                // The host refuses the address; a later pump tries again.
                Err(_) => return,
            },
        };
        let Ok((stream, SocketAddr::V4(peer))) = listener.accept() else {
            return;
        };
        if stream.set_nonblocking(true).is_err() {
            return; // Dropped: the peer sees a reset.
        }
        // The chip sends a segment per SEND, without Nagle's delay.
        let _ = stream.set_nodelay(true);
        let start = usize::from(SnReg::DIPR0.addr());
        if let Some(dipr) = self.regs.0.get_mut(start..start + 4) {
            dipr.copy_from_slice(&peer.ip().octets());
        }
        self.regs.set16(SnReg::DPORT0, peer.port());
        self.host = Host::Stream(stream);
        self.regs.set_status(SocketStatus::Established);
        self.regs.raise(SocketInterrupt::CON_MASK);
    }

    /// Completes or fails the host connect of a SYNSENT socket.
    fn progress_connect(&mut self) {
        let Host::Connecting { socket, deadline } = &self.host else {
            return;
        };
        let connected = match socket.take_error() {
            Ok(None) => match socket.peer_addr() {
                Ok(_) => Some(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    (Instant::now() >= *deadline).then_some(false)
                }
                Err(_) => Some(false),
            },
            Ok(Some(_)) | Err(_) => Some(false),
        };
        match connected {
            Some(true) => {
                let Host::Connecting { socket, .. } =
                    core::mem::replace(&mut self.host, Host::Idle)
                else {
                    return;
                };
                let stream = TcpStream::from(socket);
                let _ = stream.set_nodelay(true);
                self.host = Host::Stream(stream);
                self.regs.set_status(SocketStatus::Established);
                self.regs.raise(SocketInterrupt::CON_MASK);
            }
            Some(false) => {
                self.close();
                self.regs.raise(SocketInterrupt::TIMEOUT_MASK);
            }
            None => {}
        }
    }

    /// The I/O of a connection: send, receive, close.
    fn exchange(&mut self) {
        if self.try_exchange().is_err() {
            self.close();
            self.regs.raise(SocketInterrupt::DISCON_MASK);
        }
    }

    fn try_exchange(&mut self) -> io::Result<()> {
        self.transmit()?;
        // CLOSE_WAIT only transmits: the peer sends no more.
        let status = self.regs.status();
        if status == SocketStatus::Established && self.receive()? {
            self.regs.set_status(SocketStatus::CloseWait);
            self.regs.raise(SocketInterrupt::DISCON_MASK);
        }
        if status == SocketStatus::FinWait {
            if !self.fin_sent && self.queued() == 0 {
                self.shutdown()?;
            }
            if self.fin_sent && self.discard()? {
                self.close();
                self.regs.raise(SocketInterrupt::DISCON_MASK);
            }
        }
        if status == SocketStatus::LastAck && self.queued() == 0 {
            self.shutdown()?;
            self.close();
        }
        Ok(())
    }

    /// Hands the bytes of past SENDs to the host stream, as many as the
    /// kernel takes now; SEND_OK once all are out.
    fn transmit(&mut self) -> io::Result<()> {
        let Host::Stream(stream) = &mut self.host else {
            return Ok(());
        };
        loop {
            let tx_rd = self.regs.get16(SnReg::TX_RD0);
            let queued = usize::from(self.send_end.wrapping_sub(tx_rd));
            let range = contiguous(tx_rd, queued, self.regs.tx_size());
            let chunk = self.tx.get(range).unwrap_or_default();
            if chunk.is_empty() {
                break;
            }
            match stream.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.regs.set16(SnReg::TX_RD0, advance(tx_rd, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.send_ok_due {
            self.send_ok_due = false;
            self.regs.raise(SocketInterrupt::SENDOK_MASK);
        }
        Ok(())
    }

    /// Reads what the host stream has into the RX buffer, at most its free
    /// space; RECV if anything came. `Ok(true)`: the peer's FIN came.
    fn receive(&mut self) -> io::Result<bool> {
        let Host::Stream(stream) = &mut self.host else {
            return Ok(false);
        };
        let size = self.regs.rx_size();
        let mut arrived = false;
        let outcome = loop {
            let rx_wr = self.regs.get16(SnReg::RX_WR0);
            let used = rx_wr.wrapping_sub(self.recv_start);
            let free = usize::from(size.saturating_sub(used));
            let space = self
                .rx
                .get_mut(contiguous(rx_wr, free, size))
                .unwrap_or_default();
            if space.is_empty() {
                break Ok(false);
            }
            match stream.read(space) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    self.regs.set16(SnReg::RX_WR0, advance(rx_wr, n));
                    arrived = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if arrived {
            self.regs.raise(SocketInterrupt::RECV_MASK);
        }
        outcome
    }

    /// Reads and drops what the peer sends after our FIN. `Ok(true)`: the
    /// peer's FIN came.
    fn discard(&mut self) -> io::Result<bool> {
        let Host::Stream(stream) = &mut self.host else {
            return Ok(false);
        };
        let mut scrap = [0; 1024];
        for _ in 0..MAX_DISCARD_READS {
            match stream.read(&mut scrap) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Sends our FIN.
    fn shutdown(&mut self) -> io::Result<()> {
        if let Host::Stream(stream) = &self.host {
            stream.shutdown(Shutdown::Write)?;
        }
        self.fin_sent = true;
        Ok(())
    }
}

/// A non-blocking host listener on `local`. SO_REUSEADDR (std sets it on
/// Unix) lets a port be listened on again while old connections on it sit
/// in TIME_WAIT.
fn open_listener(local: SocketAddrV4) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(local)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Starts a non-blocking host connect to `remote`, from `local` if given.
fn start_connect(local: Option<SocketAddrV4>, remote: SocketAddrV4) -> io::Result<socket2::Socket> {
    // The chip cannot reach these; the host would take 0.0.0.0 as itself.
    if remote.ip().is_unspecified() || remote.port() == 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    if let Some(local) = local {
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::V4(local).into())?;
    }
    match socket.connect(&SocketAddr::V4(remote).into()) {
        Ok(()) => Ok(socket),
        Err(e) if failed_at_once(&e) => Err(e),
        // In progress (EINPROGRESS has no stable `ErrorKind`): pumps see
        // the outcome, or the deadline passes.
        Err(_) => Ok(socket),
    }
}

/// Whether a non-blocking connect's `error` is a failure rather than the
/// connect being in progress.
fn failed_at_once(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | AddrInUse
            | AddrNotAvailable
            | PermissionDenied
            | InvalidInput
            | NetworkUnreachable
            | HostUnreachable
            | Unsupported
    )
}

//! A polled driver for the SMSC LAN9118 Ethernet controller, as a smoltcp
//! [`phy::Device`](smoltcp::phy::Device).
//!
//! No published crate drives the LAN9118 (QEMU emulates it on the mps2
//! boards, and it sits on many older Cortex-M and ARM9 boards), so this is
//! the smallest driver that serves smoltcp: programmed I/O through the
//! chip's FIFOs, no interrupts, no DMA.
//!
//! # How it works
//!
//! - **Receive**: the chip puts each frame's status word in the RX status
//!   FIFO and its bytes (little-endian words, then the 4-byte CRC) in the RX
//!   data FIFO. [`Lan9118::receive`] pops one status, reads the frame into
//!   the driver's 1536-byte buffer and hands smoltcp a token over it. Frames
//!   with an error bit, or longer than the buffer, are read and thrown away
//!   (the chip's "fast forward" is not used: QEMU's version of it loses
//!   track of the FIFO's fill level).
//! - **Transmit**: a frame is two command words (A: first and last segment,
//!   buffer length; B: tag and frame length) and its bytes as words, pushed
//!   into the TX data FIFO once smoltcp has written it into the driver's
//!   buffer. TX status words are allowed to overrun (`TXSAO`), so nothing
//!   has to read them.
//! - **Polled**: the board loop calls smoltcp, which calls
//!   [`Device::receive`] until it returns `None`. Between polls the CPU
//!   sleeps in `WFI` and SysTick wakes it every millisecond; the loop asks
//!   [`Lan9118::rx_pending`] whether a frame waits. The trade-off: a frame
//!   waits up to 1 ms, and the core wakes 1000 times a second when idle
//!   (a few register reads each). The NIC's interrupt line (IRQ 13 on the
//!   mps2-an385) would let the core sleep until a frame or a deadline;
//!   enable `INT_EN.RSFL` and `IRQ_CFG.IRQ_EN` for that.
//! - **FIFO space**: QEMU's model holds about 10 KiB of received frames
//!   (2640 words, 176 statuses) and drops frames beyond that. The TCP
//!   receive windows of the connections that stream at once should add up
//!   to about that much, or TCP loses segments and retransmits (see
//!   `src/main.rs` for the sizes chosen).
//!
//! Register map, as in the LAN9118 datasheet (and QEMU's hw/net/lan9118.c,
//! which aborts QEMU on a read of an unimplemented MAC register: only the
//! registers named here are touched).
use core::ptr;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

/// Where the mps2-an385 (and an386) maps the controller.
pub const MPS2_AN385_BASE: usize = 0x4020_0000;

/// The largest frame handled, without CRC: 1514 bytes plus a VLAN tag,
/// rounded up to whole words.
pub const FRAME: usize = 1536;

/// Offsets of the system control and status registers.
mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_EN: usize = 0x5C;
    pub const BYTE_TEST: usize = 0x64;
    pub const RX_CFG: usize = 0x6C;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7C;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const FREE_RUN: usize = 0x9C;
    pub const MAC_CSR_CMD: usize = 0xA4;
    pub const MAC_CSR_DATA: usize = 0xA8;
}

/// Indexes of the MAC's registers (through `MAC_CSR_CMD`/`MAC_CSR_DATA`).
mod mac {
    pub const CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;
    /// `MAC_CR` bits: receive and transmit enable, full duplex.
    pub const CR_RXEN: u32 = 1 << 2;
    pub const CR_TXEN: u32 = 1 << 3;
    pub const CR_FDPX: u32 = 1 << 20;
}

/// `BYTE_TEST` reads this on a LAN9118 wired for 32-bit access.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
/// `HW_CFG`: soft reset (self-clearing).
const HW_CFG_SRST: u32 = 1 << 0;
/// `PMT_CTRL`: the chip is ready after reset.
const PMT_CTRL_READY: u32 = 1 << 0;
/// `TX_CFG`: transmitter on, TX status FIFO may overrun.
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_TXSAO: u32 = 1 << 2;
/// `MAC_CSR_CMD`: busy (write 1 to start), read (not write).
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
/// TX command A: first and last segment of a frame.
const TX_CMD_A_FIRST_LAST: u32 = (1 << 13) | (1 << 12);
/// RX status: the error summary bit.
const RX_STS_ERROR: u32 = 1 << 15;
/// The internal PHY's address on the MII bus.
const PHY_ADDR: u32 = 1;
/// Register reads a wait for the chip may take before it is a failure.
const SPIN_LIMIT: u32 = 1_000_000;

/// Why [`Lan9118::new`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// `BYTE_TEST` did not read `0x87654321`: no LAN9118 at that address
    /// (or QEMU started without a NIC model `lan9118`).
    NotFound(u32),
    /// The chip did not finish a reset or a MAC register access.
    Timeout,
}

/// Frames moved and dropped, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to smoltcp.
    pub rx_frames: u32,
    /// Frames read and thrown away (error bit, too long).
    pub rx_dropped: u32,
    /// Frames pushed into the TX FIFO.
    pub tx_frames: u32,
    /// Frames smoltcp built but the TX FIFO never had room for.
    pub tx_dropped: u32,
}

/// The controller's registers at a base address.
#[derive(Debug, Clone, Copy)]
struct Regs {
    base: usize,
}

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` is the address of a LAN9118's 256-byte register
        // window (the caller of `Lan9118::new` promised it), `offset` is one
        // of the word-aligned register offsets in `reg`, and device memory
        // must be read with a volatile access.
        unsafe { ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Spins until `done(register)` or the limit.
    fn wait(self, offset: usize, done: impl Fn(u32) -> bool) -> Result<(), InitError> {
        for _ in 0..SPIN_LIMIT {
            if done(self.read(offset)) {
                return Ok(());
            }
        }
        Err(InitError::Timeout)
    }

    fn mac_read(self, index: u32) -> Result<u32, InitError> {
        self.wait(reg::MAC_CSR_CMD, |v| v & CSR_BUSY == 0)?;
        self.write(reg::MAC_CSR_CMD, CSR_BUSY | CSR_READ | index);
        self.wait(reg::MAC_CSR_CMD, |v| v & CSR_BUSY == 0)?;
        Ok(self.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(self, index: u32, value: u32) -> Result<(), InitError> {
        self.wait(reg::MAC_CSR_CMD, |v| v & CSR_BUSY == 0)?;
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, CSR_BUSY | index);
        self.wait(reg::MAC_CSR_CMD, |v| v & CSR_BUSY == 0)
    }

    /// Writes PHY register `index` over the MII bus.
    fn phy_write(self, index: u32, value: u16) -> Result<(), InitError> {
        const MII_BUSY: u32 = 1 << 0;
        const MII_WRITE: u32 = 1 << 1;
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(mac::MII_ACC)? & MII_BUSY == 0 {
                self.mac_write(mac::MII_DATA, u32::from(value))?;
                return self.mac_write(
                    mac::MII_ACC,
                    (PHY_ADDR << 11) | (index << 6) | MII_WRITE | MII_BUSY,
                );
            }
        }
        Err(InitError::Timeout)
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_frames_waiting(self) -> u32 {
        (self.read(reg::RX_FIFO_INF) >> 16) & 0xFF
    }

    /// Free bytes in the TX data FIFO.
    fn tx_free(self) -> usize {
        (self.read(reg::TX_FIFO_INF) & 0xFFFF) as usize
    }
}

/// The driver's two frame buffers, one for a received frame and one for
/// a frame being sent. The caller keeps them in a `static` (all zero
/// bytes: no flash) and lends them to [`Lan9118::new`], so that the driver
/// itself is a few words: building it at boot puts no 3 KB value on the
/// stack.
pub struct Frames {
    /// The received frame being handed to smoltcp.
    pub rx: [u8; FRAME],
    /// The frame smoltcp is writing.
    pub tx: [u8; FRAME],
}

impl Frames {
    /// Zeroed buffers.
    pub const fn new() -> Frames {
        Frames {
            rx: [0; FRAME],
            tx: [0; FRAME],
        }
    }
}

/// The LAN9118 as a smoltcp Ethernet device. See the [module docs](self).
pub struct Lan9118 {
    regs: Regs,
    mac: EthernetAddress,
    frames: &'static mut Frames,
    stats: Stats,
}

impl Lan9118 {
    /// Resets the chip at `base`, reads its MAC address (QEMU's `-nic
    /// ...,mac=` or the EEPROM's; a fixed locally administered one if it has
    /// none), starts auto-negotiation, and turns the receiver and the
    /// transmitter on.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a LAN9118's register window, and
    /// nothing else may touch that chip while the driver lives.
    pub unsafe fn new(base: usize, frames: &'static mut Frames) -> Result<Lan9118, InitError> {
        let regs = Regs { base };
        let test = regs.read(reg::BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NotFound(test));
        }
        regs.write(reg::HW_CFG, HW_CFG_SRST);
        regs.wait(reg::HW_CFG, |v| v & HW_CFG_SRST == 0)?;
        regs.wait(reg::PMT_CTRL, |v| v & PMT_CTRL_READY != 0)?;
        // Polled: no interrupts.
        regs.write(reg::INT_EN, 0);
        regs.write(reg::IRQ_CFG, 0);

        let low = regs.mac_read(mac::ADDRL)?.to_le_bytes();
        let high = regs.mac_read(mac::ADDRH)?.to_le_bytes();
        let mut mac = EthernetAddress([low[0], low[1], low[2], low[3], high[0], high[1]]);
        if !mac.is_unicast() || mac.0 == [0; 6] {
            mac = EthernetAddress([0x02, 0x00, 0x00, 0xF7, 0x00, 0x01]);
            regs.mac_write(
                mac::ADDRL,
                u32::from_le_bytes([mac.0[0], mac.0[1], mac.0[2], mac.0[3]]),
            )?;
            regs.mac_write(mac::ADDRH, u32::from(mac.0[4]) | (u32::from(mac.0[5]) << 8))?;
        }

        // Advertise 10/100, half and full duplex; enable and restart
        // auto-negotiation (QEMU completes it at once; a real link takes a
        // few seconds, and frames sent before it is up are lost).
        regs.phy_write(4, 0x01E1)?;
        regs.phy_write(0, 0x1200)?;

        // Exact unicast filtering (promiscuous mode off), broadcast on.
        regs.mac_write(mac::CR, mac::CR_TXEN | mac::CR_RXEN | mac::CR_FDPX)?;
        regs.write(reg::RX_CFG, 0);
        regs.write(reg::TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        Ok(Lan9118 {
            regs,
            mac,
            frames,
            stats: Stats::default(),
        })
    }

    /// The MAC address the chip filters for.
    pub fn mac_address(&self) -> EthernetAddress {
        self.mac
    }

    /// The chip's identification (`ID_REV`: `0x0118_0001` for a LAN9118).
    pub fn id_rev(&self) -> u32 {
        self.regs.read(reg::ID_REV)
    }

    /// A free-running 25 MHz counter (`FREE_RUN`): a little entropy at boot.
    pub fn free_run(&self) -> u32 {
        self.regs.read(reg::FREE_RUN)
    }

    /// Whether a received frame waits in the chip.
    pub fn rx_pending(&self) -> bool {
        self.regs.rx_frames_waiting() != 0
    }

    /// Frames moved and dropped so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Reads the next good frame into `self.frames.rx`; its length. Bad frames
    /// on the way are drained and counted.
    fn read_frame(&mut self) -> Option<usize> {
        let regs = self.regs;
        for _ in 0..regs.rx_frames_waiting() {
            let status = regs.read(reg::RX_STATUS_FIFO);
            // The length includes the 4-byte CRC, which is read but not kept.
            let with_crc = ((status >> 16) & 0x3FFF) as usize;
            let words = with_crc.div_ceil(4);
            let len = with_crc.saturating_sub(4);
            if status & RX_STS_ERROR != 0 || len < 14 || len > FRAME {
                for _ in 0..words {
                    regs.read(reg::RX_DATA_FIFO);
                }
                self.stats.rx_dropped = self.stats.rx_dropped.wrapping_add(1);
                continue;
            }
            for i in 0..words {
                let word = regs.read(reg::RX_DATA_FIFO).to_le_bytes();
                let at = i * 4;
                if at < len {
                    let n = (len - at).min(4);
                    if let (Some(dst), Some(src)) =
                        (self.frames.rx.get_mut(at..at + n), word.get(..n))
                    {
                        dst.copy_from_slice(src);
                    }
                }
            }
            self.stats.rx_frames = self.stats.rx_frames.wrapping_add(1);
            return Some(len);
        }
        None
    }
}

/// A received frame, lent to smoltcp.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u8; FRAME],
    stats: &'a mut Stats,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = len.min(FRAME);
        let frame = &mut self.buf[..len];
        let result = f(frame);
        let regs = self.regs;
        // Two command words, then the frame rounded up to whole words.
        let needed = 8 + len.div_ceil(4) * 4;
        if regs
            .wait(reg::TX_FIFO_INF, |v| (v & 0xFFFF) as usize >= needed)
            .is_err()
        {
            self.stats.tx_dropped = self.stats.tx_dropped.wrapping_add(1);
            return result;
        }
        let len32 = len as u32; // at most FRAME
        regs.write(reg::TX_DATA_FIFO, TX_CMD_A_FIRST_LAST | len32);
        regs.write(reg::TX_DATA_FIFO, (len32 << 16) | len32);
        for chunk in frame.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            regs.write(reg::TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        self.stats.tx_frames = self.stats.tx_frames.wrapping_add(1);
        result
    }
}

impl Device for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.read_frame()?;
        let Lan9118 {
            regs,
            frames,
            stats,
            ..
        } = self;
        let Frames { rx, tx } = &mut **frames;
        Some((
            RxToken { frame: &rx[..len] },
            TxToken {
                regs: *regs,
                buf: tx,
                stats,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.regs.tx_free() < 8 + FRAME {
            return None;
        }
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.frames.tx,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        // No burst limit: QEMU sends each frame as soon as it is written
        // (a real chip's 4.6 KiB TX FIFO holds three full frames, and
        // `transmit` waits for room).
        caps.max_burst_size = None;
        caps
    }
}

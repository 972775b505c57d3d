//! The `stack-w5500` network: a WIZnet W5500 module (WIZ850io or alike) on
//! SPI1 at the Nucleo's Arduino header, through Ferry's `W5500Stack`. The
//! chip runs TCP/IP itself, with its eight hardware sockets and their
//! buffers (2 KiB each way) in its own 32 KiB; the MCU only moves bytes
//! and commands over SPI (`w5500-ll`'s register access).
//!
//! Wiring (README.md, "Choosing the stack"): SCK PA5 (D13), MISO PA6
//! (D12), MOSI PA7 (D11), CS PD14 (D10), RSTn PD15 (D9). PA7 is also the
//! on-board PHY's CRS_DV through jumper JP6: take JP6 off.
//!
//! INTn is not wired: the board loop has no way to learn that the chip
//! has something, so it looks again on every SysTick (1 ms) rather than
//! sleeping until the engine's deadline. Wiring INTn to an EXTI pin and
//! unmasking the socket interrupts (`W5500Stack::chip_mut`, SIMR) would
//! let the core sleep longer.
use core::mem::size_of;

use embedded_hal_bus::spi::ExclusiveDevice;
use ferry_board::{subnet_mask, W5500Link};
use ferry_net::w5500_stack::{W5500Config, W5500Error, W5500Stack};
use ferry_net::{Instant, Ipv4Addr};
use rtt_target::rprintln;
use static_cell::StaticCell;
use stm32f4xx_hal::gpio::{gpioa, gpiod, Output, PinState, PushPull, Speed, PD14};
use stm32f4xx_hal::pac::{SPI1, TIM5};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Clocks;
use stm32f4xx_hal::spi::Spi;
use stm32f4xx_hal::timer::DelayUs;
use w5500_ll::eh1::vdm::W5500;
use w5500_ll::Registers;

use crate::{Addressing, StackRam};

/// What the start-up log calls this stack.
pub const NAME: &str = "W5500 on SPI1";

// ---- The knobs ----

/// Concurrent FTP sessions; one more gets 421. The chip has eight sockets:
/// 2 stay listening on port 21 (`BACKLOG`), each session holds its control
/// connection and, while it transfers, its data connection, and a passive
/// transfer keeps up to `BACKLOG` sockets listening on its port until the
/// client connects. Two sessions transferring take 2 + 2 × 2 = 6, leaving
/// 2 for such listeners and for connections still closing (a closed
/// connection keeps its socket until its FIN is answered). Three would
/// take all eight, and the next PASV would wait for a socket to free.
pub const SESSIONS: usize = 2;
/// Sockets a session holds while it transfers: control and data.
const SOCKETS_PER_SESSION: usize = 2;
/// The chip's hardware sockets.
const HW_SOCKETS: usize = 8;
/// Sockets each listening port keeps in LISTEN: the chip has no accept
/// queue, so a second client connecting at once needs a second socket.
const BACKLOG: u8 = 2;
/// The SPI clock: APB2's 84 MHz divided by 4. The W5500 is specified up to
/// 33.3 MHz (80 MHz typical); halve this for long jumper wires.
const SPI_HZ: u32 = 21_000_000;

type Bus = Spi<SPI1>;
type ChipSelect = PD14<Output<PushPull>>;
/// An embedded-hal 1.0 `SpiDevice` (the bus with its chip select) over the
/// HAL's `SpiBus`; the timer serves the device's in-transaction delays
/// (`w5500-ll` issues none today).
type Device = ExclusiveDevice<Bus, ChipSelect, DelayUs<TIM5>>;
/// The chip's registers over SPI (variable data length mode, framed by CS).
type Chip = W5500<Device>;

/// The stack the engine runs on.
pub type Stack = W5500Stack<Chip>;

static STACK: StaticCell<Stack> = StaticCell::new();

/// This stack's words of `FIRMWARE_RAM`: the sockets and their buffers are
/// in the chip, so the MCU's RAM holds only the adapter's tables (the SPI
/// driver inside them); one more session costs no adapter RAM.
pub const RAM: StackRam = StackRam {
    pool: HW_SOCKETS as u32,
    sockets_per_session: SOCKETS_PER_SESSION as u32,
    socket_rx: 0,
    socket_tx: 0,
    socket_slot: 0,
    adapter: size_of::<Stack>() as u32,
    adapter_one_more: size_of::<Stack>() as u32,
    nic: 0,
};

/// What this stack takes from the chip: SPI1 and its pins, CS and RSTn,
/// and a timer for the reset pulse.
pub struct Peripherals {
    /// Port A (SCK PA5, MISO PA6, MOSI PA7).
    pub gpioa: gpioa::Parts,
    /// Port D (CS PD14, RSTn PD15).
    pub gpiod: gpiod::Parts,
    /// The SPI peripheral.
    pub spi: SPI1,
    /// A 32-bit timer, for microsecond delays (SysTick is the clock).
    pub timer: TIM5,
}

/// Why the network did not start: the adapter's error over the SPI
/// device's (`init` found no chip, or the chip did not take its settings).
pub type NetError = W5500Error<<Chip as Registers>::Error>;

/// Sets SPI1 up, resets the chip through RSTn, and builds the stack: the
/// chip's soft reset, version check, addresses and socket buffers
/// (`W5500Stack::init`).
pub fn start(
    p: Peripherals,
    addressing: &Addressing,
    clocks: &Clocks,
) -> Result<(&'static mut Stack, Link), NetError> {
    // Fast edges for 21 MHz (the HAL leaves pins at low speed).
    let sck = p.gpioa.pa5.into_alternate().speed(Speed::VeryHigh);
    let miso = p.gpioa.pa6.into_alternate().speed(Speed::VeryHigh);
    let mosi = p.gpioa.pa7.into_alternate().speed(Speed::VeryHigh);
    let bus: Bus = Spi::new(
        p.spi,
        (sck, miso, mosi),
        w5500_ll::eh1::MODE,
        SPI_HZ.Hz(),
        clocks,
    );
    let cs: ChipSelect = p.gpiod.pd14.into_push_pull_output_in_state(PinState::High);
    let mut reset = p.gpiod.pd15.into_push_pull_output_in_state(PinState::High);
    let mut delay = p.timer.delay_us(clocks);
    // RSTn low for 1 ms, then 2 ms for the chip's PLL to lock. The pin then
    // stays high (dropping its handle does not change it).
    let Ok(()) = w5500_ll::eh1::reset(&mut reset, &mut delay);
    let Ok(device) = ExclusiveDevice::new(bus, cs, delay);

    let config = W5500Config {
        mac: addressing.mac,
        ip: addressing.ip,
        subnet: subnet_mask(addressing.prefix),
        gateway: addressing.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
        backlog: BACKLOG,
        ..W5500Config::default()
    };
    let stack: &'static mut Stack = STACK.init(W5500Stack::new(W5500::new(device), config));
    stack.init()?;
    rprintln!(
        "W5500 found; SPI at {} MHz, {} hardware sockets of 2 + 2 KiB",
        SPI_HZ / 1_000_000,
        HW_SOCKETS
    );
    Ok((stack, Link(W5500Link::new(crate::board::print_line))))
}

/// What the board loop watches besides the stack: the link, and whether
/// the SPI is failing (ferry-board's `W5500Link`, which logs each change
/// once, not every millisecond).
pub struct Link(W5500Link);

impl Link {
    /// The adapter's part of the work (re-arming listeners, finishing
    /// closes); whether anything changed.
    pub fn poll(&mut self, stack: &mut Stack, now: Instant) -> bool {
        self.0.poll(stack, now)
    }

    /// Without INTn, the chip's news is only found by looking: at the next
    /// SysTick.
    pub fn next_poll(&mut self, _stack: &mut Stack, now: Instant) -> Option<Instant> {
        Some(now.add_millis(1))
    }

    /// Never: nothing tells the core that the chip has something (see the
    /// module docs on INTn).
    pub fn wake_pending(&mut self) -> bool {
        false
    }

    /// Reads the chip's PHY link and logs a change.
    pub fn check(&mut self, stack: &mut Stack) {
        self.0.check(stack);
    }
}

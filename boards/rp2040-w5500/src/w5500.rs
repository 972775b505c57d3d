//! The network: the W5500-EVB-Pico's WIZnet W5500 on SPI0, through Ferry's
//! `W5500Stack`. The chip runs TCP/IP itself, with its eight hardware
//! sockets and their buffers (2 KiB each way) in its own 32 KiB; the
//! RP2040 only moves bytes and commands over SPI (`w5500-ll`'s register
//! access).
//!
//! Wiring (on the board): MISO GP16, CSn GP17, SCK GP18, MOSI GP19,
//! RSTn GP20, INTn GP21.
//!
//! INTn is read by nobody yet: the loop looks at the chip on every
//! millisecond tick instead of sleeping until INTn falls. Unmasking the
//! socket interrupts (SIMR, through `W5500Stack::chip_mut`) and a GPIO
//! interrupt on GP21's falling edge would let the core sleep longer.
use embedded_hal_bus::spi::ExclusiveDevice;
use ferry_board::{subnet_mask, W5500Link};
use ferry_net::w5500_stack::{W5500Config, W5500Error, W5500Stack};
use ferry_net::{Instant, Ipv4Addr};
use rp2040_hal::fugit::RateExtU32;
use rp2040_hal::gpio::bank0::{Gpio16, Gpio17, Gpio18, Gpio19, Gpio20, Gpio21};
use rp2040_hal::gpio::{
    FunctionNull, FunctionSioInput, FunctionSioOutput, FunctionSpi, Pin, PinState, PullDown, PullUp,
};
use rp2040_hal::pac::{RESETS, SPI0};
use rp2040_hal::spi::{Enabled, Spi};
use rp2040_hal::Timer;
use rtt_target::rprintln;
use static_cell::StaticCell;
use w5500_ll::eh1::vdm::W5500;
use w5500_ll::Registers;

use crate::Addressing;

/// What the start-up log calls this stack.
pub const NAME: &str = "W5500 on SPI0";

// ---- The knobs ----

/// Concurrent FTP sessions; one more gets 421. The chip has eight sockets:
/// 2 stay listening on port 21 (`BACKLOG`), each session holds its control
/// connection and, while it transfers, its data connection, and a passive
/// transfer keeps up to `BACKLOG` sockets listening on its port until the
/// client connects (`W5500Config`'s docs have the whole budget).
pub const SESSIONS: usize = 2;
/// Sockets a session holds while it transfers: control and data.
pub const SOCKETS_PER_SESSION: usize = 2;
/// The chip's hardware sockets.
pub const HW_SOCKETS: usize = 8;
/// Sockets each listening port keeps in LISTEN: the chip has no accept
/// queue, so a second client connecting at once needs a second socket.
const BACKLOG: u8 = 2;
/// The SPI clock: the 125 MHz peripheral clock divided by 4. The W5500 is
/// specified up to 33.3 MHz; the board's traces are short.
const SPI_HZ: u32 = 31_250_000;

type Miso = Pin<Gpio16, FunctionSpi, PullDown>;
type Sck = Pin<Gpio18, FunctionSpi, PullDown>;
type Mosi = Pin<Gpio19, FunctionSpi, PullDown>;
type Bus = Spi<Enabled, SPI0, (Mosi, Miso, Sck)>;
type ChipSelect = Pin<Gpio17, FunctionSioOutput, PullDown>;
/// An embedded-hal 1.0 `SpiDevice` (the bus with its chip select) over the
/// HAL's `SpiBus`; the timer serves the device's in-transaction delays
/// (`w5500-ll` issues none today).
type Device = ExclusiveDevice<Bus, ChipSelect, Timer>;
/// The chip's registers over SPI (variable data length mode, framed by CS).
type Chip = W5500<Device>;

/// The stack the engine runs on.
pub type Stack = W5500Stack<Chip>;

static STACK: StaticCell<Stack> = StaticCell::new();

/// What this stack takes from the chip: SPI0, its pins, CSn, RSTn and
/// INTn, and the timer for the reset pulse.
pub struct Peripherals {
    /// The SPI peripheral.
    pub spi: SPI0,
    /// MISO.
    pub miso: Pin<Gpio16, FunctionNull, PullDown>,
    /// CSn.
    pub cs: Pin<Gpio17, FunctionNull, PullDown>,
    /// SCK.
    pub sck: Pin<Gpio18, FunctionNull, PullDown>,
    /// MOSI.
    pub mosi: Pin<Gpio19, FunctionNull, PullDown>,
    /// RSTn.
    pub reset: Pin<Gpio20, FunctionNull, PullDown>,
    /// INTn (an input with its pull-up; unused, see the module docs).
    pub int: Pin<Gpio21, FunctionNull, PullDown>,
    /// The microsecond timer, for delays.
    pub timer: Timer,
    /// The peripheral clock's rate in Hz (SPI0's).
    pub peripheral_hz: u32,
}

/// Why the network did not start: the adapter's error over the SPI
/// device's (`init` found no chip, or the chip did not take its settings).
pub type NetError = W5500Error<<Chip as Registers>::Error>;

/// Sets SPI0 up, resets the chip through RSTn, and builds the stack: the
/// chip's soft reset, version check, addresses and socket buffers
/// (`W5500Stack::init`).
pub fn start(
    p: Peripherals,
    resets: &mut RESETS,
    addressing: &Addressing,
) -> Result<(&'static mut Stack, Link), NetError> {
    let pins = (
        p.mosi.into_function::<FunctionSpi>(),
        p.miso.into_function::<FunctionSpi>(),
        p.sck.into_function::<FunctionSpi>(),
    );
    let bus: Bus = Spi::new(p.spi, pins).init(
        resets,
        p.peripheral_hz.Hz(),
        SPI_HZ.Hz(),
        w5500_ll::eh1::MODE,
    );
    let cs: ChipSelect = p.cs.into_push_pull_output_in_state(PinState::High);
    let mut reset = p.reset.into_push_pull_output_in_state(PinState::High);
    let _int: Pin<Gpio21, FunctionSioInput, PullUp> = p.int.reconfigure();
    let mut delay = p.timer;
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
        "W5500 found; SPI at {} kHz, {} hardware sockets of 2 + 2 KiB",
        SPI_HZ / 1000,
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
    /// millisecond tick.
    pub fn next_poll(&self, now: Instant) -> Instant {
        now.add_millis(1)
    }

    /// Reads the chip's PHY link and logs a change; whether it is up.
    pub fn check(&mut self, stack: &mut Stack) -> bool {
        self.0.check(stack)
    }
}

//! Ferry's FTP server on a NUCLEO-F429ZI: littlefs on the internal flash
//! (or a RAM disk), one fixed user, the engine polled from `main` with the
//! core asleep in `WFI` between deadlines. No RTOS, no heap. Logs go over
//! RTT (`probe-rs run` shows them).
//!
//! The network is a feature, chosen at build time (README.md, "Choosing
//! the stack"); everything about it lives in its module:
//!
//! - `stack-eth` (default), `src/net.rs`: smoltcp in the MCU through
//!   Ferry's `SmoltcpStack`, over the STM32F429's Ethernet MAC
//!   (`stm32-eth`) and the board's LAN8742A PHY.
//! - `stack-w5500`, `src/w5500.rs`: a WIZnet W5500 on SPI1, which runs
//!   TCP/IP itself, through Ferry's `W5500Stack`.
//!
//! Both modules give this file the same few things: `SESSIONS`, the
//! `Stack` type, `start` (which brings the network up and returns the
//! stack and a `Link`), the `Link`'s `poll`, `next_poll`, `wake_pending`
//! and `check`, and their part of `FIRMWARE_RAM`. Only `start` below picks
//! the module's peripherals under `cfg`.
//!
//! The loop is the one every board runs (docs/PORTING.md): poll the stack,
//! poll the server, sleep until the earliest deadline; SysTick (1 kHz) and,
//! with `stack-eth`, the Ethernet DMA's interrupt wake the core.
//!
//! Network settings are build-time: `FERRY_IP=192.168.1.50/24` and
//! `FERRY_GATEWAY=192.168.1.1` in the environment of `cargo build` (those
//! are the defaults). README.md has the whole procedure.
#![no_std]
#![no_main]

#[cfg(all(feature = "stack-eth", feature = "stack-w5500"))]
compile_error!("choose one stack feature: stack-eth or stack-w5500 (with --no-default-features)");
#[cfg(not(any(feature = "stack-eth", feature = "stack-w5500")))]
compile_error!("choose a stack feature: stack-eth (default) or stack-w5500");

#[cfg(all(feature = "ftps", feature = "storage-ram"))]
compile_error!("ftps puts its heap in the CCM, where storage-ram's RAM disk is: use storage-flash");

#[cfg(feature = "ftps")]
extern crate alloc;

mod board;
#[cfg(feature = "ftps")]
mod ftps;
#[cfg(feature = "stack-eth")]
mod net;
#[cfg(not(feature = "storage-sd"))]
mod storage;
#[cfg(feature = "storage-sd")]
#[path = "sd.rs"]
mod storage;
// (With both features, only the error above: the W5500 side stays out.)
#[cfg(all(feature = "stack-w5500", not(feature = "stack-eth")))]
mod w5500;

#[cfg(feature = "stack-eth")]
use net as stack;
#[cfg(all(feature = "stack-w5500", not(feature = "stack-eth")))]
use w5500 as stack;

use core::mem::size_of;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use ferry_board::{FixedUser, LogObserver, Mac};
use ferry_core::{Config, Server};
use ferry_net::Clock;
use rtt_target::{rprintln, rtt_init_print};
use static_cell::StaticCell;
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;

use crate::board::{BoardClock, PASSWORD, USER};
use crate::stack::{Link, Stack, SESSIONS};
use crate::storage::Fs;

// ---- The memory knobs (docs/PORTING.md says what each costs; the
// sessions and the sockets are the stack module's) ----

/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 2048;
/// Passive ports (PASV/EPSV).
const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The FTP control port.
const FTP_PORT: u16 = 21;
/// Default address, prefix and gateway (override at build time, see above).
const DEFAULT_IP: &str = "192.168.1.50/24";
const DEFAULT_GATEWAY: &str = "192.168.1.1";

/// The stack the engine runs on: the board's, or TLS over it (`ftps`).
#[cfg(not(feature = "ftps"))]
type Net = Stack;
#[cfg(feature = "ftps")]
type Net = ftps::Net<Stack>;
type FtpServer = Server<Net, Fs, SESSIONS, TRANSFER_BUFFER>;
#[cfg(feature = "ftps")]
static NET: StaticCell<Net> = StaticCell::new();

static SERVER: StaticCell<FtpServer> = StaticCell::new();

/// The network's addresses, for the stack module's `start`.
pub struct Addressing {
    /// The board's IPv4 address.
    pub ip: Ipv4Addr,
    /// Its prefix length (`/24`).
    pub prefix: u8,
    /// The default route, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The MAC address (locally administered, from the chip's unique ID).
    pub mac: [u8; 6],
}

/// A stack module's words of `FIRMWARE_RAM` (see there).
pub struct StackRam {
    /// Sockets in the pool (the W5500: its hardware sockets).
    pub pool: u32,
    /// Sockets one more session needs.
    pub sockets_per_session: u32,
    /// Each socket's receive buffer in the MCU's RAM (0: in the chip).
    pub socket_rx: u32,
    /// Each socket's transmit buffer in the MCU's RAM (0: in the chip).
    pub socket_tx: u32,
    /// Each socket's slot in the stack (smoltcp's `SocketStorage`; 0: none).
    pub socket_slot: u32,
    /// `size_of` the stack adapter.
    pub adapter: u32,
    /// `size_of` the stack adapter with one more session's sockets.
    pub adapter_one_more: u32,
    /// The NIC driver with its rings (0: none outside the adapter).
    pub nic: u32,
}

/// What `cargo xtask size` reads out of the ELF file: the same layout as
/// the QEMU firmware's `FIRMWARE_RAM` (sessions, transfer buffer, server
/// for `SESSIONS` and one more, pool, sockets per session, socket buffers,
/// socket slot, stack adapter and the adapter with one more session's
/// sockets, RAM disk (0: none in SRAM), NIC driver with its rings, stack
/// window (0: not measured), littlefs's state of one open file (one per
/// session), marker). The stack module fills in its part
/// ([`StackRam`]); with the W5500 the socket buffers are in the chip.
#[no_mangle]
#[used]
pub static FIRMWARE_RAM: [u32; 16] = {
    let ram = stack::RAM;
    [
        SESSIONS as u32,
        TRANSFER_BUFFER as u32,
        size_of::<FtpServer>() as u32,
        size_of::<Server<Net, Fs, { SESSIONS + 1 }, TRANSFER_BUFFER>>() as u32,
        ram.pool,
        ram.sockets_per_session,
        ram.socket_rx,
        ram.socket_tx,
        ram.socket_slot,
        ram.adapter,
        ram.adapter_one_more,
        0,
        ram.nic,
        0,
        storage::PER_FILE_RAM,
        0x4645_5252,
    ]
};

/// What start-up hands the serving loop: everything lives in `static`s.
struct Board {
    link: Link,
    stack: &'static mut Net,
    server: &'static mut FtpServer,
    fs: Fs,
}

#[entry]
fn main() -> ! {
    rtt_init_print!();
    serve(start())
}

/// Brings the board up. Not inlined: the temporaries that build the
/// statics sit in this frame, which is gone before serving starts (the
/// stack has only the SRAM the statics leave).
#[inline(never)]
fn start() -> Board {
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        fail("peripherals taken twice");
    };
    // The ST-LINK feeds 8 MHz into OSC_IN (HSE bypass); 168 MHz core (APB2,
    // SPI1's bus, at 84 MHz), and the 48 MHz clock the RNG needs.
    let clocks = dp
        .RCC
        .constrain()
        .cfgr
        .use_hse(8.MHz())
        .bypass_hse_oscillator()
        .sysclk(168.MHz())
        .hclk(168.MHz())
        .require_pll48clk()
        .freeze();
    board::start_clock(&mut cp.SYST, clocks.hclk().raw());
    let (ip, prefix) = ferry_board::parse_ipv4_cidr(option_env!("FERRY_IP").unwrap_or(DEFAULT_IP))
        .unwrap_or_else(|| fail("FERRY_IP is not A.B.C.D/PREFIX"));
    let gateway =
        ferry_board::parse_gateway(option_env!("FERRY_GATEWAY").unwrap_or(DEFAULT_GATEWAY))
            .unwrap_or_else(|_| fail("FERRY_GATEWAY is not A.B.C.D"));
    let addressing = Addressing {
        ip,
        prefix,
        gateway,
        mac: mac_address(),
    };
    rprintln!(
        "ferry-stm32f429zi {}: {}, {} sessions",
        env!("CARGO_PKG_VERSION"),
        stack::NAME,
        SESSIONS
    );

    // The chip's RNG: smoltcp's seed, and with `ftps` every TLS random byte.
    #[cfg(any(feature = "stack-eth", feature = "ftps"))]
    #[cfg_attr(not(feature = "stack-eth"), allow(unused_mut))]
    let mut rng = {
        use stm32f4xx_hal::rng::RngExt;
        dp.RNG.constrain(&clocks)
    };
    // The one part that differs by stack: which peripherals it takes.
    // Port C: the Ethernet's MDC and RXD pins, and the SD card's SPI3.
    #[cfg_attr(not(feature = "storage-sd"), allow(unused_variables))]
    let gpioc = dp.GPIOC.split();
    #[cfg(feature = "stack-eth")]
    let started = net::start(
        net::Peripherals {
            gpioa: dp.GPIOA.split(),
            gpiob: dp.GPIOB.split(),
            gpioc: (gpioc.pc1, gpioc.pc4, gpioc.pc5),
            gpiog: dp.GPIOG.split(),
            mac: dp.ETHERNET_MAC,
            mmc: dp.ETHERNET_MMC,
            dma: dp.ETHERNET_DMA,
            seed: rand_core::RngCore::next_u64(&mut rng),
        },
        &addressing,
        &clocks,
        BoardClock.now(),
    );
    #[cfg(all(feature = "stack-w5500", not(feature = "stack-eth")))]
    let started = w5500::start(
        w5500::Peripherals {
            gpioa: dp.GPIOA.split(),
            gpiod: dp.GPIOD.split(),
            spi: dp.SPI1,
            timer: dp.TIM5,
        },
        &addressing,
        &clocks,
    );
    let (stack, link) = started.unwrap_or_else(|e| fail_with(stack::NAME, e));
    #[cfg(feature = "ftps")]
    let stack: &'static mut Net = NET.init_with(|| ftps::wrap(stack, rng));

    #[cfg(all(feature = "storage-flash", not(feature = "storage-sd")))]
    let device = storage::Device::new(dp.FLASH);
    #[cfg(all(feature = "storage-ram", not(feature = "storage-flash")))]
    let device = storage::take_ram_disk().unwrap_or_else(|| fail("RAM disk taken twice"));
    #[cfg(not(feature = "storage-sd"))]
    let mut fs = match storage::mount(device) {
        Ok((fs, formatted)) => {
            rprintln!(
                "littlefs: {} blocks of {} KiB{}",
                storage::BLOCK_COUNT,
                storage::BLOCK_SIZE / 1024,
                if formatted {
                    ", formatted"
                } else {
                    ", mounted"
                }
            );
            fs
        }
        Err(e) => fail_with("storage", e),
    };
    #[cfg(feature = "storage-sd")]
    let mut fs = match storage::mount(
        storage::Peripherals {
            sck: gpioc.pc10,
            miso: gpioc.pc11,
            mosi: gpioc.pc12,
            cs: gpioc.pc8,
            spi: dp.SPI3,
            timer: dp.TIM2,
        },
        &clocks,
    ) {
        Ok((fs, bytes)) => {
            rprintln!("SD card: {} MiB, FAT partition 1 mounted", bytes >> 20);
            fs
        }
        Err(e) => fail_with("SD card", e),
    };

    let config = Config {
        passive_ports: PASSIVE_PORTS,
        site_chmod: false,
        ..Config::default()
    };
    let server: &'static mut FtpServer = SERVER.init_with(|| Server::new(config));
    // A reset or power cut during an upload left its temporary in flash.
    server.remove_upload_leftovers(&mut fs, |path| {
        rprintln!("removed {}: an upload's leftover", path.escape_ascii())
    });
    let listen = SocketAddr::new(IpAddr::V4(ip), FTP_PORT);
    if let Err(e) = server.listen(stack, listen) {
        fail_with("listen", e);
    }
    #[cfg(feature = "ftps")]
    {
        let implicit = SocketAddr::new(IpAddr::V4(ip), ftps::IMPLICIT_PORT);
        if let Err(e) = server.listen(stack, implicit) {
            fail_with("listen (implicit FTPS)", e);
        }
        rprintln!(
            "FTPS: AUTH TLS on port {}, implicit TLS on port {}; {} TLS connections at once in a {} KiB heap",
            FTP_PORT,
            ftps::IMPLICIT_PORT,
            ftps::TLS_CONNECTIONS,
            ftps::HEAP_BYTES / 1024
        );
    }
    rprintln!(
        "MAC {}; listening on ftp://{} once the link is up; login: user {} password {}",
        Mac(addressing.mac),
        listen,
        USER,
        PASSWORD
    );

    Board {
        link,
        stack,
        server,
        fs,
    }
}

/// The board loop.
#[inline(never)]
fn serve(board: Board) -> ! {
    let Board {
        mut link,
        stack,
        server,
        mut fs,
    } = board;
    let clock = BoardClock;
    let mut auth = FixedUser::new(USER, PASSWORD);
    let mut observer = LogObserver::new(board::print_line);
    let mut next_link_check = clock.now();
    loop {
        let now = clock.now();
        if now >= next_link_check {
            link.check(plain(stack));
            next_link_check = now.add_millis(500);
        }
        let moved = link.poll(plain(stack), now);
        let poll = server.poll(stack, &mut fs, &mut auth, &clock, &mut observer);
        // Decrypted bytes can wait in the TLS layer, unseen by the NIC.
        #[cfg(feature = "ftps")]
        let busy = moved || poll.busy || stack.has_pending();
        #[cfg(not(feature = "ftps"))]
        let busy = moved || poll.busy;
        if busy {
            continue;
        }
        let now = clock.now();
        #[cfg(feature = "ftps")]
        let tls_deadline = stack.poll_at();
        #[cfg(not(feature = "ftps"))]
        let tls_deadline = None;
        let deadline = [
            poll.deadline,
            link.next_poll(plain(stack), now),
            Some(next_link_check),
            tls_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        while !link.wake_pending() && deadline.is_none_or(|d| clock.now() < d) {
            // An interrupt (SysTick every 1 ms, the stack's own) wakes the
            // core.
            cortex_m::asm::wfi();
        }
    }
}

/// The board's stack under the engine's.
fn plain(net: &mut Net) -> &mut Stack {
    #[cfg(feature = "ftps")]
    return net.inner_mut().0;
    #[cfg(not(feature = "ftps"))]
    net
}

/// A locally administered MAC address made from the chip's unique ID.
fn mac_address() -> [u8; 6] {
    let uid = stm32f4xx_hal::signature::Uid::get();
    let lot = uid.lot_num().as_bytes();
    let mut hash = u32::from(uid.waf_num());
    for &b in lot {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    let [a, b] = uid.x().to_le_bytes();
    let [c, d] = uid.y().to_le_bytes();
    [0x02, (hash & 0xFF) as u8, a ^ (hash >> 8) as u8, b, c, d]
}

/// Logs a startup failure and stops.
fn fail(what: &str) -> ! {
    rprintln!("FATAL: {}", what);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Logs a startup failure with its error and stops.
fn fail_with(what: &str, error: impl core::fmt::Debug) -> ! {
    rprintln!("FATAL: {}: {:?}", what, error);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    rprintln!("PANIC: {}", info);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    rprintln!("HARD FAULT: {:?}", frame);
    loop {
        cortex_m::asm::wfi();
    }
}

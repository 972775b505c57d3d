//! Ferry's FTP server on the WIZnet W5500-EVB-Pico: an RP2040 with a W5500
//! on SPI0 that runs TCP/IP itself (`src/w5500.rs`), littlefs on the
//! second MiB of the QSPI flash (`src/storage.rs`), one user named at
//! build time, the engine polled from `main` with the core asleep in `WFI`
//! between millisecond ticks. No RTOS, no heap, one core. Logs go over RTT
//! (`probe-rs run` shows them); the green LED (GP25) is on while the
//! Ethernet link is up and the server listens.
//!
//! The loop is the one every board runs (docs/PORTING.md): poll the stack,
//! poll the server, sleep until the earliest deadline; SysTick (1 kHz)
//! wakes the core, the RP2040's microsecond timer is the clock.
//!
//! Build-time settings, from the environment of `cargo build` (README.md):
//! `FERRY_IP=192.168.1.50/24`, `FERRY_GATEWAY=192.168.1.1` (or `none`),
//! `FERRY_USER=ferry`, `FERRY_PASSWORD=ferry` (those are the defaults).
#![no_std]
#![no_main]

mod board;
mod storage;
mod w5500;

use core::mem::size_of;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{exception, ExceptionFrame};
use embedded_hal::digital::OutputPin;
use ferry_board::{FixedUser, LogObserver, Mac};
use ferry_core::{Config, Server};
use ferry_fs::littlefs::FileSlots;
use ferry_net::Clock;
use rp2040_hal::clocks::{init_clocks_and_plls, Clock as _};
use rp2040_hal::gpio::bank0::Gpio25;
use rp2040_hal::gpio::{FunctionSioOutput, Pin, PinState, PullDown};
use rp2040_hal::{pac, Sio, Timer, Watchdog};
use rtt_target::{rprintln, rtt_init_print};
use static_cell::StaticCell;

use crate::board::{BoardClock, DEFAULT_PASSWORD, PASSWORD, USER};
use crate::storage::Fs;
use crate::w5500::{Link, Stack, SESSIONS};

/// The second-stage boot loader, the flash's first 256 bytes (memory.x):
/// the board's W25Q16JV takes the W25Q080 one.
#[link_section = ".boot2"]
#[used]
#[no_mangle]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

// ---- The memory knobs (docs/PORTING.md says what each costs; the
// sessions are the W5500's sockets' limit, `src/w5500.rs`) ----

/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 2048;
/// Passive ports (PASV/EPSV).
const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The FTP control port.
const FTP_PORT: u16 = 21;
/// Default address, prefix and gateway (override at build time, see above).
const DEFAULT_IP: &str = "192.168.1.50/24";
const DEFAULT_GATEWAY: &str = "192.168.1.1";
/// The board's crystal.
const XOSC_HZ: u32 = 12_000_000;

type FtpServer = Server<Stack, Fs, SESSIONS, TRANSFER_BUFFER>;
type Led = Pin<Gpio25, FunctionSioOutput, PullDown>;

static SERVER: StaticCell<FtpServer> = StaticCell::new();

/// The network's addresses, for `w5500::start`.
pub struct Addressing {
    /// The board's IPv4 address.
    pub ip: Ipv4Addr,
    /// Its prefix length (`/24`).
    pub prefix: u8,
    /// The default route, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The MAC address (locally administered, from the flash's unique ID).
    pub mac: [u8; 6],
}

/// What `cargo xtask size` reads out of the ELF file: the same layout as
/// the other firmware's `FIRMWARE_RAM` (sessions, transfer buffer, server
/// for `SESSIONS` and one more, pool, sockets per session, socket rx and
/// tx buffers and slot, stack adapter and the adapter with one more
/// session's sockets, RAM disk, NIC driver, stack window (not measured),
/// littlefs's state of one open file, marker). The sockets and their
/// buffers are in the W5500, so the MCU's RAM holds only the adapter's
/// tables (the SPI driver inside them), the same for one more session.
#[no_mangle]
#[used]
pub static FIRMWARE_RAM: [u32; 16] = [
    SESSIONS as u32,
    TRANSFER_BUFFER as u32,
    size_of::<FtpServer>() as u32,
    size_of::<Server<Stack, Fs, { SESSIONS + 1 }, TRANSFER_BUFFER>>() as u32,
    w5500::HW_SOCKETS as u32,
    w5500::SOCKETS_PER_SESSION as u32,
    0,
    0,
    0,
    size_of::<Stack>() as u32,
    size_of::<Stack>() as u32,
    0,
    0,
    0,
    (size_of::<FileSlots<storage::Disk, { SESSIONS + 1 }>>()
        - size_of::<FileSlots<storage::Disk, SESSIONS>>()) as u32,
    0x4645_5252,
];

/// What start-up hands the serving loop: everything lives in `static`s.
struct Board {
    link: Link,
    stack: &'static mut Stack,
    server: &'static mut FtpServer,
    fs: Fs,
    clock: BoardClock,
    led: Led,
}

#[rp2040_hal::entry]
fn main() -> ! {
    rtt_init_print!();
    serve(start())
}

/// Brings the board up. Not inlined: the temporaries that build the
/// statics sit in this frame, which is gone before serving starts.
#[inline(never)]
fn start() -> Board {
    let (Some(mut dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take())
    else {
        fail("peripherals taken twice");
    };
    // 12 MHz crystal; 125 MHz core and peripheral clock (SPI0's).
    let mut watchdog = Watchdog::new(dp.WATCHDOG);
    let Ok(clocks) = init_clocks_and_plls(
        XOSC_HZ,
        dp.XOSC,
        dp.CLOCKS,
        dp.PLL_SYS,
        dp.PLL_USB,
        &mut dp.RESETS,
        &mut watchdog,
    ) else {
        fail("clocks did not start");
    };
    start_tick(&mut cp.SYST, clocks.system_clock.freq().to_Hz());
    let timer = Timer::new(dp.TIMER, &mut dp.RESETS, &clocks);
    let clock = BoardClock(timer);
    rprintln!(
        "ferry-rp2040-w5500 {}: {}, {} sessions",
        env!("CARGO_PKG_VERSION"),
        w5500::NAME,
        SESSIONS
    );

    let mut flash = storage::QspiFlash::new(dp.XIP_SSI);
    let (ip, prefix) = ferry_board::parse_ipv4_cidr(option_env!("FERRY_IP").unwrap_or(DEFAULT_IP))
        .unwrap_or_else(|| fail("FERRY_IP is not A.B.C.D/PREFIX"));
    let gateway =
        ferry_board::parse_gateway(option_env!("FERRY_GATEWAY").unwrap_or(DEFAULT_GATEWAY))
            .unwrap_or_else(|_| fail("FERRY_GATEWAY is not A.B.C.D"));
    let addressing = Addressing {
        ip,
        prefix,
        gateway,
        mac: mac_address(flash.unique_id()),
    };

    let sio = Sio::new(dp.SIO);
    let pins =
        rp2040_hal::gpio::Pins::new(dp.IO_BANK0, dp.PADS_BANK0, sio.gpio_bank0, &mut dp.RESETS);
    let led: Led = pins.gpio25.into_push_pull_output_in_state(PinState::Low);
    let started = w5500::start(
        w5500::Peripherals {
            spi: dp.SPI0,
            miso: pins.gpio16,
            cs: pins.gpio17,
            sck: pins.gpio18,
            mosi: pins.gpio19,
            reset: pins.gpio20,
            int: pins.gpio21,
            timer,
            peripheral_hz: clocks.peripheral_clock.freq().to_Hz(),
        },
        &mut dp.RESETS,
        &addressing,
    );
    let (stack, link) = started.unwrap_or_else(|e| fail_with(w5500::NAME, e));

    let mut fs = match storage::mount(flash) {
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
    rprintln!(
        "MAC {}; listening on ftp://{} once the link is up; login: user {} password {}",
        Mac(addressing.mac),
        listen,
        USER,
        if DEFAULT_PASSWORD {
            "ferry (the default)"
        } else {
            "as built (FERRY_PASSWORD)"
        }
    );

    Board {
        link,
        stack,
        server,
        fs,
        clock,
        led,
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
        clock,
        mut led,
    } = board;
    let mut auth = FixedUser::new(USER, PASSWORD);
    let mut observer = LogObserver::new(board::print_line);
    let mut next_link_check = clock.now();
    loop {
        let now = clock.now();
        if now >= next_link_check {
            let Ok(()) = led.set_state(PinState::from(link.check(stack)));
            next_link_check = now.add_millis(500);
        }
        let moved = link.poll(stack, now);
        let poll = server.poll(stack, &mut fs, &mut auth, &clock, &mut observer);
        if moved || poll.busy {
            continue;
        }
        let now = clock.now();
        let deadline = [poll.deadline, Some(next_link_check)]
            .into_iter()
            .flatten()
            .fold(link.next_poll(now), Ord::min);
        while clock.now() < deadline {
            // SysTick wakes the core every millisecond.
            cortex_m::asm::wfi();
        }
    }
}

/// Starts SysTick at 1 kHz from the core clock (`hz`): it only wakes the
/// core from `WFI` (the clock is the RP2040's timer).
fn start_tick(syst: &mut SYST, hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(hz / 1000 - 1);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
}

#[exception]
fn SysTick() {}

/// A locally administered MAC address made from the flash chip's unique ID.
fn mac_address(id: [u8; 8]) -> [u8; 6] {
    let [a, b, c, d, e, f, g, h] = id;
    [0x02, a ^ g, b ^ h, c, d ^ e, f]
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

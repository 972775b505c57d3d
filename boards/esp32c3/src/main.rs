//! Ferry's FTP server on an ESP32-C3 over Wi-Fi: esp-radio's station under
//! smoltcp (`wifi.rs`), littlefs on the flash partition `ferry`
//! (`storage.rs`), one user, the engine polled from the main thread.
//! Logs go to the USB serial/JTAG port or UART0 (`espflash flash
//! --monitor` shows them).
//!
//! The loop is the one every board runs (docs/PORTING.md): poll the stack,
//! poll the server, sleep until the earliest deadline. esp-radio's Wi-Fi
//! task runs beside it on esp-rtos, which idles the core (`WFI`) while
//! both sleep. The Wi-Fi driver has no way to end the loop's sleep when a
//! frame arrives, so the loop sleeps at most [`IDLE_POLL_MS`] at a time.
//!
//! Everything a user sets is build-time configuration, read from the
//! environment of `cargo build` (README.md): `FERRY_WIFI_SSID`,
//! `FERRY_WIFI_PASSWORD`, `FERRY_PASSWORD` (required: no image carries a
//! default password), `FERRY_USER` (default `ferry`), `FERRY_IP`
//! (default `192.168.1.50/24`) and `FERRY_GATEWAY` (`192.168.1.1`, or
//! `none`).
#![no_std]
#![no_main]

extern crate alloc;

mod storage;
mod wifi;

use core::mem::size_of;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_storage::FlashStorage;
use ferry_board::{FixedUser, LogObserver};
use ferry_core::{Config, Server};
use ferry_fs::littlefs::FileSlots;
use ferry_net::{Clock, Instant};
use static_cell::StaticCell;

use crate::storage::Fs;
use crate::wifi::{Link, Stack};

esp_bootloader_esp_idf::esp_app_desc!();

/// Prints one line of the log (esp-println: USB serial/JTAG or UART0).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { esp_println::println!($($arg)*) };
}

// ---- The memory knobs (docs/PORTING.md says what each costs; the
// sockets are `wifi.rs`'s) ----

/// Concurrent FTP sessions; one more gets 421.
pub const SESSIONS: usize = 4;
/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 2048;
/// The heap esp-radio allocates from (its buffers, its task's stack): in
/// the RAM the ROM bootloader used (reclaimed after boot) plus this much
/// more.
const RECLAIMED_HEAP_BYTES: usize = 64 * 1024;
const HEAP_BYTES: usize = 40 * 1024;
/// Passive ports (PASV/EPSV).
const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The FTP control port.
const FTP_PORT: u16 = 21;
/// The longest the loop sleeps before it looks for received frames.
const IDLE_POLL_MS: u64 = 2;

/// The login, from the environment at build time.
const USER: &str = match option_env!("FERRY_USER") {
    Some(user) => user,
    None => "ferry",
};
const PASSWORD: &str = env!("FERRY_PASSWORD");
/// Default address, prefix and gateway (override at build time, see above).
const DEFAULT_IP: &str = "192.168.1.50/24";
const DEFAULT_GATEWAY: &str = "192.168.1.1";

type FtpServer = Server<Stack, Fs, SESSIONS, TRANSFER_BUFFER>;
static SERVER: StaticCell<FtpServer> = StaticCell::new();

/// The network's addresses, for `wifi::start`.
pub struct Addressing {
    /// The board's IPv4 address.
    pub ip: Ipv4Addr,
    /// Its prefix length (`/24`).
    pub prefix: u8,
    /// The default route, if any.
    pub gateway: Option<Ipv4Addr>,
}

/// What `cargo xtask size` reads out of the ELF file: the same layout as
/// the other firmware's `FIRMWARE_RAM` (sessions, transfer buffer, server
/// for `SESSIONS` and one more, pool, sockets per session, socket buffers,
/// socket slot, stack adapter and the adapter with one more session's
/// sockets, RAM disk (0: none), NIC (here: the heap esp-radio allocates
/// from), stack window (0: not measured), littlefs's state of one open
/// file, marker).
#[no_mangle]
#[used]
pub static FIRMWARE_RAM: [u32; 16] = [
    SESSIONS as u32,
    TRANSFER_BUFFER as u32,
    size_of::<FtpServer>() as u32,
    size_of::<Server<Stack, Fs, { SESSIONS + 1 }, TRANSFER_BUFFER>>() as u32,
    wifi::POOL as u32,
    wifi::SOCKETS_PER_SESSION as u32,
    wifi::SOCKET_RX as u32,
    wifi::SOCKET_TX as u32,
    wifi::SOCKET_SLOT as u32,
    size_of::<Stack>() as u32,
    size_of::<
        ferry_net::smoltcp_stack::SmoltcpStack<'static, { wifi::POOL + wifi::SOCKETS_PER_SESSION }>,
    >() as u32,
    0,
    (RECLAIMED_HEAP_BYTES + HEAP_BYTES) as u32,
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
}

#[esp_hal::main]
fn main() -> ! {
    serve(start())
}

/// Brings the board up. Not inlined: the temporaries that build the
/// statics sit in this frame, which is gone before serving starts.
#[inline(never)]
fn start() -> Board {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: RECLAIMED_HEAP_BYTES);
    esp_alloc::heap_allocator!(size: HEAP_BYTES);
    // The scheduler esp-radio runs its Wi-Fi task on; this becomes its
    // main thread.
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    log!(
        "ferry-esp32c3 {}: Wi-Fi, {} sessions",
        env!("CARGO_PKG_VERSION"),
        SESSIONS
    );

    let (ip, prefix) = ferry_board::parse_ipv4_cidr(option_env!("FERRY_IP").unwrap_or(DEFAULT_IP))
        .unwrap_or_else(|| fail("FERRY_IP is not A.B.C.D/PREFIX"));
    let gateway =
        ferry_board::parse_gateway(option_env!("FERRY_GATEWAY").unwrap_or(DEFAULT_GATEWAY))
            .unwrap_or_else(|_| fail("FERRY_GATEWAY is not A.B.C.D"));
    let addressing = Addressing {
        ip,
        prefix,
        gateway,
    };

    // With the radio on, the RNG is a true random source: smoltcp's seed
    // (TCP sequence numbers, ephemeral ports).
    let (stack, link) = {
        let rng = Rng::new();
        let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
        wifi::start(peripherals.WIFI, &addressing, seed)
    }
    .unwrap_or_else(|e| fail_with("Wi-Fi", e));

    let mut fs = match storage::mount(FlashStorage::new(peripherals.FLASH)) {
        Ok((fs, formatted)) => {
            log!(
                "littlefs: partition {}, {} blocks of {} KiB, {}",
                storage::LABEL,
                storage::BLOCK_COUNT,
                storage::BLOCK_SIZE / 1024,
                if formatted { "formatted" } else { "mounted" }
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
        log!("removed {}: an upload's leftover", path.escape_ascii())
    });
    let listen = SocketAddr::new(IpAddr::V4(ip), FTP_PORT);
    if let Err(e) = server.listen(stack, listen) {
        fail_with("listen", e);
    }
    log!(
        "listening on ftp://{} once Wi-Fi is joined; login: user {}",
        listen,
        USER
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
    let mut observer = LogObserver::new(print_line);
    let mut next_link_check = clock.now();
    loop {
        let now = clock.now();
        if now >= next_link_check {
            link.check(now);
            next_link_check = clock.now().add_millis(500);
        }
        let moved = link.poll(stack, clock.now());
        let poll = server.poll(stack, &mut fs, &mut auth, &clock, &mut observer);
        if moved || poll.busy {
            continue;
        }
        let now = clock.now();
        let deadline = [
            poll.deadline,
            link.next_poll(stack, now),
            Some(next_link_check),
            Some(now.add_millis(IDLE_POLL_MS)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
        sleep_ms(deadline.0.saturating_sub(now.0));
    }
}

/// Lets the other threads (the Wi-Fi task) run, or the core idle, for
/// `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    if ms > 0 {
        esp_rtos::CurrentThreadHandle::get().delay(esp_hal::time::Duration::from_millis(ms));
    }
}

/// The log's print function for the engine's events.
fn print_line(args: core::fmt::Arguments<'_>) {
    log!("{}", args);
}

/// The board's clock: milliseconds since boot (esp-hal's system timer);
/// no wall clock.
#[derive(Debug, Clone, Copy)]
pub struct BoardClock;

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(
            esp_hal::time::Instant::now()
                .duration_since_epoch()
                .as_millis(),
        )
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

/// Logs a startup failure and stops.
fn fail(what: &str) -> ! {
    log!("FATAL: {}", what);
    loop {
        sleep_ms(1000);
    }
}

/// Logs a startup failure with its error and stops.
fn fail_with(what: &str, error: impl core::fmt::Debug) -> ! {
    log!("FATAL: {}: {:?}", what, error);
    loop {
        sleep_ms(1000);
    }
}

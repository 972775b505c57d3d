//! Ferry's FTP server as Cortex-M3 firmware for QEMU's mps2-an385 board.
//!
//! What runs: the LAN9118 Ethernet controller (`lan9118.rs`, polled) under
//! smoltcp through Ferry's `SmoltcpStack`; littlefs on a RAM disk, formatted
//! at boot; one fixed user; the engine, `Server::poll`, called
//! from `main` with the core asleep in `WFI` between deadlines. No RTOS, no
//! heap: every buffer is a `static` whose size is a constant below.
//!
//! The loop (the one every board runs; see docs/PORTING.md):
//! 1. `stack.poll(now, &mut nic)` moves frames in and out;
//! 2. `server.poll(..)` serves the sessions;
//! 3. when neither did anything, sleep until the engine's deadline, the
//!    stack's `poll_delay`, or a received frame, whichever comes first.
//!    SysTick wakes the core every millisecond to check (`clock.rs`).
//!
//! Logs go to QEMU's standard output over semihosting; the line
//! `listening on ftp://IP:21` says the server is up. A panic or a fault
//! logs and stops QEMU with exit code 1.
//!
//! With the `tls` feature (`tls.rs`) the engine runs on ferry-tls's
//! `TlsStack` over smoltcp: FTPES on port 21, implicit FTPS on a second
//! port, and a heap for the TLS connections (the only heap).
#![no_std]
#![no_main]

#[cfg(feature = "tls")]
extern crate alloc;

mod boot_args;
mod clock;
mod lan9118;
mod semihosting;
mod stack_usage;
#[cfg(feature = "tls")]
mod tls;

use core::mem::{size_of, MaybeUninit};
use core::net::{IpAddr, SocketAddr};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use ferry_board::{FixedUser, LogObserver, VolumeCells};
use ferry_core::server::Poll;
use ferry_core::{Config, Server};
use ferry_fs::block::RamDisk;
use ferry_fs::littlefs::{FileSlots, LfsStorage, LittleFs};
use ferry_net::smoltcp_stack::{smol_instant, SmoltcpStack, StackConfig};
use ferry_net::Clock;
use smoltcp::iface::{Interface, SocketStorage};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use static_cell::{ConstStaticCell, StaticCell};

use crate::boot_args::BootArgs;
use crate::clock::BoardClock;
use crate::lan9118::{Frames, Lan9118};

// ---- The memory knobs (docs/PORTING.md says what each costs) ----

/// Concurrent FTP sessions (control connections); one more gets 421.
const SESSIONS: usize = 4;
/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 2048;
/// TCP sockets: 2 listening on port 21, and per session its control
/// connection, 2 listening on its passive port and its data connection,
/// plus 4 still flushing after a close (see `StackConfig`).
const SOCKETS_PER_SESSION: usize = 4;
const POOL: usize = 2 + TLS_LISTENERS + SESSIONS * SOCKETS_PER_SESSION + 4;
/// With `tls`: 2 more listening on the implicit FTPS port.
const TLS_LISTENERS: usize = if cfg!(feature = "tls") { 2 } else { 0 };
/// Receive buffer (the TCP window) and transmit buffer of each socket.
/// Two uploads at once advertise 2 × 8 KiB, a little more than QEMU's
/// LAN9118 model buffers (~10 KiB): TCP then retransmits now and then.
const SOCKET_RX: usize = 8 * 1024;
const SOCKET_TX: usize = 8 * 1024;
/// The littlefs volume on the RAM disk: 512 blocks of 4 KiB.
const BLOCK_SIZE: usize = 4096;
const BLOCK_COUNT: usize = 512;
const RAM_DISK: usize = BLOCK_SIZE * BLOCK_COUNT;
/// Passive ports (PASV/EPSV); `cargo xtask qemu` forwards these from the
/// host one to one.
const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The FTP control port.
const FTP_PORT: u16 = 21;
/// The user name the firmware accepts.
const USER: &str = "ferry";
/// Its password. A fixed password in a firmware image is for a test rig
/// only: a product keeps a salted hash in its configuration storage.
const PASSWORD: &str = "ferry";

type Disk = LfsStorage<RamDisk<&'static mut [u8]>, BLOCK_SIZE, BLOCK_COUNT>;
/// The log of the engine's events: one line each over semihosting, with
/// each session's peer.
type Log = LogObserver<SESSIONS>;
type Fs = LittleFs<'static, Disk, SESSIONS>;
type Stack = SmoltcpStack<'static, POOL>;
/// The stack the engine runs on: smoltcp, or TLS over it (`tls`).
#[cfg(not(feature = "tls"))]
type Net = Stack;
#[cfg(feature = "tls")]
type Net = tls::Net<Stack>;
type FtpServer = Server<Net, Fs, SESSIONS, TRANSFER_BUFFER>;

// ---- The statics: all the RAM the firmware uses, besides its stack ----

static RAM_DISK_BYTES: ConstStaticCell<[u8; RAM_DISK]> = ConstStaticCell::new([0; RAM_DISK]);
// The socket buffers are all zero bytes at boot, so they take no flash
// (.bss); smoltcp's empty socket slots are not all zero bytes, so they are
// filled in at run time rather than copied from flash (.data). (Ferry's
// `StackStorage` keeps both in one value, and so puts them all in .data.)
static SOCKET_RX_BUFFERS: ConstStaticCell<[[u8; SOCKET_RX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_RX]; POOL]);
static SOCKET_TX_BUFFERS: ConstStaticCell<[[u8; SOCKET_TX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_TX]; POOL]);
static SOCKET_SLOTS: StaticCell<[SocketStorage<'static>; POOL]> = StaticCell::new();
/// The NIC driver's frame buffers (zero bytes: .bss).
static NIC_FRAMES: ConstStaticCell<Frames> = ConstStaticCell::new(Frames::new());
static NIC: StaticCell<Lan9118> = StaticCell::new();
static STACK: StaticCell<Net> = StaticCell::new();
/// The littlefs volume on the RAM disk, with the state of each open file:
/// one per session (each has at most one).
static VOLUME: VolumeCells<RamDisk<&'static mut [u8]>, BLOCK_SIZE, BLOCK_COUNT, SESSIONS> =
    VolumeCells::new();
/// The engine, set up in place at start-up: cleared to zero bytes
/// (`ZEROED_SERVER`, which compiles to a memset of the static), then
/// `Server::reset`. `Server::new` would build the ~10 KB server on the
/// stack and move it here: ~19 KB of start-up stack with its session slots.
static SERVER: StaticCell<FtpServer> = StaticCell::new();
/// The login and the event log, in `static`s rather than in `serve`'s
/// frame, which every serving path's stack includes.
static AUTH: ConstStaticCell<FixedUser<'static>> =
    ConstStaticCell::new(FixedUser::new(USER, PASSWORD));
static OBSERVER: StaticCell<Log> = StaticCell::new();

/// The server as all zero bytes, for [`SERVER`] until `Server::reset`
/// writes every field.
// SAFETY: the compiler checks that all zero bytes are a valid `FtpServer`:
// a constant's value is validated when it is evaluated, so a field for
// which zero is not a valid value (a reference, a `NonNull`, an enum
// without a zero discriminant) fails the build here. Zero bytes may break
// the invariants of the types inside (an `Option` may read as `Some` of
// zeros), but nothing looks at them: `Server::reset` forgets what the
// server held without dropping it, empties its buffers (reading only
// their lengths, 0) and writes every other field before the server is
// used.
const ZEROED_SERVER: FtpServer = unsafe { core::mem::zeroed() };

/// What `cargo xtask size` reads out of the ELF file (little-endian
/// `u32`s, in this order): sessions, transfer buffer, `size_of` the server
/// for `SESSIONS` and for one more session, pool sockets, sockets per
/// session, socket receive and transmit buffer, `size_of` one smoltcp
/// socket slot, `size_of` the stack adapter for `POOL` and for
/// `POOL + SOCKETS_PER_SESSION` sockets, the RAM disk, `size_of` the NIC
/// driver with its frame buffers, the painted stack window, littlefs's state of one open file
/// (`FileSlots`, one per session).
#[no_mangle]
#[used]
pub static FIRMWARE_RAM: [u32; 16] = [
    SESSIONS as u32,
    TRANSFER_BUFFER as u32,
    size_of::<FtpServer>() as u32,
    size_of::<Server<Stack, Fs, { SESSIONS + 1 }, TRANSFER_BUFFER>>() as u32,
    POOL as u32,
    SOCKETS_PER_SESSION as u32,
    SOCKET_RX as u32,
    SOCKET_TX as u32,
    size_of::<SocketStorage<'static>>() as u32,
    size_of::<Stack>() as u32,
    size_of::<SmoltcpStack<'static, { POOL + SOCKETS_PER_SESSION }>>() as u32,
    RAM_DISK as u32,
    (size_of::<Lan9118>() + size_of::<Frames>()) as u32,
    stack_usage::WINDOW as u32,
    (size_of::<FileSlots<Disk, { SESSIONS + 1 }>>() - size_of::<FileSlots<Disk, SESSIONS>>())
        as u32,
    0x4645_5252, // "FERR": a marker that the layout is this one
];

/// What start-up hands the serving loop: everything lives in `static`s.
struct Board {
    nic: &'static mut Lan9118,
    stack: &'static mut Net,
    server: &'static mut FtpServer,
    fs: Fs,
    auth: &'static mut FixedUser<'static>,
    observer: &'static mut Log,
}

#[entry]
fn main() -> ! {
    stack_usage::paint();
    let board = start();
    // Start-up's stack use (building the statics), then measure serving's
    // from scratch: the two figures are logged apart (`cargo xtask test`
    // holds both to the budget in xtask/src/firmware.rs).
    log!("start-up used {} bytes of stack", stack_usage::high_water());
    stack_usage::paint();
    serve(board)
}

/// Brings the board up, one phase after the other. Each phase is a
/// function of its own, not inlined: its temporaries (the values that
/// build the statics) sit in its frame, which is gone before the next
/// phase starts, so start-up needs the deepest phase's stack, not the sum.
#[inline(never)]
fn start() -> Board {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("core peripherals taken twice");
    };
    let args = boot_args();
    clock::start(&mut core.SYST, semihosting::unix_time());
    log!(
        "ferry-qemu-mps2-an385 {} ({} profile): Cortex-M3, {} sessions, {} sockets of {} + {} KiB, littlefs on a {} KiB RAM disk",
        env!("CARGO_PKG_VERSION"),
        PROFILE,
        SESSIONS,
        POOL,
        SOCKET_RX / 1024,
        SOCKET_TX / 1024,
        RAM_DISK / 1024
    );
    let (nic, stack) = start_network(&args);
    let fs = mount();
    let server = start_server(&args, stack);
    let observer = OBSERVER.init_with(|| Log::with_peers(semihosting::log).verbose(args.verbose));
    Board {
        nic,
        stack,
        server,
        fs,
        auth: AUTH.take(),
        observer,
    }
}

/// The protocol profile the engine is built with (the board's `full`
/// feature), as `cargo xtask` names it.
const PROFILE: &str = if cfg!(feature = "full") {
    "default"
} else {
    "emftp"
};

/// The boot arguments QEMU passes over semihosting.
#[inline(never)]
fn boot_args() -> BootArgs {
    let mut cmdline = [0u8; 256];
    BootArgs::parse(semihosting::command_line(&mut cmdline))
}

/// The NIC, the smoltcp interface with the board's address and route, and
/// the socket pool. Each step is a phase of its own, as in [`start`]:
/// smoltcp's interface, the stack adapter and a TCP socket are each built
/// on the stack before they are moved into their static.
#[inline(never)]
fn start_network(args: &BootArgs) -> (&'static mut Lan9118, &'static mut Net) {
    let nic = start_nic();
    let stack = start_stack(args, nic);
    add_sockets(plain(stack));
    log!(
        "LAN9118 id {:#010x}, MAC {}, address {}/{}",
        nic.id_rev(),
        nic.mac_address(),
        args.ip,
        args.prefix
    );
    (nic, stack)
}

/// The LAN9118, reset and running.
#[inline(never)]
fn start_nic() -> &'static mut Lan9118 {
    // SAFETY: the mps2-an385 has its LAN9118 at this address, and this is
    // the only driver for it.
    match unsafe { Lan9118::new(lan9118::MPS2_AN385_BASE, NIC_FRAMES.take()) } {
        Ok(nic) => NIC.init(nic),
        Err(e) => fail_with("LAN9118", e),
    }
}

/// smoltcp's interface with the board's address and route, in the stack
/// adapter, which has no sockets yet.
#[inline(never)]
fn start_stack(args: &BootArgs, nic: &mut Lan9118) -> &'static mut Net {
    let clock = BoardClock;
    // No RNG on this board: mix the host's time and the NIC's free-running
    // counter (a real board seeds from its hardware RNG).
    let seed = (u64::from(clock.unix_time().unwrap_or(0) as u32) << 32) | u64::from(nic.free_run());
    let mut iface_config =
        smoltcp::iface::Config::new(HardwareAddress::Ethernet(nic.mac_address()));
    iface_config.random_seed = seed;
    let iface = Interface::new(iface_config, nic, smol_instant(clock.now()));
    let stack_config = StackConfig {
        random_seed: seed,
        ..StackConfig::default()
    };
    let slots = socket_slots();
    #[cfg(not(feature = "tls"))]
    let net: &'static mut Net = STACK.init_with(|| SmoltcpStack::new(iface, slots, stack_config));
    #[cfg(feature = "tls")]
    let net: &'static mut Net = STACK.init_with(|| {
        tls::wrap(
            SmoltcpStack::new(iface, slots, stack_config),
            args.implicit_port,
            seed ^ 0x7465_7374_2d6f_6e6c,
        )
    });
    let stack = plain(net);
    let iface = stack.interface_mut();
    let mut added = Ok(());
    iface.update_ip_addrs(|addrs| {
        added = addrs.push(IpCidr::new(IpAddress::Ipv4(args.ip), args.prefix));
    });
    if added.is_err() {
        fail("cannot add the address to the interface");
    }
    if let Some(gateway) = args.gateway {
        if iface.routes_mut().add_default_ipv4_route(gateway).is_err() {
            fail("cannot add the default route");
        }
    }
    net
}

/// The smoltcp stack under the engine's.
fn plain(net: &mut Net) -> &mut Stack {
    #[cfg(feature = "tls")]
    return net.inner_mut();
    #[cfg(not(feature = "tls"))]
    net
}

/// The socket pool: a TCP socket over each pair of buffers.
#[inline(never)]
fn add_sockets(stack: &mut Stack) {
    let (rx, tx) = (SOCKET_RX_BUFFERS.take(), SOCKET_TX_BUFFERS.take());
    if let Err(e) = ferry_board::add_sockets(stack, rx, tx) {
        fail_with("socket pool", e);
    }
}

/// The engine, listening on the FTP port.
#[inline(never)]
fn start_server(args: &BootArgs, stack: &mut Net) -> &'static mut FtpServer {
    #[allow(unused_mut)] // without `full`, nothing changes it below
    let mut config = Config {
        passive_ports: PASSIVE_PORTS,
        passive_address: args.passive_address.map(IpAddr::V4),
        ..Config::default()
    };
    // littlefs has no permission bits (SITE CHMOD exists in the default
    // profile only).
    #[cfg(feature = "full")]
    {
        config.site_chmod = false;
    }
    // In place (see `SERVER`).
    let server = SERVER.init(ZEROED_SERVER);
    server.reset(config);
    let listen = SocketAddr::new(IpAddr::V4(args.ip), FTP_PORT);
    if let Err(e) = server.listen(stack, listen) {
        fail_with("listen", e);
    }
    #[cfg(feature = "tls")]
    {
        let implicit = SocketAddr::new(IpAddr::V4(args.ip), args.implicit_port);
        if let Err(e) = server.listen(stack, implicit) {
            fail_with("listen (implicit FTPS)", e);
        }
        tls::log_start(implicit);
    }
    log!(
        "listening on ftp://{listen} (passive ports {}-{}{}); login: user {USER} password {PASSWORD}",
        PASSIVE_PORTS.0,
        PASSIVE_PORTS.1,
        PassiveNote(args.passive_address)
    );
    server
}

/// The board loop.
#[inline(never)]
fn serve(board: Board) -> ! {
    let Board {
        nic,
        stack,
        server,
        mut fs,
        auth,
        observer,
    } = board;
    let clock = BoardClock;
    let mut sessions = 0;
    #[cfg(feature = "tls")]
    let mut was_quiet = true;
    loop {
        let moved = poll_network(plain(stack), nic, &clock);
        let poll = poll_server(server, stack, &mut fs, auth, observer);
        let now_sessions = server.session_count();
        if now_sessions == 0 && sessions > 0 {
            let stats = nic.stats();
            log!(
                "idle: {} frames in ({} dropped), {} out ({} dropped); serving stack high water {} bytes",
                stats.rx_frames,
                stats.rx_dropped,
                stats.tx_frames,
                stats.tx_dropped,
                stack_usage::high_water()
            );
        }
        // Once no session is left and the last TLS connection has closed:
        // the heap should be back where it was before any.
        #[cfg(feature = "tls")]
        {
            let quiet = now_sessions == 0 && stack.lingering() == 0;
            if quiet && !was_quiet {
                let (used, high) = tls::heap_use();
                log!("heap: {used} bytes in use, high water {high} bytes (no TLS connection open)");
            }
            was_quiet = quiet;
        }
        sessions = now_sessions;
        // Decrypted bytes can wait in the TLS layer, where the NIC's
        // readiness does not see them.
        #[cfg(feature = "tls")]
        let busy = moved || poll.busy || stack.has_pending();
        #[cfg(not(feature = "tls"))]
        let busy = moved || poll.busy;
        if busy {
            continue;
        }
        // Sleep until the earlier deadline, or until a frame arrives.
        let now = clock.now();
        let network = plain(stack)
            .poll_delay(smol_instant(now))
            .map(|d| now.add_millis(d.total_millis()));
        #[cfg(feature = "tls")]
        let network = earlier(network, stack.poll_at());
        let deadline = earlier(poll.deadline, network);
        while !nic.rx_pending() && deadline.is_none_or(|d| clock.now() < d) {
            // SysTick wakes the core within a millisecond.
            cortex_m::asm::wfi();
        }
    }
}

/// The earlier of two deadlines.
fn earlier(
    a: Option<ferry_net::Instant>,
    b: Option<ferry_net::Instant>,
) -> Option<ferry_net::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// smoltcp's empty socket slots, written in place into their `static`: an
/// array of them built on the stack first would take `POOL` × 336 bytes
/// of start-up stack. (They are not all zero bytes, so a
/// `ConstStaticCell` would keep a copy of them in flash.)
fn socket_slots() -> &'static mut [SocketStorage<'static>; POOL] {
    let cell = SOCKET_SLOTS.uninit();
    // SAFETY: `MaybeUninit<[T; N]>` has the layout of `[MaybeUninit<T>; N]`
    // (`MaybeUninit<T>` has the layout of `T`), and the reference is the
    // only one to the cell's memory while it lives.
    let each = unsafe {
        &mut *cell
            .as_mut_ptr()
            .cast::<[MaybeUninit<SocketStorage<'static>>; POOL]>()
    };
    for slot in each.iter_mut() {
        slot.write(SocketStorage::EMPTY);
    }
    // SAFETY: the loop above wrote every element.
    unsafe { cell.assume_init_mut() }
}

/// smoltcp moves frames in and out. A frame of its own (not inlined into
/// the loop), so that smoltcp's locals and the engine's never sit on the
/// stack at the same time: the deeper of the two counts, not their sum.
#[inline(never)]
fn poll_network(stack: &mut Stack, nic: &mut Lan9118, clock: &BoardClock) -> bool {
    stack.poll(smol_instant(clock.now()), nic)
}

/// The engine serves its sessions; a frame of its own, as
/// [`poll_network`].
#[inline(never)]
fn poll_server(
    server: &mut FtpServer,
    stack: &mut Net,
    fs: &mut Fs,
    auth: &mut FixedUser<'static>,
    observer: &mut Log,
) -> Poll {
    server.poll(stack, fs, auth, &BoardClock, observer)
}

/// Formats the RAM disk as littlefs and mounts it, for the whole run.
#[inline(never)]
fn mount() -> Fs {
    let disk = match RamDisk::new(&mut RAM_DISK_BYTES.take()[..], BLOCK_SIZE) {
        Ok(disk) => disk,
        Err(e) => fail_with("RAM disk", e),
    };
    let fs = match VOLUME.mount(disk, true) {
        Ok((fs, _formatted)) => fs,
        Err(e) => fail_with("littlefs", e),
    };
    log!(
        "littlefs: {} blocks of {} bytes on a RAM disk, formatted",
        BLOCK_COUNT,
        BLOCK_SIZE
    );
    fs.with_clock(clock::unix_seconds)
}

/// ` (PASV names A.B.C.D)` when the passive address is overridden.
struct PassiveNote(Option<core::net::Ipv4Addr>);

impl core::fmt::Display for PassiveNote {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, ", PASV names {ip}"),
            None => Ok(()),
        }
    }
}

/// Logs a startup failure and stops QEMU with exit code 1.
fn fail(what: &str) -> ! {
    log!("FATAL: {what}");
    semihosting::exit_failure()
}

/// Logs a startup failure with its error and stops QEMU with exit code 1.
fn fail_with(what: &str, error: impl core::fmt::Debug) -> ! {
    log!("FATAL: {what}: {error:?}");
    semihosting::exit_failure()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    log!("PANIC: {info}");
    semihosting::exit_failure()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    log!("HARD FAULT: {frame:?}");
    semihosting::exit_failure()
}

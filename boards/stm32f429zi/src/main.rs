//! Ferry's FTP server on a NUCLEO-F429ZI: the STM32F429's Ethernet MAC
//! (`stm32-eth`) under smoltcp through Ferry's `SmoltcpStack`, littlefs on
//! the internal flash (or a RAM disk), one fixed user, the engine polled
//! from `main` with the core asleep in `WFI` between deadlines. No RTOS, no
//! heap. Logs go over RTT (`probe-rs run` shows them).
//!
//! The loop is the one every board runs (docs/PORTING.md): poll the stack,
//! poll the server, sleep until the earlier deadline; the Ethernet DMA's
//! interrupt and SysTick (1 kHz) wake the core.
//!
//! Network settings are build-time: `FERRY_IP=192.168.1.50/24` and
//! `FERRY_GATEWAY=192.168.1.1` in the environment of `cargo build` (those
//! are the defaults). README.md has the whole procedure.
#![no_std]
#![no_main]

mod board;
mod net;
mod storage;

use core::mem::size_of;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use ferry_core::{Config, Server};
use ferry_net::smoltcp_stack::{smol_instant, SmoltcpStack, StackConfig};
use ferry_net::Clock;
use rand_core::RngCore;
use rtt_target::{rprintln, rtt_init_print};
use smoltcp::iface::{Interface, SocketStorage};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use static_cell::{ConstStaticCell, StaticCell};
use stm32f4xx_hal::pac::{self, interrupt};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rng::RngExt;

use crate::board::{BoardClock, FixedUser, RttObserver, PASSWORD, USER};
use crate::net::Nic;
use crate::storage::Fs;

// ---- The memory knobs (docs/PORTING.md says what each costs) ----

/// Concurrent FTP sessions; one more gets 421.
const SESSIONS: usize = 4;
/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 2048;
/// TCP sockets: 2 listening on port 21, per session its control connection,
/// 2 listening on its passive port and its data connection, plus 2 still
/// flushing after a close.
const SOCKETS_PER_SESSION: usize = 4;
const POOL: usize = 2 + SESSIONS * SOCKETS_PER_SESSION + 2;
/// Receive buffer (the TCP window) and transmit buffer of each socket:
/// 20 × 6 KiB of the 192 KiB of SRAM.
const SOCKET_RX: usize = 4 * 1024;
const SOCKET_TX: usize = 2 * 1024;
/// Passive ports (PASV/EPSV).
const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The FTP control port.
const FTP_PORT: u16 = 21;
/// Default address, prefix and gateway (override at build time, see above).
const DEFAULT_IP: &str = "192.168.1.50/24";
const DEFAULT_GATEWAY: &str = "192.168.1.1";

type Stack = SmoltcpStack<'static, POOL>;
type FtpServer = Server<Stack, Fs, SESSIONS, TRANSFER_BUFFER>;

static SOCKET_RX_BUFFERS: ConstStaticCell<[[u8; SOCKET_RX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_RX]; POOL]);
static SOCKET_TX_BUFFERS: ConstStaticCell<[[u8; SOCKET_TX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_TX]; POOL]);
static SOCKET_SLOTS: StaticCell<[SocketStorage<'static>; POOL]> = StaticCell::new();
static NIC: StaticCell<Nic> = StaticCell::new();
static STACK: StaticCell<Stack> = StaticCell::new();
static SERVER: StaticCell<FtpServer> = StaticCell::new();

/// What `cargo xtask size` reads out of the ELF file: the same layout as
/// the QEMU firmware's `FIRMWARE_RAM` (sessions, transfer buffer, server
/// for `SESSIONS` and one more, pool, sockets per session, socket buffers,
/// socket slot, stack adapter for `POOL` and one more session's sockets,
/// RAM disk (0: none in SRAM), NIC driver with its rings, stack window
/// (0: not measured), marker).
#[no_mangle]
#[used]
pub static FIRMWARE_RAM: [u32; 15] = [
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
    0,
    (size_of::<Nic>()
        + net::RX_RING * size_of::<stm32_eth::dma::RxRingEntry>()
        + net::TX_RING * size_of::<stm32_eth::dma::TxRingEntry>()) as u32,
    0,
    0x4645_5252,
];

/// What start-up hands the serving loop: everything lives in `static`s.
struct Board {
    nic: &'static mut Nic,
    phy: net::EthPhy,
    stack: &'static mut Stack,
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
/// stack has only the ~37 KB of SRAM the statics leave).
#[inline(never)]
fn start() -> Board {
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        fail("peripherals taken twice");
    };
    // The ST-LINK feeds 8 MHz into OSC_IN (HSE bypass); 168 MHz core, and
    // the 48 MHz clock the RNG needs.
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
    let clock = BoardClock;
    let seed = dp.RNG.constrain(&clocks).next_u64();
    let (ip, prefix) = parse_cidr(option_env!("FERRY_IP").unwrap_or(DEFAULT_IP))
        .unwrap_or_else(|| fail("FERRY_IP is not A.B.C.D/PREFIX"));
    let gateway: Option<Ipv4Addr> = match option_env!("FERRY_GATEWAY").unwrap_or(DEFAULT_GATEWAY) {
        "none" => None,
        text => Some(
            text.parse()
                .unwrap_or_else(|_| fail("FERRY_GATEWAY is not A.B.C.D")),
        ),
    };
    rprintln!(
        "ferry-stm32f429zi {}: {} sessions, {} sockets of {} + {} KiB",
        env!("CARGO_PKG_VERSION"),
        SESSIONS,
        POOL,
        SOCKET_RX / 1024,
        SOCKET_TX / 1024
    );

    let pins = net::Pins {
        gpioa: dp.GPIOA.split(),
        gpiob: dp.GPIOB.split(),
        gpioc: dp.GPIOC.split(),
        gpiog: dp.GPIOG.split(),
    };
    let parts = stm32_eth::PartsIn {
        mac: dp.ETHERNET_MAC,
        mmc: dp.ETHERNET_MMC,
        dma: dp.ETHERNET_DMA,
    };
    let (nic, phy) = match net::start(parts, pins, clocks) {
        Ok((nic, phy)) => (NIC.init(nic), phy),
        Err(e) => fail_with("Ethernet", e),
    };
    let mac = mac_address();
    let mut iface_config = smoltcp::iface::Config::new(HardwareAddress::Ethernet(mac));
    iface_config.random_seed = seed;
    let mut iface = Interface::new(iface_config, nic, smol_instant(clock.now()));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), prefix));
    });
    if let Some(gateway) = gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(gateway);
    }
    let slots = SOCKET_SLOTS.init([SocketStorage::EMPTY; POOL]);
    let stack_config = StackConfig {
        random_seed: seed,
        ..StackConfig::default()
    };
    let stack: &'static mut Stack = STACK.init(SmoltcpStack::new(iface, slots, stack_config));
    let buffers = SOCKET_RX_BUFFERS
        .take()
        .iter_mut()
        .zip(SOCKET_TX_BUFFERS.take());
    for (rx, tx) in buffers {
        if let Err(e) = stack.add_socket(&mut rx[..], &mut tx[..]) {
            fail_with("socket pool", e);
        }
    }

    #[cfg(feature = "storage-flash")]
    let device = storage::Device::new(dp.FLASH);
    #[cfg(feature = "storage-ram")]
    let device = storage::take_ram_disk().unwrap_or_else(|| fail("RAM disk taken twice"));
    let fs = match storage::mount(device) {
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
    let listen = SocketAddr::new(IpAddr::V4(ip), FTP_PORT);
    if let Err(e) = server.listen(stack, listen) {
        fail_with("listen", e);
    }
    rprintln!(
        "MAC {}; listening on ftp://{} once the link is up; login: user {} password {}",
        mac,
        listen,
        USER,
        PASSWORD
    );

    Board {
        nic,
        phy,
        stack,
        server,
        fs,
    }
}

/// The board loop.
#[inline(never)]
fn serve(board: Board) -> ! {
    let Board {
        nic,
        mut phy,
        stack,
        server,
        mut fs,
    } = board;
    let clock = BoardClock;
    let mut auth = FixedUser;
    let mut observer = RttObserver;
    let mut link_up = false;
    let mut next_link_check = clock.now();
    loop {
        let now = clock.now();
        if now >= next_link_check {
            let up = net::update_link(&mut phy, link_up);
            if up != link_up {
                if up {
                    rprintln!("link up: {}", net::speed_name(&mut phy));
                } else {
                    rprintln!("link down");
                }
                link_up = up;
            }
            next_link_check = now.add_millis(500);
        }
        let moved = stack.poll(smol_instant(now), nic);
        let poll = server.poll(stack, &mut fs, &mut auth, &clock, &mut observer);
        if moved || poll.busy {
            continue;
        }
        let now = clock.now();
        let network = stack
            .poll_delay(smol_instant(now))
            .map(|d| now.add_millis(d.total_millis()));
        let deadline = [poll.deadline, network, Some(next_link_check)]
            .into_iter()
            .flatten()
            .min();
        while !nic.rx_pending() && deadline.is_none_or(|d| clock.now() < d) {
            // The Ethernet interrupt or SysTick (1 ms) wakes the core.
            cortex_m::asm::wfi();
        }
    }
}

/// A locally administered MAC address made from the chip's unique ID.
fn mac_address() -> EthernetAddress {
    let uid = stm32f4xx_hal::signature::Uid::get();
    let lot = uid.lot_num().as_bytes();
    let mut hash = u32::from(uid.waf_num());
    for &b in lot {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    let [a, b] = uid.x().to_le_bytes();
    let [c, d] = uid.y().to_le_bytes();
    EthernetAddress([0x02, (hash & 0xFF) as u8, a ^ (hash >> 8) as u8, b, c, d])
}

/// `A.B.C.D/P`.
fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((ip.parse().ok()?, prefix))
}

#[interrupt]
fn ETH() {
    // Acknowledges the DMA's interrupt; waking the core was its purpose.
    let _ = stm32_eth::eth_interrupt_handler();
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

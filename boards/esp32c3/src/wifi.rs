//! The network: esp-radio's Wi-Fi station under smoltcp, through Ferry's
//! `SmoltcpStack` and `ferry_board::DriverDevice` (esp-radio's interface
//! is an embassy-net driver; the device polls it without an executor).
//!
//! esp-radio runs the Wi-Fi driver's own task on esp-rtos, preemptively;
//! this board's loop is the scheduler's main thread. The station joins
//! the access point at boot and again whenever it loses it
//! ([`Link::check`]); joining blocks the loop for up to
//! [`JOIN_TIMEOUT_MS`], which costs nothing while there is no link.
use core::future::Future;
use core::mem::size_of;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use esp_hal::peripherals::WIFI;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
};
use ferry_board::{DriverDevice, Mac};
use ferry_net::smoltcp_stack::{smol_instant, SmoltcpError, SmoltcpStack, StackConfig};
use ferry_net::{Clock, Instant};
use smoltcp::iface::SocketStorage;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use static_cell::{ConstStaticCell, StaticCell};

use crate::{log, Addressing, BoardClock, SESSIONS};

/// The access point, from the environment at build time (README.md).
pub const SSID: &str = env!("FERRY_WIFI_SSID");
/// Its passphrase (empty: an open network).
const PASSPHRASE: &str = env!("FERRY_WIFI_PASSWORD");

// ---- The memory knobs (docs/PORTING.md says what each costs) ----

/// TCP sockets: 2 listening on port 21, per session its control connection,
/// 2 listening on its passive port and its data connection, plus 2 still
/// flushing after a close.
pub const SOCKETS_PER_SESSION: usize = 4;
pub const POOL: usize = 2 + SESSIONS * SOCKETS_PER_SESSION + 2;
/// Receive buffer (the TCP window; esp-radio takes bursts of 3 frames)
/// and transmit buffer of each socket.
pub const SOCKET_RX: usize = 4 * 1024;
pub const SOCKET_TX: usize = 2 * 1024;

/// How long one attempt to join the access point may take.
pub const JOIN_TIMEOUT_MS: u64 = 20_000;
/// The pause between two failed attempts.
const RETRY_MS: u64 = 5_000;

/// The stack the engine runs on.
pub type Stack = SmoltcpStack<'static, POOL>;
/// esp-radio's station interface as a smoltcp device.
pub type Device = DriverDevice<Interface>;

static SOCKET_RX_BUFFERS: ConstStaticCell<[[u8; SOCKET_RX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_RX]; POOL]);
static SOCKET_TX_BUFFERS: ConstStaticCell<[[u8; SOCKET_TX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_TX]; POOL]);
static SOCKET_SLOTS: StaticCell<[SocketStorage<'static>; POOL]> = StaticCell::new();
static STACK: StaticCell<Stack> = StaticCell::new();

/// `size_of` one smoltcp socket slot, for `FIRMWARE_RAM`.
pub const SOCKET_SLOT: usize = size_of::<SocketStorage<'static>>();

/// Why the network did not start.
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through `Debug` only
pub enum NetError {
    /// esp-radio refused the controller or its configuration.
    Wifi(esp_radio::wifi::WifiError),
    /// The SSID or passphrase is too long for Wi-Fi.
    Credentials,
    /// A socket did not fit the pool.
    SocketPool(SmoltcpError),
}

/// Starts the Wi-Fi station (not yet joined: [`Link::check`] joins) and
/// builds the stack with its socket pool. `seed` comes from the RNG.
pub fn start(
    wifi: WIFI<'static>,
    addressing: &Addressing,
    seed: u64,
) -> Result<(&'static mut Stack, Link), NetError> {
    let auth = if PASSPHRASE.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            PASSPHRASE.try_into().map_err(|_| NetError::Credentials)?,
        )
    };
    let station = StationConfig::default()
        .with_ssid(SSID.try_into().map_err(|_| NetError::Credentials)?)
        .with_authentication(auth);
    let config = ControllerConfig::default().with_initial_config(Config::Station(station));
    let controller = WifiController::new(wifi, config).map_err(NetError::Wifi)?;
    let mut device = DriverDevice::new(Interface::station());
    let mac = device.ethernet_address().unwrap_or([0x02, 0, 0, 0, 0, 1]);

    let mut iface_config =
        smoltcp::iface::Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    iface_config.random_seed = seed;
    let now = BoardClock.now();
    let mut iface = smoltcp::iface::Interface::new(iface_config, &mut device, smol_instant(now));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(
            IpAddress::Ipv4(addressing.ip),
            addressing.prefix,
        ));
    });
    if let Some(gateway) = addressing.gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(gateway);
    }
    let slots = SOCKET_SLOTS.init([SocketStorage::EMPTY; POOL]);
    let stack_config = StackConfig {
        random_seed: seed,
        ..StackConfig::default()
    };
    let stack: &'static mut Stack = STACK.init(SmoltcpStack::new(iface, slots, stack_config));
    ferry_board::add_sockets(
        stack,
        &mut SOCKET_RX_BUFFERS.take()[..],
        &mut SOCKET_TX_BUFFERS.take()[..],
    )
    .map_err(NetError::SocketPool)?;
    log!(
        "Wi-Fi station {}; {} sockets of {} + {} KiB",
        Mac(mac),
        POOL,
        SOCKET_RX / 1024,
        SOCKET_TX / 1024
    );
    Ok((
        stack,
        Link {
            controller,
            device,
            up: false,
            next_join: now,
        },
    ))
}

/// What the board loop drives besides the stack: the Wi-Fi interface
/// smoltcp polls, and the controller whose association it watches.
pub struct Link {
    controller: WifiController<'static>,
    device: Device,
    up: bool,
    next_join: Instant,
}

impl Link {
    /// Moves frames between esp-radio's queues and smoltcp's sockets;
    /// whether anything moved.
    pub fn poll(&mut self, stack: &mut Stack, now: Instant) -> bool {
        stack.poll(smol_instant(now), &mut self.device)
    }

    /// When smoltcp wants to be polled again (a retransmission, a delayed
    /// ACK), if it does.
    pub fn next_poll(&mut self, stack: &mut Stack, now: Instant) -> Option<Instant> {
        stack
            .poll_delay(smol_instant(now))
            .map(|d| now.add_millis(d.total_millis()))
    }

    /// Logs a lost association, and joins the access point when there is
    /// none (at boot, and [`RETRY_MS`] after a failed attempt).
    pub fn check(&mut self, now: Instant) {
        let up = self.controller.is_connected();
        if up != self.up {
            self.up = up;
            if !up {
                log!("Wi-Fi: lost {}", SSID);
            }
        }
        if up || now < self.next_join {
            return;
        }
        log!("Wi-Fi: joining {} ...", SSID);
        match block_on(self.controller.connect_async(), JOIN_TIMEOUT_MS) {
            Some(Ok(info)) => {
                self.up = true;
                log!(
                    "Wi-Fi: joined {} (channel {}, RSSI {} dBm)",
                    SSID,
                    info.channel,
                    self.controller.rssi().unwrap_or(0)
                );
            }
            Some(Err(e)) => log!(
                "Wi-Fi: joining failed: {:?}; again in {} s",
                e,
                RETRY_MS / 1000
            ),
            None => log!(
                "Wi-Fi: no answer within {} s; again in {} s",
                JOIN_TIMEOUT_MS / 1000,
                RETRY_MS / 1000
            ),
        }
        self.next_join = BoardClock.now().add_millis(RETRY_MS);
    }
}

/// Runs `future` to completion on this thread, looking at it every
/// millisecond (esp-rtos runs the Wi-Fi task meanwhile); `None` after
/// `timeout_ms`.
fn block_on<F: Future>(future: F, timeout_ms: u64) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = BoardClock.now().add_millis(timeout_ms);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        if BoardClock.now() >= deadline {
            return None;
        }
        crate::sleep_ms(1);
    }
}

//! The `stack-eth` network: smoltcp in the MCU, through Ferry's
//! `SmoltcpStack`, over the STM32F429's Ethernet MAC and DMA (driven by
//! `stm32-eth`) on the Nucleo's RMII pins, and its LAN8742A PHY.
//!
//! The DMA moves frames between the MAC and two small descriptor rings
//! (`RX_RING` and `TX_RING` entries of 1.5 KiB each, in SRAM: the DMA
//! cannot reach the CCM RAM). Its interrupt only wakes the core from
//! `WFI`; the board loop polls smoltcp and sleeps until smoltcp's next
//! deadline. The socket pool and its buffers are statics here.
use core::mem::size_of;

use ferry_net::smoltcp_stack::{smol_instant, SmoltcpError, SmoltcpStack, StackConfig};
use ferry_net::Instant;
use rtt_target::rprintln;
use smoltcp::iface::{Interface, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use static_cell::{ConstStaticCell, StaticCell};
use stm32_eth::dma::{EthernetDMA, RxRingEntry, TxRingEntry};
use stm32_eth::mac::{EthernetMACWithMii, Speed};
use stm32_eth::{EthPins, Parts, PartsIn};
use stm32f4xx_hal::gpio::{gpioa, gpiob, gpioc, gpiog, Alternate, Speed as PinSpeed, PA2, PC1};
use stm32f4xx_hal::pac::{interrupt, ETHERNET_DMA, ETHERNET_MAC, ETHERNET_MMC};
use stm32f4xx_hal::rcc::Clocks;

use ieee802_3_miim::phy::{PhySpeed, LAN8742A};
use ieee802_3_miim::Phy;

use crate::{Addressing, StackRam};

/// What the start-up log calls this stack.
pub const NAME: &str = "smoltcp on the on-chip Ethernet";

// ---- The memory knobs (docs/PORTING.md says what each costs) ----

/// Concurrent FTP sessions; one more gets 421.
pub const SESSIONS: usize = 4;
/// TCP sockets: 2 listening on port 21, per session its control connection,
/// 2 listening on its passive port and its data connection, plus 2 still
/// flushing after a close.
const SOCKETS_PER_SESSION: usize = 4;
const POOL: usize = 2 + SESSIONS * SOCKETS_PER_SESSION + 2;
/// Receive buffer (the TCP window) and transmit buffer of each socket:
/// 20 × 6 KiB of the 192 KiB of SRAM.
const SOCKET_RX: usize = 4 * 1024;
const SOCKET_TX: usize = 2 * 1024;
/// Receive descriptors: frames the MAC can hold before the core reads them.
const RX_RING: usize = 4;
/// Transmit descriptors.
const TX_RING: usize = 4;
/// The LAN8742A's address on the Nucleo's MDIO bus.
const PHY_ADDRESS: u8 = 0;

/// The stack the engine runs on.
pub type Stack = SmoltcpStack<'static, POOL>;

static SOCKET_RX_BUFFERS: ConstStaticCell<[[u8; SOCKET_RX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_RX]; POOL]);
static SOCKET_TX_BUFFERS: ConstStaticCell<[[u8; SOCKET_TX]; POOL]> =
    ConstStaticCell::new([[0; SOCKET_TX]; POOL]);
static SOCKET_SLOTS: StaticCell<[SocketStorage<'static>; POOL]> = StaticCell::new();
static NIC: StaticCell<Nic> = StaticCell::new();
static STACK: StaticCell<Stack> = StaticCell::new();
static RX: StaticCell<[RxRingEntry; RX_RING]> = StaticCell::new();
static TX: StaticCell<[TxRingEntry; TX_RING]> = StaticCell::new();

/// This stack's words of `FIRMWARE_RAM`.
pub const RAM: StackRam = StackRam {
    pool: POOL as u32,
    sockets_per_session: SOCKETS_PER_SESSION as u32,
    socket_rx: SOCKET_RX as u32,
    socket_tx: SOCKET_TX as u32,
    socket_slot: size_of::<SocketStorage<'static>>() as u32,
    adapter: size_of::<Stack>() as u32,
    adapter_one_more: size_of::<SmoltcpStack<'static, { POOL + SOCKETS_PER_SESSION }>>() as u32,
    nic: (size_of::<Nic>()
        + RX_RING * size_of::<RxRingEntry>()
        + TX_RING * size_of::<TxRingEntry>()) as u32,
};

type Mdio = PA2<Alternate<11>>;
type Mdc = PC1<Alternate<11>>;
/// The PHY, which owns the MAC (for MDIO).
type EthPhy = LAN8742A<EthernetMACWithMii<Mdio, Mdc>>;

/// The DMA as a smoltcp device, with an honest burst size.
///
/// `stm32-eth` tells smoltcp it can take one frame at a time
/// (`max_burst_size = 1`), and smoltcp then advertises a TCP window of one
/// segment: uploads crawl at one segment per round trip. The receive ring
/// holds `RX_RING` frames, so that is the burst this wrapper reports.
pub struct Nic {
    dma: EthernetDMA<'static, 'static>,
}

impl Device for Nic {
    type RxToken<'a>
        = <EthernetDMA<'static, 'static> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <EthernetDMA<'static, 'static> as Device>::TxToken<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.dma.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.dma.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.dma.capabilities();
        caps.max_burst_size = Some(RX_RING);
        caps
    }
}

/// What this stack takes from the chip: the Nucleo's Ethernet pins (RMII;
/// see UM1974, "Ethernet"), the MAC, and a seed from the RNG for smoltcp.
pub struct Peripherals {
    /// Port A (REF_CLK PA1, MDIO PA2, CRS_DV PA7).
    pub gpioa: gpioa::Parts,
    /// Port B (TXD1 PB13).
    pub gpiob: gpiob::Parts,
    /// MDC PC1, RXD0 PC4, RXD1 PC5 (port C's other pins may serve the SD
    /// card, `storage-sd`).
    pub gpioc: (gpioc::PC1, gpioc::PC4, gpioc::PC5),
    /// Port G (TX_EN PG11, TXD0 PG13).
    pub gpiog: gpiog::Parts,
    /// The MAC.
    pub mac: ETHERNET_MAC,
    /// Its counters.
    pub mmc: ETHERNET_MMC,
    /// Its DMA.
    pub dma: ETHERNET_DMA,
    /// A seed from the chip's RNG (TCP sequence numbers, ephemeral ports).
    pub seed: u64,
}

/// Why the network did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// HCLK is below the 25 MHz the MAC needs.
    ClockTooSlow,
    /// A socket did not fit the pool.
    SocketPool(SmoltcpError),
}

/// Starts the MAC and DMA, resets the PHY and starts auto-negotiation (the
/// link comes up later: see [`Link::check`]), and builds the stack with
/// its socket pool. `now` stamps smoltcp's interface.
pub fn start(
    p: Peripherals,
    addressing: &Addressing,
    clocks: &Clocks,
    now: Instant,
) -> Result<(&'static mut Stack, Link), NetError> {
    let seed = p.seed;
    let eth_pins = EthPins {
        ref_clk: p.gpioa.pa1,
        crs: p.gpioa.pa7,
        tx_en: p.gpiog.pg11,
        tx_d0: p.gpiog.pg13,
        tx_d1: p.gpiob.pb13,
        rx_d0: p.gpioc.1,
        rx_d1: p.gpioc.2,
    };
    let mut mdio: Mdio = p.gpioa.pa2.into_alternate();
    mdio.set_speed(PinSpeed::VeryHigh);
    let mut mdc: Mdc = p.gpioc.0.into_alternate();
    mdc.set_speed(PinSpeed::VeryHigh);

    let rx = RX.init([const { RxRingEntry::new() }; RX_RING]);
    let tx = TX.init([const { TxRingEntry::new() }; TX_RING]);
    let parts = PartsIn {
        mac: p.mac,
        mmc: p.mmc,
        dma: p.dma,
    };
    let Parts { dma, mac, .. } = stm32_eth::new_with_mii(
        parts,
        &mut rx[..],
        &mut tx[..],
        *clocks,
        eth_pins,
        mdio,
        mdc,
    )
    .map_err(|_| NetError::ClockTooSlow)?;
    dma.enable_interrupt();
    let mut phy = LAN8742A::new(mac, PHY_ADDRESS);
    phy.phy_init();
    let nic = NIC.init(Nic { dma });

    let mut iface_config =
        smoltcp::iface::Config::new(HardwareAddress::Ethernet(EthernetAddress(addressing.mac)));
    iface_config.random_seed = seed;
    let mut iface = Interface::new(iface_config, nic, smol_instant(now));
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
    ferry_board::add_sockets(stack, SOCKET_RX_BUFFERS.take(), SOCKET_TX_BUFFERS.take())
        .map_err(NetError::SocketPool)?;
    rprintln!(
        "{} sockets of {} + {} KiB",
        POOL,
        SOCKET_RX / 1024,
        SOCKET_TX / 1024
    );
    Ok((
        stack,
        Link {
            nic,
            phy,
            up: false,
        },
    ))
}

/// What the board loop drives besides the stack: the DMA device smoltcp
/// polls, and the PHY whose link it watches.
pub struct Link {
    nic: &'static mut Nic,
    phy: EthPhy,
    up: bool,
}

impl Link {
    /// Moves frames between the DMA rings and smoltcp's sockets; whether
    /// anything moved.
    pub fn poll(&mut self, stack: &mut Stack, now: Instant) -> bool {
        stack.poll(smol_instant(now), self.nic)
    }

    /// When smoltcp wants to be polled again (a retransmission, a delayed
    /// ACK), if it does.
    pub fn next_poll(&mut self, stack: &mut Stack, now: Instant) -> Option<Instant> {
        stack
            .poll_delay(smol_instant(now))
            .map(|d| now.add_millis(d.total_millis()))
    }

    /// Whether a received frame waits in the ring (the loop then does not
    /// sleep).
    pub fn wake_pending(&mut self) -> bool {
        self.nic.dma.rx_available()
    }

    /// Checks the PHY's link and logs a change; on a change to "up", sets
    /// the MAC to the speed and duplex the PHY negotiated.
    pub fn check(&mut self, _stack: &mut Stack) {
        let up = self.phy.phy_link_up();
        if up == self.up {
            return;
        }
        self.up = up;
        if !up {
            rprintln!("link down");
            return;
        }
        if let Some(speed) = self.phy.link_speed() {
            let speed = match speed {
                PhySpeed::HalfDuplexBase10T => Speed::HalfDuplexBase10T,
                PhySpeed::FullDuplexBase10T => Speed::FullDuplexBase10T,
                PhySpeed::HalfDuplexBase100Tx => Speed::HalfDuplexBase100Tx,
                PhySpeed::FullDuplexBase100Tx => Speed::FullDuplexBase100Tx,
            };
            self.phy.get_miim().set_speed(speed);
        }
        let speed = match self.phy.get_miim().get_speed() {
            Speed::HalfDuplexBase10T => "10 Mbit/s half duplex",
            Speed::FullDuplexBase10T => "10 Mbit/s full duplex",
            Speed::HalfDuplexBase100Tx => "100 Mbit/s half duplex",
            Speed::FullDuplexBase100Tx => "100 Mbit/s full duplex",
        };
        rprintln!("link up: {}", speed);
    }
}

#[interrupt]
fn ETH() {
    // Acknowledges the DMA's interrupt; waking the core was its purpose.
    let _ = stm32_eth::eth_interrupt_handler();
}

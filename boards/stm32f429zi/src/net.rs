//! The NUCLEO-F429ZI's Ethernet: the STM32F429's MAC and DMA (driven by
//! `stm32-eth`) on the board's RMII pins, and its LAN8742A PHY.
//!
//! The DMA moves frames between the MAC and two small descriptor rings
//! (`RX_RING` and `TX_RING` entries of 1.5 KiB each, in SRAM: the DMA
//! cannot reach the CCM RAM). Its interrupt only wakes the core from
//! `WFI`; the board loop polls smoltcp.
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use static_cell::StaticCell;
use stm32_eth::dma::{EthernetDMA, RxRingEntry, TxRingEntry};
use stm32_eth::mac::{EthernetMACWithMii, Speed};
use stm32_eth::{EthPins, Parts, PartsIn};
use stm32f4xx_hal::gpio::{gpioa, gpiob, gpioc, gpiog, Alternate, Speed as PinSpeed, PA2, PC1};
use stm32f4xx_hal::rcc::Clocks;

use ieee802_3_miim::phy::{PhySpeed, LAN8742A};
use ieee802_3_miim::Phy;

/// Receive descriptors: frames the MAC can hold before the core reads them.
pub const RX_RING: usize = 4;
/// Transmit descriptors.
pub const TX_RING: usize = 4;
/// The LAN8742A's address on the Nucleo's MDIO bus.
const PHY_ADDRESS: u8 = 0;

static RX: StaticCell<[RxRingEntry; RX_RING]> = StaticCell::new();
static TX: StaticCell<[TxRingEntry; TX_RING]> = StaticCell::new();

type Mdio = PA2<Alternate<11>>;
type Mdc = PC1<Alternate<11>>;
/// The PHY, which owns the MAC (for MDIO).
pub type EthPhy = LAN8742A<EthernetMACWithMii<Mdio, Mdc>>;

/// The DMA as a smoltcp device, with an honest burst size.
///
/// `stm32-eth` tells smoltcp it can take one frame at a time
/// (`max_burst_size = 1`), and smoltcp then advertises a TCP window of one
/// segment: uploads crawl at one segment per round trip. The receive ring
/// holds `RX_RING` frames, so that is the burst this wrapper reports.
pub struct Nic {
    dma: EthernetDMA<'static, 'static>,
}

impl Nic {
    /// Whether a received frame waits in the ring.
    pub fn rx_pending(&mut self) -> bool {
        self.dma.rx_available()
    }
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

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.dma.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.dma.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.dma.capabilities();
        caps.max_burst_size = Some(RX_RING);
        caps
    }
}

/// The Nucleo's Ethernet pins (RMII; see UM1974, "Ethernet").
pub struct Pins {
    /// Port A (REF_CLK PA1, MDIO PA2, CRS_DV PA7).
    pub gpioa: gpioa::Parts,
    /// Port B (TXD1 PB13).
    pub gpiob: gpiob::Parts,
    /// Port C (MDC PC1, RXD0 PC4, RXD1 PC5).
    pub gpioc: gpioc::Parts,
    /// Port G (TX_EN PG11, TXD0 PG13).
    pub gpiog: gpiog::Parts,
}

/// Why the Ethernet did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// HCLK is below the 25 MHz the MAC needs.
    ClockTooSlow,
}

/// Starts the MAC and DMA, resets the PHY and starts auto-negotiation
/// (the link comes up later: see [`update_link`]).
pub fn start(parts: PartsIn, pins: Pins, clocks: Clocks) -> Result<(Nic, EthPhy), NetError> {
    let Pins {
        gpioa,
        gpiob,
        gpioc,
        gpiog,
    } = pins;
    let eth_pins = EthPins {
        ref_clk: gpioa.pa1,
        crs: gpioa.pa7,
        tx_en: gpiog.pg11,
        tx_d0: gpiog.pg13,
        tx_d1: gpiob.pb13,
        rx_d0: gpioc.pc4,
        rx_d1: gpioc.pc5,
    };
    let mut mdio: Mdio = gpioa.pa2.into_alternate();
    mdio.set_speed(PinSpeed::VeryHigh);
    let mut mdc: Mdc = gpioc.pc1.into_alternate();
    mdc.set_speed(PinSpeed::VeryHigh);

    let rx = RX.init([const { RxRingEntry::new() }; RX_RING]);
    let tx = TX.init([const { TxRingEntry::new() }; TX_RING]);
    let Parts { dma, mac, .. } =
        stm32_eth::new_with_mii(parts, &mut rx[..], &mut tx[..], clocks, eth_pins, mdio, mdc)
            .map_err(|_| NetError::ClockTooSlow)?;
    dma.enable_interrupt();
    let mut phy = LAN8742A::new(mac, PHY_ADDRESS);
    phy.phy_init();
    Ok((Nic { dma }, phy))
}

/// Checks the PHY's link; on a change to "up", sets the MAC to the speed
/// and duplex the PHY negotiated. Returns the link state.
pub fn update_link(phy: &mut EthPhy, was_up: bool) -> bool {
    let up = phy.phy_link_up();
    if up && !was_up {
        if let Some(speed) = phy.link_speed() {
            let speed = match speed {
                PhySpeed::HalfDuplexBase10T => Speed::HalfDuplexBase10T,
                PhySpeed::FullDuplexBase10T => Speed::FullDuplexBase10T,
                PhySpeed::HalfDuplexBase100Tx => Speed::HalfDuplexBase100Tx,
                PhySpeed::FullDuplexBase100Tx => Speed::FullDuplexBase100Tx,
            };
            phy.get_miim().set_speed(speed);
        }
    }
    up
}

/// The MAC's speed and duplex, for the log.
pub fn speed_name(phy: &mut EthPhy) -> &'static str {
    match phy.get_miim().get_speed() {
        Speed::HalfDuplexBase10T => "10 Mbit/s half duplex",
        Speed::FullDuplexBase10T => "10 Mbit/s full duplex",
        Speed::HalfDuplexBase100Tx => "100 Mbit/s half duplex",
        Speed::FullDuplexBase100Tx => "100 Mbit/s full duplex",
    }
}

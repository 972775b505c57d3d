//! A smoltcp device over an `embassy-net-driver` 0.2 driver, polled
//! without an executor.
//!
//! Network drivers written for embassy-net (esp-radio's Wi-Fi, cyw43, ...)
//! implement `embassy_net_driver::Driver`: `receive`/`transmit` hand out
//! tokens as smoltcp's do, and take a task `Context` to wake when they
//! cannot. A board polling in a loop needs no waking, so [`DriverDevice`]
//! passes a no-op waker, and smoltcp sees a plain `phy::Device`.
use core::task::{Context, Waker};

use embassy_net_driver::{Checksum, Driver, HardwareAddress, LinkState};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// `driver` as a smoltcp `phy::Device` (Ethernet medium).
#[derive(Debug)]
pub struct DriverDevice<D> {
    driver: D,
}

impl<D: Driver> DriverDevice<D> {
    /// Wraps `driver`.
    pub fn new(driver: D) -> Self {
        DriverDevice { driver }
    }

    /// The driver.
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// Whether the driver's link is up (Wi-Fi: associated).
    pub fn link_up(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.driver.link_state(&mut cx) == LinkState::Up
    }

    /// The driver's Ethernet (MAC) address, if it has one.
    pub fn ethernet_address(&self) -> Option<[u8; 6]> {
        match self.driver.hardware_address() {
            HardwareAddress::Ethernet(mac) => Some(mac),
            _ => None,
        }
    }
}

impl<D: Driver> phy::Device for DriverDevice<D> {
    type RxToken<'a>
        = DriverRxToken<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = DriverTxToken<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut cx = Context::from_waker(Waker::noop());
        self.driver
            .receive(&mut cx)
            .map(|(rx, tx)| (DriverRxToken(rx), DriverTxToken(tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let mut cx = Context::from_waker(Waker::noop());
        self.driver.transmit(&mut cx).map(DriverTxToken)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let caps = self.driver.capabilities();
        let mut smol = DeviceCapabilities::default();
        smol.medium = Medium::Ethernet;
        smol.max_transmission_unit = caps.max_transmission_unit;
        smol.max_burst_size = caps.max_burst_size;
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = checksum_of(caps.checksum.ipv4);
        checksum.tcp = checksum_of(caps.checksum.tcp);
        checksum.udp = checksum_of(caps.checksum.udp);
        checksum.icmpv4 = checksum_of(caps.checksum.icmpv4);
        smol.checksum = checksum;
        smol
    }
}

/// Who computes a checksum, in smoltcp's terms.
fn checksum_of(checksum: Checksum) -> phy::Checksum {
    match checksum {
        Checksum::Both => phy::Checksum::Both,
        Checksum::Tx => phy::Checksum::Tx,
        Checksum::Rx => phy::Checksum::Rx,
        Checksum::None => phy::Checksum::None,
    }
}

/// A received frame, as smoltcp takes it.
pub struct DriverRxToken<T>(T);

impl<T: embassy_net_driver::RxToken> phy::RxToken for DriverRxToken<T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.0.consume(|frame| f(frame))
    }
}

/// Room for one frame to send, as smoltcp takes it.
pub struct DriverTxToken<T>(T);

impl<T: embassy_net_driver::TxToken> phy::TxToken for DriverTxToken<T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.0.consume(len, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use embassy_net_driver::Capabilities;
    use phy::{Device, RxToken, TxToken};
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A driver whose "wire" is two queues.
    #[derive(Default)]
    struct Queues {
        incoming: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    struct Rx(Vec<u8>);
    struct Tx<'a>(&'a mut Vec<Vec<u8>>);

    impl embassy_net_driver::RxToken for Rx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
            f(&mut self.0)
        }
    }

    impl embassy_net_driver::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = std::vec![0; len];
            let r = f(&mut frame);
            self.0.push(frame);
            r
        }
    }

    impl Driver for Queues {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx<'a>;

        fn receive(&mut self, _: &mut Context<'_>) -> Option<(Rx, Tx<'_>)> {
            let frame = self.incoming.pop_front()?;
            Some((Rx(frame), Tx(&mut self.sent)))
        }

        fn transmit(&mut self, _: &mut Context<'_>) -> Option<Tx<'_>> {
            Some(Tx(&mut self.sent))
        }

        fn link_state(&mut self, _: &mut Context<'_>) -> LinkState {
            LinkState::Up
        }

        fn capabilities(&self) -> Capabilities {
            let mut caps = Capabilities::default();
            caps.max_transmission_unit = 1514;
            caps.max_burst_size = Some(3);
            caps
        }

        fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet([2, 0, 0, 0, 0, 1])
        }
    }

    #[test]
    fn passes_frames_and_capabilities_through() {
        let mut device = DriverDevice::new(Queues::default());
        let caps = device.capabilities();
        assert_eq!(caps.medium, Medium::Ethernet);
        assert_eq!(caps.max_transmission_unit, 1514);
        assert_eq!(caps.max_burst_size, Some(3));
        assert!(device.link_up());
        assert_eq!(device.ethernet_address(), Some([2, 0, 0, 0, 0, 1]));
        let now = Instant::from_millis(0);
        assert!(device.receive(now).is_none());
        let tx = device.transmit(now).unwrap();
        tx.consume(3, |frame| frame.copy_from_slice(b"abc"));
        device.driver_mut().incoming.push_back(b"xyz".to_vec());
        let (rx, _tx) = device.receive(now).unwrap();
        assert_eq!(rx.consume(|frame| frame.to_vec()), b"xyz");
        assert_eq!(device.driver_mut().sent, [b"abc".to_vec()]);
    }
}

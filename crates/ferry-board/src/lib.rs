//! What Ferry's firmware boards share, so that a board is only its
//! hardware bring-up, its stack and storage choice, and its poll loop.
//!
//! - [`FixedUser`]: one user with every permission, its password compared
//!   in constant time (a board's login from build-time configuration).
//! - [`LogObserver`]: the engine's events as one log line each, through
//!   whatever print function the board has (UART, RTT, semihosting).
//! - [`parse_ipv4_cidr`], [`parse_gateway`]: `A.B.C.D/P` and `A.B.C.D` or
//!   `none` from build-time configuration; [`Mac`] shows a MAC address in
//!   the log.
//! - `littlefs` feature: [`VolumeCells`], the `static`s of a littlefs
//!   volume on a board's block device, mounted for the whole run
//!   ([`mount_or_format`] for a board that keeps its own).
//! - `smoltcp` feature: [`add_sockets`], a `SmoltcpStack`'s pool from
//!   static buffers.
//! - `w5500` feature: [`W5500Link`], a W5500 board's link and register
//!   access watched and logged, and [`subnet_mask`] for its config.
//! - `embassy-net-driver` feature: [`DriverDevice`], a smoltcp device over
//!   an `embassy-net-driver` 0.2 driver (esp-radio's Wi-Fi, cyw43, ...),
//!   polled without an executor.
//!
//! Architecture invariant: nothing here speaks FTP; that is the engine's
//! (`ferry-core`). No heap, no `unsafe`, no hardware access.
#![no_std]
#![forbid(unsafe_code)]

mod log;
mod user;

#[cfg(feature = "embassy-net-driver")]
mod driver_device;
#[cfg(feature = "smoltcp")]
mod sockets;
#[cfg(feature = "littlefs")]
mod storage;
#[cfg(feature = "w5500")]
mod w5500;

pub use log::LogObserver;
pub use user::FixedUser;

#[cfg(feature = "embassy-net-driver")]
pub use driver_device::{DriverDevice, DriverRxToken, DriverTxToken};
#[cfg(feature = "smoltcp")]
pub use sockets::add_sockets;
#[cfg(feature = "littlefs")]
pub use storage::{mount_or_format, MountError, Mounted, VolumeCells};
#[cfg(feature = "w5500")]
pub use w5500::{subnet_mask, W5500Link};

use core::fmt;
use core::net::{AddrParseError, Ipv4Addr};

/// `A.B.C.D/P` (an address and its prefix length, at most 32), as a board
/// takes it from the environment at build time (`FERRY_IP`).
pub fn parse_ipv4_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((ip.parse().ok()?, prefix))
}

/// A default route as a board takes it from the environment at build
/// time (`FERRY_GATEWAY`): `A.B.C.D`, or `none` for no route.
pub fn parse_gateway(text: &str) -> Result<Option<Ipv4Addr>, AddrParseError> {
    match text {
        "none" => Ok(None),
        text => text.parse().map(Some),
    }
}

/// A MAC address as the boards' logs show it: `02-1a-2b-3c-4d-5e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}-{b:02x}-{c:02x}-{d:02x}-{e:02x}-{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway() {
        assert_eq!(parse_gateway("none"), Ok(None));
        assert_eq!(
            parse_gateway("192.168.1.1"),
            Ok(Some(Ipv4Addr::new(192, 168, 1, 1)))
        );
        assert!(parse_gateway("192.168.1").is_err());
        assert!(parse_gateway("").is_err());
    }

    #[test]
    fn mac() {
        extern crate std;
        let text = std::format!("{}", Mac([2, 0x1a, 0xb, 0, 0xff, 9]));
        assert_eq!(text, "02-1a-0b-00-ff-09");
    }

    #[test]
    fn cidr() {
        assert_eq!(
            parse_ipv4_cidr("192.168.1.50/24"),
            Some((Ipv4Addr::new(192, 168, 1, 50), 24))
        );
        assert_eq!(parse_ipv4_cidr("10.0.0.1/33"), None);
        assert_eq!(parse_ipv4_cidr("10.0.0.1"), None);
        assert_eq!(parse_ipv4_cidr("10.0.0/8"), None);
    }
}

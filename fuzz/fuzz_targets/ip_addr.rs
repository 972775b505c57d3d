//! EPRT's address parser (`protocol::addr`) against `core::net`'s: the same
//! answer for every input, and never a panic. Ferry carries its own parser
//! only because core's costs ~1 KB of Cortex-M flash.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use ferry_core::protocol::addr::{parse_ipv4, parse_ipv6};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = core::str::from_utf8(data).ok();
    let core_v4 = text.and_then(|t| t.parse::<Ipv4Addr>().ok());
    let core_v6 = text.and_then(|t| t.parse::<Ipv6Addr>().ok());
    assert_eq!(parse_ipv4(data), core_v4, "IPv4 {data:?}");
    assert_eq!(parse_ipv6(data), core_v6, "IPv6 {data:?}");
});

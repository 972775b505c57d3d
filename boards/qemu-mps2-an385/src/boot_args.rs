//! The firmware's settings, from the boot arguments QEMU passes over
//! semihosting (`-semihosting-config enable=on,arg=ferry,arg=KEY=VALUE`),
//! each with a default, so the image is the same for every way of running
//! it.
//!
//! | argument            | default        | what                                   |
//! |---------------------|----------------|----------------------------------------|
//! | `ip=A.B.C.D/P`      | `10.0.2.15/24` | the static address (QEMU user networking's guest address) |
//! | `gw=A.B.C.D`        | `10.0.2.2`     | the default route                      |
//! | `pasv=A.B.C.D`      | none           | the address PASV replies name (NAT: `127.0.0.1` behind QEMU's port forwards) |
//! | `verbose`           | off            | log every command line                 |
//! | `implicit=PORT`     | `990`          | the implicit FTPS port (feature `tls`) |
//!
//! An argument that does not parse is reported and ignored.
use core::net::Ipv4Addr;

use crate::log;

/// The settings. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootArgs {
    /// The interface's address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The default route, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The PASV address override.
    pub passive_address: Option<Ipv4Addr>,
    /// Log command lines too.
    pub verbose: bool,
    /// The implicit FTPS port (used with the `tls` feature).
    pub implicit_port: u16,
}

impl Default for BootArgs {
    fn default() -> Self {
        BootArgs {
            ip: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            passive_address: None,
            verbose: false,
            implicit_port: 990,
        }
    }
}

impl BootArgs {
    /// The settings from a space-separated command line.
    pub fn parse(line: &str) -> BootArgs {
        let mut args = BootArgs::default();
        for word in line.split_ascii_whitespace() {
            let ok = match word.split_once('=') {
                Some(("ip", value)) => value
                    .split_once('/')
                    .and_then(|(ip, prefix)| Some((ip.parse().ok()?, prefix.parse().ok()?)))
                    .filter(|&(_, prefix): &(Ipv4Addr, u8)| prefix <= 32)
                    .map(|(ip, prefix)| {
                        args.ip = ip;
                        args.prefix = prefix;
                    })
                    .is_some(),
                Some(("gw", "none")) => {
                    args.gateway = None;
                    true
                }
                Some(("gw", value)) => value.parse().map(|gw| args.gateway = Some(gw)).is_ok(),
                Some(("pasv", value)) => value
                    .parse()
                    .map(|ip| args.passive_address = Some(ip))
                    .is_ok(),
                Some(("implicit", value)) => value
                    .parse()
                    .ok()
                    .filter(|&port: &u16| port != 0)
                    .map(|port| args.implicit_port = port)
                    .is_some(),
                None if word == "verbose" => {
                    args.verbose = true;
                    true
                }
                // The program name QEMU passes first (`arg=ferry`).
                None if word == "ferry" => true,
                _ => false,
            };
            if !ok {
                log!("ignoring boot argument {word:?}");
            }
        }
        args
    }
}

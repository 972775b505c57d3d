//! What a board loop watches on a WIZnet W5500 besides the stack: the
//! chip's link, and whether its register access (SPI) is failing.
use core::fmt;
use core::net::Ipv4Addr;

use ferry_net::w5500_stack::W5500Stack;
use ferry_net::Instant;
use w5500_ll::Registers;

/// The W5500's link and the health of its register access, each logged
/// through `print` once per change (not on every poll): `link up`, `link
/// down`, `W5500: ERROR` at the first failure, `W5500: answering again`
/// when it ends.
#[derive(Clone, Copy)]
pub struct W5500Link {
    print: fn(fmt::Arguments<'_>),
    up: bool,
    failing: bool,
}

impl W5500Link {
    /// Link down, chip answering, logging through `print`.
    pub const fn new(print: fn(fmt::Arguments<'_>)) -> W5500Link {
        W5500Link {
            print,
            up: false,
            failing: false,
        }
    }

    /// The adapter's part of the work (`W5500Stack::poll`: re-arming
    /// listeners, finishing closes); whether anything changed.
    pub fn poll<R>(&mut self, stack: &mut W5500Stack<R>, now: Instant) -> bool
    where
        R: Registers,
        R::Error: fmt::Debug,
    {
        let result = stack.poll(now);
        self.note(&result);
        result.unwrap_or(false)
    }

    /// Reads the chip's PHY link and logs a change; whether it is up (as
    /// last read, if the read failed).
    pub fn check<R>(&mut self, stack: &mut W5500Stack<R>) -> bool
    where
        R: Registers,
        R::Error: fmt::Debug,
    {
        let result = stack.link_up();
        self.note(&result);
        if let Ok(up) = result {
            if up != self.up {
                (self.print)(format_args!("{}", if up { "link up" } else { "link down" }));
                self.up = up;
            }
        }
        self.up
    }

    /// Logs the first failure of the chip's register access, and its end.
    fn note<T, E: fmt::Debug>(&mut self, result: &Result<T, E>) {
        match result {
            Err(e) if !self.failing => {
                (self.print)(format_args!("W5500: {e:?}"));
                self.failing = true;
            }
            Ok(_) if self.failing => {
                (self.print)(format_args!("W5500: answering again"));
                self.failing = false;
            }
            _ => {}
        }
    }
}

impl fmt::Debug for W5500Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("W5500Link")
            .field("up", &self.up)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

/// The mask of a `/prefix` network (`W5500Config::subnet`); prefixes
/// above 32 count as 32.
pub fn subnet_mask(prefix: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(subnet_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(subnet_mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(subnet_mask(32), Ipv4Addr::BROADCAST);
        assert_eq!(subnet_mask(40), Ipv4Addr::BROADCAST);
        assert_eq!(subnet_mask(20), Ipv4Addr::new(255, 255, 240, 0));
    }
}

//! The login (named at build time), the log's print function (RTT), and
//! the millisecond clock (the RP2040's 1 MHz timer). The user and the
//! event log themselves are ferry-board's `FixedUser` and `LogObserver`.
use core::fmt;

use ferry_net::{Clock, Instant};
use rp2040_hal::Timer;
use rtt_target::rprintln;

/// The user name the firmware accepts: `FERRY_USER` when it was built,
/// `ferry` otherwise.
pub const USER: &str = match option_env!("FERRY_USER") {
    Some(user) => user,
    None => "ferry",
};

/// The password: `FERRY_PASSWORD` when it was built, `ferry` otherwise.
/// It is in the image in clear text: whoever reads the flash has it.
pub const PASSWORD: &str = match option_env!("FERRY_PASSWORD") {
    Some(password) => password,
    None => "ferry",
};

/// Whether the password is the default one (the start-up log shows only
/// that one).
pub const DEFAULT_PASSWORD: bool = option_env!("FERRY_PASSWORD").is_none();

/// Prints one line of the log over RTT (for `ferry_board::LogObserver`
/// and `W5500Link`).
pub fn print_line(args: fmt::Arguments<'_>) {
    rprintln!("{}", args);
}

/// The board's clock: the RP2040's 64-bit microsecond timer, read without
/// an interrupt (so it keeps counting while a flash erase has interrupts
/// off); no wall clock.
#[derive(Clone, Copy)]
pub struct BoardClock(pub Timer);

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(self.0.get_counter().ticks() / 1000)
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

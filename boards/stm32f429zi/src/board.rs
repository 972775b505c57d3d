//! The login, the log's print function (RTT), and the millisecond clock
//! (SysTick). The user and the event log themselves are ferry-board's
//! `FixedUser` and `LogObserver`.
use core::cell::Cell;
use core::fmt;

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use ferry_net::{Clock, Instant};
use rtt_target::rprintln;

/// The user name the firmware accepts.
pub const USER: &str = "ferry";
/// Its password: change it before the board leaves your desk (a product
/// keeps a salted hash in its configuration storage instead).
pub const PASSWORD: &str = "ferry";

/// Prints one line of the log over RTT (for `ferry_board::LogObserver`).
pub fn print_line(args: fmt::Arguments<'_>) {
    rprintln!("{}", args);
}

/// Milliseconds since [`start_clock`].
static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts SysTick at 1 kHz from the core clock (`hclk` Hz).
pub fn start_clock(syst: &mut SYST, hclk: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(hclk / 1000 - 1);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
}

#[exception]
fn SysTick() {
    interrupt::free(|cs| {
        let millis = MILLIS.borrow(cs);
        millis.set(millis.get().wrapping_add(1));
    });
}

/// The board's clock: SysTick milliseconds; no wall clock.
pub struct BoardClock;

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(interrupt::free(|cs| MILLIS.borrow(cs).get()))
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

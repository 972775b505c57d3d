//! Time for the engine and the stack: a millisecond counter driven by the
//! SysTick interrupt, and the wall clock read from the host at boot.
//!
//! The mps2-an385 runs the core (and so SysTick's processor clock) at
//! 25 MHz: a reload of 25 000 ticks is one millisecond. SysTick also wakes
//! the core from `WFI` every millisecond, which the board loop relies on to
//! notice received frames (see `lan9118.rs`).
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use ferry_net::{Clock, Instant};

/// The core clock of QEMU's mps2-an385, in Hz.
pub const CORE_HZ: u32 = 25_000_000;

/// Milliseconds since [`start`].
static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
/// Seconds since 1970 at boot, from the host (0: unknown).
static BOOT_UNIX: AtomicU32 = AtomicU32::new(0);

/// Starts the 1 kHz SysTick interrupt, and takes the wall clock (if the
/// host tells it) as the time at boot.
pub fn start(syst: &mut SYST, boot_unix: Option<u32>) {
    BOOT_UNIX.store(boot_unix.unwrap_or(0), Ordering::Relaxed);
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1000 - 1);
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

/// Milliseconds since boot.
pub fn millis() -> u64 {
    interrupt::free(|cs| MILLIS.borrow(cs).get())
}

/// Seconds since 1970 now, or 0 if the host did not say at boot (for
/// littlefs's modification times).
pub fn unix_seconds() -> u64 {
    match BOOT_UNIX.load(Ordering::Relaxed) {
        0 => 0,
        boot => u64::from(boot) + millis() / 1000,
    }
}

/// The board's [`Clock`]: SysTick milliseconds, and the host's wall clock
/// taken at boot.
#[derive(Debug, Clone, Copy)]
pub struct BoardClock;

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(millis())
    }

    fn unix_time(&self) -> Option<u64> {
        match BOOT_UNIX.load(Ordering::Relaxed) {
            0 => None,
            _ => Some(unix_seconds()),
        }
    }
}

//! The host's side of the board: the clock, the log's print function (what
//! firmware would get from its RTC and its UART; the user and the event
//! log are ferry-board's `FixedUser` and `LogObserver`, as on the
//! firmware), and the stop flag that Ctrl-C and SIGTERM set.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_net::{Clock, Instant};

/// A flag that Ctrl-C or SIGTERM sets, for the board loop to stop at; a
/// second Ctrl-C while shutting down exits at once (status 130).
pub fn stop_on_signal() -> Result<Arc<AtomicBool>, ctrlc::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })?;
    Ok(stop)
}

/// Monotonic milliseconds since start, and the system's wall clock.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    origin: std::time::Instant,
}

impl Default for HostClock {
    fn default() -> Self {
        HostClock::new()
    }
}

impl HostClock {
    /// A clock whose [`Clock::now`] starts at 0 now.
    pub fn new() -> Self {
        HostClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock for HostClock {
    fn now(&self) -> Instant {
        Instant(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn unix_time(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// Prints one line of the log to stderr (for `ferry_board::LogObserver`).
pub fn print_line(args: std::fmt::Arguments<'_>) {
    eprintln!("{args}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_knows_the_date() {
        let clock = HostClock::new();
        let a = clock.now();
        assert!(clock.now() >= a);
        assert!(clock.unix_time().unwrap() > 1_600_000_000);
    }
}

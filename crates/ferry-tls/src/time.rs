//! Wall-clock time for rustls from Ferry's [`Clock`].
use core::fmt;
use core::time::Duration;

use ferry_net::Clock;
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

/// A rustls [`TimeProvider`] over a Ferry [`Clock`].
///
/// A server without client certificates uses the time only to date its
/// sessions and to check the age of a resumed one, so a device that does
/// not know the date still works: the monotonic clock's seconds stand in
/// for the Unix time (sessions then age correctly, and nothing else reads
/// the date).
pub struct ClockTime<C>(pub C);

impl<C> fmt::Debug for ClockTime<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockTime")
    }
}

impl<C: Clock + Send + Sync> TimeProvider for ClockTime<C> {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = match self.0.unix_time() {
            Some(secs) => secs,
            None => self.0.now().0 / 1000,
        };
        Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_net::Instant;

    struct Fixed(Option<u64>);
    impl Clock for Fixed {
        fn now(&self) -> Instant {
            Instant(7_500)
        }
        fn unix_time(&self) -> Option<u64> {
            self.0
        }
    }

    #[test]
    fn wall_clock_first_then_monotonic_seconds() {
        let t = ClockTime(Fixed(Some(1_700_000_000)))
            .current_time()
            .unwrap();
        assert_eq!(t.as_secs(), 1_700_000_000);
        let t = ClockTime(Fixed(None)).current_time().unwrap();
        assert_eq!(t.as_secs(), 7);
    }
}

//! FAT timestamps (local date and time fields, 2-second steps, 1980..=2107)
//! to and from Unix seconds, taking the fields as UTC.

use fatfs::{Date, DateTime, Time, TimeProvider};

use crate::civil::{civil_from_days, days_from_civil, SECS_PER_DAY};

/// Unix seconds of a FAT timestamp read as UTC; `None` for impossible fields
/// (a damaged entry).
pub(crate) fn to_unix(dt: DateTime) -> Option<u64> {
    let days = days_from_civil(dt.date.year, dt.date.month, dt.date.day)?;
    let t = dt.time;
    if t.hour > 23 || t.min > 59 || t.sec > 59 {
        return None;
    }
    Some(days * SECS_PER_DAY + u64::from(t.hour) * 3600 + u64::from(t.min) * 60 + u64::from(t.sec))
}

/// The FAT timestamp of Unix seconds (UTC), or `None` outside 1980..=2107.
/// FAT keeps even seconds: an odd second is rounded down when stored.
pub(crate) fn from_unix(secs: u64) -> Option<DateTime> {
    let (y, month, day) = civil_from_days(secs / SECS_PER_DAY);
    if !(1980..=2107).contains(&y) {
        return None;
    }
    let rem = secs % SECS_PER_DAY;
    // All below 24, 60 and 60.
    Some(DateTime {
        date: Date {
            year: y as u16,
            month,
            day,
        },
        time: Time {
            hour: (rem / 3600) as u16,
            min: (rem % 3600 / 60) as u16,
            sec: (rem % 60) as u16,
            millis: 0,
        },
    })
}

/// The host's clock in UTC, for the times `fatfs` stamps on new and written
/// entries (its default would be local time through `chrono`, or 1980).
#[derive(Debug)]
pub struct UtcClock;

/// The [`UtcClock`] that [`mount`](super::mount) gives `fatfs`.
pub static UTC_CLOCK: UtcClock = UtcClock;

impl UtcClock {
    fn now() -> DateTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        from_unix(secs).unwrap_or(DateTime {
            date: Date {
                year: 1980,
                month: 1,
                day: 1,
            },
            time: Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        })
    }
}

impl TimeProvider for UtcClock {
    fn get_current_date(&self) -> Date {
        UtcClock::now().date
    }

    fn get_current_date_time(&self) -> DateTime {
        UtcClock::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for secs in [
            315_532_800u64, // 1980-01-01
            951_782_400,    // 2000-02-29
            1_700_000_000,
            4_354_819_198, // 2107-12-31 23:59:58
        ] {
            let dt = from_unix(secs).unwrap();
            assert_eq!(to_unix(dt), Some(secs), "{dt:?}");
        }
        let dt = from_unix(951_782_400).unwrap();
        assert_eq!((dt.date.year, dt.date.month, dt.date.day), (2000, 2, 29));
        assert!(from_unix(315_532_799).is_none());
        assert!(from_unix(4_354_819_200).is_none());
        let bad = DateTime {
            date: Date {
                year: 1990,
                month: 0,
                day: 1,
            },
            time: Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        };
        assert_eq!(to_unix(bad), None);
    }

    #[test]
    fn clock_is_recent() {
        let now = to_unix(UTC_CLOCK.get_current_date_time()).unwrap();
        assert!(now > 1_600_000_000);
    }
}

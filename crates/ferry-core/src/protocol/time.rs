//! Calendar arithmetic for listings and `MDTM`/`MFMT`: Unix seconds to and
//! from civil UTC dates (proleptic Gregorian), without `core::fmt`.

/// A UTC date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year, e.g. 2026.
    pub year: u32,
    /// Month 1..=12.
    pub month: u8,
    /// Day of month 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=59.
    pub second: u8,
}

/// Seconds in a day.
const DAY: u64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 (the epoch shift of the algorithm).
const EPOCH_SHIFT: u64 = 719_468;
/// Days in a 400-year Gregorian era.
const ERA_DAYS: u64 = 146_097;
/// 9999-12-31 23:59:59 UTC, the last instant a 4-digit year can show.
pub const MAX_TIMEVAL_SECS: u64 = 253_402_300_799;

/// True for Gregorian leap years.
pub fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Days in `month` (1..=12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: u32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl DateTime {
    /// The date and time of `secs` seconds after 1970-01-01 00:00:00 UTC.
    ///
    /// Years past `u32::MAX` (about 1.3e17 seconds) saturate at `u32::MAX`.
    pub fn from_unix(secs: u64) -> DateTime {
        let days = secs / DAY;
        // Below a day, so it fits a u32.
        let rem = (secs % DAY) as u32;
        // Howard Hinnant's civil_from_days, on unsigned values since the
        // input never precedes 1970. `days` is below 2.2e14, so no step
        // overflows a u64. Only the era needs 64 bits: everything within
        // an era is u32 arithmetic, which a Cortex-M divides in hardware
        // (a u64 division is a library call and much more code).
        let z = days + EPOCH_SHIFT;
        let era = z / ERA_DAYS;
        // Below ERA_DAYS, so it fits a u32.
        let doe = (z % ERA_DAYS) as u32; // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
        let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
        let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
        let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
        let year = u64::from(yoe) + era * 400 + u64::from(month <= 2);
        DateTime {
            year: u32::try_from(year).unwrap_or(u32::MAX),
            // The ranges noted above make these casts lossless.
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }
    /// Seconds since 1970 UTC; `None` for dates before 1970 or invalid fields.
    pub fn to_unix(&self) -> Option<u64> {
        if self.year < 1970
            || self.month == 0
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        // Howard Hinnant's days_from_civil; years count from March so the
        // leap day ends the year.
        // As in `from_unix`, only the era needs 64 bits.
        let month = u32::from(self.month);
        let year = self.year - u32::from(month <= 2);
        let era = u64::from(year / 400);
        let yoe = year % 400;
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + u32::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = (era * ERA_DAYS + u64::from(doe)).checked_sub(EPOCH_SHIFT)?;
        let time =
            u32::from(self.hour) * 3600 + u32::from(self.minute) * 60 + u32::from(self.second);
        days.checked_mul(DAY)?.checked_add(u64::from(time))
    }
}

/// Formats `secs` as `YYYYMMDDHHMMSS` (the RFC 3659 time-val, as in `MDTM`
/// replies and MLSx `modify=` facts).
///
/// Times after year 9999 are shown as [`MAX_TIMEVAL_SECS`].
pub fn format_timeval(secs: u64) -> [u8; 14] {
    let t = DateTime::from_unix(secs.min(MAX_TIMEVAL_SECS));
    let mut out = [b'0'; 14];
    let fields = [
        (u64::from(t.year), 4),
        (u64::from(t.month), 2),
        (u64::from(t.day), 2),
        (u64::from(t.hour), 2),
        (u64::from(t.minute), 2),
        (u64::from(t.second), 2),
    ];
    let mut rest = out.as_mut_slice();
    for (value, width) in fields {
        // The widths add up to 14 and each value fits its width (year <=
        // 9999), so every field is written.
        let Some((field, tail)) = core::mem::take(&mut rest).split_at_mut_checked(width) else {
            break;
        };
        let _ = super::num::write_u64_padded(value, width, b'0', field);
        rest = tail;
    }
    out
}

/// Parses `YYYYMMDDHHMMSS` with an optional `.sss` fraction (ignored) into
/// seconds since 1970 UTC; `None` if malformed or out of range.
pub fn parse_timeval(s: &[u8]) -> Option<u64> {
    let (digits, fraction) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (s.get(..dot)?, Some(s.get(dot + 1..)?)),
        None => (s, None),
    };
    if let Some(fraction) = fraction {
        // `parse_u64` would refuse long fractions by overflow; only the
        // digits matter here.
        if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    if digits.len() != 14 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Fixed-width digit runs: one loop, no general number parser.
    let mut fields = [0u32; 6];
    let mut at = 0;
    for (field, width) in fields.iter_mut().zip([4, 2, 2, 2, 2, 2]) {
        for &digit in digits.get(at..at + width)? {
            *field = *field * 10 + u32::from(digit - b'0');
        }
        at += width;
    }
    let [year, month, day, hour, minute, second] = fields;
    // Two digits fit a u8.
    DateTime {
        year,
        month: month as u8,
        day: day as u8,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
    }
    .to_unix()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(year: u32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn epoch() {
        assert_eq!(DateTime::from_unix(0), dt(1970, 1, 1, 0, 0, 0));
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).to_unix(), Some(0));
        assert_eq!(&format_timeval(0), b"19700101000000");
        assert_eq!(parse_timeval(b"19700101000000"), Some(0));
        assert_eq!(DateTime::from_unix(86_399), dt(1970, 1, 1, 23, 59, 59));
        assert_eq!(DateTime::from_unix(86_400), dt(1970, 1, 2, 0, 0, 0));
    }

    #[test]
    fn known_dates() {
        // 2000-02-29 12:34:56 (a leap day in a /400 year).
        assert_eq!(
            DateTime::from_unix(951_827_696),
            dt(2000, 2, 29, 12, 34, 56)
        );
        assert_eq!(dt(2000, 2, 29, 12, 34, 56).to_unix(), Some(951_827_696));
        // 2038-01-19 03:14:07, the last 32-bit second, and the one after.
        assert_eq!(
            DateTime::from_unix(2_147_483_647),
            dt(2038, 1, 19, 3, 14, 7)
        );
        assert_eq!(
            DateTime::from_unix(2_147_483_648),
            dt(2038, 1, 19, 3, 14, 8)
        );
        assert_eq!(&format_timeval(2_147_483_648), b"20380119031408");
        // 2106-02-07 06:28:16, past u32 seconds.
        assert_eq!(
            DateTime::from_unix(4_294_967_296),
            dt(2106, 2, 7, 6, 28, 16)
        );
        // 2026-11-24 12:34:00.
        assert_eq!(parse_timeval(b"20261124123400"), Some(1_795_523_640));
        assert_eq!(
            DateTime::from_unix(1_795_523_640),
            dt(2026, 11, 24, 12, 34, 0)
        );
        // Year ends.
        assert_eq!(
            DateTime::from_unix(946_684_799),
            dt(1999, 12, 31, 23, 59, 59)
        );
        assert_eq!(DateTime::from_unix(946_684_800), dt(2000, 1, 1, 0, 0, 0));
    }

    #[test]
    fn year_9999_and_beyond() {
        assert_eq!(
            DateTime::from_unix(MAX_TIMEVAL_SECS),
            dt(9999, 12, 31, 23, 59, 59)
        );
        assert_eq!(
            dt(9999, 12, 31, 23, 59, 59).to_unix(),
            Some(MAX_TIMEVAL_SECS)
        );
        assert_eq!(&format_timeval(MAX_TIMEVAL_SECS), b"99991231235959");
        assert_eq!(&format_timeval(MAX_TIMEVAL_SECS + 1), b"99991231235959");
        assert_eq!(&format_timeval(u64::MAX), b"99991231235959");
        assert_eq!(parse_timeval(b"99991231235959"), Some(MAX_TIMEVAL_SECS));
        assert_eq!(
            DateTime::from_unix(MAX_TIMEVAL_SECS + 1),
            dt(10000, 1, 1, 0, 0, 0)
        );
        // Never panics, whatever the input.
        let far = DateTime::from_unix(u64::MAX);
        assert_eq!(far.year, u32::MAX);
        assert!(far.to_unix().is_some() || far.to_unix().is_none());
        let last = dt(u32::MAX, 12, 31, 23, 59, 59);
        assert!(last.to_unix().is_some());
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert_eq!(parse_timeval(b"20240229000000"), Some(1_709_164_800));
        assert_eq!(parse_timeval(b"20000229000000"), Some(951_782_400));
        assert_eq!(parse_timeval(b"20230229000000"), None);
        assert_eq!(parse_timeval(b"21000229000000"), None);
        assert_eq!(parse_timeval(b"19000229000000"), None);
        assert_eq!(DateTime::from_unix(1_709_164_800), dt(2024, 2, 29, 0, 0, 0));
        assert_eq!(
            DateTime::from_unix(1_709_164_800 + 86_400),
            dt(2024, 3, 1, 0, 0, 0)
        );
    }

    #[test]
    fn round_trips() {
        let mut secs = 0u64;
        while secs < MAX_TIMEVAL_SECS {
            let t = DateTime::from_unix(secs);
            assert_eq!(t.to_unix(), Some(secs), "{t:?}");
            assert_eq!(parse_timeval(&format_timeval(secs)), Some(secs));
            secs += 86_399 * 37 + 12_345;
        }
    }

    #[test]
    fn day_by_day_is_contiguous() {
        // Every day from 1970 to 2400 follows the one before.
        let mut prev = DateTime::from_unix(0);
        for day in 1..(430 * 366) {
            let t = DateTime::from_unix(day * 86_400);
            if t.day == 1 {
                assert!(
                    prev.day == days_in_month(prev.year, prev.month),
                    "{prev:?} -> {t:?}"
                );
                if t.month == 1 {
                    assert_eq!((t.year, prev.month), (prev.year + 1, 12));
                } else {
                    assert_eq!((t.year, t.month), (prev.year, prev.month + 1));
                }
            } else {
                assert_eq!(
                    (t.year, t.month, t.day),
                    (prev.year, prev.month, prev.day + 1)
                );
            }
            prev = t;
        }
    }

    #[test]
    fn rejects_invalid_fields() {
        assert_eq!(dt(1969, 12, 31, 23, 59, 59).to_unix(), None);
        assert_eq!(dt(2020, 0, 1, 0, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 13, 1, 0, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 1, 0, 0, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 1, 32, 0, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 4, 31, 0, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 1, 1, 24, 0, 0).to_unix(), None);
        assert_eq!(dt(2020, 1, 1, 0, 60, 0).to_unix(), None);
        assert_eq!(dt(2020, 1, 1, 0, 0, 60).to_unix(), None);
    }

    #[test]
    fn parse_timeval_forms() {
        assert_eq!(parse_timeval(b"20000101000000.123"), Some(946_684_800));
        assert_eq!(parse_timeval(b"20000101000000.0"), Some(946_684_800));
        assert_eq!(
            parse_timeval(b"20000101000000.99999999999999999999999999"),
            Some(946_684_800)
        );
        for bad in [
            &b""[..],
            b"2000010100000",
            b"200001010000000",
            b"20000101000000.",
            b"20000101000000.1a",
            b"20000101000000.1.2",
            b"2000010100000a",
            b"+2000101000000",
            b" 20000101000000",
            b"19691231235959",
            b"20001301000000",
            b"20000100000000",
            b"20000132000000",
            b"20000101240000",
            b"20000101006000",
            b"20000101000060",
            b".20000101000000",
        ] {
            assert_eq!(parse_timeval(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }
}

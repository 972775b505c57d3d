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

impl DateTime {
    /// The date and time of `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: u64) -> DateTime {
        let _ = secs;
        todo!()
    }
    /// Seconds since 1970 UTC; `None` for dates before 1970 or invalid fields.
    pub fn to_unix(&self) -> Option<u64> {
        todo!()
    }
}

/// Formats `secs` as `YYYYMMDDHHMMSS` (the RFC 3659 time-val, as in `MDTM`
/// replies and MLSx `modify=` facts).
pub fn format_timeval(secs: u64) -> [u8; 14] {
    let _ = secs;
    todo!()
}

/// Parses `YYYYMMDDHHMMSS` with an optional `.sss` fraction (ignored) into
/// seconds since 1970 UTC; `None` if malformed or out of range.
pub fn parse_timeval(s: &[u8]) -> Option<u64> {
    let _ = s;
    todo!()
}

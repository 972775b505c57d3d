//! Calendar dates to and from days since 1970-01-01, for FAT timestamps
//! (shared by the `fatfs` and `embedded-sdmmc` adapters).

pub(crate) const SECS_PER_DAY: u64 = 86_400;

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian), after Howard
/// Hinnant's `days_from_civil`; `None` before 1970 or for impossible fields.
pub(crate) fn days_from_civil(y: u16, m: u16, d: u16) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

/// `(year, month, day)` of a day counted from 1970-01-01.
pub(crate) fn civil_from_days(days: u64) -> (u64, u16, u16) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both fit: day is 1..=31 and month 1..=12.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u16;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u16;
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

//! Decimal number formatting and parsing without `core::fmt`.

/// 10^19 down to 10^1: digits are found by subtraction, so no 64-bit
/// division routine (about 450 bytes on a Cortex-M3) is linked.
const POWERS_OF_TEN: [u64; 19] = [
    10000000000000000000,
    1000000000000000000,
    100000000000000000,
    10000000000000000,
    1000000000000000,
    100000000000000,
    10000000000000,
    1000000000000,
    100000000000,
    10000000000,
    1000000000,
    100000000,
    10000000,
    1000000,
    100000,
    10000,
    1000,
    100,
    10,
];

/// Writes `n` in decimal into `out`; returns the number of bytes written,
/// or `None` if `out` is too small (max 20 bytes needed).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn write_u64(n: u64, out: &mut [u8]) -> Option<usize> {
    // Nothing is written when `out` is too short.
    let out = out.get_mut(..decimal_len(n))?;
    let mut len = 0;
    let mut rest = n;
    for &power in &POWERS_OF_TEN {
        let mut digit = b'0';
        while rest >= power {
            rest -= power;
            digit += 1;
        }
        if digit > b'0' || len > 0 {
            *out.get_mut(len)? = digit;
            len += 1;
        }
    }
    // `rest` is below 10 now, so the cast cannot truncate.
    *out.get_mut(len)? = b'0' + rest as u8;
    Some(len + 1)
}

/// Writes `n` in decimal, left-padded with `pad` to at least `width` bytes;
/// returns the number of bytes written, or `None` if `out` is too small.
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn write_u64_padded(n: u64, width: usize, pad: u8, out: &mut [u8]) -> Option<usize> {
    let digits = decimal_len(n);
    let fill = width.saturating_sub(digits);
    let (head, tail) = out.split_at_mut_checked(fill)?;
    let written = write_u64(n, tail)?;
    head.fill(pad);
    Some(fill + written)
}

/// The number of decimal digits of `n` (1 for zero).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn decimal_len(n: u64) -> usize {
    1 + POWERS_OF_TEN.iter().filter(|&&p| n >= p).count()
}

/// Parses an unsigned decimal number (ASCII digits only, no sign, no spaces,
/// at least one digit); `None` on anything else or overflow.
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(n: u64) -> ([u8; 20], usize) {
        let mut out = [0u8; 20];
        let len = write_u64(n, &mut out).unwrap();
        (out, len)
    }

    #[test]
    fn writes_numbers() {
        let (out, len) = fmt(0);
        assert_eq!(&out[..len], b"0");
        let (out, len) = fmt(7);
        assert_eq!(&out[..len], b"7");
        let (out, len) = fmt(10);
        assert_eq!(&out[..len], b"10");
        let (out, len) = fmt(1_234_567_890);
        assert_eq!(&out[..len], b"1234567890");
        let (out, len) = fmt(u64::MAX);
        assert_eq!(&out[..len], b"18446744073709551615");
    }

    #[test]
    fn write_refuses_short_buffers() {
        let mut out = [b'x'; 3];
        assert_eq!(write_u64(1000, &mut out), None);
        assert_eq!(&out, b"xxx", "nothing written on failure");
        assert_eq!(write_u64(999, &mut out), Some(3));
        assert_eq!(&out, b"999");
        assert_eq!(write_u64(0, &mut []), None);
    }

    #[test]
    fn writes_padded() {
        let mut out = [0u8; 8];
        assert_eq!(write_u64_padded(42, 5, b' ', &mut out), Some(5));
        assert_eq!(&out[..5], b"   42");
        assert_eq!(write_u64_padded(7, 2, b'0', &mut out), Some(2));
        assert_eq!(&out[..2], b"07");
        assert_eq!(write_u64_padded(123, 2, b'0', &mut out), Some(3));
        assert_eq!(&out[..3], b"123");
        assert_eq!(write_u64_padded(1, 9, b' ', &mut out), None);
    }

    #[test]
    fn counts_digits() {
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(9), 1);
        assert_eq!(decimal_len(10), 2);
        assert_eq!(decimal_len(u64::MAX), 20);
    }

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"000123"), Some(123));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b" 1"), None);
        assert_eq!(parse_u64(b"1 "), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_u64("١".as_bytes()), None);
    }
}

//! Decimal number formatting and parsing without `core::fmt`.

/// Writes `n` in decimal into `out`; returns the number of bytes written,
/// or `None` if `out` is too small (max 20 bytes needed).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn write_u64(n: u64, out: &mut [u8]) -> Option<usize> {
    let len = decimal_len(n);
    let mut rest = n;
    // Fill from the last digit backwards; `get_mut` fails (and nothing is
    // written) when `out` is too short.
    for slot in out.get_mut(..len)?.iter_mut().rev() {
        // `rest % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    Some(len)
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
    let mut len = 1;
    let mut rest = n / 10;
    while rest > 0 {
        len += 1;
        rest /= 10;
    }
    len
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

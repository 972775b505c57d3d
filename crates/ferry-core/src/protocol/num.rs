//! Decimal number formatting and parsing without `core::fmt`.

/// Writes `n` in decimal into `out`; returns the number of bytes written,
/// or `None` if `out` is too small (max 20 bytes needed).
pub fn write_u64(n: u64, out: &mut [u8]) -> Option<usize> {
    let _ = (n, out);
    todo!()
}

/// Parses an unsigned decimal number (ASCII digits only, no sign, no spaces,
/// at least one digit); `None` on anything else or overflow.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let _ = s;
    todo!()
}

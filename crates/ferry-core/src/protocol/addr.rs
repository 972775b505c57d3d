//! IP addresses in text, for `EPRT`: exactly the syntax that `core::net`'s
//! `Ipv4Addr` and `Ipv6Addr` parsers accept, in far less code (the `core`
//! parser is generic over number types and costs ~1 KB of Cortex-M flash).
//!
//! Contract: never panics; `None` for anything `core` would refuse. The unit
//! tests check both parsers against each other on random inputs.
use ferry_net::{Ipv4Addr, Ipv6Addr};

/// A dotted-quad IPv4 address (`192.0.2.1`; no leading zeros).
pub fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut rest = text;
    let octets = ipv4(&mut rest)?;
    rest.is_empty().then(|| Ipv4Addr::from(octets))
}

/// An IPv6 address (`2001:db8::1`, `::ffff:192.0.2.1`).
pub fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    let mut rest = text;
    let mut head = [0u16; 8];
    let (head_len, head_ipv4) = groups(&mut rest, &mut head);
    if head_len < 8 {
        // An embedded IPv4 address only ends an address; otherwise `::`
        // stands for at least one zero group, and the rest follows it.
        if head_ipv4 || !(next_is(&mut rest, b':') && next_is(&mut rest, b':')) {
            return None;
        }
        let mut tail = [0u16; 7];
        let (tail_len, _) = groups(&mut rest, tail.get_mut(..7 - head_len)?);
        head.get_mut(8 - tail_len..)?
            .copy_from_slice(tail.get(..tail_len)?);
    }
    rest.is_empty().then(|| Ipv6Addr::from(head))
}

/// Runs `parse` on a copy of `text`, consuming from `text` only if it succeeds.
fn atomically<T>(text: &mut &[u8], parse: impl FnOnce(&mut &[u8]) -> Option<T>) -> Option<T> {
    let mut copy = *text;
    let result = parse(&mut copy)?;
    *text = copy;
    Some(result)
}

/// Consumes `byte` if it comes next.
fn next_is(text: &mut &[u8], byte: u8) -> bool {
    match text.split_first() {
        Some((&first, rest)) if first == byte => {
            *text = rest;
            true
        }
        _ => false,
    }
}

/// A number of 1 to `max_digits` digits in `radix`; with `zero_prefix`
/// false, `0` itself but no other number may start with `0`. Consumes what
/// it read even when it fails: callers wrap it in [`atomically`].
fn number(text: &mut &[u8], radix: u32, max_digits: usize, zero_prefix: bool) -> Option<u32> {
    let leading_zero = text.first() == Some(&b'0');
    let mut value = 0;
    let mut digits = 0;
    while let Some((digit, rest)) = text
        .split_first()
        .and_then(|(&b, rest)| Some((char::from(b).to_digit(radix)?, rest)))
    {
        *text = rest;
        value = value * radix + digit;
        digits += 1;
        if digits > max_digits {
            return None;
        }
    }
    let refused = digits == 0 || (!zero_prefix && leading_zero && digits > 1);
    (!refused).then_some(value)
}

/// Four decimal octets separated by dots.
fn ipv4(text: &mut &[u8]) -> Option<[u8; 4]> {
    atomically(text, |p| {
        let mut octets = [0u8; 4];
        for (i, octet) in octets.iter_mut().enumerate() {
            if i > 0 && !next_is(p, b'.') {
                return None;
            }
            *octet = u8::try_from(number(p, 10, 3, false)?).ok()?;
        }
        Some(octets)
    })
}

/// Colon-separated hex groups into `out`, the last two of which may be an
/// embedded IPv4 address; how many were read, and whether IPv4 ended them.
fn groups(text: &mut &[u8], out: &mut [u16]) -> (usize, bool) {
    let limit = out.len();
    for i in 0..limit {
        let separator = |p: &mut &[u8]| i == 0 || next_is(p, b':');
        if i + 1 < limit {
            if let Some([a, b, c, d]) = atomically(text, |p| separator(p).then(|| ipv4(p))?) {
                if let Some(pair) = out.get_mut(i..i + 2) {
                    pair.copy_from_slice(&[u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]);
                }
                return (i + 2, true);
            }
        }
        let group = atomically(text, |p| separator(p).then(|| number(p, 16, 4, true))?);
        match (group, out.get_mut(i)) {
            // Four hex digits fit a u16.
            (Some(group), Some(slot)) => *slot = group as u16,
            _ => return (i, false),
        }
    }
    (limit, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    /// Checks both parsers on `text`; how many of v4 and v6 `core` accepted.
    fn same_as_core(text: &[u8]) -> [usize; 2] {
        let utf8 = core::str::from_utf8(text).ok();
        let v4 = utf8.and_then(|s| Ipv4Addr::from_str(s).ok());
        let v6 = utf8.and_then(|s| Ipv6Addr::from_str(s).ok());
        assert_eq!(parse_ipv4(text), v4, "{:?}", text);
        assert_eq!(parse_ipv6(text), v6, "{:?}", text);
        [usize::from(v4.is_some()), usize::from(v6.is_some())]
    }

    #[test]
    fn known_addresses() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4 ",
            "::",
            "::1",
            "1::",
            "1::2",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1.2.3.4::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4::5:6:7:8",
            "fe80::1%eth0",
            "1080::8:800:200C:417A",
            "12345::",
            "0000:0:00:000::",
            ":::",
            ":1::",
            "1:::2",
            "",
            ".",
            "é",
        ] {
            let _ = same_as_core(text.as_bytes());
        }
    }

    #[test]
    fn random_inputs_match_core() {
        let alphabet = b"0123456789abcdefABCDEFg:.:.::%\xc3\xa9";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut text = [0u8; 48];
        let mut accepted = [0, 0];
        for _ in 0..300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 41) as usize;
            let mut bits = state;
            for (i, b) in text[..len].iter_mut().enumerate() {
                if i % 10 == 0 {
                    bits = bits
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                }
                *b = alphabet[(bits >> ((i % 10) * 6)) as usize % alphabet.len()];
            }
            let [v4, v6] = same_as_core(&text[..len]);
            accepted = [accepted[0] + v4, accepted[1] + v6];
        }
        // The inputs must reach valid addresses, not only refusals.
        assert!(accepted[1] > 1_000, "{accepted:?}");
    }

    #[test]
    fn shaped_inputs_match_core() {
        // Mostly well-formed pieces, so that near-valid addresses are common.
        let pieces: [&[u8]; 14] = [
            b"0", b"1", b"ff", b"FFFF", b"10000", b"255", b"256", b"01", b":", b"::", b".",
            b"1.2.3.4", b"0.0.0.0", b"abcd",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut accepted = [0, 0];
        for _ in 0..300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut text = [0u8; 96];
            let mut len = 0;
            let mut bits = state;
            for _ in 0..(state % 12) {
                let piece = pieces[(bits % 14) as usize];
                bits /= 14;
                text[len..len + piece.len()].copy_from_slice(piece);
                len += piece.len();
            }
            let [v4, v6] = same_as_core(&text[..len]);
            accepted = [accepted[0] + v4, accepted[1] + v6];
        }
        assert!(accepted[0] > 3_000 && accepted[1] > 6_000, "{accepted:?}");
    }
}

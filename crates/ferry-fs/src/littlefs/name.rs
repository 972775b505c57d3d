//! How Ferry's byte paths are stored under littlefs2's ASCII-only paths.
//!
//! littlefs itself stores any bytes but NUL and `/` in a name; littlefs2
//! 0.8's `Path` accepts ASCII only, and at most 255 bytes for a whole path.
//! So a byte of 0x80 or above, and `%` itself, is stored as `%XX` (two
//! upper-case hex digits), and everything else as is: `Grüße` is stored as
//! `Gr%C3%BC%C3%9Fe`. Listing decodes exactly those sequences (`%25` and
//! `%80`..`%FF`); any other `%` is shown as is.
//!
//! Paths lose their leading `/`: `/a/b` is `a/b` and the root is the empty
//! path, which littlefs resolves to the root. This keeps littlefs2's
//! `ReadDir`, which joins the listed directory and each name into a path of
//! at most 255 bytes (and panics beyond), within bounds for every entry
//! created through this adapter.

use littlefs2::path::PathBuf;

use super::LfsError;
use crate::ErrorKind;

/// Longest stored name (littlefs's `name_max`) and longest stored path
/// (littlefs2's `PathBuf::MAX_SIZE`), in bytes.
pub(crate) const MAX_STORED: usize = 255;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether byte `b` is stored as `%XX`.
fn escaped(b: u8) -> bool {
    b >= 0x80 || b == b'%'
}

/// The stored form of a Ferry path (`/`, `/a/b`).
///
/// Fails with [`ErrorKind::InvalidName`] for NUL, and with
/// [`ErrorKind::NameTooLong`] when a stored name or the stored path would
/// exceed 255 bytes.
pub(crate) fn encode(path: &[u8]) -> Result<PathBuf, LfsError> {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    let mut buf = [0u8; MAX_STORED];
    let mut len = 0;
    let mut name_len = 0;
    for &b in rel {
        if b == 0 {
            return Err(LfsError::adapter(ErrorKind::InvalidName));
        }
        let mut push = |c: u8| -> Result<(), LfsError> {
            let slot = buf
                .get_mut(len)
                .ok_or(LfsError::adapter(ErrorKind::NameTooLong))?;
            *slot = c;
            len += 1;
            Ok(())
        };
        if escaped(b) {
            push(b'%')?;
            push(HEX[usize::from(b >> 4)])?;
            push(HEX[usize::from(b & 0xF)])?;
            name_len += 3;
        } else {
            push(b)?;
            name_len = if b == b'/' { 0 } else { name_len + 1 };
        }
        if name_len > MAX_STORED {
            return Err(LfsError::adapter(ErrorKind::NameTooLong));
        }
    }
    let stored = buf.get(..len).unwrap_or_default();
    // Only ASCII without NUL was written, within the size limit: littlefs2
    // accepts it.
    PathBuf::try_from(stored).map_err(|_| LfsError::adapter(ErrorKind::InvalidName))
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes a stored name into `out`; `None` if it does not fit.
pub(crate) fn decode(stored: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut i = 0;
    let mut len = 0;
    while let Some(&c) = stored.get(i) {
        let mut byte = c;
        i += 1;
        if c == b'%' {
            let hi = stored.get(i).copied().and_then(hex_value);
            let lo = stored.get(i + 1).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let b = (hi << 4) | lo;
                if escaped(b) {
                    byte = b;
                    i += 2;
                }
            }
        }
        *out.get_mut(len)? = byte;
        len += 1;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{format, vec::Vec};

    fn round_trip(path: &[u8]) -> usize {
        let stored = encode(path).unwrap();
        let s = stored.as_str().as_bytes();
        let mut out = [0u8; 300];
        let n = decode(s, &mut out).unwrap();
        assert_eq!(&out[..n], path.strip_prefix(b"/").unwrap());
        s.len()
    }

    #[test]
    fn encodes_and_decodes() {
        assert_eq!(encode(b"/").unwrap().as_str(), "");
        assert_eq!(encode(b"/a/b").unwrap().as_str(), "a/b");
        assert_eq!(
            encode("/Grüße %".as_bytes()).unwrap().as_str(),
            "Gr%C3%BC%C3%9Fe %25"
        );
        round_trip("/dir/Grüße 100%.txt".as_bytes());
        round_trip(b"/raw\xff\x80bytes");
        round_trip(b"/%41%zz%");
        let mut out = [0u8; 8];
        assert_eq!(decode(b"%41%zz%", &mut out), Some(7), "foreign % kept");
        assert_eq!(decode(b"123456789", &mut out), None);
    }

    #[test]
    fn limits() {
        let name = [b'n'; 255];
        let mut path: Vec<u8> = b"/".to_vec();
        path.extend_from_slice(&name);
        assert_eq!(round_trip(&path), 255);
        path.push(b'n');
        assert_eq!(encode(&path).unwrap_err().kind, ErrorKind::NameTooLong);
        // 86 two-byte characters: 172 bytes, stored as 516.
        let long = "é".repeat(86);
        let err = encode(format!("/{long}").as_bytes()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NameTooLong);
        assert_eq!(encode(b"/a\0b").unwrap_err().kind, ErrorKind::InvalidName);
        // A whole path over 255 bytes, each name short.
        let deep = "/abcdefghi".repeat(26);
        assert_eq!(
            encode(deep.as_bytes()).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
    }
}

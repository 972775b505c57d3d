//! 8.3 names: what a Ferry name becomes on the medium, and back.
//!
//! `embedded-sdmmc` reads and writes short (8.3) names only. A name is
//! stored if it has a base of 1 to 8 and an extension of 0 to 3 characters
//! from FAT's short-name set (ASCII letters and digits and
//! ``!#$%&'()-@^_`{}~``). Case: an all-lower-case base or extension is
//! stored upper case with the Windows NT "lower case" flag (byte 12 of the
//! entry: 0x08 base, 0x10 extension), which Windows, Linux and mtools
//! honour, so `readme.txt` and `README.TXT` both round-trip; a mixed-case
//! part (`Makefile`) is stored and listed upper case.
//!
//! One exception: the FTP engine's upload temporaries
//! (`.<slot>.ferry-part`, not 8.3) are stored as `~FP<slot>.TMP` and listed
//! under their engine name again, so that replacing uploads work and the
//! engine hides and cleans them up as on other backends.

use crate::ErrorKind;

use super::SdError;

/// NT flag: the base is lower case.
pub(crate) const LOWER_BASE: u8 = 0x08;
/// NT flag: the extension is lower case.
pub(crate) const LOWER_EXT: u8 = 0x10;

const TEMP_PREFIX: &[u8] = b".";
const TEMP_SUFFIX: &[u8] = b".ferry-part";
const TEMP_BASE: &[u8] = b"~FP";
const TEMP_EXT: &[u8] = b"TMP";

/// A name as `embedded-sdmmc` takes it (`BASE.EXT`, upper case), and the
/// case flags to store with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    buf: [u8; 12],
    len: u8,
    /// [`LOWER_BASE`] | [`LOWER_EXT`], as the name was spelled.
    pub(crate) flags: u8,
}

impl Short {
    /// The upper-case `BASE.EXT` (ASCII, so always valid UTF-8).
    pub(crate) fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }
}

fn is_short_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~".contains(&b)
}

/// The case flag of one part: set if it has lower-case letters and no
/// upper-case ones.
fn lower_flag(part: &[u8], flag: u8) -> u8 {
    let lower = part.iter().any(u8::is_ascii_lowercase);
    let upper = part.iter().any(u8::is_ascii_uppercase);
    if lower && !upper {
        flag
    } else {
        0
    }
}

/// The engine's temporary `.<digits>.ferry-part` (1 to 5 digits).
fn temp_slot(name: &[u8]) -> Option<&[u8]> {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        .filter(|d| (1..=5).contains(&d.len()) && d.iter().all(u8::is_ascii_digit))
}

/// The 8.3 form of `name`: [`ErrorKind::NameTooLong`] for a base over 8 or
/// an extension over 3 characters, [`ErrorKind::InvalidName`] for anything
/// else 8.3 cannot hold.
pub(crate) fn short_name(name: &[u8]) -> Result<Short, SdError> {
    let mut s = Short {
        buf: [0; 12],
        len: 0,
        flags: 0,
    };
    if let Some(digits) = temp_slot(name) {
        TEMP_BASE.iter().chain(digits).for_each(|&b| s.push(b));
        s.push(b'.');
        TEMP_EXT.iter().for_each(|&b| s.push(b));
        return Ok(s);
    }
    let invalid = SdError::new(ErrorKind::InvalidName, "not an 8.3 name");
    let (base, ext) = match name.iter().position(|&b| b == b'.') {
        Some(dot) => (
            name.get(..dot).unwrap_or_default(),
            name.get(dot + 1..).unwrap_or_default(),
        ),
        None => (name, &[][..]),
    };
    if base.is_empty() || (ext.is_empty() && base.len() < name.len()) {
        return Err(invalid); // leading or trailing dot
    }
    if !base.iter().chain(ext).all(|&b| is_short_char(b)) {
        return Err(invalid); // a second dot, a space, non-ASCII, ...
    }
    if base.len() > 8 || ext.len() > 3 {
        return Err(SdError::new(ErrorKind::NameTooLong, "longer than 8.3"));
    }
    base.iter().for_each(|b| s.push(b.to_ascii_uppercase()));
    if !ext.is_empty() {
        s.push(b'.');
        ext.iter().for_each(|b| s.push(b.to_ascii_uppercase()));
    }
    s.flags = lower_flag(base, LOWER_BASE) | lower_flag(ext, LOWER_EXT);
    Ok(s)
}

/// Writes the listed name of an entry (its stored `base` and `ext`, read
/// with the case `flags`) to the start of `out`; its length, or `None` if it
/// does not fit.
pub(crate) fn display_name(base: &[u8], ext: &[u8], flags: u8, out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut put = |b: u8| -> Option<()> {
        *out.get_mut(len)? = b;
        len += 1;
        Some(())
    };
    let slot = base.strip_prefix(TEMP_BASE).filter(|d| {
        ext == TEMP_EXT && (1..=5).contains(&d.len()) && d.iter().all(u8::is_ascii_digit)
    });
    if let Some(digits) = slot {
        for &b in TEMP_PREFIX.iter().chain(digits).chain(TEMP_SUFFIX) {
            put(b)?;
        }
        return Some(len);
    }
    let case = |b: u8, flag: u8| {
        if flags & flag != 0 {
            b.to_ascii_lowercase()
        } else {
            b
        }
    };
    for &b in base {
        put(case(b, LOWER_BASE))?;
    }
    if !ext.is_empty() {
        put(b'.')?;
        for &b in ext {
            put(case(b, LOWER_EXT))?;
        }
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(name: &str) -> Result<(&'static str, u8), ErrorKind> {
        short_name(name.as_bytes())
            .map(|s| (&*std::string::String::from(s.as_str()).leak(), s.flags))
            .map_err(|e| e.kind)
    }

    extern crate std;

    #[test]
    fn names_to_8_3() {
        assert_eq!(
            short("readme.txt"),
            Ok(("README.TXT", LOWER_BASE | LOWER_EXT))
        );
        assert_eq!(short("README.TXT"), Ok(("README.TXT", 0)));
        assert_eq!(short("Makefile"), Ok(("MAKEFILE", 0)));
        assert_eq!(short("data.BIN"), Ok(("DATA.BIN", LOWER_BASE)));
        assert_eq!(short("12345678.abc"), Ok(("12345678.ABC", LOWER_EXT)));
        assert_eq!(short("100%"), Ok(("100%", 0)));
        assert_eq!(short(".3.ferry-part"), Ok(("~FP3.TMP", 0)));
        assert_eq!(short("123456789"), Err(ErrorKind::NameTooLong));
        assert_eq!(short("a.long"), Err(ErrorKind::NameTooLong));
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "dot.",
            "a.b.c",
            "sp ace",
            "a+b",
            "Grüße",
            "q?",
            "a:b",
            ".123456.ferry-part",
        ] {
            assert_eq!(short(bad), Err(ErrorKind::InvalidName), "{bad:?}");
        }
    }

    #[test]
    fn listed_names() {
        let mut out = [0u8; 20];
        let mut shown = |base: &[u8], ext: &[u8], flags| {
            let n = display_name(base, ext, flags, &mut out).unwrap();
            std::string::String::from_utf8(out[..n].to_vec()).unwrap()
        };
        assert_eq!(
            shown(b"README", b"TXT", LOWER_BASE | LOWER_EXT),
            "readme.txt"
        );
        assert_eq!(shown(b"README", b"TXT", LOWER_EXT), "README.txt");
        assert_eq!(shown(b"MAKEFILE", b"", 0), "MAKEFILE");
        assert_eq!(shown(b"~FP12", b"TMP", 0), ".12.ferry-part");
        assert_eq!(shown(b"~FPX", b"TMP", 0), "~FPX.TMP");
        assert_eq!(display_name(b"ABCD", b"", 0, &mut [0u8; 3]), None);
    }
}

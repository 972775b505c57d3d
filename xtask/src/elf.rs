//! Just enough of a 32-bit little-endian ELF reader (Cortex-M images) to
//! size sections, list symbols and read a static's bytes; and the crate a
//! Rust symbol belongs to.
//!
//! Every read is checked: a truncated or foreign file gives an error, not a
//! panic.

/// A section: name, load address, size, and where its bytes are in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// E.g. `.text`.
    pub name: String,
    /// Load (virtual) address.
    pub addr: u32,
    /// Size in bytes.
    pub size: u32,
    /// Offset of its bytes in the file (meaningless for `.bss`).
    pub offset: u32,
    /// `SHT_NOBITS` (`.bss`): occupies memory but not the file.
    pub nobits: bool,
}

/// A symbol of the symbol table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The (mangled) name.
    pub name: String,
    /// Address (bit 0 set for Thumb functions).
    pub value: u32,
    /// Size in bytes.
    pub size: u32,
    /// Index of the section it is in (0 when undefined or absolute).
    pub section: u16,
}

/// A parsed image.
#[derive(Debug)]
pub struct Elf {
    /// All sections, in header order.
    pub sections: Vec<Section>,
    /// All symbols of `.symtab`.
    pub symbols: Vec<Symbol>,
    data: Vec<u8>,
}

const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;

fn u16_at(data: &[u8], at: usize) -> Result<u16, String> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, String> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

fn c_str(data: &[u8], at: usize) -> Result<String, String> {
    let bytes = data
        .get(at..)
        .ok_or_else(|| format!("string offset {at} out of the file"))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

impl Elf {
    /// Parses an ELF32 little-endian file.
    pub fn parse(data: Vec<u8>) -> Result<Elf, String> {
        if data.get(..4) != Some(b"\x7fELF") {
            return Err("not an ELF file".into());
        }
        if data.get(4) != Some(&1) || data.get(5) != Some(&1) {
            return Err("not a 32-bit little-endian ELF file".into());
        }
        let shoff = u32_at(&data, 0x20)? as usize;
        let shentsize = u16_at(&data, 0x2E)? as usize;
        let shnum = u16_at(&data, 0x30)? as usize;
        let shstrndx = u16_at(&data, 0x32)? as usize;
        if shentsize < 40 {
            return Err(format!("odd section header size {shentsize}"));
        }
        struct Raw {
            name: u32,
            kind: u32,
            addr: u32,
            offset: u32,
            size: u32,
            link: u32,
            entsize: u32,
        }
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            raw.push(Raw {
                name: u32_at(&data, h)?,
                kind: u32_at(&data, h + 4)?,
                addr: u32_at(&data, h + 12)?,
                offset: u32_at(&data, h + 16)?,
                size: u32_at(&data, h + 20)?,
                link: u32_at(&data, h + 24)?,
                entsize: u32_at(&data, h + 36)?,
            });
        }
        let names_at = raw.get(shstrndx).ok_or("no section name table")?.offset as usize;
        let mut sections = Vec::with_capacity(shnum);
        for r in &raw {
            sections.push(Section {
                name: c_str(&data, names_at + r.name as usize)?,
                addr: r.addr,
                size: r.size,
                offset: r.offset,
                nobits: r.kind == SHT_NOBITS,
            });
        }
        let mut symbols = Vec::new();
        if let Some(symtab) = raw.iter().find(|r| r.kind == SHT_SYMTAB) {
            let strings_at = raw
                .get(symtab.link as usize)
                .ok_or("symbol table without string table")?
                .offset as usize;
            let entsize = (symtab.entsize as usize).max(16);
            let count = symtab.size as usize / entsize;
            for i in 0..count {
                let s = symtab.offset as usize + i * entsize;
                symbols.push(Symbol {
                    name: c_str(&data, strings_at + u32_at(&data, s)? as usize)?,
                    value: u32_at(&data, s + 4)?,
                    size: u32_at(&data, s + 8)?,
                    section: u16_at(&data, s + 14)?,
                });
            }
        }
        Ok(Elf {
            sections,
            symbols,
            data,
        })
    }

    /// The size of the section called `name` (0 if there is none).
    pub fn section_size(&self, name: &str) -> u32 {
        self.sections
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.size)
            .sum()
    }

    /// The index of the section called `name`.
    pub fn section_index(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    /// The bytes of the symbol called `name`, from the file.
    pub fn symbol_bytes(&self, name: &str) -> Result<&[u8], String> {
        let symbol = self
            .symbols
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no symbol {name}"))?;
        let section = self
            .sections
            .get(symbol.section as usize)
            .filter(|s| !s.nobits)
            .ok_or_else(|| format!("{name} is not in a section with file contents"))?;
        let start = symbol
            .value
            .checked_sub(section.addr)
            .ok_or_else(|| format!("{name} lies before its section"))? as usize
            + section.offset as usize;
        self.data
            .get(start..start + symbol.size as usize)
            .ok_or_else(|| format!("{name} lies outside the file"))
    }
}

/// The crate whose source a Rust symbol's code comes from: the crate root
/// of its path, or for an impl's method the crate the impl is written in.
///
/// Understands v0 mangling (`_R…`, what rustc emits here) and legacy
/// mangling (`_ZN…`); `None` for anything else (C symbols, `memcpy`).
/// Generic arguments do not count: `drop_in_place::<ferry_core::Server>`
/// belongs to `core`.
pub fn symbol_crate(symbol: &str) -> Option<String> {
    if let Some(v0) = symbol.strip_prefix("_R") {
        let bytes = v0.as_bytes();
        let mut at = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        return v0_path_crate(bytes, &mut at, 0);
    }
    let legacy = symbol.strip_prefix("_ZN")?;
    let len_digits = legacy.bytes().take_while(|b| b.is_ascii_digit()).count();
    let len: usize = legacy.get(..len_digits)?.parse().ok()?;
    let first = legacy.get(len_digits..len_digits + len)?;
    // `<T as Trait>` is spelled `_$LT$path..T$u20$as$u20$Trait$GT$`.
    let first = first.trim_start_matches("_$LT$");
    let first = first
        .trim_start_matches("$RF$")
        .trim_start_matches("mut$u20$");
    let name = first.split("..").next()?;
    (!name.is_empty() && !name.contains('$')).then(|| name.to_string())
}

/// Follows a v0 `<path>` at `at` to its crate root. `depth` bounds backrefs.
fn v0_path_crate(s: &[u8], at: &mut usize, depth: u8) -> Option<String> {
    if depth > 16 {
        return None;
    }
    let tag = *s.get(*at)?;
    *at += 1;
    match tag {
        b'C' => {
            skip_disambiguator(s, at)?;
            v0_ident(s, at)
        }
        // Nested path: namespace tag, then the parent path first.
        b'N' => {
            *at += 1;
            v0_path_crate(s, at, depth + 1)
        }
        // Inherent or trait impl: the impl's own path comes first.
        b'M' | b'X' => {
            skip_disambiguator(s, at)?;
            v0_path_crate(s, at, depth + 1)
        }
        // `<T as Trait>` with no impl path: the trait's code (a default
        // method); the type comes first and may be anything, so only a
        // path-shaped type is followed.
        b'Y' => v0_path_crate(s, at, depth + 1),
        b'I' => v0_path_crate(s, at, depth + 1),
        b'B' => {
            let tag_at = *at - 1;
            let mut target = base62(s, at)?;
            if target >= tag_at {
                return None; // A backref must point backwards.
            }
            v0_path_crate(s, &mut target, depth + 1)
        }
        _ => None,
    }
}

fn skip_disambiguator(s: &[u8], at: &mut usize) -> Option<()> {
    if s.get(*at) == Some(&b's') {
        *at += 1;
        base62(s, at)?;
    }
    Some(())
}

/// A `<base-62-number>`: `_` is 0, otherwise digits then `_`, plus one.
fn base62(s: &[u8], at: &mut usize) -> Option<usize> {
    if s.get(*at) == Some(&b'_') {
        *at += 1;
        return Some(0);
    }
    let mut value: usize = 0;
    loop {
        let c = *s.get(*at)?;
        *at += 1;
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 36,
            b'_' => return value.checked_add(1),
            _ => return None,
        };
        value = value.checked_mul(62)?.checked_add(digit as usize)?;
    }
}

/// An `<identifier>`: decimal length, an optional `_` separator, the bytes.
fn v0_ident(s: &[u8], at: &mut usize) -> Option<String> {
    if s.get(*at) == Some(&b'u') {
        *at += 1; // Punycode: the raw form is good enough for a crate name.
    }
    let digits = s
        .get(*at..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let len: usize = std::str::from_utf8(s.get(*at..*at + digits)?)
        .ok()?
        .parse()
        .ok()?;
    *at += digits;
    if s.get(*at) == Some(&b'_') {
        *at += 1;
    }
    let name = s.get(*at..*at + len)?;
    *at += len;
    Some(String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_symbols_belong_to_their_crate_root() {
        // size_probe::__cortex_m_rt_main
        assert_eq!(
            symbol_crate("_RNvCs51BYxAwbtgZ_10size_probe18___cortex_m_rt_main").as_deref(),
            Some("size_probe")
        );
        // core::panicking::panic
        assert_eq!(
            symbol_crate("_RNvNtCsaIZj7YV2Pj6_4core9panicking5panic").as_deref(),
            Some("core")
        );
        // <ferry_core::server::Server<..>>::poll::<..>: an inherent impl (M)
        // written in ferry_core::server.
        assert_eq!(
            symbol_crate("_RINvMNtCs1_10ferry_core6serverINtB4_6ServerNtCs2_10size_probe9StubStackE4pollB12_E")
                .as_deref(),
            Some("ferry_core")
        );
        // <size_probe::StubFs as ferry_fs::FileSystem>::open_read: the impl
        // (X) is written in size_probe.
        assert_eq!(
            symbol_crate("_RNvXCs2_10size_probeNtB2_6StubFsNtCs3_8ferry_fs10FileSystem9open_read")
                .as_deref(),
            Some("size_probe")
        );
        // A backref that does not point backwards is refused.
        assert_eq!(symbol_crate("_RNvXB1_Cs1_4core4drop"), None);
        assert_eq!(symbol_crate("memcpy"), None);
        assert_eq!(symbol_crate("_R"), None);
    }

    #[test]
    fn base62_numbers() {
        for (text, value) in [("_", 0), ("0_", 1), ("a_", 11), ("Z_", 62), ("10_", 63)] {
            let mut at = 0;
            assert_eq!(base62(text.as_bytes(), &mut at), Some(value), "{text}");
            assert_eq!(at, text.len());
        }
    }

    #[test]
    fn legacy_symbols_belong_to_their_first_component() {
        assert_eq!(
            symbol_crate("_ZN10ferry_core6server4poll17h0123456789abcdefE").as_deref(),
            Some("ferry_core")
        );
        assert_eq!(
            symbol_crate(
                "_ZN63_$LT$size_probe..StubFs$u20$as$u20$ferry_fs..FileSystem$GT$4open17hE"
            )
            .as_deref(),
            Some("size_probe")
        );
    }

    #[test]
    fn rejects_what_is_not_elf32() {
        assert!(Elf::parse(b"\x7fELF\x02\x01".to_vec()).is_err());
        assert!(Elf::parse(b"MZ".to_vec()).is_err());
        assert!(Elf::parse(b"\x7fELF\x01\x01\0\0".to_vec()).is_err());
    }
}

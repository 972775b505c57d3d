//! What a storage adapter adds to the Cortex-M3 image (`cargo xtask size`).
//!
//! - littlefs: `size-probe` (default profile) is built again with its
//!   `littlefs` feature, where
//!   the engine serves a littlefs volume over an opaque block device instead
//!   of the opaque file system. The difference in Ferry's ROM between the two
//!   images is what the adapter adds to a firmware: ferry-fs's `LittleFs`,
//!   littlefs2, and littlefs's C compiled by arm-none-eabi-gcc (its `lfs_*`
//!   symbols are listed apart), less the stub file system.
//! - FAT is not measured: ferry-fs's FAT adapter uses `fatfs`, which needs
//!   std; a no_std board would use `embedded-sdmmc`, which has no adapter.
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{build_probe_with, kb, rom, Rom};
use crate::cmd::{self, find_program, header};
use crate::elf::Elf;
use crate::test::THUMB_TARGET;
use crate::Failure;

/// The bare-metal C compiler littlefs2-sys's build (the `cc` crate) uses.
const C_COMPILER: &str = "arm-none-eabi-gcc";

/// What the FAT line says instead of a figure.
const FAT_NOT_MEASURED: &str = "FAT: not measured. ferry-fs's FAT adapter uses `fatfs`, which \
                                needs std; a no_std board would use `embedded-sdmmc`, which has \
                                no adapter yet.";

/// What serving littlefs adds, at one opt-level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Ferry's ROM with littlefs, less Ferry's ROM with the stub file system.
    pub rom: i64,
    /// Of the image with littlefs: littlefs's C functions (`lfs_*`).
    pub c: u32,
}

/// The littlefs figures at opt-level "z" and "s", or why they are missing.
pub type Measured = Result<[Added; 2], String>;

/// Builds the probe with littlefs at "z" and "s" and compares it with the
/// stub builds `z` and `s`. Missing tools give `Err(why)`, not a failure.
pub fn measure(root: &Path, z: &Rom, s: &Rom) -> Result<Measured, Failure> {
    if let Some(missing) = missing() {
        println!("\nlittlefs adapter: not measured (missing {missing}; run cargo xtask setup)");
        return Ok(Err(format!("not measured (missing {missing})")));
    }
    Ok(Ok([measure_one(root, "z", z)?, measure_one(root, "s", s)?]))
}

fn measure_one(root: &Path, opt: &str, stub: &Rom) -> Result<Added, Failure> {
    header(&format!(
        "size-probe with littlefs for {THUMB_TARGET}, opt-level \"{opt}\""
    ));
    let env = bindgen_env()
        .ok_or_else(|| Failure("clang's headers disappeared while measuring".into()))?;
    let release = build_probe_with(
        root,
        opt,
        &["full", "littlefs"],
        &format!("default-opt-{opt}-littlefs"),
        Some(env),
        &["size-probe"],
    )?;
    let elf_path = release.join("size-probe");
    let data = std::fs::read(&elf_path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", elf_path.display())))?;
    let image = Elf::parse(data).map_err(|e| Failure(format!("{}: {e}", elf_path.display())))?;
    let with = rom(&image);
    Ok(Added {
        rom: i64::from(with.ferry()) - i64::from(stub.ferry()),
        c: c_symbols(&image, "lfs_"),
    })
}

/// What building the probe with littlefs needs and is not there.
fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if find_program(C_COMPILER).is_none() {
        missing.push(format!("{C_COMPILER} (Debian package gcc-arm-none-eabi)"));
    }
    if clang_include_dir().is_none() {
        missing.push("clang's own C headers (Debian package clang)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The variable that gives bindgen (libclang) what it needs to parse
/// littlefs's header for the bare-metal target: the compiler's own headers
/// (`stdint.h`, `stdbool.h`) and no hosted C library.
fn bindgen_env() -> Option<(String, String)> {
    let include = clang_include_dir()?;
    Some((
        format!(
            "BINDGEN_EXTRA_CLANG_ARGS_{}",
            THUMB_TARGET.replace('-', "_")
        ),
        format!("-I{} -ffreestanding", include.display()),
    ))
}

/// clang's own header directory: from `clang -print-resource-dir`, else the
/// newest `/usr/lib/llvm-*/lib/clang/*/include` (libclang-dev brings one).
fn clang_include_dir() -> Option<PathBuf> {
    let has_headers = |dir: &Path| dir.join("stdint.h").is_file();
    if let Some(resource) = cmd::output(Command::new("clang").arg("-print-resource-dir")) {
        let dir = PathBuf::from(resource.trim()).join("include");
        if has_headers(&dir) {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .filter_map(|e| std::fs::read_dir(e.path().join("lib/clang")).ok())
        .flatten()
        .flatten()
        .map(|e| e.path().join("include"))
        .filter(|dir| has_headers(dir))
        .collect();
    found.sort();
    found.pop()
}

/// Bytes of ROM in symbols whose name starts with `prefix` (C functions).
fn c_symbols(image: &Elf, prefix: &str) -> u32 {
    let rom_sections: Vec<usize> = [".text", ".rodata"]
        .iter()
        .filter_map(|name| image.section_index(name))
        .collect();
    image
        .symbols
        .iter()
        .filter(|s| rom_sections.contains(&(s.section as usize)) && s.name.starts_with(prefix))
        .map(|s| s.size)
        .sum()
}

/// `bytes` as e.g. `+20480 (20.0 KB)`.
fn signed_kb(bytes: i64) -> String {
    match u32::try_from(bytes) {
        Ok(b) => format!("+{}", kb(b)),
        Err(_) => format!("{bytes} bytes"),
    }
}

/// The lines on the terminal.
pub fn report(measured: &Measured) -> String {
    let mut out = String::from("\nStorage adapters, ROM each adds to the image:\n");
    match measured {
        Ok([z, s]) => {
            out += &format!(
                "  {:<44} {:>16} {:>16}\n",
                "littlefs (ferry-fs + littlefs2 + C)",
                signed_kb(z.rom),
                signed_kb(s.rom)
            );
            out += &format!(
                "  {:<44} {:>16} {:>16}\n",
                "  of which littlefs's C (lfs_*, gcc)",
                kb(z.c),
                kb(s.c)
            );
        }
        Err(why) => out += &format!("  littlefs: {why}\n"),
    }
    out += &format!("  {FAT_NOT_MEASURED}\n");
    out
}

/// The generated part of docs/BENCHMARKS.md's storage section.
pub fn benchmarks_section(measured: &Measured, provenance: &str) -> String {
    let mut out = format!("{provenance}\n\n");
    match measured {
        Ok([z, s]) => {
            out += &format!(
                "| ROM added by | opt \"z\" | opt \"s\" |\n\
                 |---|---:|---:|\n\
                 | littlefs: ferry-fs's adapter, littlefs2, littlefs's C | {} | {} |\n\
                 | of which littlefs's C (`lfs_*`, arm-none-eabi-gcc) | {} | {} |\n",
                signed_kb(z.rom),
                signed_kb(s.rom),
                kb(z.c),
                kb(s.c)
            );
        }
        Err(why) => out += &format!("littlefs: {why}.\n"),
    }
    out += &format!("\n{FAT_NOT_MEASURED}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_bytes_are_signed() {
        assert_eq!(signed_kb(2048), "+2048 (2.0 KB)");
        assert_eq!(signed_kb(-12), "-12 bytes");
    }
}

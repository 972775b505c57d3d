//! `cargo xtask size`: what Ferry costs on a Cortex-M3, beside SEGGER
//! emFTP's published figures.
//!
//! How it measures (see also `size-probe/src/main.rs`):
//! - ROM: `size-probe/` is built for `thumbv7m-none-eabi` at opt-level "z"
//!   and "s" (LTO, one codegen unit, panic = abort) with Debian's toolchain.
//!   The image's `.text` + `.rodata`, less the symbols of the probe itself
//!   (its opaque stubs) and of cortex-m-rt, is Ferry's ROM: its own functions
//!   plus the library code they pull in (`memcpy`, 64-bit division, ...) and
//!   constants that carry no symbol (reply texts).
//! - RAM: the probe's `FERRY_RAM` static holds `size_of` of the server for 1
//!   and for 4 sessions as laid out for this target; it is read out of the
//!   ELF file. That is the engine's whole state, the shared transfer buffer
//!   included; the stack `poll` uses and the TCP/IP stack's and file
//!   system's own state are not counted.
//! - Storage adapters: the probe is built again serving littlefs; the
//!   difference is what the adapter adds (see `size/storage.rs`).
//! - TLS: `crates/ferry-tls/probe` is built for a Cortex-M4F and measured
//!   apart (see `size/tls.rs`); the figures go to docs/SECURITY.md.
//! - Firmware: `boards/qemu-mps2-an385` and `boards/stm32f429zi` (with
//!   each of its stacks: on-chip Ethernet and smoltcp, or a W5500) are
//!   built at both opt-levels too, and measured whole (flash, static RAM,
//!   and the bytes of each crate; see `firmware.rs`).
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

mod storage;

use crate::cmd::{self, find_program, header};
use crate::docs;
use crate::elf::{self, Elf};
use crate::firmware;
use crate::test::THUMB_TARGET;
use crate::Failure;

pub mod tls;

/// The opt-levels measured.
const OPT_LEVELS: [&str; 2] = ["z", "s"];

/// SEGGER emFTP's published figures, the reference.
const EMFTP: &str = "emFTP (SEGGER), for reference: ROM 5.6 KB on a Cortex-M3; \
                     RAM 2.5 KB for one connection, +1.8 KB for each further one";

/// Symbols of the probe's own runtime that carry no Rust mangling.
const RUNTIME_SYMBOLS: &[&str] = &[
    "Reset",
    "main",
    "DefaultHandler",
    "DefaultHandler_",
    "DefaultPreInit",
    "HardFault",
    "HardFault_",
    "HardFaultTrampoline",
    "__pre_init",
    "FERRY_RAM",
];

/// Crates whose code is the probe's harness, not Ferry's. `__rustc` holds
/// the probe's panic handler.
const HARNESS_CRATES: &[&str] = &["size_probe", "cortex_m_rt", "__rustc"];

/// Below this many bytes in ferry_* functions the engine is not written
/// yet (its bodies are `todo!()`), and the figures mean nothing.
const EMPTY_ENGINE_BYTES: u32 = 1024;

/// ROM figures of one build.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Rom {
    /// `.text` + `.rodata` of the whole image.
    image: u32,
    /// Symbols of the probe's stubs and runtime.
    harness: u32,
    /// Symbols of the ferry_* crates.
    ferry_functions: u32,
    /// Bytes per owning crate (`-` for symbols of no Rust crate).
    by_crate: BTreeMap<String, u32>,
}

impl Rom {
    /// Ferry's ROM: the image less the harness.
    fn ferry(&self) -> u32 {
        self.image.saturating_sub(self.harness)
    }
    /// Bytes of the image that no symbol covers.
    fn unattributed(&self) -> u32 {
        self.image
            .saturating_sub(self.by_crate.values().sum::<u32>())
    }
}

/// RAM figures, from the probe's `FERRY_RAM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ram {
    buffer: u32,
    small_sessions: u32,
    small: u32,
    large_sessions: u32,
    large: u32,
}

impl Ram {
    /// What each session beyond the first adds.
    fn per_session(&self) -> u32 {
        let extra = self
            .large_sessions
            .saturating_sub(self.small_sessions)
            .max(1);
        self.large.saturating_sub(self.small) / extra
    }
}

/// Runs the chore.
pub fn run() -> Result<(), Failure> {
    if let Some(missing) = cmd::debian_toolchain_missing() {
        return Err(Failure(format!("missing {missing}; run cargo xtask setup")));
    }
    if find_program("ld.lld").is_none() {
        return Err(Failure(
            "missing ld.lld (Debian package lld); run cargo xtask setup".into(),
        ));
    }
    let root = cmd::root();
    let mut roms = Vec::new();
    let mut ram = None;
    for opt in OPT_LEVELS {
        header(&format!(
            "size-probe for {THUMB_TARGET}, opt-level \"{opt}\""
        ));
        let elf_path = build_probe(&root, opt)?;
        let data = std::fs::read(&elf_path)
            .map_err(|e| Failure(format!("cannot read {}: {e}", elf_path.display())))?;
        let image =
            Elf::parse(data).map_err(|e| Failure(format!("{}: {e}", elf_path.display())))?;
        if image.section_size(".data") != 0 {
            println!(
                "note: .data holds {} bytes (initialised statics: flash and RAM)",
                image.section_size(".data")
            );
        }
        roms.push(rom(&image));
        let this_ram = read_ram(&image)?;
        if ram.is_some_and(|r| r != this_ram) {
            return Err(Failure("RAM sizes differ between opt-levels".into()));
        }
        ram = Some(this_ram);
    }
    let ram = ram.ok_or("no build")?;
    let (z, s) = match roms.as_slice() {
        [z, s] => (z, s),
        _ => return Err(Failure("expected two builds".into())),
    };
    let adapters = storage::measure(&root, z, s)?;

    let toolchain = cmd::output(Command::new(cmd::DEBIAN_RUSTC).arg("--version"))
        .map(|v| v.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "rustc".into());
    println!();
    print!("{}", report(z, s, &ram, &toolchain));
    print!("{}", storage::report(&adapters));

    if z.ferry_functions < EMPTY_ENGINE_BYTES {
        println!(
            "\nWARNING: ferry_* functions take only {} bytes: the engine is not written yet \
             (todo!() bodies), so these figures mean nothing. docs/BENCHMARKS.md and \
             README.md were left unchanged.",
            z.ferry_functions
        );
        return Ok(());
    }
    let commit =
        cmd::output(
            Command::new("git")
                .current_dir(&root)
                .args(["rev-parse", "--short", "HEAD"]),
        )
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .current_dir(&root)
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|status| status.code() == Some(1));
    let commit = if dirty {
        format!("{commit} with uncommitted changes")
    } else {
        commit
    };
    let provenance = format!(
        "Measured by `cargo xtask size` on {} (commit {commit}, {toolchain} from Debian), \
         for {THUMB_TARGET} (Cortex-M3).",
        today()
    );
    docs::update_section(
        &root.join("docs/BENCHMARKS.md"),
        "size",
        &benchmarks_section(z, s, &ram, &provenance),
    )?;
    docs::update_section(&root.join("README.md"), "size", &readme_section(z, s, &ram))?;
    docs::update_section(
        &root.join("docs/BENCHMARKS.md"),
        "storage-size",
        &storage::benchmarks_section(&adapters, &provenance),
    )?;
    println!("\nwrote docs/BENCHMARKS.md and README.md");
    tls::report(
        &root,
        &format!(
            "Measured by `cargo xtask size` on {} (commit {commit}, {toolchain} from Debian).",
            today()
        ),
    );

    let provenance = format!(
        "Measured by `cargo xtask size` on {} (commit {commit}, {toolchain} from Debian): \
         release builds, LTO, one codegen unit, `panic = \"abort\"`, default features \
         (the W5500 row: `stack-w5500,storage-flash`).",
        today()
    );
    firmware_sizes(&root, &provenance)
}

/// The firmware images at both opt-levels: flash, RAM and whose bytes they
/// are; updates docs/BENCHMARKS.md's firmware section.
fn firmware_sizes(root: &Path, provenance: &str) -> Result<(), Failure> {
    if let Some(missing) = firmware::missing() {
        return Err(Failure(format!(
            "firmware sizes: missing {missing}; run cargo xtask setup"
        )));
    }
    let mut measured = Vec::new();
    for board in firmware::MEASURED {
        let mut images = Vec::new();
        for opt in OPT_LEVELS {
            header(&format!("{}, opt-level \"{opt}\"", board.title));
            let elf = firmware::build(root, &board, Some(opt), board.features)?;
            images.push((opt, firmware::measure(&elf)?));
        }
        measured.push((board, images));
    }
    let (term, doc) = firmware::size_report(&measured, provenance);
    println!("\nFirmware images (KB = 1024 bytes):{term}");
    docs::update_section(&root.join("docs/BENCHMARKS.md"), "firmware-size", &doc)?;
    println!("\nwrote docs/BENCHMARKS.md (firmware)");
    Ok(())
}

/// Builds the probe at `opt`; the path of the ELF image.
pub fn build_probe(root: &Path, opt: &str) -> Result<std::path::PathBuf, Failure> {
    build_probe_with(root, opt, None)
}

/// Builds the probe at `opt`, with a cargo feature and an environment
/// variable its build needs; the path of the ELF image.
fn build_probe_with(
    root: &Path,
    opt: &str,
    feature: Option<(&str, (String, String))>,
) -> Result<std::path::PathBuf, Failure> {
    let dir = match &feature {
        Some((name, _)) => format!("opt-{opt}-{name}"),
        None => format!("opt-{opt}"),
    };
    let target_dir = root.join("target/size-probe").join(dir);
    let mut cargo = cmd::debian_cargo();
    // No `--locked`: the probe's path dependencies change under it as the
    // engine grows; its committed Cargo.lock still pins every registry crate.
    cargo.current_dir(root.join("size-probe")).args([
        "build",
        "--release",
        "--target",
        THUMB_TARGET,
        "-Zbuild-std=core",
        "--config",
        &format!("profile.release.opt-level=\"{opt}\""),
        "--config",
        &format!("target.{THUMB_TARGET}.linker=\"ld.lld\""),
        "--target-dir",
    ]);
    cargo.arg(&target_dir);
    if let Some((name, (key, value))) = feature {
        cargo.args(["--features", name]).env(key, value);
    }
    cmd::run(&mut cargo)?;
    Ok(target_dir.join(THUMB_TARGET).join("release/size-probe"))
}

/// ROM figures of `image`.
fn rom(image: &Elf) -> Rom {
    let rom_sections: Vec<usize> = [".text", ".rodata"]
        .iter()
        .filter_map(|name| image.section_index(name))
        .collect();
    let mut rom = Rom {
        image: image.section_size(".text") + image.section_size(".rodata"),
        ..Rom::default()
    };
    for symbol in &image.symbols {
        if symbol.size == 0 || !rom_sections.contains(&(symbol.section as usize)) {
            continue;
        }
        let owner = elf::symbol_crate(&symbol.name);
        let harness = match owner.as_deref() {
            Some(krate) => HARNESS_CRATES.contains(&krate),
            None => RUNTIME_SYMBOLS.contains(&symbol.name.as_str()),
        };
        if harness {
            rom.harness += symbol.size;
        }
        if owner.as_deref().is_some_and(|k| k.starts_with("ferry_")) {
            rom.ferry_functions += symbol.size;
        }
        *rom.by_crate
            .entry(owner.unwrap_or_else(|| "-".into()))
            .or_default() += symbol.size;
    }
    rom
}

/// Reads the probe's `FERRY_RAM` words.
fn read_ram(image: &Elf) -> Result<Ram, Failure> {
    let bytes = image.symbol_bytes("FERRY_RAM")?;
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    match words.as_slice() {
        &[buffer, small_sessions, small, large_sessions, large] => Ok(Ram {
            buffer,
            small_sessions,
            small,
            large_sessions,
            large,
        }),
        _ => Err(Failure(format!(
            "FERRY_RAM holds {} bytes, expected 20",
            bytes.len()
        ))),
    }
}

/// `bytes` as e.g. `5734 (5.6 KB)`, with KB = 1024 bytes.
fn kb(bytes: u32) -> String {
    format!("{bytes} ({:.1} KB)", f64::from(bytes) / 1024.0)
}

/// The report on the terminal.
fn report(z: &Rom, s: &Rom, ram: &Ram, toolchain: &str) -> String {
    let mut out = format!(
        "Ferry on {THUMB_TARGET} (Cortex-M3), measured with size-probe/ ({toolchain}); KB = 1024 bytes\n\n"
    );
    let row = |label: &str, z: u32, s: u32| format!("  {label:<44} {:>16} {:>16}\n", kb(z), kb(s));
    out += &format!(
        "{:<46} {:>16} {:>16}\n",
        "ROM (.text + .rodata), bytes", "opt \"z\"", "opt \"s\""
    );
    out += &row("Ferry (image less stubs and runtime)", z.ferry(), s.ferry());
    out += &row(
        "  of which in ferry_* functions",
        z.ferry_functions,
        s.ferry_functions,
    );
    out += &row("whole probe image", z.image, s.image);
    out += &row(
        "stubs and runtime (probe, cortex-m-rt)",
        z.harness,
        s.harness,
    );
    out += "  by crate ('-': symbols of no Rust crate, e.g. memcpy and anonymous constants):\n";
    let crates: std::collections::BTreeSet<&String> =
        z.by_crate.keys().chain(s.by_crate.keys()).collect();
    for krate in crates {
        let get = |rom: &Rom| rom.by_crate.get(krate).copied().unwrap_or(0);
        out += &row(&format!("  {krate}"), get(z), get(s));
    }
    out += &row(
        "  no symbol (constants, padding)",
        z.unattributed(),
        s.unattributed(),
    );
    out += &format!(
        "\nRAM (size_of Server, {}-byte transfer buffer shared by all sessions), bytes\n",
        ram.buffer
    );
    out += &format!(
        "  {:<44} {:>16}\n",
        format!(
            "{} session{}",
            ram.small_sessions,
            if ram.small_sessions == 1 { "" } else { "s" }
        ),
        kb(ram.small)
    );
    out += &format!(
        "  {:<44} {:>16}\n",
        format!("{} sessions", ram.large_sessions),
        kb(ram.large)
    );
    out += &format!(
        "  {:<44} {:>16}\n",
        "each further session",
        kb(ram.per_session())
    );
    out += &format!("\n{EMFTP}.\n");
    out +=
        "Not counted: the stack poll() uses, and the TCP/IP stack's and file system's own state.\n";
    out
}

/// The generated part of docs/BENCHMARKS.md's size section.
fn benchmarks_section(z: &Rom, s: &Rom, ram: &Ram, provenance: &str) -> String {
    format!(
        "{provenance}\n\n\
         | | Ferry, opt \"z\" | Ferry, opt \"s\" | emFTP (reference) |\n\
         |---|---:|---:|---:|\n\
         | ROM: .text + .rodata | {} | {} | 5.6 KB |\n\
         | ROM: of which in ferry_* functions | {} | {} | |\n\
         | RAM: 1 session ({} B transfer buffer) | {} | same | 2.5 KB |\n\
         | RAM: {} sessions | {} | same | {:.1} KB |\n\
         | RAM: each further session | {} | same | 1.8 KB |\n",
        kb(z.ferry()),
        kb(s.ferry()),
        kb(z.ferry_functions),
        kb(s.ferry_functions),
        ram.buffer,
        kb(ram.small),
        ram.large_sessions,
        kb(ram.large),
        2.5 + 1.8 * f64::from(ram.large_sessions.saturating_sub(1)),
        kb(ram.per_session()),
    )
}

/// The generated part of README.md's size section.
fn readme_section(z: &Rom, s: &Rom, ram: &Ram) -> String {
    format!(
        "| on a Cortex-M3 | Ferry | emFTP |\n\
         |---|---:|---:|\n\
         | ROM (opt \"z\" / \"s\") | {:.1} KB / {:.1} KB | 5.6 KB |\n\
         | RAM, one session | {:.1} KB | 2.5 KB |\n\
         | RAM, each further session | {:.1} KB | 1.8 KB |\n",
        f64::from(z.ferry()) / 1024.0,
        f64::from(s.ferry()) / 1024.0,
        f64::from(ram.small) / 1024.0,
        f64::from(ram.per_session()) / 1024.0,
    )
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn per_session_ram() {
        let ram = Ram {
            buffer: 1024,
            small_sessions: 1,
            small: 2000,
            large_sessions: 4,
            large: 3500,
        };
        assert_eq!(ram.per_session(), 500);
    }

    #[test]
    fn kilobytes() {
        assert_eq!(kb(5734), "5734 (5.6 KB)");
    }
}

//! What TLS adds on a Cortex-M4F: `crates/ferry-tls/probe/` (ferry-tls with
//! rustls 0.23 and the pure-Rust RustCrypto provider, over opaque stubs) is
//! built for `thumbv7em-none-eabihf` at opt-level "z" (LTO, one codegen
//! unit, panic = abort); its `.text` + `.rodata`, less the probe's own
//! harness (stubs, cortex-m-rt, the allocator), is TLS's ROM. RAM per TLS
//! connection comes from the probe's `FERRY_TLS_RAM` (`size_of` figures and
//! the buffer limits of `ferry_tls::footprint`), read out of the ELF file.
//!
//! A probe that does not build is reported with the reason, not as a
//! failure of `cargo xtask size`: the engine's figures stand on their own.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cmd::{self, header};
use crate::docs;
use crate::elf::{self, Elf};
use crate::Failure;

/// The target of the TLS probe: a Cortex-M4F, the smallest core the
/// boards that run TLS are expected to have.
pub const TLS_TARGET: &str = "thumbv7em-none-eabihf";

/// Crates of the probe's harness, not of TLS.
const HARNESS_CRATES: &[&str] = &[
    "ferry_tls_probe",
    "cortex_m_rt",
    "cortex_m",
    "embedded_alloc",
    "rlsf",
    "linked_list_allocator",
    "critical_section",
    "__rustc",
];

/// Unmangled symbols of the harness.
const HARNESS_SYMBOLS: &[&str] = &[
    "Reset",
    "main",
    "DefaultHandler",
    "DefaultHandler_",
    "DefaultPreInit",
    "HardFault",
    "HardFault_",
    "HardFaultTrampoline",
    "__pre_init",
    "FERRY_TLS_RAM",
    "_critical_section_1_0_acquire",
    "_critical_section_1_0_release",
    "__getrandom_custom",
];

/// Estimated heap rustls itself holds per connection beyond our buffers
/// (handshake state, keys, the transcript): a few KB; TOOLCHAIN notes a
/// measured peak of ~42 KB per connection on a Cortex-M3, most of it the
/// two record buffers.
const RUSTLS_HEAP_ESTIMATE: u32 = 4 * 1024;

/// The probe's figures.
struct Tls {
    image: u32,
    harness: u32,
    by_crate: BTreeMap<String, u32>,
    /// `FERRY_TLS_RAM`: stack, connection state, rustls connection,
    /// ServerConfig, incoming, outgoing, plaintext, incoming limit.
    ram: [u32; 8],
}

/// Builds the probe and prints what TLS costs; writes the figures into
/// docs/SECURITY.md. A failure to build is printed with its reason.
pub fn report(root: &Path, provenance: &str) {
    header(&format!("TLS probe (ferry-tls + rustls) for {TLS_TARGET}"));
    let measured = build(root).and_then(|elf| measure(&elf));
    match measured {
        Ok(tls) => {
            println!();
            print!("{}", terminal(&tls));
            match docs::update_section(
                &root.join("docs/SECURITY.md"),
                "tls-size",
                &doc(&tls, provenance),
            ) {
                Ok(()) => println!("\nwrote docs/SECURITY.md (TLS sizes)"),
                Err(Failure(e)) => println!("\nnote: {e}"),
            }
        }
        Err(Failure(why)) => {
            println!("\nTLS: the probe did not build for {TLS_TARGET}, so no TLS figures: {why}")
        }
    }
}

/// Builds `crates/ferry-tls/probe` at opt-level "z" (also a check that
/// ferry-tls builds `no_std` for a Cortex-M4F); the ELF file's path.
pub fn build(root: &Path) -> Result<PathBuf, Failure> {
    if let Some(missing) = cmd::debian_toolchain_missing() {
        return Err(Failure(format!("missing {missing}; run cargo xtask setup")));
    }
    let target_dir = root.join("target/tls-probe/opt-z");
    let mut cargo = cmd::debian_cargo();
    cargo
        .current_dir(root.join("crates/ferry-tls/probe"))
        .args([
            "build",
            "--release",
            "--target",
            TLS_TARGET,
            "-Zbuild-std=core,alloc",
            "--config",
            "profile.release.opt-level=\"z\"",
            "--config",
            &format!("target.{TLS_TARGET}.linker=\"ld.lld\""),
            "--target-dir",
        ])
        .arg(&target_dir);
    cmd::run(&mut cargo)?;
    Ok(target_dir.join(TLS_TARGET).join("release/ferry-tls-probe"))
}

/// Reads the figures out of the probe's ELF file.
fn measure(path: &Path) -> Result<Tls, Failure> {
    let data =
        std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let image = Elf::parse(data).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    let rom_sections: Vec<usize> = [".text", ".rodata"]
        .iter()
        .filter_map(|name| image.section_index(name))
        .collect();
    let mut tls = Tls {
        image: image.section_size(".text") + image.section_size(".rodata"),
        harness: 0,
        by_crate: BTreeMap::new(),
        ram: [0; 8],
    };
    for symbol in &image.symbols {
        if symbol.size == 0 || !rom_sections.contains(&(symbol.section as usize)) {
            continue;
        }
        let owner = elf::symbol_crate(&symbol.name);
        let harness = match owner.as_deref() {
            Some(krate) => HARNESS_CRATES.contains(&krate),
            None => HARNESS_SYMBOLS.contains(&symbol.name.as_str()),
        };
        if harness {
            tls.harness += symbol.size;
        } else {
            *tls.by_crate
                .entry(owner.unwrap_or_else(|| "-".into()))
                .or_default() += symbol.size;
        }
    }
    let bytes = image.symbol_bytes("FERRY_TLS_RAM")?;
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    tls.ram = words
        .try_into()
        .map_err(|_| Failure("FERRY_TLS_RAM holds the wrong number of words".into()))?;
    Ok(tls)
}

impl Tls {
    /// TLS's ROM: the image less the harness.
    fn rom(&self) -> u32 {
        self.image.saturating_sub(self.harness)
    }

    /// Fixed RAM per TLS connection: this layer's state and rustls'
    /// connection (its `ServerConfig`s are per control connection, counted
    /// apart).
    fn fixed(&self) -> u32 {
        self.ram[1] + self.ram[2]
    }

    /// What its buffers hold at once at their usual peak (one record each).
    fn buffers(&self) -> u32 {
        self.ram[4] + self.ram[5] + self.ram[6]
    }

    /// Crates by ROM, largest first, grouped past the first few.
    fn top_crates(&self, shown: usize) -> Vec<(String, u32)> {
        let mut crates: Vec<(String, u32)> =
            self.by_crate.iter().map(|(k, v)| (k.clone(), *v)).collect();
        crates.sort_by_key(|c| std::cmp::Reverse(c.1));
        let rest: u32 = crates.iter().skip(shown).map(|(_, n)| n).sum();
        crates.truncate(shown);
        crates.push(("(other crates, and bytes of no symbol)".into(), rest));
        crates
    }
}

fn kb(bytes: u32) -> String {
    format!("{bytes} ({:.1} KB)", f64::from(bytes) / 1024.0)
}

/// The report on the terminal.
fn terminal(tls: &Tls) -> String {
    let mut out = format!(
        "TLS on {TLS_TARGET} (Cortex-M4F), opt \"z\": ferry-tls + rustls 0.23 + rustls-rustcrypto \
         (TLS 1.2 and 1.3, every suite and key type of the provider)\n"
    );
    out += &format!(
        "  ROM (.text + .rodata, less the probe's harness) {:>20}\n",
        kb(tls.rom())
    );
    let own = tls.by_crate.get("ferry_tls").copied().unwrap_or(0);
    out += &format!("    of which ferry_tls itself {:>41}\n", kb(own));
    for (krate, bytes) in tls.top_crates(12) {
        out += &format!("    {krate:<46} {:>20}\n", kb(bytes));
    }
    out += "  RAM per TLS connection (control or data):\n";
    out += &format!(
        "    fixed: ferry-tls state {} + rustls connection {} {:>12}\n",
        tls.ram[1],
        tls.ram[2],
        kb(tls.fixed())
    );
    out += &format!(
        "    heap buffers, usual peak: incoming {} + outgoing ~{} + plaintext {} {:>10}\n",
        tls.ram[4],
        tls.ram[5],
        tls.ram[6],
        kb(tls.buffers())
    );
    out += &format!(
        "      (incoming reaches {} only for a handshake message split over records)\n",
        tls.ram[7]
    );
    out += &format!(
        "    rustls' own heap (handshake state, keys; estimate) {:>16}\n",
        kb(RUSTLS_HEAP_ESTIMATE)
    );
    out += &format!(
        "  per control connection: two rustls ServerConfig ({} each) and its session cache\n",
        tls.ram[3]
    );
    out += &format!("  TlsStack itself: {} bytes\n", tls.ram[0]);
    out
}

/// The generated part of docs/SECURITY.md's size section.
fn doc(tls: &Tls, provenance: &str) -> String {
    let mut out = format!(
        "{provenance}\n\n\
         | TLS on a Cortex-M4F (`{TLS_TARGET}`, opt \"z\") | bytes |\n\
         |---|---:|\n\
         | ROM: ferry-tls + rustls + rustls-rustcrypto | {} |\n\
         | ROM: of which ferry-tls itself | {} |\n",
        kb(tls.rom()),
        kb(tls.by_crate.get("ferry_tls").copied().unwrap_or(0))
    );
    for (krate, bytes) in tls.top_crates(6) {
        out += &format!("| ROM: of which {krate} | {} |\n", kb(bytes));
    }
    out += &format!(
        "| RAM per connection, fixed (ferry-tls state + rustls connection) | {} |\n\
         | RAM per connection, heap buffers at their usual peak (in + out + plaintext) | {} |\n\
         | RAM per connection, rustls' own heap (estimate) | {} |\n\
         | RAM per control connection: two `ServerConfig`s | {} |\n",
        kb(tls.fixed()),
        kb(tls.buffers()),
        kb(RUSTLS_HEAP_ESTIMATE),
        kb(2 * tls.ram[3]),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Tls {
        let mut by_crate = BTreeMap::new();
        by_crate.insert("rustls".to_string(), 200_000);
        by_crate.insert("p256".to_string(), 30_000);
        by_crate.insert("-".to_string(), 5_000);
        Tls {
            image: 240_000,
            harness: 5_000,
            by_crate,
            ram: [100, 400, 300, 500, 18_437, 16_640, 16_384, 36_874],
        }
    }

    #[test]
    fn figures_add_up() {
        let tls = figures();
        assert_eq!(tls.rom(), 235_000);
        assert_eq!(tls.fixed(), 700);
        assert_eq!(tls.buffers(), 18_437 + 16_640 + 16_384);
        let top = tls.top_crates(1);
        assert_eq!(top[0], ("rustls".to_string(), 200_000));
        assert_eq!(top[1].1, 35_000);
    }

    #[test]
    fn reports_name_rom_and_ram() {
        let tls = figures();
        let term = terminal(&tls);
        assert!(term.contains("235000 (229.5 KB)"), "{term}");
        let doc = doc(&tls, "Measured.");
        assert!(
            doc.starts_with("Measured.\n\n| TLS on a Cortex-M4F"),
            "{doc}"
        );
        assert!(doc.contains("| RAM per control connection: two `ServerConfig`s | 1000 (1.0 KB) |"));
    }
}

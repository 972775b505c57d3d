//! What TLS adds on a Cortex-M4F: `crates/ferry-tls/probe/` (ferry-tls's
//! device configuration: rustls 0.23, TLS 1.3, the small `device` provider,
//! a P-256 key given as its scalar) is built for `thumbv7em-none-eabihf` at
//! opt-level "z" (LTO, one codegen unit, panic = abort).
//!
//! - ROM: the `ferry-tls-probe` image drives the `TlsStack` over opaque
//!   stubs; its `.text` + `.rodata`, less the probe's own harness (stubs,
//!   cortex-m-rt, the allocator), is TLS's ROM.
//! - RAM per TLS connection: the `tls_ram` image runs in QEMU (mps2-an386,
//!   a Cortex-M4): a rustls client in the same image uploads and downloads
//!   64 KiB over in-memory pipes, twice, and the image reports the most
//!   heap the server side held for one connection (and that nothing
//!   leaked). `size_of` figures come from the first image's
//!   `FERRY_TLS_RAM`.
//! - Budget: `[tls.z]` in `size-budget.toml` (`rom`, `ram_per_connection`
//!   and their goals); summary.json gets one object `{"profile": "tls",
//!   "opt": "z", "rom": .., "ram_per_connection": ..}`.
//!
//! `cargo xtask size` reports a probe that does not build with the reason
//! (the engine's figures stand on their own); `cargo xtask test` fails on
//! it ([`check`]).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::budget::{self, Budget};
use super::json::Json;
use super::{BUDGET_FILE, SUMMARY_FILE};
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

/// QEMU's machine and CPU for the RAM run: the mps2-an385's memory map
/// with a Cortex-M4.
const QEMU_MACHINE: [&str; 4] = ["-M", "mps2-an386", "-cpu", "cortex-m4"];

/// How long the RAM run may take (it takes well under a second).
const RAM_RUN_TIMEOUT_SECS: &str = "120";

/// What the `tls_ram` image measured, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RamRun {
    /// The server's heap before a client connects.
    baseline: u32,
    /// The most heap one connection took (peak less baseline).
    per_connection: u32,
    /// What the stack keeps after a connection (its tables' room).
    retained: u32,
}

/// The probe's figures.
struct Tls {
    image: u32,
    harness: u32,
    by_crate: BTreeMap<String, u32>,
    /// `FERRY_TLS_RAM`: stack, connection state, rustls connection,
    /// ServerConfig, incoming, outgoing (unused, unused).
    ram: [u32; 8],
    run: RamRun,
}

/// Builds the probe, runs the RAM image and prints what TLS costs; writes
/// the figures into docs/SECURITY.md and summary.json, lowers the budget's
/// `[tls.z]` limits with `ratchet`, and fails when a figure exceeds its
/// limit. A probe that does not build is printed with its reason.
pub fn report(root: &Path, provenance: &str, ratchet: bool) -> Result<(), Failure> {
    header(&format!("TLS probe (ferry-tls + rustls) for {TLS_TARGET}"));
    match measure_all(root) {
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
            write_summary(root, &tls)?;
            if ratchet {
                ratchet_budget(root, &tls)?;
            }
            compare_budget(root, &tls)
        }
        Err(Failure(why)) => {
            println!("\nTLS: the probe did not build for {TLS_TARGET}, so no TLS figures: {why}");
            Ok(())
        }
    }
}

/// `cargo xtask test`'s step: builds and measures the probe (a failure to
/// build or run fails), writes summary.json and checks the budget.
pub fn check(root: &Path) -> Result<(), Failure> {
    let tls = measure_all(root)?;
    println!();
    print!("{}", terminal(&tls));
    write_summary(root, &tls)?;
    compare_budget(root, &tls)
}

/// Builds both images and measures them.
fn measure_all(root: &Path) -> Result<Tls, Failure> {
    let release = build(root)?;
    let mut tls = measure(&release.join("ferry-tls-probe"))?;
    tls.run = run_ram_image(&release.join("tls_ram"))?;
    Ok(tls)
}

/// The figures as the budget names them.
fn named(tls: &Tls) -> [(&'static str, &'static str, &'static str, u32); 2] {
    [
        ("tls", "z", budget::TLS_METRICS[0], tls.rom()),
        ("tls", "z", budget::TLS_METRICS[1], tls.run.per_connection),
    ]
}

/// Compares the figures with `[tls.z]` of the budget.
fn compare_budget(root: &Path, tls: &Tls) -> Result<(), Failure> {
    let path = root.join(BUDGET_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let budget = Budget::parse(&text).map_err(|e| Failure(format!("{BUDGET_FILE}: {e}")))?;
    let (report, over) = budget.compare_named(&named(tls));
    println!("\nTLS size budget ({BUDGET_FILE}), bytes:\n{report}");
    if over.is_empty() {
        return Ok(());
    }
    for line in &over {
        println!("OVER BUDGET: {line}");
    }
    Err(Failure(format!(
        "TLS: {} figure(s) over their limit in {BUDGET_FILE}",
        over.len()
    )))
}

/// Lowers `[tls.z]`'s limits to the figures measured.
fn ratchet_budget(root: &Path, tls: &Tls) -> Result<(), Failure> {
    let path = root.join(BUDGET_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let updated = budget::ratchet_named(&text, &named(tls));
    if updated != text {
        std::fs::write(&path, updated)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
        println!("ratchet: lowered the TLS limits in {BUDGET_FILE}");
    }
    Ok(())
}

/// Puts the TLS object into summary.json (replacing an older one; the
/// engine's objects stay).
fn write_summary(root: &Path, tls: &Tls) -> Result<(), Failure> {
    let path = root.join(SUMMARY_FILE);
    let old = std::fs::read_to_string(&path).ok();
    let text = merge_summary(old.as_deref(), tls.rom(), tls.run.per_connection)
        .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&path, text)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {SUMMARY_FILE} (TLS)");
    Ok(())
}

/// summary.json's text with the one TLS object.
fn merge_summary(old: Option<&str>, rom: u32, ram: u32) -> Result<String, String> {
    let mut items = match old.map(Json::parse).transpose()? {
        None => Vec::new(),
        Some(Json::Array(items)) => items,
        Some(_) => return Err("not a JSON array".into()),
    };
    items.retain(|item| item.get("profile").and_then(Json::as_str) != Some("tls"));
    items.push(Json::Object(vec![
        ("profile".to_string(), Json::String("tls".into())),
        ("opt".to_string(), Json::String("z".into())),
        ("rom".to_string(), Json::Number(rom.to_string())),
        (
            "ram_per_connection".to_string(),
            Json::Number(ram.to_string()),
        ),
    ]));
    Ok(Json::Array(items).render())
}

/// Runs the RAM image in QEMU; what it measured.
fn run_ram_image(elf: &Path) -> Result<RamRun, Failure> {
    let text = super::run_in_qemu(
        elf,
        &QEMU_MACHINE,
        RAM_RUN_TIMEOUT_SECS,
        "the TLS RAM image",
    )?;
    parse_ram_run(&text)
}

/// The figures of the image's `tls-ram: ...` line; a leak is a failure.
fn parse_ram_run(output: &str) -> Result<RamRun, Failure> {
    let line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("tls-ram:"))
        .ok_or_else(|| Failure("the TLS RAM image printed no `tls-ram:` line".into()))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let value = |key: &str| -> Result<u32, Failure> {
        words
            .windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].parse().ok())
            .ok_or_else(|| Failure(format!("`tls-ram:` line without `{key}`: {line}")))
    };
    if value("leak")? != 0 {
        return Err(Failure(format!("a TLS connection leaked heap: {line}")));
    }
    Ok(RamRun {
        baseline: value("baseline")?,
        per_connection: value("per-connection")?,
        retained: value("retained")?,
    })
}

/// Builds `crates/ferry-tls/probe` (both images) at opt-level "z" (also a
/// check that ferry-tls builds `no_std` for a Cortex-M4F); the directory
/// that holds the ELF files.
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
    Ok(target_dir.join(TLS_TARGET).join("release"))
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
        run: RamRun {
            baseline: 0,
            per_connection: 0,
            retained: 0,
        },
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
        "TLS on {TLS_TARGET} (Cortex-M4F), opt \"z\": ferry-tls + rustls 0.23, device \
         configuration (TLS 1.3, AES-128-GCM and ChaCha20-Poly1305, X25519 and P-256, an ECDSA \
         P-256 key)\n"
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
    out += &format!(
        "  RAM per TLS connection at its peak (heap, measured in QEMU) {:>10}\n",
        kb(tls.run.per_connection)
    );
    out += &format!(
        "    buffers in it: incoming {} (one record of the largest size), outgoing ~{} \
         (2 KB records)\n",
        tls.ram[4], tls.ram[5]
    );
    out += &format!(
        "    fixed state: ferry-tls {} + rustls connection {} (handshake only)\n",
        tls.ram[1], tls.ram[2]
    );
    out += &format!(
        "  kept by the stack after a connection (its tables, reused): {} bytes; \
         before any: {} bytes; TlsStack itself: {} bytes\n",
        tls.run.retained, tls.run.baseline, tls.ram[0]
    );
    out
}

/// The generated part of docs/SECURITY.md's size section.
fn doc(tls: &Tls, provenance: &str) -> String {
    let mut out = format!(
        "{provenance}\n\n\
         | TLS on a Cortex-M4F (`{TLS_TARGET}`, opt \"z\"), device configuration | bytes |\n\
         |---|---:|\n\
         | ROM: ferry-tls + rustls + crypto | {} |\n\
         | ROM: of which ferry-tls itself | {} |\n",
        kb(tls.rom()),
        kb(tls.by_crate.get("ferry_tls").copied().unwrap_or(0))
    );
    for (krate, bytes) in tls.top_crates(6) {
        out += &format!("| ROM: of which {krate} | {} |\n", kb(bytes));
    }
    out += &format!(
        "| RAM per connection at its peak (heap, measured in QEMU: handshake, 64 KiB each way) | {} |\n\
         | RAM: of which the incoming buffer (one record of the largest size) | {} |\n\
         | RAM: of which the outgoing buffer (one 2 KB record) | {} |\n\
         | RAM kept by the stack after a connection (its tables, reused) | {} |\n",
        kb(tls.run.per_connection),
        kb(tls.ram[4]),
        kb(tls.ram[5]),
        kb(tls.run.retained),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Tls {
        let mut by_crate = BTreeMap::new();
        by_crate.insert("rustls".to_string(), 100_000);
        by_crate.insert("p256".to_string(), 30_000);
        by_crate.insert("-".to_string(), 5_000);
        Tls {
            image: 140_000,
            harness: 5_000,
            by_crate,
            ram: [100, 400, 300, 500, 16_645, 2_070, 0, 0],
            run: RamRun {
                baseline: 456,
                per_connection: 21_000,
                retained: 560,
            },
        }
    }

    #[test]
    fn figures_add_up() {
        let tls = figures();
        assert_eq!(tls.rom(), 135_000);
        let top = tls.top_crates(1);
        assert_eq!(top[0], ("rustls".to_string(), 100_000));
        assert_eq!(top[1].1, 35_000);
    }

    #[test]
    fn reports_name_rom_and_ram() {
        let tls = figures();
        let term = terminal(&tls);
        assert!(term.contains("135000 (131.8 KB)"), "{term}");
        let doc = doc(&tls, "Measured.");
        assert!(
            doc.starts_with("Measured.\n\n| TLS on a Cortex-M4F"),
            "{doc}"
        );
        assert!(doc.contains("| 21000 (20.5 KB) |"), "{doc}");
    }

    #[test]
    fn the_ram_line_is_read_and_a_leak_fails() {
        let out =
            "boot\ntls-ram: baseline 456 peak 22338 per-connection 21882 retained 560 leak 0\n";
        assert_eq!(
            parse_ram_run(out).unwrap(),
            RamRun {
                baseline: 456,
                per_connection: 21_882,
                retained: 560
            }
        );
        let leak = out.replace("leak 0", "leak 8");
        assert!(parse_ram_run(&leak).is_err());
        assert!(parse_ram_run("nothing").is_err());
    }

    #[test]
    fn summary_gets_one_tls_object() {
        let old = r#"[{"profile": "tls", "opt": "z", "rom": 1}, {"profile": "emftp", "opt": "z", "rom": 9}]"#;
        let text = merge_summary(Some(old), 140_000, 21_000).unwrap();
        let Json::Array(items) = Json::parse(&text).unwrap() else {
            panic!("{text}")
        };
        let tls: Vec<&Json> = items
            .iter()
            .filter(|i| i.get("profile").and_then(Json::as_str) == Some("tls"))
            .collect();
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].get("opt").and_then(Json::as_str), Some("z"));
        assert!(text.contains("\"ram_per_connection\": 21000"), "{text}");
        assert!(text.contains("\"emftp\""));
    }
}

//! `cargo xtask size [--check] [--ratchet] [--features-cost]`: what
//! Ferry costs on a Cortex-M3, beside SEGGER emFTP's published figures.
//!
//! How it measures (see also `size-probe/src/main.rs` and
//! `size-probe/src/bin/stack/main.rs`):
//! - Builds: the engine in two protocol profiles, "emftp" (ferry-core with
//!   no optional feature: emFTP's command set) and "default" (every
//!   feature; the probe's `full` feature), each at opt-level "z" and "s"
//!   (LTO, one codegen unit, panic = abort) with Debian's toolchain, each in
//!   its own target directory under `target/size-probe/` so rebuilds are
//!   incremental.
//! - ROM: the image's `.text` + `.rodata`, less the symbols of the probe
//!   itself (its opaque stubs) and of cortex-m-rt, is Ferry's ROM: its own
//!   functions plus the library code they pull in (`memcpy`, 64-bit
//!   division, ...) and constants that carry no symbol (reply texts).
//! - RAM: the probe's `FERRY_RAM` static holds `size_of` of the server for 1
//!   and for 4 sessions, with a 512-byte transfer buffer, as laid out for
//!   this target; it is read out of the ELF file. That is the engine's whole
//!   state, the shared transfer buffer included; the stack and the TCP/IP
//!   stack's and file system's own state are not in it.
//! - Stack: the probe's `stack` image runs a scripted session through the
//!   real `Server::poll` in QEMU (mps2-an385) and reports the painted
//!   stack's high water; a session whose replies are wrong fails the run.
//! - Budget: `size-budget.toml` holds a limit and a goal per figure and
//!   build (see `size/budget.rs`); `--check` measures only the engine and
//!   fails on a figure over its limit (`cargo xtask test` runs it);
//!   `--ratchet` lowers the limits to the figures measured.
//! - Summary: `target/size/summary.json`, one object per engine build
//!   (`profile`, `opt`, `rom`, `ram_one_session`, `ram_each_further`,
//!   `stack`); objects of other profiles (e.g. "tls") are kept.
//! - Feature costs (`--features-cost`): the emftp profile plus one feature
//!   of ferry-core at opt "z", less the emftp profile: what each feature
//!   adds, in docs/BENCHMARKS.md.
//! - Storage adapters: the probe (default profile) is built again serving
//!   littlefs; the difference is what the adapter adds (see
//!   `size/storage.rs`).
//! - TLS: `crates/ferry-tls/probe` is built for a Cortex-M4F and measured
//!   apart, its RAM per connection in QEMU (see `size/tls.rs`); the figures
//!   go to docs/SECURITY.md, summary.json (profile "tls") and the budget's
//!   `[tls.z]`.
//! - Firmware: `boards/qemu-mps2-an385` and `boards/stm32f429zi` (with
//!   each of its stacks: on-chip Ethernet and smoltcp, or a W5500) are
//!   built at both opt-levels too, and measured whole (flash, static RAM,
//!   and the bytes of each crate; see `firmware.rs`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod budget;
mod json;
mod storage;

use crate::cmd::{self, find_program, header};
use crate::docs;
use crate::elf::{self, Elf};
use crate::firmware;
use crate::test::THUMB_TARGET;
use crate::Failure;
use budget::{Budget, Figures};
use json::Json;

pub mod tls;

/// The opt-levels measured.
const OPT_LEVELS: [&str; 2] = ["z", "s"];

/// SEGGER emFTP's published figures, the reference.
const EMFTP: &str = "emFTP (SEGGER), for reference: ROM 5.6 KB on a Cortex-M3; \
                     RAM 2.5 KB for one connection, +1.8 KB for each further one, \
                     task stacks included";

/// emFTP's ROM (5.6 KB), in bytes.
const EMFTP_ROM: u32 = 5734;
/// emFTP's RAM for one connection (2.5 KB), stack included.
const EMFTP_RAM_ONE: u32 = 2560;
/// emFTP's RAM for each further connection (1.8 KB), stack included.
const EMFTP_RAM_FURTHER: u32 = 1843;

/// The budget file, at the repository root.
pub const BUDGET_FILE: &str = "size-budget.toml";

/// Where the figures go for other tools.
pub(crate) const SUMMARY_FILE: &str = "target/size/summary.json";

/// ferry-core's optional features, each measured on top of the emftp
/// profile by `--features-cost`.
const FEATURES: [&str; 8] = [
    "ascii",
    "resume",
    "mtime",
    "status",
    "compat",
    "tls",
    "paths-256",
    "long-paths",
];

/// How long the stack probe may run in QEMU.
const STACK_PROBE_TIMEOUT_SECS: &str = "300";

/// A protocol profile of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// ferry-core with no optional feature: emFTP's command set.
    Emftp,
    /// ferry-core's default features: every command.
    Default,
}

/// The profiles measured, in the order of the table's columns.
const PROFILES: [Profile; 2] = [Profile::Emftp, Profile::Default];

impl Profile {
    /// The name in tables, target directories and summary.json.
    fn name(self) -> &'static str {
        match self {
            Profile::Emftp => "emftp",
            Profile::Default => "default",
        }
    }

    /// The probe's features that select it.
    fn features(self) -> &'static [&'static str] {
        match self {
            Profile::Emftp => &[],
            Profile::Default => &["full"],
        }
    }
}

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

/// Every figure of one engine build.
#[derive(Debug, Clone)]
struct Build {
    profile: Profile,
    opt: &'static str,
    rom: Rom,
    ram: Ram,
    /// The stack probe's high water, bytes.
    stack: u32,
}

impl Build {
    /// The figures the budget and summary.json hold.
    fn figures(&self) -> Figures {
        Figures {
            profile: self.profile.name(),
            opt: self.opt,
            values: [
                self.rom.ferry(),
                self.ram.small,
                self.ram.per_session(),
                self.stack,
            ],
        }
    }
}

/// The build of `profile` at `opt`.
fn find(builds: &[Build], profile: Profile, opt: &str) -> Result<Build, Failure> {
    builds
        .iter()
        .find(|b| b.profile == profile && b.opt == opt)
        .cloned()
        .ok_or_else(|| Failure(format!("no {} build at opt \"{opt}\"", profile.name())))
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

/// What `cargo xtask size --check` needs and is not there.
pub fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if let Some(toolchain) = cmd::debian_toolchain_missing() {
        missing.push(toolchain);
    }
    if find_program("ld.lld").is_none() {
        missing.push("ld.lld (Debian package lld)".to_string());
    }
    if find_program("qemu-system-arm").is_none() {
        missing.push("qemu-system-arm (Debian package qemu-system-arm)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The options of `cargo xtask size`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Measure the engine only and fail on a figure over its limit.
    pub check: bool,
    /// Lower the budget's limits to the figures measured.
    pub ratchet: bool,
    /// Measure what each feature of ferry-core costs.
    pub features_cost: bool,
    /// Only the TLS layer (`--tls`): measure it and check its budget.
    pub tls_only: bool,
    /// Only the firmware images (`--firmware`): measure them and update
    /// docs/BENCHMARKS.md's firmware section.
    pub firmware_only: bool,
}

impl Options {
    /// Reads the options; `None` for an unknown one.
    pub fn parse(args: &[&str]) -> Option<Options> {
        let mut options = Options::default();
        for arg in args {
            match *arg {
                "--check" => options.check = true,
                "--ratchet" => options.ratchet = true,
                "--features-cost" => options.features_cost = true,
                "--tls" => options.tls_only = true,
                "--firmware" => options.firmware_only = true,
                _ => return None,
            }
        }
        Some(options)
    }
}

/// `cargo xtask size --check`: measures the engine builds and fails when a
/// figure exceeds its limit in the budget.
pub fn check(root: &Path) -> Result<(), Failure> {
    let builds = measure_engine(root)?;
    println!();
    print!("{}", table(&builds)?);
    write_summary(root, &builds)?;
    compare_budget(root, &builds)
}

/// Runs the chore.
pub fn run(options: Options) -> Result<(), Failure> {
    if let Some(missing) = missing() {
        return Err(Failure(format!("missing {missing}; run cargo xtask setup")));
    }
    let root = cmd::root();
    if options.tls_only {
        return tls::check(&root);
    }
    if options.firmware_only {
        return firmware_sizes(&root, &firmware_provenance(&root, &toolchain()));
    }
    if options.check && !options.ratchet && !options.features_cost {
        return check(&root);
    }
    let builds = measure_engine(&root)?;
    let z = find(&builds, Profile::Default, "z")?;
    let s = find(&builds, Profile::Default, "s")?;
    let adapters = storage::measure(&root, &z.rom, &s.rom)?;
    let features = if options.features_cost {
        Some(feature_costs(&root, &builds)?)
    } else {
        None
    };

    let toolchain = toolchain();
    for profile in PROFILES {
        let z = find(&builds, profile, "z")?;
        let s = find(&builds, profile, "s")?;
        println!("\n== {} profile ==", profile.name());
        print!("{}", report(&z.rom, &s.rom, &z.ram, &toolchain));
    }
    print!("{}", storage::report(&adapters));
    println!();
    print!("{}", table(&builds)?);
    if let Some(features) = &features {
        print!("{}", features_report(features));
    }
    write_summary(&root, &builds)?;
    if options.ratchet {
        ratchet_budget(&root, &builds)?;
    }
    let over_budget = compare_budget(&root, &builds).err();

    if z.rom.ferry_functions < EMPTY_ENGINE_BYTES {
        println!(
            "\nWARNING: ferry_* functions take only {} bytes: the engine is not written yet \
             (todo!() bodies), so these figures mean nothing. docs/BENCHMARKS.md and \
             README.md were left unchanged.",
            z.rom.ferry_functions
        );
        return Ok(());
    }
    let commit = commit(&root);
    let provenance = format!(
        "Measured by `cargo xtask size` on {} (commit {commit}, {toolchain} from Debian), \
         for {THUMB_TARGET} (Cortex-M3).",
        today()
    );
    docs::update_section(
        &root.join("docs/BENCHMARKS.md"),
        "size",
        &benchmarks_section(&builds, &provenance)?,
    )?;
    docs::update_section(&root.join("README.md"), "size", &readme_section(&builds)?)?;
    docs::update_section(
        &root.join("docs/BENCHMARKS.md"),
        "storage-size",
        &storage::benchmarks_section(&adapters, &provenance),
    )?;
    if let Some(features) = &features {
        docs::update_section(
            &root.join("docs/BENCHMARKS.md"),
            "size-features",
            &features_section(features, &provenance),
        )?;
    }
    println!("\nwrote docs/BENCHMARKS.md and README.md");
    let tls_over = tls::report(
        &root,
        &format!(
            "Measured by `cargo xtask size` on {} (commit {commit}, {toolchain} from Debian).",
            today()
        ),
        options.ratchet,
    )
    .err();

    firmware_sizes(&root, &firmware_provenance(&root, &toolchain))?;
    match over_budget.or(tls_over) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Builds and measures the engine in both profiles at both opt-levels:
/// ROM and RAM from the size probe, stack from the stack probe in QEMU.
fn measure_engine(root: &Path) -> Result<Vec<Build>, Failure> {
    if let Some(missing) = missing() {
        return Err(Failure(format!("missing {missing}; run cargo xtask setup")));
    }
    let mut builds: Vec<Build> = Vec::new();
    for profile in PROFILES {
        for opt in OPT_LEVELS {
            header(&format!(
                "size-probe, {} profile, for {THUMB_TARGET}, opt-level \"{opt}\"",
                profile.name()
            ));
            let dir = format!("{}-opt-{opt}", profile.name());
            let release = build_probe_with(
                root,
                opt,
                profile.features(),
                &dir,
                None,
                &["size-probe", "stack"],
            )?;
            let image = read_elf(&release.join("size-probe"))?;
            if image.section_size(".data") != 0 {
                println!(
                    "note: .data holds {} bytes (initialised statics: flash and RAM)",
                    image.section_size(".data")
                );
            }
            let ram = read_ram(&image)?;
            if builds.iter().any(|b| b.profile == profile && b.ram != ram) {
                return Err(Failure("RAM sizes differ between opt-levels".into()));
            }
            let stack = run_stack_probe(&release.join("stack"))?;
            builds.push(Build {
                profile,
                opt,
                rom: rom(&image),
                ram,
                stack,
            });
        }
    }
    Ok(builds)
}

/// Reads an ELF file.
fn read_elf(path: &Path) -> Result<Elf, Failure> {
    let data =
        std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    Elf::parse(data).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Runs the stack probe in QEMU; the high water it reports.
fn run_stack_probe(elf: &Path) -> Result<u32, Failure> {
    let text = run_in_qemu(
        elf,
        &["-cpu", "cortex-m3", "-M", "mps2-an385"],
        STACK_PROBE_TIMEOUT_SECS,
        "the stack probe",
    )?;
    parse_high_water(&text)
        .ok_or_else(|| Failure("the stack probe printed no `stack-high-water: N` line".to_string()))
}

/// Runs a semihosting image in QEMU on `machine` (its `-M`/`-cpu`
/// arguments) within `timeout_secs`; what it printed. A non-zero exit
/// fails, naming `what`.
pub(crate) fn run_in_qemu(
    elf: &Path,
    machine: &[&str],
    timeout_secs: &str,
    what: &str,
) -> Result<String, Failure> {
    let mut qemu = Command::new("timeout");
    qemu.args([timeout_secs, "qemu-system-arm"])
        .args(machine)
        .args([
            "-nographic",
            "-monitor",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(elf)
        .stdin(Stdio::null());
    println!("$ {}", cmd::show(&qemu));
    let out = qemu
        .output()
        .map_err(|e| Failure(format!("cannot start qemu-system-arm: {e}")))?;
    // QEMU writes the semihosting console to its standard error.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{text}");
    if !out.status.success() {
        return Err(Failure(format!(
            "{what} failed ({}): see its output above",
            out.status
        )));
    }
    Ok(text)
}

/// The figure of the probe's `stack-high-water: N` line.
fn parse_high_water(output: &str) -> Option<u32> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("stack-high-water:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Compares the builds with `size-budget.toml`; fails on a figure over its
/// limit.
fn compare_budget(root: &Path, builds: &[Build]) -> Result<(), Failure> {
    let path = root.join(BUDGET_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let budget = Budget::parse(&text).map_err(|e| Failure(format!("{BUDGET_FILE}: {e}")))?;
    let figures: Vec<Figures> = builds.iter().map(Build::figures).collect();
    let (report, over) = budget.compare(&figures);
    println!("\nSize budget ({BUDGET_FILE}), bytes:\n{report}");
    if over.is_empty() {
        println!("size budget: every figure within its limit");
        return Ok(());
    }
    for line in &over {
        println!("OVER BUDGET: {line}");
    }
    Err(Failure(format!(
        "{} figure(s) over their limit in {BUDGET_FILE} (shrink the engine, or raise the \
         limit there deliberately)",
        over.len()
    )))
}

/// Lowers the budget's limits to the figures measured.
fn ratchet_budget(root: &Path, builds: &[Build]) -> Result<(), Failure> {
    let path = root.join(BUDGET_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let figures: Vec<Figures> = builds.iter().map(Build::figures).collect();
    let updated = budget::ratchet(&text, &figures);
    if updated != text {
        std::fs::write(&path, updated)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
        println!("\nratchet: lowered limits in {BUDGET_FILE}");
    } else {
        println!("\nratchet: no limit in {BUDGET_FILE} above its figure");
    }
    Ok(())
}

/// Writes `target/size/summary.json`: the objects of other profiles stay,
/// those of the profiles measured here are replaced.
fn write_summary(root: &Path, builds: &[Build]) -> Result<(), Failure> {
    let path = root.join(SUMMARY_FILE);
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure(format!("cannot read {}: {e}", path.display()))),
    };
    let updated = merge_summary(old.as_deref(), builds)
        .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&path, updated)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {SUMMARY_FILE}");
    Ok(())
}

/// summary.json's new text, from its old text (if any) and the builds.
fn merge_summary(old: Option<&str>, builds: &[Build]) -> Result<String, String> {
    let mut items = match old.map(Json::parse).transpose()? {
        None => Vec::new(),
        Some(Json::Array(items)) => items,
        Some(_) => return Err("not a JSON array".into()),
    };
    let ours = |item: &Json| {
        item.get("profile")
            .and_then(Json::as_str)
            .is_some_and(|p| PROFILES.iter().any(|ours| ours.name() == p))
    };
    items.retain(|item| !ours(item));
    for build in builds {
        let figures = build.figures();
        let mut fields = vec![
            ("profile".to_string(), Json::String(figures.profile.into())),
            ("opt".to_string(), Json::String(figures.opt.into())),
        ];
        for (key, value) in budget::METRICS.iter().zip(figures.values) {
            fields.push((key.to_string(), Json::Number(value.to_string())));
        }
        items.push(Json::Object(fields));
    }
    Ok(Json::Array(items).render())
}

/// What each feature adds to the emftp profile at opt "z": `(feature,
/// ROM added, RAM added to one session)`, or why it was not measured.
type FeatureCosts = Vec<(&'static str, Result<(i64, i64), String>)>;

/// Builds the emftp profile plus each feature at opt "z".
fn feature_costs(root: &Path, builds: &[Build]) -> Result<FeatureCosts, Failure> {
    let base = find(builds, Profile::Emftp, "z")?;
    let mut costs = Vec::new();
    for feature in FEATURES {
        header(&format!(
            "size-probe, emftp profile + {feature}, opt-level \"z\""
        ));
        let with = format!("ferry-core/{feature}");
        let built = build_probe_with(root, "z", &[&with], "features-opt-z", None, &["size-probe"])
            .and_then(|release| read_elf(&release.join("size-probe")))
            .and_then(|image| Ok((rom(&image), read_ram(&image)?)));
        costs.push((
            feature,
            match built {
                Ok((rom, ram)) => Ok((
                    i64::from(rom.ferry()) - i64::from(base.rom.ferry()),
                    i64::from(ram.small) - i64::from(base.ram.small),
                )),
                Err(Failure(why)) => {
                    println!("{feature}: not measured ({why})");
                    Err("the build failed; see its output above".to_string())
                }
            },
        ));
    }
    Ok(costs)
}

/// The feature costs on the terminal.
fn features_report(costs: &FeatureCosts) -> String {
    let mut out = String::from(
        "\nWhat each feature of ferry-core adds to the emftp profile (opt \"z\"), bytes:\n",
    );
    out += &format!(
        "  {:<14} {:>10} {:>22}\n",
        "feature", "ROM", "RAM, one session"
    );
    for (feature, cost) in costs {
        out += &match cost {
            Ok((rom, ram)) => format!("  {feature:<14} {rom:>+10} {ram:>+22}\n"),
            Err(why) => format!("  {feature:<14} not measured: {why}\n"),
        };
    }
    out
}

/// The generated part of docs/BENCHMARKS.md's feature section.
fn features_section(costs: &FeatureCosts, provenance: &str) -> String {
    let mut out = format!(
        "{provenance} Each row: the emftp profile plus that one feature of ferry-core, \
         less the emftp profile, at opt-level \"z\" (`cargo xtask size --features-cost`).\n\n\
         | feature | ROM added, bytes | RAM added, one session, bytes |\n|---|---:|---:|\n"
    );
    for (feature, cost) in costs {
        out += &match cost {
            Ok((rom, ram)) => format!("| `{feature}` | {rom:+} | {ram:+} |\n"),
            Err(_) => format!("| `{feature}` | not measured (build failed) | |\n"),
        };
    }
    out
}

/// Debian's rustc and its version (`rustc 1.96.0`).
fn toolchain() -> String {
    cmd::output(Command::new(cmd::DEBIAN_RUSTC).arg("--version"))
        .map(|v| v.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "rustc".into())
}

/// The commit measured, and whether the work tree had changes.
fn commit(root: &Path) -> String {
    let commit =
        cmd::output(
            Command::new("git")
                .current_dir(root)
                .args(["rev-parse", "--short", "HEAD"]),
        )
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .current_dir(root)
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|status| status.code() == Some(1));
    if dirty {
        format!("{commit} with uncommitted changes")
    } else {
        commit
    }
}

/// The first line of docs/BENCHMARKS.md's firmware section.
fn firmware_provenance(root: &Path, toolchain: &str) -> String {
    format!(
        "Measured by `cargo xtask size` on {} (commit {}, {toolchain} from Debian): \
         release builds, LTO, one codegen unit, `panic = \"abort\"`, default features \
         (the NUCLEO-F429ZI + W5500 row: `stack-w5500,storage-flash`).",
        today(),
        commit(root)
    )
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

/// Builds the probe's `bins` at `opt` with `features`, in
/// `target/size-probe/<dir>`, with an environment variable its build
/// needs; the directory that holds the ELF images.
fn build_probe_with(
    root: &Path,
    opt: &str,
    features: &[&str],
    dir: &str,
    env: Option<(String, String)>,
    bins: &[&str],
) -> Result<PathBuf, Failure> {
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
    for bin in bins {
        cargo.args(["--bin", bin]);
    }
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    if let Some((key, value)) = env {
        cargo.env(key, value);
    }
    cmd::run(&mut cargo)?;
    Ok(target_dir.join(THUMB_TARGET).join("release"))
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

/// `bytes` in KB with one decimal, e.g. `5.6 KB`.
fn kb1(bytes: u32) -> String {
    format!("{:.1} KB", f64::from(bytes) / 1024.0)
}

/// The rows of the comparison table: label, emFTP, Ferry emftp profile,
/// Ferry default; `fmt` formats a figure.
fn table_rows(builds: &[Build], fmt: &dyn Fn(u32) -> String) -> Result<Vec<[String; 4]>, Failure> {
    let [emftp_z, emftp_s, default_z, default_s] = [
        find(builds, Profile::Emftp, "z")?,
        find(builds, Profile::Emftp, "s")?,
        find(builds, Profile::Default, "z")?,
        find(builds, Profile::Default, "s")?,
    ];
    // Both opt-levels in one cell: plain bytes, or KB where `fmt` is short.
    let short = fmt(1024).len() < 8;
    let stack = |z: &Build, s: &Build| {
        if short {
            format!("{} / {}", kb1(z.stack), kb1(s.stack))
        } else {
            format!("{} / {}", z.stack, s.stack)
        }
    };
    Ok(vec![
        [
            "ROM, opt \"z\"".into(),
            fmt(EMFTP_ROM),
            fmt(emftp_z.rom.ferry()),
            fmt(default_z.rom.ferry()),
        ],
        [
            "ROM, opt \"s\"".into(),
            "".into(),
            fmt(emftp_s.rom.ferry()),
            fmt(default_s.rom.ferry()),
        ],
        [
            format!("RAM, one session ({} B buffer)", emftp_z.ram.buffer),
            fmt(EMFTP_RAM_ONE),
            fmt(emftp_z.ram.small),
            fmt(default_z.ram.small),
        ],
        [
            "RAM, each further session".into(),
            fmt(EMFTP_RAM_FURTHER),
            fmt(emftp_z.ram.per_session()),
            fmt(default_z.ram.per_session()),
        ],
        [
            "stack while serving, opt \"z\" / \"s\"".into(),
            "in the RAM figures".into(),
            stack(&emftp_z, &emftp_s),
            stack(&default_z, &default_s),
        ],
    ])
}

/// The comparison table on the terminal.
fn table(builds: &[Build]) -> Result<String, Failure> {
    let mut out = format!(
        "Ferry beside emFTP on {THUMB_TARGET} (Cortex-M3), bytes (KB = 1024 bytes)\n\
         {:<36} {:>18} {:>22} {:>22}\n",
        "", "emFTP", "Ferry emftp profile", "Ferry default"
    );
    for [label, emftp, ours, default] in table_rows(builds, &kb)? {
        out += &format!("{label:<36} {emftp:>18} {ours:>22} {default:>22}\n");
    }
    out += &format!("\n{EMFTP}.\n");
    out += "Ferry's RAM is the server's state (size_of Server); its stack is the row below, \
            measured in QEMU; the TCP/IP stack's and file system's own state are not counted.\n";
    Ok(out)
}

/// The generated part of docs/BENCHMARKS.md's size section.
fn benchmarks_section(builds: &[Build], provenance: &str) -> Result<String, Failure> {
    let mut out = format!(
        "{provenance}\n\n\
         | | emFTP (reference) | Ferry, emftp profile | Ferry, default |\n\
         |---|---:|---:|---:|\n"
    );
    for [label, emftp, ours, default] in table_rows(builds, &kb)? {
        out += &format!("| {label} | {emftp} | {ours} | {default} |\n");
    }
    out += "\n| build | ROM in ferry_* functions | whole probe image | RAM, 4 sessions |\n\
            |---|---:|---:|---:|\n";
    for build in builds {
        out += &format!(
            "| {} profile, opt \"{}\" | {} | {} | {} |\n",
            build.profile.name(),
            build.opt,
            kb(build.rom.ferry_functions),
            kb(build.rom.image),
            kb(build.ram.large),
        );
    }
    Ok(out)
}

/// The generated part of README.md's size section.
fn readme_section(builds: &[Build]) -> Result<String, Failure> {
    let mut out = String::from(
        "| on a Cortex-M3 | emFTP | Ferry, emftp profile | Ferry, default |\n\
         |---|---:|---:|---:|\n",
    );
    for [label, emftp, ours, default] in table_rows(builds, &kb1)? {
        out += &format!("| {label} | {emftp} | {ours} | {default} |\n");
    }
    Ok(out)
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
    fn high_water_line() {
        let out = "stack probe: 87 steps passed\nstack-high-water: 1234\n";
        assert_eq!(parse_high_water(out), Some(1234));
        assert_eq!(parse_high_water("stack probe: FAILED"), None);
    }

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]), Some(Options::default()));
        let all = Options::parse(&["--check", "--ratchet", "--features-cost"]).unwrap();
        assert!(all.check && all.ratchet && all.features_cost);
        assert!(!all.firmware_only);
        let firmware = Options::parse(&["--firmware"]).unwrap();
        assert!(firmware.firmware_only && !firmware.check);
        assert_eq!(Options::parse(&["--bogus"]), None);
    }

    fn build(profile: Profile, opt: &'static str, rom: u32) -> Build {
        Build {
            profile,
            opt,
            rom: Rom {
                image: rom,
                ..Rom::default()
            },
            ram: Ram {
                buffer: 512,
                small_sessions: 1,
                small: 2000,
                large_sessions: 4,
                large: 5000,
            },
            stack: 1500,
        }
    }

    #[test]
    fn summary_keeps_other_profiles() {
        let old = r#"[{"profile": "tls", "opt": "z", "rom": 1}, {"profile": "emftp", "opt": "z", "rom": 9}]"#;
        let builds = [
            build(Profile::Emftp, "z", 5000),
            build(Profile::Default, "s", 9000),
        ];
        let text = merge_summary(Some(old), &builds).unwrap();
        let Json::Array(items) = Json::parse(&text).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].get("profile").and_then(Json::as_str), Some("tls"));
        assert_eq!(
            items[1].render().trim(),
            r#"{"profile": "emftp", "opt": "z", "rom": 5000, "ram_one_session": 2000, "ram_each_further": 1000, "stack": 1500}"#
        );
        assert!(merge_summary(None, &builds).is_ok());
        assert!(merge_summary(Some("{}"), &builds).is_err());
    }

    #[test]
    fn kilobytes() {
        assert_eq!(kb(5734), "5734 (5.6 KB)");
    }
}

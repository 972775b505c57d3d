//! Firmware packages (`boards/qemu-mps2-an385`, `boards/stm32f429zi` with
//! either of its stacks, `boards/rp2040-w5500`, `boards/esp32c3`):
//! building them with Debian's toolchain, and measuring their images for
//! `cargo xtask size`.
//!
//! Each package lies outside the host workspace with its own
//! `.cargo/config.toml` (target, linker, `build-std`) and `Cargo.lock`, so
//! cargo runs in the package's directory. Builds go to `target/firmware/`
//! in the repository (`target/firmware/opt-z/` etc. for `cargo xtask
//! size`), apart from the host build's cache.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cmd::{self, find_program};
use crate::elf::{self, Elf};
use crate::Failure;

/// A firmware package.
#[derive(Debug, Clone, Copy)]
pub struct Firmware {
    /// What the reports call it.
    pub title: &'static str,
    /// Its directory, from the repository root.
    pub dir: &'static str,
    /// Its target triple (also set in its `.cargo/config.toml`).
    pub target: &'static str,
    /// The binary's name.
    pub bin: &'static str,
    /// The cargo features `cargo xtask size` builds it with (`None`: its
    /// default features).
    pub features: Option<&'static str>,
    /// Environment variables every build of it needs (build-time
    /// configuration without a default, given dummy values here).
    pub env: &'static [(&'static str, &'static str)],
}

/// The Cortex-M3 firmware that `cargo xtask qemu` boots.
pub const QEMU_MPS2_AN385: Firmware = Firmware {
    title: "QEMU mps2-an385 (Cortex-M3)",
    dir: "boards/qemu-mps2-an385",
    target: "thumbv7m-none-eabi",
    bin: "ferry-qemu-mps2-an385",
    features: None,
    env: &[],
};

/// The engine's protocol profiles the QEMU firmware is built and tested in
/// (ferry-core's features; the board's feature `full` turns the default
/// ones on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// ferry-core's default features: every command it has.
    Default,
    /// ferry-core without optional features: SEGGER emFTP's command set,
    /// 502 to every other command.
    Emftp,
    /// The default profile serving FTPS too (the board's `tls` feature,
    /// with its test-only RNG: QEMU has none); built and tested apart.
    Tls,
}

impl Profile {
    /// Every profile, in the order CI builds and tests them.
    pub const ALL: [Profile; 3] = [Profile::Default, Profile::Emftp, Profile::Tls];

    /// The name xtask prints and takes (`--profile NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Emftp => "emftp",
            Profile::Tls => "tls",
        }
    }

    /// The profile called `name`.
    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The QEMU board's features for this profile (`None`: its defaults;
    /// `Some("")`: none).
    fn qemu_features(self) -> Option<&'static str> {
        match self {
            Profile::Default => None,
            Profile::Emftp => Some(""),
            Profile::Tls => Some("tls,insecure-test-rng"),
        }
    }
}

/// The most stack the QEMU firmware may use while serving, in bytes, in
/// either profile: `tests/qemu` reads the firmware's own measurement
/// (`serving stack high water N bytes`) and fails above it, and fails when
/// start-up (`start-up used N bytes of stack`) used more than serving.
/// The goal of issue 10 (from 15.3 KB). Kept here until the repository has
/// a budget file with a `[firmware]` table.
pub const QEMU_SERVING_STACK_LIMIT: u32 = 6144;

/// Builds the QEMU firmware in `profile`; the path of a copy of its ELF
/// image that the other profile's build leaves alone
/// (`target/firmware/qemu-PROFILE/`). Both profiles share one target
/// directory: only ferry-core and the board crate are built twice.
pub fn build_qemu(root: &Path, profile: Profile) -> Result<PathBuf, Failure> {
    let elf = build(root, &QEMU_MPS2_AN385, None, profile.qemu_features())?;
    let dir = root
        .join("target/firmware")
        .join(format!("qemu-{}", profile.name()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    let copy = dir.join(QEMU_MPS2_AN385.bin);
    std::fs::copy(&elf, &copy).map_err(|e| {
        Failure(format!(
            "cannot copy {} to {}: {e}",
            elf.display(),
            copy.display()
        ))
    })?;
    Ok(copy)
}

/// The real board: NUCLEO-F429ZI (Cortex-M4F), with its default features:
/// smoltcp on the on-chip Ethernet, littlefs on the internal flash.
pub const STM32F429ZI: Firmware = Firmware {
    title: "NUCLEO-F429ZI (Cortex-M4F)",
    dir: "boards/stm32f429zi",
    target: "thumbv7em-none-eabihf",
    bin: "ferry-stm32f429zi",
    features: None,
    env: &[],
};

/// The same board with a WIZnet W5500 on SPI (TCP/IP in the chip, none in
/// the MCU), littlefs on the internal flash.
pub const STM32F429ZI_W5500: Firmware = Firmware {
    title: "NUCLEO-F429ZI + W5500 (Cortex-M4F)",
    features: Some("stack-w5500,storage-flash"),
    ..STM32F429ZI
};

/// The WIZnet W5500-EVB-Pico (RP2040, Cortex-M0+, with a W5500 on SPI0):
/// TCP/IP in the chip, littlefs on the QSPI flash. One feature set, so
/// `cargo xtask test` builds it once.
pub const RP2040_W5500: Firmware = Firmware {
    title: "W5500-EVB-Pico (RP2040, Cortex-M0+)",
    dir: "boards/rp2040-w5500",
    target: "thumbv6m-none-eabi",
    bin: "ferry-rp2040-w5500",
    features: None,
    env: &[],
};

/// The ESP32-C3 over Wi-Fi (esp-hal, esp-radio, smoltcp, littlefs on a
/// flash partition). Its Wi-Fi and FTP credentials are build-time
/// environment variables with no default: CI and `cargo xtask size` give
/// it dummy ones (the image joins no network with them).
pub const ESP32C3: Firmware = Firmware {
    title: "ESP32-C3 over Wi-Fi (RISC-V)",
    dir: "boards/esp32c3",
    target: "riscv32imc-unknown-none-elf",
    bin: "ferry-esp32c3",
    features: None,
    env: &[
        ("FERRY_WIFI_SSID", "ferry-ci"),
        ("FERRY_WIFI_PASSWORD", "not-a-secret"),
        ("FERRY_PASSWORD", "not-a-secret"),
    ],
};

/// The STM32 board's feature sets (one stack, one storage), each built by
/// `cargo xtask test` with `--no-default-features`: every combination.
pub const STM32_FEATURE_SETS: &[&str] = &[
    "stack-eth,storage-flash",
    "stack-eth,storage-ram",
    "stack-w5500,storage-flash",
    "stack-w5500,storage-ram",
    // FAT on an SD card on SPI3 (embedded-sdmmc): once per stack, as the
    // card's pins are free with either.
    "stack-eth,storage-sd",
    "stack-w5500,storage-sd",
];

/// The STM32 board with FTPS (feature `ftps`: the chip's RNG, a heap in the
/// CCM), on each stack, built by `cargo xtask test` with the QEMU board's
/// public test certificate ([`test_certificate`]).
pub const STM32_FTPS_FEATURE_SETS: &[&str] = &[
    "stack-eth,storage-flash,ftps",
    "stack-w5500,storage-flash,ftps",
];

/// `FERRY_TLS_CERT` and `FERRY_TLS_KEY` for a test build: the QEMU board's
/// test pair, whose key is public (boards/qemu-mps2-an385/tls/README.md).
pub fn test_certificate(root: &Path) -> [(&'static str, PathBuf); 2] {
    let dir = root.join("boards/qemu-mps2-an385/tls");
    [
        ("FERRY_TLS_CERT", dir.join("cert.der")),
        ("FERRY_TLS_KEY", dir.join("key.scalar")),
    ]
}

/// What building firmware needs and is not there, if anything.
pub fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if let Some(toolchain) = cmd::debian_toolchain_missing() {
        missing.push(toolchain);
    }
    if find_program("ld.lld").is_none() {
        missing.push("ld.lld (Debian package lld)".to_string());
    }
    // littlefs2-sys compiles littlefs's C code and binds it with bindgen.
    if find_program("arm-none-eabi-gcc").is_none() {
        missing.push("arm-none-eabi-gcc (Debian package gcc-arm-none-eabi)".to_string());
    }
    if !Path::new("/usr/lib/arm-none-eabi/include/string.h").is_file() {
        missing.push("newlib's headers (Debian package libnewlib-arm-none-eabi)".to_string());
    }
    // The ESP32-C3's littlefs: clang compiles it for riscv32 with newlib's
    // target-neutral headers (boards/esp32c3/.cargo/config.toml).
    if find_program("clang").is_none() {
        missing.push("clang (Debian package clang)".to_string());
    }
    if !Path::new("/usr/include/newlib/string.h").is_file() {
        missing.push("newlib's generic headers (Debian package libnewlib-dev)".to_string());
    }
    if !libclang_installed() {
        missing.push("libclang (Debian package libclang-dev)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Whether a libclang shared library is where bindgen looks for one.
fn libclang_installed() -> bool {
    let dirs = [
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ];
    let llvm = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("llvm-"))
        })
        .map(|p| p.join("lib"));
    dirs.iter()
        .map(PathBuf::from)
        .chain(llvm)
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("libclang"))
}

/// Builds `firmware` in release mode; the path of its ELF image.
///
/// `opt` overrides the profile's opt-level (and builds into a directory
/// of its own); `features` replaces the default features when given (in
/// the same directory: only the crates whose features change are built
/// again); `Some("")` builds with no feature.
pub fn build(
    root: &Path,
    firmware: &Firmware,
    opt: Option<&str>,
    features: Option<&str>,
) -> Result<PathBuf, Failure> {
    build_with_env(root, firmware, opt, features, &[])
}

/// [`build`] with environment variables for the build (e.g. the STM32
/// board's `FERRY_TLS_CERT` and `FERRY_TLS_KEY`).
pub fn build_with_env(
    root: &Path,
    firmware: &Firmware,
    opt: Option<&str>,
    features: Option<&str>,
    env: &[(&str, PathBuf)],
) -> Result<PathBuf, Failure> {
    // One target directory for every firmware package: they share the
    // host's build scripts and proc macros (bindgen, cc, cortex-m-rt's).
    let mut target_dir = root.join("target/firmware");
    if let Some(opt) = opt {
        target_dir = target_dir.join(format!("opt-{opt}"));
    }
    let mut cargo = cmd::debian_cargo();
    // No `--locked`: the path dependencies (the ferry crates) change under
    // the package as the engine grows; its Cargo.lock pins every registry
    // crate. The package's .cargo/config.toml names target and linker.
    cargo
        .current_dir(root.join(firmware.dir))
        .args(["build", "--release"]);
    if let Some(opt) = opt {
        cargo.args(["--config", &format!("profile.release.opt-level=\"{opt}\"")]);
    }
    if let Some(features) = features {
        cargo.arg("--no-default-features");
        if !features.is_empty() {
            cargo.args(["--features", features]);
        }
    }
    cargo.arg("--target-dir").arg(&target_dir);
    for (name, value) in firmware.env {
        cargo.env(name, value);
    }
    for (name, value) in env {
        cargo.env(name, value);
    }
    cmd::run(&mut cargo)?;
    Ok(target_dir
        .join(firmware.target)
        .join("release")
        .join(firmware.bin))
}

/// Where a firmware image's bytes go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Image {
    /// Flash: vector table, `.text`, `.rodata` and `.data`'s initial values.
    pub flash: u32,
    /// RAM: `.data`, `.bss` and `.uninit` (the stack comes on top).
    pub ram: u32,
    /// Flash per owner (a Rust crate, `littlefs (C)`, or `-` for bytes of
    /// no symbol and symbols of no crate).
    pub flash_by_owner: BTreeMap<String, u32>,
    /// RAM per owner, the same way.
    pub ram_by_owner: BTreeMap<String, u32>,
    /// The firmware's own `FIRMWARE_RAM` words, if it has them.
    pub layout: Vec<u32>,
}

impl Image {
    /// Flash of the FTP server alone (the `ferry_core` crate's symbols).
    pub fn ferry_core_flash(&self) -> u32 {
        self.flash_by_owner.get("ferry_core").copied().unwrap_or(0)
    }
}

/// Sections counted as flash, and whether they also take RAM. RP2040
/// (`.boot2`: its second-stage boot loader, ahead of the vector table),
/// Cortex-M
/// (cortex-m-rt) and ESP32-C3 (esp-hal: code run from RAM in `.trap` and
/// `.rwtext*`, the Wi-Fi driver's own sections, the app descriptor) names;
/// a section an image lacks counts 0.
const FLASH_SECTIONS: &[&str] = &[
    ".boot2",
    ".vector_table",
    ".text",
    ".rodata",
    ".data",
    ".trap",
    ".rwtext",
    ".rwtext.wifi",
    ".data.wifi",
    ".rodata.wifi",
    ".flash.appdesc",
];
/// Sections that take RAM. On the ESP32-C3, `.rwdata_dummy` is the data
/// RAM that the code in `.rwtext` occupies (one SRAM, two buses); the heap
/// in the ROM bootloader's reclaimed RAM (`.dram2_uninit`) is not counted.
const RAM_SECTIONS: &[&str] = &[
    ".data",
    ".bss",
    ".uninit",
    ".data.wifi",
    ".rwdata_dummy",
    ".noinit",
];

/// Measures the firmware image at `path`.
pub fn measure(path: &Path) -> Result<Image, Failure> {
    let data =
        std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let elf = Elf::parse(data).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    let index = |names: &[&str]| -> Vec<usize> {
        names.iter().filter_map(|n| elf.section_index(n)).collect()
    };
    let flash_sections = index(FLASH_SECTIONS);
    let ram_sections = index(RAM_SECTIONS);
    let mut image = Image {
        flash: FLASH_SECTIONS.iter().map(|n| elf.section_size(n)).sum(),
        ram: RAM_SECTIONS.iter().map(|n| elf.section_size(n)).sum(),
        ..Image::default()
    };
    for symbol in &elf.symbols {
        if symbol.size == 0 {
            continue;
        }
        let section = symbol.section as usize;
        let owner = owner(&symbol.name);
        if flash_sections.contains(&section) {
            *image.flash_by_owner.entry(owner.clone()).or_default() += symbol.size;
        }
        if ram_sections.contains(&section) {
            *image.ram_by_owner.entry(owner).or_default() += symbol.size;
        }
    }
    // Bytes no symbol covers (constants, padding, the vector table's
    // unnamed entries) go to `-`.
    let named_flash: u32 = image.flash_by_owner.values().sum();
    *image.flash_by_owner.entry("-".into()).or_default() += image.flash.saturating_sub(named_flash);
    let named_ram: u32 = image.ram_by_owner.values().sum();
    *image.ram_by_owner.entry("-".into()).or_default() += image.ram.saturating_sub(named_ram);
    if let Ok(bytes) = elf.symbol_bytes("FIRMWARE_RAM") {
        image.layout = bytes
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
    }
    Ok(image)
}

/// Who a symbol's bytes belong to: its Rust crate, littlefs's C code, or
/// `-`.
fn owner(name: &str) -> String {
    if let Some(krate) = elf::symbol_crate(name) {
        return krate;
    }
    if name.starts_with("lfs_") {
        return "littlefs (C)".into();
    }
    "-".into()
}

/// The firmware images `cargo xtask size` measures: the QEMU board, the
/// STM32 one with each of its stacks (each with its `features`), the
/// RP2040 one and the ESP32-C3.
pub const MEASURED: [Firmware; 5] = [
    QEMU_MPS2_AN385,
    STM32F429ZI,
    STM32F429ZI_W5500,
    RP2040_W5500,
    ESP32C3,
];

/// The published figures Ferry is set beside (ROM; RAM where published).
pub const PEERS: &str = "\
| SEGGER emFTP (Cortex-M3) | 5.6 KB | 2.5 KB | 1.8 KB |\n\
| Keil MDK FTP server | 5.4 KB | | |\n\
| Micrium µC/FTPs | 9.5 KB | | |\n";

/// What a firmware's `FIRMWARE_RAM` words say (see its `src/main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Sessions (`N`).
    pub sessions: u32,
    /// The engine's transfer buffer.
    pub transfer_buffer: u32,
    /// `size_of` the server for `sessions`.
    pub server: u32,
    /// `size_of` the server for one more session.
    pub server_one_more: u32,
    /// Pool sockets.
    pub pool: u32,
    /// Sockets one more session needs.
    pub sockets_per_session: u32,
    /// Each socket's receive buffer (0: in the NIC, as the W5500's).
    pub socket_rx: u32,
    /// Each socket's transmit buffer (0: in the NIC).
    pub socket_tx: u32,
    /// Each socket's smoltcp slot (`SocketStorage`; 0: none).
    pub socket_slot: u32,
    /// `size_of` the stack adapter for `pool` sockets.
    pub stack: u32,
    /// `size_of` the stack adapter for one more session's sockets.
    pub stack_one_more: u32,
    /// The RAM disk (0: none in the measured RAM).
    pub ram_disk: u32,
    /// The NIC driver with its buffers or rings (0: none outside the
    /// adapter).
    pub nic: u32,
    /// littlefs's state of one open file (`FileSlots`: one per session).
    pub file_slot: u32,
}

impl Layout {
    /// The layout in `words`, if they are one (marker "FERR" last).
    pub fn parse(words: &[u32]) -> Option<Layout> {
        match *words {
            [sessions, transfer_buffer, server, server_one_more, pool, sockets_per_session, socket_rx, socket_tx, socket_slot, stack, stack_one_more, ram_disk, nic, _window, file_slot, 0x4645_5252] => {
                Some(Layout {
                    sessions,
                    transfer_buffer,
                    server,
                    server_one_more,
                    pool,
                    sockets_per_session,
                    socket_rx,
                    socket_tx,
                    socket_slot,
                    stack,
                    stack_one_more,
                    ram_disk,
                    nic,
                    file_slot,
                })
            }
            _ => None,
        }
    }

    /// Whether the sockets' buffers are in the NIC (a W5500: TCP/IP in
    /// the chip), not in the MCU's RAM.
    pub fn buffers_in_nic(&self) -> bool {
        self.socket_rx == 0 && self.socket_tx == 0
    }

    /// The socket pool: buffers and slots of every socket, plus the
    /// adapter (interface, tables).
    pub fn sockets(&self) -> u32 {
        self.pool * (self.socket_rx + self.socket_tx + self.socket_slot) + self.stack
    }

    /// What the engine alone adds per further session.
    pub fn engine_per_session(&self) -> u32 {
        self.server_one_more.saturating_sub(self.server)
    }

    /// What one more session costs in all: its engine state, its open
    /// file's littlefs state, its sockets (buffers and slots) and the
    /// adapter's tables for them.
    pub fn per_session(&self) -> u32 {
        self.engine_per_session()
            + self.file_slot
            + self.sockets_per_session * (self.socket_rx + self.socket_tx + self.socket_slot)
            + self.stack_one_more.saturating_sub(self.stack)
    }
}

/// Owners whose flash is the TCP/IP stack, the file system, or the
/// board's drivers and runtime, for the summary rows. With a W5500 the
/// stack runs in the chip: the MCU's share is its register access
/// (`w5500_ll`) and Ferry's adapter.
const NETWORK: &[&str] = &["smoltcp", "ferry_net", "managed", "w5500_ll"];
const STORAGE: &[&str] = &[
    "littlefs (C)",
    "littlefs2",
    "littlefs2_core",
    "littlefs2_sys",
    "ferry_fs",
    "tinyrlibc",
];

/// One firmware measured at both opt-levels: `(opt, image)`.
pub type Measured = (Firmware, Vec<(&'static str, Image)>);

/// The terminal report and the docs/BENCHMARKS.md section for `measured`.
pub fn size_report(measured: &[Measured], provenance: &str) -> (String, String) {
    let mut term = String::new();
    let mut doc = format!("{provenance}\n\n");
    let kb = |b: u32| format!("{:.1} KB", f64::from(b) / 1024.0);
    doc += "| firmware, opt-level | flash | RAM (static) | Ferry's FTP server (ferry_core) | TCP/IP (smoltcp, or the W5500's register access, + adapter) | file system (littlefs + adapter) | board, drivers, runtime, logging | no symbol (constants, padding, libc) |\n\
            |---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (firmware, images) in measured {
        term += &format!(
            "\n{} ({}, {}):\n",
            firmware.title, firmware.dir, firmware.target
        );
        for (opt, image) in images {
            let sum = |owners: &[&str]| -> u32 {
                owners
                    .iter()
                    .map(|o| image.flash_by_owner.get(*o).copied().unwrap_or(0))
                    .sum()
            };
            let (core, net, fs) = (image.ferry_core_flash(), sum(NETWORK), sum(STORAGE));
            let unnamed = sum(&["-"]);
            let rest = image.flash.saturating_sub(core + net + fs + unnamed);
            let ram_disk = Layout::parse(&image.layout).map_or(0, |l| l.ram_disk);
            let ram = if ram_disk > 0 {
                format!(
                    "{} ({} without the RAM disk)",
                    kb(image.ram),
                    kb(image.ram.saturating_sub(ram_disk))
                )
            } else {
                kb(image.ram)
            };
            term += &format!(
                "  opt \"{opt}\": flash {} ({}), RAM {} ({}) static\n",
                image.flash,
                kb(image.flash),
                image.ram,
                kb(image.ram)
            );
            term += "    flash by owner:";
            for (owner, bytes) in &image.flash_by_owner {
                if *bytes >= 256 {
                    term += &format!(" {owner} {bytes};");
                }
            }
            term += "\n";
            doc += &format!(
                "| {} \"{opt}\" | {} | {ram} | {} | {} | {} | {} | {} |\n",
                firmware.title,
                kb(image.flash),
                kb(core),
                kb(net),
                kb(fs),
                kb(rest),
                kb(unnamed)
            );
        }
    }
    doc += "\nRAM, from each image's `FIRMWARE_RAM` (the same at both opt-levels):\n\n\
            | firmware | sessions | engine (`Server`, incl. transfer buffer) | socket pool (buffers + slots + adapter) | RAM disk | NIC | per further session: engine | per further session: with its sockets and open file |\n\
            |---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (firmware, images) in measured {
        let Some(layout) = images.first().and_then(|(_, i)| Layout::parse(&i.layout)) else {
            continue;
        };
        let (pool_term, pool_doc) = if layout.buffers_in_nic() {
            (
                format!(
                    "{} sockets with their buffers in the NIC, adapter {} B",
                    layout.pool,
                    layout.sockets()
                ),
                format!(
                    "{} (adapter; {} sockets' buffers in the NIC)",
                    kb(layout.sockets()),
                    layout.pool
                ),
            )
        } else {
            (
                format!(
                    "{} sockets of {} + {} B = {} B",
                    layout.pool,
                    layout.socket_rx,
                    layout.socket_tx,
                    layout.sockets()
                ),
                format!(
                    "{} ({} × ({} + {}))",
                    kb(layout.sockets()),
                    layout.pool,
                    kb(layout.socket_rx),
                    kb(layout.socket_tx)
                ),
            )
        };
        let or_dash = |bytes: u32| {
            if bytes == 0 {
                "-".to_string()
            } else {
                kb(bytes)
            }
        };
        term += &format!(
            "  {}: engine {} B for {} sessions ({} B transfer buffer), {} B more per session \
             (+ {} B littlefs file slot); {pool_term}; one more session in all: {} B\n",
            firmware.title,
            layout.server,
            layout.sessions,
            layout.transfer_buffer,
            layout.engine_per_session(),
            layout.file_slot,
            layout.per_session()
        );
        doc += &format!(
            "| {} | {} | {} | {pool_doc} | {} | {} | {} | {} ({}) |\n",
            firmware.title,
            layout.sessions,
            kb(layout.server),
            or_dash(layout.ram_disk),
            or_dash(layout.nic),
            kb(layout.engine_per_session()),
            kb(layout.per_session()),
            if layout.buffers_in_nic() {
                "sockets in the NIC".to_string()
            } else {
                format!("{} sockets", layout.sockets_per_session)
            }
        );
    }
    doc += "\nThe peers' published figures, for the FTP server alone:\n\n\
            | server | ROM | RAM, one connection | RAM, each further one |\n\
            |---|---:|---:|---:|\n";
    doc += PEERS;
    (term, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_costs() {
        let words = [
            4,
            2048,
            10_000,
            12_000,
            22,
            4,
            8192,
            8192,
            336,
            3000,
            3300,
            0,
            3096,
            65536,
            360,
            0x4645_5252,
        ];
        let layout = Layout::parse(&words).unwrap();
        assert_eq!(layout.engine_per_session(), 2000);
        assert_eq!(
            layout.per_session(),
            2000 + 360 + 4 * (8192 + 8192 + 336) + 300
        );
        assert_eq!(layout.sockets(), 22 * (8192 + 8192 + 336) + 3000);
        assert!(Layout::parse(&words[..15]).is_none());
    }

    #[test]
    fn report_rows() {
        let words = vec![
            4,
            2048,
            12_376,
            14_936,
            22,
            4,
            8192,
            8192,
            336,
            3000,
            3300,
            2 << 20,
            3096,
            65536,
            360,
            0x4645_5252,
        ];
        let mut image = Image {
            flash: 100 * 1024,
            ram: (2 << 20) + 100 * 1024,
            layout: words,
            ..Image::default()
        };
        for (owner, kib) in [
            ("ferry_core", 16),
            ("smoltcp", 8),
            ("ferry_net", 4),
            ("littlefs (C)", 15),
            ("-", 20),
        ] {
            image.flash_by_owner.insert(owner.into(), kib * 1024);
        }
        let (_, doc) = size_report(&[(QEMU_MPS2_AN385, vec![("z", image)])], "P.");
        assert!(doc.contains("| QEMU mps2-an385 (Cortex-M3) \"z\" | 100.0 KB | 2148.0 KB (100.0 KB without the RAM disk) | 16.0 KB | 12.0 KB | 15.0 KB | 37.0 KB | 20.0 KB |"), "{doc}");
        assert!(doc.contains("(22 × (8.0 KB + 8.0 KB))"), "{doc}");
        assert!(doc.contains("| Micrium µC/FTPs | 9.5 KB |"), "{doc}");
    }

    #[test]
    fn report_row_with_sockets_in_the_nic() {
        // A W5500 board: 8 hardware sockets whose buffers are in the chip,
        // no NIC driver outside the adapter.
        let words = vec![
            2,
            2048,
            7_256,
            9_816,
            8,
            2,
            0,
            0,
            0,
            132,
            132,
            0,
            0,
            0,
            358,
            0x4645_5252,
        ];
        let layout = Layout::parse(&words).unwrap();
        assert!(layout.buffers_in_nic());
        assert_eq!(layout.sockets(), 132);
        assert_eq!(layout.per_session(), 2560 + 358);
        let mut image = Image {
            flash: 80 * 1024,
            ram: 20 * 1024,
            layout: words,
            ..Image::default()
        };
        for (owner, kib) in [("ferry_core", 16), ("ferry_net", 4), ("w5500_ll", 1)] {
            image.flash_by_owner.insert(owner.into(), kib * 1024);
        }
        let (term, doc) = size_report(&[(STM32F429ZI_W5500, vec![("z", image)])], "P.");
        assert!(
            doc.contains("| NUCLEO-F429ZI + W5500 (Cortex-M4F) \"z\" | 80.0 KB | 20.0 KB | 16.0 KB | 5.0 KB |"),
            "{doc}"
        );
        assert!(
            doc.contains("| NUCLEO-F429ZI + W5500 (Cortex-M4F) | 2 | 7.1 KB | 0.1 KB (adapter; 8 sockets' buffers in the NIC) | - | - | 2.5 KB | 2.8 KB (sockets in the NIC) |"),
            "{doc}"
        );
        assert!(
            term.contains("8 sockets with their buffers in the NIC, adapter 132 B"),
            "{term}"
        );
    }

    #[test]
    fn feature_sets_choose_one_stack_and_one_storage() {
        for set in STM32_FEATURE_SETS {
            let features: Vec<&str> = set.split(',').collect();
            let count = |prefix: &str| features.iter().filter(|f| f.starts_with(prefix)).count();
            assert_eq!((count("stack-"), count("storage-")), (1, 1), "{set}");
        }
        let measured = STM32F429ZI_W5500.features.unwrap();
        assert!(STM32_FEATURE_SETS.contains(&measured));
    }

    #[test]
    fn every_measured_board_is_a_package_with_its_target() {
        let root = crate::cmd::root();
        for board in MEASURED {
            let config = std::fs::read_to_string(root.join(board.dir).join(".cargo/config.toml"))
                .unwrap_or_else(|e| panic!("{}: {e}", board.dir));
            assert!(
                config.contains(&format!("target = \"{}\"", board.target)),
                "{}: .cargo/config.toml does not build for {}",
                board.dir,
                board.target
            );
            let manifest =
                std::fs::read_to_string(root.join(board.dir).join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains(&format!("name = \"{}\"", board.bin)),
                "{}: no binary {}",
                board.dir,
                board.bin
            );
        }
    }

    #[test]
    fn esp32c3_builds_get_every_variable_the_board_requires() {
        // `env!` has no default (`option_env!` has): each such FERRY_
        // variable must be among the ones CI builds pass.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/esp32c3/src");
        let mut required = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for (i, _) in text.match_indices("env!(\"FERRY_") {
                if !text[..i].ends_with("option_") {
                    let name = text[i + 6..].split('"').next().unwrap();
                    required.push(name.to_string());
                }
            }
        }
        assert!(required.iter().any(|r| r == "FERRY_WIFI_SSID"));
        for name in &required {
            assert!(ESP32C3.env.iter().any(|(n, _)| n == name), "{name}");
        }
    }

    #[test]
    fn profiles() {
        for profile in Profile::ALL {
            assert_eq!(Profile::parse(profile.name()), Some(profile));
        }
        assert_eq!(Profile::parse("full"), None);
        assert_eq!(Profile::Default.qemu_features(), None);
        assert_eq!(Profile::Emftp.qemu_features(), Some(""));
        assert_eq!(Profile::parse("tls"), Some(Profile::Tls));
        assert_eq!(Profile::Tls.qemu_features(), Some("tls,insecure-test-rng"));
    }

    #[test]
    fn owners() {
        assert_eq!(owner("lfs_dir_commit"), "littlefs (C)");
        assert_eq!(owner("memcpy"), "-");
        assert_eq!(
            owner("_ZN10ferry_core6server6Server4poll17h0123456789abcdefE"),
            "ferry_core"
        );
    }
}

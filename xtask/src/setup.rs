//! `cargo xtask setup`: installs what the tests and the bench need, and only
//! what is missing, so running it twice does nothing the second time.
//!
//! - Debian packages: `lftp` and `curl` (the integration tests' real
//!   clients), `lld` (the bare-metal linker), and `rustc-web`, `cargo-web`,
//!   `rust-web-src` (a Rust with the standard library's sources, which builds
//!   `core` for Cortex-M; rustup here cannot download targets);
//!   `qemu-system-arm` and `libnewlib-arm-none-eabi` for the firmware;
//!   `clang` (bindgen's headers for littlefs on Cortex-M) and `mtools` (the
//!   integration tests read FAT images with it); `vsftpd`, a peer server of
//!   `cargo xtask bench` (its service is stopped and disabled if installing
//!   it started one: the bench runs its own); `gcc-mingw-w64-x86-64`,
//!   `wine` and `wine64` build ferryd for Windows and run it.
//! - `pytest` and `littlefs-python` (`tests/integration/requirements.txt`),
//!   and `pyftpdlib` for the bench (`xtask/bench/requirements.txt`), with
//!   the `python3` on `PATH`.
use std::process::Command;

use crate::cmd::{self, find_program, output};
use crate::Failure;

/// The Debian packages the tests need.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "lftp",
    "curl",
    "lld",
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    // littlefs2-sys compiles littlefs's C and binds it with bindgen.
    "libclang-dev",
    "gcc-arm-none-eabi",
    // host-tap's test makes a network namespace and a TAP device.
    "iproute2",
    // bindgen's headers for the Cortex-M build of littlefs (`cargo xtask size`).
    "clang",
    // The integration tests read FAT images with another implementation.
    "mtools",
    // The firmware: QEMU boots the Cortex-M3 one (`cargo xtask qemu`, its
    // test); littlefs's C code needs newlib's headers on bare metal.
    "qemu-system-arm",
    "libnewlib-arm-none-eabi",
    // The ESP32-C3 board's littlefs: clang (above) with newlib's generic
    // headers (libnewlib-arm-none-eabi brings them too; named here since
    // that board relies on them).
    "libnewlib-dev",
    // A peer server of `cargo xtask bench`.
    "vsftpd",
    // ferryd for Windows: mingw-w64 links it (and compiles ring's and
    // littlefs's C); Wine runs it in `cargo xtask test` (64-bit only: the
    // `wine` package is the `wine`/`wineserver` commands, `wine64` the rest).
    "gcc-mingw-w64-x86-64",
    "wine",
    "wine64",
];

/// Runs the chore.
pub fn run() -> Result<(), Failure> {
    cmd::header("setup: Debian packages");
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| !debian_package_installed(p))
        .collect();
    if missing.is_empty() {
        println!("installed already: {}", DEBIAN_PACKAGES.join(" "));
    } else {
        println!("missing: {}", missing.join(" "));
        if find_program("apt-get").is_none() {
            return Err(Failure(format!(
                "apt-get not found: install the equivalents of {} by hand",
                missing.join(" ")
            )));
        }
        let mut update = privileged("apt-get");
        update.arg("update");
        cmd::run(&mut update)?;
        let mut install = privileged("apt-get");
        install
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing);
        cmd::run(&mut install)?;
        if missing.contains(&"vsftpd") {
            stop_vsftpd_service()?;
        }
    }

    cmd::header("setup: pytest");
    if find_program("python3").is_none() {
        return Err(Failure(
            "python3 not found: install Python 3 (Debian package python3)".into(),
        ));
    }
    let requirements = cmd::root().join("tests/integration/requirements.txt");
    if requirements.is_file() {
        // pip installs only what is missing or too old, and says nothing
        // with --quiet when all is there.
        cmd::run(pip().arg("-r").arg(&requirements))?;
    } else if pytest_available() {
        println!("installed already: pytest");
    } else {
        cmd::run(pip().arg("pytest"))?;
    }
    if !pytest_available() {
        return Err(Failure(
            "pytest cannot be imported after pip install".into(),
        ));
    }
    cmd::header("setup: pyftpdlib (cargo xtask bench)");
    cmd::run(
        pip()
            .arg("-r")
            .arg(cmd::root().join("xtask/bench/requirements.txt")),
    )?;
    cmd::header("setup: pure-ftpd (cargo xtask bench's FTPES rows)");
    unpack_pure_ftpd()?;
    cmd::header("setup: cargo-fuzz");
    if find_program("cargo-fuzz").is_some() {
        println!("installed already: cargo-fuzz");
    } else {
        // Built from crates.io with the machine's toolchain; `cargo xtask
        // test` runs every fuzz target briefly with RUSTC_BOOTSTRAP=1.
        cmd::run(cmd::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    println!("\nsetup: done");
    Ok(())
}

/// pure-ftpd, a peer of the bench's FTPES rows: Debian's package conflicts
/// with vsftpd's (both are an `ftp-server`), so it is downloaded and
/// unpacked into `target/peers/pure-ftpd` (its binaries need only libc,
/// libcrypt, libssl and libsodium, which are there), not installed.
fn unpack_pure_ftpd() -> Result<(), Failure> {
    let root = cmd::root();
    let dir = root.join(crate::bench::tls::PURE_FTPD_DIR);
    if find_program("pure-ftpd").is_some() || dir.join("usr/sbin/pure-ftpd").is_file() {
        println!("there already: pure-ftpd");
        return Ok(());
    }
    let download = root.join("target/peers/download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)
        .map_err(|e| Failure(format!("cannot create {}: {e}", download.display())))?;
    let fetch = || {
        cmd::run(
            Command::new("apt-get")
                .current_dir(&download)
                .args(["download", "pure-ftpd"]),
        )
    };
    // Package lists may be missing or stale where every package above was
    // installed already (no `apt-get update` ran): refresh them once.
    if fetch().is_err() {
        cmd::run(privileged("apt-get").arg("update"))?;
        fetch()?;
    }
    let debs: Vec<std::path::PathBuf> = std::fs::read_dir(&download)
        .map_err(|e| Failure(format!("cannot read {}: {e}", download.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    let [deb] = debs.as_slice() else {
        return Err(Failure(format!(
            "apt-get download pure-ftpd left {} .deb files in {}",
            debs.len(),
            download.display()
        )));
    };
    cmd::run(Command::new("dpkg").arg("-x").arg(deb).arg(&dir))?;
    let version = cmd::output(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .arg("Version"),
    )
    .unwrap_or_default();
    std::fs::write(dir.join("VERSION"), version.trim())
        .map_err(|e| Failure(format!("cannot write {}: {e}", dir.display())))?;
    println!("unpacked {} into {}", deb.display(), dir.display());
    Ok(())
}

/// Installing vsftpd starts its service where systemd runs (on port 21, with
/// local logins): the bench runs vsftpd itself, so stop and disable it.
fn stop_vsftpd_service() -> Result<(), Failure> {
    if find_program("systemctl").is_none() {
        return Ok(());
    }
    let active = Command::new("systemctl")
        .args(["is-active", "--quiet", "vsftpd"])
        .status()
        .is_ok_and(|status| status.success());
    if active {
        println!("vsftpd's service started on install; the bench does not need it");
        cmd::run(privileged("systemctl").args(["disable", "--now", "vsftpd"]))?;
    }
    Ok(())
}

/// Whether `dpkg` lists `package` as installed.
pub fn debian_package_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status == "install ok installed")
}

/// Whether `python3 -m pytest` can run.
pub fn pytest_available() -> bool {
    output(Command::new("python3").args(["-c", "import pytest"])).is_some()
}

/// `program`, under `sudo` unless we are root already.
fn privileged(program: &str) -> Command {
    let root = output(Command::new("id").arg("-u")).is_some_and(|uid| uid == "0");
    if root {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg(program);
        cmd
    }
}

/// `python3 -m pip install --quiet`, without pip's warnings about running
/// as root or about its own version.
fn pip() -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PIP_ROOT_USER_ACTION", "ignore")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .args(["-m", "pip", "install", "--quiet"]);
    cmd
}

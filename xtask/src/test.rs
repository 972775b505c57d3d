//! `cargo xtask test [--quick]`: every check CI runs, in order, stopping at
//! the first failure.
//!
//! A step whose tool is missing is skipped with a loud line and listed again
//! at the end, unless `CI=true`, where it fails: CI must never pass by
//! running less. `--quick` leaves out fmt, clippy and the cross builds
//! (the Cortex-M3 ones, with them the firmware steps: the QEMU firmware test
//! and the STM32, RP2040 and ESP32-C3 boards' builds; the macOS check;
//! ferryd for Windows and its run under Wine).
use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{self, find_program, header, output};
use crate::{docs, firmware, qemu, setup, size, windows, Failure};

/// The Cortex-M3 target that ferry-core must always build for.
pub const THUMB_TARGET: &str = "thumbv7m-none-eabi";

/// ferry-core in the emftp profile (no optional feature), for clippy and tests.
const EMFTP: [&str; 4] = ["-p", "ferry-core", "--locked", "--no-default-features"];

/// What `pytest` exits with when it collected no test.
const PYTEST_NO_TESTS: i32 = 5;

/// Steps left out and why, for the closing summary.
struct Skips {
    ci: bool,
    skipped: Vec<String>,
}

impl Skips {
    /// `Ok(true)` when the step can run; a skip (or, in CI, a failure) when
    /// `missing` names something it needs.
    fn check(&mut self, step: &str, missing: Option<String>) -> Result<bool, Failure> {
        let Some(missing) = missing else {
            return Ok(true);
        };
        if self.ci {
            return Err(Failure(format!(
                "{step}: missing {missing} (CI=true, so this is a failure; `cargo xtask setup` installs it)"
            )));
        }
        self.skip(format!("{step} (missing {missing}; run cargo xtask setup)"));
        Ok(false)
    }

    fn skip(&mut self, what: String) {
        let bar = "!".repeat(72);
        println!("{bar}\n!! SKIPPED: {what}\n{bar}");
        self.skipped.push(what);
    }
}

/// Runs the chore.
pub fn run(quick: bool) -> Result<(), Failure> {
    let mut skips = Skips {
        ci: cmd::is_ci(),
        skipped: Vec::new(),
    };
    let root = cmd::root();

    header("docs: paths named in docs/ARCHITECTURE.md and README.md exist");
    docs::check_paths(&root)?;

    if quick {
        println!("\n(--quick: leaving out fmt, clippy and the {THUMB_TARGET} builds)");
    } else {
        header("fmt");
        cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))?;

        header("clippy");
        cmd::run(cmd::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
        // The emftp profile: ferry-core with no optional feature.
        let lints = ["--all-targets", "--", "-D", "warnings"];
        cmd::run(cmd::cargo().arg("clippy").args(EMFTP).args(lints))?;
    }

    header("unit tests");
    cmd::run(cmd::cargo().args(["test", "--workspace", "--locked"]))?;
    // The emftp profile: tests/profiles.rs expects 502 for every left-out command.
    cmd::run(cmd::cargo().arg("test").args(EMFTP))?;

    header(&format!(
        "simulation: {} fixed seeds (cargo xtask sim)",
        crate::sim::DEFAULT_SEEDS
    ));
    crate::sim::run(&[])?;

    if !quick {
        header(&format!(
            "ferry-core for {THUMB_TARGET} (Cortex-M3, no_std)"
        ));
        if skips.check(
            &format!("{THUMB_TARGET} build"),
            cmd::debian_toolchain_missing(),
        )? {
            cmd::run(&mut thumb_build())?;
        }

        // The size budget: both profiles at opt "z" and "s", ROM, RAM and
        // the stack in QEMU, against size-budget.toml (this also catches a
        // probe that no longer compiles against the engine's API).
        header("size budget (cargo xtask size --check)");
        if skips.check("size budget", size::missing())? {
            size::check(&root)?;
        }
        let missing = cmd::debian_toolchain_missing().or_else(|| {
            find_program("ld.lld")
                .is_none()
                .then(|| "ld.lld (Debian package lld)".to_string())
        });

        let missing = missing.or_else(|| {
            find_program("qemu-system-arm")
                .is_none()
                .then(|| "qemu-system-arm (Debian package qemu-system-arm)".to_string())
        });
        // ferry-tls's device configuration, no_std + alloc: its ROM, and
        // one connection's RAM measured in QEMU, against the budget.
        header("ferry-tls for thumbv7em-none-eabihf (no_std + alloc): size and RAM budget");
        if skips.check("ferry-tls thumbv7em build", missing)? {
            size::tls::check(&root)?;
        }
    }

    if !quick {
        // ferryd is a desktop server for Linux, macOS and Windows: Windows is
        // built and run under Wine after the integration tests; macOS can
        // only be type-checked here (std built from source; the image
        // features are left out because littlefs compiles C for the target).
        header("ferryd type-checks for macOS");
        if skips.check("ferryd macOS check", cmd::debian_toolchain_missing())? {
            let mut check = cmd::debian_cargo();
            check.args([
                "check",
                "-p",
                "ferryd",
                "--locked",
                "--no-default-features",
                "--target",
                "aarch64-apple-darwin",
                "-Zbuild-std=std,panic_abort",
                "--target-dir",
                "target/cross-check",
            ]);
            cmd::run(&mut check)?;
        }

        // Everything parsed from the network, fuzzed briefly on every run
        // (`cargo xtask fuzz` runs longer); a crash fails the step.
        header("fuzz: each target for 15 s");
        let missing = find_program("cargo-fuzz")
            .is_none()
            .then(|| "cargo-fuzz (cargo install cargo-fuzz --locked)".to_string());
        if skips.check("fuzz", missing)? {
            crate::fuzz::run(&["--time", "15"])?;
        }
    }

    header("ferryd release build");
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "ferryd", "--locked"]))?;

    header("integration tests (real clients against ferryd)");
    if skips.check("integration tests", integration_missing())? {
        integration(&root, &mut skips)?;
    }

    if !quick {
        header(&format!(
            "ferryd for Windows ({}): built, and run under Wine against curl",
            windows::TARGET
        ));
        let missing: Vec<String> = [
            windows::build_missing(),
            windows::wine_missing(),
            integration_missing(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if skips.check(
            "Windows build and Wine smoke test",
            (!missing.is_empty()).then(|| missing.join(", ")),
        )? {
            let exe = windows::build(&root)?;
            windows::smoke_test(&root, &exe)?;
        }
    }

    header("host-tap: the embedded stack (smoltcp) over a TAP device, real clients");
    if skips.check("host-tap tests", tap_missing())? {
        cmd::run(cmd::cargo().args(["build", "--release", "-p", "host-tap", "--locked"]))?;
        let host_tap = target_dir(&root).join("release/host-tap");
        let mut pytest = Command::new("python3");
        pytest.current_dir(&root).env("HOST_TAP", &host_tap).args([
            "-m",
            "pytest",
            "-q",
            "-s",
            "tests/tap",
        ]);
        cmd::run(&mut pytest)?;
    }

    header("host-w5500: the W5500 adapter over an emulated chip, real clients");
    if skips.check("host-w5500 tests", integration_missing())? {
        cmd::run(cmd::cargo().args([
            "build",
            "--release",
            "-p",
            "host-tap",
            "--bin",
            "host-w5500",
            "--locked",
        ]))?;
        let host_w5500 = target_dir(&root).join("release/host-w5500");
        let mut pytest = Command::new("python3");
        pytest
            .current_dir(&root)
            .env("HOST_W5500", &host_w5500)
            .args(["-m", "pytest", "-q", "tests/w5500"]);
        cmd::run(&mut pytest)?;
    }

    if !quick {
        header("firmware: Cortex-M3 in QEMU (mps2-an385), default, emftp and tls builds, against real clients");
        let missing: Vec<String> = [qemu::missing(), qemu::tap_missing(), integration_missing()]
            .into_iter()
            .flatten()
            .collect();
        if skips.check(
            "QEMU firmware test",
            (!missing.is_empty()).then(|| missing.join(", ")),
        )? {
            qemu::test(&root)?;
        }

        header(&format!("firmware: {} builds", firmware::STM32F429ZI.title));
        if skips.check("STM32 firmware build", firmware::missing())? {
            for features in firmware::STM32_FEATURE_SETS {
                firmware::build(&root, &firmware::STM32F429ZI, None, Some(features))?;
            }
            // With FTPS: the chip's RNG and the TLS layer (the test key).
            let certificate = firmware::test_certificate(&root);
            for features in firmware::STM32_FTPS_FEATURE_SETS {
                firmware::build_with_env(
                    &root,
                    &firmware::STM32F429ZI,
                    None,
                    Some(features),
                    &certificate,
                )?;
            }
        }

        header(&format!("firmware: {} build", firmware::RP2040_W5500.title));
        if skips.check("RP2040 firmware build", firmware::missing())? {
            firmware::build(&root, &firmware::RP2040_W5500, None, None)?;
        }

        header(&format!("firmware: {} build", firmware::ESP32C3.title));
        if skips.check("ESP32-C3 firmware build", firmware::missing())? {
            firmware::build(&root, &firmware::ESP32C3, None, None)?;
        }
    }

    println!();
    if skips.skipped.is_empty() {
        println!(
            "test: every step passed{}",
            if quick { " (--quick)" } else { "" }
        );
    } else {
        println!(
            "test: passed, but {} step(s) were SKIPPED:",
            skips.skipped.len()
        );
        for what in &skips.skipped {
            println!("  SKIPPED: {what}");
        }
    }
    Ok(())
}

/// `ferry-core` for the Cortex-M3 with Debian's toolchain, in its own target
/// directory so that the host build's cache stays valid.
fn thumb_build() -> Command {
    let mut cmd = cmd::debian_cargo();
    cmd.args([
        "build",
        "-p",
        "ferry-core",
        "--release",
        "--locked",
        "--target",
        THUMB_TARGET,
        "-Zbuild-std=core",
        "--target-dir",
        "target/thumbv7m",
    ]);
    cmd
}

/// What the integration tests need and is not there.
fn integration_missing() -> Option<String> {
    let mut missing = Vec::new();
    if find_program("python3").is_none() {
        missing.push("python3");
    } else if !setup::pytest_available() {
        missing.push("pytest");
    }
    for tool in ["lftp", "curl"] {
        if find_program(tool).is_none() {
            missing.push(tool);
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// What the host-tap test needs (root, /dev/net/tun, `ip`) and is not there.
fn tap_missing() -> Option<String> {
    let mut missing = Vec::new();
    if integration_missing().is_some() {
        missing.push("python3, pytest, curl and lftp".to_string());
    }
    if find_program("ip").is_none() {
        missing.push("ip (Debian package iproute2)".to_string());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun".to_string());
    }
    let uid = output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        missing.push("root (network namespaces)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The target directory cargo builds into.
fn target_dir(root: &std::path::Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn integration(root: &std::path::Path, skips: &mut Skips) -> Result<(), Failure> {
    let dir = root.join("tests/integration");
    let no_tests = |why: &str, skips: &mut Skips| -> Result<(), Failure> {
        if skips.ci {
            Err(Failure(format!("integration tests: {why}")))
        } else {
            skips.skip(format!("integration tests ({why})"));
            Ok(())
        }
    };
    if !dir.is_dir() {
        return no_tests("tests/integration does not exist", skips);
    }
    let ferryd = target_dir(root).join("release/ferryd");
    let mut pytest = Command::new("python3");
    pytest.current_dir(root).env("FERRYD", &ferryd).args([
        "-m",
        "pytest",
        "-q",
        "tests/integration",
    ]);
    println!("$ {}", cmd::show(&pytest));
    let status = pytest
        .status()
        .map_err(|e| Failure(format!("cannot start pytest: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(PYTEST_NO_TESTS) => no_tests("pytest collected no test in tests/integration", skips),
        _ => Err(Failure(format!("integration tests failed ({status})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_skips_locally_and_fails_in_ci() {
        let mut local = Skips {
            ci: false,
            skipped: Vec::new(),
        };
        assert!(local.check("step", None).unwrap());
        assert!(!local.check("step", Some("lftp".into())).unwrap());
        assert_eq!(
            local.skipped,
            ["step (missing lftp; run cargo xtask setup)"]
        );
        let mut ci = Skips {
            ci: true,
            skipped: Vec::new(),
        };
        assert!(ci.check("step", Some("lftp".into())).is_err());
        assert!(ci.skipped.is_empty());
    }
}

//! ferryd for Windows: built for `x86_64-pc-windows-gnu` with Debian's cargo
//! (std from source) and Debian's mingw-w64, then run under Wine against curl
//! (`tests/windows`), so the Windows build is run, not only type-checked.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, find_program};
use crate::Failure;

/// The Windows target: the GNU ABI, which Debian's mingw-w64 links.
pub const TARGET: &str = "x86_64-pc-windows-gnu";

/// mingw-w64's C compiler: the linker, and the compiler of ring's C and
/// assembly and of littlefs's C (the `cc` crate finds it by this name).
pub const LINKER: &str = "x86_64-w64-mingw32-gcc";

/// The build's own target directory (std built from source for Windows),
/// kept across runs; the Wine prefix lives in it too.
pub const TARGET_DIR: &str = "target/windows";

/// What building ferryd.exe needs and is not there.
pub fn build_missing() -> Option<String> {
    let mut missing: Vec<String> = cmd::debian_toolchain_missing().into_iter().collect();
    if find_program(LINKER).is_none() {
        missing.push(format!("{LINKER} (Debian package gcc-mingw-w64-x86-64)"));
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// What running it under Wine needs beyond [`build_missing`] (the test's
/// Python and curl are the integration tests' needs).
pub fn wine_missing() -> Option<String> {
    let missing: Vec<&str> = ["wine", "wineserver"]
        .into_iter()
        .filter(|tool| find_program(tool).is_none())
        .collect();
    (!missing.is_empty()).then(|| format!("{} (Debian packages wine, wine64)", missing.join(", ")))
}

/// `cargo xtask windows`: the build and the smoke test, as `cargo xtask
/// test` runs them (a missing tool is an error here).
pub fn run() -> Result<(), Failure> {
    let missing: Vec<String> = [build_missing(), wine_missing()]
        .into_iter()
        .flatten()
        .collect();
    if !missing.is_empty() {
        return Err(Failure(format!(
            "missing {} (cargo xtask setup installs it)",
            missing.join(", ")
        )));
    }
    let root = cmd::root();
    let exe = build(&root)?;
    smoke_test(&root, &exe)
}

/// Builds ferryd.exe (release, default features: TLS on ring, littlefs and
/// FAT images) and returns its path.
pub fn build(root: &Path) -> Result<PathBuf, Failure> {
    cmd::run(&mut build_command())?;
    let exe = root
        .join(TARGET_DIR)
        .join(TARGET)
        .join("release/ferryd.exe");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(Failure(format!("the build left no {}", exe.display())))
    }
}

fn build_command() -> Command {
    let mut cmd = cmd::debian_cargo();
    cmd.args([
        "build",
        "-p",
        "ferryd",
        "--release",
        "--locked",
        "--target",
        TARGET,
        "-Zbuild-std=std,panic_abort",
        "--config",
        &format!("target.{TARGET}.linker=\"{LINKER}\""),
        "--target-dir",
        TARGET_DIR,
    ]);
    cmd
}

/// Runs `tests/windows` against `exe` under Wine, in the prefix kept in
/// [`TARGET_DIR`] (made at the first run).
pub fn smoke_test(root: &Path, exe: &Path) -> Result<(), Failure> {
    let mut pytest = Command::new("python3");
    pytest
        .current_dir(root)
        .env("FERRYD_EXE", exe)
        .env("WINEPREFIX", root.join(TARGET_DIR).join("wine-prefix"))
        .args(["-m", "pytest", "-q", "-s", "tests/windows"]);
    cmd::run(&mut pytest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_links_with_mingw_in_its_own_target_dir() {
        let shown = cmd::show(&build_command());
        assert!(shown.contains("--target x86_64-pc-windows-gnu"), "{shown}");
        assert!(
            shown.contains(
                "--config 'target.x86_64-pc-windows-gnu.linker=\"x86_64-w64-mingw32-gcc\"'"
            ),
            "{shown}"
        );
        assert!(shown.contains("--target-dir target/windows"), "{shown}");
        assert!(!shown.contains("--no-default-features"), "{shown}");
    }
}

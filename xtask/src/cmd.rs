//! Running commands: printing them, finding tools, and the two cargos (the
//! rustup one that runs us, and Debian's, which can build for Cortex-M).
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Failure;

/// The repository root (xtask lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Whether we run in CI, where a missing tool is a failure, not a skip.
pub fn is_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("TRUE") | Ok("True")
    )
}

/// Prints a step's header.
pub fn header(title: &str) {
    println!("\n==== {title} ====");
}

/// Runs `cmd` with inherited stdio after printing it; a non-zero exit fails.
pub fn run(cmd: &mut Command) -> Result<(), Failure> {
    let shown = show(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| Failure(format!("cannot start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!("`{shown}` exited with {status}")))
    }
}

/// Runs `cmd` quietly; its stdout (trimmed) if it exited with 0.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    if out.status.success() {
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        None
    }
}

/// `cmd` as a shell line: the variables it sets, the program, the arguments.
pub fn show(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        // The loader path only undoes what `cargo run` added: not worth showing.
        if key == "LD_LIBRARY_PATH" {
            continue;
        }
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    parts.push(quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The full path of `program` if it is on `PATH` (or is a path that exists).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The cargo that runs xtask (so `cargo +nightly xtask` stays on nightly).
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// Debian's rustc and cargo: they have the standard library's sources, so
/// they can build `core` for any target (`-Zbuild-std`); see
/// `shared/TOOLCHAIN.md`.
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// See [`DEBIAN_RUSTC`].
pub const DEBIAN_CARGO: &str = "/usr/bin/cargo";

/// Why Debian's toolchain cannot build for a bare-metal target, if it cannot.
pub fn debian_toolchain_missing() -> Option<String> {
    for tool in [DEBIAN_RUSTC, DEBIAN_CARGO] {
        if !Path::new(tool).is_file() {
            return Some(format!("{tool} (Debian packages rustc-web, cargo-web)"));
        }
    }
    let sysroot = output(Command::new(DEBIAN_RUSTC).args(["--print", "sysroot"]))
        .unwrap_or_else(|| "/usr".to_string());
    let library = Path::new(&sysroot).join("lib/rustlib/src/rust/library/Cargo.lock");
    if !library.is_file() {
        return Some(format!(
            "the standard library's sources for {DEBIAN_RUSTC} ({} is missing; Debian package rust-web-src)",
            library.display()
        ));
    }
    None
}

/// Variables that rustup and `cargo run` set for xtask and that must not
/// reach Debian's cargo: they would make it use rustup's rustc (which has no
/// `core` sources) or confuse it about the package it builds.
const LEAKY_VARIABLES: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_TOOLCHAIN_SOURCE",
    "RUST_RECURSION_COUNT",
    "CARGO",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTFLAGS",
];
const LEAKY_PREFIXES: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
];

/// Debian's cargo with Debian's rustc and nightly features unlocked, without
/// anything rustup or `cargo run` put into our environment.
pub fn debian_cargo() -> Command {
    let mut cmd = Command::new(DEBIAN_CARGO);
    cmd.current_dir(root());
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if LEAKY_VARIABLES.contains(&key_str.as_ref())
            || LEAKY_PREFIXES.iter().any(|p| key_str.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    // `cargo run` puts rustup's toolchain libraries and our target directory
    // on the loader path.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        let target = root().join("target");
        let kept: Vec<PathBuf> = std::env::split_paths(&paths)
            .filter(|p| !p.to_string_lossy().contains("/toolchains/") && !p.starts_with(&target))
            .collect();
        match std::env::join_paths(kept) {
            Ok(joined) if !joined.is_empty() => {
                cmd.env("LD_LIBRARY_PATH", joined);
            }
            _ => {
                cmd.env_remove("LD_LIBRARY_PATH");
            }
        }
    }
    cmd.env("RUSTC", DEBIAN_RUSTC).env("RUSTC_BOOTSTRAP", "1");
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_quotes_only_what_needs_it() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTC", "/usr/bin/rustc").args([
            "build",
            "--config",
            "profile.release.opt-level=\"s\"",
        ]);
        assert_eq!(
            show(&cmd),
            "RUSTC=/usr/bin/rustc cargo build --config 'profile.release.opt-level=\"s\"'"
        );
    }

    #[test]
    fn debian_cargo_drops_rustup_variables() {
        let cmd = debian_cargo();
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("RUSTC"),
            Some(std::ffi::OsStr::new(DEBIAN_RUSTC))
        )));
        // Under `cargo test`, cargo sets CARGO; it must be removed.
        if std::env::var_os("CARGO").is_some() {
            assert!(envs.contains(&(std::ffi::OsStr::new("CARGO"), None)));
        }
    }
}

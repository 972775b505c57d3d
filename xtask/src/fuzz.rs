//! `cargo xtask fuzz [--time SECS] [TARGET...]`: runs cargo-fuzz targets of
//! `fuzz/` one after the other, each for a bounded time.
//!
//! cargo-fuzz needs nightly compiler flags (`-Zsanitizer=address`). The
//! toolchain that runs xtask is used with `RUSTC_BOOTSTRAP=1`, which unlocks
//! them on stable (tried here with stable 1.95 and cargo-fuzz 0.13); `cargo
//! +nightly xtask fuzz` uses a nightly instead.
//!
//! Each target runs with two corpora: `fuzz/corpus/<target>` (created, and
//! where new inputs go; ignored by git) and the committed seeds in
//! `fuzz/seeds/<target>`. Crashes land in `fuzz/artifacts/<target>/`.
use std::path::Path;

use crate::cmd::{self, find_program, header};
use crate::Failure;

/// Seconds per target unless `--time` says otherwise.
const DEFAULT_SECONDS: u32 = 60;

/// Runs the chore.
pub fn run(args: &[&str]) -> Result<(), Failure> {
    let mut seconds = DEFAULT_SECONDS;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if *arg == "--time" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--time needs a number of seconds")?;
        } else if arg.starts_with('-') {
            return Err(Failure(format!("unknown option {arg}")));
        } else {
            chosen.push(arg.to_string());
        }
    }

    let fuzz_dir = cmd::root().join("fuzz");
    let targets = list_targets(&fuzz_dir);
    if targets.is_empty() {
        return Err(Failure(format!(
            "no fuzz targets: {} has no .rs files yet",
            fuzz_dir.join("fuzz_targets").display()
        )));
    }
    if let Some(unknown) = chosen.iter().find(|t| !targets.contains(t)) {
        return Err(Failure(format!(
            "no fuzz target `{unknown}`; there are: {}",
            targets.join(", ")
        )));
    }
    if find_program("cargo-fuzz").is_none() {
        return Err(Failure(
            "cargo-fuzz is not installed; install it with `cargo install cargo-fuzz --locked` \
             (it builds from crates.io, no download of a toolchain needed)"
                .into(),
        ));
    }
    let run_targets = if chosen.is_empty() { targets } else { chosen };
    for target in &run_targets {
        header(&format!("fuzz {target} for {seconds} s"));
        let corpus = Path::new("corpus").join(target);
        let seeds = Path::new("seeds").join(target);
        std::fs::create_dir_all(fuzz_dir.join(&corpus))
            .map_err(|e| Failure(format!("cannot create fuzz/{}: {e}", corpus.display())))?;
        let mut fuzz = cmd::cargo();
        fuzz.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target])
            .arg(&corpus);
        if fuzz_dir.join(&seeds).is_dir() {
            fuzz.arg(&seeds);
        }
        fuzz.arg("--").arg(format!("-max_total_time={seconds}"));
        cmd::run(&mut fuzz)?;
    }
    println!(
        "\nfuzz: {} target(s) ran {seconds} s each without a crash",
        run_targets.len()
    );
    Ok(())
}

/// The targets in `fuzz/fuzz_targets/`, sorted.
fn list_targets(fuzz_dir: &Path) -> Vec<String> {
    let mut targets: Vec<String> = std::fs::read_dir(fuzz_dir.join("fuzz_targets"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? == "rs" {
                Some(path.file_stem()?.to_string_lossy().into_owned())
            } else {
                None
            }
        })
        .collect();
    targets.sort();
    targets
}

//! `cargo xtask sim [--seeds N] [--first F] [--seed S] [--verbose]`: the
//! deterministic simulation of the whole engine (crates/ferry-sim), built
//! in release. Prints `N seeds` and every failure with its seed and trace;
//! `--seed S` replays one seed and prints its whole trace. Fails when any
//! seed fails. docs/ROBUSTNESS.md says what it injects and checks.
use crate::cmd::{self, header};
use crate::Failure;

/// Seeds `cargo xtask sim` and `cargo xtask test` run unless told
/// otherwise: about 6 s in release on one core.
pub const DEFAULT_SEEDS: u32 = 2000;

/// Runs the chore with `args` passed on to the simulator.
pub fn run(args: &[&str]) -> Result<(), Failure> {
    let mut rest: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if !rest.iter().any(|a| a == "--seeds" || a == "--seed") {
        rest.extend(["--seeds".to_string(), DEFAULT_SEEDS.to_string()]);
    }
    header(&format!("simulation: ferry-sim {}", rest.join(" ")));
    cmd::run(
        cmd::cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "--locked",
                "-p",
                "ferry-sim",
                "--",
            ])
            .args(&rest),
    )
}

//! `ferry-sim --seeds N [--seed S] [--first F] [--verbose] [--plant-bug]`:
//! runs the simulation for N seeds (F, F+1, ...), or replays seed S with its
//! whole trace; prints `N seeds`, each failure with its seed and trace, and
//! exits 1 on any failure. `--plant-bug` serves storage that loses the last
//! chunk of every written file, to see what a failure looks like.
use std::process::ExitCode;
use std::time::Instant;

use ferry_sim::{run_seed, Options};

/// Seeds `cargo xtask sim` runs unless told otherwise.
const DEFAULT_SEEDS: u64 = 2000;
/// Trace lines printed for a failure in a many-seed run (its tail).
const TAIL: usize = 150;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = DEFAULT_SEEDS;
    let mut first = 0u64;
    let mut one = None;
    let mut verbose = false;
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok());
        match a.as_str() {
            "--seeds" => match num() {
                Some(n) => seeds = n,
                None => return usage(),
            },
            "--first" => match num() {
                Some(n) => first = n,
                None => return usage(),
            },
            "--seed" => match num() {
                Some(n) => one = Some(n),
                None => return usage(),
            },
            "--verbose" | "-v" => verbose = true,
            "--plant-bug" => options.plant_bug = true,
            _ => return usage(),
        }
    }
    // A panic in the engine is caught and reported as a failure; its
    // message goes to the report, not to stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    if let Some(seed) = one {
        let out = run_seed(seed, &options);
        for line in &out.trace {
            println!("{line}");
        }
        println!("\nseed {seed}: {} steps", out.steps);
        return match out.failure {
            Some(why) => {
                println!("seed {seed}: FAILED: {why}");
                ExitCode::FAILURE
            }
            None => {
                println!("seed {seed}: ok");
                ExitCode::SUCCESS
            }
        };
    }
    let planted = if options.plant_bug {
        " --plant-bug"
    } else {
        ""
    };
    let mut failures = Vec::new();
    let mut steps = 0;
    for seed in first..first + seeds {
        let out = run_seed(seed, &options);
        steps += out.steps;
        if verbose {
            println!("seed {seed}: {} steps, {}", out.steps, out.scenario);
        }
        if let Some(why) = out.failure {
            println!("\n==== seed {seed} FAILED: {why}");
            println!("scenario: {}", out.scenario);
            let skip = out.trace.len().saturating_sub(TAIL);
            if skip > 0 {
                println!(
                    "... ({skip} earlier trace lines; `cargo xtask sim --seed {seed}{planted}` prints all)"
                );
            }
            for line in out.trace.iter().skip(skip) {
                println!("{line}");
            }
            failures.push((seed, why));
        }
    }
    println!(
        "\n{seeds} seeds ({}..{}), {steps} steps, {:.1} s: {} failed",
        first,
        first + seeds,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    for (seed, why) in &failures {
        println!("  seed {seed}: {why}  (replay: cargo xtask sim --seed {seed}{planted})");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: ferry-sim [--seeds N] [--first F] [--seed S] [--verbose] [--plant-bug]");
    ExitCode::from(2)
}

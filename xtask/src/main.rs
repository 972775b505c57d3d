//! Ferry's chores, run as `cargo xtask <command>` (the alias lives in
//! `.cargo/config.toml`). Plain `std`: every step is an ordinary command that
//! this program prints before it runs, so any step can be repeated by hand.
//!
//! Exit codes: 0 when every step passed (or was skipped outside CI), 1 when a
//! step failed, 2 for a bad command line.
mod bench;
mod cmd;
mod docs;
mod elf;
mod firmware;
mod fuzz;
mod qemu;
mod setup;
mod sim;
mod size;
mod test;
mod windows;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup           install what the tests and the bench need (Debian
                  packages, pytest, pyftpdlib)
  test [--quick]  docs check, fmt, clippy, unit tests, Cortex-M3 build of
                  ferry-core, the size budget (size --check), ferryd release
                  build, integration tests, ferryd for Windows built and run
                  under Wine against curl, the Cortex-M3 firmware in QEMU
                  against real clients, the STM32, RP2040 and ESP32-C3
                  boards' builds; --quick skips fmt, clippy and the cross
                  builds (firmware, Cortex-M3, macOS, Windows)
  size [--check] [--ratchet] [--features-cost] [--tls] [--firmware]
                  ROM, RAM and stack of ferry-core on a Cortex-M3 (thumbv7m)
                  in the emftp and default profiles at opt-level \"z\" and
                  \"s\" (stack: a scripted session in QEMU), and of the
                  firmware images; writes target/size/summary.json, updates
                  docs/BENCHMARKS.md and README.md, compares with
                  size-budget.toml; --check: the engine only, failing on a
                  figure over its limit; --ratchet: lower the limits to the
                  figures measured; --features-cost: what each ferry-core
                  feature adds; --tls: only the TLS layer (ROM on a
                  Cortex-M4F, RAM per connection in QEMU) against its budget;
                  --firmware: only the firmware images (their section of
                  docs/BENCHMARKS.md)
  bench [--quick] [--write]
                  ferryd (release build) beside pyftpdlib and vsftpd on
                  loopback: RETR and STOR of 256 MiB with curl, small files
                  and logins with ftplib, peak RSS and CPU time of each
                  server; --quick: 32 MiB and 100 operations; --write: record
                  the table in docs/BENCHMARKS.md
  qemu [--tap] [--port PORT] [--verbose] [--profile default|emftp|tls | --emftp | --tls]
       [--implicit-port PORT]
                  build the Cortex-M3 firmware (boards/qemu-mps2-an385) and
                  boot it in qemu-system-arm; prints how to connect. Default:
                  QEMU's NAT, control port 127.0.0.1:2121 (passive mode only);
                  --tap: a TAP device in a new network namespace (root), where
                  active mode works too; --profile: the engine's protocol
                  profile (default: every command; emftp: emFTP's set; tls:
                  default plus FTPES on the control port and implicit FTPS
                  forwarded from 127.0.0.1:--implicit-port, 9990; test-only
                  certificate and RNG)
  windows         build ferryd for Windows (x86_64-pc-windows-gnu, into
                  target/windows) and run it under Wine against curl
                  (tests/windows), the step `test` runs
  fuzz [--time SECS] [TARGET...]
                  run each cargo-fuzz target in fuzz/ (default 60 s each)
  sim [--seeds N] [--first F] [--seed S] [--verbose]
                  the deterministic simulation of the whole engine under
                  network, storage, power and clock faults (crates/ferry-sim):
                  N seeds from F (default 2000 from 0), or replay seed S with
                  its whole trace; fails on any broken invariant
                  (docs/ROBUSTNESS.md)

environment:
  CI=true         a missing tool fails the step instead of skipping it
";

/// A failed chore: what to tell the user. The step printed its own output.
#[derive(Debug)]
pub struct Failure(pub String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(message: T) -> Self {
        Failure(message.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["setup"] => setup::run(),
        ["test"] => test::run(false),
        ["test", "--quick"] => test::run(true),
        ["size", rest @ ..] => match size::Options::parse(rest) {
            Some(options) => size::run(options),
            None => return bad_command_line(&args),
        },
        ["bench", rest @ ..] => match bench::Options::parse(rest) {
            Some(options) => bench::run(options),
            None => return bad_command_line(&args),
        },
        ["fuzz", rest @ ..] => fuzz::run(rest),
        ["sim", rest @ ..] => sim::run(rest),
        ["qemu", rest @ ..] => qemu::run(rest),
        ["windows"] => windows::run(),
        ["help" | "-h" | "--help"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => return bad_command_line(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("\nxtask: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Says what was wrong with the command line, and how to use xtask.
fn bad_command_line(args: &[&str]) -> ExitCode {
    eprintln!("xtask: bad command line: {}\n", args.join(" "));
    eprint!("{USAGE}");
    ExitCode::from(2)
}

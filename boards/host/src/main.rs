//! `ferryd`, Ferry's desktop FTP server: the engine over host sockets and a
//! host directory, configured from the command line and a TOML file.
//!
//! Exit codes: 0 after Ctrl-C, 1 when serving fails, 2 for bad options or a
//! startup failure (root, address in use).
mod auth;
mod cli;
mod observer;
mod serve;
mod settings;

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::serve::RunError;
use crate::settings::{Settings, StartupError};

/// Stack of the serving thread: generous, so that building the engine's
/// session table never overflows it, even in debug builds.
const SERVE_STACK_BYTES: usize = 64 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.hash_password {
        return match hash_password_from_stdin() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        };
    }
    init_logging();
    let settings = match Settings::from_cli(cli) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let serving = std::thread::Builder::new()
        .name("ferryd".into())
        .stack_size(SERVE_STACK_BYTES)
        .spawn(move || serve::run(settings));
    let result = match serving {
        Ok(handle) => handle.join(),
        Err(e) => {
            return fail(&StartupError(format!(
                "cannot start the server thread: {e}"
            )))
        }
    };
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(RunError::Startup(e))) => fail(&e),
        Ok(Err(RunError::Runtime(e))) => {
            eprintln!("ferryd: {e}");
            ExitCode::FAILURE
        }
        // The panic message has been printed already.
        Err(_) => ExitCode::FAILURE,
    }
}

/// Prints a startup error and gives exit code 2.
fn fail(e: &StartupError) -> ExitCode {
    eprintln!("ferryd: error: {e}");
    ExitCode::from(2)
}

/// Logs to stderr at the level of `RUST_LOG`, `info` by default; colours
/// only on a terminal, so logs piped to a file stay plain text.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
}

/// `ferryd --hash-password`: one line from stdin (without its line end) in,
/// its argon2 PHC string out.
fn hash_password_from_stdin() -> Result<(), StartupError> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as typed): ");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| StartupError(format!("cannot read the password from stdin: {e}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(StartupError("no password on stdin".into()));
    }
    let phc = auth::hash_password(password.as_bytes()).map_err(StartupError)?;
    println!("{phc}");
    Ok(())
}

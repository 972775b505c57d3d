//! host-w5500: Ferry's engine on the W5500 adapter
//! (`ferry_net::w5500_stack`), the code path of a board with a WIZnet
//! W5500, over a W5500 emulated on host sockets
//! (`ferry_net::w5500_emulator`), serving a host directory.
//!
//! It exists to run the W5500 adapter against real clients on a PC
//! (`tests/w5500`) without the chip: the emulated chip's sockets are host
//! sockets on `--ip` (loopback by default), so no root and no network
//! namespace are needed. Eight hardware sockets, as on the chip, bound the
//! sessions (see `W5500Config`).
//!
//! The loop is a board's: `stack.poll(now)`, then `server.poll(..)`; when
//! neither did anything, sleep until the engine's deadline or the next
//! millisecond tick (a board without the chip's INTn pin wired polls on its
//! SysTick the same way).
//!
//! Exit codes: 0 after Ctrl-C or SIGTERM, 1 when the stack fails while
//! serving, 2 for a startup failure.
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use ferry_board::{FixedUser, LogObserver};
use ferry_core::{Config, Server};
use ferry_fs::std_dir::StdDir;
use ferry_net::w5500_emulator::W5500Emulator;
use ferry_net::w5500_stack::{W5500Config, W5500Stack};
use ferry_net::Clock;
use host_tap::cli::UserSpec;
use host_tap::host::{print_line, stop_on_signal, HostClock};

/// Concurrent sessions: what eight hardware sockets carry (two listening
/// on the control port, then a control and a data connection each, and a
/// passive listener while a transfer starts).
const SESSIONS: usize = 3;
/// The engine's transfer buffer, shared by all sessions (the chip's socket
/// buffers are 2 KiB: more would only be copied in pieces).
const TRANSFER_BUFFER: usize = 4096;
/// The longest sleep: the board's tick.
const TICK: Duration = Duration::from_millis(1);
/// How long shutdown keeps polling so that goodbyes and FINs go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);

type Stack = W5500Stack<W5500Emulator>;

/// Ferry's FTP engine on the W5500 adapter, over a W5500 emulated on host
/// sockets: the code path of a W5500 board, on a PC.
#[derive(Debug, Parser)]
#[command(name = "host-w5500", version)]
struct Cli {
    /// The emulated chip's IPv4 address (SIPR): its listening sockets are
    /// host sockets bound to it.
    #[arg(long, default_value = "127.0.0.1")]
    ip: Ipv4Addr,
    /// The FTP control port.
    #[arg(long, default_value_t = 2121)]
    port: u16,
    /// Passive data ports, as FIRST-LAST.
    #[arg(long, default_value = "50000-50007", value_parser = parse_range)]
    passive_ports: (u16, u16),
    /// The directory served (created if missing). Default: a new temporary
    /// directory, printed at start.
    #[arg(long)]
    root: Option<PathBuf>,
    /// The one user, as NAME:PASSWORD.
    #[arg(long, default_value = "ferry:ferry")]
    user: UserSpec,
    /// Log every command line, not only connections, logins and transfers.
    #[arg(long, short)]
    verbose: bool,
}

/// `FIRST-LAST`, both ports, FIRST ≤ LAST.
fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} is not a port range like 50000-50007");
    let (first, last) = s.split_once('-').ok_or_else(bad)?;
    let first: u16 = first.trim().parse().map_err(|_| bad())?;
    let last: u16 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok((first, last))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("host-w5500: {e}");
            ExitCode::from(code)
        }
    }
}

/// Serves until Ctrl-C or SIGTERM. An error carries its exit code.
fn run(cli: Cli) -> Result<(), (u8, String)> {
    let startup = |e: String| (2u8, e);
    let root = match &cli.root {
        Some(root) => root.clone(),
        None => std::env::temp_dir().join(format!("host-w5500-{}", std::process::id())),
    };
    let mut fs = StdDir::open_or_create(&root).map_err(|e| {
        startup(format!(
            "cannot open or create root {}: {e}",
            root.display()
        ))
    })?;
    let stop =
        stop_on_signal().map_err(|e| startup(format!("cannot install the Ctrl-C handler: {e}")))?;

    let config = W5500Config {
        ip: cli.ip,
        subnet: Ipv4Addr::new(255, 0, 0, 0),
        ..W5500Config::default()
    };
    let mut stack: Stack = W5500Stack::new(W5500Emulator::new(), config);
    stack
        .init()
        .map_err(|e| startup(format!("cannot initialise the W5500: {e}")))?;
    let engine = Config {
        max_sessions: SESSIONS as u16,
        passive_ports: cli.passive_ports,
        ..Config::default()
    };
    // Boxed: the session table and transfer buffer are big for a frame.
    let mut server: Box<Server<Stack, StdDir, SESSIONS, TRANSFER_BUFFER>> =
        Box::new(Server::new(engine));
    let listen = SocketAddr::new(IpAddr::V4(cli.ip), cli.port);
    server
        .listen(&mut stack, listen)
        .map_err(|e| startup(format!("cannot listen on {listen}: {e:?}")))?;
    announce(&cli, &root, listen).map_err(|e| (1, format!("cannot write to stdout: {e}")))?;

    let clock = HostClock::new();
    let mut auth = FixedUser::new(&cli.user.name, &cli.user.password.0);
    let mut observer = LogObserver::<SESSIONS>::with_peers(print_line).verbose(cli.verbose);
    while !stop.load(Ordering::SeqCst) {
        let moved = match stack.poll(clock.now()) {
            Ok(moved) => moved,
            Err(e) => {
                server.shutdown(&mut stack, &mut fs);
                return Err((1, format!("the W5500 failed: {e}")));
            }
        };
        let poll = server.poll(&mut stack, &mut fs, &mut auth, &clock, &mut observer);
        if moved || poll.busy {
            continue;
        }
        let now = clock.now();
        let wait = poll.deadline.map_or(TICK, |d| {
            Duration::from_millis(d.millis_since(now)).min(TICK)
        });
        std::thread::sleep(wait);
    }

    eprintln!("shutting down ({} sessions)", server.session_count());
    server.shutdown(&mut stack, &mut fs);
    let flush_until = std::time::Instant::now() + SHUTDOWN_FLUSH;
    while std::time::Instant::now() < flush_until {
        if !stack.poll(clock.now()).unwrap_or(false) {
            std::thread::sleep(TICK);
        }
    }
    eprintln!("stopped");
    Ok(())
}

/// Prints what is served, where, and how to log in, and flushes (tests read
/// these lines from a pipe).
fn announce(cli: &Cli, root: &std::path::Path, listen: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "host-w5500 {} serving directory {} on an emulated W5500 (8 hardware sockets, {SESSIONS} sessions)",
        env!("CARGO_PKG_VERSION"),
        root.display(),
    )?;
    writeln!(out, "listening on ftp://{listen}")?;
    writeln!(
        out,
        "login: user {:?} (e.g. curl -u {}:PASSWORD ftp://{listen}/)",
        cli.user.name, cli.user.name
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_range("50000-50007"), Ok((50000, 50007)));
        assert_eq!(parse_range("2000-2000"), Ok((2000, 2000)));
        assert!(parse_range("50007-50000").is_err());
        assert!(parse_range("0-10").is_err());
        assert!(parse_range("50000").is_err());
        assert!(parse_range("a-b").is_err());
    }
}

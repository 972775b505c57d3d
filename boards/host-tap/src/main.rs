//! host-tap: Ferry's engine on smoltcp over a Linux TAP device, the same
//! code path as firmware (`ferry_net::smoltcp_stack` under `Server::poll`),
//! serving a host directory (`--root`) or the firmware's file system on an
//! image file (`--fs littlefs:IMAGE`, or `--fs fat:IMAGE`).
//!
//! The loop is the one a board runs: `stack.poll(now, &mut device)`, then
//! `server.poll(..)`; when neither did anything, sleep until the earlier of
//! the engine's deadline and smoltcp's `poll_delay`, or until the TAP
//! device has a frame. See `docs/PORTING.md`.
//!
//! Exit codes: 0 after Ctrl-C or SIGTERM, 1 when the device fails while
//! serving, 2 for a startup failure (TAP device, root, address).
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ferry_core::server::ListenError;
use ferry_core::{Config, Server};
#[cfg(any(feature = "littlefs", feature = "fat"))]
use ferry_fs::image::WithFileSystem;
use ferry_fs::std_dir::StdDir;
use ferry_fs::FileSystem;
use ferry_net::smoltcp_stack::{smol_instant, SmoltcpStack, StackConfig};
use ferry_net::Clock;
use smoltcp::iface::{Interface, SocketStorage};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

use ferry_board::{FixedUser, LogObserver};
use host_tap::cli::Cli;
#[cfg(any(feature = "littlefs", feature = "fat"))]
use host_tap::cli::FsSpec;
use host_tap::host::{print_line, stop_on_signal, HostClock};

/// Concurrent sessions.
const SESSIONS: usize = 8;
/// The engine's transfer buffer, shared by all sessions.
const TRANSFER_BUFFER: usize = 64 * 1024;
/// Pool sockets: 2 listening on the control port, and per session one
/// control connection, 2 listening on its passive port and one data
/// connection, plus 8 still flushing after close (see `StackConfig`).
const POOL: usize = 2 + SESSIONS * 4 + 8;
/// The longest sleep: bounds the Ctrl-C latency, and keeps the timeout
/// of `smoltcp::phy::wait` under one second (it builds its `timeval` from
/// whole seconds plus *all* the milliseconds, which select(2) refuses from
/// one second on).
const MAX_WAIT: Duration = Duration::from_millis(200);
/// How long shutdown keeps polling so that goodbyes and FINs go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);
/// Stack of the serving thread: building the session table on the stack
/// (before it is boxed) must not overflow it in debug builds.
const SERVE_STACK_BYTES: usize = 64 * 1024 * 1024;

type TapStack = SmoltcpStack<'static, POOL>;

/// Why host-tap stopped with an error.
enum Failure {
    /// Before serving. Exit code 2.
    Startup(String),
    /// While serving. Exit code 1.
    Runtime(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = std::thread::Builder::new()
        .name("host-tap".into())
        .stack_size(SERVE_STACK_BYTES)
        .spawn(move || run(cli));
    let result = match serving {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|_| Err(Failure::Runtime("the serving thread panicked".into()))),
        Err(e) => Err(Failure::Startup(format!(
            "cannot start the serving thread: {e}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Startup(e)) => {
            eprintln!("host-tap: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("host-tap: {e}");
            ExitCode::from(1)
        }
    }
}

/// A value that differs from run to run (TCP sequence numbers, ports).
fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// The served directory: `--root`, or a new temporary one.
fn root_dir(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(root) = &cli.root {
        return Ok(root.clone());
    }
    let dir = std::env::temp_dir().join(format!("host-tap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The smoltcp stack on `device`: the interface with the CLI's address and
/// gateway, and a pool of `POOL` sockets (buffers leaked: they live as
/// long as the process, like a firmware's statics).
fn build_stack(
    cli: &Cli,
    device: &mut TunTapInterface,
    now: smoltcp::time::Instant,
) -> Result<TapStack, String> {
    let o = cli.ip.addr.octets();
    // A locally administered MAC made of the IP, so two instances differ.
    let mac = EthernetAddress([0x02, 0x00, o[0], o[1], o[2], o[3]]);
    let seed = random_seed();
    let mut config = smoltcp::iface::Config::new(mac.into());
    config.random_seed = seed;
    let mut iface = Interface::new(config, device, now);
    let mut added = Ok(());
    iface.update_ip_addrs(|addrs| {
        added = addrs.push(IpCidr::new(IpAddress::Ipv4(cli.ip.addr), cli.ip.prefix));
    });
    added.map_err(|_| "cannot add the address to the interface".to_string())?;
    if let Some(gateway) = cli.gateway {
        iface
            .routes_mut()
            .add_default_ipv4_route(gateway)
            .map_err(|_| "cannot add the default route".to_string())?;
    }
    let storage: &'static mut [SocketStorage<'static>] = (0..POOL)
        .map(|_| SocketStorage::EMPTY)
        .collect::<Vec<_>>()
        .leak();
    let config = StackConfig {
        random_seed: seed,
        ..StackConfig::default()
    };
    let mut stack = SmoltcpStack::new(iface, storage, config);
    let bytes = usize::from(cli.socket_buffer_kib) * 1024;
    for _ in 0..POOL {
        stack
            .add_socket(vec![0; bytes].leak(), vec![0; bytes].leak())
            .map_err(|e| format!("cannot add a socket: {e}"))?;
    }
    Ok(stack)
}

/// Serves until Ctrl-C or SIGTERM: sets up the device and the stack, then
/// mounts the storage and serves it.
fn run(cli: Cli) -> Result<(), Failure> {
    let startup = Failure::Startup;
    let mut device = TunTapInterface::new(&cli.tap, Medium::Ethernet).map_err(|e| {
        startup(format!(
            "cannot attach to TAP device {:?}: {e} (root and /dev/net/tun needed; see --help)",
            cli.tap
        ))
    })?;
    let clock = HostClock::new();
    let stack = build_stack(&cli, &mut device, smol_instant(clock.now())).map_err(startup)?;
    let stop =
        stop_on_signal().map_err(|e| startup(format!("cannot install the Ctrl-C handler: {e}")))?;
    let fs_spec = cli.fs.clone();
    let fs_size = cli.fs_size;
    let mut board = Board {
        cli,
        device,
        stack,
        clock,
        stop,
        storage: String::new(),
    };
    match fs_spec {
        None => {
            let root = root_dir(&board.cli).map_err(startup)?;
            let mut fs = StdDir::open_or_create(&root).map_err(|e| {
                startup(format!(
                    "cannot open or create root {}: {e}",
                    root.display()
                ))
            })?;
            board.storage = format!("directory {}", root.display());
            board.serve(&mut fs)
        }
        #[cfg(feature = "littlefs")]
        Some(FsSpec::LittleFs(image)) => {
            board.storage = format!("littlefs image {}", image.display());
            ferry_fs::image::with_littlefs(&image, fs_size, board)
                .map_err(|e| startup(format!("littlefs image {}: {e}", image.display())))?
        }
        #[cfg(feature = "fat")]
        Some(FsSpec::Fat(image)) => {
            board.storage = format!("FAT image {}", image.display());
            ferry_fs::image::with_fat(&image, fs_size, board)
                .map_err(|e| startup(format!("FAT image {}: {e}", image.display())))?
        }
        #[allow(unreachable_patterns)]
        Some(_) => {
            let _ = fs_size;
            Err(startup(
                "host-tap was built without this file system (features littlefs, fat)".into(),
            ))
        }
    }
}

/// Everything but the storage: what a firmware's `main` owns.
struct Board {
    cli: Cli,
    device: TunTapInterface,
    stack: TapStack,
    clock: HostClock,
    stop: Arc<AtomicBool>,
    /// What is served, for the start-up lines.
    storage: String,
}

#[cfg(any(feature = "littlefs", feature = "fat"))]
impl WithFileSystem for Board {
    type Output = Result<(), Failure>;

    fn run<F: FileSystem>(self, fs: &mut F) -> Result<(), Failure> {
        self.serve(fs)
    }
}

impl Board {
    /// The board loop over `fs`, until the stop flag is set.
    fn serve<F: FileSystem>(self, fs: &mut F) -> Result<(), Failure> {
        let Board {
            cli,
            mut device,
            mut stack,
            clock,
            stop,
            storage,
        } = self;
        let fd = device.as_raw_fd();
        // Boxed: the session table and transfer buffer are big for a frame.
        let mut server: Box<Server<TapStack, F, SESSIONS, TRANSFER_BUFFER>> =
            Box::new(Server::new(Config::default()));
        // An upload cut by a crash left its temporary (see ferry-core's cleanup).
        server.remove_upload_leftovers(fs, |path| {
            eprintln!(
                "removed {}: an upload's temporary left by an earlier run",
                path.escape_ascii()
            )
        });
        let listen = SocketAddr::new(IpAddr::V4(cli.ip.addr), cli.port);
        server.listen(&mut stack, listen).map_err(|e| {
            Failure::Startup(match e {
                ListenError::TooMany => format!("cannot listen on {listen}: too many listeners"),
                ListenError::Stack(e) => format!("cannot listen on {listen}: {e}"),
            })
        })?;
        announce(&cli, &storage, listen)
            .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;

        let mut auth = FixedUser::new(&cli.user.name, &cli.user.password.0);
        let mut observer = LogObserver::<SESSIONS>::with_peers(print_line).verbose(cli.verbose);
        while !stop.load(Ordering::SeqCst) {
            let moved = stack.poll(smol_instant(clock.now()), &mut device);
            let poll = server.poll(&mut stack, fs, &mut auth, &clock, &mut observer);
            if moved || poll.busy {
                continue;
            }
            let now = clock.now();
            let engine = poll
                .deadline
                .map(|d| Duration::from_millis(d.millis_since(now)));
            let network = stack
                .poll_delay(smol_instant(now))
                .map(|d| Duration::from_micros(d.total_micros()));
            let wait = [engine, network, Some(MAX_WAIT)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(MAX_WAIT);
            if wait.is_zero() {
                continue;
            }
            let wait = smoltcp::time::Duration::from_micros(wait.as_micros() as u64);
            match smoltcp::phy::wait(fd, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    server.shutdown(&mut stack, fs);
                    return Err(Failure::Runtime(format!(
                        "waiting for the TAP device failed: {e}"
                    )));
                }
            }
        }

        eprintln!("shutting down ({} sessions)", server.session_count());
        server.shutdown(&mut stack, fs);
        // Let the 421 replies and FINs reach the clients.
        let flush_until = std::time::Instant::now() + SHUTDOWN_FLUSH;
        while std::time::Instant::now() < flush_until {
            if !stack.poll(smol_instant(clock.now()), &mut device) {
                let _ = smoltcp::phy::wait(fd, Some(smoltcp::time::Duration::from_millis(10)));
            }
        }
        eprintln!("stopped");
        Ok(())
    }
}

/// Prints what host-tap serves, where it listens and how to log in, and
/// flushes (tests read these lines from a pipe).
fn announce(cli: &Cli, storage: &str, listen: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "host-tap {} serving {storage} on TAP device {} (smoltcp, {POOL} sockets of {} KiB + {} KiB)",
        env!("CARGO_PKG_VERSION"),
        cli.tap,
        cli.socket_buffer_kib,
        cli.socket_buffer_kib,
    )?;
    writeln!(out, "listening on ftp://{listen}")?;
    writeln!(
        out,
        "login: user {:?} (e.g. curl -u {}:PASSWORD ftp://{listen}/)",
        cli.user.name, cli.user.name
    )?;
    out.flush()
}

//! Runs the engine on the host: opens the root directory or mounts the image
//! file, listens, announces where and how to log in, then polls until Ctrl-C.
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::server::Parked;
use ferry_core::server::{ListenError, ACCEPTS_PER_POLL, MAX_LISTENERS};
use ferry_core::{Server, Slot};
#[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
use ferry_fs::image::WithFileSystem;
use ferry_fs::std_dir::StdDir;
use ferry_fs::{EntryKind, Error as _, ErrorKind, FileSystem};
#[cfg(target_os = "linux")]
use ferry_net::std_stack::Spread;
use ferry_net::std_stack::{StdClock, StdStack};
use ferry_net::{Clock, Instant};
use ferry_tls::rustls::pki_types::pem::PemObject;
use ferry_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ferry_tls::{ClockTime, TlsConfig, TlsStack};
use tracing::{error, info};

use crate::auth::UserTable;
use crate::observer::{Census, LogObserver};
#[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
use crate::settings::ImageKind;
use crate::settings::{CertSource, Settings, StartupError, TlsSettings};

/// Bytes of the transfer buffer all sessions share.
pub const TRANSFER_BUFFER: usize = 256 * 1024;

/// Host sockets with the TLS layer on top (without a certificate it only
/// passes through).
type HostStack = TlsStack<StdStack, StdClock>;

/// A session table that grows as sessions arrive, up to `--max-sessions`
/// (see [`grow_tables`]), and keeps what it grew to.
type Table<F> = Vec<Slot<HostSocket, F>>;

/// The idle sessions parked outside the table: a few hundred bytes each
/// instead of a slot (see [`Parked`]); grown like the table.
type ParkedTable = Vec<Parked<HostSocket>>;

/// A control or data connection of [`HostStack`].
type HostSocket = <HostStack as ferry_net::TcpClientStack>::TcpSocket;

/// Free slots the table keeps at its end, past the last one in use: more
/// than one poll can fill (`MAX_LISTENERS * ACCEPTS_PER_POLL`, 32), and the
/// step it grows by (about 1.2 MB with 4096-byte paths). The parked table
/// grows by as many entries.
const SPARE_SLOTS: usize = 64;
const _: () = assert!(SPARE_SLOTS / 2 >= MAX_LISTENERS * ACCEPTS_PER_POLL);

/// The server as `ferryd` compiles it, over the file system `F`.
type HostServer<F> = Server<HostStack, F, 0, TRANSFER_BUFFER, Table<F>, ParkedTable>;

/// How long, at shutdown, closing TLS connections get to finish
/// (`close_notify`) before the process exits.
const TLS_DRAIN_MS: u64 = 2_000;

/// What `ferryd` says about its certificate at start.
struct CertInfo {
    /// SHA-256 of the leaf certificate, colon-separated hex.
    fingerprint: String,
    /// Made at start (clients must be told to trust it).
    self_signed: bool,
}

/// Why [`run`] stopped with an error.
#[derive(Debug)]
pub enum RunError {
    /// Before serving: bad settings, root, or address. Exit code 2.
    Startup(StartupError),
    /// While serving: the host's readiness wait failed. Exit code 1.
    Runtime(String),
}

impl From<StartupError> for RunError {
    fn from(e: StartupError) -> Self {
        RunError::Startup(e)
    }
}

fn startup(msg: String) -> RunError {
    RunError::Startup(StartupError(msg))
}

/// Serves `settings` until Ctrl-C (or SIGTERM), then closes every session.
pub fn run(settings: Settings) -> Result<(), RunError> {
    let Some(image) = settings.image.clone() else {
        let mut fs = StdDir::open_or_create(&settings.root).map_err(|e| {
            startup(format!(
                "cannot open or create root {}: {e}",
                settings.root.display()
            ))
        })?;
        let root = std::fs::canonicalize(&settings.root).unwrap_or_else(|_| settings.root.clone());
        let root = root.display().to_string();
        let shown = if cfg!(windows) {
            without_verbatim_prefix(&root)
        } else {
            root
        };
        return serve(&settings, &mut fs, &shown);
    };
    #[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
    {
        let name = match image.kind {
            ImageKind::LittleFs => "littlefs",
            ImageKind::Fat => "FAT",
            ImageKind::SdFat => "FAT (embedded-sdmmc)",
        };
        let storage = format!("{name} image {}", image.path.display());
        let started = std::cell::Cell::new(false);
        let serving = Serving {
            settings: &settings,
            storage: &storage,
            started: &started,
        };
        let mounted = match image.kind {
            #[cfg(feature = "littlefs")]
            ImageKind::LittleFs => ferry_fs::image::with_littlefs(&image.path, image.size, serving),
            #[cfg(feature = "fat")]
            ImageKind::Fat => ferry_fs::image::with_fat(&image.path, image.size, serving),
            #[cfg(feature = "sdfat")]
            ImageKind::SdFat => ferry_fs::image::with_sdfat(&image.path, image.size, serving),
            #[allow(unreachable_patterns)]
            _ => return Err(startup(format!("ferryd was built without {name} support"))),
        };
        mounted.map_err(|e| {
            if started.get() {
                // Writing back at unmount (FAT) failed after serving.
                RunError::Runtime(format!("{storage}: {e}"))
            } else {
                startup(format!("{storage}: {e}"))
            }
        })?
    }
    #[cfg(not(any(feature = "littlefs", feature = "fat", feature = "sdfat")))]
    Err(startup(format!(
        "cannot serve {}: ferryd was built without image support (features littlefs, fat, sdfat)",
        image.path.display()
    )))
}

/// A canonical Windows path as people write it: `canonicalize` gives the
/// verbatim form (`\\?\C:\srv`, `\\?\UNC\host\share`), shown at start as
/// `C:\srv` and `\\host\share`. Other paths are returned as they are.
fn without_verbatim_prefix(path: &str) -> String {
    if let Some(unc) = path.strip_prefix(r"\\?\UNC\") {
        return format!(r"\\{unc}");
    }
    match path.strip_prefix(r"\\?\") {
        Some(rest) if rest.as_bytes().get(1) == Some(&b':') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// The serving loop, lent a mounted image by `ferry_fs::image`.
#[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
struct Serving<'a> {
    settings: &'a Settings,
    storage: &'a str,
    /// Set once the image is mounted.
    started: &'a std::cell::Cell<bool>,
}

#[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
impl WithFileSystem for Serving<'_> {
    type Output = Result<(), RunError>;

    fn run<F: FileSystem>(self, fs: &mut F) -> Result<(), RunError> {
        self.started.set(true);
        serve(self.settings, fs, self.storage)
    }
}

/// Serves `fs` (described as `storage` at start) until Ctrl-C or SIGTERM.
fn serve<F: FileSystem>(settings: &Settings, fs: &mut F, storage: &str) -> Result<(), RunError> {
    for user in &settings.users {
        create_home(fs, &user.home)
            .map_err(|e| startup(format!("user {:?}: home {}: {e}", user.name, user.home)))?;
    }
    let (tls, cert) = match &settings.tls {
        None => (None, None),
        Some(t) => {
            let (config, cert) = tls_config(settings, t, StdClock::new())?;
            (Some(config), Some(cert))
        }
    };
    let implicit = settings
        .tls
        .as_ref()
        .map_or(&[][..], |t| &t.implicit_listen[..]);
    let workers = settings.workers.max(1);
    // Each session may hold its control connection, a passive listener and
    // a data connection, in every worker's table.
    let sockets = workers * usize::from(settings.engine.max_sessions) * 3 + 64;
    raise_open_file_limit(sockets as u64);
    let census = Census::new(workers);
    let plan = Plan {
        settings,
        tls: tls.as_ref(),
        census: &census,
    };

    let wanted: Vec<SocketAddr> = settings.listen.iter().chain(implicit).copied().collect();
    let mut first = plan.worker::<F>(0, &wanted, implicit)?;
    // Before serving: an upload cut by a crash or a kill left its
    // temporary (the file it was replacing is intact).
    let removed = first.server.remove_upload_leftovers(fs, |path| {
        tracing::warn!(
            "removed {}: an upload's temporary left by an earlier run",
            String::from_utf8_lossy(path)
        )
    });
    if removed > 0 {
        tracing::info!("{removed} leftover upload temporaries removed");
    }
    // The bound addresses (in the order listened): with port 0 the system
    // picked the port, which the other workers then share.
    let mut bound: Vec<SocketAddr> = first.server.listen_addrs(&mut first.stack).collect();
    if bound.len() != wanted.len() {
        bound = wanted.clone();
    }
    let (plain_bound, implicit_bound) = bound.split_at(settings.listen.len().min(bound.len()));

    let stop = Arc::new(AtomicBool::new(false));
    let mut wakers = vec![first.waker()?];
    std::thread::scope(|scope| {
        let mut others = Vec::new();
        let stop_all = |wakers: &[ferry_net::std_stack::StdWaker]| {
            stop.store(true, Ordering::SeqCst);
            for waker in wakers {
                let _ = waker.wake();
            }
        };
        let mut start = || -> Result<(), RunError> {
            for index in 1..workers {
                // Started one after another, so that each joins the listening
                // group at its index; then it serves on its own thread.
                let worker = plan.worker::<StdDir>(index, &bound, implicit_bound)?;
                wakers.push(worker.waker()?);
                let mut fs = StdDir::open_or_create(&settings.root).map_err(|e| {
                    startup(format!("cannot open root {}: {e}", settings.root.display()))
                })?;
                let stop = Arc::clone(&stop);
                let thread = std::thread::Builder::new()
                    .name(format!("worker {index}"))
                    .spawn_scoped(scope, move || worker.run(&mut fs, &stop))
                    .map_err(|e| startup(format!("cannot start worker {index}: {e}")))?;
                others.push(thread);
            }
            {
                let stop = Arc::clone(&stop);
                let wakers = wakers.clone();
                ctrlc::set_handler(move || {
                    if stop.swap(true, Ordering::SeqCst) {
                        // A second Ctrl-C while shutting down: leave at once.
                        std::process::exit(130);
                    }
                    for waker in &wakers {
                        let _ = waker.wake();
                    }
                })
                .map_err(|e| startup(format!("cannot install the Ctrl-C handler: {e}")))?;
            }
            announce(
                settings,
                storage,
                plain_bound,
                implicit_bound,
                cert.as_ref(),
            )
            .map_err(|e| RunError::Runtime(format!("cannot write to stdout: {e}")))?;
            info!(
                users = first.users.len(),
                anonymous = settings.anonymous,
                workers,
                "serving"
            );
            Ok(())
        };
        // A worker that could not start, or one that fails, stops them all.
        let mut outcome = match start() {
            Ok(()) => first.run(fs, &stop),
            Err(e) => Err(e),
        };
        stop_all(&wakers);
        for thread in others {
            let theirs = thread
                .join()
                .unwrap_or_else(|_| Err(RunError::Runtime("a worker panicked".into())));
            if outcome.is_ok() {
                outcome = theirs;
            }
        }
        if outcome.is_ok() {
            info!("stopped");
        }
        outcome
    })
}

/// Raises the soft limit of open files to `need` (as far as the hard limit
/// allows; a server of thousands of sessions needs more than the usual
/// 1024), and warns when it stays below.
#[cfg(unix)]
fn raise_open_file_limit(need: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= need {
        return;
    }
    let wanted = limit.maximum.map_or(need, |max| max.min(need));
    let raised = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    )
    .map_or(current, |()| wanted);
    if raised < need {
        tracing::warn!(
            "open-file limit {raised}: fewer than the {need} sockets --max-sessions may need \
             (raise `ulimit -n`)"
        );
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit(_need: u64) {}

/// What every worker is built from.
struct Plan<'a> {
    settings: &'a Settings,
    tls: Option<&'a TlsConfig>,
    census: &'a Arc<Census>,
}

impl Plan<'_> {
    /// Worker `index`: its own sockets, TLS layer, password checkers and
    /// session table, listening on `listen` (shared with the other
    /// workers), of which `implicit` take implicit TLS.
    fn worker<F: FileSystem>(
        &self,
        index: usize,
        listen: &[SocketAddr],
        implicit: &[SocketAddr],
    ) -> Result<Worker<F>, RunError> {
        let settings = self.settings;
        let workers = settings.workers.max(1);
        let plain =
            StdStack::new().map_err(|e| startup(format!("cannot set up networking: {e}")))?;
        #[cfg(target_os = "linux")]
        let plain = {
            let mut plain = plain;
            if workers > 1 {
                // One address to one worker keeps a per-address limit as
                // exact as with one; without a limit, the connections of
                // one address (a NAT, a proxy) use every worker.
                let spread = match settings.engine.max_per_ip {
                    0 => Spread::ByPort,
                    _ => Spread::ByAddress,
                };
                plain.share_listeners(u32::try_from(workers).ok(), spread);
            }
            plain
        };
        let clock = StdClock::new();
        let mut stack = match self.tls {
            None => TlsStack::without_tls(plain, clock),
            Some(config) => implicit
                .iter()
                .fold(TlsStack::new(plain, clock, config.clone()), |s, a| {
                    s.implicit_addr(*a)
                }),
        };
        let slots = usize::from(settings.engine.max_sessions).max(1);
        let table: Table<F> = (0..slots.min(SPARE_SLOTS))
            .map(|_| Slot::default())
            .collect();
        // Boxed: the transfer buffer is too big for a stack frame.
        let mut server: Box<HostServer<F>> = Box::new(Server::with_table(settings.engine, table));
        for addr in listen {
            server.listen(&mut stack, *addr).map_err(|e| match e {
                ListenError::TooMany => {
                    startup(format!("cannot listen on {addr}: too many listeners"))
                }
                ListenError::Stack(e) => startup(format!("cannot listen on {addr}: {e}")),
            })?;
        }
        // Passive listeners are the session's own.
        #[cfg(target_os = "linux")]
        stack.inner_mut().share_listeners(None, Spread::ByAddress);

        let mut users = UserTable::new(
            &settings.users,
            settings.anonymous,
            settings.engine.read_only,
        );
        // Password hashes are checked on worker threads, one per core but
        // the loops', so that a slow check (argon2: tens of ms) never
        // stalls a loop, nor takes the core it runs on; each result wakes it.
        let waker = stack
            .inner()
            .waker()
            .map_err(|e| startup(format!("cannot set up the login-check waker: {e}")))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores.saturating_sub(workers) / workers).max(1);
        users.check_in_background(
            threads,
            Arc::new(move || {
                let _ = waker.wake();
            }),
        );
        let observer = if workers > 1 {
            LogObserver::worker(Arc::clone(self.census), index)
        } else {
            LogObserver::new()
        };
        Ok(Worker {
            server,
            stack,
            users,
            observer,
            clock,
            busy_poll: settings.busy_poll,
        })
    }
}

/// One engine instance and what it serves with.
struct Worker<F: FileSystem> {
    server: Box<HostServer<F>>,
    stack: HostStack,
    users: UserTable,
    observer: LogObserver,
    clock: StdClock,
    /// How long the loop polls without sleeping before it sleeps.
    busy_poll: Duration,
}

impl<F: FileSystem> Worker<F> {
    /// Wakes this worker's loop (from another thread).
    fn waker(&self) -> Result<ferry_net::std_stack::StdWaker, RunError> {
        self.stack
            .inner()
            .waker()
            .map_err(|e| startup(format!("cannot set up a waker: {e}")))
    }

    /// Serves until `stop`, then closes every session.
    fn run(mut self, fs: &mut F, stop: &AtomicBool) -> Result<(), RunError> {
        let Worker {
            server,
            stack,
            users,
            observer,
            clock,
            busy_poll,
        } = &mut self;
        let most = usize::from(server.config().max_sessions).max(1);
        while !stop.load(Ordering::SeqCst) {
            let poll = server.poll(stack, fs, users, &*clock, observer);
            // Grown: sessions that found no room to park, or none to come
            // back into, may now; poll again at once.
            let grew = grow_tables(server, most);
            // Busy, or bytes decrypted inside the TLS layer (they wake no
            // readiness event): only collect the events that came
            // meanwhile, without sleeping. The stack tries no socket that
            // reported none, so every pass of the loop waits, if only for
            // zero time.
            let timeout = if poll.busy || grew || stack.has_pending() {
                Some(Duration::ZERO)
            } else {
                let deadline = match (poll.deadline, stack.poll_at()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                deadline.map(|d| Duration::from_millis(d.millis_since(clock.now())))
            };
            // About to sleep: first poll a while without sleeping, so that
            // the next command of a busy client finds the loop awake.
            let spin = match timeout {
                Some(Duration::ZERO) => Duration::ZERO,
                _ => *busy_poll,
            };
            let waited = match stack.inner_mut().spin(spin) {
                Ok(false) => stack.inner_mut().wait(timeout),
                other => other.map(|_| ()),
            };
            match waited {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!("waiting for sockets failed: {e}");
                    server.shutdown(stack, fs);
                    stack.abandon_lingering();
                    return Err(RunError::Runtime(format!(
                        "waiting for sockets failed: {e}"
                    )));
                }
            }
        }
        info!(sessions = server.session_count(), "shutting down");
        server.shutdown(stack, fs);
        drain_tls(stack, clock);
        Ok(())
    }
}

/// Adds [`SPARE_SLOTS`] free entries to `server`'s session table, and as
/// many to its parked table, up to `most` in all, once fewer than half as
/// many are left at its end: their memory follows the most sessions open
/// (and busy) at once, not `--max-sessions`. True if either grew. Moving
/// the entries when a vector reallocates is safe: they hold handles and
/// plain state, nothing that points into them.
fn grow_tables<F: FileSystem>(server: &mut HostServer<F>, most: usize) -> bool {
    fn grow<E: Default>(table: &mut Vec<E>, spare: usize, most: usize) -> bool {
        let grows = spare < SPARE_SLOTS / 2 && table.len() < most;
        if grows {
            let more = SPARE_SLOTS.min(most - table.len());
            table.extend((0..more).map(|_| E::default()));
        }
        grows
    }
    let spare = server.free_at_end();
    let slots = grow(server.table_mut(), spare, most);
    let spare = server.free_parked_at_end();
    let parked = grow(server.parked_mut(), spare, most);
    slots || parked
}

/// Gives closing TLS connections a moment to send `close_notify` and see
/// the client close, then closes what is left.
fn drain_tls(stack: &mut HostStack, clock: &StdClock) {
    let until: Instant = clock.now().add_millis(TLS_DRAIN_MS);
    while stack.lingering() > 0 && clock.now() < until {
        stack.drive();
        let left = until.millis_since(clock.now()).min(50);
        if stack
            .inner_mut()
            .wait(Some(Duration::from_millis(left)))
            .is_err()
        {
            break;
        }
    }
    stack.abandon_lingering();
}

/// The TLS layer's settings: the certificate (loaded, or made now) and the
/// session-reuse policy.
fn tls_config(
    settings: &Settings,
    tls: &TlsSettings,
    clock: StdClock,
) -> Result<(TlsConfig, CertInfo), RunError> {
    let (chain, key, self_signed) = match &tls.cert {
        CertSource::Files { cert, key } => {
            let (chain, key) = load_pem(cert, key)?;
            (chain, key, false)
        }
        CertSource::SelfSigned => {
            let made = ferry_tls::self_signed::generate(&certificate_names(settings, tls))
                .map_err(|e| startup(format!("cannot make a self-signed certificate: {e}")))?;
            (vec![made.cert], made.key, true)
        }
    };
    let fingerprint = chain
        .first()
        .map(|c| ferry_tls::self_signed::fingerprint(c))
        .unwrap_or_default();
    let config = server_config(chain, key, Arc::new(ClockTime(clock)))
        .map_err(|e| startup(format!("TLS certificate or key refused: {e}")))?
        .require_session_reuse(tls.require_reuse)
        // Idle FTPS sessions hold no record buffer (a host has many).
        .release_idle_buffers(true);
    Ok((
        config,
        CertInfo {
            fingerprint,
            self_signed,
        },
    ))
}

/// The crypto provider TLS runs on: `ring` (audited; assembly AES-GCM and
/// ChaCha20 on x86-64 and ARM) with the `ring` feature, as built by
/// default; else the pure-Rust RustCrypto provider (builds where no C
/// compiler for the target is at hand).
pub const TLS_PROVIDER: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "rustls-rustcrypto"
};

/// Serves `chain` with `key` (RSA, ECDSA or Ed25519), TLS 1.2 and 1.3,
/// through [`TLS_PROVIDER`].
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    time: Arc<ClockTime<StdClock>>,
) -> Result<TlsConfig, ferry_tls::rustls::Error> {
    #[cfg(feature = "ring")]
    return TlsConfig::with_provider(
        ferry_tls::rustls::crypto::ring::default_provider(),
        chain,
        key,
        time,
    );
    #[cfg(not(feature = "ring"))]
    TlsConfig::from_der(chain, key, time)
}

/// Reads a PEM certificate chain and its PEM private key.
fn load_pem(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), RunError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| startup(format!("cannot read {}: {e}", path.display())))
    };
    let cert_pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| startup(format!("{}: not a PEM certificate: {e:?}", cert.display())))?;
    if chain.is_empty() {
        return Err(startup(format!(
            "{}: no \"BEGIN CERTIFICATE\" block",
            cert.display()
        )));
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        startup(format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e:?}",
            key.display()
        ))
    })?;
    Ok((chain, key_der))
}

/// The names a self-signed certificate is made for: `localhost`, the
/// loopback addresses and every concrete address ferryd listens on.
fn certificate_names(settings: &Settings, tls: &TlsSettings) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    for addr in settings.listen.iter().chain(&tls.implicit_listen) {
        let ip = addr.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    names
}

/// Prints where `ferryd` serves and listens and how to log in, and flushes
/// (tests and scripts read these lines from a pipe).
fn announce(
    settings: &Settings,
    root: &str,
    listening: &[SocketAddr],
    implicit: &[SocketAddr],
    cert: Option<&CertInfo>,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "ferryd {} serving {root}", env!("CARGO_PKG_VERSION"))?;
    for addr in listening {
        writeln!(out, "listening on ftp://{addr}")?;
    }
    for addr in implicit {
        writeln!(out, "listening on ftps://{addr} (implicit TLS)")?;
    }
    if let Some(cert) = cert {
        writeln!(out, "{}", tls_line(settings, cert))?;
    }
    writeln!(out, "{}", login_line(settings, listening.first().copied()))?;
    out.flush()
}

/// What TLS offers, in one line, with the certificate's fingerprint.
fn tls_line(settings: &Settings, cert: &CertInfo) -> String {
    let policy = if settings.engine.require_tls_login {
        "required for login and data"
    } else {
        "optional"
    };
    let kind = if cert.self_signed {
        "self-signed certificate"
    } else {
        "certificate"
    };
    format!(
        "TLS: AUTH TLS on every listener, {policy}; {kind} SHA-256 fingerprint {}; \
         crypto: {TLS_PROVIDER}",
        cert.fingerprint
    )
}

/// How to log in, in one line; the curl example connects to `addr`.
fn login_line(settings: &Settings, addr: Option<SocketAddr>) -> String {
    if let Some((name, password)) = &settings.generated {
        let addr = reachable(addr.unwrap_or(crate::settings::DEFAULT_LISTEN));
        // With TLS required, the example must ask for it (and, with a
        // self-signed certificate, skip the CA check: compare fingerprints).
        let curl = match &settings.tls {
            Some(tls) if settings.engine.require_tls_login => match tls.cert {
                CertSource::SelfSigned => "curl --ssl-reqd --insecure",
                CertSource::Files { .. } => "curl --ssl-reqd",
            },
            _ => "curl",
        };
        return format!(
            "login: user \"{name}\", password \"{pw}\" (e.g. {curl} ftp://{name}:{pw}@{addr}/)",
            pw = password.0
        );
    }
    let mut parts = Vec::new();
    if !settings.users.is_empty() {
        let names: Vec<String> = settings
            .users
            .iter()
            .map(|u| format!("{:?}", u.name))
            .collect();
        parts.push(format!("users {}", names.join(", ")));
    }
    if settings.anonymous {
        parts.push("anonymous (read-only)".to_string());
    }
    format!("login: {}", parts.join("; "))
}

/// An address a local client can connect to: "any" becomes loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Creates `home` (canonical, e.g. `/a/b`) and its parents inside the served
/// file system, so it goes through the same confinement as FTP clients do.
pub fn create_home<F: FileSystem>(fs: &mut F, home: &str) -> Result<(), String> {
    let mut end = 0;
    while end < home.len() {
        end = home[end + 1..]
            .find('/')
            .map_or(home.len(), |i| end + 1 + i);
        let dir = &home[..end];
        match fs.metadata(dir.as_bytes()) {
            Ok(meta) if meta.kind == EntryKind::Dir => {}
            Ok(_) => return Err(format!("{dir} is not a directory")),
            Err(e) if e.fs_kind() == ErrorKind::NotFound => {
                fs.create_dir(dir.as_bytes())
                    .map_err(|e| format!("cannot create {dir}: {e:?}"))?;
            }
            Err(e) => return Err(format!("cannot examine {dir}: {e:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;
    use crate::cli::Password;
    use crate::settings::UserSpec;

    fn settings(listen: &[&str]) -> Settings {
        Settings {
            root: "r".into(),
            image: None,
            listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
            users: vec![],
            generated: None,
            anonymous: false,
            tls: None,
            engine: ferry_core::Config::default(),
            workers: 1,
            busy_poll: Duration::ZERO,
        }
    }

    #[test]
    fn tls_line_names_the_policy_and_the_fingerprint() {
        let mut s = settings(&["127.0.0.1:21"]);
        let cert = CertInfo {
            fingerprint: "AB:CD".into(),
            self_signed: true,
        };
        assert_eq!(
            tls_line(&s, &cert),
            format!(
                "TLS: AUTH TLS on every listener, optional; self-signed certificate SHA-256 \
                 fingerprint AB:CD; crypto: {TLS_PROVIDER}"
            )
        );
        assert_eq!(TLS_PROVIDER, "ring", "the default build's provider");
        s.engine.require_tls_login = true;
        s.tls = Some(TlsSettings {
            cert: CertSource::SelfSigned,
            implicit_listen: vec![],
            require_reuse: false,
        });
        assert!(tls_line(&s, &cert).contains("required for login and data"));
        s.generated = Some(("ferry".into(), Password("pw".into())));
        assert!(login_line(&s, Some(s.listen[0])).contains("curl --ssl-reqd --insecure ftp://"));
    }

    #[test]
    fn self_signed_names_cover_loopback_and_listen_addresses() {
        let s = settings(&["0.0.0.0:21", "192.0.2.7:21"]);
        let tls = TlsSettings {
            cert: CertSource::SelfSigned,
            implicit_listen: vec!["[2001:db8::1]:990".parse().unwrap()],
            require_reuse: false,
        };
        assert_eq!(
            certificate_names(&s, &tls),
            ["localhost", "127.0.0.1", "::1", "192.0.2.7", "2001:db8::1"]
        );
    }

    #[test]
    fn pem_files_load_and_bad_ones_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let made = ferry_tls::self_signed::generate(&["localhost".into()]).unwrap();
        let pem = |label: &str, der: &[u8]| {
            use std::fmt::Write as _;
            let b64 = base64_encode(der);
            let mut text = format!("-----BEGIN {label}-----\n");
            for line in b64.as_bytes().chunks(64) {
                let _ = writeln!(text, "{}", std::str::from_utf8(line).unwrap());
            }
            text + &format!("-----END {label}-----\n")
        };
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, pem("CERTIFICATE", &made.cert)).unwrap();
        std::fs::write(&key, pem("PRIVATE KEY", made.key.secret_der())).unwrap();
        let (chain, _) = load_pem(&cert, &key).unwrap();
        assert_eq!(chain, vec![made.cert.clone()]);
        let err = |r: Result<_, RunError>| match r {
            Err(RunError::Startup(e)) => e.0,
            _ => panic!("expected a startup error"),
        };
        assert!(err(load_pem(&key, &key)).contains("BEGIN CERTIFICATE"));
        assert!(err(load_pem(&cert, &cert)).contains("no PEM private key"));
        assert!(err(load_pem(&dir.path().join("nope"), &key)).contains("cannot read"));
    }

    /// Standard base64 with padding (for writing PEM in a test).
    fn base64_encode(data: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn login_line_shows_the_generated_password_and_a_curl_example() {
        let mut s = settings(&["0.0.0.0:2121"]);
        s.generated = Some(("ferry".into(), Password("Xk3abc".into())));
        assert_eq!(
            login_line(&s, Some(s.listen[0])),
            "login: user \"ferry\", password \"Xk3abc\" (e.g. curl ftp://ferry:Xk3abc@127.0.0.1:2121/)"
        );
        let mut s6 = settings(&["[::]:21"]);
        s6.generated = s.generated.clone();
        assert!(login_line(&s6, Some(s6.listen[0])).contains("@[::1]:21/"));
    }

    #[test]
    fn login_line_lists_configured_users_not_passwords() {
        let mut s = settings(&["127.0.0.1:21"]);
        s.users.push(UserSpec {
            name: "alice".into(),
            secret: Secret::Plain(Password("hunter2".into())),
            home: "/".into(),
            read_only: false,
        });
        s.anonymous = true;
        let line = login_line(&s, None);
        assert_eq!(line, "login: users \"alice\"; anonymous (read-only)");
    }

    #[test]
    fn windows_roots_are_shown_without_the_verbatim_prefix() {
        assert_eq!(without_verbatim_prefix(r"\\?\Z:\tmp\root"), r"Z:\tmp\root");
        assert_eq!(
            without_verbatim_prefix(r"\\?\UNC\nas\ftp\root"),
            r"\\nas\ftp\root"
        );
        // Device paths and everything else stay as they are.
        assert_eq!(
            without_verbatim_prefix(r"\\?\Volume{x}\a"),
            r"\\?\Volume{x}\a"
        );
        assert_eq!(without_verbatim_prefix("/srv/ftp"), "/srv/ftp");
    }

    #[test]
    fn homes_are_created_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut fs = StdDir::open_or_create(dir.path()).unwrap();
        create_home(&mut fs, "/").unwrap();
        create_home(&mut fs, "/a/b").unwrap();
        create_home(&mut fs, "/a/b").unwrap();
        assert!(dir.path().join("a/b").is_dir());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(create_home(&mut fs, "/f")
            .unwrap_err()
            .contains("not a directory"));
    }
}

//! Runs the engine on the host: opens the root directory or mounts the image
//! file, listens, announces where and how to log in, then polls until Ctrl-C.
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::server::ListenError;
use ferry_core::Server;
#[cfg(any(feature = "littlefs", feature = "fat"))]
use ferry_fs::image::WithFileSystem;
use ferry_fs::std_dir::StdDir;
use ferry_fs::{EntryKind, Error as _, ErrorKind, FileSystem};
use ferry_net::std_stack::{StdClock, StdStack};
use ferry_net::Clock;
use tracing::{error, info};

use crate::auth::UserTable;
use crate::observer::LogObserver;
#[cfg(any(feature = "littlefs", feature = "fat"))]
use crate::settings::ImageKind;
use crate::settings::{Settings, StartupError, SESSION_SLOTS};

/// Bytes of the transfer buffer all sessions share.
pub const TRANSFER_BUFFER: usize = 64 * 1024;

/// The server as `ferryd` compiles it, over the file system `F`.
type HostServer<F> = Server<StdStack, F, SESSION_SLOTS, TRANSFER_BUFFER>;

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
        return serve(&settings, &mut fs, &root.display().to_string());
    };
    #[cfg(any(feature = "littlefs", feature = "fat"))]
    {
        let name = match image.kind {
            ImageKind::LittleFs => "littlefs",
            ImageKind::Fat => "FAT",
        };
        let storage = format!("{name} image {}", image.path.display());
        let serving = Serving {
            settings: &settings,
            storage: &storage,
        };
        let mounted = match image.kind {
            #[cfg(feature = "littlefs")]
            ImageKind::LittleFs => ferry_fs::image::with_littlefs(&image.path, image.size, serving),
            #[cfg(feature = "fat")]
            ImageKind::Fat => ferry_fs::image::with_fat(&image.path, image.size, serving),
            #[allow(unreachable_patterns)]
            _ => return Err(startup(format!("ferryd was built without {name} support"))),
        };
        mounted.map_err(|e| startup(format!("{storage}: {e}")))?
    }
    #[cfg(not(any(feature = "littlefs", feature = "fat")))]
    Err(startup(format!(
        "cannot serve {}: ferryd was built without image support (features littlefs, fat)",
        image.path.display()
    )))
}

/// The serving loop, lent a mounted image by `ferry_fs::image`.
#[cfg(any(feature = "littlefs", feature = "fat"))]
struct Serving<'a> {
    settings: &'a Settings,
    storage: &'a str,
}

#[cfg(any(feature = "littlefs", feature = "fat"))]
impl WithFileSystem for Serving<'_> {
    type Output = Result<(), RunError>;

    fn run<F: FileSystem>(self, fs: &mut F) -> Result<(), RunError> {
        serve(self.settings, fs, self.storage)
    }
}

/// Serves `fs` (described as `storage` at start) until Ctrl-C or SIGTERM.
fn serve<F: FileSystem>(settings: &Settings, fs: &mut F, storage: &str) -> Result<(), RunError> {
    for user in &settings.users {
        create_home(fs, &user.home)
            .map_err(|e| startup(format!("user {:?}: home {}: {e}", user.name, user.home)))?;
    }
    let mut users = UserTable::new(
        &settings.users,
        settings.anonymous,
        settings.engine.read_only,
    );

    let mut stack =
        StdStack::new().map_err(|e| startup(format!("cannot set up networking: {e}")))?;
    let clock = StdClock::new();

    // Boxed: the session table and transfer buffer are too big for a stack frame.
    let mut server: Box<HostServer<F>> = Box::new(Server::new(settings.engine));
    for addr in &settings.listen {
        server.listen(&mut stack, *addr).map_err(|e| match e {
            ListenError::TooMany => startup(format!("cannot listen on {addr}: too many listeners")),
            ListenError::Stack(e) => startup(format!("cannot listen on {addr}: {e}")),
        })?;
    }
    // The bound addresses: with port 0 the system picked the port.
    let mut bound: Vec<SocketAddr> = server.listen_addrs(&mut stack).collect();
    if bound.len() != settings.listen.len() {
        bound.clone_from(&settings.listen);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        let waker = stack
            .waker()
            .map_err(|e| startup(format!("cannot set up the Ctrl-C waker: {e}")))?;
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C while shutting down: leave at once.
                std::process::exit(130);
            }
            let _ = waker.wake();
        })
        .map_err(|e| startup(format!("cannot install the Ctrl-C handler: {e}")))?;
    }

    announce(settings, storage, &bound)
        .map_err(|e| RunError::Runtime(format!("cannot write to stdout: {e}")))?;
    info!(
        users = users.len(),
        anonymous = settings.anonymous,
        "serving"
    );

    let mut observer = LogObserver::new(SESSION_SLOTS);
    while !stop.load(Ordering::SeqCst) {
        let poll = server.poll(&mut stack, fs, &mut users, &clock, &mut observer);
        if poll.busy {
            continue;
        }
        let timeout = poll
            .deadline
            .map(|d| Duration::from_millis(d.millis_since(clock.now())));
        if timeout == Some(Duration::ZERO) {
            continue;
        }
        match stack.wait(timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error!("waiting for sockets failed: {e}");
                server.shutdown(&mut stack, fs);
                return Err(RunError::Runtime(format!(
                    "waiting for sockets failed: {e}"
                )));
            }
        }
    }
    info!(sessions = server.session_count(), "shutting down");
    server.shutdown(&mut stack, fs);
    info!("stopped");
    Ok(())
}

/// Prints where `ferryd` serves and listens and how to log in, and flushes
/// (tests and scripts read these lines from a pipe).
fn announce(settings: &Settings, root: &str, listening: &[SocketAddr]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "ferryd {} serving {root}", env!("CARGO_PKG_VERSION"))?;
    for addr in listening {
        writeln!(out, "listening on ftp://{addr}")?;
    }
    writeln!(out, "{}", login_line(settings, listening.first().copied()))?;
    out.flush()
}

/// How to log in, in one line; the curl example connects to `addr`.
fn login_line(settings: &Settings, addr: Option<SocketAddr>) -> String {
    if let Some((name, password)) = &settings.generated {
        let addr = reachable(addr.unwrap_or(crate::settings::DEFAULT_LISTEN));
        return format!(
            "login: user \"{name}\", password \"{pw}\" (e.g. curl ftp://{name}:{pw}@{addr}/)",
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
            engine: ferry_core::Config::default(),
        }
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

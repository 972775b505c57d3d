//! The server: a fixed table of sessions driven by one non-blocking
//! [`Server::poll`] over any embedded-nal stack.
use crate::auth::Authenticator;
use crate::config::Config;
use ferry_fs::FileSystem;
use ferry_net::{Clock, Instant, SocketAddr, TcpLocalAddr};

/// What [`Server::poll`] tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// Work was done and more may be ready: call `poll` again without waiting.
    pub busy: bool,
    /// Call `poll` again at this instant at the latest, or earlier when a
    /// socket becomes ready. `None`: only socket readiness matters.
    pub deadline: Option<Instant>,
}

/// Kinds of data transfer, for [`Event::Transfer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// RETR
    Download,
    /// STOR / STOU
    Upload,
    /// APPE
    Append,
    /// LIST, NLST, MLSD
    Listing,
}

/// Something worth logging, reported to an [`Observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A control connection was accepted into session slot `session`.
    Connected {
        /// Session slot.
        session: usize,
        /// The client's address.
        peer: SocketAddr,
    },
    /// A connection was refused with 421 (server full or per-IP limit).
    Refused {
        /// The client's address.
        peer: SocketAddr,
    },
    /// A command line arrived (the argument of `PASS` is replaced by `***`).
    Command {
        /// Session slot.
        session: usize,
        /// The line without CR LF.
        line: &'a [u8],
    },
    /// A login attempt finished.
    Login {
        /// Session slot.
        session: usize,
        /// The user name given.
        user: &'a [u8],
        /// Whether it succeeded.
        ok: bool,
    },
    /// A data transfer finished.
    Transfer {
        /// Session slot.
        session: usize,
        /// What kind.
        kind: TransferKind,
        /// The virtual path.
        path: &'a [u8],
        /// Bytes moved over the data connection.
        bytes: u64,
        /// Whether it completed (226) or failed/aborted.
        ok: bool,
    },
    /// The control connection closed.
    Disconnected {
        /// Session slot.
        session: usize,
    },
}

/// Receives [`Event`]s (e.g. to log them). `()` ignores them.
pub trait Observer {
    /// Called for each event, synchronously inside `poll`.
    fn event(&mut self, event: Event<'_>);
}

impl Observer for () {
    fn event(&mut self, _event: Event<'_>) {}
}

/// Most listening sockets a server holds (e.g. IPv4 and IPv6).
pub const MAX_LISTENERS: usize = 4;

/// Why [`Server::listen`] failed.
#[derive(Debug)]
pub enum ListenError<E> {
    /// Already [`MAX_LISTENERS`] listeners.
    TooMany,
    /// The stack refused.
    Stack(E),
}

/// An FTP server for up to `N` concurrent sessions, moving data through a
/// shared `B`-byte transfer buffer.
pub struct Server<S: TcpLocalAddr, F: FileSystem, const N: usize, const B: usize> {
    _p: core::marker::PhantomData<(S, F)>,
    config: Config,
}

impl<S: TcpLocalAddr, F: FileSystem, const N: usize, const B: usize> Server<S, F, N, B> {
    /// A server with no listeners yet.
    pub fn new(config: Config) -> Self {
        Server { _p: core::marker::PhantomData, config }
    }
    /// Starts listening for control connections on `addr`.
    pub fn listen(&mut self, stack: &mut S, addr: SocketAddr) -> Result<(), ListenError<S::Error>> {
        let _ = (stack, addr);
        todo!()
    }
    /// Makes bounded progress on every connection; see [`Poll`].
    pub fn poll<A: Authenticator, C: Clock, O: Observer>(
        &mut self,
        stack: &mut S,
        fs: &mut F,
        auth: &mut A,
        clock: &C,
        observer: &mut O,
    ) -> Poll {
        let _ = (stack, fs, auth, clock, observer);
        todo!()
    }
    /// Number of open control connections.
    pub fn session_count(&self) -> usize {
        todo!()
    }
    /// Sends `421` to every session, closes all sockets and listeners.
    pub fn shutdown(&mut self, stack: &mut S) {
        let _ = stack;
        todo!()
    }
    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

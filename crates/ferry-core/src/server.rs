//! The server: a fixed table of sessions driven by one non-blocking
//! [`Server::poll`] over any embedded-nal stack.
use crate::auth::Authenticator;
use crate::config::Config;
use crate::protocol::command::Command;
use crate::protocol::line::{LineBuffer, LineEvent};
use crate::session::{Action, Ctx, DataMode, Session, LINE_LEN, PATH_LEN};
use crate::transfer::{Phase, Pump};
use core::marker::PhantomData;
use ferry_fs::FileSystem;
use ferry_net::{nb, unmap, Clock, Instant, IpAddr, Ipv4Addr, SecureStack, SocketAddr};

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

/// Something worth logging, reported to an [`Observer`]. More kinds may
/// come (the feature `scale` adds some): match it with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A session was closed to make room for a new connection: one that
    /// had not logged in (with 421, the table being full), or one that was
    /// only sending its goodbye (which may be cut short); `Disconnected`
    /// follows.
    Evicted {
        /// Session slot.
        session: usize,
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
    /// An idle session left the table for the parked sessions (feature
    /// `scale`): its slot is free, and it is parked session `parked`
    /// until it is `Resumed`.
    #[cfg(feature = "scale")]
    Parked {
        /// Session slot it left.
        session: usize,
        /// Its index among the parked sessions.
        parked: usize,
    },
    /// A parked session came back into the table (a command arrived, its
    /// connection closed, or its idle time ran out).
    #[cfg(feature = "scale")]
    Resumed {
        /// Its index among the parked sessions, now free.
        parked: usize,
        /// Session slot it took.
        session: usize,
    },
    /// A parked session came back into the table by trading places with
    /// an idle one, as `Resumed` and `Parked` at once: the session of slot
    /// `session` is now parked at `parked`, and the one parked there is in
    /// slot `session`.
    #[cfg(feature = "scale")]
    Swapped {
        /// The slot they traded.
        session: usize,
        /// The parked entry they traded.
        parked: usize,
    },
}

/// Receives [`Event`]s (e.g. to log them). `()` ignores them.
pub trait Observer {
    /// Called for each event, synchronously inside `poll`.
    fn event(&mut self, event: Event<'_>);

    /// Sessions of other engine instances that share this one's
    /// `max_sessions` and that a newcomer here cannot make give way (a
    /// host running one server per core counts the logged-in ones from
    /// their events); asked only when a connection arrives. 0 by default.
    ///
    /// Asked only with the feature `scale`.
    fn sessions_elsewhere(&mut self) -> usize {
        0
    }
}

impl Observer for () {
    fn event(&mut self, _event: Event<'_>) {}
}

/// Most listening sockets a server holds (e.g. IPv4 and IPv6).
pub const MAX_LISTENERS: usize = 4;

/// Most connections one [`Server::poll`] accepts from one listener (the
/// rest wait for the next): so at most `MAX_LISTENERS * ACCEPTS_PER_POLL`
/// new sessions a poll.
pub const ACCEPTS_PER_POLL: usize = 8;

/// Why [`Server::listen`] failed.
#[derive(Debug)]
pub enum ListenError<E> {
    /// Already [`MAX_LISTENERS`] listeners.
    TooMany,
    /// The stack refused.
    Stack(E),
}

/// One entry of the session table: a control connection with its
/// sockets and session state (opaque). A host that sizes its table at
/// run time hands [`Server::with_table`] a table of free ones
/// ([`Slot::default`]) that it allocated (and may grow: see
/// `Server::table_mut` with the feature `scale`).
pub struct Slot<T, F: FileSystem> {
    /// The control connection; `None`: the slot is free. Slots are reused
    /// in place, never moved: each is too big for a small stack.
    ctrl: Option<T>,
    /// Command bytes received, apart from the session so that a command
    /// line is handled where it was received (no copy).
    line: LineBuffer<LINE_LEN>,
    session: Session<F>,
    /// The passive listener opened by PASV/EPSV.
    passive: Option<T>,
    /// Hosts: the passive listener of the session's last data connection,
    /// kept for its next PASV/EPSV (see [`KEEP_LISTENER_MS`]), and the port
    /// of `passive` or `kept`.
    #[cfg(feature = "scale")]
    kept: Option<T>,
    #[cfg(feature = "scale")]
    passive_port: u16,
    /// The data connection: accepted (passive) or being connected (active).
    data: Option<T>,
    /// Whether `data` is established.
    data_up: bool,
    /// AUTH TLS was answered: start TLS once the reply is flushed.
    #[cfg(feature = "tls")]
    tls_pending: bool,
    /// The parked entry this session last came back from (see [`Parked`]).
    #[cfg(feature = "scale")]
    parked_from: Option<usize>,
}

impl<T, F: FileSystem> Default for Slot<T, F> {
    /// A free slot.
    fn default() -> Self {
        Slot::free()
    }
}

impl<T, F: FileSystem> Slot<T, F> {
    /// A free slot (its session is set up again when a client takes it).
    const fn free() -> Self {
        Slot {
            ctrl: None,
            line: LineBuffer::new(),
            session: Session::idle(),
            passive: None,
            #[cfg(feature = "scale")]
            kept: None,
            #[cfg(feature = "scale")]
            passive_port: 0,
            data: None,
            data_up: false,
            #[cfg(feature = "tls")]
            tls_pending: false,
            #[cfg(feature = "scale")]
            parked_from: None,
        }
    }

    /// Makes this the free slot of [`Slot::free`], in place; what it held
    /// is forgotten (see [`Server::reset`]).
    fn reset(&mut self) {
        // Every field by name, so a new field cannot be forgotten here.
        let Slot {
            ctrl,
            line,
            session,
            passive,
            #[cfg(feature = "scale")]
            kept,
            #[cfg(feature = "scale")]
            passive_port,
            data,
            data_up,
            #[cfg(feature = "tls")]
            tls_pending,
            #[cfg(feature = "scale")]
            parked_from,
        } = self;
        core::mem::forget(ctrl.take());
        core::mem::forget(passive.take());
        #[cfg(feature = "scale")]
        {
            core::mem::forget(kept.take());
            *passive_port = 0;
        }
        core::mem::forget(data.take());
        *line = LineBuffer::new();
        // `Session::reset` drops the transfer it ends: forget it first.
        core::mem::forget(session.transfer.take());
        session.reset(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            Instant(0),
        );
        *data_up = false;
        #[cfg(feature = "tls")]
        {
            *tls_pending = false;
        }
        #[cfg(feature = "scale")]
        {
            *parked_from = None;
        }
    }
}

/// An idle logged-in session parked outside the session table (feature
/// `scale`): its control connection and the little state it keeps, a few
/// hundred bytes instead of a slot's buffers. A host that allocates its
/// table hands [`Server::with_table`]'s server a table of these too
/// (`Server::parked_mut`), so that idle sessions cost no slot.
pub struct Parked<T> {
    /// The control connection; `None`: free.
    ctrl: Option<T>,
    #[cfg(feature = "scale")]
    session: crate::session::ParkedState,
}

impl<T> Default for Parked<T> {
    /// A free entry.
    fn default() -> Self {
        Parked {
            ctrl: None,
            #[cfg(feature = "scale")]
            session: Default::default(),
        }
    }
}

/// An FTP server for up to `N` concurrent sessions, moving data through one
/// `B`-byte transfer buffer shared by all of them.
///
/// RAM: `size_of::<Server<..>>()` is the whole cost; it grows by one session
/// slot per unit of `N` (see `cargo xtask size`).
pub struct Server<
    S: SecureStack,
    F: FileSystem,
    const N: usize,
    const B: usize,
    T = [Slot<<S as ferry_net::TcpClientStack>::TcpSocket, F>; N],
    P = [Parked<<S as ferry_net::TcpClientStack>::TcpSocket>; 0],
> {
    config: Config,
    listeners: [Option<S::TcpSocket>; MAX_LISTENERS],
    /// The session table: `[Slot; N]` in place, or one the host made.
    slots: T,
    /// Idle sessions parked outside `slots` (feature `scale`; none without).
    parked: P,
    /// Entries of `parked` from this index on are free.
    #[cfg(feature = "scale")]
    parked_used: usize,
    /// Entries of `parked` before this index are taken.
    #[cfg(feature = "scale")]
    parked_hole: usize,
    /// The table's slots hold `F`'s files.
    fs: PhantomData<fn(&mut F)>,
    /// Slots from this index on are free: `poll` looks no further (a
    /// host's table may be far larger than the sessions open).
    #[cfg(feature = "scale")]
    used: usize,
    pub(crate) scratch: [u8; B],
    /// Where the command being handled resolves its path argument (one
    /// for all sessions: commands are handled one at a time).
    pub(crate) path: [u8; PATH_LEN],
    next_port: u16,
}

/// While an [`Authenticator`] checks a password in the background
/// ([`crate::AuthError::Pending`]), [`Server::poll`] asks for it again
/// within this many milliseconds (sooner if the authenticator wakes the
/// caller's loop).
pub const PENDING_LOGIN_POLL_MS: u64 = 10;

/// A parked session that has something to do but finds no free slot is
/// looked at again within this many milliseconds.
#[cfg(feature = "scale")]
const NO_SLOT_RETRY_MS: u64 = 1;

/// How long a host's session keeps the passive listener of its last data
/// connection for its next PASV/EPSV, in milliseconds of quiet: a client
/// that transfers file after file announces one port and skips six system
/// calls a transfer; an idle one closes it, and can park.
#[cfg(feature = "scale")]
const KEEP_LISTENER_MS: u64 = 1_000;

/// The sweeps of a pass over the session table on a host: first the
/// sessions with no transfer under way, then those with one, so that a
/// command (a NOOP, a PASV) is answered before the pass pumps the other
/// sessions' transfers, not after (NOOP p99 behind four downloads). A
/// session whose command starts a transfer in the first sweep is driven
/// again in the second. A board drives its few slots in one sweep.
#[cfg(feature = "scale")]
const SWEEPS: usize = 2;
/// The same: one sweep, every session in table order.
#[cfg(not(feature = "scale"))]
const SWEEPS: usize = 1;

/// Grace time for flushing a goodbye reply before the socket is closed anyway.
const CLOSE_GRACE_MS: u64 = 5_000;

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(match a {
        Some(a) if a < b => a,
        _ => b,
    })
}

impl<S: SecureStack, F: FileSystem, const N: usize, const B: usize> Server<S, F, N, B> {
    /// A server with no listeners yet.
    pub fn new(config: Config) -> Self {
        Server {
            next_port: config.passive_ports.0,
            config,
            listeners: [const { None }; MAX_LISTENERS],
            // Not `[const { None }; N]`: that copies a session-sized `None`
            // (mostly zeros) out of flash; `from_fn` writes the tags alone.
            slots: core::array::from_fn(|_| Slot::free()),
            parked: [],
            scratch: [0; B],
            path: [0; PATH_LEN],
            fs: PhantomData,
            #[cfg(feature = "scale")]
            used: 0,
            #[cfg(feature = "scale")]
            parked_used: 0,
            #[cfg(feature = "scale")]
            parked_hole: 0,
        }
    }
}

impl<S: SecureStack, F: FileSystem, const N: usize, const B: usize, T, P> Server<S, F, N, B, T, P>
where
    T: AsRef<[Slot<S::TcpSocket, F>]> + AsMut<[Slot<S::TcpSocket, F>]>,
    P: AsRef<[Parked<S::TcpSocket>]> + AsMut<[Parked<S::TcpSocket>]> + Default,
{
    /// A server with no listeners yet over `slots`, a session table of
    /// free slots ([`Slot::default`]) of any length: the host sizes it at
    /// run time and allocates it (`N` is then unused: write 0). The engine
    /// allocates nothing. With the feature `scale` the host may make it
    /// longer between polls (`Server::table_mut`).
    pub fn with_table(config: Config, slots: T) -> Self {
        Server {
            next_port: config.passive_ports.0,
            config,
            listeners: [const { None }; MAX_LISTENERS],
            slots,
            parked: P::default(),
            scratch: [0; B],
            path: [0; PATH_LEN],
            fs: PhantomData,
            #[cfg(feature = "scale")]
            used: 0,
            #[cfg(feature = "scale")]
            parked_used: 0,
            #[cfg(feature = "scale")]
            parked_hole: 0,
        }
    }

    /// Sessions the table holds (its length).
    pub fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// Makes this a new server with `config`, in place: the state
    /// [`Server::new`] builds, without building a whole server on the
    /// stack and moving it (it is far bigger than a small device's stack).
    /// A firmware keeps its server in a `static` and sets it up with this
    /// (see `boards/qemu-mps2-an385`).
    ///
    /// What the server held (listeners, connections, a transfer's open
    /// file) is forgotten, neither closed nor dropped: call
    /// [`Server::shutdown`] first on a server that has been serving. Of
    /// the old state only the lengths of the buffers it empties are read.
    pub fn reset(&mut self, config: Config) {
        // Every field by name, so a new field cannot be forgotten here.
        let Server {
            config: c,
            listeners,
            slots,
            scratch,
            path,
            next_port,
            fs: _,
            parked,
            #[cfg(feature = "scale")]
            used,
            #[cfg(feature = "scale")]
            parked_used,
            #[cfg(feature = "scale")]
            parked_hole,
        } = self;
        #[cfg(feature = "scale")]
        {
            *used = 0;
            *parked_used = 0;
            *parked_hole = 0;
        }
        for entry in parked.as_mut() {
            core::mem::forget(entry.ctrl.take());
        }
        *c = config;
        *next_port = config.passive_ports.0;
        for listener in listeners.iter_mut() {
            core::mem::forget(listener.take());
        }
        for slot in slots.as_mut() {
            slot.reset();
        }
        scratch.fill(0);
        path.fill(0);
    }

    /// Starts listening for control connections on `addr`.
    pub fn listen(&mut self, stack: &mut S, addr: SocketAddr) -> Result<(), ListenError<S::Error>> {
        let Some(free) = self.listeners.iter_mut().find(|l| l.is_none()) else {
            return Err(ListenError::TooMany);
        };
        let mut sock = stack.socket().map_err(ListenError::Stack)?;
        let bound = stack
            .bind_addr(&mut sock, addr)
            .and_then(|()| stack.listen(&mut sock));
        if let Err(e) = bound {
            let _ = stack.close(sock);
            return Err(ListenError::Stack(e));
        }
        *free = Some(sock);
        Ok(())
    }

    /// The local addresses of the listeners (e.g. to print the port chosen
    /// for port 0).
    pub fn listen_addrs<'a>(&'a self, stack: &'a mut S) -> impl Iterator<Item = SocketAddr> + 'a {
        self.listeners
            .iter()
            .flatten()
            .filter_map(move |l| stack.local_addr(l).ok())
    }

    /// Free slots at the end of the table, past the last one in use. A
    /// host that grows its table as sessions arrive ([`Server::table_mut`])
    /// keeps at least as many as one poll may fill
    /// (`MAX_LISTENERS * ACCEPTS_PER_POLL`).
    #[cfg(feature = "scale")]
    pub fn free_at_end(&self) -> usize {
        self.slots.as_ref().len().saturating_sub(self.used)
    }

    /// The session table, for a host that makes it longer between polls,
    /// so that its memory follows the sessions open rather than the most
    /// allowed: it may add free slots ([`Slot::default`]) at the end. The
    /// slots it holds must stay in their order (a slot's index is its
    /// session's number in [`Event`]s); none may be removed.
    #[cfg(feature = "scale")]
    pub fn table_mut(&mut self) -> &mut T {
        &mut self.slots
    }

    /// The table of parked sessions, for a host that makes it longer
    /// between polls (see [`Parked`]): it may add free entries
    /// ([`Parked::default`]) at the end; the entries it holds must stay in
    /// their order, and none may be removed. A session is parked only when
    /// a free entry is left, so a host that adds none gets none parked.
    #[cfg(feature = "scale")]
    pub fn parked_mut(&mut self) -> &mut P {
        &mut self.parked
    }

    /// Free entries at the end of the parked table, past the last in use.
    #[cfg(feature = "scale")]
    pub fn free_parked_at_end(&self) -> usize {
        self.parked.as_ref().len().saturating_sub(self.parked_used)
    }

    /// Sessions parked now (counted in [`Server::session_count`]).
    #[cfg(feature = "scale")]
    pub fn parked_count(&self) -> usize {
        let parked = self.parked.as_ref();
        let parked = parked.get(..self.parked_used).unwrap_or(parked);
        parked.iter().filter(|p| p.ctrl.is_some()).count()
    }

    /// Number of open control connections.
    pub fn session_count(&self) -> usize {
        let hot = self.live().iter().filter(|s| s.ctrl.is_some()).count();
        #[cfg(feature = "scale")]
        let hot = hot + self.parked_count();
        hot
    }

    /// The part of the table `poll` looks at: up to the highest slot in
    /// use with the feature `scale`, else all of it.
    fn live(&self) -> &[Slot<S::TcpSocket, F>] {
        let slots = self.slots.as_ref();
        #[cfg(feature = "scale")]
        let slots = slots.get(..self.used).unwrap_or(&[]);
        slots
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends `421` to every session, closes all sockets and listeners.
    pub fn shutdown(&mut self, stack: &mut S, fs: &mut F) {
        for (i, slot) in self.slots.as_mut().iter_mut().enumerate() {
            if slot.ctrl.is_some() {
                slot.session.out.clear();
                let _ = slot
                    .session
                    .end_transfer(fs, i, Some((426, b"Server shutting down.")))
                    .is_some();
                slot.session.out.reply(421, b"Server shutting down.");
                if let Some(ctrl) = slot.ctrl.as_mut() {
                    let _ = stack.send(ctrl, slot.session.out.pending());
                }
            }
            close_slot(stack, slot);
        }
        #[cfg(feature = "scale")]
        {
            for entry in self.parked.as_mut() {
                if let Some(ctrl) = entry.ctrl.take() {
                    send_and_close(stack, ctrl, b"421 Server shutting down.\r\n");
                }
            }
            self.parked_used = 0;
            self.parked_hole = 0;
        }
        for l in self.listeners.iter_mut() {
            if let Some(sock) = l.take() {
                let _ = stack.close(sock);
            }
        }
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
        let now = clock.now();
        #[cfg(feature = "mtime")]
        let unix_now = clock.unix_time();
        let mut busy = false;
        let config = self.config;
        let table = self.slots.as_ref().len();
        #[cfg(not(feature = "scale"))]
        let limit = match usize::from(config.max_sessions) {
            0 => table,
            m => m.min(table),
        };
        // Sessions of other engine instances sharing `max_sessions`.
        #[cfg(feature = "scale")]
        let mut elsewhere = None;
        for l in self.listeners.iter_mut().flatten() {
            for _ in 0..ACCEPTS_PER_POLL {
                match stack.accept(l) {
                    Ok((sock, peer)) => {
                        busy = true;
                        // The other instances' sessions count against
                        // `max_sessions`, not against this table's length
                        // (a host may grow its table as sessions arrive).
                        // Parked sessions count too (`admit` counts them).
                        #[cfg(feature = "scale")]
                        let limit = match usize::from(config.max_sessions) {
                            0 => table + self.parked.as_ref().len(),
                            m => m,
                        }
                        .saturating_sub(
                            *elsewhere.get_or_insert_with(|| observer.sessions_elsewhere()),
                        );
                        admit(
                            stack,
                            self.slots.as_mut(),
                            #[cfg(feature = "scale")]
                            &mut self.used,
                            #[cfg(feature = "scale")]
                            self.parked.as_ref().get(..self.parked_used).unwrap_or(&[]),
                            &config,
                            limit,
                            sock,
                            peer,
                            now,
                            observer,
                        );
                    }
                    Err(_) => break,
                }
            }
        }
        let mut deadline = None;
        // Parked sessions with something to do come back first, so that
        // their command is answered in this pass, not the next.
        #[cfg(feature = "scale")]
        {
            busy |= wake_parked(
                stack,
                self.slots.as_mut(),
                &mut self.used,
                self.parked
                    .as_mut()
                    .get_mut(..self.parked_used)
                    .unwrap_or(&mut []),
                &mut self.parked_hole,
                &mut self.scratch,
                &config,
                now,
                &mut deadline,
                observer,
            );
        }
        for _sweep in 0..SWEEPS {
            let live = self.slots.as_mut();
            #[cfg(feature = "scale")]
            let live = live.get_mut(..self.used).unwrap_or(&mut []);
            for (i, slot) in live.iter_mut().enumerate() {
                if slot.ctrl.is_none() {
                    continue;
                }
                #[cfg(feature = "scale")]
                if (_sweep == 1) != slot.session.transfer.is_some() {
                    continue;
                }
                let mut env = Env {
                    stack: &mut *stack,
                    fs: &mut *fs,
                    auth: &mut *auth,
                    config: &config,
                    now,
                    #[cfg(feature = "mtime")]
                    unix_now,
                    slot: i,
                    scratch: &mut self.scratch,
                    path: &mut self.path,
                    next_port: &mut self.next_port,
                };
                let (progress, keep) = drive(slot, &mut env, observer);
                busy |= progress;
                if !keep {
                    if let Some((kind, path, bytes, _)) =
                        slot.session
                            .end_transfer(fs, i, Some((426, b"Connection closed.")))
                    {
                        observer.event(Event::Transfer {
                            session: i,
                            kind,
                            path,
                            bytes,
                            ok: false,
                        });
                    }
                    close_slot(stack, slot);
                    observer.event(Event::Disconnected { session: i });
                    continue;
                }
                #[cfg(feature = "scale")]
                if slot.kept.is_some() && slot.session.transfer.is_none() {
                    let until = slot.session.last_activity.add_millis(KEEP_LISTENER_MS);
                    if now < until {
                        deadline = earliest(deadline, until);
                    } else if let Some(l) = slot.kept.take() {
                        let _ = stack.close(l);
                    }
                }
                #[cfg(feature = "scale")]
                if park(
                    slot,
                    i,
                    self.parked.as_mut(),
                    (&mut self.parked_used, &mut self.parked_hole),
                    observer,
                ) {
                    continue;
                }
                let s = &slot.session;
                if let Some(t) = s.login_delay(&config) {
                    deadline = earliest(deadline, t);
                }
                if let Some(t) = s.login_deadline(&config) {
                    deadline = earliest(deadline, t);
                }
                if s.checking() {
                    deadline = earliest(deadline, now.add_millis(PENDING_LOGIN_POLL_MS));
                }
                let timer = match s.transfer.as_ref() {
                    Some(t) => t.last_progress.add_millis(config.data_timeout_ms),
                    None if s.closing => s.last_activity.add_millis(CLOSE_GRACE_MS),
                    None => s.last_activity.add_millis(config.idle_timeout_ms),
                };
                deadline = earliest(deadline, timer);
            }
        }
        #[cfg(feature = "scale")]
        {
            self.used = end_of_taken(self.slots.as_ref(), self.used, |s| s.ctrl.is_some());
            let parked = self.parked.as_ref();
            self.parked_used = end_of_taken(parked, self.parked_used, |p| p.ctrl.is_some());
        }
        Poll { busy, deadline }
    }
}

/// What [`drive`] needs besides the slot.
struct Env<'a, S, F, A> {
    stack: &'a mut S,
    fs: &'a mut F,
    auth: &'a mut A,
    config: &'a Config,
    now: Instant,
    #[cfg(feature = "mtime")]
    unix_now: Option<u64>,
    slot: usize,
    scratch: &'a mut [u8],
    path: &'a mut [u8; PATH_LEN],
    next_port: &'a mut u16,
}

#[allow(clippy::too_many_arguments)]
// Out of line: inlined, its locals would add to `poll`'s frame while
// `drive` runs (`cargo xtask size` measures the stack).
#[inline(never)]
fn admit<S: SecureStack, F: FileSystem, O: Observer>(
    stack: &mut S,
    slots: &mut [Slot<S::TcpSocket, F>],
    #[cfg(feature = "scale")] used: &mut usize,
    #[cfg(feature = "scale")] parked: &[Parked<S::TcpSocket>],
    config: &Config,
    limit: usize,
    sock: S::TcpSocket,
    peer: SocketAddr,
    now: Instant,
    observer: &mut O,
) {
    let peer = SocketAddr::new(unmap(peer.ip()), peer.port());
    // A session that is closing (it has answered QUIT, or timed out) no
    // longer counts against the table or its address.
    let mut in_use = 0;
    let mut same_ip = 0;
    let live: &[_] = slots;
    // Past `used`, every slot is free.
    #[cfg(feature = "scale")]
    let live = live.get(..*used).unwrap_or(live);
    for s in live
        .iter()
        .filter(|s| s.ctrl.is_some() && !s.session.closing)
    {
        in_use += 1;
        same_ip += usize::from(s.session.peer == peer.ip());
    }
    #[cfg(feature = "scale")]
    for p in parked.iter().filter(|p| p.ctrl.is_some()) {
        in_use += 1;
        same_ip += usize::from(p.session.peer == peer.ip());
    }
    let per_ip_full = config.max_per_ip != 0 && same_ip >= usize::from(config.max_per_ip);
    let target = if per_ip_full {
        None
    } else if in_use < limit {
        // A free slot, or else one whose session only flushes its goodbye.
        let free = live.iter().position(|s| s.ctrl.is_none());
        #[cfg(feature = "scale")]
        let free = free.or((live.len() < slots.len()).then_some(live.len()));
        free.or_else(|| live.iter().position(|s| s.session.closing))
    } else {
        victim(live)
    };
    let Some((i, slot)) = target.and_then(|i| slots.get_mut(i).map(|s| (i, s))) else {
        let text: &[u8] = if per_ip_full {
            b"421 Too many connections from your address.\r\n"
        } else {
            b"421 Too many users, try again later.\r\n"
        };
        send_and_close(stack, sock, text);
        observer.event(Event::Refused { peer });
        return;
    };
    if let Some(mut old) = slot.ctrl.take() {
        // What it was sending first (a goodbye, or a reply cut in the
        // middle, which must not run into the 421), then the eviction's
        // 421 if that went out whole.
        observer.event(Event::Evicted { session: i });
        let pending = slot.session.out.pending();
        let whole = pending.is_empty() || stack.send(&mut old, pending).ok() == Some(pending.len());
        let text: &[u8] = if slot.session.closing || !whole {
            b""
        } else {
            b"421 Server full; closing a connection not logged in.\r\n"
        };
        send_and_close(stack, old, text);
        close_slot(stack, slot);
        observer.event(Event::Disconnected { session: i });
    }
    // Reused in place: a slot is too big to build on the stack.
    slot.line.clear();
    slot.session.reset(peer, now);
    // An implicit-TLS listener's connections are protected from the
    // start, data connections included (RFC 4217 4.1, FTPS practice).
    #[cfg(feature = "tls")]
    {
        let tls = stack.is_tls(&sock);
        slot.session.tls = tls;
        slot.session.prot_private = tls;
        slot.tls_pending = false;
    }
    slot.data_up = false;
    slot.ctrl = Some(sock);
    #[cfg(feature = "scale")]
    {
        *used = (*used).max(i + 1);
    }
    observer.event(Event::Connected { session: i, peer });
}

/// Where the entries of `table[..used]` that are `taken` end: `used`, less
/// the free entries at its end.
#[cfg(feature = "scale")]
fn end_of_taken<E>(table: &[E], used: usize, taken: impl Fn(&E) -> bool) -> usize {
    let in_use = table.get(..used).unwrap_or(table);
    in_use.iter().rposition(taken).map_or(0, |last| last + 1)
}

/// What the session of `slot` keeps when parked, if it is idle (see
/// `Session::park`) with nothing buffered or open beside its control
/// connection.
#[cfg(feature = "scale")]
fn parkable<T, F: FileSystem>(slot: &Slot<T, F>) -> Option<crate::session::ParkedState> {
    #[cfg(feature = "tls")]
    let tls_pending = slot.tls_pending;
    #[cfg(not(feature = "tls"))]
    let tls_pending = false;
    let quiet = slot.ctrl.is_some()
        && slot.passive.is_none()
        && slot.kept.is_none()
        && slot.data.is_none()
        && !tls_pending
        && slot.line.is_clear();
    quiet.then(|| slot.session.park()).flatten()
}

/// Parks the session of `slot` (session `i`) in a free entry of `parked`
/// if it is [`parkable`]; true if it did.
#[cfg(feature = "scale")]
fn park<T, F: FileSystem, O: Observer>(
    slot: &mut Slot<T, F>,
    i: usize,
    parked: &mut [Parked<T>],
    (parked_used, parked_hole): (&mut usize, &mut usize),
    observer: &mut O,
) -> bool {
    let Some(state) = parkable(slot) else {
        return false;
    };
    // The entry it last left is likely free: a session that parks after
    // each command finds it at once. Else the first free one, looked for
    // from where all before are known to be taken.
    let last = slot
        .parked_from
        .filter(|&j| parked.get(j).is_some_and(|p| p.ctrl.is_none()));
    let hole = *parked_hole;
    let first = || {
        let rest = parked.get(hole..)?;
        rest.iter().position(|p| p.ctrl.is_none()).map(|k| hole + k)
    };
    let Some(j) = last.or_else(first) else {
        *parked_hole = parked.len();
        return false;
    };
    // All before `j` are taken if it was the first free one found, or the
    // hole itself.
    let hole_after = if last.is_none() || j == hole {
        j + 1
    } else {
        hole
    };
    let Some(entry) = parked.get_mut(j) else {
        return false;
    };
    entry.session = state;
    entry.ctrl = slot.ctrl.take();
    *parked_used = (*parked_used).max(j + 1);
    *parked_hole = hole_after;
    observer.event(Event::Parked {
        session: i,
        parked: j,
    });
    true
}

/// Brings parked sessions back into slots of `slots`: one whose control
/// connection has bytes (they go into the slot's command buffer), has
/// closed or failed, or whose idle time is over; the others add their
/// idle deadline to `deadline`. It takes a free slot, or else trades
/// places with an idle session of the table (`Event::Swapped`), so that a
/// table full of idle sessions whose parked entries are all taken cannot
/// shut the parked ones out. True if any came back (`poll` drives its
/// slot next, in the same pass). One that finds neither waits for the
/// next poll.
#[cfg(feature = "scale")]
#[allow(clippy::too_many_arguments)]
fn wake_parked<S: SecureStack, F: FileSystem, O: Observer>(
    stack: &mut S,
    slots: &mut [Slot<S::TcpSocket, F>],
    used: &mut usize,
    parked: &mut [Parked<S::TcpSocket>],
    parked_hole: &mut usize,
    scratch: &mut [u8],
    config: &Config,
    now: Instant,
    deadline: &mut Option<Instant>,
    observer: &mut O,
) -> bool {
    let mut busy = false;
    let buf_len = scratch.len().min(LINE_LEN);
    // Slots before `from` are taken; `swappable`: a slot may hold an idle
    // session to trade with (looked for only when none is free).
    let mut from = 0;
    let mut swappable = true;
    for (j, entry) in parked.iter_mut().enumerate() {
        let Some(ctrl) = entry.ctrl.as_mut() else {
            continue;
        };
        let idle_end = entry
            .session
            .last_activity
            .add_millis(config.idle_timeout_ms);
        // A free slot, or an idle session to trade places with; else look
        // again shortly, without reading, so that the bytes wait in the
        // connection (the host grows its table, or a session leaves).
        let rest = slots.get(from..).unwrap_or(&[]);
        let free = rest.iter().position(|s| s.ctrl.is_none()).map(|k| from + k);
        from = free.unwrap_or(slots.len());
        let idle = || slots.iter().position(|s| parkable(s).is_some());
        let Some(i) = free.or_else(|| swappable.then(idle).flatten()) else {
            swappable = false;
            *deadline = earliest(*deadline, now.add_millis(NO_SLOT_RETRY_MS));
            continue;
        };
        let buf = scratch.get_mut(..buf_len).unwrap_or(&mut []);
        let (got, eof) = match stack.receive(ctrl, buf) {
            Ok(0) | Err(nb::Error::Other(_)) => (0, true),
            Ok(n) => (n, false),
            Err(nb::Error::WouldBlock) if now >= idle_end => (0, false),
            Err(nb::Error::WouldBlock) => {
                *deadline = earliest(*deadline, idle_end);
                continue;
            }
        };
        let Some(slot) = slots.get_mut(i) else {
            continue;
        };
        let incoming = core::mem::take(&mut entry.session);
        let incoming_ctrl = entry.ctrl.take();
        let swapped = match parkable(slot) {
            Some(outgoing) if free.is_none() => {
                entry.session = outgoing;
                entry.ctrl = slot.ctrl.take();
                true
            }
            _ => {
                from = i + 1;
                *parked_hole = (*parked_hole).min(j);
                false
            }
        };
        slot.line.clear();
        if let (Some(to), Some(got)) = (slot.line.spare().get_mut(..got), buf.get(..got)) {
            to.copy_from_slice(got);
        }
        slot.line.filled(got);
        slot.session.resume(&incoming);
        slot.data_up = false;
        #[cfg(feature = "tls")]
        {
            slot.tls_pending = false;
        }
        slot.parked_from = Some(j);
        slot.ctrl = incoming_ctrl;
        *used = (*used).max(i + 1);
        observer.event(if swapped {
            Event::Swapped {
                session: i,
                parked: j,
            }
        } else {
            Event::Resumed {
                parked: j,
                session: i,
            }
        });
        // Closed or failed: nothing was left to answer, so it ends here.
        if eof {
            close_slot(stack, slot);
            observer.event(Event::Disconnected { session: i });
        }
        busy = true;
    }
    busy
}

/// The session a new connection evicts when the table is full: one that
/// has not logged in, from the address with most such sessions (so that a
/// flood from a few addresses pushes out its own connections first, not a
/// newcomer's), the oldest of those, and of equals the one with most
/// failed logins. Logged-in sessions are never evicted.
fn victim<T, F: FileSystem>(slots: &[Slot<T, F>]) -> Option<usize> {
    let waiting = |s: &Slot<T, F>| s.ctrl.is_some() && !s.session.closing && !s.session.logged_in();
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| waiting(s))
        .min_by_key(|(_, s)| {
            let s = &s.session;
            let same_ip = slots
                .iter()
                .filter(|o| waiting(o) && o.session.peer == s.peer)
                .count();
            (
                core::cmp::Reverse(same_ip),
                s.since,
                core::cmp::Reverse(s.failures),
            )
        })
        .map(|(i, _)| i)
}

/// Sends what of `text` the socket takes at once (if any), and closes it.
// Size: the refusal and the eviction share it.
#[inline(never)]
fn send_and_close<S: SecureStack>(stack: &mut S, mut sock: S::TcpSocket, text: &[u8]) {
    if !text.is_empty() {
        let _ = stack.send(&mut sock, text);
    }
    let _ = stack.close(sock);
}

fn close_data<S: SecureStack, F: FileSystem>(stack: &mut S, slot: &mut Slot<S::TcpSocket, F>) {
    if let Some(d) = slot.data.take() {
        let _ = stack.close(d);
    }
    if let Some(p) = slot.passive.take() {
        let _ = stack.close(p);
    }
    slot.data_up = false;
}

/// Closes a slot's sockets and frees it, in place (a slot is too big to
/// move through the stack).
fn close_slot<S: SecureStack, F: FileSystem>(stack: &mut S, slot: &mut Slot<S::TcpSocket, F>) {
    close_data(stack, slot);
    #[cfg(feature = "scale")]
    if let Some(l) = slot.kept.take() {
        let _ = stack.close(l);
    }
    if let Some(ctrl) = slot.ctrl.take() {
        let _ = stack.close(ctrl);
    }
}

/// Ends the transfer after its data connection is closed, and logs it.
fn finish_transfer<S: SecureStack, F: FileSystem, A, O: Observer>(
    slot: &mut Slot<S::TcpSocket, F>,
    env: &mut Env<'_, S, F, A>,
    failure: Option<(u16, &'static [u8])>,
    observer: &mut O,
) {
    close_data(env.stack, slot);
    // The idle timer was paused during the transfer; it restarts now.
    slot.session.last_activity = env.now;
    if let Some((kind, path, bytes, ok)) = slot.session.end_transfer(env.fs, env.slot, failure) {
        observer.event(Event::Transfer {
            session: env.slot,
            kind,
            path,
            bytes,
            ok,
        });
    }
    if slot.session.quit_after_transfer {
        slot.session.out.reply(221, b"Goodbye.");
        slot.session.closing = true;
    }
}

/// One session's share of a poll; returns (progress made, keep the session).
// Out of line, like `drive_data` and `next_command`: inlined into `poll`
// they make the whole of it larger (measured by `cargo xtask size`).
#[inline(never)]
fn drive<S: SecureStack, F: FileSystem, A: Authenticator, O: Observer>(
    slot: &mut Slot<S::TcpSocket, F>,
    env: &mut Env<'_, S, F, A>,
    observer: &mut O,
) -> (bool, bool) {
    let mut busy = false;
    // 1. Flush replies.
    if !flush(env.stack, slot, &mut busy) {
        return (busy, false);
    }
    let session = &mut slot.session;
    if session.closing {
        let grace_over = env.now.millis_since(session.last_activity) >= CLOSE_GRACE_MS;
        return (busy, !(session.out.is_empty() || grace_over));
    }
    // After `234`, the TLS handshake starts on the control connection. Bytes
    // that came in clear text after AUTH are dropped (no command injection).
    #[cfg(feature = "tls")]
    if slot.tls_pending && session.out.is_empty() {
        slot.tls_pending = false;
        slot.line.clear();
        let started = slot.ctrl.as_mut().map(|c| env.stack.start_tls(c, None));
        if !matches!(started, Some(Ok(()))) {
            return (true, false);
        }
        session.tls = true;
        busy = true;
    }
    // 2. A password the authenticator is still checking (the session
    // reads no command meanwhile); a failed login answers only after its
    // delay.
    if session.checking() {
        if let Some(result) = env.auth.poll_login(env.slot) {
            session.login_result(result);
            busy = true;
            if session.logged_in() {
                observer.event(Event::Login {
                    session: env.slot,
                    user: session.user_name(),
                    ok: true,
                });
            }
        }
    }
    if let Some(t) = session.login_delay(env.config) {
        if env.now >= t {
            observer.event(Event::Login {
                session: env.slot,
                user: session.user_name(),
                ok: false,
            });
            if session.login_delay_over(env.config) == Action::Close {
                return (true, true);
            }
            busy = true;
        }
    }
    // 3. The data connection and the transfer.
    busy |= drive_data(slot, env, observer);
    // A transfer's end goes out before the control connection is read.
    #[cfg(feature = "scale")]
    let _ = flush(env.stack, slot, &mut busy);
    // 4. Control input.
    let session = &mut slot.session;
    #[cfg(feature = "tls")]
    let tls_pending = slot.tls_pending;
    #[cfg(not(feature = "tls"))]
    let tls_pending = false;
    if !session.delayed && !session.eof && !tls_pending {
        let spare = slot.line.spare();
        let Some(ctrl) = slot.ctrl.as_mut() else {
            return (true, false);
        };
        if !spare.is_empty() {
            match env.stack.receive(ctrl, spare) {
                // End of stream: an upload in progress is cut; otherwise the
                // commands already received are still answered.
                Ok(0) if session.transfer.is_some() => return (true, false),
                Ok(0) => {
                    session.eof = true;
                    busy = true;
                }
                Ok(n) => {
                    slot.line.filled(n);
                    busy = true;
                }
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(_)) => return (true, false),
            }
        }
    }
    // 5. One command, once the previous reply is out.
    #[cfg(feature = "scale")]
    let idle_before = session.transfer.is_none();
    if session.out.is_empty() && !session.delayed {
        busy |= next_command(slot, env, observer);
        let session = &mut slot.session;
        if session.eof && session.transfer.is_none() && !slot.line.has_line() {
            session.closing = true;
        }
    }
    // 6. Idle timeout (paused while a transfer runs), and the login
    // timeout of a session that has not logged in.
    let session = &mut slot.session;
    if session.transfer.is_none() && !session.closing {
        let idle = env.now.millis_since(session.last_activity) >= env.config.idle_timeout_ms;
        let login = session
            .login_deadline(env.config)
            .is_some_and(|t| env.now >= t);
        if idle || login {
            let out = &mut session.out;
            out.start(421, false);
            out.push(if login { b"Login" } else { b"Idle" });
            out.push(b" timeout, closing control connection.");
            out.end_line();
            session.closing = true;
            session.last_activity = env.now;
            busy = true;
        }
    }
    // A transfer this command started moves now, not a pass later (hosts):
    // a small file's data and its 226 follow the 150 at once. A download's
    // 150 waits for its first bytes, so that 150 and 226 of a small file
    // leave in one segment; an upload's goes first, as its client waits
    // for it before sending.
    #[cfg(feature = "scale")]
    if let (true, Some(t)) = (idle_before, slot.session.transfer.as_ref()) {
        if t.kind == TransferKind::Upload || t.kind == TransferKind::Append {
            let _ = flush(env.stack, slot, &mut busy);
        }
        busy |= drive_data(slot, env, observer);
    }
    let _ = flush(env.stack, slot, &mut busy);
    (busy, true)
}

/// Sends pending reply bytes; false if the control connection failed.
fn flush<S: SecureStack, F: FileSystem>(
    stack: &mut S,
    slot: &mut Slot<S::TcpSocket, F>,
    busy: &mut bool,
) -> bool {
    let out = &mut slot.session.out;
    let Some(ctrl) = slot.ctrl.as_mut() else {
        return false;
    };
    while !out.is_empty() {
        match stack.send(ctrl, out.pending()) {
            Ok(0) | Err(nb::Error::WouldBlock) => break,
            Ok(n) => {
                out.advance(n);
                *busy = true;
            }
            Err(nb::Error::Other(_)) => return false,
        }
    }
    true
}

/// Accepts or connects the data connection and pumps the transfer.
// Out of line: see `drive`.
#[inline(never)]
fn drive_data<S: SecureStack, F: FileSystem, A, O: Observer>(
    slot: &mut Slot<S::TcpSocket, F>,
    env: &mut Env<'_, S, F, A>,
    observer: &mut O,
) -> bool {
    let mut busy = false;
    // A passive connection may arrive before the transfer command.
    if slot.data.is_none() {
        if let Some(listener) = slot.passive.as_mut() {
            if let Ok((sock, peer)) = env.stack.accept(listener) {
                busy = true;
                // Only the control connection's peer may connect (no
                // data-connection theft).
                if unmap(peer.ip()) == slot.session.peer {
                    slot.data = Some(sock);
                    slot.data_up = true;
                    // One data connection per PASV: the listener goes now,
                    // which frees its sockets on stacks with a fixed pool.
                    // A host keeps it for the session's next PASV.
                    #[cfg(feature = "scale")]
                    {
                        slot.kept = slot.passive.take();
                    }
                    #[cfg(not(feature = "scale"))]
                    if let Some(l) = slot.passive.take() {
                        let _ = env.stack.close(l);
                    }
                } else {
                    let _ = env.stack.close(sock);
                }
            }
        }
    }
    let Some(transfer) = slot.session.transfer.as_mut() else {
        return busy;
    };
    if transfer.phase == Phase::Connecting {
        if !slot.data_up {
            if let (DataMode::Active(ip, port), Some(sock)) =
                (slot.session.data_mode, slot.data.as_mut())
            {
                match env.stack.connect(sock, SocketAddr::new(ip, port)) {
                    Ok(()) => slot.data_up = true,
                    Err(nb::Error::WouldBlock) => {}
                    Err(nb::Error::Other(_)) => {
                        finish_transfer(
                            slot,
                            env,
                            Some((425, b"Can't open data connection.")),
                            observer,
                        );
                        return true;
                    }
                }
            }
        }
        let Some(transfer) = slot.session.transfer.as_mut() else {
            return busy;
        };
        if slot.data_up {
            transfer.phase = Phase::Running;
            transfer.last_progress = env.now;
            busy = true;
            // PROT P: the data connection is TLS too, resuming the control
            // connection's session where the client offers it.
            #[cfg(feature = "tls")]
            if slot.session.prot_private {
                if let Some(data) = slot.data.as_mut() {
                    if env.stack.start_tls(data, slot.ctrl.as_ref()).is_err() {
                        finish_transfer(
                            slot,
                            env,
                            Some((425, b"Can't open a protected data connection.")),
                            observer,
                        );
                        return true;
                    }
                }
            }
        } else if env.now.millis_since(transfer.last_progress) >= env.config.data_timeout_ms {
            finish_transfer(
                slot,
                env,
                Some((425, b"Can't open data connection.")),
                observer,
            );
            return true;
        } else {
            return busy;
        }
    }
    let (Some(transfer), Some(data)) = (slot.session.transfer.as_mut(), slot.data.as_mut()) else {
        return busy;
    };
    let line = &mut slot.session.line_buf;
    match transfer.pump(env.stack, data, env.fs, env.scratch, line, env.now) {
        Pump::Progress => true,
        Pump::Idle => {
            if env.now.millis_since(transfer.last_progress) >= env.config.data_timeout_ms {
                finish_transfer(
                    slot,
                    env,
                    Some((426, b"Data connection timed out; transfer aborted.")),
                    observer,
                );
                return true;
            }
            busy
        }
        Pump::Done(failure) => {
            finish_transfer(slot, env, failure, observer);
            true
        }
    }
}

/// Takes one command line, if any, and carries it out.
// Out of line: see `drive`.
#[inline(never)]
fn next_command<S: SecureStack, F: FileSystem, A: Authenticator, O: Observer>(
    slot: &mut Slot<S::TcpSocket, F>,
    env: &mut Env<'_, S, F, A>,
    observer: &mut O,
) -> bool {
    match slot.line.poll_line() {
        None => return false,
        Some(LineEvent::TooLong) => {
            slot.session.out.reply(500, b"Command line too long.");
            return true;
        }
        Some(LineEvent::Line) => {}
    }
    let line = slot.line.line();
    // During a transfer only ABOR, STAT, NOOP and QUIT are taken; other
    // commands wait in the buffer until it ends.
    if slot.session.transfer.is_some() {
        let urgent = matches!(
            Command::parse(line),
            Ok(Command::Abor | Command::Stat(None) | Command::Noop | Command::Quit)
        );
        if !urgent {
            return false;
        }
    }
    log_command(env.slot, line, observer);
    let was_logged_in = slot.session.logged_in();
    let action = {
        let mut ctx = Ctx {
            fs: &mut *env.fs,
            auth: &mut *env.auth,
            config: env.config,
            now: env.now,
            #[cfg(feature = "mtime")]
            unix_now: env.unix_now,
            slot: env.slot,
            #[cfg(feature = "status")]
            scratch: &mut *env.scratch,
            path: &mut *env.path,
            #[cfg(feature = "tls")]
            tls_available: env.stack.tls_available(),
        };
        slot.session.handle(line, &mut ctx)
    };
    slot.line.consume_line();
    if !was_logged_in && slot.session.logged_in() {
        observer.event(Event::Login {
            session: env.slot,
            user: slot.session.user_name(),
            ok: true,
        });
    }
    match action {
        Action::None | Action::Close => {}
        #[cfg(feature = "tls")]
        Action::StartTls => slot.tls_pending = true,
        Action::Passive { extended } => open_passive(slot, env, extended),
        Action::StartTransfer => {
            if let DataMode::Active(..) = slot.session.data_mode {
                close_data(env.stack, slot);
                match env.stack.socket() {
                    Ok(sock) => slot.data = Some(sock),
                    Err(_) => finish_transfer(
                        slot,
                        env,
                        Some((425, b"Can't open data connection.")),
                        observer,
                    ),
                }
            }
        }
        #[cfg(feature = "compat")]
        Action::Abort => {
            if slot.session.transfer.is_some() {
                finish_transfer(slot, env, Some((426, b"Transfer aborted.")), observer);
            } else {
                close_data(env.stack, slot);
                slot.session.data_mode = DataMode::None;
            }
            slot.session.out.reply(226, b"ABOR command successful.");
        }
        #[cfg(feature = "compat")]
        Action::Reinit => {
            if slot.session.transfer.is_some() {
                slot.session.out.clear();
                finish_transfer(slot, env, Some((426, b"Transfer aborted.")), observer);
                slot.session.out.reply(220, b"Ready for new user.");
            }
            close_data(env.stack, slot);
            slot.session.data_mode = DataMode::None;
        }
    }
    true
}

/// Reports a command line, with the password of `PASS` hidden.
fn log_command<O: Observer>(session: usize, line: &[u8], observer: &mut O) {
    let masked = line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|v| v.eq_ignore_ascii_case(b"PASS"))
        && line.get(4).is_none_or(|b| *b == b' ');
    let line: &[u8] = if masked { b"PASS ***" } else { line };
    observer.event(Event::Command { session, line });
}

/// Opens a passive listener on the control connection's local address and
/// a port from the configured range, and replies 227 or 229.
fn open_passive<S: SecureStack, F: FileSystem, A>(
    slot: &mut Slot<S::TcpSocket, F>,
    env: &mut Env<'_, S, F, A>,
    extended: bool,
) {
    close_data(env.stack, slot);
    slot.session.data_mode = DataMode::None;
    let out = &mut slot.session.out;
    let local = slot.ctrl.as_ref().map(|c| env.stack.local_addr(c));
    let local_ip = match local {
        Some(Ok(a)) => unmap(a.ip()),
        _ => return out.reply(425, b"Can't open passive connection."),
    };
    let announce = match (extended, env.config.passive_address, local_ip) {
        (false, Some(IpAddr::V4(v4)), _) | (false, None, IpAddr::V4(v4)) => Some(v4),
        (false, _, _) => return out.reply(425, b"Can't announce an IPv4 address, use EPSV."),
        (true, _, _) => None,
    };
    // A host's session reuses the listener of its last data connection
    // (six calls fewer, on the reply's path). What waits in its queue came
    // before this reply, so it is not this transfer's: dropped.
    #[cfg(feature = "scale")]
    let mut listener = slot.kept.take().map(|mut l| {
        for _ in 0..ACCEPTS_PER_POLL {
            match env.stack.accept(&mut l) {
                Ok((stray, _)) => {
                    let _ = env.stack.close(stray);
                }
                Err(_) => break,
            }
        }
        (l, slot.passive_port)
    });
    #[cfg(not(feature = "scale"))]
    let mut listener = None;
    let (lo, hi) = env.config.passive_ports;
    let (lo, hi) = (lo.max(1), hi.max(lo.max(1)));
    let span = u32::from(hi - lo) + 1;
    // Not `clamp`, whose `lo <= hi` assertion is a panic path.
    let mut port = (*env.next_port).max(lo).min(hi);
    let tries = if listener.is_some() { 0 } else { span.min(64) };
    for _ in 0..tries {
        let candidate = port;
        port = if port >= hi { lo } else { port + 1 };
        let Ok(mut sock) = env.stack.socket() else {
            break;
        };
        let ok = env
            .stack
            .bind_addr(&mut sock, SocketAddr::new(local_ip, candidate))
            .and_then(|()| env.stack.listen(&mut sock));
        if ok.is_ok() {
            listener = Some((sock, candidate));
            break;
        }
        let _ = env.stack.close(sock);
    }
    *env.next_port = port;
    let Some((sock, p)) = listener else {
        return out.reply(425, b"No passive port available.");
    };
    slot.passive = Some(sock);
    #[cfg(feature = "scale")]
    {
        slot.passive_port = p;
    }
    slot.session.data_mode = DataMode::Passive;
    let out = &mut slot.session.out;
    match announce {
        Some(v4) => {
            out.start(227, false);
            out.push(b"Entering Passive Mode (");
            for o in v4.octets() {
                out.push_u64(u64::from(o));
                out.push(b",");
            }
            out.push_u64(u64::from(p >> 8));
            out.push(b",");
            out.push_u64(u64::from(p & 0xff));
            out.push(b").");
            out.end_line();
        }
        None => {
            out.start(229, false);
            out.push(b"Entering Extended Passive Mode (|||");
            out.push_u64(u64::from(p));
            out.push(b"|)");
            out.end_line();
        }
    }
}

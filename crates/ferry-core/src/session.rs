//! One control connection: login state, working directory, transfer
//! settings, and what each command does.
//!
//! A session never touches a socket. It reads and changes storage through
//! [`FileSystem`], writes replies into its own buffer, and asks the server for
//! network work (a passive listener, the data connection of a transfer, an
//! abort, a close) by returning an [`Action`].
//!
//! Memory: a session holds two paths (the working directory and a
//! remembered one: the user name until PASS, the RNFR path until RNTO, the
//! storage path of a running transfer) and its reply buffer; a path
//! argument is resolved into the server's one shared path buffer, and
//! listing lines are formatted straight into the reply buffer, so no
//! command keeps a path-sized array on the stack.
use crate::auth::{AuthError, Authenticator, Permissions, User};
use crate::config::Config;
#[cfg(any(feature = "compat", feature = "status"))]
use crate::protocol::command::split_word;
use crate::protocol::command::{Command, EpsvArg, TransferType};
use crate::protocol::listing::{self, PermFacts};
use crate::protocol::path::{self, PathError};
use crate::protocol::reply::ReplyBuf;
use crate::server::TransferKind;
use crate::transfer::{Body, Commit, ListFormat, Running, Transfer, LIST_LINE_LEN};
use ferry_fs::{EntryKind, Error as _, ErrorKind, FileSystem, Metadata, WriteMode};
use ferry_net::{Instant, IpAddr, SocketAddr};
use heapless::Vec;

/// Longest virtual or storage path: 128 bytes, 256 with the `paths-256`
/// feature (in `default`), or 4096 with `long-paths` (Linux PATH_MAX, for
/// hosts).
#[cfg(feature = "long-paths")]
pub const PATH_LEN: usize = 4096;
/// Longest virtual or storage path: 128 bytes, 256 with the `paths-256`
/// feature (in `default`), or 4096 with `long-paths` (Linux PATH_MAX, for
/// hosts).
#[cfg(all(feature = "paths-256", not(feature = "long-paths")))]
pub const PATH_LEN: usize = 256;
/// Longest virtual or storage path: 128 bytes, 256 with the `paths-256`
/// feature (in `default`), or 4096 with `long-paths` (Linux PATH_MAX, for
/// hosts).
#[cfg(not(any(feature = "paths-256", feature = "long-paths")))]
pub const PATH_LEN: usize = 128;
/// Longest command line, CR LF included (a verb, a path and room for the
/// longest prefix, `MFMT YYYYMMDDHHMMSS `); longer lines get 500.
pub const LINE_LEN: usize = PATH_LEN + 24;
/// Control reply buffer: the longest reply (MLST with a full path and all
/// its facts; HELP) fits.
pub const REPLY_LEN: usize = if PATH_LEN + 128 > 320 {
    PATH_LEN + 128
} else if cfg!(feature = "status") {
    320
} else {
    // MLST's reply: 19 + 1 + 62 (facts) + a path + 2 + 9, and the two
    // bytes kept for a line end.
    PATH_LEN + 112
};

/// A canonical path.
pub type PathBuf = Vec<u8, PATH_LEN>;

/// Suffix of the temporary name an upload is written to before it replaces
/// its target (`dir/.<slot>.ferry-part`); listings hide such names.
pub const UPLOAD_SUFFIX: &[u8] = b".ferry-part";

/// What the server must do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing beyond sending the reply.
    None,
    /// Open a passive listener and reply 227 (`extended`: 229).
    Passive {
        /// EPSV rather than PASV.
        extended: bool,
    },
    /// A transfer was set up and 150 sent: make its data connection.
    StartTransfer,
    /// Drop the data connection and any transfer, replying as ABOR does.
    #[cfg(feature = "compat")]
    Abort,
    /// Drop the data connection and any transfer without a reply (REIN).
    #[cfg(feature = "compat")]
    Reinit,
    /// Start TLS on the control connection once the 234 reply is out.
    #[cfg(feature = "tls")]
    StartTls,
    /// Close the session once replies are flushed (QUIT, too many failures).
    Close,
}

/// How the next data connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataMode {
    /// No PORT/PASV yet.
    None,
    /// A passive listener is open (the server holds it).
    Passive,
    /// Connect to this address and port (PORT/EPRT; kept apart: a
    /// `SocketAddr` also carries IPv6 flow and scope, 12 bytes per session).
    Active(IpAddr, u16),
}

/// The permission a command needs (see [`Permissions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
    Delete,
    Mkdir,
    Rename,
}

/// What the remembered path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memo {
    None,
    /// The name given to USER, waiting for PASS.
    User,
    /// The storage path given to RNFR, waiting for RNTO.
    RenameFrom,
    /// The name given to USER, whose password the authenticator is
    /// checking ([`AuthError::Pending`](crate::auth::AuthError::Pending)).
    Checking,
}

/// What a command handler needs besides the session.
pub(crate) struct Ctx<'a, F: FileSystem, A: Authenticator> {
    pub fs: &'a mut F,
    pub auth: &'a mut A,
    pub config: &'a Config,
    pub now: Instant,
    #[cfg(feature = "mtime")]
    pub unix_now: Option<u64>,
    pub slot: usize,
    /// Used as the name buffer for directory reads.
    #[cfg(feature = "status")]
    pub scratch: &'a mut [u8],
    /// Where a path argument is resolved (see [`Res`]).
    pub path: &'a mut [u8; PATH_LEN],
    /// Whether the security layer can start TLS (FEAT, AUTH).
    #[cfg(feature = "tls")]
    pub tls_available: bool,
}

/// One control connection's state.
pub(crate) struct Session<F: FileSystem> {
    /// The client's address (its port is of no use after accept).
    pub peer: IpAddr,
    pub out: ReplyBuf<REPLY_LEN>,
    cwd: PathBuf,
    /// The USER name until PASS, the RNFR storage path until RNTO, or the
    /// storage path of the running transfer (see [`Memo`]).
    pub memo: PathBuf,
    memo_kind: Memo,
    user: Option<User>,
    pub failures: u8,
    /// When the current login began (the connection, or REIN after a
    /// login): the login timeout counts from here.
    pub since: Instant,
    /// A failed login's 530 is due (`Config::login_fail_delay_ms` after
    /// the PASS that failed, which set `last_activity`).
    pub delayed: bool,
    ttype: TransferType,
    #[cfg(feature = "resume")]
    rest: u64,
    epsv_all: bool,
    pub data_mode: DataMode,
    pub transfer: Running<F>,
    /// A listing's pending line while it runs; an upload's temporary name
    /// when it ends (kept here, not in the transfer, so that the transfer
    /// is small enough to move when it ends).
    pub line_buf: [u8; LIST_LINE_LEN],
    pub last_activity: Instant,
    pub closing: bool,
    /// QUIT arrived during a transfer: reply 221 and close when it ends.
    pub quit_after_transfer: bool,
    /// The client closed its sending side; buffered commands are still answered.
    pub eof: bool,
    /// The logged-in user's name (for STAT; truncated).
    #[cfg(feature = "status")]
    login_name: Vec<u8, 32>,
    /// The control connection is TLS-protected (AUTH TLS or implicit).
    #[cfg(feature = "tls")]
    pub tls: bool,
    /// `PROT P`: data connections are TLS-protected.
    #[cfg(feature = "tls")]
    pub prot_private: bool,
}

/// Longest working directory a parked session keeps
/// ([`Parked`](crate::server::Parked)); a
/// session in a deeper one is not parked.
#[cfg(feature = "scale")]
pub const PARKED_CWD_LEN: usize = 128;

/// What an idle, logged-in session keeps while it is parked outside the
/// session table (feature `scale`): the little that is not empty between
/// commands, without the table's buffers.
#[cfg(feature = "scale")]
#[derive(Debug, Clone)]
pub(crate) struct ParkedState {
    pub peer: IpAddr,
    cwd: Vec<u8, PARKED_CWD_LEN>,
    user: Option<User>,
    failures: u8,
    since: Instant,
    ttype: TransferType,
    #[cfg(feature = "resume")]
    rest: u64,
    epsv_all: bool,
    pub last_activity: Instant,
    #[cfg(feature = "status")]
    login_name: Vec<u8, 32>,
    #[cfg(feature = "tls")]
    tls: bool,
    #[cfg(feature = "tls")]
    prot_private: bool,
}

#[cfg(feature = "scale")]
impl Default for ParkedState {
    fn default() -> Self {
        ParkedState {
            peer: IpAddr::V4(ferry_net::Ipv4Addr::UNSPECIFIED),
            cwd: Vec::new(),
            user: None,
            failures: 0,
            since: Instant(0),
            ttype: TransferType::Image,
            #[cfg(feature = "resume")]
            rest: 0,
            epsv_all: false,
            last_activity: Instant(0),
            #[cfg(feature = "status")]
            login_name: Vec::new(),
            #[cfg(feature = "tls")]
            tls: false,
            #[cfg(feature = "tls")]
            prot_private: false,
        }
    }
}

/// A path argument resolved into [`Ctx::path`]: the user's home (without a
/// trailing `/`) in `path[..home]`, then the canonical virtual path in
/// `path[home..home + vlen]`. The storage path is both together, except
/// that the virtual root of a user with a home is the home itself.
#[derive(Debug, Clone, Copy)]
struct Res {
    home: usize,
    vlen: usize,
}

impl Res {
    /// The path the file system sees.
    fn fs(self, path: &[u8]) -> &[u8] {
        let end = if self.home > 0 && self.vlen == 1 {
            self.home
        } else {
            self.home + self.vlen
        };
        path.get(..end).unwrap_or(b"/")
    }
    /// The path as the client sees it.
    fn virt(self, path: &[u8]) -> &[u8] {
        path.get(self.home..self.home + self.vlen).unwrap_or(b"/")
    }
}

/// Reply code and text for a storage error: the one place that maps them.
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub(crate) fn fs_error_reply(kind: ErrorKind) -> (u16, &'static [u8]) {
    match kind {
        ErrorKind::NotFound => (550, b"No such file or directory."),
        ErrorKind::AlreadyExists => (550, b"File exists."),
        ErrorKind::PermissionDenied => (550, b"Permission denied."),
        ErrorKind::NotADirectory => (550, b"Not a directory."),
        ErrorKind::IsADirectory => (550, b"Is a directory."),
        ErrorKind::DirectoryNotEmpty => (550, b"Directory not empty."),
        ErrorKind::NoSpace => (452, b"Insufficient storage space."),
        ErrorKind::NameTooLong => (553, b"File name too long."),
        ErrorKind::InvalidName => (553, b"File name not allowed."),
        ErrorKind::Unsupported => (504, b"Not supported by this storage."),
        _ => (451, b"Local error in processing."),
    }
}

/// Every verb HELP can name, in the order it names them; HELP lists those
/// this build serves (`in_help_list`), 14 to a line, the X aliases on lines
/// of their own.
#[cfg(feature = "status")]
const HELP_VERBS: &[[u8; 4]] = &[
    *b"ABOR", *b"ACCT", *b"ALLO", *b"APPE", *b"CDUP", *b"CWD\0", *b"DELE", *b"EPRT", *b"EPSV",
    *b"FEAT", *b"HELP", *b"LIST", *b"MDTM", *b"MFMT", *b"MKD\0", *b"MLSD", *b"MLST", *b"MODE",
    *b"NLST", *b"NOOP", *b"OPTS", *b"PASS", *b"PASV", *b"PORT", *b"PWD\0", *b"QUIT", *b"REIN",
    *b"REST", *b"RETR", *b"RMD\0", *b"RNFR", *b"RNTO", *b"SITE", *b"SIZE", *b"STAT", *b"STOR",
    *b"STOU", *b"STRU", *b"SYST", *b"TYPE", *b"USER", *b"XCUP", *b"XCWD", *b"XMKD", *b"XPWD",
    *b"XRMD",
];

/// A verb of [`HELP_VERBS`] without its padding.
#[cfg(feature = "status")]
fn verb_name(v: &[u8; 4]) -> &[u8] {
    let n = v.iter().position(|&b| b == 0).unwrap_or(4);
    v.get(..n).unwrap_or(b"")
}

/// Whether `name` is left out of listings and unreachable: an upload's
/// temporary file, or a name with CR or LF, which no listing line can
/// carry without splitting it or ending a reply early (a name made outside
/// FTP could otherwise forge replies: `"x\r\n230 ..."`). FTP itself cannot
/// make one: CR and LF in an argument are refused.
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub(crate) fn is_hidden(name: &[u8]) -> bool {
    name.ends_with(UPLOAD_SUFFIX) || name.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// Makes `path` the root, in place (assigning a new `PathBuf` copies all
/// of its capacity).
fn set_root(path: &mut PathBuf) {
    path.clear();
    let _ = path.push(b'/');
}

/// Replaces the content of `dst` with `src` (truncated to fit).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub(crate) fn set_path(dst: &mut PathBuf, src: &[u8]) {
    dst.clear();
    let _ = dst.extend_from_slice(src.get(..src.len().min(PATH_LEN)).unwrap_or(b""));
}

/// `code "path" text`: a path in quotes (RFC 959 appendix II).
// Size: PWD and MKD share it.
#[inline(never)]
fn reply_path<const N: usize>(out: &mut ReplyBuf<N>, code: u16, path: &[u8], text: &[u8]) {
    out.start(code, false);
    out.push_quoted(path);
    out.push(text);
    out.end_line();
}

/// Resolves a client path argument against `cwd` and `home` into `out`
/// (see [`Res`]); the error reply if it cannot be.
// Not generic: one copy whatever the storage and user types.
fn resolve_into(
    cwd: &[u8],
    home: &[u8],
    arg: &[u8],
    out: &mut [u8],
) -> Result<Res, (u16, &'static [u8])> {
    const TOO_LONG: (u16, &[u8]) = (553, b"Path too long.");
    let home = home.strip_suffix(b"/").unwrap_or(home);
    let dst = out.get_mut(..home.len()).ok_or(TOO_LONG)?;
    dst.copy_from_slice(home);
    let vlen = path::resolve(cwd, arg, out.get_mut(home.len()..).unwrap_or(&mut [])).map_err(
        |e| match e {
            PathError::InvalidCharacter => (501u16, &b"Invalid character in path."[..]),
            PathError::TooLong => TOO_LONG,
        },
    )?;
    let r = Res {
        home: home.len(),
        vlen,
    };
    // Uploads in progress are invisible: not listed, not reachable.
    if is_hidden(path::file_name(r.virt(out))) {
        return Err((550, b"No such file or directory."));
    }
    Ok(r)
}

impl<F: FileSystem> Session<F> {
    /// A session for no client: the state of a free slot, set up by
    /// [`Session::reset`] when a client takes it. No code runs to build it.
    pub const fn idle() -> Self {
        Session {
            peer: IpAddr::V4(ferry_net::Ipv4Addr::UNSPECIFIED),
            out: ReplyBuf::new(),
            cwd: PathBuf::new(),
            memo: PathBuf::new(),
            memo_kind: Memo::None,
            user: None,
            failures: 0,
            since: Instant(0),
            delayed: false,
            ttype: TransferType::Image,
            #[cfg(feature = "resume")]
            rest: 0,
            epsv_all: false,
            data_mode: DataMode::None,
            transfer: Running::None,
            line_buf: [0; LIST_LINE_LEN],
            last_activity: Instant(0),
            closing: false,
            quit_after_transfer: false,
            eof: false,
            #[cfg(feature = "status")]
            login_name: Vec::new(),
            #[cfg(feature = "tls")]
            tls: false,
            #[cfg(feature = "tls")]
            prot_private: false,
        }
    }

    /// Makes this a new session for a client at `peer`, in place (a
    /// session is too big to build on a small stack and move): logged
    /// out, at `/`, with the 220 greeting queued.
    pub fn reset(&mut self, peer: SocketAddr, now: Instant) {
        self.clear(peer.ip(), now);
        self.out.reply(220, b"Ferry FTP server ready.");
    }

    /// Makes this a new session for a client at `peer` since `now`, in
    /// place: logged out, at `/`, nothing queued. [`Session::reset`] greets
    /// it; [`Session::resume`] gives a parked session its state back.
    fn clear(&mut self, peer: IpAddr, now: Instant) {
        // Every field by name, so a new field cannot be forgotten here.
        let Session {
            peer: p,
            out,
            cwd,
            memo,
            memo_kind,
            user,
            failures,
            since,
            delayed,
            ttype,
            #[cfg(feature = "resume")]
            rest,
            epsv_all,
            data_mode,
            transfer,
            line_buf: _,
            last_activity,
            closing,
            quit_after_transfer,
            eof,
            #[cfg(feature = "status")]
            login_name,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            prot_private,
        } = self;
        *p = peer;
        out.clear();
        set_root(cwd);
        memo.clear();
        *memo_kind = Memo::None;
        *user = None;
        *failures = 0;
        *since = now;
        *delayed = false;
        *ttype = TransferType::Image;
        #[cfg(feature = "resume")]
        {
            *rest = 0;
        }
        *epsv_all = false;
        *data_mode = DataMode::None;
        *transfer = Running::None;
        *last_activity = now;
        *closing = false;
        *quit_after_transfer = false;
        *eof = false;
        #[cfg(feature = "status")]
        login_name.clear();
        #[cfg(feature = "tls")]
        {
            *tls = false;
            *prot_private = false;
        }
    }

    /// What this session keeps while parked, if it is idle: logged in,
    /// nothing to send, no transfer, data connection or pending state (a
    /// USER, RNFR or login delay), not closing, and in a working directory
    /// of at most [`PARKED_CWD_LEN`] bytes. The server checks its own part
    /// of the slot (the command buffer, the sockets).
    #[cfg(feature = "scale")]
    pub fn park(&self) -> Option<ParkedState> {
        let idle = self.logged_in()
            && self.out.is_empty()
            && self.memo_kind == Memo::None
            && self.transfer.is_none()
            && self.data_mode == DataMode::None
            && !self.delayed
            && !self.closing
            && !self.quit_after_transfer
            && !self.eof;
        if !idle {
            return None;
        }
        Some(ParkedState {
            peer: self.peer,
            cwd: Vec::from_slice(&self.cwd).ok()?,
            user: self.user,
            failures: self.failures,
            since: self.since,
            ttype: self.ttype,
            #[cfg(feature = "resume")]
            rest: self.rest,
            epsv_all: self.epsv_all,
            last_activity: self.last_activity,
            #[cfg(feature = "status")]
            login_name: self.login_name.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls,
            #[cfg(feature = "tls")]
            prot_private: self.prot_private,
        })
    }

    /// Makes this the session `parked` kept, in place, as it was when it
    /// was parked (nothing queued to send).
    #[cfg(feature = "scale")]
    pub fn resume(&mut self, parked: &ParkedState) {
        // Every kept field by name, so a new one cannot be forgotten here;
        // the rest are a new session's.
        let ParkedState {
            peer,
            cwd,
            user,
            failures,
            since,
            ttype,
            #[cfg(feature = "resume")]
            rest,
            epsv_all,
            last_activity,
            #[cfg(feature = "status")]
            login_name,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            prot_private,
        } = parked;
        self.clear(*peer, *since);
        set_path(&mut self.cwd, cwd);
        self.user = *user;
        self.failures = *failures;
        self.ttype = *ttype;
        #[cfg(feature = "resume")]
        {
            self.rest = *rest;
        }
        self.epsv_all = *epsv_all;
        self.last_activity = *last_activity;
        #[cfg(feature = "status")]
        {
            self.login_name = login_name.clone();
        }
        #[cfg(feature = "tls")]
        {
            self.tls = *tls;
            self.prot_private = *prot_private;
        }
    }

    /// When a failed login's 530 is due, while it waits (not while the
    /// authenticator is still checking the password).
    pub fn login_delay(&self, config: &Config) -> Option<Instant> {
        (self.delayed && !self.checking()).then(|| {
            self.last_activity
                .add_millis(u64::from(config.login_fail_delay_ms))
        })
    }

    /// When a session that has not logged in is closed (see
    /// [`Config::login_timeout_ms`]); `None` once logged in.
    pub fn login_deadline(&self, config: &Config) -> Option<Instant> {
        (!self.logged_in() && config.login_timeout_ms != 0)
            .then(|| self.since.add_millis(u64::from(config.login_timeout_ms)))
    }

    /// Whether a user is logged in.
    pub fn logged_in(&self) -> bool {
        self.user.is_some()
    }

    fn perms(&self, config: &Config) -> Permissions {
        match self.user {
            Some(u) if config.read_only => Permissions {
                read: u.permissions.read,
                ..Permissions::default()
            },
            Some(u) => u.permissions,
            None => Permissions::default(),
        }
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn reply(&mut self, code: u16, text: &[u8]) {
        self.out.reply(code, text);
    }

    /// Replies with the code and text for a storage error.
    // Size: one copy for every storage call that can fail.
    #[inline(never)]
    fn reply_fs(&mut self, kind: ErrorKind) {
        let (code, text) = fs_error_reply(kind);
        self.out.reply(code, text);
    }

    /// Replies 250 with `text` when a storage call succeeded, else with its error.
    fn reply_result<E: ferry_fs::Error>(&mut self, result: Result<(), E>, text: &[u8]) {
        match result {
            Ok(()) => self.reply(250, text),
            Err(e) => self.reply_fs(e.fs_kind()),
        }
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn reset_login(&mut self) {
        self.user = None;
        #[cfg(feature = "status")]
        self.login_name.clear();
        self.memo_kind = Memo::None;
        self.memo.clear();
        set_root(&mut self.cwd);
        self.ttype = TransferType::Image;
        #[cfg(feature = "resume")]
        {
            self.rest = 0;
        }
        self.epsv_all = false;
    }

    /// Resolves a client path argument against the cwd and the user's home
    /// into `ctx.path`, replying with the error if there is one.
    fn resolve<A: Authenticator>(&mut self, ctx: &mut Ctx<'_, F, A>, arg: &[u8]) -> Option<Res> {
        let home: &[u8] = match &self.user {
            Some(u) => ctx.auth.home(u),
            None => b"/",
        };
        match resolve_into(&self.cwd, home, arg, ctx.path) {
            Ok(r) => Some(r),
            Err((code, text)) => {
                self.reply(code, text);
                None
            }
        }
    }

    /// [`Session::resolve`] after checking the permission `need`.
    fn resolve_for<A: Authenticator>(
        &mut self,
        ctx: &mut Ctx<'_, F, A>,
        arg: &[u8],
        need: Need,
    ) -> Option<Res> {
        if !self.allowed(ctx.config, need) {
            return None;
        }
        self.resolve(ctx, arg)
    }

    /// Handles one command line; the reply goes to `self.out`.
    pub fn handle<A: Authenticator>(&mut self, line: &[u8], ctx: &mut Ctx<'_, F, A>) -> Action {
        self.last_activity = ctx.now;
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                let text: &[u8] = match e.reply_code() {
                    500 => b"Syntax error, command unrecognized.",
                    502 => b"Command not implemented.",
                    504 => b"Command not implemented for that parameter.",
                    522 => b"Network protocol not supported, use (1,2)",
                    _ => b"Syntax error in parameters or arguments.",
                };
                self.reply(e.reply_code(), text);
                return Action::None;
            }
        };
        // REST waits for the next transfer command (clients such as ftplib
        // send PASV between REST and RETR); any transfer command uses it up.
        #[cfg(feature = "resume")]
        let rest = match cmd {
            Command::Retr(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Stou(_)
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_) => core::mem::take(&mut self.rest),
            _ => 0,
        };
        #[cfg(not(feature = "resume"))]
        let rest = 0;
        let memo_kind = core::mem::replace(&mut self.memo_kind, Memo::None);
        match cmd {
            Command::User(name) => return self.cmd_user(name, ctx),
            Command::Pass(pw) => return self.cmd_pass(pw, memo_kind, ctx),
            // RFC 959: a transfer in progress finishes and gets its reply first.
            Command::Quit if self.transfer.is_some() => self.quit_after_transfer = true,
            Command::Quit => {
                self.reply(221, b"Goodbye.");
                self.closing = true;
                return Action::Close;
            }
            Command::Syst => self.reply(215, b"UNIX Type: L8"),
            Command::Feat => self.cmd_feat(ctx),
            Command::Noop => self.reply(200, b"NOOP ok."),
            #[cfg(feature = "status")]
            Command::Help(None) => self.cmd_help(),
            #[cfg(feature = "status")]
            Command::Help(Some(verb)) => {
                if crate::protocol::command::in_help_list(verb) {
                    self.reply(214, b"Command is supported.")
                } else {
                    self.reply(502, b"Unknown command.")
                }
            }
            #[cfg(feature = "compat")]
            Command::Opts(arg) => self.cmd_opts(arg),
            #[cfg(feature = "tls")]
            Command::Auth(_) if !ctx.tls_available => {
                self.reply(502, b"TLS is not available on this server.")
            }
            #[cfg(feature = "tls")]
            Command::Auth(_) if self.tls => self.reply(503, b"TLS is already active."),
            #[cfg(feature = "tls")]
            Command::Auth(mech) => {
                if [&b"TLS"[..], b"SSL", b"TLS-C", b"TLS-P"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(mech))
                {
                    // RFC 4217 4.1: a new security exchange starts a new login.
                    self.reset_login();
                    self.reply(234, b"AUTH TLS successful.");
                    return Action::StartTls;
                }
                self.reply(504, b"Unknown security mechanism.");
            }
            #[cfg(feature = "tls")]
            Command::Pbsz(_) | Command::Prot(_) | Command::Ccc if !self.tls => {
                self.reply(503, b"Use AUTH TLS first.")
            }
            #[cfg(feature = "tls")]
            Command::Pbsz(_) => self.reply(200, b"PBSZ=0"),
            #[cfg(feature = "tls")]
            Command::Prot(level) => self.cmd_prot(level, ctx.config),
            // Dropping to clear text on the control connection would undo the
            // protection of the login; Ferry does not offer it.
            #[cfg(feature = "tls")]
            Command::Ccc => self.reply(534, b"CCC is refused by server policy."),
            #[cfg(feature = "status")]
            Command::Stat(None) => self.cmd_stat(),
            _ if !self.logged_in() => {
                if memo_kind == Memo::User {
                    // Keep waiting for PASS.
                    self.memo_kind = Memo::User;
                }
                self.reply(530, b"Please login with USER and PASS.");
            }
            #[cfg(feature = "compat")]
            Command::Acct(_) => self.reply(202, b"ACCT not needed."),
            #[cfg(feature = "compat")]
            Command::Rein => {
                // A new login begins, with its own login timeout.
                self.since = ctx.now;
                self.reset_login();
                self.reply(220, b"Ready for new user.");
                return Action::Reinit;
            }
            #[cfg(feature = "status")]
            Command::Stat(Some(arg)) => self.cmd_stat_path(arg, ctx),
            Command::Pwd => {
                reply_path(&mut self.out, 257, &self.cwd, b" is the current directory.")
            }
            Command::Cwd(arg) => self.cmd_cwd(arg, ctx),
            Command::Cdup => self.cmd_cwd(b"..", ctx),
            Command::Mkd(arg) => self.cmd_mkd(arg, ctx),
            Command::Rmd(arg) => self.cmd_remove(arg, ctx, true),
            Command::Dele(arg) => self.cmd_remove(arg, ctx, false),
            Command::Rnfr(arg) => self.cmd_rnfr(arg, ctx),
            Command::Rnto(arg) => self.cmd_rnto(arg, memo_kind, ctx),
            Command::Size(arg) => self.cmd_size(arg, ctx),
            #[cfg(feature = "mtime")]
            Command::Mdtm(arg) => self.cmd_mdtm(arg, ctx),
            #[cfg(feature = "mtime")]
            Command::Mfmt { time, path } => self.cmd_mfmt(time, path, ctx),
            Command::Type(t) => {
                self.ttype = t;
                match t {
                    TransferType::Ascii => self.reply(200, b"Type set to A."),
                    TransferType::Image => self.reply(200, b"Type set to I."),
                }
            }
            #[cfg(feature = "compat")]
            Command::Mode => self.reply(200, b"Mode set to S."),
            #[cfg(feature = "compat")]
            Command::Stru => self.reply(200, b"Structure set to F."),
            #[cfg(feature = "compat")]
            Command::Allo => self.reply(202, b"ALLO not needed."),
            #[cfg(feature = "resume")]
            Command::Rest(offset) => {
                self.rest = offset;
                self.out.start(350, false);
                self.out.push(b"Restarting at ");
                self.out.push_u64(offset);
                self.out.push(b". Send STOR or RETR.");
                self.out.end_line();
            }
            Command::Retr(arg) => return self.cmd_retr(arg, rest, ctx),
            Command::Stor(arg) => return self.cmd_store(arg, rest, TransferKind::Upload, ctx),
            #[cfg(feature = "resume")]
            Command::Appe(arg) => return self.cmd_store(arg, 0, TransferKind::Append, ctx),
            #[cfg(feature = "resume")]
            Command::Stou(_) => return self.cmd_stou(ctx),
            #[cfg(feature = "compat")]
            Command::Abor => return Action::Abort,
            Command::List(arg) => return self.cmd_list(arg, ListFormat::List, ctx),
            Command::Nlst(arg) => return self.cmd_list(arg, ListFormat::Nlst, ctx),
            Command::Mlsd(arg) => return self.cmd_list(arg, ListFormat::Mlsd, ctx),
            Command::Mlst(arg) => self.cmd_mlst(arg, ctx),
            Command::Port(addr) => self.cmd_active(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.cmd_active(addr),
            Command::Pasv => {
                if self.epsv_all {
                    self.reply(503, b"EPSV ALL in effect, use EPSV.");
                } else if !self.peer.is_ipv4() {
                    self.reply(522, b"Network protocol not supported, use EPSV (2)");
                } else {
                    return Action::Passive { extended: false };
                }
            }
            Command::Epsv(EpsvArg::All) => {
                self.epsv_all = true;
                self.reply(200, b"EPSV ALL ok.");
            }
            Command::Epsv(EpsvArg::Proto(p)) if (p == 1) != self.peer.is_ipv4() => {
                let text: &[u8] = if self.peer.is_ipv4() {
                    b"Network protocol not supported, use (1)"
                } else {
                    b"Network protocol not supported, use (2)"
                };
                self.reply(522, text);
            }
            Command::Epsv(_) => return Action::Passive { extended: true },
            #[cfg(feature = "status")]
            Command::Site(arg) => self.cmd_site(arg, ctx),
            // Not produced by the parser in this build (its verb is 502).
            #[allow(unreachable_patterns)]
            _ => self.reply(502, b"Command not implemented."),
        }
        Action::None
    }

    fn cmd_feat<A: Authenticator>(&mut self, ctx: &Ctx<'_, F, A>) {
        let _ = ctx;
        self.out.push(b"211-Features:\r\n");
        #[cfg(feature = "tls")]
        if ctx.tls_available {
            self.out
                .push(b" AUTH TLS\r\n AUTH SSL\r\n PBSZ\r\n PROT\r\n");
        }
        #[cfg(feature = "compat")]
        self.out.push(b" UTF8\r\n");
        #[cfg(feature = "mtime")]
        self.out
            .push(b" MLST type*;size*;modify*;perm*;UNIX.mode*;\r\n SIZE\r\n MDTM\r\n MFMT\r\n");
        #[cfg(not(feature = "mtime"))]
        self.out
            .push(b" MLST type*;size*;perm*;UNIX.mode*;\r\n SIZE\r\n");
        #[cfg(feature = "resume")]
        self.out.push(b" REST STREAM\r\n");
        self.out.push(b" EPRT\r\n EPSV\r\n TVFS\r\n211 End\r\n");
    }

    #[cfg(feature = "status")]
    fn cmd_help(&mut self) {
        self.out
            .push(b"214-The following commands are recognized:\r\n");
        let mut on_line = 0;
        let mut after_alias = false;
        for v in HELP_VERBS {
            let name = verb_name(v);
            if !crate::protocol::command::in_help_list(name) {
                continue;
            }
            // The X aliases start a line of their own.
            let alias = name.first() == Some(&b'X');
            if on_line == 14 || (alias && !after_alias && on_line > 0) {
                self.out.end_line();
                on_line = 0;
            }
            after_alias = alias;
            self.out.push(b" ");
            self.out.push(name);
            on_line += 1;
        }
        self.out.push(b"\r\n214 Help OK.\r\n");
    }

    #[cfg(feature = "tls")]
    fn cmd_prot(&mut self, level: &[u8], config: &Config) {
        if level.eq_ignore_ascii_case(b"P") {
            self.prot_private = true;
            self.reply(200, b"Protection level set to P.");
        } else if level.eq_ignore_ascii_case(b"C") {
            if config.require_tls_data {
                return self.reply(534, b"PROT C is refused by server policy.");
            }
            self.prot_private = false;
            self.reply(200, b"Protection level set to C.");
        } else if level.eq_ignore_ascii_case(b"S") || level.eq_ignore_ascii_case(b"E") {
            self.reply(536, b"Protection level not supported.");
        } else {
            self.reply(504, b"Unknown protection level.");
        }
    }

    fn cmd_user<A: Authenticator>(&mut self, name: &[u8], ctx: &mut Ctx<'_, F, A>) -> Action {
        #[cfg(feature = "tls")]
        if ctx.config.require_tls_login && !self.tls {
            self.reply(530, b"TLS required: use AUTH TLS before USER.");
            return Action::None;
        }
        if self.logged_in() {
            // A new USER starts a new login (RFC 959 4.1.1 allows changing user).
            self.reset_login();
        }
        self.memo.clear();
        if self.memo.extend_from_slice(name).is_err() {
            self.reply(501, b"User name too long.");
            return Action::None;
        }
        if ctx.auth.needs_password(name) {
            self.memo_kind = Memo::User;
            self.reply(331, b"Password required.");
            return Action::None;
        }
        self.finish_login(b"", ctx)
    }

    fn cmd_pass<A: Authenticator>(
        &mut self,
        pw: &[u8],
        memo: Memo,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if self.logged_in() {
            self.reply(230, b"Already logged in.");
            return Action::None;
        }
        if memo != Memo::User {
            self.reply(503, b"Login with USER first.");
            return Action::None;
        }
        self.finish_login(pw, ctx)
    }

    fn finish_login<A: Authenticator>(&mut self, pw: &[u8], ctx: &mut Ctx<'_, F, A>) -> Action {
        let peer = ferry_net::unmap(self.peer);
        let result = ctx.auth.begin_login(ctx.slot, &self.memo, pw, peer);
        if result == Err(AuthError::Pending) {
            // No reply and no command until the authenticator answers.
            self.memo_kind = Memo::Checking;
            self.delayed = true;
            return Action::None;
        }
        self.login_result(result);
        Action::None
    }

    /// Whether the authenticator is still checking this session's password.
    pub fn checking(&self) -> bool {
        self.memo_kind == Memo::Checking
    }

    /// Takes the result of a login check: 230, or the failed login's
    /// delay (its 530 is due `login_fail_delay_ms` after the PASS).
    pub fn login_result(&mut self, result: Result<User, AuthError>) {
        self.memo_kind = Memo::None;
        match result {
            Ok(user) => {
                self.user = Some(user);
                self.delayed = false;
                #[cfg(feature = "status")]
                {
                    self.login_name.clear();
                    let keep = self.memo.len().min(self.login_name.capacity());
                    let _ = self
                        .login_name
                        .extend_from_slice(self.memo.get(..keep).unwrap_or(b""));
                }
                self.failures = 0;
                set_root(&mut self.cwd);
                self.reply(230, b"Login successful.");
            }
            Err(_) => {
                self.failures = self.failures.saturating_add(1);
                // The 530 is sent by the server when the delay has passed
                // (it counts from `last_activity`, set by the PASS).
                self.delayed = true;
            }
        }
    }

    /// The name of the user being logged in, or just logged in (for the
    /// log, which asks right after PASS: the memo still holds the name).
    pub fn user_name(&self) -> &[u8] {
        #[cfg(feature = "status")]
        if self.logged_in() {
            return &self.login_name;
        }
        &self.memo
    }

    /// Called by the server when a failed login's delay has passed.
    pub fn login_delay_over(&mut self, config: &Config) -> Action {
        self.delayed = false;
        self.memo.clear();
        if self.failures >= config.max_login_failures.max(1) {
            self.reply(530, b"Login incorrect. Too many failures, closing.");
            self.closing = true;
            return Action::Close;
        }
        self.reply(530, b"Login incorrect.");
        Action::None
    }

    #[cfg(feature = "compat")]
    fn cmd_opts(&mut self, arg: &[u8]) {
        // `split_word` rather than a split iterator: the same words, less code.
        let (first, rest) = split_word(arg);
        if first.eq_ignore_ascii_case(b"UTF8") || first.eq_ignore_ascii_case(b"UTF-8") {
            let (second, _) = split_word(rest);
            if second.is_empty() {
                self.reply(200, b"UTF8 mode always on.")
            } else if second.eq_ignore_ascii_case(b"ON") {
                self.reply(200, b"UTF8 mode enabled.")
            } else if second.eq_ignore_ascii_case(b"OFF") {
                self.reply(504, b"UTF8 cannot be turned off.")
            } else {
                self.reply(501, b"Use OPTS UTF8 ON.")
            }
        } else if first.eq_ignore_ascii_case(b"MLST") {
            // Every fact is always sent; report that set.
            #[cfg(feature = "mtime")]
            self.reply(200, b"MLST OPTS type;size;modify;perm;UNIX.mode;");
            #[cfg(not(feature = "mtime"))]
            self.reply(200, b"MLST OPTS type;size;perm;UNIX.mode;");
        } else {
            self.reply(501, b"Option not understood.");
        }
    }

    #[cfg(feature = "status")]
    fn cmd_stat(&mut self) {
        self.out.push(b"211-Ferry FTP server status:\r\n");
        self.out.push(b" Connected from ");
        let ip = ferry_net::unmap(self.peer);
        push_ip(&mut self.out, ip);
        self.out.end_line();
        if let Some(_u) = self.user {
            self.out.push(b" Logged in as ");
            self.out.push(&self.login_name);
            self.out.end_line();
        } else {
            self.out.push(b" Not logged in\r\n");
        }
        self.out.push(match self.ttype {
            TransferType::Ascii => &b" TYPE: ASCII, STRUcture: File, MODE: Stream\r\n"[..],
            TransferType::Image => b" TYPE: BINARY, STRUcture: File, MODE: Stream\r\n",
        });
        if self.transfer.is_some() {
            self.out.push(b" Data transfer in progress\r\n");
        } else {
            self.out.push(b" No data connection\r\n");
        }
        self.out.push(b"211 End of status\r\n");
    }

    /// `STAT path`: the `ls -l` line of a file (213), or of a directory's
    /// entries as far as they fit in the reply (212).
    #[cfg(feature = "status")]
    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_stat_path<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve(ctx, arg) else {
            return;
        };
        let fs_path = r.fs(&ctx.path[..]);
        let meta = match ctx.fs.metadata(fs_path) {
            Ok(m) => m,
            Err(e) => return self.reply_fs(e.fs_kind()),
        };
        #[cfg(feature = "mtime")]
        let now = ctx.unix_now;
        #[cfg(not(feature = "mtime"))]
        let now = None;
        if meta.kind == EntryKind::File {
            self.out.push(b"213-Status of file:\r\n");
            let name = path::file_name(r.virt(&ctx.path[..]));
            self.push_entry(|out| listing::list_line(name, &meta, now, out));
            self.out.push(b"213 End of status\r\n");
            return;
        }
        let mut dir = match ctx.fs.open_dir(fs_path) {
            Ok(d) => d,
            Err(e) => return self.reply_fs(e.fs_kind()),
        };
        self.out.push(b"212-Status of directory:\r\n");
        const END: &[u8] = b"212 End of status\r\n";
        const TRUNCATED: &[u8] = b" (listing truncated; use LIST)\r\n";
        loop {
            let entry = match ctx.fs.read_dir(&mut dir, ctx.scratch) {
                Ok(Some(e)) => e,
                _ => break,
            };
            let name = ctx.scratch.get(..entry.name_len).unwrap_or(b"");
            if is_hidden(name) {
                continue;
            }
            // Room is kept for the truncation note and the end line.
            let room = self
                .out
                .remaining()
                .saturating_sub(TRUNCATED.len() + END.len());
            let fits = self.out.push_with(|out| {
                let out = out.get_mut(..room)?;
                let (space, rest) = out.split_first_mut()?;
                *space = b' ';
                Some(listing::list_line(name, &entry.metadata, now, rest)? + 1)
            });
            if !fits {
                self.out.push(TRUNCATED);
                break;
            }
        }
        self.out.push(END);
    }

    /// Pushes ` ` and one listing line written by `line`; nothing if it
    /// does not fit.
    #[cfg(feature = "status")]
    fn push_entry(&mut self, line: impl FnOnce(&mut [u8]) -> Option<usize>) {
        self.out.push_with(|out| {
            let (space, rest) = out.split_first_mut()?;
            *space = b' ';
            Some(line(rest)? + 1)
        });
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_cwd<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve(ctx, arg) else {
            return;
        };
        match ctx.fs.metadata(r.fs(&ctx.path[..])) {
            Ok(m) if m.kind == EntryKind::Dir => {
                set_path(&mut self.cwd, r.virt(&ctx.path[..]));
                self.reply(250, b"Directory changed.");
            }
            Ok(_) => self.reply(550, b"Not a directory."),
            Err(e) => self.reply_fs(e.fs_kind()),
        }
    }

    /// Whether the user may do what `need` names; replies 550 if not.
    // Size: one call with a small enum per command, instead of building
    // the permissions and picking a field at each.
    #[inline(never)]
    fn allowed(&mut self, config: &Config, need: Need) -> bool {
        let p = self.perms(config);
        let allowed = match need {
            Need::Read => p.read,
            Need::Write => p.write,
            Need::Delete => p.delete,
            Need::Mkdir => p.mkdir,
            Need::Rename => p.rename,
        };
        if !allowed {
            self.reply(550, b"Permission denied.");
        }
        allowed
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_mkd<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_for(ctx, arg, Need::Mkdir) else {
            return;
        };
        match ctx.fs.create_dir(r.fs(&ctx.path[..])) {
            Ok(()) => reply_path(&mut self.out, 257, r.virt(&ctx.path[..]), b" created."),
            Err(e) => self.reply_fs(e.fs_kind()),
        }
    }

    /// RMD (`dir`) and DELE.
    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_remove<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>, dir: bool) {
        let Some(r) = self.resolve_for(ctx, arg, Need::Delete) else {
            return;
        };
        let p = r.fs(&ctx.path[..]);
        if dir {
            if r.virt(&ctx.path[..]) == b"/" {
                return self.reply(550, b"Permission denied.");
            }
            let result = ctx.fs.remove_dir(p);
            return self.reply_result(result, b"Requested file action okay, completed.");
        }
        // DELE removes files only; a directory needs RMD.
        match ctx.fs.metadata(p) {
            Ok(m) if m.kind == EntryKind::Dir => {
                return self.reply(550, b"Is a directory, use RMD.")
            }
            Ok(_) => {}
            Err(e) => return self.reply_fs(e.fs_kind()),
        }
        let result = ctx.fs.remove_file(p);
        self.reply_result(result, b"File deleted.");
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_rnfr<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_for(ctx, arg, Need::Rename) else {
            return;
        };
        if r.virt(&ctx.path[..]) == b"/" {
            return self.reply(550, b"Permission denied.");
        }
        let p = r.fs(&ctx.path[..]);
        match ctx.fs.metadata(p) {
            Ok(_) => {
                set_path(&mut self.memo, p);
                self.memo_kind = Memo::RenameFrom;
                self.reply(350, b"Ready for RNTO.");
            }
            Err(e) => self.reply_fs(e.fs_kind()),
        }
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_rnto<A: Authenticator>(&mut self, arg: &[u8], memo: Memo, ctx: &mut Ctx<'_, F, A>) {
        if memo != Memo::RenameFrom {
            return self.reply(503, b"RNFR required first.");
        }
        let Some(r) = self.resolve(ctx, arg) else {
            return;
        };
        let virt = r.virt(&ctx.path[..]);
        if virt == b"/" || is_hidden(virt) {
            return self.reply(553, b"File name not allowed.");
        }
        let to = r.fs(&ctx.path[..]);
        let from = &self.memo[..];
        // A directory must not move into itself.
        if to.starts_with(from) && to.get(from.len()) == Some(&b'/') {
            return self.reply(553, b"Cannot move a directory into itself.");
        }
        let result = ctx.fs.rename(from, to);
        self.memo.clear();
        self.reply_result(result, b"Rename successful.");
    }

    /// Resolves `arg` and reads its metadata, replying if it is not a file.
    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn file_meta<A: Authenticator>(
        &mut self,
        arg: &[u8],
        ctx: &mut Ctx<'_, F, A>,
    ) -> Option<(Res, Metadata)> {
        let r = self.resolve(ctx, arg)?;
        match ctx.fs.metadata(r.fs(&ctx.path[..])) {
            Ok(m) if m.kind == EntryKind::File => Some((r, m)),
            Ok(_) => {
                self.reply(550, b"Not a plain file.");
                None
            }
            Err(e) => {
                self.reply_fs(e.fs_kind());
                None
            }
        }
    }

    fn cmd_size<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if let Some((_, m)) = self.file_meta(arg, ctx) {
            self.out.start(213, false);
            self.out.push_u64(m.size);
            self.out.end_line();
        }
    }

    #[cfg(feature = "mtime")]
    fn cmd_mdtm<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if let Some((_, m)) = self.file_meta(arg, ctx) {
            match m.modified {
                Some(t) => {
                    self.out.start(213, false);
                    self.out.push(&crate::protocol::time::format_timeval(t));
                    self.out.end_line();
                }
                None => self.reply(550, b"Modification time not known."),
            }
        }
    }

    #[cfg(feature = "mtime")]
    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_mfmt<A: Authenticator>(&mut self, t: u64, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_for(ctx, arg, Need::Write) else {
            return;
        };
        match ctx.fs.set_modified(r.fs(&ctx.path[..]), t) {
            Ok(()) => {
                self.out.start(213, false);
                self.out.push(b"Modify=");
                self.out.push(&crate::protocol::time::format_timeval(t));
                self.out.push(b"; ");
                self.out.push(path::file_name(r.virt(&ctx.path[..])));
                self.out.end_line();
            }
            Err(e) => self.reply_fs(e.fs_kind()),
        }
    }

    fn cmd_active(&mut self, mut addr: SocketAddr) {
        if self.epsv_all {
            return self.reply(503, b"EPSV ALL in effect, use EPSV.");
        }
        // FTP bounce protection: only toward the control peer, never a
        // privileged port; refused before any connection is attempted.
        let peer_ip = ferry_net::unmap(self.peer);
        // lftp sends `EPRT |2|::|port|` meaning "my own address".
        if addr.ip().is_unspecified() {
            addr.set_ip(peer_ip);
        } else if ferry_net::unmap(addr.ip()) != peer_ip {
            return self.reply(504, b"Data connections only to the client's own address.");
        }
        if addr.port() < 1024 {
            return self.reply(504, b"Data connections to ports below 1024 are refused.");
        }
        self.data_mode = DataMode::Active(addr.ip(), addr.port());
        self.reply(200, b"Command okay.");
    }

    fn data_ready(&mut self, config: &Config) -> bool {
        #[cfg(feature = "tls")]
        if config.require_tls_data && !self.prot_private {
            self.reply(521, b"Data connections must be protected: use PROT P.");
            return false;
        }
        let _ = config;
        if self.data_mode == DataMode::None {
            self.reply(425, b"Use PORT, EPRT, PASV or EPSV first.");
            return false;
        }
        true
    }

    /// Starts a transfer of `body`; `path` (the storage path) is kept in
    /// the memo for its end and the log.
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn start(
        &mut self,
        kind: TransferKind,
        body: Body<F>,
        r: Res,
        path: &[u8],
        now: Instant,
    ) -> Action {
        set_path(&mut self.memo, r.fs(path));
        let home = u16::try_from(r.home).unwrap_or(0);
        self.transfer = Running::Some(Transfer::new(kind, body, home, now));
        self.reply(150, b"Opening data connection.");
        Action::StartTransfer
    }

    /// Seeks `file` to `offset` for REST; replies and closes it if that fails.
    #[cfg(feature = "resume")]
    fn seek_to(&mut self, file: &mut F::File, offset: u64) -> bool {
        if offset > 0
            && embedded_io::Seek::seek(file, embedded_io::SeekFrom::Start(offset)).is_err()
        {
            self.reply(554, b"Cannot restart at that offset.");
            return false;
        }
        true
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_retr<A: Authenticator>(
        &mut self,
        arg: &[u8],
        rest: u64,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if !self.allowed(ctx.config, Need::Read) {
            return Action::None;
        }
        let Some((r, meta)) = self.file_meta(arg, ctx) else {
            return Action::None;
        };
        if !self.data_ready(ctx.config) {
            return Action::None;
        }
        #[cfg(feature = "resume")]
        if rest > meta.size {
            self.reply(554, b"Restart offset beyond end of file.");
            return Action::None;
        }
        let _ = (meta, rest);
        #[allow(unused_mut)]
        let mut file = match ctx.fs.open_read(r.fs(&ctx.path[..])) {
            Ok(f) => f,
            Err(e) => {
                self.reply_fs(e.fs_kind());
                return Action::None;
            }
        };
        #[cfg(feature = "resume")]
        if !self.seek_to(&mut file, rest) {
            let _ = ctx.fs.close(file);
            return Action::None;
        }
        let body = Body::send(file, self.ttype == TransferType::Ascii);
        self.start(TransferKind::Download, body, r, &ctx.path[..], ctx.now)
    }

    fn cmd_store<A: Authenticator>(
        &mut self,
        arg: &[u8],
        rest: u64,
        kind: TransferKind,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        let Some(r) = self.resolve_for(ctx, arg, Need::Write) else {
            return Action::None;
        };
        self.store_resolved(r, rest, kind, ctx)
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn store_resolved<A: Authenticator>(
        &mut self,
        r: Res,
        rest: u64,
        kind: TransferKind,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if r.virt(&ctx.path[..]) == b"/" {
            self.reply(553, b"File name not allowed.");
            return Action::None;
        }
        let target = r.fs(&ctx.path[..]);
        let exists = match ctx.fs.metadata(target) {
            Ok(m) if m.kind == EntryKind::Dir => {
                self.reply(550, b"Is a directory.");
                return Action::None;
            }
            Ok(_) => true,
            Err(e) if e.fs_kind() == ErrorKind::NotFound => false,
            // Not knowing whether the target exists, an upload could write
            // over it in place and destroy it on failure: refuse instead.
            Err(e) => {
                self.reply_fs(e.fs_kind());
                return Action::None;
            }
        };
        if !self.data_ready(ctx.config) {
            return Action::None;
        }
        // A STOR that replaces a file writes to a temporary name and renames
        // on success, so a failed or cut upload never destroys the file it
        // replaces. A new file is written in place: a name the storage cannot
        // hold is refused before 150, and a cut upload can be resumed. APPE
        // and REST+STOR must write in place.
        let in_place = kind == TransferKind::Append || rest > 0;
        let commit = if in_place {
            Commit::InPlace
        } else if exists {
            Commit::Replace
        } else {
            Commit::New
        };
        // The temporary name is built in the memo, which holds the target
        // once the transfer starts.
        let opened = if commit == Commit::Replace {
            let _ = self.memo.resize(PATH_LEN, 0);
            let Some(n) = crate::transfer::upload_temp_name(target, ctx.slot, &mut self.memo)
            else {
                self.reply(553, b"File name too long.");
                return Action::None;
            };
            self.memo.truncate(n);
            ctx.fs.open_write(&self.memo, WriteMode::Truncate)
        } else {
            let mode = match (kind, rest) {
                (TransferKind::Append, _) => WriteMode::Append,
                (_, 0) => WriteMode::Truncate,
                _ => WriteMode::Update,
            };
            ctx.fs.open_write(target, mode)
        };
        #[allow(unused_mut)]
        let mut file = match opened {
            Ok(f) => f,
            Err(e) => {
                self.reply_fs(e.fs_kind());
                return Action::None;
            }
        };
        #[cfg(feature = "resume")]
        if !self.seek_to(&mut file, rest) {
            let _ = ctx.fs.close(file);
            return Action::None;
        }
        let body = Body::receive(file, self.ttype == TransferType::Ascii, commit);
        self.start(kind, body, r, &ctx.path[..], ctx.now)
    }

    #[cfg(feature = "resume")]
    fn cmd_stou<A: Authenticator>(&mut self, ctx: &mut Ctx<'_, F, A>) -> Action {
        if !self.allowed(ctx.config, Need::Write) {
            return Action::None;
        }
        // A name that does not exist yet in the working directory.
        let seed = ctx.now.0 ^ ((ctx.slot as u64) << 48);
        const PREFIX: &[u8] = b"ferry.";
        // `ferry.` and room for the digits; the prefix never changes.
        let mut name = [0u8; 32];
        if let Some(head) = name.get_mut(..PREFIX.len()) {
            head.copy_from_slice(PREFIX);
        }
        for i in 0..100u64 {
            let n = crate::protocol::num::write_u64(
                seed.wrapping_add(i) % 1_000_000_000,
                name.get_mut(PREFIX.len()..).unwrap_or(&mut []),
            )
            .unwrap_or(0);
            let len = PREFIX.len() + n;
            let Some(r) = self.resolve(ctx, name.get(..len).unwrap_or(b"")) else {
                return Action::None;
            };
            if ctx.fs.metadata(r.fs(&ctx.path[..])).is_err() {
                let action = self.store_resolved(r, 0, TransferKind::Upload, ctx);
                if action == Action::StartTransfer {
                    // Replace the plain 150 with one that names the file (RFC 1123 4.1.2.9).
                    self.out.clear();
                    self.out.start(150, false);
                    self.out.push(b"FILE: ");
                    self.out.push(name.get(..len).unwrap_or(b""));
                    self.out.end_line();
                }
                return action;
            }
        }
        self.reply(450, b"Could not find a unique name.");
        Action::None
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn perm_facts(&self, config: &Config) -> PermFacts {
        let p = self.perms(config);
        PermFacts {
            read: p.read,
            write: p.write,
            delete: p.delete,
            rename: p.rename,
            mkdir: p.mkdir,
        }
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_list<A: Authenticator>(
        &mut self,
        arg: Option<&[u8]>,
        format: ListFormat,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        let Some(r) = self.resolve_for(ctx, arg.unwrap_or(b""), Need::Read) else {
            return Action::None;
        };
        let p = r.fs(&ctx.path[..]);
        let meta = match ctx.fs.metadata(p) {
            Ok(m) => m,
            Err(e) => {
                self.reply_fs(e.fs_kind());
                return Action::None;
            }
        };
        if meta.kind == EntryKind::File && format == ListFormat::Mlsd {
            self.reply(501, b"Not a directory.");
            return Action::None;
        }
        if !self.data_ready(ctx.config) {
            return Action::None;
        }
        let perm = self.perm_facts(ctx.config);
        #[cfg(feature = "mtime")]
        let now = ctx.unix_now;
        #[cfg(not(feature = "mtime"))]
        let now = ();
        let body = if meta.kind == EntryKind::File {
            let name = path::file_name(r.virt(&ctx.path[..]));
            Body::single_line(format, name, &meta, perm, now, &mut self.line_buf)
        } else {
            match ctx.fs.open_dir(p) {
                Ok(d) => Body::listing(d, format, perm, now),
                Err(e) => {
                    self.reply_fs(e.fs_kind());
                    return Action::None;
                }
            }
        };
        self.start(TransferKind::Listing, body, r, &ctx.path[..], ctx.now)
    }

    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_mlst<A: Authenticator>(&mut self, arg: Option<&[u8]>, ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_for(ctx, arg.unwrap_or(b""), Need::Read) else {
            return;
        };
        let meta = match ctx.fs.metadata(r.fs(&ctx.path[..])) {
            Ok(m) => m,
            Err(e) => return self.reply_fs(e.fs_kind()),
        };
        let perm = self.perm_facts(ctx.config);
        let virt = r.virt(&ctx.path[..]);
        const END: &[u8] = b"250 End\r\n";
        self.out.push(b"250-Start of list\r\n");
        let room = self.out.remaining().saturating_sub(END.len());
        let fits = self.out.push_with(|out| {
            let out = out.get_mut(..room)?;
            let (space, rest) = out.split_first_mut()?;
            *space = b' ';
            Some(listing::mlsx_line(virt, &meta, false, perm, rest)? + 1)
        });
        if !fits {
            self.out.clear();
            return self.reply(553, b"Path too long.");
        }
        self.out.push(END);
    }

    #[cfg(feature = "status")]
    // Out of line: its storage calls (and their path buffers) stay out of
    // `handle`'s frame, so the stack holds only the handler that runs.
    #[inline(never)]
    fn cmd_site<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let (verb, rest) = split_word(arg);
        if verb.eq_ignore_ascii_case(b"HELP") {
            if ctx.config.site_chmod {
                self.out
                    .push(b"214-SITE commands:\r\n HELP\r\n CHMOD <mode> <path>\r\n214 End\r\n");
            } else {
                self.out.push(b"214-SITE commands:\r\n HELP\r\n214 End\r\n");
            }
        } else if verb.eq_ignore_ascii_case(b"CHMOD") && ctx.config.site_chmod {
            if !self.allowed(ctx.config, Need::Write) {
                return;
            }
            let (mode, target) = split_word(rest);
            let Some(mode) = parse_octal(mode) else {
                return self.reply(501, b"Usage: SITE CHMOD <octal mode> <path>");
            };
            if target.is_empty() {
                return self.reply(501, b"Usage: SITE CHMOD <octal mode> <path>");
            }
            let Some(r) = self.resolve(ctx, target) else {
                return;
            };
            match ctx.fs.set_mode(r.fs(&ctx.path[..]), mode) {
                Ok(()) => self.reply(200, b"SITE CHMOD command successful."),
                Err(e) => self.reply_fs(e.fs_kind()),
            }
        } else {
            self.reply(500, b"Unknown SITE command.");
        }
    }

    /// Ends the current transfer, if any: the data connection is already
    /// closed. On success an upload's temporary file replaces its target and
    /// 226 is sent; otherwise the temporary file is removed and `failure`
    /// (code, text) is sent. Returns the transfer's kind, virtual path and
    /// byte count for the log.
    pub fn end_transfer(
        &mut self,
        fs: &mut F,
        slot: usize,
        failure: Option<(u16, &'static [u8])>,
    ) -> Option<(TransferKind, &[u8], u64, bool)> {
        let t = self.transfer.take()?;
        self.data_mode = DataMode::None;
        let Transfer {
            kind,
            body,
            home,
            bytes,
            ..
        } = t;
        let result = body.finish(
            fs,
            slot,
            &self.memo,
            failure.map(|(code, _)| code),
            &mut self.line_buf,
        );
        let ok = match (failure, result) {
            (Some((c, text)), _) => {
                self.reply(c, text);
                false
            }
            (None, Err(e)) => {
                let (c, text) = fs_error_reply(e);
                // The storage failed at the very end (e.g. disk full on close).
                let c = if c == 452 { 452 } else { 451 };
                self.reply(c, text);
                false
            }
            (None, Ok(())) => {
                self.reply(226, b"Transfer complete.");
                true
            }
        };
        // The virtual path: the storage path less the home (its root is
        // the home itself).
        let virt = match self.memo.get(usize::from(home)..) {
            Some(v) if !v.is_empty() => v,
            _ => b"/",
        };
        Some((kind, virt, bytes, ok))
    }
}

#[cfg(feature = "status")]
fn parse_octal(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    let mut v: u16 = 0;
    for b in s {
        if !(b'0'..=b'7').contains(b) {
            return None;
        }
        v = v * 8 + u16::from(b - b'0');
    }
    Some(v)
}

/// Appends an IP address in text form (dotted IPv4, or IPv6 groups without
/// zero compression, which every parser accepts).
#[cfg(any(feature = "status", test))]
pub(crate) fn push_ip<const N: usize>(out: &mut ReplyBuf<N>, ip: ferry_net::IpAddr) {
    match ip {
        ferry_net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b".");
                }
                out.push_u64(u64::from(*o));
            }
        }
        ferry_net::IpAddr::V6(v6) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            // Nibble by nibble over the octets: smaller code than taking
            // `segments()` apart.
            let octets = v6.octets();
            let mut started = false;
            for i in 0..32 {
                let byte = octets.get(i / 2).copied().unwrap_or(0);
                let d = usize::from(if i % 2 == 0 { byte >> 4 } else { byte & 0xf });
                if i % 4 == 0 {
                    started = false;
                    if i > 0 {
                        out.push(b":");
                    }
                }
                // Leading zeros of a group are left out, its last digit never.
                if d != 0 || started || i % 4 == 3 {
                    started = true;
                    out.push(HEX.get(d..d + 1).unwrap_or(b"0"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv6 text as `push_ip` promises it: every group, lowercase hex,
    /// leading zeros of a group left out.
    fn ipv6_reference(v6: ferry_net::Ipv6Addr, out: &mut ReplyBuf<64>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, seg) in v6.segments().iter().enumerate() {
            if i > 0 {
                out.push(b":");
            }
            let digits = (1..=4)
                .rev()
                .find(|n| *n == 1 || seg >> (4 * (n - 1)) != 0)
                .unwrap();
            for n in (0..digits).rev() {
                let d = usize::from((seg >> (4 * n)) & 0xf);
                out.push(&HEX[d..=d]);
            }
        }
    }

    #[test]
    fn ip_text() {
        let mut out = ReplyBuf::<64>::new();
        push_ip(
            &mut out,
            ferry_net::IpAddr::V4(ferry_net::Ipv4Addr::new(10, 0, 255, 1)),
        );
        assert_eq!(out.pending(), b"10.0.255.1");
        out.clear();
        let v6 = ferry_net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0x10, 0xabc, 0xf00d, 0, 1);
        push_ip(&mut out, ferry_net::IpAddr::V6(v6));
        assert_eq!(out.pending(), b"2001:db8:0:10:abc:f00d:0:1");
        let mut state = 0x0123_4567_89ab_cdefu64;
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Groups of every width, zeros included.
            let mut segments = [0u16; 8];
            for (i, seg) in segments.iter_mut().enumerate() {
                let bits = (state >> (i * 8)) as u16;
                *seg = bits.checked_shr(u32::from(bits % 17)).unwrap_or(0);
            }
            let v6 = ferry_net::Ipv6Addr::from(segments);
            let (mut got, mut want) = (ReplyBuf::<64>::new(), ReplyBuf::<64>::new());
            push_ip(&mut got, ferry_net::IpAddr::V6(v6));
            ipv6_reference(v6, &mut want);
            assert_eq!(got.pending(), want.pending(), "{segments:x?}");
        }
    }

    #[test]
    fn paths_resolve_under_the_home() {
        let mut out = [0u8; PATH_LEN];
        let r = resolve_into(b"/", b"/alice", b"x", &mut out).unwrap();
        assert_eq!(r.fs(&out), b"/alice/x");
        assert_eq!(r.virt(&out), b"/x");
        let r = resolve_into(b"/", b"/alice/", b"..", &mut out).unwrap();
        assert_eq!(r.fs(&out), b"/alice");
        assert_eq!(r.virt(&out), b"/");
        let r = resolve_into(b"/d", b"/", b"f", &mut out).unwrap();
        assert_eq!(r.fs(&out), b"/d/f");
        assert_eq!(r.virt(&out), b"/d/f");
        let r = resolve_into(b"/", b"/", b"", &mut out).unwrap();
        assert_eq!(r.fs(&out), b"/");
        assert_eq!(
            resolve_into(b"/", b"/", b"a/.1.ferry-part", &mut out)
                .unwrap_err()
                .0,
            550
        );
        assert_eq!(
            resolve_into(b"/", b"/", b"a\\b", &mut out).unwrap_err().0,
            501
        );
    }
}

//! One control connection: login state, working directory, transfer
//! settings, and what each command does.
//!
//! A session never touches a socket. It reads and changes storage through
//! [`FileSystem`], writes replies into its own buffer, and asks the server for
//! network work (a passive listener, the data connection of a transfer, an
//! abort, a close) by returning an [`Action`].
use crate::auth::{Authenticator, Permissions, User};
use crate::config::Config;
use crate::protocol::command::{split_word, Command, EpsvArg, TransferType};
use crate::protocol::line::LineBuffer;
use crate::protocol::listing::{self, PermFacts};
use crate::protocol::path::{self, PathError};
use crate::protocol::reply::ReplyBuf;
use crate::protocol::time;
use crate::server::TransferKind;
use crate::transfer::{Body, Commit, ListFormat, Transfer};
use ferry_fs::{EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};
use ferry_net::{Instant, SocketAddr};
use heapless::Vec;

/// Longest virtual or storage path: 256 bytes, or 4096 with the
/// `long-paths` feature (Linux PATH_MAX, for hosts).
#[cfg(not(feature = "long-paths"))]
pub const PATH_LEN: usize = 256;
/// Longest virtual or storage path: 256 bytes, or 4096 with the
/// `long-paths` feature (Linux PATH_MAX, for hosts).
#[cfg(feature = "long-paths")]
pub const PATH_LEN: usize = 4096;
/// Longest command line, CR LF included (a verb, a path and some room);
/// longer lines get 500.
pub const LINE_LEN: usize = PATH_LEN + 64;
/// Control reply buffer; the longest reply (FEAT, HELP, MLST with a path)
/// fits with room.
pub const REPLY_LEN: usize = PATH_LEN + 256;

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
    Abort,
    /// Drop the data connection and any transfer without a reply (REIN).
    Reinit,
    /// Start TLS on the control connection once the 234 reply is out.
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
    /// Connect to this address (PORT/EPRT).
    Active(SocketAddr),
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

/// What the remembered argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memo {
    None,
    /// The name given to USER, waiting for PASS.
    User,
    /// The path given to RNFR, waiting for RNTO.
    RenameFrom,
}

/// What a command handler needs besides the session.
pub(crate) struct Ctx<'a, F: FileSystem, A: Authenticator> {
    pub fs: &'a mut F,
    pub auth: &'a mut A,
    pub config: &'a Config,
    pub now: Instant,
    pub unix_now: Option<u64>,
    pub slot: usize,
    /// Used as the name buffer for directory reads.
    pub scratch: &'a mut [u8],
    /// Whether the security layer can start TLS (FEAT, AUTH).
    pub tls_available: bool,
}

/// One control connection's state.
pub(crate) struct Session<F: FileSystem> {
    pub peer: SocketAddr,
    pub line: LineBuffer<LINE_LEN>,
    pub out: ReplyBuf<REPLY_LEN>,
    cwd: PathBuf,
    memo: PathBuf,
    memo_kind: Memo,
    user: Option<User>,
    failures: u8,
    /// A failed login's 530 waits until this instant.
    pub login_delay: Option<Instant>,
    ttype: TransferType,
    rest: u64,
    epsv_all: bool,
    pub data_mode: DataMode,
    pub transfer: Option<Transfer<F>>,
    pub last_activity: Instant,
    pub closing: bool,
    /// QUIT arrived during a transfer: reply 221 and close when it ends.
    pub quit_after_transfer: bool,
    /// The client closed its sending side; buffered commands are still answered.
    pub eof: bool,
    /// The logged-in user's name (for STAT and the log; truncated).
    login_name: Vec<u8, 32>,
    /// The control connection is TLS-protected (AUTH TLS or implicit).
    pub tls: bool,
    /// `PROT P`: data connections are TLS-protected.
    pub prot_private: bool,
}

/// A resolved path argument: as the client sees it and as storage sees it.
struct Resolved {
    virt: PathBuf,
    fs: PathBuf,
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

fn fs_reply<E: ferry_fs::Error>(e: &E) -> (u16, &'static [u8]) {
    fs_error_reply(e.fs_kind())
}

const FEAT_TLS: &[u8] = b" AUTH TLS\r\n AUTH SSL\r\n PBSZ\r\n PROT\r\n";
const FEAT_REPLY: &[u8] = b"211-Features:\r\n UTF8\r\n MLST type*;size*;modify*;perm*;UNIX.mode*;\r\n SIZE\r\n MDTM\r\n MFMT\r\n REST STREAM\r\n EPRT\r\n EPSV\r\n TVFS\r\n211 End\r\n";
const HELP_REPLY: &[u8] = b"214-The following commands are recognized:\r\n ABOR ACCT ALLO APPE CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MFMT\r\n MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD QUIT REIN REST\r\n RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER\r\n XCUP XCWD XMKD XPWD XRMD\r\n214 Help OK.\r\n";

fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `name` is an upload's temporary file (hidden from listings).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub(crate) fn is_upload_temp(name: &[u8]) -> bool {
    name.ends_with(UPLOAD_SUFFIX)
}

/// A `PathBuf` at full capacity, for a path function to write into.
fn full_path() -> PathBuf {
    let mut p = PathBuf::new();
    let _ = p.resize_default(PATH_LEN);
    p
}

/// Makes `path` the root, in place (assigning a new `PathBuf` copies all
/// of its capacity).
fn set_root(path: &mut PathBuf) {
    path.clear();
    let _ = path.push(b'/');
}

fn root_path() -> PathBuf {
    let mut p = PathBuf::new();
    let _ = p.push(b'/');
    p
}

impl<F: FileSystem> Session<F> {
    /// A new session for a client at `peer` (already unmapped).
    pub fn new(peer: SocketAddr, now: Instant) -> Self {
        let mut s = Session {
            peer,
            line: LineBuffer::new(),
            out: ReplyBuf::new(),
            cwd: root_path(),
            memo: PathBuf::new(),
            memo_kind: Memo::None,
            user: None,
            failures: 0,
            login_delay: None,
            ttype: TransferType::Image,
            rest: 0,
            epsv_all: false,
            data_mode: DataMode::None,
            transfer: None,
            last_activity: now,
            closing: false,
            quit_after_transfer: false,
            eof: false,
            login_name: Vec::new(),
            tls: false,
            prot_private: false,
        };
        s.out.reply(220, b"Ferry FTP server ready.");
        s
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

    fn reply(&mut self, code: u16, text: &[u8]) {
        self.out.reply(code, text);
    }

    /// Replies with the code and text for a storage error.
    fn reply_fs<E: ferry_fs::Error>(&mut self, e: &E) {
        let (code, text) = fs_reply(e);
        self.out.reply(code, text);
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn reset_login(&mut self) {
        self.user = None;
        self.login_name.clear();
        self.memo_kind = Memo::None;
        self.memo.clear();
        set_root(&mut self.cwd);
        self.ttype = TransferType::Image;
        self.rest = 0;
        self.epsv_all = false;
    }

    /// [`Session::resolve`], replying with the error if there is one.
    fn resolve_or_reply<A: Authenticator>(&mut self, auth: &A, arg: &[u8]) -> Option<Resolved> {
        match self.resolve(auth, arg) {
            Ok(r) => Some(r),
            Err((code, text)) => {
                self.reply(code, text);
                None
            }
        }
    }

    /// Resolves a client path argument against the cwd and the user's home.
    fn resolve<A: Authenticator>(
        &self,
        auth: &A,
        arg: &[u8],
    ) -> Result<Resolved, (u16, &'static [u8])> {
        const TOO_LONG: (u16, &[u8]) = (553, b"Path too long.");
        // Resolved in place in the `PathBuf`s (no stack arrays to copy from).
        let mut virt = full_path();
        let vlen = path::resolve(&self.cwd, arg, &mut virt).map_err(|e| match e {
            PathError::InvalidCharacter => (501u16, &b"Invalid character in path."[..]),
            PathError::TooLong => TOO_LONG,
        })?;
        virt.truncate(vlen);
        let home: &[u8] = match &self.user {
            Some(u) => auth.home(u),
            None => b"/",
        };
        let mut fs = full_path();
        let flen = path::join_home(home, &virt, &mut fs).map_err(|_| TOO_LONG)?;
        fs.truncate(flen);
        // Uploads in progress are invisible: not listed, not reachable.
        if is_upload_temp(path::file_name(&virt)) {
            return Err((550, b"No such file or directory."));
        }
        Ok(Resolved { virt, fs })
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
            Command::Feat => {
                let (head, tail) = FEAT_REPLY.split_at(b"211-Features:\r\n".len());
                self.out.push(head);
                if ctx.tls_available {
                    self.out.push(FEAT_TLS);
                }
                self.out.push(tail);
            }
            Command::Noop => self.reply(200, b"NOOP ok."),
            Command::Help(None) => self.out.push(HELP_REPLY),
            Command::Help(Some(verb)) => {
                if crate::protocol::command::in_help_list(verb) {
                    self.reply(214, b"Command is supported.")
                } else {
                    self.reply(502, b"Unknown command.")
                }
            }
            Command::Opts(arg) => self.cmd_opts(arg),
            Command::Auth(_) if !ctx.tls_available => {
                self.reply(502, b"TLS is not available on this server.")
            }
            Command::Auth(_) if self.tls => self.reply(503, b"TLS is already active."),
            Command::Auth(mech) => {
                if [&b"TLS"[..], b"SSL", b"TLS-C", b"TLS-P"]
                    .iter()
                    .any(|m| eq_ignore_case(m, mech))
                {
                    // RFC 4217 4.1: a new security exchange starts a new login.
                    self.reset_login();
                    self.reply(234, b"AUTH TLS successful.");
                    return Action::StartTls;
                }
                self.reply(504, b"Unknown security mechanism.");
            }
            Command::Pbsz(_) | Command::Prot(_) | Command::Ccc if !self.tls => {
                self.reply(503, b"Use AUTH TLS first.")
            }
            Command::Pbsz(_) => self.reply(200, b"PBSZ=0"),
            Command::Prot(level) => self.cmd_prot(level, ctx.config),
            // Dropping to clear text on the control connection would undo the
            // protection of the login; Ferry does not offer it.
            Command::Ccc => self.reply(534, b"CCC is refused by server policy."),
            Command::Stat(None) => self.cmd_stat(),
            _ if !self.logged_in() => {
                if memo_kind == Memo::User {
                    // Keep waiting for PASS.
                    self.memo_kind = Memo::User;
                }
                self.reply(530, b"Please login with USER and PASS.");
            }
            Command::Acct(_) => self.reply(202, b"ACCT not needed."),
            Command::Rein => {
                self.reset_login();
                self.reply(220, b"Ready for new user.");
                return Action::Reinit;
            }
            Command::Stat(Some(arg)) => self.cmd_stat_path(arg, ctx),
            Command::Pwd => {
                self.out.start(257, false);
                self.out.push_quoted(&self.cwd);
                self.out.push(b" is the current directory.");
                self.out.end_line();
            }
            Command::Cwd(arg) => self.cmd_cwd(arg, ctx),
            Command::Cdup => self.cmd_cwd(b"..", ctx),
            Command::Mkd(arg) => self.cmd_mkd(arg, ctx),
            Command::Rmd(arg) => self.cmd_simple(arg, ctx, Need::Delete, |fs, p| fs.remove_dir(p)),
            Command::Dele(arg) => self.cmd_dele(arg, ctx),
            Command::Rnfr(arg) => self.cmd_rnfr(arg, ctx),
            Command::Rnto(arg) => self.cmd_rnto(arg, memo_kind, ctx),
            Command::Size(arg) => self.cmd_size(arg, ctx),
            Command::Mdtm(arg) => self.cmd_mdtm(arg, ctx),
            Command::Mfmt { time, path } => self.cmd_mfmt(time, path, ctx),
            Command::Type(t) => {
                self.ttype = t;
                match t {
                    TransferType::Ascii => self.reply(200, b"Type set to A."),
                    TransferType::Image => self.reply(200, b"Type set to I."),
                }
            }
            Command::Mode => self.reply(200, b"Mode set to S."),
            Command::Stru => self.reply(200, b"Structure set to F."),
            Command::Allo => self.reply(202, b"ALLO not needed."),
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
            Command::Appe(arg) => return self.cmd_store(arg, 0, TransferKind::Append, ctx),
            Command::Stou(_) => return self.cmd_stou(ctx),
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
            Command::Site(arg) => self.cmd_site(arg, ctx),
        }
        Action::None
    }

    fn cmd_prot(&mut self, level: &[u8], config: &Config) {
        if eq_ignore_case(level, b"P") {
            self.prot_private = true;
            self.reply(200, b"Protection level set to P.");
        } else if eq_ignore_case(level, b"C") {
            if config.require_tls_data {
                return self.reply(534, b"PROT C is refused by server policy.");
            }
            self.prot_private = false;
            self.reply(200, b"Protection level set to C.");
        } else if eq_ignore_case(level, b"S") || eq_ignore_case(level, b"E") {
            self.reply(536, b"Protection level not supported.");
        } else {
            self.reply(504, b"Unknown protection level.");
        }
    }

    fn cmd_user<A: Authenticator>(&mut self, name: &[u8], ctx: &mut Ctx<'_, F, A>) -> Action {
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
        let peer = ferry_net::unmap(self.peer.ip());
        match ctx.auth.authenticate(&self.memo, pw, peer) {
            Ok(user) => {
                self.user = Some(user);
                self.login_name.clear();
                let keep = self.memo.len().min(self.login_name.capacity());
                let _ = self
                    .login_name
                    .extend_from_slice(self.memo.get(..keep).unwrap_or(b""));
                self.failures = 0;
                set_root(&mut self.cwd);
                self.reply(230, b"Login successful.");
            }
            Err(_) => {
                self.failures = self.failures.saturating_add(1);
                // The 530 is sent by the server when the delay has passed.
                self.login_delay = Some(ctx.now.add_millis(ctx.config.login_fail_delay_ms));
            }
        }
        Action::None
    }

    /// The name of the user being logged in or logged in (for the log).
    pub fn user_name(&self) -> &[u8] {
        if self.logged_in() {
            &self.login_name
        } else {
            &self.memo
        }
    }

    /// Called by the server when a failed login's delay has passed.
    pub fn login_delay_over(&mut self, config: &Config) -> Action {
        self.login_delay = None;
        self.memo.clear();
        if self.failures >= config.max_login_failures.max(1) {
            self.reply(530, b"Login incorrect. Too many failures, closing.");
            self.closing = true;
            return Action::Close;
        }
        self.reply(530, b"Login incorrect.");
        Action::None
    }

    fn cmd_opts(&mut self, arg: &[u8]) {
        // `split_word` rather than a split iterator: the same words, less code.
        let (first, rest) = split_word(arg);
        if eq_ignore_case(first, b"UTF8") || eq_ignore_case(first, b"UTF-8") {
            let (second, _) = split_word(rest);
            if second.is_empty() {
                self.reply(200, b"UTF8 mode always on.")
            } else if eq_ignore_case(second, b"ON") {
                self.reply(200, b"UTF8 mode enabled.")
            } else if eq_ignore_case(second, b"OFF") {
                self.reply(504, b"UTF8 cannot be turned off.")
            } else {
                self.reply(501, b"Use OPTS UTF8 ON.")
            }
        } else if eq_ignore_case(first, b"MLST") {
            // Every fact is always sent; report that set.
            self.reply(200, b"MLST OPTS type;size;modify;perm;UNIX.mode;");
        } else {
            self.reply(501, b"Option not understood.");
        }
    }

    fn cmd_stat(&mut self) {
        self.out.push(b"211-Ferry FTP server status:\r\n");
        self.out.push(b" Connected from ");
        let ip = ferry_net::unmap(self.peer.ip());
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
    fn cmd_stat_path<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        let meta = match ctx.fs.metadata(&r.fs) {
            Ok(m) => m,
            Err(e) => return self.reply_fs(&e),
        };
        let mut line = [0u8; PATH_LEN + 80];
        if meta.kind == EntryKind::File {
            self.out.push(b"213-Status of file:\r\n");
            if let Some(n) =
                listing::list_line(path::file_name(&r.virt), &meta, ctx.unix_now, &mut line)
            {
                self.out.push(b" ");
                self.out.push(line.get(..n).unwrap_or(b""));
            }
            self.out.push(b"213 End of status\r\n");
            return;
        }
        let mut dir = match ctx.fs.open_dir(&r.fs) {
            Ok(d) => d,
            Err(e) => return self.reply_fs(&e),
        };
        self.out.push(b"212-Status of directory:\r\n");
        const END: &[u8] = b"212 End of status\r\n";
        loop {
            let entry = match ctx.fs.read_dir(&mut dir, ctx.scratch) {
                Ok(Some(e)) => e,
                _ => break,
            };
            let name = ctx.scratch.get(..entry.name_len).unwrap_or(b"");
            if is_upload_temp(name) {
                continue;
            }
            let Some(n) = listing::list_line(name, &entry.metadata, ctx.unix_now, &mut line) else {
                continue;
            };
            if self.out.remaining() < n + 1 + END.len() + 40 {
                self.out.push(b" (listing truncated; use LIST)\r\n");
                break;
            }
            self.out.push(b" ");
            self.out.push(line.get(..n).unwrap_or(b""));
        }
        self.out.push(END);
    }

    fn cmd_cwd<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        match ctx.fs.metadata(&r.fs) {
            Ok(m) if m.kind == EntryKind::Dir => {
                self.cwd = r.virt;
                self.reply(250, b"Directory changed.");
            }
            Ok(_) => self.reply(550, b"Not a directory."),
            Err(e) => self.reply_fs(&e),
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

    fn cmd_mkd<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if !self.allowed(ctx.config, Need::Mkdir) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        if is_upload_temp(&r.virt) {
            return self.reply(553, b"File name not allowed.");
        }
        match ctx.fs.create_dir(&r.fs) {
            Ok(()) => {
                self.out.start(257, false);
                self.out.push_quoted(&r.virt);
                self.out.push(b" created.");
                self.out.end_line();
            }
            Err(e) => self.reply_fs(&e),
        }
    }

    fn cmd_simple<A: Authenticator>(
        &mut self,
        arg: &[u8],
        ctx: &mut Ctx<'_, F, A>,
        need: Need,
        op: fn(&mut F, &[u8]) -> Result<(), F::Error>,
    ) {
        if !self.allowed(ctx.config, need) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        if &r.virt[..] == b"/" {
            return self.reply(550, b"Permission denied.");
        }
        match op(ctx.fs, &r.fs) {
            Ok(()) => self.reply(250, b"Requested file action okay, completed."),
            Err(e) => self.reply_fs(&e),
        }
    }

    fn cmd_dele<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if !self.allowed(ctx.config, Need::Delete) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        // DELE removes files only; a directory needs RMD.
        match ctx.fs.metadata(&r.fs) {
            Ok(m) if m.kind == EntryKind::Dir => {
                return self.reply(550, b"Is a directory, use RMD.")
            }
            Ok(_) => {}
            Err(e) => return self.reply_fs(&e),
        }
        match ctx.fs.remove_file(&r.fs) {
            Ok(()) => self.reply(250, b"File deleted."),
            Err(e) => self.reply_fs(&e),
        }
    }

    fn cmd_rnfr<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if !self.allowed(ctx.config, Need::Rename) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        if &r.virt[..] == b"/" {
            return self.reply(550, b"Permission denied.");
        }
        match ctx.fs.metadata(&r.fs) {
            Ok(_) => {
                self.memo = r.fs;
                self.memo_kind = Memo::RenameFrom;
                self.reply(350, b"Ready for RNTO.");
            }
            Err(e) => self.reply_fs(&e),
        }
    }

    fn cmd_rnto<A: Authenticator>(&mut self, arg: &[u8], memo: Memo, ctx: &mut Ctx<'_, F, A>) {
        if memo != Memo::RenameFrom {
            return self.reply(503, b"RNFR required first.");
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        if &r.virt[..] == b"/" || is_upload_temp(&r.virt) {
            return self.reply(553, b"File name not allowed.");
        }
        let from = core::mem::take(&mut self.memo);
        // A directory must not move into itself.
        if r.fs.starts_with(&from) && r.fs.get(from.len()) == Some(&b'/') {
            return self.reply(553, b"Cannot move a directory into itself.");
        }
        match ctx.fs.rename(&from, &r.fs) {
            Ok(()) => self.reply(250, b"Rename successful."),
            Err(e) => self.reply_fs(&e),
        }
    }

    fn file_meta<A: Authenticator>(
        &mut self,
        arg: &[u8],
        ctx: &mut Ctx<'_, F, A>,
    ) -> Option<(Resolved, Metadata)> {
        let r = self.resolve_or_reply(ctx.auth, arg)?;
        match ctx.fs.metadata(&r.fs) {
            Ok(m) if m.kind == EntryKind::File => Some((r, m)),
            Ok(_) => {
                self.reply(550, b"Not a plain file.");
                None
            }
            Err(e) => {
                self.reply_fs(&e);
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

    fn cmd_mdtm<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if let Some((_, m)) = self.file_meta(arg, ctx) {
            match m.modified {
                Some(t) => {
                    self.out.start(213, false);
                    self.out.push(&time::format_timeval(t));
                    self.out.end_line();
                }
                None => self.reply(550, b"Modification time not known."),
            }
        }
    }

    fn cmd_mfmt<A: Authenticator>(&mut self, t: u64, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        if !self.allowed(ctx.config, Need::Write) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return;
        };
        match ctx.fs.set_modified(&r.fs, t) {
            Ok(()) => {
                self.out.start(213, false);
                self.out.push(b"Modify=");
                self.out.push(&time::format_timeval(t));
                self.out.push(b"; ");
                self.out.push(path::file_name(&r.virt));
                self.out.end_line();
            }
            Err(e) => self.reply_fs(&e),
        }
    }

    fn cmd_active(&mut self, mut addr: SocketAddr) {
        if self.epsv_all {
            return self.reply(503, b"EPSV ALL in effect, use EPSV.");
        }
        // FTP bounce protection: only toward the control peer, never a
        // privileged port; refused before any connection is attempted.
        let peer_ip = ferry_net::unmap(self.peer.ip());
        // lftp sends `EPRT |2|::|port|` meaning "my own address".
        if addr.ip().is_unspecified() {
            addr.set_ip(peer_ip);
        } else if ferry_net::unmap(addr.ip()) != peer_ip {
            return self.reply(504, b"Data connections only to the client's own address.");
        }
        if addr.port() < 1024 {
            return self.reply(504, b"Data connections to ports below 1024 are refused.");
        }
        self.data_mode = DataMode::Active(addr);
        self.reply(200, b"Command okay.");
    }

    fn data_ready(&mut self, config: &Config) -> bool {
        if config.require_tls_data && !self.prot_private {
            self.reply(521, b"Data connections must be protected: use PROT P.");
            return false;
        }
        if self.data_mode == DataMode::None {
            self.reply(425, b"Use PORT, EPRT, PASV or EPSV first.");
            return false;
        }
        true
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn start(&mut self, t: Transfer<F>) -> Action {
        self.transfer = Some(t);
        self.reply(150, b"Opening data connection.");
        Action::StartTransfer
    }

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
        let mut file = match ctx.fs.open_read(&r.fs) {
            Ok(f) => f,
            Err(e) => {
                self.reply_fs(&e);
                return Action::None;
            }
        };
        if rest > 0 {
            if rest > meta.size {
                let _ = ctx.fs.close(file);
                self.reply(554, b"Restart offset beyond end of file.");
                return Action::None;
            }
            if embedded_io::Seek::seek(&mut file, embedded_io::SeekFrom::Start(rest)).is_err() {
                let _ = ctx.fs.close(file);
                self.reply(554, b"Cannot restart at that offset.");
                return Action::None;
            }
        }
        let t = Transfer::new(
            TransferKind::Download,
            Body::send(file, self.ttype == TransferType::Ascii),
            r.virt,
            ctx.now,
        );
        self.start(t)
    }

    fn cmd_store<A: Authenticator>(
        &mut self,
        arg: &[u8],
        rest: u64,
        kind: TransferKind,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if !self.allowed(ctx.config, Need::Write) {
            return Action::None;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg) else {
            return Action::None;
        };
        self.store_resolved(r, rest, kind, ctx)
    }

    fn store_resolved<A: Authenticator>(
        &mut self,
        r: Resolved,
        rest: u64,
        kind: TransferKind,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if &r.virt[..] == b"/" || is_upload_temp(&r.virt) {
            self.reply(553, b"File name not allowed.");
            return Action::None;
        }
        let exists = match ctx.fs.metadata(&r.fs) {
            Ok(m) if m.kind == EntryKind::Dir => {
                self.reply(550, b"Is a directory.");
                return Action::None;
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if !self.data_ready(ctx.config) {
            return Action::None;
        }
        // A STOR that replaces a file writes to a temporary name and renames
        // on success, so a failed or cut upload never destroys the file it
        // replaces. A new file is written in place: a name the storage cannot
        // hold is refused before 150, and a cut upload can be resumed. APPE
        // and REST+STOR must write in place.
        let in_place = kind == TransferKind::Append || rest > 0 || !exists;
        let mut temp = PathBuf::new();
        let target: &[u8] = if in_place {
            &r.fs
        } else {
            if !crate::transfer::upload_temp_name(&r.fs, ctx.slot, &mut temp) {
                self.reply(553, b"File name too long.");
                return Action::None;
            }
            &temp
        };
        let mode = match (kind, rest) {
            (TransferKind::Append, _) => WriteMode::Append,
            (_, 0) => WriteMode::Truncate,
            _ => WriteMode::Update,
        };
        let mut file = match ctx.fs.open_write(target, mode) {
            Ok(f) => f,
            Err(e) => {
                self.reply_fs(&e);
                return Action::None;
            }
        };
        if rest > 0
            && embedded_io::Seek::seek(&mut file, embedded_io::SeekFrom::Start(rest)).is_err()
        {
            let _ = ctx.fs.close(file);
            self.reply(554, b"Cannot restart at that offset.");
            return Action::None;
        }
        let commit = if kind == TransferKind::Append || rest > 0 {
            Commit::InPlace
        } else if in_place {
            Commit::New(r.fs)
        } else {
            Commit::Replace(r.fs)
        };
        let body = Body::receive(file, self.ttype == TransferType::Ascii, commit);
        let t = Transfer::new(kind, body, r.virt, ctx.now);
        self.start(t)
    }

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
            let Ok(r) = self.resolve(ctx.auth, name.get(..len).unwrap_or(b"")) else {
                break;
            };
            if ctx.fs.metadata(&r.fs).is_err() {
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

    fn cmd_list<A: Authenticator>(
        &mut self,
        arg: Option<&[u8]>,
        format: ListFormat,
        ctx: &mut Ctx<'_, F, A>,
    ) -> Action {
        if !self.allowed(ctx.config, Need::Read) {
            return Action::None;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg.unwrap_or(b"")) else {
            return Action::None;
        };
        let meta = match ctx.fs.metadata(&r.fs) {
            Ok(m) => m,
            Err(e) => {
                self.reply_fs(&e);
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
        let body = if meta.kind == EntryKind::File {
            Body::single_line(format, path::file_name(&r.virt), &meta, perm, ctx.unix_now)
        } else {
            match ctx.fs.open_dir(&r.fs) {
                Ok(d) => Body::listing(d, format, perm, ctx.unix_now),
                Err(e) => {
                    self.reply_fs(&e);
                    return Action::None;
                }
            }
        };
        let t = Transfer::new(TransferKind::Listing, body, r.virt, ctx.now);
        self.start(t)
    }

    fn cmd_mlst<A: Authenticator>(&mut self, arg: Option<&[u8]>, ctx: &mut Ctx<'_, F, A>) {
        if !self.allowed(ctx.config, Need::Read) {
            return;
        }
        let Some(r) = self.resolve_or_reply(ctx.auth, arg.unwrap_or(b"")) else {
            return;
        };
        let meta = match ctx.fs.metadata(&r.fs) {
            Ok(m) => m,
            Err(e) => return self.reply_fs(&e),
        };
        let mut line = [0u8; PATH_LEN + 160];
        let perm = self.perm_facts(ctx.config);
        let Some(n) = listing::mlsx_line(&r.virt, &meta, false, perm, &mut line) else {
            return self.reply(553, b"Path too long.");
        };
        self.out.push(b"250-Start of list\r\n");
        self.out.push(b" ");
        self.out.push(line.get(..n).unwrap_or(b""));
        self.out.push(b"250 End\r\n");
    }

    fn cmd_site<A: Authenticator>(&mut self, arg: &[u8], ctx: &mut Ctx<'_, F, A>) {
        let (verb, rest) = split_word(arg);
        if eq_ignore_case(verb, b"HELP") {
            if ctx.config.site_chmod {
                self.out
                    .push(b"214-SITE commands:\r\n HELP\r\n CHMOD <mode> <path>\r\n214 End\r\n");
            } else {
                self.out.push(b"214-SITE commands:\r\n HELP\r\n214 End\r\n");
            }
        } else if eq_ignore_case(verb, b"CHMOD") && ctx.config.site_chmod {
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
            let Some(r) = self.resolve_or_reply(ctx.auth, target) else {
                return;
            };
            match ctx.fs.set_mode(&r.fs, mode) {
                Ok(()) => self.reply(200, b"SITE CHMOD command successful."),
                Err(e) => self.reply_fs(&e),
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
    ) -> Option<(TransferKind, PathBuf, u64, bool)> {
        let t = self.transfer.take()?;
        self.data_mode = DataMode::None;
        // Taken apart rather than cloning the path for the log.
        let Transfer {
            kind,
            body,
            path: virt,
            bytes,
            ..
        } = t;
        let result = body.finish(fs, slot, failure.map(|(code, _)| code));
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
        Some((kind, virt, bytes, ok))
    }
}

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
    use crate::protocol::command::in_help_list;

    #[test]
    fn help_names_exactly_the_verbs_help_accepts() {
        let body = HELP_REPLY
            .split(|&b| b == b'\n')
            .skip(1)
            .take_while(|l| l.starts_with(b" "));
        let mut listed = 0;
        for word in body.flat_map(|l| l.split(|&b| b == b' ' || b == b'\r')) {
            if !word.is_empty() {
                assert!(in_help_list(word), "{word:?}");
                assert!(in_help_list(&word.to_ascii_lowercase()), "{word:?}");
                listed += 1;
            }
        }
        assert_eq!(listed, 46);
        for word in [
            &b"AUTH"[..],
            b"PBSZ",
            b"PROT",
            b"CCC",
            b"SMNT",
            b"FOO",
            b"",
            b"PWDX",
        ] {
            assert!(!in_help_list(word), "{word:?}");
        }
    }

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
}

//! The stack probe: runs Ferry's real `Server::poll` through a scripted
//! FTP session in QEMU (`mps2-an385`, a Cortex-M3) and reports the deepest
//! stack it used; `cargo xtask size` reads the figure.
//!
//! What runs: the engine as the size probe builds it (same profile, same
//! opt-level, a `Server` with one session and a 512-byte transfer buffer)
//! over an in-memory TCP/IP stack where the probe plays the client
//! (`net.rs`), an in-memory file system (`fs.rs`), a fixed
//! user and a virtual clock. The client logs in and sends every command of
//! the default profile, each fed to the server a few bytes per poll:
//! listings, downloads (binary and ASCII), uploads (new file, replacing,
//! append, unique), passive and active data connections, FTPS over a
//! pass-through TLS layer, renames, errors (bad paths, missing files,
//! unknown commands, an over-long line, a wrong password), REIN and QUIT.
//! A build without some command answers it `502`, which the script accepts
//! there; everything else is checked (login gets `230`, a download gets
//! `226` and the right bytes, ...), and a wrong answer stops QEMU with
//! exit status 1, so the probe cannot measure a session that did nothing.
//!
//! What is measured: before the session starts, the 32 KiB below the
//! reset value of the stack pointer (`_stack_start`) are painted, except
//! the few bytes the painting function itself sits on. Afterwards the
//! lowest word that lost its paint gives the high water: every byte between
//! it and the reset stack pointer counts (cortex-m-rt's reset handler,
//! `main`, the script driver and everything `Server::listen`, `poll` and
//! `shutdown` call, the in-memory stack's and file system's methods
//! included). Not counted: building the server (`Server::new` and the
//! seeding of the file system run before the paint); the server, the
//! network's and the file system's state live in statics, not on the stack.
//! The driver keeps its own frames small (its buffers are statics too), so
//! the figure is the engine's, plus a few hundred bytes of harness.
//!
//! Output (semihosting): `stack-high-water: N` (bytes) on success.
#![no_std]
#![no_main]

mod fs;
mod net;
mod semihosting;

use core::cell::{Cell, RefCell};
use core::ptr::{addr_of, read_volatile, write_volatile};

use cortex_m_rt::entry;
use ferry_core::{AuthError, Authenticator, Config, Permissions, Server, User};
use ferry_net::{Clock, Instant, IpAddr, Ipv4Addr, SocketAddr};

use fs::{MemFs, Store};
use net::Net;

/// The transfer buffer, as in the size probe's RAM figure.
const BUFFER: usize = 512;
/// The server the probe runs: one session.
type Probe = Server<Net, MemFs, 1, BUFFER>;

/// How much of the stack is painted (the most that can be measured).
const WINDOW: usize = 32 * 1024;
/// What an untouched stack word holds.
const PAINT: u32 = 0x5AFE_C0DE;
/// Bytes of a command line handed to the server per poll.
const PIECE: usize = 5;
/// Polls a step may take before the probe gives up.
const POLLS: u32 = 3_000;
/// Virtual milliseconds per poll.
const TICK_MS: u64 = 10;

extern "C" {
    /// The reset value of the stack pointer (cortex-m-rt's link.x).
    static _stack_start: u32;
    /// The lowest address the stack may reach (cortex-m-rt's link.x).
    static _stack_end: u32;
}

/// The painted region: `(lowest address, reset stack pointer)`.
fn region() -> (usize, usize) {
    // Only the addresses of the linker's symbols are taken, never their
    // contents.
    let top = addr_of!(_stack_start) as usize;
    let end = addr_of!(_stack_end) as usize;
    (top.saturating_sub(WINDOW).max(end), top)
}

/// Paints the region below this function's own frame.
#[inline(never)]
fn paint() {
    let marker = 0u8;
    let here = core::hint::black_box(addr_of!(marker)) as usize;
    let (mut at, _) = region();
    while at + 64 < here {
        // SAFETY: `at` lies between the end of the statics and 64 bytes
        // below this function's frame: stack RAM that nothing uses now.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The deepest the stack has been since [`paint`], in bytes.
fn high_water() -> usize {
    let (low, top) = region();
    let mut at = low;
    // SAFETY: `at` is a word of RAM inside the stack's region.
    while at < top && unsafe { read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}

/// The one user: `ferry`, password `secret`, every permission.
struct Auth;

impl Authenticator for Auth {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        if user != b"ferry" || password != b"secret" {
            return Err(AuthError::Invalid);
        }
        Ok(User {
            id: 1,
            permissions: Permissions {
                read: true,
                write: true,
                delete: true,
                mkdir: true,
                rename: true,
            },
        })
    }

    fn home(&self, _user: &User) -> &[u8] {
        b"/"
    }
}

/// A clock that moves [`TICK_MS`] per poll.
struct VirtualClock(Cell<u64>);

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        Instant(self.0.get())
    }
    fn unix_time(&self) -> Option<u64> {
        Some(1_700_000_000 + self.0.get() / 1000)
    }
}

/// What a step moves over its data connection.
#[derive(Clone, Copy)]
enum Data {
    /// No data connection.
    None,
    /// A download whose bytes are the first, or (a build without the step's
    /// feature, e.g. ASCII or REST) the second.
    Get(&'static [u8], &'static [u8]),
    /// A listing that names this.
    List(&'static [u8]),
    /// An upload of these bytes.
    Put(&'static [u8]),
}

/// One command, the replies that pass, and its data.
struct Step {
    line: &'static [u8],
    ok: &'static [u16],
    data: Data,
}

/// A command without data.
const fn cmd(line: &'static [u8], ok: &'static [u16]) -> Step {
    Step {
        line,
        ok,
        data: Data::None,
    }
}

/// A command with data.
const fn xfer(line: &'static [u8], ok: &'static [u16], data: Data) -> Step {
    Step { line, ok, data }
}

/// A text file, for ASCII mode.
const README: &[u8] = b"hello\nworld\n";
/// The same with network line ends.
const README_ASCII: &[u8] = b"hello\r\nworld\r\n";
/// A binary file larger than the transfer buffer.
const DATA_BIN: [u8; 1000] = pattern(7);
/// An upload larger than the transfer buffer.
const UPLOAD: [u8; 900] = pattern(13);
/// A small upload.
const SMALL: &[u8] = b"small upload\n";
/// A command line longer than any the server takes.
const LONG_LINE: [u8; 600] = [b'N'; 600];

/// `N` bytes that differ from their neighbours.
const fn pattern<const N: usize>(step: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (i as u8).wrapping_mul(step).wrapping_add(i as u8 >> 3);
        i += 1;
    }
    out
}

/// The session: every command of the default profile. `502` passes for
/// the commands a build may leave out (everything outside emFTP's set).
const SCRIPT: &[Step] = &[
    cmd(b"AUTH TLS", &[234, 502]),
    cmd(b"USER ferry", &[331]),
    cmd(b"PASS wrong", &[530]),
    cmd(b"USER ferry", &[331]),
    cmd(b"PASS secret", &[230]),
    cmd(b"SYST", &[215]),
    cmd(b"FEAT", &[211]),
    cmd(b"NOOP", &[200]),
    cmd(b"PWD", &[257]),
    cmd(b"XPWD", &[257]),
    cmd(b"TYPE I", &[200]),
    cmd(b"PBSZ 0", &[200, 502]),
    cmd(b"PROT P", &[200, 502]),
    cmd(b"PASV", &[227]),
    xfer(b"LIST", &[226], Data::List(b"readme.txt")),
    cmd(b"PROT C", &[200, 502]),
    cmd(b"EPSV", &[229]),
    xfer(b"NLST", &[226], Data::List(b"data.bin")),
    cmd(b"PASV", &[227]),
    xfer(b"LIST -la /docs", &[226], Data::List(b"a.txt")),
    cmd(b"EPSV", &[229]),
    xfer(b"MLSD", &[226], Data::List(b"type=dir")),
    cmd(b"MLST /readme.txt", &[250]),
    cmd(b"CWD /docs", &[250]),
    cmd(b"XCWD /docs", &[250, 502]),
    cmd(b"CDUP", &[200, 250]),
    cmd(b"CWD docs", &[250]),
    cmd(b"XCUP", &[200, 250]),
    cmd(b"MKD new", &[257]),
    cmd(b"XMKD new2", &[257]),
    cmd(b"RMD new", &[250]),
    cmd(b"XRMD /new2", &[250]),
    cmd(b"SIZE /data.bin", &[213]),
    cmd(b"MDTM /readme.txt", &[213, 502]),
    cmd(b"MFMT 20240102030405 /readme.txt", &[213, 502]),
    cmd(b"STAT", &[211, 502]),
    cmd(b"STAT /docs", &[211, 212, 213, 502]),
    cmd(b"HELP", &[214, 502]),
    cmd(b"SITE HELP", &[214, 502]),
    cmd(b"SITE CHMOD 644 /readme.txt", &[200, 502]),
    cmd(b"OPTS UTF8 ON", &[200, 502]),
    cmd(b"ALLO 100", &[200, 202, 502]),
    cmd(b"MODE S", &[200, 502]),
    cmd(b"STRU F", &[200, 502]),
    cmd(b"ACCT none", &[202, 230, 502]),
    cmd(b"PASV", &[227]),
    xfer(b"RETR /data.bin", &[226], Data::Get(&DATA_BIN, &DATA_BIN)),
    cmd(b"TYPE A", &[200]),
    cmd(b"EPSV", &[229]),
    xfer(b"RETR readme.txt", &[226], Data::Get(README_ASCII, README)),
    cmd(b"TYPE I", &[200]),
    cmd(b"PORT 10,0,0,2,156,64", &[200]),
    xfer(b"STOR /up.bin", &[226], Data::Put(&UPLOAD)),
    cmd(b"EPRT |1|10.0.0.2|40001|", &[200]),
    xfer(b"RETR /up.bin", &[226], Data::Get(&UPLOAD, &UPLOAD)),
    cmd(b"PASV", &[227]),
    xfer(b"STOR /up.bin", &[226], Data::Put(SMALL)),
    cmd(b"PASV", &[227]),
    xfer(b"RETR /up.bin", &[226], Data::Get(SMALL, SMALL)),
    cmd(b"PASV", &[227]),
    xfer(b"APPE /up.bin", &[226, 502], Data::Put(SMALL)),
    cmd(b"PASV", &[227]),
    cmd(b"REST 6", &[350, 502]),
    xfer(b"RETR /readme.txt", &[226], Data::Get(b"world\n", README)),
    cmd(b"PASV", &[227]),
    xfer(b"STOU", &[226, 250, 502], Data::Put(SMALL)),
    cmd(b"ABOR", &[225, 226, 502]),
    cmd(b"RNFR /up.bin", &[350]),
    cmd(b"RNTO /docs/moved.bin", &[250]),
    cmd(b"DELE /docs/moved.bin", &[250]),
    // Errors.
    cmd(b"PASV", &[227]),
    xfer(b"RETR /missing.txt", &[550], Data::Get(b"", b"")),
    cmd(b"CWD /nowhere", &[550]),
    cmd(b"DELE /nowhere", &[550]),
    cmd(b"MKD /docs", &[550]),
    cmd(b"RMD /docs", &[550]),
    cmd(b"RNFR /nowhere", &[550]),
    cmd(b"SIZE /docs", &[550]),
    cmd(b"CWD ../../../..", &[250]),
    cmd(b"PORT 192,168,1,1,4,1", &[500, 501, 504]),
    cmd(b"XYZZY", &[500, 502]),
    cmd(&LONG_LINE, &[500]),
    cmd(b"NOOP", &[200]),
    // A build without REIN is still logged in: USER may be refused.
    cmd(b"REIN", &[220, 502]),
    cmd(b"USER ferry", &[331, 230, 503, 530]),
    cmd(b"PASS secret", &[230, 202, 503]),
    cmd(b"QUIT", &[221]),
];

/// The client's state between polls (a static, to keep the driver's
/// frames small).
struct Client {
    /// The control connection.
    ctrl: usize,
    /// The data connection of the current step.
    data: Option<usize>,
    /// The first line of the latest reply.
    reply: [u8; 96],
    reply_len: usize,
    /// The start of what the latest download delivered, and its length.
    capture: [u8; fs::FILE],
    total: usize,
}

impl Client {
    const fn new() -> Client {
        Client {
            ctrl: 0,
            data: None,
            reply: [0; 96],
            reply_len: 0,
            capture: [0; fs::FILE],
            total: 0,
        }
    }

    fn captured(&self) -> &[u8] {
        self.capture.get(..self.total.min(fs::FILE)).unwrap_or(&[])
    }
}

/// Everything a poll needs, and the client.
struct Run<'a> {
    server: &'a mut Probe,
    net: &'a mut Net,
    fs: MemFs,
    auth: Auth,
    clock: VirtualClock,
    client: &'a mut Client,
}

/// Why the session failed.
type Failed = &'static [u8];

impl Run<'_> {
    /// One poll of the server, one tick of the clock.
    fn poll(&mut self) {
        self.clock.0.set(self.clock.0.get() + TICK_MS);
        let _ = self
            .server
            .poll(self.net, &mut self.fs, &mut self.auth, &self.clock, &mut ());
    }

    /// The code of the next complete reply on the control connection, its
    /// first line kept in `client.reply`.
    fn take_reply(&mut self) -> Option<u16> {
        let conn = self.net.conn(self.client.ctrl)?;
        let bytes = conn.to_client.bytes();
        let code = bytes.get(..3)?;
        let mut end = 0;
        let mut first = true;
        loop {
            let line = bytes.get(end..)?;
            let len = line.windows(2).position(|w| w == b"\r\n")? + 2;
            let last = line.get(..3) == Some(code) && line.get(3) == Some(&b' ');
            if first {
                let n = len.min(self.client.reply.len());
                if let (Some(dst), Some(src)) = (self.client.reply.get_mut(..n), line.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.client.reply_len = n;
                first = false;
            }
            end += len;
            if last {
                break;
            }
        }
        let code = code
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d.wrapping_sub(b'0')));
        conn.to_client.consume(end);
        Some(code)
    }

    /// Moves the current step's data: takes the server's active connection,
    /// feeds an upload, drains a download.
    fn move_data(&mut self, upload: &mut &'static [u8], put: bool) {
        if self.client.data.is_none() {
            self.client.data = self.net.active.take();
        }
        let Some(conn) = self.client.data.and_then(|d| self.net.conn(d)) else {
            return;
        };
        if put {
            let n = conn
                .to_server
                .push(upload.get(..upload.len().min(128)).unwrap_or(&[]));
            *upload = upload.get(n..).unwrap_or(&[]);
            if upload.is_empty() {
                conn.client_shut = true;
            }
        }
        let got = conn.to_client.bytes();
        let at = self.client.total;
        let n = got.len();
        if let Some(dst) = self.client.capture.get_mut(at..) {
            let m = n.min(dst.len());
            if let (Some(dst), Some(src)) = (dst.get_mut(..m), got.get(..m)) {
                dst.copy_from_slice(src);
            }
        }
        self.client.total += n;
        conn.to_client.consume(n);
    }

    /// Polls until a final reply arrives; its code.
    fn final_reply(&mut self, data: Data) -> Result<u16, Failed> {
        let (mut upload, put) = match data {
            Data::Put(bytes) => (bytes, true),
            _ => (&[][..], false),
        };
        for _ in 0..POLLS {
            self.poll();
            self.move_data(&mut upload, put);
            match self.take_reply() {
                Some(code) if code >= 200 => return Ok(code),
                _ => {}
            }
        }
        Err(b"no reply")
    }

    /// Runs one step.
    fn step(&mut self, step: &Step) -> Result<(), Failed> {
        let ctrl = self.client.ctrl;
        for piece in step.line.chunks(PIECE).chain([&b"\r\n"[..]]) {
            let mut piece = piece;
            for _ in 0..POLLS {
                let conn = self.net.conn(ctrl).ok_or(&b"control connection gone"[..])?;
                let n = conn.to_server.push(piece);
                piece = piece.get(n..).unwrap_or(&[]);
                self.poll();
                if piece.is_empty() {
                    break;
                }
            }
        }
        self.client.total = 0;
        let code = self.final_reply(step.data)?;
        if !step.ok.contains(&code) {
            return Err(b"unexpected reply");
        }
        if let Data::None = step.data {
            return self.after(code);
        }
        if code == 226 {
            // The data connection ends after the reply, or before.
            let mut rest: &'static [u8] = &[];
            for _ in 0..POLLS {
                let closed = self
                    .client
                    .data
                    .and_then(|d| self.net.conn(d))
                    .is_none_or(|c| c.server_closed && c.to_client.len() == 0);
                if closed {
                    break;
                }
                self.poll();
                self.move_data(&mut rest, false);
            }
            let got = self.client.captured();
            let good = match step.data {
                Data::Get(a, b) => got == a || got == b,
                Data::List(name) => got.windows(name.len()).any(|w| w == name),
                _ => true,
            };
            if !good {
                return Err(b"wrong data");
            }
        }
        if let Some(d) = self.client.data.take() {
            self.net.client_close(d);
        }
        Ok(())
    }

    /// What the client does after a reply: connect to a passive port.
    fn after(&mut self, code: u16) -> Result<(), Failed> {
        if code != 227 && code != 229 {
            return Ok(());
        }
        // The last two numbers of a 227 reply (…,p1,p2), the last of 229.
        let text = self
            .client
            .reply
            .get(4..self.client.reply_len)
            .unwrap_or(&[]);
        let (mut prev, mut last, mut cur, mut digits) = (0u32, 0u32, 0u32, false);
        for &b in text {
            if b.is_ascii_digit() {
                cur = cur * 10 + u32::from(b - b'0');
                digits = true;
            } else if digits {
                (prev, last, cur, digits) = (last, cur, 0, false);
            }
        }
        let port = if code == 227 { prev * 256 + last } else { last };
        let port = u16::try_from(port).map_err(|_| &b"bad port"[..])?;
        self.client.data = Some(
            self.net
                .client_connect(port)
                .ok_or(&b"nothing listens on the passive port"[..])?,
        );
        Ok(())
    }

    /// Logs in and runs the whole script; the failing step's index and why.
    fn session(&mut self) -> Result<(), (usize, Failed)> {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 21);
        if self.server.listen(self.net, addr).is_err() {
            return Err((0, b"listen failed"));
        }
        self.client.ctrl = self
            .net
            .client_connect(21)
            .ok_or((0, &b"no listener"[..]))?;
        match self.final_reply(Data::None) {
            Ok(220) => {}
            Ok(_) => return Err((0, b"no 220 greeting")),
            Err(why) => return Err((0, why)),
        }
        for (i, step) in SCRIPT.iter().enumerate() {
            self.step(step).map_err(|why| (i + 1, why))?;
        }
        // After QUIT the server closes the control connection.
        for _ in 0..POLLS {
            self.poll();
            if self
                .net
                .conn(self.client.ctrl)
                .is_none_or(|c| c.server_closed)
            {
                break;
            }
        }
        let closed = self
            .net
            .conn(self.client.ctrl)
            .is_none_or(|c| c.server_closed);
        if !closed || self.server.session_count() != 0 {
            return Err((SCRIPT.len(), b"the session did not end after QUIT"));
        }
        self.server.shutdown(self.net, &mut self.fs);
        Ok(())
    }
}

/// The server's settings: defaults, with a passive range.
fn config() -> Config {
    Config {
        passive_ports: (50_000, 50_009),
        ..Config::default()
    }
}

/// Builds the server in its static (not measured: before the paint).
#[inline(never)]
fn start(slot: &mut Option<Probe>) {
    *slot = Some(Probe::new(config()));
}

/// The files the session finds.
fn seed(store: &mut Store) -> bool {
    store.seed(b"/readme.txt", false, README)
        && store.seed(b"/data.bin", false, &DATA_BIN)
        && store.seed(b"/docs", true, b"")
        && store.seed(b"/docs/a.txt", false, b"a\n")
}

#[entry]
fn main() -> ! {
    static mut NET: Net = Net::new();
    static mut STORE: RefCell<Store> = RefCell::new(Store::new());
    static mut SERVER: Option<Probe> = None;
    static mut CLIENT: Client = Client::new();

    let seeded = seed(STORE.get_mut());
    start(SERVER);
    let (Some(server), true) = (SERVER.as_mut(), seeded) else {
        semihosting::print(&[b"stack probe: FAILED to set up"]);
        semihosting::exit(false);
    };
    let store: &'static RefCell<Store> = STORE;
    paint();
    let result = run(&mut Run {
        server,
        net: NET,
        fs: MemFs::new(store),
        auth: Auth,
        clock: VirtualClock(Cell::new(0)),
        client: CLIENT,
    });
    let used = high_water();
    let mut digits = [0u8; 10];
    match result {
        Ok(()) => {
            semihosting::print(&[
                b"stack probe: ",
                semihosting::decimal(SCRIPT.len() as u32, &mut digits),
                b" steps passed",
            ]);
            semihosting::print(&[
                b"stack-high-water: ",
                semihosting::decimal(used as u32, &mut digits),
            ]);
            if used + 256 >= WINDOW {
                semihosting::print(&[b"stack probe: FAILED: the stack outgrew the painted window"]);
                semihosting::exit(false);
            }
            semihosting::exit(true);
        }
        Err((i, why)) => {
            let line = i
                .checked_sub(1)
                .and_then(|i| SCRIPT.get(i))
                .map_or(&b"(connect)"[..], |s| s.line);
            let line = line.get(..line.len().min(40)).unwrap_or(&[]);
            let reply = CLIENT.reply.get(..CLIENT.reply_len).unwrap_or(&[]);
            semihosting::print(&[
                b"stack probe: FAILED at step ",
                semihosting::decimal(i as u32, &mut digits),
                b" (",
                line,
                b"): ",
                why,
                b"; last reply: ",
                reply,
            ]);
            semihosting::exit(false);
        }
    }
}

/// The measured part: listen, the session, shutdown.
#[inline(never)]
fn run(run: &mut Run<'_>) -> Result<(), (usize, Failed)> {
    run.session()
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    semihosting::print(&[b"stack probe: FAILED: panic"]);
    semihosting::exit(false);
}

//! Data transfers: moving file bytes and listing lines over a data connection
//! in bounded steps, with ASCII line-ending conversion both ways.
//!
//! Sends may be partial and the transfer buffer is shared by all sessions,
//! so nothing unsent is kept in it: a download seeks its file back by what
//! was not sent, and a listing keeps only its one pending line.
use crate::protocol::listing::{self, PermFacts};
use crate::server::TransferKind;
use crate::session::{fs_error_reply, is_hidden, PATH_LEN};
use embedded_io::{Read, Seek, SeekFrom, Write};
use ferry_fs::{Error as _, ErrorKind, FileSystem, Metadata};
use ferry_net::{nb, Instant, SecureStack, TcpClientStack};

/// Longest name a listing line holds: a path's length, at most 1024 bytes
/// (a name is one component: 255 bytes on Linux and macOS, 255 UTF-16
/// units, at most 765 bytes of UTF-8, on Windows), so that hosts'
/// 4096-byte paths do not make every session's line buffer as long.
pub const LIST_NAME_LEN: usize = if PATH_LEN > 1024 { 1024 } else { PATH_LEN };

/// Longest listing line: a name plus MLSx facts, a space and CR LF (at
/// most 87 bytes with a 20-digit size and `modify`, 65 without) or `ls -l`
/// columns (57 with CR LF). A longer line (a name longer than
/// [`LIST_NAME_LEN`]) is left out of the listing.
pub const LIST_LINE_LEN: usize = LIST_NAME_LEN + if cfg!(feature = "mtime") { 96 } else { 68 };

/// The wall clock a listing dates its entries by; nothing without the
/// `mtime` feature (every entry shows the epoch), so no session keeps it.
#[cfg(feature = "mtime")]
pub(crate) type ListNow = Option<u64>;
/// The wall clock a listing dates its entries by; nothing without the
/// `mtime` feature (every entry shows the epoch), so no session keeps it.
#[cfg(not(feature = "mtime"))]
pub(crate) type ListNow = ();
/// Most buffer-fulls or listing entries one session moves per poll, so one
/// fast transfer cannot starve the other sessions.
const STEPS_PER_POLL: usize = 8;

/// Most bytes one session's transfer moves in one `poll` on a host
/// (feature `scale`), whose buffers and zero-copy steps are large: the
/// other sessions (a NOOP behind four downloads) wait for less.
#[cfg(feature = "scale")]
const PUMP_BUDGET: usize = 256 << 10;

/// The same for an upload: its zero-copy steps splice into the file
/// through a pipe of 1 MiB, and long steps pay (256 MiB STOR, 12 runs
/// each, servers' places swapped: 2221 MiB/s on average with 256 KiB a
/// poll, 2493 with 1 MiB).
#[cfg(feature = "scale")]
const RECEIVE_BUDGET: usize = 1 << 20;

/// Which listing a transfer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// `ls -l` lines.
    List,
    /// Names only.
    Nlst,
    /// RFC 3659 facts.
    Mlsd,
}

/// Whether the data connection exists yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the passive accept or the active connect.
    Connecting,
    /// Moving bytes.
    Running,
}

/// What moves over the data connection. Small, so that ending a transfer
/// can move it: a listing's pending line is the session's
/// [`LineBuf`](crate::session::Session::line_buf).
pub(crate) enum Body<F: FileSystem> {
    /// RETR: file to network.
    Send {
        file: F::File,
        ascii: bool,
        /// The byte before the next unsent one was CR (no CR added before LF).
        prev_cr: bool,
        /// The CR added before the next LF was already sent.
        cr_sent: bool,
    },
    /// STOR/APPE/STOU: network to file.
    Receive {
        file: F::File,
        ascii: bool,
        /// A CR ended the last chunk; it is written or dropped with the next.
        pending_cr: bool,
        /// What happens to the written file at the end.
        commit: Commit,
    },
    /// LIST/NLST/MLSD: directory entries to network.
    Listing {
        dir: Option<F::Dir>,
        format: ListFormat,
        perm: PermFacts,
        unix_now: ListNow,
        len: usize,
        sent: usize,
    },
}

impl<F: FileSystem> Body<F> {
    pub fn send(file: F::File, ascii: bool) -> Self {
        Body::Send {
            file,
            ascii,
            prev_cr: false,
            cr_sent: false,
        }
    }
    pub fn receive(file: F::File, ascii: bool, commit: Commit) -> Self {
        Body::Receive {
            file,
            ascii,
            pending_cr: false,
            commit,
        }
    }
    pub fn listing(dir: F::Dir, format: ListFormat, perm: PermFacts, unix_now: ListNow) -> Self {
        Body::Listing {
            dir: Some(dir),
            format,
            perm,
            unix_now,
            len: 0,
            sent: 0,
        }
    }
    /// A listing of one file: its single line, written into `line`.
    pub fn single_line(
        format: ListFormat,
        name: &[u8],
        meta: &Metadata,
        perm: PermFacts,
        unix_now: ListNow,
        line: &mut [u8; LIST_LINE_LEN],
    ) -> Self {
        let len = format_line(format, name, meta, perm, unix_now, line).unwrap_or(0);
        Body::Listing {
            dir: None,
            format,
            perm,
            unix_now,
            len,
            sent: 0,
        }
    }
}

fn format_line(
    format: ListFormat,
    name: &[u8],
    meta: &Metadata,
    perm: PermFacts,
    unix_now: ListNow,
    out: &mut [u8],
) -> Option<usize> {
    match format {
        #[cfg(feature = "mtime")]
        ListFormat::List => listing::list_line(name, meta, unix_now, out),
        #[cfg(not(feature = "mtime"))]
        ListFormat::List => {
            let () = unix_now;
            listing::list_line(name, meta, None, out)
        }
        ListFormat::Nlst => listing::nlst_line(name, out),
        ListFormat::Mlsd => listing::mlsx_line(name, meta, false, perm, out),
    }
}

/// What an upload's end does with the file it wrote (the target's path is
/// the session's memo while the transfer runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Written to a temporary name: renamed over the target on success,
    /// removed on failure (the replaced file stays whole).
    Replace,
    /// A new file written in place: kept when the connection is cut (the
    /// client can resume it), removed when storage failed (e.g. disk full),
    /// so no partial file holds the space.
    New,
    /// APPE or REST+STOR into an existing file: kept as written.
    InPlace,
}

/// A transfer in progress.
pub(crate) struct Transfer<F: FileSystem> {
    pub kind: TransferKind,
    pub body: Body<F>,
    /// Bytes of the storage path (the memo) that are the user's home: the
    /// rest is the virtual path, for the log.
    pub home: u16,
    pub bytes: u64,
    pub phase: Phase,
    /// Last time bytes moved (or the transfer started): the data timeout.
    pub last_progress: Instant,
}

/// A session's transfer, if one runs: an `Option` whose all-zero bytes are
/// "none" (tag 0 first), so a server may be set up in zeroed memory and
/// [`reset`](crate::Server::reset) (a board does that to keep the server
/// off its stack); `Option<Transfer>` would hide its "none" in a niche.
#[repr(u8)]
pub(crate) enum Running<F: FileSystem> {
    /// No transfer.
    None = 0,
    /// This one.
    Some(Transfer<F>) = 1,
}

impl<F: FileSystem> Running<F> {
    pub fn as_ref(&self) -> Option<&Transfer<F>> {
        match self {
            Running::Some(t) => Some(t),
            Running::None => None,
        }
    }
    pub fn as_mut(&mut self) -> Option<&mut Transfer<F>> {
        match self {
            Running::Some(t) => Some(t),
            Running::None => None,
        }
    }
    pub fn is_some(&self) -> bool {
        matches!(self, Running::Some(_))
    }
    pub fn is_none(&self) -> bool {
        !self.is_some()
    }
    pub fn take(&mut self) -> Option<Transfer<F>> {
        match core::mem::replace(self, Running::None) {
            Running::Some(t) => Some(t),
            Running::None => None,
        }
    }
}

/// What one pump step achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pump {
    /// Bytes moved; more may be possible right away.
    Progress,
    /// Nothing could move (socket or peer not ready).
    Idle,
    /// Finished: `None` on success, or the failure reply.
    Done(Option<(u16, &'static [u8])>),
}

const CONN_LOST: (u16, &[u8]) = (426, b"Connection closed; transfer aborted.");

#[cfg(feature = "zero-copy")]
const NO_SPACE: (u16, &[u8]) = (452, b"Insufficient storage space; transfer aborted.");
const LOCAL_ERROR: (u16, &[u8]) = (451, b"Local error in processing; transfer aborted.");

/// The reply of a failed file operation. (Literals, not `NO_SPACE` and
/// `LOCAL_ERROR`: with them a board's build grew by 108 bytes.)
fn storage_failure<E: ferry_fs::Error>(e: &E) -> (u16, &'static [u8]) {
    match e.fs_kind() {
        ErrorKind::NoSpace => (452, b"Insufficient storage space; transfer aborted."),
        _ => (451, b"Local error in processing; transfer aborted."),
    }
}

impl<F: FileSystem> Transfer<F> {
    pub fn new(kind: TransferKind, body: Body<F>, home: u16, now: Instant) -> Self {
        Transfer {
            kind,
            body,
            home,
            bytes: 0,
            phase: Phase::Connecting,
            last_progress: now,
        }
    }

    /// Moves up to a few buffer-fulls between storage and `sock`.
    pub fn pump<S: SecureStack>(
        &mut self,
        stack: &mut S,
        sock: &mut S::TcpSocket,
        fs: &mut F,
        scratch: &mut [u8],
        line: &mut [u8; LIST_LINE_LEN],
        now: Instant,
    ) -> Pump {
        let mut progressed = false;
        #[cfg(feature = "zero-copy")]
        let mut short = false;
        #[cfg(feature = "scale")]
        let mut moved = 0;
        #[cfg(feature = "scale")]
        let limit = match self.body {
            Body::Receive { .. } => RECEIVE_BUDGET,
            _ => PUMP_BUDGET,
        };
        for _ in 0..STEPS_PER_POLL {
            // What a zero-copy step may move: the rest of this poll's
            // budget on a host.
            #[cfg(all(feature = "zero-copy", feature = "scale"))]
            let budget = limit.saturating_sub(moved);
            #[cfg(all(feature = "zero-copy", not(feature = "scale")))]
            let budget = ZERO_COPY_STEP;
            // Without `mtime` the listing's clock is `()`.
            #[cfg_attr(not(feature = "mtime"), allow(clippy::unit_arg))]
            let step = match &mut self.body {
                Body::Send {
                    file,
                    ascii,
                    prev_cr,
                    cr_sent,
                } => {
                    // Zero-copy where the stack and the storage can (and
                    // nothing is converted); else through `scratch`.
                    #[cfg(feature = "zero-copy")]
                    let direct = match *ascii && cfg!(feature = "ascii") {
                        false => send_file_step(stack, sock, fs, file, budget.min(ZERO_COPY_STEP)),
                        true => None,
                    };
                    #[cfg(not(feature = "zero-copy"))]
                    let direct = None;
                    match direct {
                        Some(step) => step,
                        None => send_step(stack, sock, file, *ascii, prev_cr, cr_sent, scratch),
                    }
                }
                #[cfg(not(feature = "zero-copy"))]
                Body::Receive {
                    file,
                    ascii,
                    pending_cr,
                    ..
                } => receive_step(stack, sock, file, *ascii, pending_cr, scratch),
                // Zero-copy where the stack and the storage can (and nothing
                // is converted); else through `scratch`.
                #[cfg(feature = "zero-copy")]
                Body::Receive {
                    file,
                    ascii,
                    pending_cr,
                    ..
                } => match *ascii && cfg!(feature = "ascii") {
                    false => receive_file_step(stack, sock, fs, file, budget),
                    true => None,
                }
                .unwrap_or_else(|| receive_step(stack, sock, file, *ascii, pending_cr, scratch)),
                Body::Listing {
                    dir,
                    format,
                    perm,
                    unix_now,
                    len,
                    sent,
                } => listing_step(
                    stack, sock, fs, dir, *format, *perm, *unix_now, line, len, sent, scratch,
                ),
            };
            match step {
                Step::Moved(n) => {
                    self.bytes = self.bytes.saturating_add(n as u64);
                    self.last_progress = now;
                    progressed = true;
                    #[cfg(feature = "scale")]
                    {
                        moved += n;
                        if moved >= limit {
                            break;
                        }
                    }
                }
                // The same, and less than was offered: the connection is
                // full or drained, or the file or the stream ended. One
                // more step sees the end in this pass, not the next (a
                // small file's 226 goes a pass sooner); else it hears
                // `WouldBlock`.
                #[cfg(feature = "zero-copy")]
                Step::Last(n) => {
                    self.bytes = self.bytes.saturating_add(n as u64);
                    self.last_progress = now;
                    progressed = true;
                    if short {
                        break;
                    }
                    short = true;
                }
                Step::Blocked => break,
                Step::Done(r) => return Pump::Done(r),
            }
        }
        if progressed {
            Pump::Progress
        } else {
            Pump::Idle
        }
    }
}

impl<F: FileSystem> Body<F> {
    /// Closes the file or directory; for uploads, applies the [`Commit`] to
    /// `target`. `failure` is the reply code of a failed transfer (None:
    /// success).
    pub fn finish(
        self,
        fs: &mut F,
        slot: usize,
        target: &[u8],
        failure: Option<u16>,
        spare: &mut [u8],
    ) -> Result<(), ErrorKind> {
        let ok = failure.is_none();
        match self {
            Body::Send { file, .. } => fs.close(file).map_err(|e| e.fs_kind()),
            Body::Listing { .. } => Ok(()),
            Body::Receive {
                mut file,
                pending_cr,
                commit,
                ..
            } => {
                // A CR that ended the upload was data, not half of a CR LF.
                let mut result = Ok(());
                if cfg!(feature = "ascii") && pending_cr && ok {
                    result = file.write_all(b"\r").map_err(|e| e.fs_kind());
                }
                let closed = fs.close(file).map_err(|e| e.fs_kind());
                result = result.and(closed);
                match commit {
                    Commit::InPlace => {}
                    Commit::New => {
                        // 451/452: the storage failed, not the network.
                        let storage_failed =
                            result.is_err() || matches!(failure, Some(451 | 452 | 552));
                        if storage_failed {
                            let _ = fs.remove_file(target);
                        }
                    }
                    Commit::Replace => {
                        if let Some(n) = upload_temp_name(target, slot, spare) {
                            let temp = spare.get(..n).unwrap_or(&[]);
                            if ok && result.is_ok() {
                                result = fs.rename(temp, target).map_err(|e| e.fs_kind());
                            }
                            if !ok || result.is_err() {
                                let _ = fs.remove_file(temp);
                            }
                        }
                    }
                }
                result
            }
        }
    }
}

/// The temporary name of an upload to `target` by session `slot`: a short
/// name in the target's directory (`/dir/.3.ferry-part`), so it fits
/// wherever the target's name fits. Written into `out`; its length, or
/// `None` if it does not fit `out` or a path.
/// One session runs one transfer at a time, so the name is unique.
pub(crate) fn upload_temp_name(target: &[u8], slot: usize, out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut num = [0u8; 20];
    let n = crate::protocol::num::write_u64(slot as u64, &mut num).unwrap_or(0);
    let dir = crate::protocol::path::parent(target);
    let sep: &[u8] = if dir == b"/" { b"." } else { b"/." };
    // One loop over the parts: one call site instead of five.
    [
        dir,
        sep,
        num.get(..n).unwrap_or(b"0"),
        crate::session::UPLOAD_SUFFIX,
    ]
    .iter()
    .try_for_each(|part| {
        let dst = out.get_mut(len..len + part.len())?;
        dst.copy_from_slice(part);
        len += part.len();
        Some(())
    })?;
    // As long as a path may be, or it could not be opened again by name.
    (len <= PATH_LEN).then_some(len)
}

enum Step {
    Moved(usize),
    /// Moved less than was offered: the connection takes or gives no more
    /// for now, or the file or the stream is at its end.
    #[cfg(feature = "zero-copy")]
    Last(usize),
    Blocked,
    Done(Option<(u16, &'static [u8])>),
}

/// Whether source byte `b` at index `i` of a chunk gets a CR added before it.
fn adds_cr(b: u8, i: usize, prev_is_cr: bool, cr_sent: bool) -> bool {
    b == b'\n' && !prev_is_cr && !(i == 0 && cr_sent)
}

/// Expands LF to CR LF in place: `buf[..n]` holds source bytes, and the
/// result fills `buf[..returned]`; 0 if it would not fit. `prev_cr`: the
/// source byte before the chunk was CR; `cr_sent`: the CR for the chunk's
/// first byte (an LF) was already sent.
fn expand_crlf(buf: &mut [u8], n: usize, prev_cr: bool, cr_sent: bool) -> usize {
    let mut extra = 0;
    let mut p = prev_cr;
    for (i, b) in buf.iter().take(n).enumerate() {
        if adds_cr(*b, i, p, cr_sent) {
            extra += 1;
        }
        p = *b == b'\r';
    }
    let total = n + extra;
    if total > buf.len() {
        return 0;
    }
    // From the back, so no source byte is overwritten before it is read:
    // the write index stays above the read index by the CRs still to add.
    let mut w = total;
    let mut r = n;
    while r > 0 {
        r -= 1;
        let b = buf.get(r).copied().unwrap_or(0);
        let before_cr = if r == 0 {
            prev_cr
        } else {
            buf.get(r - 1) == Some(&b'\r')
        };
        w -= 1;
        if let Some(slot) = buf.get_mut(w) {
            *slot = b;
        }
        if adds_cr(b, r, before_cr, cr_sent) {
            w -= 1;
            if let Some(slot) = buf.get_mut(w) {
                *slot = b'\r';
            }
        }
    }
    total
}

/// After `sent` bytes of the expansion of `src` went out: how many source
/// bytes are fully sent, and whether the CR added before the next one is.
fn consumed(src: &[u8], sent: usize, prev_cr: bool, cr_sent: bool) -> (usize, bool) {
    let mut out = 0;
    let mut p = prev_cr;
    for (i, b) in src.iter().enumerate() {
        let added = adds_cr(*b, i, p, cr_sent);
        let w = if added { 2 } else { 1 };
        if out + w > sent {
            return (i, added && out + 1 == sent);
        }
        out += w;
        p = *b == b'\r';
    }
    (src.len(), false)
}

/// Most bytes one zero-copy step moves (within the `scale` feature's
/// budget per poll, if any). A 256 MiB RETR over loopback, 16 runs each,
/// servers' places rotated, one file hard-linked for all (2 vCPUs, Linux
/// 6.18): 1615 MiB/s on average in `sendfile` steps of 64 KiB, 2060 in
/// steps of 128 KiB, 2121 in steps of 256 KiB. A bare sender (no FTP) gave
/// the same shape: 64 KiB steps the slowest, 128 KiB the fastest, 1 MiB and
/// one blocking call for the whole file in between. An earlier machine
/// showed no difference beyond the noise (4745 and 4976 MiB/s in steps of
/// 256 and 64 KiB).
#[cfg(feature = "zero-copy")]
const ZERO_COPY_STEP: usize = 128 << 10;

/// A step of a download sent by [`SecureStack::send_file`] from the file's
/// position, which then moves past what went; `None` when the storage or
/// the stack cannot, and nothing was done. Less than `len` sent means the
/// socket's buffer is full or the file ended: the next call hears
/// `WouldBlock` or the end.
#[cfg(feature = "zero-copy")]
fn send_file_step<S: SecureStack, F: FileSystem>(
    stack: &mut S,
    sock: &mut S::TcpSocket,
    fs: &F,
    file: &mut F::File,
    len: usize,
) -> Option<Step> {
    let fd = fs.os_file(file)?;
    let sent = stack.send_file(sock, ferry_net::OsFile(fd), len)?;
    Some(direct_step(sent.map_err(|e| e.map(|_| CONN_LOST)), len))
}

/// A step of an upload written by [`SecureStack::receive_file`] at the
/// file's position; `None` when the storage or the stack cannot, and
/// nothing was done. Less than `len` received means nothing more has
/// arrived for now: the next call hears `WouldBlock`, or the end if the
/// peer has closed.
#[cfg(feature = "zero-copy")]
fn receive_file_step<S: SecureStack, F: FileSystem>(
    stack: &mut S,
    sock: &mut S::TcpSocket,
    fs: &F,
    file: &mut F::File,
    len: usize,
) -> Option<Step> {
    use ferry_net::FileError;
    let fd = fs.os_file(file)?;
    let received = stack.receive_file(sock, ferry_net::OsFile(fd), len)?;
    let failure = |e: FileError<_>| match e {
        FileError::Net(_) => CONN_LOST,
        FileError::Storage { no_space: true } => NO_SPACE,
        FileError::Storage { no_space: false } => LOCAL_ERROR,
    };
    Some(direct_step(received.map_err(|e| e.map(failure)), len))
}

/// What a zero-copy step that was asked to move `len` bytes did: `Ok(0)`
/// is the end; less than `len`, all the connection takes or gives for now;
/// an error, the transfer's failure reply.
#[cfg(feature = "zero-copy")]
fn direct_step(moved: nb::Result<usize, (u16, &'static [u8])>, len: usize) -> Step {
    match moved {
        Ok(0) => Step::Done(None),
        Ok(n) if n < len => Step::Last(n),
        Ok(n) => Step::Moved(n),
        Err(nb::Error::WouldBlock) => Step::Blocked,
        Err(nb::Error::Other(reply)) => Step::Done(Some(reply)),
    }
}

fn send_step<S: TcpClientStack, Fl: Read + Seek + embedded_io::ErrorType>(
    stack: &mut S,
    sock: &mut S::TcpSocket,
    file: &mut Fl,
    ascii: bool,
    prev_cr: &mut bool,
    cr_sent: &mut bool,
    scratch: &mut [u8],
) -> Step
where
    Fl::Error: ferry_fs::Error,
{
    // Without the `ascii` feature every transfer is binary.
    let ascii = cfg!(feature = "ascii") && ascii;
    let cap = if ascii {
        scratch.len() / 2
    } else {
        scratch.len()
    };
    let Some(buf) = scratch.get_mut(..cap) else {
        return Step::Done(Some(LOCAL_ERROR));
    };
    let n = match file.read(buf) {
        Ok(0) => return Step::Done(None),
        Ok(n) => n,
        Err(e) => return Step::Done(Some(storage_failure(&e))),
    };
    let last_is_cr = buf.get(n.wrapping_sub(1)) == Some(&b'\r');
    let m = if ascii {
        expand_crlf(scratch, n, *prev_cr, *cr_sent)
    } else {
        n
    };
    let sent = match stack.send(sock, scratch.get(..m).unwrap_or(&[])) {
        Ok(s) => s,
        Err(nb::Error::WouldBlock) => 0,
        Err(nb::Error::Other(_)) => return Step::Done(Some(CONN_LOST)),
    };
    if sent >= m {
        if ascii {
            *prev_cr = last_is_cr;
            *cr_sent = false;
        }
        return Step::Moved(sent);
    }
    // Partial send: the shared buffer cannot keep the rest, so the file is
    // seeked back to the first byte not fully sent.
    let used = if ascii && sent > 0 {
        // Re-read the chunk's source to map sent output bytes to source bytes.
        if file.seek(SeekFrom::Current(-(n as i64))).is_err() {
            return Step::Done(Some(LOCAL_ERROR));
        }
        let Some(src) = scratch.get_mut(..n) else {
            return Step::Done(Some(LOCAL_ERROR));
        };
        if file.read_exact(src).is_err() {
            return Step::Done(Some(LOCAL_ERROR));
        }
        let (used, crs) = consumed(src, sent, *prev_cr, *cr_sent);
        if used > 0 {
            *prev_cr = src.get(used - 1) == Some(&b'\r');
            *cr_sent = false;
        }
        *cr_sent = crs || (used == 0 && *cr_sent);
        used
    } else if ascii {
        0
    } else {
        sent
    };
    let back = n.saturating_sub(used) as i64;
    if back > 0 && file.seek(SeekFrom::Current(-back)).is_err() {
        return Step::Done(Some(LOCAL_ERROR));
    }
    if sent == 0 {
        Step::Blocked
    } else {
        Step::Moved(sent)
    }
}

fn receive_step<S: TcpClientStack, Fl: Write + embedded_io::ErrorType>(
    stack: &mut S,
    sock: &mut S::TcpSocket,
    file: &mut Fl,
    ascii: bool,
    pending_cr: &mut bool,
    scratch: &mut [u8],
) -> Step
where
    Fl::Error: ferry_fs::Error,
{
    // Without the `ascii` feature every transfer is binary.
    let ascii = cfg!(feature = "ascii") && ascii;
    // ASCII receives one byte in, so a CR carried from the last chunk can be
    // written in front without moving the data.
    let skip = usize::from(ascii);
    let Some(rx) = scratch.get_mut(skip..) else {
        return Step::Blocked;
    };
    let n = match stack.receive(sock, rx) {
        Ok(0) => return Step::Done(None),
        Ok(n) => n,
        Err(nb::Error::WouldBlock) => return Step::Blocked,
        Err(nb::Error::Other(_)) => return Step::Done(Some(CONN_LOST)),
    };
    let len = if ascii {
        collapse_crlf(scratch, n, pending_cr)
    } else {
        n
    };
    if let Err(e) = file.write_all(scratch.get(..len).unwrap_or(&[])) {
        return Step::Done(Some(storage_failure(&e)));
    }
    Step::Moved(n)
}

/// Turns CR LF into LF: input is `buf[1..=n]`, output starts at `buf[0]`;
/// returns its length. A CR ending the chunk is carried in `pending_cr` and
/// written before the next chunk unless an LF follows. (ASCII uploads are
/// stored with Unix line ends.) The write index never passes the read index.
fn collapse_crlf(buf: &mut [u8], n: usize, pending_cr: &mut bool) -> usize {
    let mut w = 0;
    let mut carried = core::mem::take(pending_cr);
    for r in 1..=n {
        let b = buf.get(r).copied().unwrap_or(0);
        if core::mem::take(&mut carried) && b != b'\n' {
            if let Some(s) = buf.get_mut(w) {
                *s = b'\r';
            }
            w += 1;
        }
        if b == b'\r' {
            if r == n {
                *pending_cr = true;
                continue;
            }
            if buf.get(r + 1) == Some(&b'\n') {
                continue;
            }
        }
        if let Some(s) = buf.get_mut(w) {
            *s = b;
        }
        w += 1;
    }
    w
}

#[allow(clippy::too_many_arguments)]
fn listing_step<S: TcpClientStack, F: FileSystem>(
    stack: &mut S,
    sock: &mut S::TcpSocket,
    fs: &mut F,
    dir: &mut Option<F::Dir>,
    format: ListFormat,
    perm: PermFacts,
    unix_now: ListNow,
    line: &mut [u8; LIST_LINE_LEN],
    len: &mut usize,
    sent: &mut usize,
    scratch: &mut [u8],
) -> Step {
    if *sent < *len {
        let pending = line.get(*sent..*len).unwrap_or(&[]);
        return match stack.send(sock, pending) {
            Ok(0) | Err(nb::Error::WouldBlock) => Step::Blocked,
            Ok(s) => {
                *sent += s;
                Step::Moved(s)
            }
            Err(nb::Error::Other(_)) => Step::Done(Some(CONN_LOST)),
        };
    }
    let Some(d) = dir.as_mut() else {
        return Step::Done(None);
    };
    // Read entries until one makes a line (hidden or unformattable ones skip).
    loop {
        match fs.read_dir(d, scratch) {
            Ok(Some(entry)) => {
                let name = scratch.get(..entry.name_len).unwrap_or(&[]);
                if is_hidden(name) {
                    continue;
                }
                if let Some(n) = format_line(format, name, &entry.metadata, perm, unix_now, line) {
                    *len = n;
                    *sent = 0;
                    return Step::Moved(0);
                }
            }
            Ok(None) => {
                *dir = None;
                return Step::Done(None);
            }
            Err(e) => {
                *dir = None;
                return Step::Done(Some(fs_error_reply(e.fs_kind())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_entry_fits_a_listing_line() {
        // A name as long as a listing takes, the widest size, every fact.
        let name = [b'n'; LIST_NAME_LEN];
        let all = PermFacts::ALL;
        for kind in [ferry_fs::EntryKind::File, ferry_fs::EntryKind::Dir] {
            let meta = Metadata {
                kind,
                size: u64::MAX,
                modified: Some(u64::MAX),
                mode: Some(0o7777),
            };
            for format in [ListFormat::List, ListFormat::Nlst, ListFormat::Mlsd] {
                let mut line = [0u8; LIST_LINE_LEN];
                #[cfg(feature = "mtime")]
                let now = Some(0);
                #[cfg(not(feature = "mtime"))]
                let now = ();
                let len = format_line(format, &name, &meta, all, now, &mut line);
                assert!(len.is_some(), "{format:?} {kind:?}");
                // A name the line cannot hold is left out, not cut.
                let longer = [b'n'; LIST_LINE_LEN];
                let len = format_line(format, &longer, &meta, all, now, &mut line);
                assert!(len.is_none(), "{format:?} {kind:?}");
            }
        }
    }

    fn expand(src: &[u8], prev_cr: bool, cr_sent: bool) -> ([u8; 64], usize) {
        let mut buf = [0u8; 64];
        buf[..src.len()].copy_from_slice(src);
        let m = expand_crlf(&mut buf, src.len(), prev_cr, cr_sent);
        (buf, m)
    }

    #[test]
    fn lf_becomes_crlf_and_existing_crlf_stays() {
        let (b, m) = expand(b"a\nb\r\nc\n\n", false, false);
        assert_eq!(&b[..m], b"a\r\nb\r\nc\r\n\r\n");
        let (b, m) = expand(b"\nx", true, false);
        assert_eq!(&b[..m], b"\nx");
        let (b, m) = expand(b"\nx", false, true);
        assert_eq!(&b[..m], b"\nx");
    }

    #[test]
    fn consumed_maps_partial_sends() {
        // "a\nb" -> "a\r\nb"
        assert_eq!(consumed(b"a\nb", 0, false, false), (0, false));
        assert_eq!(consumed(b"a\nb", 1, false, false), (1, false));
        assert_eq!(consumed(b"a\nb", 2, false, false), (1, true));
        assert_eq!(consumed(b"a\nb", 3, false, false), (2, false));
        assert_eq!(consumed(b"a\nb", 4, false, false), (3, false));
    }

    fn collapse_all(chunks: &[&[u8]]) -> std_vec::Out {
        let mut out = std_vec::Out::default();
        let mut pending = false;
        for c in chunks {
            let mut buf = [0u8; 65];
            buf[1..=c.len()].copy_from_slice(c);
            let n = collapse_crlf(&mut buf, c.len(), &mut pending);
            out.extend(&buf[..n]);
        }
        if pending {
            out.extend(b"\r");
        }
        out
    }

    mod std_vec {
        pub struct Out {
            pub buf: [u8; 256],
            pub len: usize,
        }
        impl Default for Out {
            fn default() -> Self {
                Out {
                    buf: [0; 256],
                    len: 0,
                }
            }
        }
        impl Out {
            pub fn extend(&mut self, b: &[u8]) {
                self.buf[self.len..self.len + b.len()].copy_from_slice(b);
                self.len += b.len();
            }
            pub fn get(&self) -> &[u8] {
                &self.buf[..self.len]
            }
        }
    }

    #[test]
    fn crlf_collapses_across_chunks() {
        assert_eq!(collapse_all(&[b"a\r\nb\r\n"]).get(), b"a\nb\n");
        assert_eq!(collapse_all(&[b"a\r", b"\nb"]).get(), b"a\nb");
        assert_eq!(collapse_all(&[b"a\r", b"b"]).get(), b"a\rb");
        assert_eq!(collapse_all(&[b"a\rb\r"]).get(), b"a\rb\r");
        assert_eq!(collapse_all(&[b"\r", b"\r", b"\n"]).get(), b"\r\n");
    }
}

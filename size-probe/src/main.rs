//! A Cortex-M3 image that runs Ferry's server over opaque stubs, so that
//! `cargo xtask size` can measure the flash and RAM the engine costs.
//!
//! The stubs do no work, yet the optimizer cannot see through them: every
//! value they return comes out of [`core::hint::black_box`], and every
//! argument they are given goes into it. So every path of the engine stays
//! reachable (nothing is folded away because a stub always says "no data"),
//! and the stubs themselves stay a few instructions each: the flash in the
//! image is the engine's, not the stubs'.
//!
//! RAM is not measured at run time (the probe never runs): [`FERRY_RAM`]
//! holds `size_of` of the server for 1 and for [`SESSIONS`] sessions, as laid
//! out for this target, with a [`BUFFER`] (512-byte) transfer buffer, and
//! xtask reads those words out of the ELF file.
//!
//! The engine's protocol profile follows the probe's features: none is the
//! "emftp" profile (ferry-core without optional features), `full` the
//! default profile. The stack the engine uses is measured by the other
//! image of this package, `src/bin/stack/`, which runs in QEMU.
//!
//! With the `littlefs` feature the engine serves a littlefs volume (ferry-fs's
//! adapter, littlefs2, littlefs's C) on an opaque block device instead of the
//! opaque file system: the difference between the two images is the ROM the
//! adapter adds to a firmware.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::mem::size_of;

use cortex_m_rt::entry;
use ferry_core::server::ListenError;
use ferry_core::{AuthError, Authenticator, Config, Permissions, Poll, Server, User};
use ferry_fs::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};
use ferry_net::{
    nb, Clock, Instant, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpClientStack, TcpError,
    TcpErrorKind, TcpFullStack, TcpLocalAddr,
};

/// The shared transfer buffer, in bytes: 512, as issue 10's RAM goal
/// ("one session with a 512-byte transfer buffer") counts it.
const BUFFER: usize = 512;
/// The session count the probe runs, and the second RAM figure.
const SESSIONS: usize = 4;

/// The server as the probe builds it, for `N` sessions.
type Probe<const N: usize> = Server<StubStack, StubFs, N, BUFFER>;

/// What xtask reads to report RAM (little-endian `u32`s, in this order):
/// transfer buffer bytes, sessions in the small server, its `size_of`,
/// sessions in the large server, its `size_of`.
#[no_mangle]
#[used]
pub static FERRY_RAM: [u32; 5] = [
    BUFFER as u32,
    1,
    size_of::<Probe<1>>() as u32,
    SESSIONS as u32,
    size_of::<Probe<SESSIONS>>() as u32,
];

/// A value the optimizer cannot predict.
#[inline(always)]
fn input<T>(value: T) -> T {
    black_box(value)
}

/// An address the optimizer cannot predict, IPv4 or IPv6.
fn any_addr() -> SocketAddr {
    let ip = if input(false) {
        IpAddr::V6(Ipv6Addr::from(input(0u128)))
    } else {
        IpAddr::V4(Ipv4Addr::from(input(0u32)))
    };
    SocketAddr::new(ip, input(0))
}

/// Fills up to all of `buffer` with unpredictable bytes; returns how many.
fn fill(buffer: &mut [u8]) -> usize {
    let n = input(0usize).min(buffer.len());
    for byte in buffer.iter_mut().take(n) {
        *byte = input(0);
    }
    n
}

/// A network error of unpredictable kind.
#[derive(Debug, Clone, Copy)]
pub struct NetError(u8);

impl TcpError for NetError {
    fn kind(&self) -> TcpErrorKind {
        if self.0 == 1 {
            TcpErrorKind::PipeClosed
        } else {
            TcpErrorKind::Other
        }
    }
}

/// A socket handle, a word like smoltcp's `SocketHandle`.
#[derive(Debug)]
pub struct StubSocket(usize);

/// `Ok`, `WouldBlock` or an error, unpredictably.
fn nb_outcome<T>(ok: T) -> nb::Result<T, NetError> {
    match input(0u8) {
        0 => Ok(ok),
        1 => Err(nb::Error::WouldBlock),
        e => Err(nb::Error::Other(NetError(e))),
    }
}

/// `Ok` or an error, unpredictably.
fn net_outcome<T>(ok: T) -> Result<T, NetError> {
    match input(0u8) {
        0 => Ok(ok),
        e => Err(NetError(e)),
    }
}

/// A TCP/IP stack whose every answer is opaque.
pub struct StubStack;

impl TcpClientStack for StubStack {
    type TcpSocket = StubSocket;
    type Error = NetError;

    fn socket(&mut self) -> Result<StubSocket, NetError> {
        net_outcome(StubSocket(input(0)))
    }
    fn connect(&mut self, socket: &mut StubSocket, remote: SocketAddr) -> nb::Result<(), NetError> {
        black_box((socket.0, remote));
        nb_outcome(())
    }
    fn send(&mut self, socket: &mut StubSocket, buffer: &[u8]) -> nb::Result<usize, NetError> {
        black_box((socket.0, buffer));
        nb_outcome(input(0usize).min(buffer.len()))
    }
    fn receive(
        &mut self,
        socket: &mut StubSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, NetError> {
        black_box(socket.0);
        nb_outcome(fill(buffer))
    }
    fn close(&mut self, socket: StubSocket) -> Result<(), NetError> {
        black_box(socket.0);
        net_outcome(())
    }
}

impl TcpFullStack for StubStack {
    fn bind(&mut self, socket: &mut StubSocket, local_port: u16) -> Result<(), NetError> {
        black_box((socket.0, local_port));
        net_outcome(())
    }
    fn listen(&mut self, socket: &mut StubSocket) -> Result<(), NetError> {
        black_box(socket.0);
        net_outcome(())
    }
    fn accept(
        &mut self,
        socket: &mut StubSocket,
    ) -> nb::Result<(StubSocket, SocketAddr), NetError> {
        black_box(socket.0);
        nb_outcome((StubSocket(input(0)), any_addr()))
    }
}

impl TcpLocalAddr for StubStack {
    fn bind_addr(&mut self, socket: &mut StubSocket, local: SocketAddr) -> Result<(), NetError> {
        black_box((socket.0, local));
        net_outcome(())
    }
    fn local_addr(&mut self, socket: &StubSocket) -> Result<SocketAddr, NetError> {
        black_box(socket.0);
        net_outcome(any_addr())
    }
}

/// TLS that may or may not be there, so the engine's FTPS glue is counted.
impl ferry_net::SecureStack for StubStack {
    fn tls_available(&self) -> bool {
        input(false)
    }
    fn start_tls(
        &mut self,
        socket: &mut StubSocket,
        control: Option<&StubSocket>,
    ) -> Result<(), ferry_net::TlsError> {
        black_box((socket.0, control.map(|c| c.0)));
        match input(0u8) {
            0 => Ok(()),
            _ => Err(ferry_net::TlsError::Unavailable),
        }
    }
    fn is_tls(&self, socket: &StubSocket) -> bool {
        black_box(socket.0);
        input(false)
    }
}

/// A storage error of unpredictable kind.
#[derive(Debug, Clone, Copy)]
pub struct FsError(u8);

impl embedded_io::Error for FsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl ferry_fs::Error for FsError {
    fn fs_kind(&self) -> ErrorKind {
        match self.0 {
            1 => ErrorKind::NotFound,
            2 => ErrorKind::AlreadyExists,
            3 => ErrorKind::PermissionDenied,
            4 => ErrorKind::NotADirectory,
            5 => ErrorKind::IsADirectory,
            6 => ErrorKind::DirectoryNotEmpty,
            7 => ErrorKind::NoSpace,
            8 => ErrorKind::NameTooLong,
            9 => ErrorKind::InvalidName,
            10 => ErrorKind::Unsupported,
            11 => ErrorKind::Io,
            _ => ErrorKind::Other,
        }
    }
}

/// `Ok` or an error, unpredictably.
fn fs_outcome<T>(ok: T) -> Result<T, FsError> {
    match input(0u8) {
        0 => Ok(ok),
        e => Err(FsError(e)),
    }
}

/// Metadata the optimizer cannot predict.
fn any_metadata() -> Metadata {
    Metadata {
        kind: if input(false) {
            EntryKind::Dir
        } else {
            EntryKind::File
        },
        size: input(0),
        modified: if input(false) { Some(input(0)) } else { None },
        mode: if input(false) { Some(input(0)) } else { None },
    }
}

/// An open file, a handle as most embedded file systems use.
pub struct StubFile(usize);

impl embedded_io::ErrorType for StubFile {
    type Error = FsError;
}

impl embedded_io::Read for StubFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FsError> {
        black_box(self.0);
        fs_outcome(fill(buf))
    }
}

impl embedded_io::Write for StubFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, FsError> {
        black_box((self.0, buf));
        fs_outcome(input(0usize).min(buf.len()))
    }
    fn flush(&mut self) -> Result<(), FsError> {
        black_box(self.0);
        fs_outcome(())
    }
}

impl embedded_io::Seek for StubFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, FsError> {
        black_box((self.0, pos));
        fs_outcome(input(0))
    }
}

/// A directory being read, a handle.
pub struct StubDir(usize);

/// A file system whose every answer is opaque.
pub struct StubFs;

impl FileSystem for StubFs {
    type Error = FsError;
    type File = StubFile;
    type Dir = StubDir;

    fn open_read(&mut self, path: &[u8]) -> Result<StubFile, FsError> {
        black_box(path);
        fs_outcome(StubFile(input(0)))
    }
    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<StubFile, FsError> {
        black_box((path, mode));
        fs_outcome(StubFile(input(0)))
    }
    fn close(&mut self, file: StubFile) -> Result<(), FsError> {
        black_box(file.0);
        fs_outcome(())
    }
    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        black_box(path);
        fs_outcome(any_metadata())
    }
    fn open_dir(&mut self, path: &[u8]) -> Result<StubDir, FsError> {
        black_box(path);
        fs_outcome(StubDir(input(0)))
    }
    fn read_dir(
        &mut self,
        dir: &mut StubDir,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, FsError> {
        black_box(dir.0);
        let entry = if input(false) {
            None
        } else {
            Some(DirEntry {
                name_len: fill(name),
                metadata: any_metadata(),
            })
        };
        fs_outcome(entry)
    }
    fn create_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        black_box(path);
        fs_outcome(())
    }
    fn remove_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        black_box(path);
        fs_outcome(())
    }
    fn remove_file(&mut self, path: &[u8]) -> Result<(), FsError> {
        black_box(path);
        fs_outcome(())
    }
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        black_box((from, to));
        fs_outcome(())
    }
    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), FsError> {
        black_box((path, unix_secs));
        fs_outcome(())
    }
    fn set_mode(&mut self, path: &[u8], mode: u16) -> Result<(), FsError> {
        black_box((path, mode));
        fs_outcome(())
    }
}

/// A user table whose every answer is opaque.
pub struct StubAuth;

impl Authenticator for StubAuth {
    fn needs_password(&mut self, user: &[u8]) -> bool {
        black_box(user);
        input(true)
    }
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        black_box((user, password, peer));
        if input(false) {
            return Err(AuthError::Invalid);
        }
        Ok(User {
            id: input(0),
            permissions: Permissions {
                read: input(true),
                write: input(true),
                delete: input(true),
                mkdir: input(true),
                rename: input(true),
            },
        })
    }
    fn home(&self, user: &User) -> &[u8] {
        black_box(user);
        input(b"/")
    }
}

/// A clock whose every reading is opaque.
pub struct StubClock;

impl Clock for StubClock {
    fn now(&self) -> Instant {
        Instant(input(0))
    }
    fn unix_time(&self) -> Option<u64> {
        if input(false) {
            None
        } else {
            Some(input(0))
        }
    }
}

#[entry]
fn main() -> ! {
    black_box(&FERRY_RAM);
    #[cfg(not(feature = "littlefs"))]
    serve(&mut StubFs);
    #[cfg(feature = "littlefs")]
    volume::serve_littlefs();
}

/// Runs the server over `fs`, forever.
fn serve<F: FileSystem>(fs: &mut F) -> ! {
    /// The server the probe runs.
    type Running<F> = Server<StubStack, F, SESSIONS, BUFFER>;
    // The engine's entry points are called through pointers the optimizer
    // cannot see through, so it cannot inline the engine into this function:
    // the engine's code keeps its own symbols (`ferry_core::...`), which is
    // how xtask tells the engine's flash from the probe's.
    let new: fn(Config) -> Running<F> = input(Running::<F>::new);
    let listen: fn(
        &mut Running<F>,
        &mut StubStack,
        SocketAddr,
    ) -> Result<(), ListenError<NetError>> = input(Running::<F>::listen);
    let poll: fn(
        &mut Running<F>,
        &mut StubStack,
        &mut F,
        &mut StubAuth,
        &StubClock,
        &mut (),
    ) -> Poll = input(Running::<F>::poll::<StubAuth, StubClock, ()>);
    let session_count: fn(&Running<F>) -> usize = input(Running::<F>::session_count);
    let shutdown: fn(&mut Running<F>, &mut StubStack, &mut F) = input(Running::<F>::shutdown);

    let mut stack = StubStack;
    let mut auth = StubAuth;
    let clock = StubClock;
    // An opaque config keeps every limit and option check in the image.
    let mut server = new(input(Config::default()));
    if listen(&mut server, &mut stack, any_addr()).is_err() {
        black_box(());
    }
    loop {
        let result = poll(&mut server, &mut stack, fs, &mut auth, &clock, &mut ());
        black_box((result.busy, result.deadline));
        black_box(session_count(&server));
        if input(false) {
            shutdown(&mut server, &mut stack, fs);
        }
    }
}

/// A littlefs volume on a block device whose every answer is opaque, as a
/// firmware with a flash driver would have it (the driver is not counted).
#[cfg(feature = "littlefs")]
mod volume {
    use core::hint::black_box;

    use ferry_fs::block::{BlockDevice, BlockError};
    use ferry_fs::littlefs::{self, LfsStorage};

    use super::{fill, input, serve};

    /// A common flash erase block, and a 256 KiB volume.
    const BLOCK: usize = 4096;
    const BLOCKS: usize = 64;

    /// `Ok` or a device error, unpredictably.
    fn outcome(ok: ()) -> Result<(), BlockError> {
        if input(false) {
            Err(BlockError::Io)
        } else {
            Ok(ok)
        }
    }

    /// A block device whose every answer is opaque.
    pub struct StubDisk;

    impl BlockDevice for StubDisk {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn block_count(&self) -> usize {
            BLOCKS
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            black_box(offset);
            fill(buf);
            outcome(())
        }
        fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
            black_box((offset, data));
            outcome(())
        }
        fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
            black_box((offset, len));
            outcome(())
        }
    }

    /// Mounts (formatting a blank medium) and serves the volume.
    pub fn serve_littlefs() -> ! {
        if let Ok(mut storage) = LfsStorage::<StubDisk, BLOCK, BLOCKS>::new(StubDisk) {
            let _ = littlefs::mount_or_format_and_then(&mut storage, |fs| serve(fs));
        }
        loop {
            core::hint::spin_loop();
        }
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

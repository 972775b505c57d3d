//! A host directory as the root of a Ferry [`FileSystem`] (`std` feature).
//!
//! [`StdDir`] serves one directory of the host and nothing outside it. Every
//! operation goes through a [`cap_std::fs::Dir`] handle, which resolves paths
//! relative to that handle and refuses to leave it.
//!
//! Guarantees:
//! - **Confined to the root.** No path, `..` component, absolute path or
//!   symlink reaches outside the root directory. The core only hands out
//!   canonical paths, but the confinement does not rely on that: `cap-std`
//!   refuses escapes itself, and they fail with [`ErrorKind::PermissionDenied`]
//!   (or [`ErrorKind::NotFound`]).
//! - **Symlinks that leave the root are refused.** A symlink whose target stays
//!   inside the root is followed (for opening, listing into and metadata); one
//!   that points outside cannot be opened, listed into, written through or used
//!   as a directory on the way to a rename target. In a listing, an entry whose
//!   metadata cannot be read this way (dangling or escaping symlink) is left out
//!   instead of failing the whole listing.
//! - **Names are bytes.** On Unix, path bytes map one to one to file names, so
//!   names that are not valid UTF-8 are listed and reachable. On other
//!   platforms names must be UTF-8 ([`ErrorKind::InvalidName`] otherwise), and
//!   entries whose names are not are left out of listings.
//! - On Windows, `\` and `:` in a path are refused with
//!   [`ErrorKind::InvalidName`] (`:` would name an alternate data stream).
//!
//! Only regular files and directories are served: other entries (sockets,
//! FIFOs, device nodes) are left out of listings, and [`StdDir::metadata`]
//! and the `open_*` methods refuse them with [`ErrorKind::PermissionDenied`]
//! (opening a FIFO would block the server).
//!
//! [`FileSystem::close`] flushes but does not `fsync`: an upload is durable
//! when the host's page cache writes it back.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use cap_std::fs::OpenOptionsExt as _;
use cap_std::fs::{Dir, OpenOptions};
#[cfg(unix)]
use libc::O_NONBLOCK;

use crate::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

/// A host directory as the root of a [`FileSystem`], confined with `cap-std`.
///
/// See the [module docs](self) for what it guarantees.
#[derive(Debug)]
pub struct StdDir {
    root: Dir,
}

/// A file opened by [`StdDir`]: bytes in and out, and a position.
#[derive(Debug)]
pub struct StdFile {
    file: cap_std::fs::File,
}

/// A directory of a [`StdDir`] being read entry by entry.
#[derive(Debug)]
pub struct StdDirListing {
    entries: cap_std::fs::ReadDir,
    /// The listed directory relative to the root (`.` for the root), to
    /// resolve symlinked entries from the root rather than from the listed
    /// directory: a link to a sibling directory stays visible.
    path: PathBuf,
}

/// An error of [`StdDir`]: the host's I/O error and its [`ErrorKind`].
#[derive(Debug)]
pub struct StdDirError {
    kind: ErrorKind,
    io: std::io::Error,
}

impl StdDir {
    /// Serves the existing directory `root`.
    ///
    /// Fails if `root` does not exist or is not a directory.
    pub fn open(root: impl AsRef<Path>) -> std::io::Result<StdDir> {
        let root = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(StdDir { root })
    }

    /// Serves the directory `root`, creating it and its parents if missing.
    pub fn open_or_create(root: impl AsRef<Path>) -> std::io::Result<StdDir> {
        let root = root.as_ref();
        Dir::create_ambient_dir_all(root, cap_std::ambient_authority())?;
        StdDir::open(root)
    }

    /// Serves a directory already opened with `cap-std` (e.g. by a sandboxed
    /// process that holds no ambient authority).
    pub fn from_cap_dir(root: Dir) -> StdDir {
        StdDir { root }
    }

    /// The `cap-std` handle of the root.
    pub fn cap_dir(&self) -> &Dir {
        &self.root
    }

    /// Metadata following symlinks that stay in the root, refusing entries
    /// that are neither files nor directories.
    fn served_metadata(&self, rel: &Path) -> Result<Metadata, StdDirError> {
        let meta = self.root.metadata(rel)?;
        convert_metadata(&meta).ok_or_else(not_served)
    }

    /// Opens `rel` as `options` say. Unix opens without a check of the
    /// path first: a socket, or a FIFO opened for writing with no reader,
    /// answers ENXIO, which is an entry not served, like other special
    /// files.
    fn open_served(
        &self,
        rel: &Path,
        options: &OpenOptions,
    ) -> Result<cap_std::fs::File, StdDirError> {
        match self.root.open_with(rel, options) {
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Err(not_served()),
            other => Ok(other?),
        }
    }

    /// Checks that an opened handle is a regular file.
    fn check_opened_file(file: cap_std::fs::File) -> Result<StdFile, StdDirError> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(StdDirError::new(
                ErrorKind::IsADirectory,
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        if !meta.is_file() {
            return Err(not_served());
        }
        Ok(StdFile { file })
    }
}

impl StdFile {
    /// The underlying `cap-std` file.
    pub fn into_inner(self) -> cap_std::fs::File {
        self.file
    }
}

impl StdDirError {
    /// The host's I/O error.
    pub fn io_error(&self) -> &std::io::Error {
        &self.io
    }

    /// The host's I/O error, by value.
    pub fn into_io_error(self) -> std::io::Error {
        self.io
    }

    /// An error raised by this adapter rather than by the host.
    fn new(kind: ErrorKind, io_kind: std::io::ErrorKind, msg: &'static str) -> StdDirError {
        StdDirError {
            kind,
            io: std::io::Error::new(io_kind, msg),
        }
    }
}

fn not_served() -> StdDirError {
    StdDirError::new(
        ErrorKind::PermissionDenied,
        std::io::ErrorKind::PermissionDenied,
        "not a regular file or directory",
    )
}

fn invalid_name(msg: &'static str) -> StdDirError {
    StdDirError::new(
        ErrorKind::InvalidName,
        std::io::ErrorKind::InvalidInput,
        msg,
    )
}

/// Maps a Ferry path (`/`, `/a/b`) to a path relative to the root
/// (`.`, `a/b`). A second leading `/` leaves an absolute path, which
/// `cap-std` refuses like any other escape.
fn rel_path(path: &[u8]) -> Result<&Path, StdDirError> {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    if rel.is_empty() {
        return Ok(Path::new("."));
    }
    if rel.contains(&0) {
        return Err(invalid_name("NUL in path"));
    }
    #[cfg(windows)]
    if rel.iter().any(|&b| b == b'\\' || b == b':') {
        return Err(invalid_name("'\\' or ':' in path"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        Ok(Path::new(std::ffi::OsStr::from_bytes(rel)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(rel)
            .map(Path::new)
            .map_err(|_| invalid_name("path is not UTF-8"))
    }
}

/// Like [`rel_path`], refusing the root itself (for removing and renaming).
fn rel_path_not_root(path: &[u8]) -> Result<&Path, StdDirError> {
    let rel = rel_path(path)?;
    if rel == Path::new(".") {
        return Err(StdDirError::new(
            ErrorKind::PermissionDenied,
            std::io::ErrorKind::PermissionDenied,
            "the root cannot be removed or renamed",
        ));
    }
    Ok(rel)
}

/// Ferry metadata of a file or directory; `None` for other types.
fn convert_metadata(meta: &cap_std::fs::Metadata) -> Option<Metadata> {
    let kind = if meta.is_dir() {
        EntryKind::Dir
    } else if meta.is_file() {
        EntryKind::File
    } else {
        return None;
    };
    // Times before 1970 count as unknown.
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    #[cfg(unix)]
    let mode = {
        use cap_std::fs::PermissionsExt as _;
        // Masked to 12 bits, so the cast cannot truncate.
        Some((meta.permissions().mode() & 0o7777) as u16)
    };
    #[cfg(not(unix))]
    let mode = None;
    Some(Metadata {
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        modified,
        mode,
    })
}

/// The name of a directory entry as bytes, or `None` where the platform
/// cannot give them (non-UTF-8 names off Unix).
#[cfg(unix)]
fn name_bytes(name: &std::ffi::OsStr) -> Option<&[u8]> {
    use std::os::unix::ffi::OsStrExt as _;
    Some(name.as_bytes())
}

#[cfg(not(unix))]
fn name_bytes(name: &std::ffi::OsStr) -> Option<&[u8]> {
    name.to_str().map(str::as_bytes)
}

impl FileSystem for StdDir {
    type Error = StdDirError;
    type File = StdFile;
    type Dir = StdDirListing;

    fn open_read(&mut self, path: &[u8]) -> Result<StdFile, StdDirError> {
        let rel = rel_path(path)?;
        // Unix: opened without blocking (a FIFO would wait for a writer),
        // then checked on the handle: two calls, where a check of the
        // path first took five.
        #[cfg(unix)]
        {
            let mut options = OpenOptions::new();
            options.read(true).custom_flags(O_NONBLOCK);
            StdDir::check_opened_file(self.open_served(rel, &options)?)
        }
        // Elsewhere checked before opening, and again on the handle in case
        // the entry changed in between.
        #[cfg(not(unix))]
        if self.served_metadata(rel)?.kind == EntryKind::Dir {
            return Err(StdDirError::new(
                ErrorKind::IsADirectory,
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        #[cfg(not(unix))]
        StdDir::check_opened_file(self.root.open(rel)?)
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<StdFile, StdDirError> {
        let rel = rel_path(path)?;
        // Unix refuses to open a directory for writing (EISDIR) and opens a
        // FIFO without blocking: no check of the path first.
        #[cfg(not(unix))]
        match self.served_metadata(rel) {
            Ok(meta) if meta.kind == EntryKind::Dir => {
                return Err(StdDirError::new(
                    ErrorKind::IsADirectory,
                    std::io::ErrorKind::IsADirectory,
                    "is a directory",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true);
        // Append seeks to the end instead of using O_APPEND, so that the
        // position `seek` reports is where the next write lands.
        options.truncate(mode == WriteMode::Truncate);
        #[cfg(unix)]
        options.custom_flags(O_NONBLOCK);
        let mut file = StdDir::check_opened_file(self.open_served(rel, &options)?)?;
        if mode == WriteMode::Append {
            file.file.seek(std::io::SeekFrom::End(0))?;
        }
        Ok(file)
    }

    fn close(&mut self, mut file: StdFile) -> Result<(), StdDirError> {
        file.file.flush()?;
        Ok(())
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, StdDirError> {
        self.served_metadata(rel_path(path)?)
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<StdDirListing, StdDirError> {
        let rel = rel_path(path)?;
        let entries = if rel == Path::new(".") {
            self.root.entries()?
        } else {
            self.root.read_dir(rel)?
        };
        Ok(StdDirListing {
            entries,
            path: rel.to_path_buf(),
        })
    }

    fn read_dir(
        &mut self,
        dir: &mut StdDirListing,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, StdDirError> {
        for entry in dir.entries.by_ref() {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(bytes) = name_bytes(&file_name) else {
                continue;
            };
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let Some(dest) = name.get_mut(..bytes.len()) else {
                continue;
            };
            // A symlink is resolved from the root, which follows it only
            // while it stays inside; anything else is read without
            // resolving a path again.
            let meta = match entry.file_type() {
                Ok(t) if t.is_symlink() => self.root.metadata(dir.path.join(&file_name)),
                Ok(_) => entry.metadata(),
                Err(e) => Err(e),
            };
            let Some(metadata) = meta.ok().as_ref().and_then(convert_metadata) else {
                continue;
            };
            dest.copy_from_slice(bytes);
            return Ok(Some(DirEntry {
                name_len: bytes.len(),
                metadata,
            }));
        }
        Ok(None)
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), StdDirError> {
        Ok(self.root.create_dir(rel_path(path)?)?)
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), StdDirError> {
        Ok(self.root.remove_dir(rel_path_not_root(path)?)?)
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), StdDirError> {
        Ok(self.root.remove_file(rel_path_not_root(path)?)?)
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), StdDirError> {
        let from = rel_path_not_root(from)?;
        let to = rel_path_not_root(to)?;
        Ok(self.root.rename(from, &self.root, to)?)
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), StdDirError> {
        let rel = rel_path(path)?;
        let time = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(unix_secs))
            .ok_or_else(|| {
                StdDirError::new(
                    ErrorKind::Other,
                    std::io::ErrorKind::InvalidInput,
                    "time out of range",
                )
            })?;
        // std sets times through an open handle only. A read-only handle
        // serves on Unix (futimens needs ownership, not write access), also
        // for directories; a file the server may only write to, or a host
        // that wants write access for it, gets a write handle (not truncating).
        let kind = self.served_metadata(rel)?.kind;
        #[cfg(not(unix))]
        if kind == EntryKind::Dir {
            let dir = self.root.open_dir(rel)?.into_std_file();
            return Ok(dir.set_modified(time)?);
        }
        let read = self
            .root
            .open(rel)
            .and_then(|file| file.into_std().set_modified(time));
        match read {
            Err(e)
                if kind == EntryKind::File && e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                let file = self.root.open_with(rel, OpenOptions::new().write(true))?;
                Ok(file.into_std().set_modified(time)?)
            }
            other => Ok(other?),
        }
    }

    /// Sets the permission bits and the sticky bit; setuid and setgid are
    /// never set, so a client cannot make set-id executables run as the
    /// server's user.
    #[cfg(unix)]
    fn set_mode(&mut self, path: &[u8], mode: u16) -> Result<(), StdDirError> {
        use cap_std::fs::PermissionsExt as _;
        let rel = rel_path(path)?;
        self.served_metadata(rel)?;
        let perm = cap_std::fs::Permissions::from_mode(u32::from(mode & 0o1777));
        Ok(self.root.set_permissions(rel, perm)?)
    }

    /// Unsupported off Unix.
    #[cfg(not(unix))]
    fn set_mode(&mut self, path: &[u8], _mode: u16) -> Result<(), StdDirError> {
        rel_path(path)?;
        Err(StdDirError::new(
            ErrorKind::Unsupported,
            std::io::ErrorKind::Unsupported,
            "permission bits are a Unix feature",
        ))
    }

    /// The file's descriptor (Unix), for zero-copy sends.
    #[cfg(unix)]
    fn os_file(&self, file: &StdFile) -> Option<i32> {
        use std::os::fd::AsRawFd as _;
        Some(file.file.as_raw_fd())
    }
}

impl embedded_io::ErrorType for StdFile {
    type Error = StdDirError;
}

impl embedded_io::Read for StdFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StdDirError> {
        Ok(self.file.read(buf)?)
    }
}

impl embedded_io::Write for StdFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StdDirError> {
        Ok(self.file.write(buf)?)
    }

    fn flush(&mut self) -> Result<(), StdDirError> {
        Ok(self.file.flush()?)
    }
}

impl embedded_io::Seek for StdFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, StdDirError> {
        Ok(self.file.seek(pos.into())?)
    }
}

impl From<std::io::Error> for StdDirError {
    fn from(io: std::io::Error) -> StdDirError {
        StdDirError {
            kind: classify(&io),
            io,
        }
    }
}

impl From<StdDirError> for std::io::Error {
    fn from(e: StdDirError) -> std::io::Error {
        e.io
    }
}

impl core::fmt::Display for StdDirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.io, f)
    }
}

impl std::error::Error for StdDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.io)
    }
}

impl crate::Error for StdDirError {
    fn fs_kind(&self) -> ErrorKind {
        self.kind
    }
}

impl embedded_io::Error for StdDirError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.kind {
            ErrorKind::NotFound => embedded_io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => embedded_io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => embedded_io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidName | ErrorKind::NameTooLong => embedded_io::ErrorKind::InvalidInput,
            ErrorKind::Unsupported => embedded_io::ErrorKind::Unsupported,
            _ => self.io.kind().into(),
        }
    }
}

/// The Ferry kind of a host error: OS codes first, for the cases the
/// `std::io::ErrorKind` of Rust 1.85 (the MSRV) cannot name
/// (`InvalidFilename` is stable from 1.87), then the `std` kind.
fn classify(io: &std::io::Error) -> ErrorKind {
    if let Some(kind) = io.raw_os_error().and_then(classify_os) {
        return kind;
    }
    use std::io::ErrorKind as K;
    match io.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::PermissionDenied | K::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
        K::NotADirectory => ErrorKind::NotADirectory,
        K::IsADirectory => ErrorKind::IsADirectory,
        K::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
        // A file too large for the medium or the quota: FTP says 552 for all.
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => ErrorKind::NoSpace,
        K::Unsupported => ErrorKind::Unsupported,
        K::UnexpectedEof | K::InvalidData | K::WriteZero | K::StaleNetworkFileHandle => {
            ErrorKind::Io
        }
        _ => ErrorKind::Other,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn classify_os(code: i32) -> Option<ErrorKind> {
    match code {
        5 => Some(ErrorKind::Io),             // EIO
        28 | 122 => Some(ErrorKind::NoSpace), // ENOSPC, EDQUOT
        36 => Some(ErrorKind::NameTooLong),   // ENAMETOOLONG
        84 => Some(ErrorKind::InvalidName),   // EILSEQ (e.g. on FAT)
        _ => None,
    }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
fn classify_os(code: i32) -> Option<ErrorKind> {
    match code {
        5 => Some(ErrorKind::Io),            // EIO
        28 | 69 => Some(ErrorKind::NoSpace), // ENOSPC, EDQUOT
        63 => Some(ErrorKind::NameTooLong),  // ENAMETOOLONG
        _ => None,
    }
}

#[cfg(windows)]
fn classify_os(code: i32) -> Option<ErrorKind> {
    match code {
        23 | 1117 => Some(ErrorKind::Io), // ERROR_CRC, ERROR_IO_DEVICE
        39 | 112 | 1295 => Some(ErrorKind::NoSpace), // HANDLE_DISK_FULL, DISK_FULL, DISK_QUOTA_EXCEEDED
        206 => Some(ErrorKind::NameTooLong),         // ERROR_FILENAME_EXCED_RANGE
        123 => Some(ErrorKind::InvalidName),         // ERROR_INVALID_NAME
        _ => None,
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    windows
)))]
fn classify_os(_code: i32) -> Option<ErrorKind> {
    None
}

//! Ferry's storage seam: the [`FileSystem`] trait that the FTP engine serves
//! files through, and adapters for concrete storage behind features.
//!
//! The trait speaks file system, not FTP: there is no working directory, no
//! listing format and no reply code here. Paths handed to a [`FileSystem`] are
//! always canonical and absolute within the served root (`/`, `/a`, `/a/b`):
//! no `.` or `..` component, no empty component, no trailing `/`, no `\`, NUL,
//! CR or LF. The core guarantees that; adapters may still reject names their
//! storage cannot hold ([`ErrorKind::InvalidName`], [`ErrorKind::NameTooLong`]).
//!
//! Paths and names are bytes: FTP is byte-oriented, and a host file system may
//! hold names that are not valid UTF-8; such names stay listable and reachable.
//!
//! Adapters:
//! - `std` feature: `std_dir::StdDir`, a host directory as the root, with
//!   capability-style access (`cap-std`) so no path, `..` or symlink leaves it.
//! - `littlefs2` feature (no_std): `littlefs::LittleFs`, a littlefs volume,
//!   safe across power loss.
//! - `fatfs` feature (needs std): `fat::FatFs`, a FAT12/16/32 volume.
//! - `sdmmc` feature (no_std): `sdmmc::SdFat`, a FAT16/32 volume through the
//!   `embedded-sdmmc` crate, with 8.3 names (an SD card on a board, or an
//!   image on a host).
//!
//! The volumes sit on a [`block::BlockDevice`]: [`block::RamDisk`] (no_std),
//! `block::FileDisk` (an image file, `std`) or [`block::CutOff`], which
//! simulates a power cut for tests. `image` (`std` with either volume
//! feature) opens or creates image files for tools. docs/STORAGE.md compares
//! the backends.
#![no_std]
// One module may allow it: `littlefs/open_file.rs`, which keeps littlefs
// files open between calls (its docs state the invariants).
#![deny(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod std_dir;

pub mod block;
#[cfg(any(feature = "fatfs", feature = "sdmmc"))]
mod civil;
#[cfg(feature = "fatfs")]
pub mod fat;
#[cfg(all(
    feature = "std",
    any(feature = "littlefs2", feature = "fatfs", feature = "sdmmc")
))]
pub mod image;
#[cfg(any(feature = "littlefs2", feature = "fatfs", feature = "sdmmc"))]
mod io_kind;
#[cfg(feature = "littlefs2")]
pub mod littlefs;
#[cfg(feature = "sdmmc")]
pub mod sdmmc;

pub use embedded_io;

/// What went wrong in a storage operation, independent of the backend.
///
/// The FTP engine maps each kind to one reply code in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The path, or a directory on the way to it, does not exist.
    NotFound,
    /// The target exists already (e.g. `create_dir` on an existing name).
    AlreadyExists,
    /// The storage refuses the operation (permissions, read-only medium).
    PermissionDenied,
    /// A directory was expected.
    NotADirectory,
    /// A file was expected.
    IsADirectory,
    /// `remove_dir` on a directory that still has entries.
    DirectoryNotEmpty,
    /// The medium is full.
    NoSpace,
    /// A name is longer than the backend can store.
    NameTooLong,
    /// A name holds bytes the backend cannot store.
    InvalidName,
    /// The backend cannot do this at all (e.g. permissions on FAT).
    Unsupported,
    /// Corrupt storage or an I/O error of the device.
    Io,
    /// Anything else.
    Other,
}

/// An error of a storage backend.
pub trait Error: core::fmt::Debug + embedded_io::Error {
    /// The backend-independent kind of this error.
    fn fs_kind(&self) -> ErrorKind;
}

/// Whether a directory entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What the engine needs to know about a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// File or directory.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories where the backend has none).
    pub size: u64,
    /// Last modification, seconds since 1970-01-01 UTC, if the backend keeps it.
    pub modified: Option<u64>,
    /// Unix permission bits (`0o644`), if the backend has them.
    pub mode: Option<u16>,
}

/// How [`FileSystem::open_write`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create the file, or truncate it to zero length if it exists.
    Truncate,
    /// Create the file if missing, and position at its end.
    Append,
    /// Open an existing file without truncating it, positioned at its start
    /// (the caller seeks; used for `REST` + `STOR`). Creates it if missing.
    Update,
}

/// An open file: bytes in and out, and a position.
///
/// `read` returning `Ok(0)` is end of file. Dropping the file closes it; the
/// engine calls [`FileSystem::close`] when the backend needs it explicitly.
pub trait File:
    embedded_io::Read + embedded_io::Write + embedded_io::Seek + embedded_io::ErrorType
{
}
impl<T> File for T where
    T: embedded_io::Read + embedded_io::Write + embedded_io::Seek + embedded_io::ErrorType
{
}

/// One directory entry, as read by [`FileSystem::read_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry {
    /// Length of the entry's name, written to the start of the caller's buffer.
    pub name_len: usize,
    /// The entry's metadata.
    pub metadata: Metadata,
}

/// A tree of files and directories the FTP engine serves.
///
/// Every method takes a canonical absolute path (see the crate docs). The
/// entries `.` and `..` are never returned by [`FileSystem::read_dir`].
pub trait FileSystem {
    /// The backend's error.
    type Error: Error;
    /// An open file.
    type File: File + embedded_io::ErrorType<Error = Self::Error>;
    /// An open directory being read entry by entry.
    type Dir;

    /// Opens an existing file for reading, positioned at its start.
    fn open_read(&mut self, path: &[u8]) -> Result<Self::File, Self::Error>;
    /// Opens a file for writing as `mode` says.
    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<Self::File, Self::Error>;
    /// Flushes and closes a file, reporting errors a drop would lose
    /// (e.g. "disk full" at the final write-back).
    fn close(&mut self, file: Self::File) -> Result<(), Self::Error>;
    /// Metadata of a file or directory.
    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, Self::Error>;
    /// Opens a directory for reading its entries.
    fn open_dir(&mut self, path: &[u8]) -> Result<Self::Dir, Self::Error>;
    /// Reads the next entry: its name goes to the start of `name`, and
    /// `Ok(None)` means there are no more. A name longer than `name` is skipped.
    fn read_dir(
        &mut self,
        dir: &mut Self::Dir,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, Self::Error>;
    /// Creates a directory; its parent must exist.
    fn create_dir(&mut self, path: &[u8]) -> Result<(), Self::Error>;
    /// Removes an empty directory ([`ErrorKind::DirectoryNotEmpty`] otherwise).
    fn remove_dir(&mut self, path: &[u8]) -> Result<(), Self::Error>;
    /// Removes a file.
    fn remove_file(&mut self, path: &[u8]) -> Result<(), Self::Error>;
    /// Renames a file or directory; an existing target file is replaced
    /// atomically where the backend can.
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), Self::Error>;
    /// Sets the modification time (seconds since 1970-01-01 UTC).
    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), Self::Error>;
    /// Sets Unix permission bits; backends without them return
    /// [`ErrorKind::Unsupported`].
    fn set_mode(&mut self, path: &[u8], mode: u16) -> Result<(), Self::Error>;
    /// The operating system's descriptor of `file`, if it has one, lent
    /// for a zero-copy send (`ferry_net::SecureStack::send_file`); `None`
    /// (the default) for storage the engine reads itself.
    fn os_file(&self, file: &Self::File) -> Option<i32> {
        let _ = file;
        None
    }
}

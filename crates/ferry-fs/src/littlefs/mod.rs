//! littlefs as a Ferry [`FileSystem`] (`littlefs2` feature, no_std, no alloc).
//!
//! [`LittleFs`] serves a littlefs volume mounted with the `littlefs2` crate
//! (0.8) on any `littlefs2::driver::Storage`; [`LfsStorage`] makes one of
//! any [`BlockDevice`](crate::block::BlockDevice).
//!
//! Ownership: a mounted `littlefs2::fs::Filesystem` borrows its `Allocation`
//! and its storage, and every open [`LfsFile`] needs the file system to read
//! and write. So the caller keeps the mounted `Filesystem` (on the stack, in
//! a `static`, or leaked on a host) and [`LittleFs`] and its files borrow it:
//!
//! ```
//! use ferry_fs::block::RamDisk;
//! use ferry_fs::littlefs::{self, LfsStorage, LittleFs};
//! use ferry_fs::{embedded_io::Write as _, FileSystem as _, WriteMode};
//!
//! let disk = RamDisk::new([0u8; 32 * 512], 512).unwrap();
//! let mut storage = LfsStorage::<_, 512, 32>::new(disk).unwrap();
//! littlefs::format(&mut storage).unwrap();
//! littlefs::mount_and_then(&mut storage, |fs| {
//!     let mut f = fs.open_write(b"/hello.txt", WriteMode::Truncate).unwrap();
//!     f.write_all(b"hi").unwrap();
//!     fs.close(f).unwrap();
//!     assert_eq!(fs.metadata(b"/hello.txt").unwrap().size, 2);
//! })
//! .unwrap();
//! ```
//!
//! Guarantees and limits:
//! - **Power loss.** littlefs is copy-on-write: after a power cut at any
//!   point, the volume mounts and every file holds what its last completed
//!   write, close or rename left. [`FileSystem::rename`] over an existing
//!   file replaces it atomically, so an upload written to a temporary name
//!   and renamed on success leaves either the old or the new file.
//! - **Files are a path and a position.** littlefs2 only lends an open file
//!   to a closure, so an [`LfsFile`] opens, seeks, reads or writes and closes
//!   the file on every call. Each write is therefore committed (durable) when
//!   it returns, and `flush` has nothing left to do; the price is a metadata
//!   commit per write, and copying the partly written last block on the next
//!   append: write in chunks of a block or more where you can.
//! - **Listing** keeps a directory's path and an entry count, and skips that
//!   many entries on each [`FileSystem::read_dir`]: listing `n` entries reads
//!   `n²/2` entries.
//! - **Names** are bytes; non-ASCII bytes and `%` are stored escaped (see
//!   `name.rs`), because littlefs2 paths are ASCII: `Grüße` takes 15 of the
//!   255 bytes a stored name may have, and a whole stored path is at most 255
//!   bytes. Longer gives [`ErrorKind::NameTooLong`]. Renaming a directory
//!   fails with [`ErrorKind::NameTooLong`] if a path below it would get too
//!   long. Images written by other littlefs tools: names with `%` or
//!   non-ASCII bytes are listed but cannot be opened, and a path longer than
//!   255 bytes in one makes littlefs2 panic while listing its directory.
//! - **Modification times** are a custom attribute ([`MTIME_ATTRIBUTE`]: 8
//!   bytes, little-endian seconds since 1970 UTC). [`FileSystem::set_modified`]
//!   sets it. littlefs has no clock: with [`LittleFs::with_clock`], closing a
//!   written file and creating a directory store the time; without one,
//!   closing a written file removes a stored time (it would be stale), and
//!   [`Metadata::modified`] is `None`. Renames keep the attribute.
//! - [`FileSystem::set_mode`] is [`ErrorKind::Unsupported`]: littlefs has no
//!   permission bits. Files are at most 2 GiB − 1 bytes.

mod name;
mod storage;

pub use littlefs2;
pub use storage::LfsStorage;

use littlefs2::driver::Storage;
use littlefs2::fs::{Allocation, Filesystem};
use littlefs2::path::{Path, PathBuf};

use crate::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

/// The littlefs attribute id under which a modification time is stored.
pub const MTIME_ATTRIBUTE: u8 = b't';

/// Formats `storage` as an empty littlefs volume.
pub fn format<S: Storage>(storage: &mut S) -> Result<(), LfsError> {
    Ok(Filesystem::format(storage)?)
}

/// Mounts `storage` and lends the volume to `f` as a [`LittleFs`], with an
/// `Allocation` on the stack (about 1 KB).
pub fn mount_and_then<S: Storage, R>(
    storage: &mut S,
    f: impl FnOnce(&mut LittleFs<'_, S>) -> R,
) -> Result<R, LfsError> {
    let mut alloc = Allocation::new();
    let fs = Filesystem::mount(&mut alloc, storage)?;
    let mut lfs = LittleFs::new(&fs);
    Ok(f(&mut lfs))
}

/// Like [`mount_and_then`], formatting `storage` first if it does not mount
/// (a new medium). Careful: a damaged volume is formatted too.
pub fn mount_or_format_and_then<S: Storage, R>(
    storage: &mut S,
    f: impl FnOnce(&mut LittleFs<'_, S>) -> R,
) -> Result<R, LfsError> {
    if !Filesystem::is_mountable(storage) {
        format(storage)?;
    }
    mount_and_then(storage, f)
}

/// A mounted littlefs volume as a Ferry [`FileSystem`].
///
/// See the [module docs](self) for ownership, guarantees and limits.
pub struct LittleFs<'a, S: Storage> {
    fs: &'a Filesystem<'a, S>,
    clock: Option<fn() -> u64>,
}

/// A file of a [`LittleFs`]: its path and a position (see the module docs).
pub struct LfsFile<'a, S: Storage> {
    fs: &'a Filesystem<'a, S>,
    path: PathBuf,
    pos: u64,
    writable: bool,
    written: bool,
}

/// A directory of a [`LittleFs`] being listed: its path and how many entries
/// were read.
#[derive(Clone)]
pub struct LfsDir {
    path: PathBuf,
    next: usize,
}

/// An error of [`LittleFs`]: its [`ErrorKind`] and littlefs's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfsError {
    kind: ErrorKind,
    code: i32,
}

impl LfsError {
    /// littlefs's (negative, errno-like) error code, or 0 for an error this
    /// adapter raised itself (e.g. a name too long to store).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// An error raised by the adapter rather than by littlefs.
    pub(crate) const fn adapter(kind: ErrorKind) -> LfsError {
        LfsError { kind, code: 0 }
    }
}

impl From<littlefs2::io::Error> for LfsError {
    fn from(e: littlefs2::io::Error) -> LfsError {
        use littlefs2::io::Error as E;
        let kind = match e {
            E::NO_SUCH_ENTRY => ErrorKind::NotFound,
            E::ENTRY_ALREADY_EXISTED => ErrorKind::AlreadyExists,
            E::PATH_NOT_DIR => ErrorKind::NotADirectory,
            E::PATH_IS_DIR => ErrorKind::IsADirectory,
            E::DIR_NOT_EMPTY => ErrorKind::DirectoryNotEmpty,
            // A file beyond littlefs's 2 GiB limit: FTP says 552 like a full disk.
            E::NO_SPACE | E::FILE_TOO_BIG => ErrorKind::NoSpace,
            E::FILENAME_TOO_LONG => ErrorKind::NameTooLong,
            E::IO | E::CORRUPTION => ErrorKind::Io,
            _ => ErrorKind::Other,
        };
        LfsError {
            kind,
            code: e.code(),
        }
    }
}

impl core::fmt::Display for LfsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "littlefs: {:?} (code {})", self.kind, self.code)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LfsError {}

impl crate::Error for LfsError {
    fn fs_kind(&self) -> ErrorKind {
        self.kind
    }
}

impl embedded_io::Error for LfsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        crate::io_kind::io_kind(self.kind)
    }
}

fn err(kind: ErrorKind) -> LfsError {
    LfsError::adapter(kind)
}

impl<'a, S: Storage> LittleFs<'a, S> {
    /// Serves the mounted volume `fs`.
    pub fn new(fs: &'a Filesystem<'a, S>) -> LittleFs<'a, S> {
        LittleFs { fs, clock: None }
    }

    /// Stores modification times from `clock` (seconds since 1970 UTC) when
    /// a written file is closed and when a directory is created.
    pub fn with_clock(mut self, clock: fn() -> u64) -> LittleFs<'a, S> {
        self.clock = Some(clock);
        self
    }

    /// Sets or clears the clock (see [`LittleFs::with_clock`]).
    pub fn set_clock(&mut self, clock: Option<fn() -> u64>) {
        self.clock = clock;
    }

    /// The mounted littlefs2 volume.
    pub fn filesystem(&self) -> &'a Filesystem<'a, S> {
        self.fs
    }

    /// Bytes that are certainly free (littlefs's estimate is a lower bound).
    pub fn available_space(&self) -> Result<u64, LfsError> {
        Ok(self.fs.available_space()? as u64)
    }

    fn mtime(&self, path: &Path) -> Result<Option<u64>, LfsError> {
        read_mtime(self.fs, path).map_err(LfsError::from)
    }

    /// Stores the clock's time as `path`'s modification time, or removes a
    /// stored time that the write made stale.
    fn touch(&self, path: &Path) -> Result<(), LfsError> {
        match self.clock {
            Some(clock) => {
                Ok(self
                    .fs
                    .set_attribute(path, MTIME_ATTRIBUTE, &clock().to_le_bytes())?)
            }
            None if self.mtime(path)?.is_some() => {
                Ok(self.fs.remove_attribute(path, MTIME_ATTRIBUTE)?)
            }
            None => Ok(()),
        }
    }

    /// The stored path of a path other than the root.
    fn encode_not_root(path: &[u8]) -> Result<PathBuf, LfsError> {
        let p = name::encode(path)?;
        if p.as_str().is_empty() {
            return Err(err(ErrorKind::PermissionDenied));
        }
        Ok(p)
    }

    /// Length of the longest stored path below directory `dir`.
    fn longest_path_below(&self, dir: &Path) -> littlefs2::io::Result<usize> {
        self.fs.read_dir_and_then(dir, |entries| {
            let mut longest = 0;
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().as_str();
                if name == "." || name == ".." {
                    continue;
                }
                longest = longest.max(entry.path().as_str().len());
                if entry.file_type().is_dir() {
                    longest = longest.max(self.longest_path_below(entry.path())?);
                }
            }
            Ok(longest)
        })
    }
}

fn read_mtime<S: Storage>(
    fs: &Filesystem<'_, S>,
    path: &Path,
) -> littlefs2::io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    let attr = fs.attribute(path, MTIME_ATTRIBUTE, &mut buf)?;
    Ok(attr.and_then(|a| <[u8; 8]>::try_from(a.data()).ok().map(u64::from_le_bytes)))
}

fn convert_metadata(meta: &littlefs2::fs::Metadata, modified: Option<u64>) -> Metadata {
    let kind = if meta.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::File
    };
    Metadata {
        kind,
        size: if kind == EntryKind::File {
            meta.len() as u64
        } else {
            0
        },
        modified,
        mode: None,
    }
}

impl<'a, S: Storage> FileSystem for LittleFs<'a, S> {
    type Error = LfsError;
    type File = LfsFile<'a, S>;
    type Dir = LfsDir;

    fn open_read(&mut self, path: &[u8]) -> Result<LfsFile<'a, S>, LfsError> {
        let p = name::encode(path)?;
        if self.fs.metadata(&p)?.is_dir() {
            return Err(err(ErrorKind::IsADirectory));
        }
        Ok(LfsFile {
            fs: self.fs,
            path: p,
            pos: 0,
            writable: false,
            written: false,
        })
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<LfsFile<'a, S>, LfsError> {
        let p = name::encode(path)?;
        match self.fs.metadata(&p) {
            Ok(meta) if meta.is_dir() => return Err(err(ErrorKind::IsADirectory)),
            Ok(_) => {}
            Err(littlefs2::io::Error::NO_SUCH_ENTRY) => {}
            Err(e) => return Err(e.into()),
        }
        let truncate = mode == WriteMode::Truncate;
        let size = self.fs.open_file_with_options_and_then(
            |o| o.write(true).create(true).truncate(truncate),
            &p,
            |file| file.len(),
        )?;
        Ok(LfsFile {
            fs: self.fs,
            path: p,
            pos: if mode == WriteMode::Append {
                size as u64
            } else {
                0
            },
            writable: true,
            written: truncate,
        })
    }

    fn close(&mut self, file: LfsFile<'a, S>) -> Result<(), LfsError> {
        if file.written {
            self.touch(&file.path)?;
        }
        Ok(())
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, LfsError> {
        let p = name::encode(path)?;
        let meta = self.fs.metadata(&p)?;
        Ok(convert_metadata(&meta, self.mtime(&p)?))
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<LfsDir, LfsError> {
        let p = name::encode(path)?;
        if !self.fs.metadata(&p)?.is_dir() {
            return Err(err(ErrorKind::NotADirectory));
        }
        Ok(LfsDir { path: p, next: 0 })
    }

    fn read_dir(
        &mut self,
        dir: &mut LfsDir,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, LfsError> {
        let fs = self.fs;
        let skip = dir.next;
        let mut index = 0;
        let found = fs.read_dir_and_then(&dir.path, |entries| {
            for entry in entries {
                let entry = entry?;
                index += 1;
                if index <= skip {
                    continue;
                }
                let stored = entry.file_name().as_str().as_bytes();
                if stored == b"." || stored == b".." {
                    continue;
                }
                let Some(name_len) = name::decode(stored, name) else {
                    continue;
                };
                let modified = read_mtime(fs, entry.path())?;
                return Ok(Some(DirEntry {
                    name_len,
                    metadata: convert_metadata(&entry.metadata(), modified),
                }));
            }
            Ok(None)
        })?;
        dir.next = index;
        Ok(found)
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), LfsError> {
        let p = name::encode(path)?;
        self.fs.create_dir(&p)?;
        if let Some(clock) = self.clock {
            self.fs
                .set_attribute(&p, MTIME_ATTRIBUTE, &clock().to_le_bytes())?;
        }
        Ok(())
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), LfsError> {
        let p = Self::encode_not_root(path)?;
        if !self.fs.metadata(&p)?.is_dir() {
            return Err(err(ErrorKind::NotADirectory));
        }
        Ok(self.fs.remove(&p)?)
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), LfsError> {
        let p = Self::encode_not_root(path)?;
        if self.fs.metadata(&p)?.is_dir() {
            return Err(err(ErrorKind::IsADirectory));
        }
        Ok(self.fs.remove(&p)?)
    }

    /// littlefs renames atomically, replacing an existing file (or empty
    /// directory, when renaming a directory) in the same commit.
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), LfsError> {
        let src = Self::encode_not_root(from)?;
        let dst = Self::encode_not_root(to)?;
        let meta = self.fs.metadata(&src)?;
        if src == dst {
            return Ok(());
        }
        let (s, d) = (src.as_str().as_bytes(), dst.as_str().as_bytes());
        if meta.is_dir() {
            // A directory cannot move into itself.
            if d.strip_prefix(s)
                .is_some_and(|rest| rest.first() == Some(&b'/'))
            {
                return Err(err(ErrorKind::Other));
            }
            // Keep every stored path within littlefs2's 255 bytes.
            if d.len() > s.len() {
                let longest = self.longest_path_below(&src)?;
                // Below `src`, each path is `src` plus a suffix.
                let suffix = longest.saturating_sub(s.len());
                if longest > 0 && d.len().saturating_add(suffix) > name::MAX_STORED {
                    return Err(err(ErrorKind::NameTooLong));
                }
            }
        }
        Ok(self.fs.rename(&src, &dst)?)
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), LfsError> {
        let p = name::encode(path)?;
        self.fs.metadata(&p)?;
        Ok(self
            .fs
            .set_attribute(&p, MTIME_ATTRIBUTE, &unix_secs.to_le_bytes())?)
    }

    fn set_mode(&mut self, path: &[u8], _mode: u16) -> Result<(), LfsError> {
        let p = name::encode(path)?;
        self.fs.metadata(&p)?;
        Err(err(ErrorKind::Unsupported))
    }
}

/// littlefs2 seeks and sizes with `i32`/`u32`: positions beyond this fail.
const MAX_POS: u64 = i32::MAX as u64;

impl<S: Storage> LfsFile<'_, S> {
    /// The position as littlefs2 takes it.
    fn lfs_pos(&self) -> Result<u32, LfsError> {
        u32::try_from(self.pos)
            .ok()
            .filter(|&p| u64::from(p) <= MAX_POS)
            .ok_or(err(ErrorKind::NoSpace))
    }
}

impl<S: Storage> embedded_io::ErrorType for LfsFile<'_, S> {
    type Error = LfsError;
}

impl<S: Storage> embedded_io::Read for LfsFile<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, LfsError> {
        if buf.is_empty() || self.pos > MAX_POS {
            return Ok(0);
        }
        let pos = self.lfs_pos()?;
        let n = self.fs.open_file_with_options_and_then(
            |o| o.read(true),
            &self.path,
            |file| {
                file.seek(littlefs2::io::SeekFrom::Start(pos))?;
                file.read(buf)
            },
        )?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Storage> embedded_io::Write for LfsFile<'_, S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, LfsError> {
        if !self.writable {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let pos = self.lfs_pos()?;
        // Never past littlefs's largest file.
        let room = usize::try_from(MAX_POS - self.pos).unwrap_or(usize::MAX);
        let buf = buf.get(..buf.len().min(room)).unwrap_or_default();
        if buf.is_empty() {
            return Err(err(ErrorKind::NoSpace));
        }
        let n = self.fs.open_file_with_options_and_then(
            |o| o.write(true),
            &self.path,
            |file| {
                file.seek(littlefs2::io::SeekFrom::Start(pos))?;
                file.write(buf)
            },
        )?;
        if n == 0 {
            // Never `Ok(0)` for a non-empty buffer: `write_all` would panic.
            return Err(err(ErrorKind::NoSpace));
        }
        self.pos += n as u64;
        self.written = true;
        Ok(n)
    }

    /// Every write is committed when it returns: nothing to flush.
    fn flush(&mut self) -> Result<(), LfsError> {
        Ok(())
    }
}

impl<S: Storage> embedded_io::Seek for LfsFile<'_, S> {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, LfsError> {
        let (base, delta) = match pos {
            embedded_io::SeekFrom::Start(n) => (n, 0),
            embedded_io::SeekFrom::Current(d) => (self.pos, d),
            embedded_io::SeekFrom::End(d) => (self.fs.metadata(&self.path)?.len() as u64, d),
        };
        // Before the start: refused, the position stays.
        let new = base
            .checked_add_signed(delta)
            .ok_or(err(ErrorKind::Other))?;
        self.pos = new;
        Ok(new)
    }
}

impl<S: Storage> core::fmt::Debug for LittleFs<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LittleFs")
            .field("block_size", &S::BLOCK_SIZE)
            .field("block_count", &S::BLOCK_COUNT)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

impl<S: Storage> core::fmt::Debug for LfsFile<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LfsFile")
            .field("path", &self.path.as_str())
            .field("pos", &self.pos)
            .field("writable", &self.writable)
            .finish()
    }
}

impl core::fmt::Debug for LfsDir {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LfsDir")
            .field("path", &self.path.as_str())
            .field("next", &self.next)
            .finish()
    }
}

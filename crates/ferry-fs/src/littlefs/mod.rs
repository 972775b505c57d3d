//! littlefs as a Ferry [`FileSystem`] (`littlefs2` feature, no_std, no alloc).
//!
//! [`LittleFs`] serves a littlefs volume mounted with the `littlefs2` crate
//! (0.8) on any `littlefs2::driver::Storage`; [`LfsStorage`] makes one of
//! any [`BlockDevice`](crate::block::BlockDevice).
//!
//! Ownership: a mounted `littlefs2::fs::Filesystem` borrows its `Allocation`
//! and its storage, and every open [`LfsFile`] needs the file system to read
//! and write, and a slot of a [`FileSlots`] for littlefs's state of the open
//! file. So the caller keeps the mounted `Filesystem` and the slots (on the
//! stack, in `static`s, or leaked on a host) and [`LittleFs`] and its files
//! borrow them; [`mount_and_then`] does it all on the stack:
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
//!   point, the volume mounts and every file holds what its last commit
//!   left. A file open for writing is committed when it is closed (or
//!   dropped), on `flush`, and when a write at the end of the file fills a
//!   littlefs block (see below); opening with [`WriteMode::Truncate`]
//!   commits the empty file. So a cut during an upload leaves the file as
//!   it was opened or at the last block end the upload passed: a prefix of
//!   the upload, in whole blocks, from which a client can resume (`REST`).
//!   At most one block of what the writes took is lost (128 KiB on flash
//!   with 128 KiB sectors). [`FileSystem::rename`] over an existing file
//!   replaces it atomically, so an upload written to a temporary name and
//!   renamed on success leaves either the old or the new file.
//! - **Files stay open** between calls, each in a slot of the [`FileSlots`]
//!   given to [`LittleFs::new`]: opening a file with every slot in use fails
//!   with [`LfsError::NO_FREE_SLOT`] ([`ErrorKind::Other`]). Closing or
//!   dropping an [`LfsFile`] frees its slot; a leaked one keeps it.
//!   (`open_file.rs`, the crate's only `unsafe` code, states how littlefs's
//!   list of open files stays valid.)
//! - **Writes go block by block.** A write stops at the end of the littlefs
//!   block it starts in (a short write, never `Ok(0)`); one that fills the
//!   last block of the file commits the file, and the next write starts a
//!   new block. Writes in between only program the block. Committing in
//!   mid-block would make the next write copy the partly written block to a
//!   fresh one (an erase and up to a block of programming: seconds with
//!   128 KiB flash sectors), so `flush`, which commits wherever it is, is
//!   for when the data must be durable now. After a failed write or commit
//!   the file takes no more writes, and [`FileSystem::close`] reports that
//!   error: what was written after the last commit is lost.
//! - **Other handles.** [`FileSystem::metadata`] shows a file's committed
//!   size. A file open for reading keeps reading the blocks it opened; if
//!   the file is removed or replaced meanwhile, littlefs may reuse those
//!   blocks for new data, which the reader then reads.
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
mod open_file;
mod storage;

pub use littlefs2;
pub use open_file::FileSlots;
pub use storage::LfsStorage;

use littlefs2::driver::Storage;
use littlefs2::fs::{Allocation, Filesystem, OpenOptions};
use littlefs2::path;
use littlefs2::path::{Path, PathBuf};

use open_file::{OpenError, OpenFile};

use crate::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

/// The littlefs attribute id under which a modification time is stored.
pub const MTIME_ATTRIBUTE: u8 = b't';

/// Formats `storage` as an empty littlefs volume.
pub fn format<S: Storage>(storage: &mut S) -> Result<(), LfsError> {
    Ok(Filesystem::format(storage)?)
}

/// How many files a [`LittleFs`] has slots for unless told otherwise.
pub const DEFAULT_FILES: usize = 4;

/// Mounts `storage` and lends the volume to `f` as a [`LittleFs`], with an
/// `Allocation` (about 1 KB) and [`DEFAULT_FILES`] file slots (about 1.5 KB)
/// on the stack.
pub fn mount_and_then<S: Storage, R>(
    storage: &mut S,
    f: impl FnOnce(&mut LittleFs<'_, S>) -> R,
) -> Result<R, LfsError> {
    let slots = FileSlots::new();
    let mut alloc = Allocation::new();
    let fs = Filesystem::mount(&mut alloc, storage)?;
    let mut lfs = LittleFs::new(&fs, &slots);
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

/// A mounted littlefs volume as a Ferry [`FileSystem`], with slots for
/// `FILES` open files.
///
/// See the [module docs](self) for ownership, guarantees and limits.
pub struct LittleFs<'a, S: Storage, const FILES: usize = DEFAULT_FILES> {
    fs: &'a Filesystem<'a, S>,
    slots: &'a FileSlots<S, FILES>,
    clock: Option<fn() -> u64>,
}

/// An open file of a [`LittleFs`] (see the module docs).
pub struct LfsFile<'a, S: Storage> {
    file: OpenFile<'a, S>,
    /// Where a modification time goes when a written file is closed.
    path: PathBuf,
    /// The caller's position; littlefs's moves there on the next read or
    /// write (seeks are lazy, and may go beyond what littlefs takes).
    pos: u64,
    /// littlefs's position.
    lfs_pos: u64,
    writable: bool,
    written: bool,
    /// The failure of a write or commit: the file takes no more writes.
    failed: Option<LfsError>,
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

    /// Opening a file found every slot of the [`FileSlots`] in use: an
    /// [`ErrorKind::Other`] (a transient local error: the FTP engine replies
    /// 451) with littlefs's code for "out of memory".
    pub const NO_FREE_SLOT: LfsError = LfsError {
        kind: ErrorKind::Other,
        code: littlefs2::io::Error::NO_MEMORY.code(),
    };

    /// An error raised by the adapter rather than by littlefs.
    pub(crate) const fn adapter(kind: ErrorKind) -> LfsError {
        LfsError { kind, code: 0 }
    }
}

impl From<OpenError> for LfsError {
    fn from(e: OpenError) -> LfsError {
        match e {
            OpenError::NoFreeSlot => LfsError::NO_FREE_SLOT,
            OpenError::Lfs(e) => e.into(),
        }
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

impl<'a, S: Storage, const FILES: usize> LittleFs<'a, S, FILES> {
    /// Serves the mounted volume `fs`, keeping open files in `slots`.
    pub fn new(
        fs: &'a Filesystem<'a, S>,
        slots: &'a FileSlots<S, FILES>,
    ) -> LittleFs<'a, S, FILES> {
        LittleFs {
            fs,
            slots,
            clock: None,
        }
    }

    /// Stores modification times from `clock` (seconds since 1970 UTC) when
    /// a written file is closed and when a directory is created.
    pub fn with_clock(mut self, clock: fn() -> u64) -> LittleFs<'a, S, FILES> {
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

    /// The slots open files are kept in.
    pub fn file_slots(&self) -> &'a FileSlots<S, FILES> {
        self.slots
    }

    /// Opens the stored path `path` in a free slot.
    fn open(
        &self,
        path: PathBuf,
        options: &OpenOptions,
        writable: bool,
    ) -> Result<LfsFile<'a, S>, LfsError> {
        let file = OpenFile::open(self.fs, self.slots, options, &path)?;
        Ok(LfsFile {
            file,
            path,
            pos: 0,
            lfs_pos: 0,
            writable,
            written: false,
            failed: None,
        })
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
    ///
    /// A depth-first walk that holds one directory open at a time: from
    /// the path it stands on, it lists that directory from its start (on
    /// the way down), or its parent from the entry after it (on the way
    /// back), up to the next subdirectory. A recursive walk would hold a
    /// littlefs2 directory and its frames, ~2.5 KB of stack, per level, and
    /// paths of 255 bytes nest directories up to ~120 deep. Each directory
    /// is listed once more per subdirectory it has.
    // Not inlined: only renaming a directory needs this frame.
    #[inline(never)]
    fn longest_path_below(&self, dir: &Path) -> littlefs2::io::Result<usize> {
        const INVALID: littlefs2::io::Error = littlefs2::io::Error::INVALID;
        // The path the walk stands on is `at[..len]`, NUL-terminated.
        let mut at = [0u8; PathBuf::MAX_SIZE_PLUS_ONE];
        let top = dir.as_str().len();
        let mut len = top;
        at.get_mut(..len)
            .ok_or(INVALID)?
            .copy_from_slice(dir.as_str().as_bytes());
        let mut down = true;
        let mut longest = 0;
        loop {
            // The directory to list ends at `end`; go on after `name`.
            let (end, name) = if down {
                (len, len..len)
            } else {
                let slash = at
                    .get(..len)
                    .and_then(|p| p.iter().rposition(|&b| b == b'/'))
                    .ok_or(INVALID)?;
                (slash, slash + 1..len)
            };
            let list = if end == 0 {
                path!("/")
            } else {
                // Ends the parent's path in place; the name stays after it.
                *at.get_mut(end).ok_or(INVALID)? = 0;
                Path::from_bytes_with_nul(at.get(..=end).ok_or(INVALID)?).map_err(|_| INVALID)?
            };
            let after = at.get(name).ok_or(INVALID)?;
            let next = self.fs.read_dir_and_then(list, |entries| {
                let mut skipping = !down;
                for entry in entries {
                    let entry = entry?;
                    let entry_name = entry.file_name().as_str().as_bytes();
                    if skipping {
                        skipping = entry_name != after;
                        continue;
                    }
                    if entry_name == b"." || entry_name == b".." {
                        continue;
                    }
                    longest = longest.max(entry.path().as_str().len());
                    if entry.file_type().is_dir() {
                        return Ok(Some(PathBuf::from(entry.path())));
                    }
                }
                Ok(None)
            })?;
            if let Some(sub) = next {
                // Down into `sub`.
                let sub = sub.as_str_ref_with_trailing_nul().as_bytes();
                len = sub.len() - 1;
                at.get_mut(..sub.len()).ok_or(INVALID)?.copy_from_slice(sub);
                down = true;
            } else if end <= top {
                // `dir` is done.
                return Ok(longest);
            } else if down {
                // `at` is done: go on after it in its parent.
                down = false;
            } else {
                // The parent is done (its path ends at `end` already): go
                // on after it in its own parent.
                len = end;
            }
        }
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

impl<'a, S: Storage, const FILES: usize> FileSystem for LittleFs<'a, S, FILES> {
    type Error = LfsError;
    type File = LfsFile<'a, S>;
    type Dir = LfsDir;

    fn open_read(&mut self, path: &[u8]) -> Result<LfsFile<'a, S>, LfsError> {
        let p = name::encode(path)?;
        self.open(p, OpenOptions::new().read(true), false)
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
        // Read too: a file opened for writing may be read back.
        let options = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .clone();
        let mut file = self.open(p, &options, true)?;
        if truncate {
            // littlefs truncates in memory: commit it now, as the file was
            // opened empty (dropping the file on error closes it).
            file.file.file().sync()?;
            file.written = true;
        }
        if mode == WriteMode::Append {
            file.pos = file.file.file().len()? as u64;
        }
        Ok(file)
    }

    fn close(&mut self, file: LfsFile<'a, S>) -> Result<(), LfsError> {
        let LfsFile {
            file,
            path,
            written,
            failed,
            ..
        } = file;
        let closed = file.close();
        if let Some(e) = failed {
            return Err(e);
        }
        closed?;
        if written {
            self.touch(&path)?;
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

/// Bytes from file position `pos` to the end of the littlefs block that
/// holds it, for blocks of `block_size` bytes.
///
/// littlefs stores a file as a skip list of blocks: block 0 holds data only,
/// and block `i > 0` starts with `ctz(i) + 1` pointers of 4 bytes. This is
/// littlefs's `lfs_ctz_index` (lfs.c), which maps a position to its block
/// and offset in the block; a position at a block's end maps to the start
/// of the next one's data.
fn room_in_block(block_size: u64, pos: u64) -> u64 {
    let b = block_size.saturating_sub(8).max(1);
    let i = pos / b;
    let off = if i == 0 {
        pos
    } else {
        let below = 4 * (u64::from((i - 1).count_ones()) + 2);
        let i = pos.saturating_sub(below) / b;
        pos - b * i - 4 * u64::from(i.count_ones())
    };
    block_size.saturating_sub(off)
}

impl<S: Storage> LfsFile<'_, S> {
    /// Moves littlefs's position to the caller's (at most [`MAX_POS`]).
    fn seek_lfs(&mut self) -> Result<(), LfsError> {
        if self.lfs_pos != self.pos {
            let pos = u32::try_from(self.pos).map_err(|_| err(ErrorKind::NoSpace))?;
            self.file.file().seek(littlefs2::io::SeekFrom::Start(pos))?;
            self.lfs_pos = self.pos;
        }
        Ok(())
    }

    /// Remembers that a write or commit failed, and returns the error.
    fn fail(&mut self, e: impl Into<LfsError>) -> LfsError {
        let e = e.into();
        self.failed = Some(e);
        e
    }
}

impl<S: Storage> embedded_io::ErrorType for LfsFile<'_, S> {
    type Error = LfsError;
}

impl<S: Storage> embedded_io::Read for LfsFile<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, LfsError> {
        if buf.is_empty() || self.pos >= MAX_POS {
            return Ok(0);
        }
        self.seek_lfs()?;
        // littlefs2 passes the length as `u32` and returns `i32`.
        let len = buf.len().min(MAX_POS as usize);
        let buf = buf.get_mut(..len).unwrap_or_default();
        let n = self.file.file().read(buf)?;
        self.pos += n as u64;
        self.lfs_pos = self.pos;
        Ok(n)
    }
}

impl<S: Storage> embedded_io::Write for LfsFile<'_, S> {
    /// Writes up to the end of the littlefs block at the position, and
    /// commits the file when the write fills that block (module docs).
    fn write(&mut self, buf: &[u8]) -> Result<usize, LfsError> {
        if !self.writable {
            return Err(err(ErrorKind::PermissionDenied));
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // Never past littlefs's largest file.
        let room = MAX_POS.saturating_sub(self.pos);
        if room == 0 {
            return Err(err(ErrorKind::NoSpace));
        }
        let block_room = room_in_block(S::BLOCK_SIZE as u64, self.pos);
        let len = usize::try_from(room.min(block_room)).unwrap_or(usize::MAX);
        let buf = buf.get(..buf.len().min(len)).unwrap_or_default();
        self.seek_lfs()?;
        let n = match self.file.file().write(buf) {
            Ok(n) => n,
            Err(e) => return Err(self.fail(e)),
        };
        if n == 0 {
            // Never `Ok(0)` for a non-empty buffer: `write_all` would panic.
            return Err(self.fail(err(ErrorKind::NoSpace)));
        }
        self.pos += n as u64;
        self.lfs_pos = self.pos;
        self.written = true;
        // A full block at the end of the file: commit it, which costs no
        // copy later. (In mid-file, a commit would copy the rest of the
        // file.) A failure is the next call's error: these bytes were taken.
        let at_end = matches!(self.file.file().len(), Ok(len) if len as u64 == self.pos);
        if n as u64 == block_room && at_end {
            if let Err(e) = self.file.file().sync() {
                self.fail(e);
            }
        }
        Ok(n)
    }

    /// Commits the file. In mid-block this makes the next write copy the
    /// partly written block (module docs).
    fn flush(&mut self) -> Result<(), LfsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.writable {
            if let Err(e) = self.file.file().sync() {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }
}

impl<S: Storage> embedded_io::Seek for LfsFile<'_, S> {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, LfsError> {
        let (base, delta) = match pos {
            embedded_io::SeekFrom::Start(n) => (n, 0),
            embedded_io::SeekFrom::Current(d) => (self.pos, d),
            // With what is written but not yet committed.
            embedded_io::SeekFrom::End(d) => (self.file.file().len()? as u64, d),
        };
        // Before the start: refused, the position stays.
        let new = base
            .checked_add_signed(delta)
            .ok_or(err(ErrorKind::Other))?;
        self.pos = new;
        Ok(new)
    }
}

impl<S: Storage, const FILES: usize> core::fmt::Debug for LittleFs<'_, S, FILES> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LittleFs")
            .field("block_size", &S::BLOCK_SIZE)
            .field("block_count", &S::BLOCK_COUNT)
            .field("files", &self.slots)
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
            .field("failed", &self.failed)
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

#[cfg(test)]
mod tests {
    use super::{format, mount_and_then, room_in_block, LfsStorage};
    use crate::block::RamDisk;
    use crate::{FileSystem, WriteMode};
    use littlefs2::path::PathBuf;

    /// The walk that bounds a directory rename finds the longest path in
    /// any subtree, before and after subdirectories and files, at any
    /// depth, and nothing below an empty directory.
    #[test]
    fn longest_path_below_walks_every_level() {
        let disk = RamDisk::new([0u8; 64 * 512], 512).unwrap();
        let mut storage = LfsStorage::<_, 512, 64>::new(disk).unwrap();
        format(&mut storage).unwrap();
        mount_and_then(&mut storage, |fs| {
            let dirs = [
                "/d", "/d/a", "/d/a/x", "/d/b", "/d/b/c", "/d/b/c/e", "/d/y", "/d/z",
            ];
            for d in dirs {
                fs.create_dir(d.as_bytes()).unwrap();
            }
            let mut long = b"/d/b/c/e/".to_vec();
            long.extend_from_slice(&[b'n'; 60]);
            for f in [&b"/d/f0"[..], b"/d/a/x/f1", &long, b"/d/b/f2", b"/d/zz"] {
                let file = fs.open_write(f, WriteMode::Truncate).unwrap();
                fs.close(file).unwrap();
            }
            let longest = |p: &str| {
                let p = PathBuf::try_from(p).unwrap();
                fs.longest_path_below(&p).unwrap()
            };
            assert_eq!(longest("/d"), long.len());
            assert_eq!(longest("/d/a"), b"/d/a/x/f1".len());
            assert_eq!(longest("/d/b/c"), long.len());
            assert_eq!(longest("/d/z"), 0);
        })
        .unwrap();
    }

    /// `room_in_block` against the layout spelled out block by block:
    /// block 0 holds `bs` bytes of data, block `i > 0` `ctz(i) + 1` pointers
    /// of 4 bytes and then data.
    #[test]
    fn room_in_block_follows_the_skip_list() {
        for bs in [256u64, 512, 4096] {
            let mut start = 0u64;
            for i in 0u64..600 {
                let pointers = if i == 0 {
                    0
                } else {
                    4 * (u64::from(i.trailing_zeros()) + 1)
                };
                let end = start + bs - pointers;
                for pos in [start, start + 1, (start + end) / 2, end - 1] {
                    assert_eq!(room_in_block(bs, pos), end - pos, "bs {bs} pos {pos}");
                }
                start = end;
            }
        }
        // 128 KiB blocks, near littlefs's largest file.
        assert!(room_in_block(128 << 10, i32::MAX as u64) <= 128 << 10);
    }
}

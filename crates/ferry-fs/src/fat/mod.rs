//! FAT12/16/32 as a Ferry [`FileSystem`] (`fatfs` feature, needs std).
//!
//! [`FatFs`] serves a volume mounted with the `fatfs` crate (0.3.6) on any
//! `fatfs::ReadWriteSeek` stream; [`FatIo`] makes one of any
//! [`BlockDevice`], [`format`] and [`mount`] do the rest. `fatfs` 0.3.6
//! cannot build without std: **no_std boards use `embedded-sdmmc` for FAT**
//! (and can implement [`FileSystem`] over it), or littlefs.
//!
//! Ownership: `fatfs` files and directories borrow the mounted
//! `fatfs::FileSystem`, so the caller keeps it and [`FatFs`] borrows it:
//!
//! ```
//! use ferry_fs::block::RamDisk;
//! use ferry_fs::fat::{self, FatFs};
//! use ferry_fs::{embedded_io::Write as _, FileSystem as _, WriteMode};
//!
//! let mut disk = RamDisk::new(vec![0u8; 1 << 20], 512).unwrap();
//! fat::format(&mut disk).unwrap();
//! let volume = fat::mount(disk).unwrap();
//! let mut fs = FatFs::new(&volume);
//! let mut f = fs.open_write(b"/Hello.txt", WriteMode::Truncate).unwrap();
//! f.write_all(b"hi").unwrap();
//! fs.close(f).unwrap();
//! assert_eq!(fs.metadata(b"/hello.TXT").unwrap().size, 2);
//! ```
//!
//! Guarantees and limits:
//! - **No power-loss safety.** FAT updates its tables and directory entries
//!   in place: a cut can lose data, leave lost clusters or damage the volume.
//!   [`FileSystem::rename`] over an existing file removes the target and
//!   then renames, so a cut in between leaves neither name holding the new
//!   file under the target's name. Use littlefs where uploads must survive
//!   power loss.
//! - **Names** are UTF-8 (others: [`ErrorKind::InvalidName`]), long file
//!   names of at most 255 UTF-16 units and, a limit of `fatfs` 0.3, 255
//!   UTF-8 bytes ([`ErrorKind::NameTooLong`] beyond). Characters FAT refuses
//!   (`"*/:<>?\|`, control characters, and, in `fatfs` 0.3, characters outside
//!   the Basic Multilingual Plane such as emoji) give
//!   [`ErrorKind::InvalidName`]. Lookups ignore case, as FAT does.
//! - **Times**: FAT stores local date-time fields; this adapter reads and
//!   writes them as UTC, stamps writes with the host's UTC clock, and keeps
//!   even seconds (an odd time is rounded down), 1980..=2107 only.
//!   [`FileSystem::set_modified`] works on files; on directories it is
//!   [`ErrorKind::Unsupported`] (`fatfs` 0.3 cannot).
//! - [`FileSystem::set_mode`] is [`ErrorKind::Unsupported`]. Files are at
//!   most 4 GiB − 1 bytes; seeking past the end stops at the end.
//! - A directory moved to another parent keeps a stale `..` entry (`fatfs`
//!   0.3 does not rewrite it): harmless for Ferry, and `fsck.fat` fixes it.

mod io;
mod time;

pub use fatfs;
pub use io::FatIo;
pub use time::{UtcClock, UTC_CLOCK};

use std::io::{Read as _, Seek as _, Write as _};
use std::string::{String, ToString};

use fatfs::{FormatVolumeOptions, FsOptions, ReadWriteSeek};

use crate::block::{BlockDevice, BlockError};
use crate::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

/// Formats `device` as an empty FAT volume (FAT12, 16 or 32 by size, as
/// `fatfs::format_volume` picks; 512-byte sectors).
pub fn format<D: BlockDevice>(device: D) -> std::io::Result<()> {
    fatfs::format_volume(FatIo::new(device), FormatVolumeOptions::new())
}

/// Mounts the FAT volume on `device`, with [`UTC_CLOCK`] for new times.
///
/// Pass `&mut device` to get the device back after dropping the volume
/// (`fatfs` 0.3 does not hand its stream back).
pub fn mount<D: BlockDevice>(device: D) -> std::io::Result<fatfs::FileSystem<FatIo<D>>> {
    fatfs::FileSystem::new(
        FatIo::new(device),
        FsOptions::new().time_provider(&UTC_CLOCK),
    )
}

/// A mounted FAT volume as a Ferry [`FileSystem`].
///
/// See the [module docs](self) for ownership, guarantees and limits.
pub struct FatFs<'a, IO: ReadWriteSeek> {
    fs: &'a fatfs::FileSystem<IO>,
}

/// A file of a [`FatFs`].
pub struct FatFile<'a, IO: ReadWriteSeek> {
    file: fatfs::File<'a, IO>,
}

/// A directory of a [`FatFs`] being listed.
pub struct FatDir<'a, IO: ReadWriteSeek> {
    entries: fatfs::DirIter<'a, IO>,
}

/// An error of [`FatFs`]: the I/O error `fatfs` gave and its [`ErrorKind`].
#[derive(Debug)]
pub struct FatError {
    kind: ErrorKind,
    io: std::io::Error,
}

impl FatError {
    /// The I/O error behind this one.
    pub fn io_error(&self) -> &std::io::Error {
        &self.io
    }

    fn new(kind: ErrorKind, msg: &'static str) -> FatError {
        let io_kind = match kind {
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => std::io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => std::io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidName | ErrorKind::NameTooLong => std::io::ErrorKind::InvalidInput,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            _ => std::io::ErrorKind::Other,
        };
        FatError {
            kind,
            io: std::io::Error::new(io_kind, msg),
        }
    }
}

/// The Ferry kind of an error from `fatfs`, which reports most conditions as
/// `ErrorKind::Other` with a fixed message (checked against `fatfs` 0.3.6).
fn classify(io: &std::io::Error) -> ErrorKind {
    if io
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<BlockError>().is_some())
    {
        return ErrorKind::Io;
    }
    match io.kind() {
        std::io::ErrorKind::NotFound => return ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => return ErrorKind::AlreadyExists,
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
            return ErrorKind::Io
        }
        _ => {}
    }
    match io.to_string().as_str() {
        "Is a directory" => ErrorKind::IsADirectory,
        "Not a directory" => ErrorKind::NotADirectory,
        "Directory not empty" => ErrorKind::DirectoryNotEmpty,
        "No space left on device" => ErrorKind::NoSpace,
        "File name too long" => ErrorKind::NameTooLong,
        "File name is empty" | "File name contains unsupported characters" => {
            ErrorKind::InvalidName
        }
        _ => ErrorKind::Other,
    }
}

impl From<std::io::Error> for FatError {
    fn from(io: std::io::Error) -> FatError {
        FatError {
            kind: classify(&io),
            io,
        }
    }
}

impl From<FatError> for std::io::Error {
    fn from(e: FatError) -> std::io::Error {
        e.io
    }
}

impl core::fmt::Display for FatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FAT: {}", self.io)
    }
}

impl std::error::Error for FatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.io)
    }
}

impl crate::Error for FatError {
    fn fs_kind(&self) -> ErrorKind {
        self.kind
    }
}

impl embedded_io::Error for FatError {
    fn kind(&self) -> embedded_io::ErrorKind {
        crate::io_kind::io_kind(self.kind)
    }
}

/// A path below the root, as `fatfs` takes it (`a/b`); `""` is the root.
fn rel_path(path: &[u8]) -> Result<&str, FatError> {
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    core::str::from_utf8(rel).map_err(|_| FatError::new(ErrorKind::InvalidName, "not UTF-8"))
}

/// `(parent, name)` of a path below the root.
fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Checks that a long file name can be stored, before `fatfs` is asked to.
fn check_name(name: &str) -> Result<(), FatError> {
    if name.encode_utf16().count() > 255 || name.len() > 255 {
        return Err(FatError::new(ErrorKind::NameTooLong, "File name too long"));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || ('\u{80}'..='\u{FFFF}').contains(&c)
            || "$%'-_@~`!(){}. +,;=[]^#&".contains(c)
    };
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(allowed) {
        return Err(FatError::new(
            ErrorKind::InvalidName,
            "File name contains unsupported characters",
        ));
    }
    Ok(())
}

/// Equal as FAT compares names: ignoring case, by Unicode upper case.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// What a path names.
enum Node<'a, IO: ReadWriteSeek> {
    Root,
    Entry(fatfs::DirEntry<'a, IO>),
}

impl<'a, IO: ReadWriteSeek> Node<'a, IO> {
    fn is_dir(&self) -> bool {
        match self {
            Node::Root => true,
            Node::Entry(e) => e.is_dir(),
        }
    }
}

fn convert_metadata<IO: ReadWriteSeek>(entry: &fatfs::DirEntry<'_, IO>) -> Metadata {
    let dir = entry.is_dir();
    Metadata {
        kind: if dir { EntryKind::Dir } else { EntryKind::File },
        size: if dir { 0 } else { entry.len() },
        modified: time::to_unix(entry.modified()),
        mode: None,
    }
}

impl<'a, IO: ReadWriteSeek> FatFs<'a, IO> {
    /// Serves the mounted volume `fs`.
    pub fn new(fs: &'a fatfs::FileSystem<IO>) -> FatFs<'a, IO> {
        FatFs { fs }
    }

    /// The mounted `fatfs` volume.
    pub fn volume(&self) -> &'a fatfs::FileSystem<IO> {
        self.fs
    }

    /// The directory `rel` (`""`: the root).
    fn dir(&self, rel: &str) -> Result<fatfs::Dir<'a, IO>, FatError> {
        let root = self.fs.root_dir();
        if rel.is_empty() {
            return Ok(root);
        }
        Ok(root.open_dir(rel)?)
    }

    /// What `rel` names, matching names as FAT does.
    fn find(&self, rel: &str) -> Result<Node<'a, IO>, FatError> {
        if rel.is_empty() {
            return Ok(Node::Root);
        }
        let (parent, name) = split(rel);
        for entry in self.dir(parent)?.iter() {
            let entry = entry?;
            if eq_ignore_case(&entry.file_name(), name)
                || eq_ignore_case(&entry.short_file_name(), name)
            {
                return Ok(Node::Entry(entry));
            }
        }
        Err(FatError::new(
            ErrorKind::NotFound,
            "No such file or directory",
        ))
    }

    /// Whether `rel` names something.
    fn lookup(&self, rel: &str) -> Result<Option<Node<'a, IO>>, FatError> {
        match self.find(rel) {
            Ok(node) => Ok(Some(node)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn not_root(rel: &str) -> Result<&str, FatError> {
        if rel.is_empty() {
            return Err(FatError::new(
                ErrorKind::PermissionDenied,
                "the root cannot be removed or renamed",
            ));
        }
        Ok(rel)
    }

    /// Renames `from` to the free name `to` (both below the root).
    fn move_entry(&self, from: &str, to: &str) -> Result<(), FatError> {
        let root = self.fs.root_dir();
        Ok(root.rename(from, &root, to)?)
    }
}

impl<'a, IO: ReadWriteSeek> FileSystem for FatFs<'a, IO> {
    type Error = FatError;
    type File = FatFile<'a, IO>;
    type Dir = FatDir<'a, IO>;

    fn open_read(&mut self, path: &[u8]) -> Result<FatFile<'a, IO>, FatError> {
        match self.find(rel_path(path)?)? {
            Node::Entry(e) if e.is_file() => Ok(FatFile { file: e.to_file() }),
            _ => Err(FatError::new(ErrorKind::IsADirectory, "Is a directory")),
        }
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<FatFile<'a, IO>, FatError> {
        let rel = rel_path(path)?;
        if rel.is_empty() {
            return Err(FatError::new(ErrorKind::IsADirectory, "Is a directory"));
        }
        let (parent, name) = split(rel);
        check_name(name)?;
        // Opens an existing file (found as FAT finds names) or creates one;
        // an existing directory gives "Is a directory". One directory scan.
        let mut file = self.dir(parent)?.create_file(name)?;
        match mode {
            WriteMode::Truncate => file.truncate()?,
            WriteMode::Append => {
                file.seek(std::io::SeekFrom::End(0))?;
            }
            WriteMode::Update => {}
        }
        Ok(FatFile { file })
    }

    fn close(&mut self, mut file: FatFile<'a, IO>) -> Result<(), FatError> {
        Ok(file.file.flush()?)
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FatError> {
        Ok(match self.find(rel_path(path)?)? {
            Node::Root => Metadata {
                kind: EntryKind::Dir,
                size: 0,
                modified: None,
                mode: None,
            },
            Node::Entry(e) => convert_metadata(&e),
        })
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<FatDir<'a, IO>, FatError> {
        let dir = match self.find(rel_path(path)?)? {
            Node::Root => self.fs.root_dir(),
            Node::Entry(e) if e.is_dir() => e.to_dir(),
            Node::Entry(_) => {
                return Err(FatError::new(ErrorKind::NotADirectory, "Not a directory"))
            }
        };
        Ok(FatDir {
            entries: dir.iter(),
        })
    }

    fn read_dir(
        &mut self,
        dir: &mut FatDir<'a, IO>,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, FatError> {
        for entry in dir.entries.by_ref() {
            let entry = entry?;
            let file_name: String = entry.file_name();
            let bytes = file_name.as_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let Some(dest) = name.get_mut(..bytes.len()) else {
                continue;
            };
            dest.copy_from_slice(bytes);
            return Ok(Some(DirEntry {
                name_len: bytes.len(),
                metadata: convert_metadata(&entry),
            }));
        }
        Ok(None)
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), FatError> {
        let rel = rel_path(path)?;
        if self.lookup(rel)?.is_some() {
            return Err(FatError::new(ErrorKind::AlreadyExists, "File exists"));
        }
        let (parent, name) = split(rel);
        check_name(name)?;
        self.dir(parent)?.create_dir(name)?;
        Ok(())
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), FatError> {
        let rel = Self::not_root(rel_path(path)?)?;
        if !self.find(rel)?.is_dir() {
            return Err(FatError::new(ErrorKind::NotADirectory, "Not a directory"));
        }
        Ok(self.fs.root_dir().remove(rel)?)
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), FatError> {
        let rel = Self::not_root(rel_path(path)?)?;
        if self.find(rel)?.is_dir() {
            return Err(FatError::new(ErrorKind::IsADirectory, "Is a directory"));
        }
        Ok(self.fs.root_dir().remove(rel)?)
    }

    /// Not atomic: an existing target is removed first, then the source is
    /// renamed (FAT cannot replace in one step).
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FatError> {
        let from = Self::not_root(rel_path(from)?)?;
        let to = Self::not_root(rel_path(to)?)?;
        let src = self.find(from)?;
        if from == to {
            return Ok(());
        }
        let to_upper: String = to.chars().flat_map(char::to_uppercase).collect();
        let from_upper: String = from.chars().flat_map(char::to_uppercase).collect();
        if src.is_dir()
            && to_upper
                .strip_prefix(from_upper.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        {
            return Err(FatError::new(
                ErrorKind::Other,
                "a directory cannot move into itself",
            ));
        }
        if to_upper == from_upper {
            // Only the case changes: the target is the source itself, and
            // `fatfs` would keep the old spelling. Go through a free name.
            let (parent, name) = split(to);
            check_name(name)?;
            let mut temp = String::from(parent);
            if !temp.is_empty() {
                temp.push('/');
            }
            temp.push_str("~ferry-rename.tmp");
            while self.lookup(&temp)?.is_some() {
                temp.push('~');
            }
            self.move_entry(from, &temp)?;
            return self.move_entry(&temp, to);
        }
        match self.lookup(to)? {
            Some(dst) => match (src.is_dir(), dst.is_dir()) {
                (false, true) => {
                    return Err(FatError::new(ErrorKind::IsADirectory, "Is a directory"))
                }
                (true, false) => {
                    return Err(FatError::new(ErrorKind::NotADirectory, "Not a directory"))
                }
                // An empty directory or a file is replaced; `remove` refuses
                // a directory that is not empty.
                _ => self.fs.root_dir().remove(to)?,
            },
            None => check_name(split(to).1)?,
        }
        self.move_entry(from, to)
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), FatError> {
        let entry = match self.find(rel_path(path)?)? {
            Node::Entry(e) if e.is_file() => e,
            _ => {
                return Err(FatError::new(
                    ErrorKind::Unsupported,
                    "fatfs cannot set a directory's time",
                ))
            }
        };
        let dt = time::from_unix(unix_secs)
            .ok_or_else(|| FatError::new(ErrorKind::Other, "time outside FAT's 1980..=2107"))?;
        let mut file = entry.to_file();
        // Deprecated in fatfs 0.3 in favour of a TimeProvider, which cannot
        // set a given time on one file.
        #[allow(deprecated)]
        file.set_modified(dt);
        Ok(file.flush()?)
    }

    fn set_mode(&mut self, path: &[u8], _mode: u16) -> Result<(), FatError> {
        self.find(rel_path(path)?)?;
        Err(FatError::new(
            ErrorKind::Unsupported,
            "FAT has no permission bits",
        ))
    }
}

impl<IO: ReadWriteSeek> embedded_io::ErrorType for FatFile<'_, IO> {
    type Error = FatError;
}

impl<IO: ReadWriteSeek> embedded_io::Read for FatFile<'_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FatError> {
        Ok(self.file.read(buf)?)
    }
}

impl<IO: ReadWriteSeek> embedded_io::Write for FatFile<'_, IO> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, FatError> {
        match self.file.write(buf)? {
            // `fatfs` writes nothing at FAT's 4 GiB file limit; `Ok(0)` would
            // make `write_all` panic.
            0 if !buf.is_empty() => {
                Err(FatError::new(ErrorKind::NoSpace, "FAT files end at 4 GiB"))
            }
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> Result<(), FatError> {
        Ok(self.file.flush()?)
    }
}

impl<IO: ReadWriteSeek> embedded_io::Seek for FatFile<'_, IO> {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, FatError> {
        Ok(self.file.seek(pos.into())?)
    }
}

impl<IO: ReadWriteSeek> core::fmt::Debug for FatFs<'_, IO> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FatFs")
            .field("fat_type", &self.fs.fat_type())
            .finish()
    }
}

impl<IO: ReadWriteSeek> core::fmt::Debug for FatFile<'_, IO> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FatFile").finish_non_exhaustive()
    }
}

impl<IO: ReadWriteSeek> core::fmt::Debug for FatDir<'_, IO> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FatDir").finish_non_exhaustive()
    }
}

//! FAT16/32 without std as a Ferry [`FileSystem`] (`sdmmc` feature), on the
//! `embedded-sdmmc` crate (0.10): no_std, no alloc, 8.3 names.
//!
//! The caller owns an `embedded_sdmmc::VolumeManager` over a block device —
//! an SD card over SPI (`embedded_sdmmc::SdCard`), or any Ferry
//! [`BlockDevice`](crate::block::BlockDevice) through [`SdBlocks`] (a RAM
//! disk, an image file) — and [`SdFat`] borrows it and opens the first MBR
//! partition. [`format`] writes an MBR and an empty FAT16 volume.
//!
//! ```
//! use ferry_fs::block::RamDisk;
//! use ferry_fs::sdmmc::{self, SdBlocks, SdFat, UnixClock, VolumeManager};
//! use ferry_fs::{embedded_io::Write as _, FileSystem as _, WriteMode};
//!
//! let blocks = SdBlocks::new(RamDisk::new(vec![0u8; 4 << 20], 512).unwrap());
//! sdmmc::format(&blocks).unwrap();
//! let manager: VolumeManager<_, _> = VolumeManager::new(blocks, UnixClock(|| 1_700_000_000));
//! let mut fs = SdFat::open(&manager).unwrap();
//! let mut f = fs.open_write(b"/hello.txt", WriteMode::Truncate).unwrap();
//! f.write_all(b"hi").unwrap();
//! fs.close(f).unwrap();
//! assert_eq!(fs.metadata(b"/HELLO.TXT").unwrap().size, 2);
//! ```
//!
//! What `embedded-sdmmc` 0.10 lacks, and what this adapter does about it:
//! - **Long file names**: it creates 8.3 names only (it can read long names
//!   but not make them). Names are 8.3 here, see the `name` module: a base
//!   over 8 or an extension over 3 characters is
//!   [`ErrorKind::NameTooLong`]; spaces, a second dot, a leading or
//!   trailing dot, `+,;=[]` and non-ASCII are [`ErrorKind::InvalidName`].
//!   All-lower-case parts round-trip through the NT case flags; mixed case
//!   is stored upper case. Lookups ignore case. Entries written by other
//!   tools with long names are listed and reached by their 8.3 alias
//!   (`LONGFI~1.TXT`); removing or renaming one leaves its long-name slots
//!   orphaned (invisible; `fsck.fat` removes them). An alias holding
//!   code-page bytes (from a non-ASCII long name) cannot be looked up, and
//!   is not listed.
//! - **Rename**: none. This adapter edits the directory entries itself
//!   (see [`SdFat::rename`]): no data is copied.
//! - **Delete frees nothing**: its delete only marks the entry, so this
//!   adapter frees the cluster chain itself afterwards.
//! - **Times**: it stamps creation and writes from its `TimeSource`
//!   ([`UnixClock`] here: Unix seconds from a function, stored as UTC);
//!   [`FileSystem::set_modified`] writes the entry's time (files and
//!   directories; even seconds, 1980..=2107).
//! - **Open files**: a file can be open once at a time (a second open, even
//!   for reading, fails with [`ErrorKind::Other`]); at most `FILES` files and
//!   `DIRS` directories (a listing holds one; a path walk holds two) are open.
//! - No permission bits ([`ErrorKind::Unsupported`]); files up to 4 GiB − 1;
//!   seeking past the end is refused.
//! - **Power loss**: see docs/STORAGE.md. FAT updates in place; this adapter
//!   orders its own writes so that a replacing rename leaves exactly the old
//!   or exactly the new file, at worst with lost clusters.

mod blocks;
mod format;
mod name;
mod raw;

pub use blocks::SdBlocks;
pub use embedded_sdmmc;
pub use embedded_sdmmc::VolumeManager;
pub use format::format;

use core::ops::ControlFlow;

use embedded_sdmmc::{
    BlockDevice, DirEntry as SdEntry, Mode, RawFile, RawVolume, ShortFileName, TimeSource,
    Timestamp, VolumeIdx,
};

use crate::civil::{civil_from_days, days_from_civil, SECS_PER_DAY};
use crate::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};
use name::{display_name, short_name, Short};
use raw::{Geometry, Slot, DELETED, ENTRY_LEN};

type Manager<D, T, const DIRS: usize, const FILES: usize> = VolumeManager<D, T, DIRS, FILES, 1>;
type Directory<'a, D, T, const DIRS: usize, const FILES: usize> =
    embedded_sdmmc::Directory<'a, D, T, DIRS, FILES, 1>;

/// An error of [`SdFat`]: its [`ErrorKind`] and what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdError {
    kind: ErrorKind,
    what: &'static str,
}

impl SdError {
    fn new(kind: ErrorKind, what: &'static str) -> SdError {
        SdError { kind, what }
    }

    /// What happened, in words.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl<E: core::error::Error> From<embedded_sdmmc::Error<E>> for SdError {
    fn from(e: embedded_sdmmc::Error<E>) -> SdError {
        use embedded_sdmmc::{Error as E, FilenameError as N};
        let (kind, what) = match e {
            E::NotFound => (ErrorKind::NotFound, "not found"),
            E::FilenameError(N::NameTooLong) => (ErrorKind::NameTooLong, "longer than 8.3"),
            E::FilenameError(_) => (ErrorKind::InvalidName, "not an 8.3 name"),
            E::OpenedDirAsFile => (ErrorKind::IsADirectory, "is a directory"),
            E::OpenedFileAsDir => (ErrorKind::NotADirectory, "not a directory"),
            E::DeleteNonEmptyDir => (ErrorKind::DirectoryNotEmpty, "directory not empty"),
            E::DiskFull | E::NotEnoughSpace => (ErrorKind::NoSpace, "volume full"),
            E::ReadOnly => (ErrorKind::PermissionDenied, "read-only entry"),
            E::FileAlreadyExists | E::DirAlreadyExists => (ErrorKind::AlreadyExists, "exists"),
            E::Unsupported => (ErrorKind::Unsupported, "unsupported by embedded-sdmmc"),
            E::FileAlreadyOpen | E::DirAlreadyOpen => (ErrorKind::Other, "open elsewhere"),
            E::TooManyOpenFiles | E::TooManyOpenDirs | E::TooManyOpenVolumes => {
                (ErrorKind::Other, "too many open files or directories")
            }
            E::InvalidOffset | E::EndOfFile => (ErrorKind::Other, "offset outside the file"),
            E::DeviceError(_) => (ErrorKind::Io, "block device error"),
            E::FormatError(what) => (ErrorKind::Io, what),
            _ => (ErrorKind::Io, "damaged volume"),
        };
        SdError { kind, what }
    }
}

impl core::fmt::Display for SdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FAT (embedded-sdmmc): {}", self.what)
    }
}

impl core::error::Error for SdError {}

impl crate::Error for SdError {
    fn fs_kind(&self) -> ErrorKind {
        self.kind
    }
}

impl embedded_io::Error for SdError {
    fn kind(&self) -> embedded_io::ErrorKind {
        crate::io_kind::io_kind(self.kind)
    }
}

/// A clock for `embedded-sdmmc`: a function returning Unix seconds (UTC),
/// e.g. from an RTC or SNTP; a time before 1980 (a board without a clock
/// returning 0) stamps 1980-01-01.
#[derive(Debug, Clone, Copy)]
pub struct UnixClock(pub fn() -> u64);

impl TimeSource for UnixClock {
    fn get_timestamp(&self) -> Timestamp {
        from_unix((self.0)()).unwrap_or(Timestamp {
            year_since_1970: 10,
            zero_indexed_month: 0,
            zero_indexed_day: 0,
            hours: 0,
            minutes: 0,
            seconds: 0,
        })
    }
}

/// The FAT time of Unix seconds, `None` outside 1980..=2107.
fn from_unix(secs: u64) -> Option<Timestamp> {
    let (y, month, day) = civil_from_days(secs / SECS_PER_DAY);
    if !(1980..=2107).contains(&y) {
        return None;
    }
    let rem = secs % SECS_PER_DAY;
    // All in range: year - 1970 <= 137, month 1..=12, day 1..=31.
    Some(Timestamp {
        year_since_1970: (y - 1970) as u8,
        zero_indexed_month: (month - 1) as u8,
        zero_indexed_day: (day - 1) as u8,
        hours: (rem / 3600) as u8,
        minutes: (rem % 3600 / 60) as u8,
        seconds: (rem % 60) as u8,
    })
}

fn to_unix(t: &Timestamp) -> Option<u64> {
    let days = days_from_civil(
        1970 + u16::from(t.year_since_1970),
        u16::from(t.zero_indexed_month) + 1,
        u16::from(t.zero_indexed_day) + 1,
    )?;
    Some(
        days * SECS_PER_DAY
            + u64::from(t.hours) * 3600
            + u64::from(t.minutes) * 60
            + u64::from(t.seconds),
    )
}

fn slot(e: &SdEntry) -> Slot {
    (e.entry_block, e.entry_offset)
}

fn metadata_of(e: &SdEntry) -> Metadata {
    let dir = e.attributes.is_directory();
    Metadata {
        kind: if dir { EntryKind::Dir } else { EntryKind::File },
        size: if dir { 0 } else { u64::from(e.size) },
        modified: to_unix(&e.mtime),
        mode: None,
    }
}

/// `(parent, name)` of a path below the root; `None` for the root.
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = path.iter().rposition(|&b| b == b'/')?;
    let name = path.get(at + 1..).filter(|n| !n.is_empty())?;
    Some((path.get(..at).unwrap_or_default(), name))
}

fn err(kind: ErrorKind, what: &'static str) -> SdError {
    SdError::new(kind, what)
}

/// The first MBR partition of a `VolumeManager`, as a Ferry [`FileSystem`].
///
/// `DIRS` and `FILES` are the manager's limits of open directories and
/// files: give it `FILES` ≥ sessions and `DIRS` ≥ sessions + 2. See the
/// [module docs](self) for what it can and cannot do.
pub struct SdFat<'a, D, T, const DIRS: usize = 4, const FILES: usize = 4>
where
    D: BlockDevice,
    T: TimeSource,
{
    vm: &'a Manager<D, T, DIRS, FILES>,
    volume: RawVolume,
    geometry: Geometry,
}

/// A file of an [`SdFat`]; dropping it closes it (errors are lost: use
/// [`FileSystem::close`]).
pub struct SdFile<'a, D, T, const DIRS: usize = 4, const FILES: usize = 4>
where
    D: BlockDevice,
    T: TimeSource,
{
    vm: &'a Manager<D, T, DIRS, FILES>,
    raw: Option<RawFile>,
    /// A new file's entry and its case flags, set again after the close
    /// rewrites the entry.
    case: Option<(Slot, u8)>,
}

/// A directory of an [`SdFat`] being listed (holds one open directory).
pub struct SdDir<'a, D, T, const DIRS: usize = 4, const FILES: usize = 4>
where
    D: BlockDevice,
    T: TimeSource,
{
    dir: Directory<'a, D, T, DIRS, FILES>,
    next: usize,
}

impl<'a, D, T, const DIRS: usize, const FILES: usize> SdFat<'a, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    /// Opens the first MBR partition of `vm` (FAT16 or FAT32); it is
    /// closed when the `SdFat` is dropped.
    ///
    /// Works around an `embedded-sdmmc` 0.10 bug on the way: free FAT cells
    /// past the volume's last cluster (in the FAT block holding it) are
    /// marked bad, or it would allocate them (see docs/STORAGE.md).
    pub fn open(vm: &'a Manager<D, T, DIRS, FILES>) -> Result<Self, SdError> {
        let volume = vm.open_raw_volume(VolumeIdx(0))?;
        let geometry = match Geometry::read(vm).and_then(|g| g.fence_fat_tail(vm).map(|()| g)) {
            Ok(g) => g,
            Err(e) => {
                let _ = vm.close_volume(volume);
                return Err(e);
            }
        };
        Ok(SdFat {
            vm,
            volume,
            geometry,
        })
    }

    fn root(&self) -> Result<Directory<'a, D, T, DIRS, FILES>, SdError> {
        Ok(self.vm.open_root_dir(self.volume)?.to_directory(self.vm))
    }

    /// The directory at `path` (`""` or `/`: the root).
    fn dir(&self, path: &[u8]) -> Result<Directory<'a, D, T, DIRS, FILES>, SdError> {
        let mut dir = self.root()?;
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            let short = short_name(part).map_err(|_| err(ErrorKind::NotFound, "not found"))?;
            dir = dir.open_dir(short.as_str())?;
        }
        Ok(dir)
    }

    /// The entry `short` in `dir`, if there is one.
    fn find(
        &self,
        dir: &Directory<'a, D, T, DIRS, FILES>,
        short: &Short,
    ) -> Result<Option<SdEntry>, SdError> {
        match dir.find_directory_entry(short.as_str()) {
            Ok(e) => Ok(Some(e)),
            Err(embedded_sdmmc::Error::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Parent directory, 8.3 name and entry of a path below the root.
    #[allow(clippy::type_complexity)]
    fn lookup(
        &self,
        path: &[u8],
    ) -> Result<(Directory<'a, D, T, DIRS, FILES>, Short, Option<SdEntry>), SdError> {
        let (parent, name) = split(path).ok_or(err(ErrorKind::PermissionDenied, "the root"))?;
        let short = short_name(name)?;
        let dir = self.dir(parent)?;
        let entry = self.find(&dir, &short)?;
        Ok((dir, short, entry))
    }

    /// The entry of an existing path below the root.
    fn existing(&self, path: &[u8]) -> Result<(Short, SdEntry), SdError> {
        let name = split(path).map(|(_, n)| n).unwrap_or_default();
        let short = short_name(name).map_err(|_| err(ErrorKind::NotFound, "not found"))?;
        match self.lookup(path)? {
            (_, _, Some(e)) => Ok((short, e)),
            _ => Err(err(ErrorKind::NotFound, "not found")),
        }
    }

    /// Fails if the file is open (its close would rewrite its entry where a
    /// rename just moved it from).
    fn not_open(
        &self,
        dir: &Directory<'a, D, T, DIRS, FILES>,
        short: &Short,
    ) -> Result<(), SdError> {
        let f = dir.open_file_in_dir(short.as_str(), Mode::ReadOnly)?;
        Ok(f.close()?)
    }

    /// Removes the entry `short` of `dir` and frees its clusters (`entry`
    /// is its bytes, read before).
    fn delete(
        &self,
        dir: &Directory<'a, D, T, DIRS, FILES>,
        short: &Short,
        entry: &[u8; ENTRY_LEN],
    ) -> Result<(), SdError> {
        dir.delete_entry_in_dir(short.as_str())?;
        // The entry is gone first: a cut now only loses the clusters.
        self.geometry.free_chain(self.vm, raw::entry_cluster(entry))
    }

    /// The first cluster of directory `path` (0: the root, as `..` names it).
    fn dir_cluster(&self, path: &[u8]) -> Result<u32, SdError> {
        if split(path).is_none() {
            return Ok(0);
        }
        let (_, e) = self.existing(path)?;
        Ok(raw::entry_cluster(&raw::read_entry(self.vm, slot(&e))?))
    }

    /// Moves the entry `src` to the free name `to_short` in `to_dir`.
    fn move_entry(
        &self,
        src: &SdEntry,
        to_parent: &[u8],
        to_dir: &Directory<'a, D, T, DIRS, FILES>,
        to_short: &Short,
        new_parent: bool,
    ) -> Result<(), SdError> {
        // A new empty entry holds the name; then it takes over the source's
        // fields and the source is deleted, in one block write when both
        // are in one block. Otherwise the new entry is written first: a cut
        // in between leaves both names on the same clusters (fsck.fat
        // separates them), never neither.
        to_dir
            .open_file_in_dir(to_short.as_str(), Mode::ReadWriteCreate)?
            .close()?;
        let new = self
            .find(to_dir, to_short)?
            .ok_or(err(ErrorKind::Io, "new entry vanished"))?;
        let mut moved = raw::read_entry(self.vm, slot(src))?;
        let named = raw::read_entry(self.vm, slot(&new))?;
        let mut gone = moved;
        gone[0] = DELETED;
        moved[..11].copy_from_slice(&named[..11]);
        moved[12] = to_short.flags;
        raw::write_entries(self.vm, &[(slot(&new), moved), (slot(src), gone)])?;
        if new_parent && src.attributes.is_directory() {
            let parent = self.dir_cluster(to_parent)?;
            let moved_dir = to_dir.open_dir(to_short.as_str())?;
            let dotdot = moved_dir.find_directory_entry("..")?;
            let mut e = raw::read_entry(self.vm, slot(&dotdot))?;
            raw::set_entry_cluster(&mut e, parent);
            raw::write_entries(self.vm, &[(slot(&dotdot), e)])?;
        }
        Ok(())
    }

    /// Replaces file `dst` by file `src`; `src` (its name `src_short` in
    /// `src_dir`) is gone afterwards.
    fn replace(
        &self,
        src_dir: &Directory<'a, D, T, DIRS, FILES>,
        src_short: &Short,
        src: &SdEntry,
        dst: &SdEntry,
    ) -> Result<(), SdError> {
        // The two entries swap contents (attributes, times, clusters, size)
        // and keep their names, then the source, now holding the old data,
        // is deleted. In one block that is one write: the target is exactly
        // the old or exactly the new file after a cut. Across blocks the
        // source is hidden first, the target takes the new data, the source
        // comes back with the old data: at every cut the target is old or
        // new, and no clusters are shared by two entries.
        let s = raw::read_entry(self.vm, slot(src))?;
        let t = raw::read_entry(self.vm, slot(dst))?;
        let swap = |keep: &[u8; ENTRY_LEN], from: &[u8; ENTRY_LEN]| {
            let mut e = *keep;
            e[11] = from[11];
            e[13..].copy_from_slice(&from[13..]);
            e
        };
        let (new_t, old_s) = (swap(&t, &s), swap(&s, &t));
        if src.entry_block == dst.entry_block {
            raw::write_entries(self.vm, &[(slot(dst), new_t), (slot(src), old_s)])?;
        } else {
            let mut hidden = s;
            hidden[0] = DELETED;
            raw::write_entries(self.vm, &[(slot(src), hidden)])?;
            raw::write_entries(self.vm, &[(slot(dst), new_t)])?;
            raw::write_entries(self.vm, &[(slot(src), old_s)])?;
        }
        self.delete(src_dir, src_short, &old_s)
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> Drop for SdFat<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn drop(&mut self) {
        let _ = self.vm.close_volume(self.volume);
    }
}

fn is_dot(e: &SdEntry) -> bool {
    e.name == ShortFileName::this_dir() || e.name == ShortFileName::parent_dir()
}

impl<'a, D, T, const DIRS: usize, const FILES: usize> FileSystem for SdFat<'a, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    type Error = SdError;
    type File = SdFile<'a, D, T, DIRS, FILES>;
    type Dir = SdDir<'a, D, T, DIRS, FILES>;

    fn open_read(&mut self, path: &[u8]) -> Result<Self::File, SdError> {
        if split(path).is_none() {
            return Err(err(ErrorKind::IsADirectory, "the root"));
        }
        let (dir, short, entry) = self.lookup(path).map_err(|e| {
            if e.kind == ErrorKind::InvalidName {
                err(ErrorKind::NotFound, "not found")
            } else {
                e
            }
        })?;
        match entry {
            None => Err(err(ErrorKind::NotFound, "not found")),
            Some(e) if e.attributes.is_directory() => {
                Err(err(ErrorKind::IsADirectory, "is a directory"))
            }
            Some(_) => {
                let f = dir.open_file_in_dir(short.as_str(), Mode::ReadOnly)?;
                Ok(SdFile {
                    vm: self.vm,
                    raw: Some(f.to_raw_file()),
                    case: None,
                })
            }
        }
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<Self::File, SdError> {
        if split(path).is_none() {
            return Err(err(ErrorKind::IsADirectory, "the root"));
        }
        let (dir, short, entry) = self.lookup(path)?;
        if entry.as_ref().is_some_and(|e| e.attributes.is_directory()) {
            return Err(err(ErrorKind::IsADirectory, "is a directory"));
        }
        let sd_mode = match mode {
            WriteMode::Truncate => Mode::ReadWriteCreateOrTruncate,
            WriteMode::Append | WriteMode::Update => Mode::ReadWriteCreateOrAppend,
        };
        let raw = dir.open_file_in_dir(short.as_str(), sd_mode)?.to_raw_file();
        let mut file = SdFile {
            vm: self.vm,
            raw: Some(raw),
            case: None,
        };
        if mode == WriteMode::Update {
            self.vm.file_seek_from_start(raw, 0)?;
        }
        if entry.is_none() && short.flags != 0 {
            if let Some(e) = self.find(&dir, &short)? {
                raw::patch_entry(self.vm, slot(&e), 12, &[short.flags])?;
                file.case = Some((slot(&e), short.flags));
            }
        }
        Ok(file)
    }

    fn close(&mut self, mut file: Self::File) -> Result<(), SdError> {
        file.close()
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, SdError> {
        if split(path).is_none() {
            return Ok(Metadata {
                kind: EntryKind::Dir,
                size: 0,
                modified: None,
                mode: None,
            });
        }
        Ok(metadata_of(&self.existing(path)?.1))
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<Self::Dir, SdError> {
        if split(path).is_some() && !self.existing(path)?.1.attributes.is_directory() {
            return Err(err(ErrorKind::NotADirectory, "not a directory"));
        }
        Ok(SdDir {
            dir: self.dir(path)?,
            next: 0,
        })
    }

    fn read_dir(
        &mut self,
        dir: &mut Self::Dir,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, SdError> {
        loop {
            // embedded-sdmmc lists through a callback from the start: walk
            // to the next entry not yet returned (n entries cost n²/2 reads).
            let mut seen = 0;
            let mut found = None;
            dir.dir.iterate_dir(|e| {
                if seen == dir.next {
                    found = Some(e.clone());
                    return ControlFlow::Break(());
                }
                seen += 1;
                ControlFlow::Continue(())
            })?;
            let Some(e) = found else {
                return Ok(None);
            };
            dir.next += 1;
            // Code-page bytes (another tool's alias of a non-ASCII long
            // name) cannot be looked up again: such entries are not listed.
            let ascii = e.name.base_name().is_ascii() && e.name.extension().is_ascii();
            if is_dot(&e) || e.attributes.is_volume() || !ascii {
                continue;
            }
            let flags = raw::read_entry(self.vm, slot(&e))?[12];
            let Some(len) = display_name(e.name.base_name(), e.name.extension(), flags, name)
            else {
                continue;
            };
            return Ok(Some(DirEntry {
                name_len: len,
                metadata: metadata_of(&e),
            }));
        }
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), SdError> {
        let (dir, short, entry) = self.lookup(path)?;
        if entry.is_some() {
            return Err(err(ErrorKind::AlreadyExists, "exists"));
        }
        dir.make_dir_in_dir(short.as_str())?;
        if short.flags != 0 {
            if let Some(e) = self.find(&dir, &short)? {
                raw::patch_entry(self.vm, slot(&e), 12, &[short.flags])?;
            }
        }
        Ok(())
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), SdError> {
        let (dir, short, entry) = self.lookup(path)?;
        let e = entry.ok_or(err(ErrorKind::NotFound, "not found"))?;
        if !e.attributes.is_directory() {
            return Err(err(ErrorKind::NotADirectory, "not a directory"));
        }
        let bytes = raw::read_entry(self.vm, slot(&e))?;
        self.delete(&dir, &short, &bytes)
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), SdError> {
        let (dir, short, entry) = self.lookup(path)?;
        let e = entry.ok_or(err(ErrorKind::NotFound, "not found"))?;
        if e.attributes.is_directory() {
            return Err(err(ErrorKind::IsADirectory, "is a directory"));
        }
        let bytes = raw::read_entry(self.vm, slot(&e))?;
        self.delete(&dir, &short, &bytes)
    }

    /// Edits directory entries (no data is copied). Over an existing file
    /// the target is exactly the old or exactly the new file after a power
    /// cut at any write (see `replace`); an existing empty directory is
    /// replaced by removing it first. A moved directory's `..` is updated.
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), SdError> {
        let (from_dir, from_short, src) = self.lookup(from)?;
        let src = src.ok_or(err(ErrorKind::NotFound, "not found"))?;
        let (to_parent, _) = split(to).ok_or(err(ErrorKind::PermissionDenied, "the root"))?;
        let (from_parent, _) = split(from).unwrap_or_default();
        let is_dir = src.attributes.is_directory();
        if from == to {
            return Ok(());
        }
        if is_dir
            && to.len() > from.len()
            && to.get(from.len()) == Some(&b'/')
            && to
                .get(..from.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(from))
        {
            return Err(err(ErrorKind::Other, "a directory cannot move into itself"));
        }
        let (to_dir, to_short, dst) = self.lookup(to)?;
        if !is_dir {
            self.not_open(&from_dir, &from_short)?;
        }
        match dst {
            Some(d) if slot(&d) == slot(&src) => {
                // The same entry: only the spelling changes.
                raw::patch_entry(self.vm, slot(&d), 12, &[to_short.flags])
            }
            Some(d) => match (is_dir, d.attributes.is_directory()) {
                (false, true) => Err(err(ErrorKind::IsADirectory, "is a directory")),
                (true, false) => Err(err(ErrorKind::NotADirectory, "not a directory")),
                (false, false) => {
                    self.not_open(&to_dir, &to_short)?;
                    self.replace(&from_dir, &from_short, &src, &d)
                }
                (true, true) => {
                    let bytes = raw::read_entry(self.vm, slot(&d))?;
                    self.delete(&to_dir, &to_short, &bytes)?;
                    let new_parent = !from_parent.eq_ignore_ascii_case(to_parent);
                    self.move_entry(&src, to_parent, &to_dir, &to_short, new_parent)
                }
            },
            None => {
                let new_parent = !from_parent.eq_ignore_ascii_case(to_parent);
                self.move_entry(&src, to_parent, &to_dir, &to_short, new_parent)
            }
        }
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), SdError> {
        if split(path).is_none() {
            return Err(err(ErrorKind::Unsupported, "the root has no time on FAT"));
        }
        let (_, e) = self.existing(path)?;
        let t = from_unix(unix_secs).ok_or(err(ErrorKind::Other, "time outside 1980..=2107"))?;
        // Bytes 22..26: modification time and date.
        raw::patch_entry(self.vm, slot(&e), 22, &t.serialize_to_fat())
    }

    fn set_mode(&mut self, path: &[u8], _mode: u16) -> Result<(), SdError> {
        self.metadata(path)?;
        Err(err(ErrorKind::Unsupported, "FAT has no permission bits"))
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn raw(&self) -> Result<RawFile, SdError> {
        self.raw.ok_or(err(ErrorKind::Other, "file closed"))
    }

    fn close(&mut self) -> Result<(), SdError> {
        let Some(raw) = self.raw.take() else {
            return Ok(());
        };
        self.vm.close_file(raw)?;
        // Closing rewrote the entry with byte 12 cleared.
        if let Some((slot, flags)) = self.case.take() {
            raw::patch_entry(self.vm, slot, 12, &[flags])?;
        }
        Ok(())
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> Drop for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> embedded_io::ErrorType
    for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    type Error = SdError;
}

impl<D, T, const DIRS: usize, const FILES: usize> embedded_io::Read
    for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SdError> {
        Ok(self.vm.read(self.raw()?, buf)?)
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> embedded_io::Write
    for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn write(&mut self, buf: &[u8]) -> Result<usize, SdError> {
        if !buf.is_empty() {
            self.vm.write(self.raw()?, buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), SdError> {
        Ok(self.vm.flush_file(self.raw()?)?)
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> embedded_io::Seek
    for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, SdError> {
        let raw = self.raw()?;
        let outside = err(ErrorKind::Other, "offset outside the file");
        match pos {
            embedded_io::SeekFrom::Start(n) => {
                let n = u32::try_from(n).map_err(|_| outside)?;
                self.vm.file_seek_from_start(raw, n)?;
            }
            embedded_io::SeekFrom::End(d) => {
                let back = u32::try_from(d.checked_neg().ok_or(outside)?).map_err(|_| outside)?;
                self.vm.file_seek_from_end(raw, back)?;
            }
            embedded_io::SeekFrom::Current(d) => {
                let d = i32::try_from(d).map_err(|_| outside)?;
                self.vm.file_seek_from_current(raw, d)?;
            }
        }
        Ok(u64::from(self.vm.file_offset(raw)?))
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> core::fmt::Debug for SdFat<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SdFat")
            .field("geometry", &self.geometry)
            .finish()
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> core::fmt::Debug for SdFile<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SdFile").field("raw", &self.raw).finish()
    }
}

impl<D, T, const DIRS: usize, const FILES: usize> core::fmt::Debug for SdDir<'_, D, T, DIRS, FILES>
where
    D: BlockDevice,
    T: TimeSource,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SdDir").field("next", &self.next).finish()
    }
}

//! Image files for tools (`std` with `littlefs2`, `fatfs` and/or `sdmmc`):
//! open a littlefs or FAT image, creating and formatting it if it is missing.
//!
//! Meant for options like `ferryd --fs littlefs:IMAGE --fs-size 8M`:
//! [`parse_size`] reads the size, then
//! - `with_littlefs` (`littlefs2` feature) mounts a littlefs image and lends
//!   it, as a [`FileSystem`], to a [`WithFileSystem`] (littlefs2 fixes a
//!   volume's geometry at compile time, so the image size picks one of
//!   `LITTLEFS_SIZES` inside, and the caller's code must be generic over the
//!   file system type);
//! - `open_fat` (`fatfs` feature) mounts a FAT image as a `FatImage`, and
//!   `with_fat` does it in the same shape as `with_littlefs`;
//! - `with_sdfat` (`sdmmc` feature) mounts a FAT image through
//!   `embedded-sdmmc` (the no_std path boards use with SD cards): the image
//!   is an MBR-partitioned disk, and a new one gets a FAT16 partition
//!   (4 MiB to 2 GiB).
//!
//! Rules for both: a missing image is created with the given size (sparse)
//! and formatted; an image whose start is blank (all `0x00` or all `0xFF`,
//! e.g. from `truncate -s 8M`) is formatted; any other image is mounted as
//! is, and a size given for it must match its length. An image that holds
//! something else fails with `InvalidData` and is left alone.

use std::io::{Error, ErrorKind as IoKind, Result};
use std::path::Path;
use std::string::String;
use std::vec;

use crate::block::{BlockDevice, FileDisk};
use crate::FileSystem;

/// Code that runs against whichever [`FileSystem`] an image holds.
///
/// ```
/// use ferry_fs::image::WithFileSystem;
/// use ferry_fs::FileSystem;
///
/// struct Exists(&'static [u8]);
/// impl WithFileSystem for Exists {
///     type Output = bool;
///     fn run<F: FileSystem>(self, fs: &mut F) -> bool {
///         fs.metadata(self.0).is_ok()
///     }
/// }
/// ```
pub trait WithFileSystem {
    /// What [`WithFileSystem::run`] returns.
    type Output;
    /// Runs with the mounted volume.
    fn run<F: FileSystem>(self, fs: &mut F) -> Self::Output;
}

/// Parses a size such as `8M`, `512K`, `1G` or `65536` (binary units;
/// `K`/`KiB`/`KB` all mean 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn invalid_input(msg: String) -> Error {
    Error::new(IoKind::InvalidInput, msg)
}

/// Opens the image at `path`, or creates it with `size` bytes. Returns the
/// device and whether it is new.
fn open_or_create(path: &Path, size: Option<u64>, block_size: usize) -> Result<(FileDisk, bool)> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if let Some(size) = size.filter(|&s| s != meta.len()) {
                return Err(invalid_input(std::format!(
                    "{} holds {} bytes, not the {size} asked for",
                    path.display(),
                    meta.len()
                )));
            }
            Ok((FileDisk::open(path, block_size)?, false))
        }
        Err(e) if e.kind() == IoKind::NotFound => {
            let size = size.ok_or_else(|| {
                Error::new(
                    IoKind::NotFound,
                    std::format!(
                        "{} does not exist; give a size to create it",
                        path.display()
                    ),
                )
            })?;
            Ok((FileDisk::create(path, size, block_size)?, true))
        }
        Err(e) => Err(e),
    }
}

/// Whether the first `len` bytes of `disk` are all `0x00` or all `0xFF`.
fn is_blank(disk: &mut FileDisk, len: usize) -> Result<bool> {
    let mut buf = vec![0u8; len];
    disk.read(0, &mut buf)
        .map_err(|e| disk.take_last_error().unwrap_or_else(|| Error::other(e)))?;
    Ok(buf.iter().all(|&b| b == 0) || buf.iter().all(|&b| b == 0xFF))
}

#[cfg(feature = "littlefs2")]
pub use self::lfs::*;

#[cfg(feature = "littlefs2")]
mod lfs {
    use super::*;
    use crate::littlefs::littlefs2::fs::{Allocation, Filesystem};
    use crate::littlefs::{self, FileSlots, LfsError, LfsStorage, LittleFs};

    /// Block size of littlefs images, in bytes (a common flash erase size).
    pub const LITTLEFS_BLOCK_SIZE: usize = 4096;

    /// Files a littlefs image keeps open at once: one per session of
    /// `ferryd`'s largest session limit (about 400 bytes a slot on a 64-bit host).
    pub const LITTLEFS_OPEN_FILES: usize = 64;

    /// Sizes a littlefs image may have: 64 KiB to 1 GiB, powers of two.
    pub const LITTLEFS_SIZES: [u64; 15] = {
        let mut sizes = [0u64; 15];
        let mut i = 0;
        while i < sizes.len() {
            sizes[i] = (64 * 1024) << i;
            i += 1;
        }
        sizes
    };

    /// The storage of a littlefs image of `BLOCKS` blocks.
    pub type LittleFsImageStorage<const BLOCKS: usize> =
        LfsStorage<FileDisk, LITTLEFS_BLOCK_SIZE, BLOCKS>;

    /// The host's clock for modification times, in seconds since 1970 UTC.
    fn now_unix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn lfs_io(e: LfsError) -> Error {
        Error::other(e)
    }

    fn run<const BLOCKS: usize, V: WithFileSystem>(
        mut disk: FileDisk,
        created: bool,
        v: V,
    ) -> Result<V::Output> {
        let format = created || is_blank(&mut disk, 2 * LITTLEFS_BLOCK_SIZE)?;
        let mut storage = LittleFsImageStorage::<BLOCKS>::new(disk)
            .map_err(|e| invalid_input(std::format!("littlefs geometry: {e}")))?;
        if format {
            littlefs::format(&mut storage).map_err(lfs_io)?;
        }
        // On the heap: 64 slots are ~25 KB.
        let slots = std::boxed::Box::new(FileSlots::<_, LITTLEFS_OPEN_FILES>::new());
        let mut alloc = Allocation::new();
        let mounted = Filesystem::mount(&mut alloc, &mut storage).map_err(LfsError::from);
        let volume = match mounted {
            Ok(volume) => volume,
            Err(e) => {
                return Err(match storage.device_mut().take_last_error() {
                    Some(io) => io,
                    None => Error::new(
                        IoKind::InvalidData,
                        std::format!("not a littlefs image with 4 KiB blocks, or damaged: {e}"),
                    ),
                });
            }
        };
        let mut fs = LittleFs::new(&volume, &slots).with_clock(now_unix);
        Ok(v.run(&mut fs))
    }

    /// Mounts the littlefs image at `path` (creating and formatting it as the
    /// [module docs](super) say) and runs `v` with it. The volume stores
    /// modification times from the host's clock, and keeps up to
    /// [`LITTLEFS_OPEN_FILES`] files open at once.
    ///
    /// The image's size must be one of [`LITTLEFS_SIZES`] (blocks of
    /// [`LITTLEFS_BLOCK_SIZE`]).
    pub fn with_littlefs<V: WithFileSystem>(
        path: impl AsRef<Path>,
        size: Option<u64>,
        v: V,
    ) -> Result<V::Output> {
        let path = path.as_ref();
        if let Some(size) = size.filter(|s| !LITTLEFS_SIZES.contains(s)) {
            return Err(invalid_input(std::format!(
                "a littlefs image must be a power of two from 64K to 1G, not {size} bytes"
            )));
        }
        let (disk, created) = open_or_create(path, size, LITTLEFS_BLOCK_SIZE)?;
        let blocks = disk.block_count();
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match blocks {
                    $($n => run::<$n, V>(disk, created, v),)*
                    _ => Err(invalid_input(std::format!(
                        "{} is not a power of two from 64K to 1G in size",
                        path.display()
                    ))),
                }
            };
        }
        dispatch!(16 32 64 128 256 512 1024 2048 4096 8192 16384 32768 65536 131072 262144)
    }
}

#[cfg(feature = "fatfs")]
pub use self::fat_image::*;

#[cfg(feature = "fatfs")]
mod fat_image {
    use super::*;
    use crate::fat::{self, FatFs, FatIo};

    /// Sector size of FAT images, in bytes.
    pub const FAT_SECTOR_SIZE: usize = 512;

    /// A mounted FAT image.
    pub struct FatImage {
        volume: fat::fatfs::FileSystem<FatIo<FileDisk>>,
    }

    impl FatImage {
        /// The volume as a Ferry [`FileSystem`].
        pub fn file_system(&self) -> FatFs<'_, FatIo<FileDisk>> {
            FatFs::new(&self.volume)
        }

        /// Unmounts, writing FAT32's free-space summary and clearing the
        /// volume's dirty flag (dropping does the same, ignoring errors).
        pub fn unmount(self) -> Result<()> {
            self.volume.unmount()
        }
    }

    impl core::fmt::Debug for FatImage {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("FatImage")
                .field("fat_type", &self.volume.fat_type())
                .finish()
        }
    }

    /// Mounts the FAT image at `path`, creating and formatting it as the
    /// [module docs](super) say (`size`: a multiple of 512 bytes).
    pub fn open_fat(path: impl AsRef<Path>, size: Option<u64>) -> Result<FatImage> {
        let (mut disk, created) = open_or_create(path.as_ref(), size, FAT_SECTOR_SIZE)?;
        if created || is_blank(&mut disk, FAT_SECTOR_SIZE)? {
            fat::format(&mut disk)?;
        }
        let volume = fat::mount(disk)?;
        Ok(FatImage { volume })
    }

    /// [`open_fat`], then runs `v` with the volume and unmounts it.
    pub fn with_fat<V: WithFileSystem>(
        path: impl AsRef<Path>,
        size: Option<u64>,
        v: V,
    ) -> Result<V::Output> {
        let image = open_fat(path, size)?;
        let out = v.run(&mut image.file_system());
        image.unmount()?;
        Ok(out)
    }
}

#[cfg(feature = "sdmmc")]
pub use self::sdfat_image::*;

#[cfg(feature = "sdmmc")]
mod sdfat_image {
    use super::*;
    use crate::sdmmc::{self, SdBlocks, SdFat, UnixClock, VolumeManager};

    /// Files an `embedded-sdmmc` image keeps open at once (one per session
    /// of a host server, as `LITTLEFS_OPEN_FILES`).
    pub const SDFAT_OPEN_FILES: usize = 64;
    /// Directories it keeps open at once: a listing per session, and two for
    /// walking a path.
    pub const SDFAT_OPEN_DIRS: usize = SDFAT_OPEN_FILES + 2;

    fn now_unix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Mounts the image at `path` (MBR, first partition FAT16 or FAT32)
    /// through `embedded-sdmmc`, creating and formatting it as the
    /// [module docs](super) say, and runs `v` with it. Times are the host's
    /// clock, stored as UTC.
    pub fn with_sdfat<V: WithFileSystem>(
        path: impl AsRef<Path>,
        size: Option<u64>,
        v: V,
    ) -> Result<V::Output> {
        let (mut disk, created) = open_or_create(path.as_ref(), size, 512)?;
        let sd = |e: sdmmc::SdError| Error::new(IoKind::InvalidData, e.what());
        if created || is_blank(&mut disk, 512)? {
            sdmmc::format(&SdBlocks::new(&mut disk)).map_err(sd)?;
        }
        let manager: VolumeManager<_, _, SDFAT_OPEN_DIRS, SDFAT_OPEN_FILES, 1> =
            VolumeManager::new_with_limits(SdBlocks::new(&mut disk), UnixClock(now_unix), 1);
        let mut fs = SdFat::open(&manager).map_err(sd)?;
        let out = v.run(&mut fs);
        drop(fs);
        drop(manager);
        disk.sync()
            .map_err(|e| disk.take_last_error().unwrap_or_else(|| Error::other(e)))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("8X"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }
}

//! A littlefs volume on a board's block device, mounted for the whole run.
use ferry_fs::block::{BlockDevice, BlockError};
use ferry_fs::littlefs::{self, FileSlots, LfsError, LfsStorage, LittleFs};
use littlefs2::driver::Storage;
use littlefs2::fs::{Allocation, Filesystem};
use static_cell::StaticCell;

/// A mounted volume, and whether it was formatted first.
pub struct Mounted<S: Storage + 'static> {
    /// The volume; put it in a `static` and hand it to `LittleFs::new`.
    pub volume: Filesystem<'static, S>,
    /// Whether it was formatted (a new device, or `always_format`).
    pub formatted: bool,
}

/// Mounts `storage` with littlefs's caches in `allocation` (both in
/// `static`s: a board serves them for the whole run). Formats it first
/// when `always_format` (a RAM disk) or when it does not mount (a new
/// board's flash; careful: a damaged volume is formatted too).
pub fn mount_or_format<S: Storage + 'static>(
    storage: &'static mut S,
    allocation: &'static mut Allocation<S>,
    always_format: bool,
) -> Result<Mounted<S>, LfsError> {
    let formatted = always_format || !Filesystem::is_mountable(storage);
    if formatted {
        littlefs::format(storage)?;
    }
    let volume = Filesystem::mount(allocation, storage).map_err(LfsError::from)?;
    Ok(Mounted { volume, formatted })
}

/// Why [`VolumeCells::mount`] failed (a board's log shows it with `Debug`).
#[derive(Debug)]
pub enum MountError {
    /// The device's geometry does not fit littlefs's (`LfsStorage::new`).
    Geometry(BlockError),
    /// littlefs failed to format or mount.
    Littlefs(LfsError),
    /// The cells hold a volume already (`mount` was called twice).
    AlreadyMounted,
}

/// Everything a littlefs volume on a device `D` keeps for the whole run,
/// with `FILES` open files (a server's sessions: each has at most one):
/// littlefs's view of the device, its caches, the mounted volume, the
/// open files' state. A board declares one as a `static`, empty until
/// [`mount`](VolumeCells::mount) (its bytes are in `.bss`):
/// `static VOLUME: VolumeCells<Flash, 4096, 256, SESSIONS> = VolumeCells::new();`
pub struct VolumeCells<D, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize, const FILES: usize>
where
    D: BlockDevice + 'static,
{
    storage: StaticCell<LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>>,
    allocation: StaticCell<Allocation<LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>>>,
    volume: StaticCell<Filesystem<'static, LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>>>,
    files: StaticCell<FileSlots<LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>, FILES>>,
}

impl<D, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize, const FILES: usize>
    VolumeCells<D, BLOCK_SIZE, BLOCK_COUNT, FILES>
where
    D: BlockDevice + 'static,
{
    /// Empty cells.
    pub const fn new() -> Self {
        VolumeCells {
            storage: StaticCell::new(),
            allocation: StaticCell::new(),
            volume: StaticCell::new(),
            files: StaticCell::new(),
        }
    }

    /// Mounts littlefs on `device` for the whole run, formatting it first
    /// as [`mount_or_format`] does; the volume to serve (no modification
    /// times: add `with_clock` if the board has a wall clock) and whether
    /// it was formatted.
    pub fn mount(
        &'static self,
        device: D,
        always_format: bool,
    ) -> Result<
        (
            LittleFs<'static, LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>, FILES>,
            bool,
        ),
        MountError,
    > {
        let storage = LfsStorage::new(device).map_err(MountError::Geometry)?;
        let storage = self
            .storage
            .try_init(storage)
            .ok_or(MountError::AlreadyMounted)?;
        let allocation = self
            .allocation
            .try_init_with(Allocation::new)
            .ok_or(MountError::AlreadyMounted)?;
        let mounted =
            mount_or_format(storage, allocation, always_format).map_err(MountError::Littlefs)?;
        let volume = self
            .volume
            .try_init(mounted.volume)
            .ok_or(MountError::AlreadyMounted)?;
        let files = self
            .files
            .try_init_with(FileSlots::new)
            .ok_or(MountError::AlreadyMounted)?;
        Ok((LittleFs::new(volume, files), mounted.formatted))
    }
}

impl<D, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize, const FILES: usize> Default
    for VolumeCells<D, BLOCK_SIZE, BLOCK_COUNT, FILES>
where
    D: BlockDevice + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use ferry_fs::block::RamDisk;
    use std::boxed::Box;
    use std::vec;

    type Ram = RamDisk<std::vec::Vec<u8>>;
    type Disk = LfsStorage<Ram, 4096, 16>;

    fn ram() -> Ram {
        RamDisk::new(vec![0xFF; 4096 * 16], 4096).unwrap()
    }

    fn disk() -> &'static mut Disk {
        Box::leak(Box::new(LfsStorage::new(ram()).unwrap()))
    }

    #[test]
    fn formats_a_new_device() {
        let storage = disk();
        let first = mount_or_format(storage, Box::leak(Box::new(Allocation::new())), false)
            .ok()
            .unwrap();
        assert!(first.formatted);
    }

    #[test]
    fn always_format_formats() {
        let mounted = mount_or_format(disk(), Box::leak(Box::new(Allocation::new())), true)
            .ok()
            .unwrap();
        assert!(mounted.formatted);
    }

    #[test]
    fn cells_mount_once() {
        static CELLS: VolumeCells<Ram, 4096, 16, 2> = VolumeCells::new();
        let (_fs, formatted) = CELLS.mount(ram(), false).ok().unwrap();
        assert!(formatted);
        assert!(matches!(
            CELLS.mount(ram(), false),
            Err(MountError::AlreadyMounted)
        ));
    }

    #[test]
    fn cells_report_a_device_too_small() {
        static CELLS: VolumeCells<Ram, 4096, 32, 2> = VolumeCells::new();
        assert!(matches!(
            CELLS.mount(ram(), false),
            Err(MountError::Geometry(BlockError::OutOfRange))
        ));
    }
}

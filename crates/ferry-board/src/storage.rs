//! A littlefs volume on a board's block device, mounted for the whole run.
use ferry_fs::littlefs::{self, LfsError};
use littlefs2::driver::Storage;
use littlefs2::fs::{Allocation, Filesystem};

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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use ferry_fs::block::RamDisk;
    use ferry_fs::littlefs::LfsStorage;
    use std::boxed::Box;
    use std::vec;

    type Disk = LfsStorage<RamDisk<std::vec::Vec<u8>>, 4096, 16>;

    fn disk() -> &'static mut Disk {
        let ram = RamDisk::new(vec![0xFF; 4096 * 16], 4096).unwrap();
        Box::leak(Box::new(LfsStorage::new(ram).unwrap()))
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
}

//! Where the files live, chosen by a feature:
//!
//! - `storage-flash`: littlefs on the internal flash, bank 2's 128 KiB
//!   sectors 17-23 (896 KiB at 0x08120000), mounted at boot and formatted
//!   only if it does not mount (a new board). [`InternalFlash`] is the
//!   block device: reads come straight from the memory-mapped flash,
//!   programs and erases go through the flash controller.
//! - `storage-ram`: littlefs on a 64 KiB RAM disk in the CCM RAM,
//!   formatted at every boot.
//!
//! Costs of internal flash, which a product should weigh (README.md):
//! an erase takes a whole 128 KiB sector (1-2 s, up to 4 s, during which
//! the core waits and no frame is served), littlefs needs at least one
//! block per file larger than 256 bytes (so at most ~5 such files in 7
//! blocks), and each sector endures 10 000 erases.
#[cfg(all(feature = "storage-flash", feature = "storage-ram"))]
compile_error!(
    "choose one storage feature: storage-flash or storage-ram (with --no-default-features)"
);
// (With both, only the error above: the RAM disk side stays out.)
#[cfg(not(any(feature = "storage-flash", feature = "storage-ram")))]
compile_error!("choose a storage feature: storage-flash (default), storage-ram or storage-sd");

use ferry_board::{MountError, VolumeCells};
use ferry_fs::littlefs::{FileSlots, LfsStorage, LittleFs};

use crate::stack::SESSIONS;

#[cfg(feature = "storage-flash")]
pub use flash::{InternalFlash as Device, BLOCK_COUNT, BLOCK_SIZE};
#[cfg(all(feature = "storage-ram", not(feature = "storage-flash")))]
pub use ram::{Device, BLOCK_COUNT, BLOCK_SIZE};

/// RAM one more open file takes: littlefs's state of it (`FIRMWARE_RAM`).
pub const PER_FILE_RAM: u32 = (core::mem::size_of::<FileSlots<Disk, { SESSIONS + 1 }>>()
    - core::mem::size_of::<FileSlots<Disk, SESSIONS>>()) as u32;

/// littlefs's view of the device.
pub type Disk = LfsStorage<Device, BLOCK_SIZE, BLOCK_COUNT>;
/// The volume the server serves, with one open file per session.
pub type Fs = LittleFs<'static, Disk, SESSIONS>;

/// The volume and its open files, for the whole run.
static VOLUME: VolumeCells<Device, BLOCK_SIZE, BLOCK_COUNT, SESSIONS> = VolumeCells::new();

/// Mounts the volume on `device` for the whole run (formatting it first
/// when it does not mount, or always for a RAM disk); whether it was
/// formatted. No wall clock on this board (its RTC is not set): littlefs
/// stores no modification times.
pub fn mount(device: Device) -> Result<(Fs, bool), MountError> {
    VOLUME.mount(device, cfg!(not(feature = "storage-flash")))
}

#[cfg(feature = "storage-flash")]
mod flash {
    //! The internal flash's bank 2 upper sectors as a block device.
    use ferry_fs::block::{BlockDevice, BlockError};
    use stm32f4xx_hal::flash::FlashExt;
    use stm32f4xx_hal::pac::FLASH;

    /// littlefs blocks: one erase sector each.
    pub const BLOCK_SIZE: usize = 128 * 1024;
    /// Sectors 17 to 23.
    pub const BLOCK_COUNT: usize = 7;
    /// The first sector (numbered as in RM0090: bank 2 is 12-23).
    const FIRST_SECTOR: u8 = 17;
    /// Its offset from the start of the flash (0x08000000).
    const START: usize = 0x12_0000;

    /// Sectors 17-23 of the internal flash. Programs only erased bytes
    /// correctly (NOR flash): it serves littlefs, which never does
    /// otherwise.
    pub struct InternalFlash {
        flash: FLASH,
    }

    impl InternalFlash {
        /// The flash controller, for this region only.
        pub fn new(flash: FLASH) -> InternalFlash {
            InternalFlash { flash }
        }

        /// The ART accelerator's data cache may hold bytes from before an
        /// erase or program: reset it (RM0090, "Flash memory interface").
        fn flush_data_cache(&mut self) {
            let acr = &self.flash.acr;
            if acr.read().dcen().bit_is_set() {
                acr.modify(|_, w| w.dcen().clear_bit());
                acr.modify(|_, w| w.dcrst().set_bit());
                acr.modify(|_, w| w.dcrst().clear_bit());
                acr.modify(|_, w| w.dcen().set_bit());
            }
        }

        /// The flash offset of `offset..offset + len` in this region.
        fn region(offset: u64, len: usize) -> Result<usize, BlockError> {
            let end = offset
                .checked_add(len as u64)
                .ok_or(BlockError::OutOfRange)?;
            if end > (BLOCK_SIZE * BLOCK_COUNT) as u64 {
                return Err(BlockError::OutOfRange);
            }
            Ok(START + offset as usize)
        }
    }

    impl BlockDevice for InternalFlash {
        fn block_size(&self) -> usize {
            BLOCK_SIZE
        }

        fn block_count(&self) -> usize {
            BLOCK_COUNT
        }

        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            let start = Self::region(offset, buf.len())?;
            let src = self
                .flash
                .read()
                .get(start..start + buf.len())
                .ok_or(BlockError::OutOfRange)?;
            buf.copy_from_slice(src);
            Ok(())
        }

        fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
            let start = Self::region(offset, data.len())?;
            let result = self.flash.unlocked().program(start, data.iter());
            self.flush_data_cache();
            result.map_err(|_| BlockError::Io)
        }

        fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
            let block = BLOCK_SIZE as u64;
            if offset % block != 0 || len % block != 0 {
                return Err(BlockError::Misaligned);
            }
            Self::region(offset, len as usize)?;
            let first = (offset / block) as u8;
            let count = (len / block) as u8;
            let mut unlocked = self.flash.unlocked();
            let mut result = Ok(());
            for sector in FIRST_SECTOR + first..FIRST_SECTOR + first + count {
                result = unlocked.erase(sector).map_err(|_| BlockError::Io);
                if result.is_err() {
                    break;
                }
            }
            drop(unlocked);
            self.flush_data_cache();
            result
        }
    }
}

#[cfg(all(feature = "storage-ram", not(feature = "storage-flash")))]
mod ram {
    //! A RAM disk in the core-coupled RAM.
    use core::mem::MaybeUninit;
    use core::ptr::addr_of_mut;
    use core::sync::atomic::{AtomicBool, Ordering};

    use ferry_fs::block::RamDisk;

    /// littlefs blocks of 4 KiB.
    pub const BLOCK_SIZE: usize = 4096;
    /// 16 of them: all 64 KiB of the CCM RAM.
    pub const BLOCK_COUNT: usize = 16;
    /// The RAM disk's type.
    pub type Device = RamDisk<&'static mut [u8]>;

    /// The disk's bytes, in the CCM RAM (the `.ccmram` section of
    /// memory.x, not initialised at reset).
    #[link_section = ".ccmram.ram_disk"]
    static mut BYTES: MaybeUninit<[u8; BLOCK_SIZE * BLOCK_COUNT]> = MaybeUninit::uninit();
    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// The RAM disk, erased; `None` after the first call.
    pub fn take() -> Option<Device> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `TAKEN` lets only the first call here, so this is the only
        // reference to `BYTES` ever made; the bytes are written (erased)
        // before they are read as initialised.
        let bytes = unsafe {
            let uninit = &mut *addr_of_mut!(BYTES);
            core::ptr::write_bytes(uninit.as_mut_ptr(), 0xFF, 1);
            uninit.assume_init_mut()
        };
        RamDisk::new(&mut bytes[..], BLOCK_SIZE).ok()
    }
}

#[cfg(all(feature = "storage-ram", not(feature = "storage-flash")))]
pub use ram::take as take_ram_disk;

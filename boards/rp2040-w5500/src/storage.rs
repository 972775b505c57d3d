//! Where the files live: littlefs on the second MiB of the board's 2 MiB
//! QSPI flash (256 sectors of 4 KiB at 0x10100000), mounted at boot and
//! formatted only if it does not mount (a new board). The firmware runs
//! from the first MiB (memory.x), so flashing a new one keeps the files.
//!
//! [`QspiFlash`] is the block device: reads come straight from the
//! memory-mapped flash (XIP), programs and erases go through the boot
//! ROM's flash routines (`rp2040-flash`), which stop XIP while they run:
//! the code that calls them runs from RAM, with interrupts off (no handler
//! may fetch from flash meanwhile). A 4 KiB sector erase keeps the core
//! there for ~45 ms (up to 400 ms); the W5500 keeps its connections alive
//! by itself meanwhile.
use ferry_board::{MountError, VolumeCells};
use ferry_fs::block::{BlockDevice, BlockError};
use ferry_fs::littlefs::{LfsStorage, LittleFs};
use rp2040_hal::pac::XIP_SSI;

use crate::w5500::SESSIONS;

/// littlefs blocks: one 4 KiB erase sector each.
pub const BLOCK_SIZE: usize = 4096;
/// The second MiB of the flash.
pub const BLOCK_COUNT: usize = 256;
/// The region's offset from the start of the flash.
const START: u32 = 0x10_0000;
/// Where the flash is mapped (XIP, cached).
const XIP_BASE: usize = 0x1000_0000;
/// The flash's program unit: the boot ROM programs whole 256-byte pages.
const PAGE: usize = 256;

/// littlefs's view of the device.
pub type Disk = LfsStorage<QspiFlash, BLOCK_SIZE, BLOCK_COUNT>;
/// The volume the server serves, with one open file per session.
pub type Fs = LittleFs<'static, Disk, SESSIONS>;

/// The volume and its open files, for the whole run.
static VOLUME: VolumeCells<QspiFlash, BLOCK_SIZE, BLOCK_COUNT, SESSIONS> = VolumeCells::new();

/// Mounts the volume on `device` for the whole run, formatting it first
/// when it does not mount; whether it was formatted. No wall clock on this
/// board: littlefs stores no modification times.
pub fn mount(device: QspiFlash) -> Result<(Fs, bool), MountError> {
    VOLUME.mount(device, false)
}

/// The second MiB of the QSPI flash. Programs only erased bytes correctly
/// (NOR flash): it serves littlefs, which never does otherwise.
///
/// Holding the flash interface (`XIP_SSI`), which the boot ROM's routines
/// drive, makes it the only writer. Core 1 must stay off (this firmware
/// never starts it) and no DMA may read flash: both would fetch from the
/// flash while XIP is stopped.
pub struct QspiFlash {
    _ssi: XIP_SSI,
}

impl QspiFlash {
    /// The flash, through its interface.
    pub fn new(ssi: XIP_SSI) -> QspiFlash {
        QspiFlash { _ssi: ssi }
    }

    /// The flash chip's 64-bit unique ID (the W25Q16JV has one), for the
    /// MAC address.
    pub fn unique_id(&mut self) -> [u8; 8] {
        let mut id = [0u8; 8];
        // SAFETY: interrupts are off, core 1 is not running and no DMA
        // reads flash (see the type's docs), so nothing fetches from flash
        // while the routine has XIP stopped; the boot loader it copies to
        // restore XIP is the one the chip booted with.
        cortex_m::interrupt::free(|_| unsafe {
            rp2040_flash::flash::flash_unique_id(&mut id, true);
        });
        id
    }

    /// The flash offset of `offset..offset + len` in this region.
    fn region(offset: u64, len: usize) -> Result<u32, BlockError> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(BlockError::OutOfRange)?;
        if end > (BLOCK_SIZE * BLOCK_COUNT) as u64 {
            return Err(BlockError::OutOfRange);
        }
        // Below 1 MiB: fits.
        Ok(START + offset as u32)
    }
}

impl BlockDevice for QspiFlash {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn block_count(&self) -> usize {
        BLOCK_COUNT
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let start = Self::region(offset, buf.len())?;
        // SAFETY: the range lies in the mapped flash (checked above), which
        // is always readable between the routines below and which no Rust
        // reference writes; the routines flush the XIP cache, so the bytes
        // are the flash's.
        let src = unsafe {
            core::slice::from_raw_parts((XIP_BASE + start as usize) as *const u8, buf.len())
        };
        buf.copy_from_slice(src);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let mut at = Self::region(offset, data.len())? as usize;
        let mut rest = data;
        // The ROM programs whole pages: the bytes around `data` in a page
        // are programmed as 0xFF, which leaves NOR flash unchanged.
        while !rest.is_empty() {
            let page_start = at - at % PAGE;
            let in_page = at - page_start;
            let n = rest.len().min(PAGE - in_page);
            let mut page = [0xFFu8; PAGE];
            let (head, tail) = rest.split_at(n);
            page.get_mut(in_page..in_page + n)
                .ok_or(BlockError::OutOfRange)?
                .copy_from_slice(head);
            // SAFETY: as in `unique_id`; `page` is in RAM (the stack), the
            // page lies in this region (checked above), so no code runs
            // from the bytes it changes.
            cortex_m::interrupt::free(|_| unsafe {
                rp2040_flash::flash::flash_range_program(page_start as u32, &page, true);
            });
            at += n;
            rest = tail;
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        let block = BLOCK_SIZE as u64;
        if offset % block != 0 || len % block != 0 {
            return Err(BlockError::Misaligned);
        }
        let len_bytes = usize::try_from(len).map_err(|_| BlockError::OutOfRange)?;
        let start = Self::region(offset, len_bytes)?;
        // One sector at a time: interrupts are off only for one erase.
        for sector in 0..(len / block) as u32 {
            // SAFETY: as in `program`: whole sectors of this region.
            cortex_m::interrupt::free(|_| unsafe {
                rp2040_flash::flash::flash_range_erase(
                    start + sector * BLOCK_SIZE as u32,
                    BLOCK_SIZE as u32,
                    true,
                );
            });
        }
        Ok(())
    }
}

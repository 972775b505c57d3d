//! littlefs on the flash partition labelled `ferry` (partitions.csv):
//! found in the partition table at boot, mounted, and formatted only if it
//! does not mount (a new board).
//!
//! [`PartitionFlash`] is the block device: 4 KiB erase sectors of the
//! SPI flash through esp-storage, offset to the partition. A flash
//! operation stalls the CPU (the code runs from that flash); a sector
//! erase takes ~50 ms, during which no frame is served.
use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_storage::FlashStorage;
use ferry_board::{MountError, VolumeCells};
use ferry_fs::block::{BlockDevice, BlockError};
use ferry_fs::littlefs::{LfsStorage, LittleFs};

use crate::SESSIONS;

/// The partition's label in partitions.csv.
pub const LABEL: &str = "ferry";
/// littlefs blocks: one erase sector each.
pub const BLOCK_SIZE: usize = 4096;
/// 2 MiB: the partition must be at least this large.
pub const BLOCK_COUNT: usize = 512;

/// littlefs's view of the partition.
pub type Disk = LfsStorage<PartitionFlash, BLOCK_SIZE, BLOCK_COUNT>;
/// The volume the server serves, with one open file per session.
pub type Fs = LittleFs<'static, Disk, SESSIONS>;

/// The volume and its open files (a session has at most one open), for
/// the whole run.
static VOLUME: VolumeCells<PartitionFlash, BLOCK_SIZE, BLOCK_COUNT, SESSIONS> = VolumeCells::new();

/// Why the volume did not mount (the log shows it with `Debug`).
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through `Debug` only
pub enum StorageError {
    /// The partition table could not be read.
    PartitionTable(partitions::Error),
    /// No data partition labelled [`LABEL`] (flashed without
    /// partitions.csv?).
    NoPartition,
    /// The partition is smaller than [`BLOCK_COUNT`] blocks, or not
    /// aligned to them: its offset and length.
    TooSmall(u32, u32),
    /// The partition's geometry does not fit littlefs's, or littlefs
    /// failed to format or mount.
    Mount(MountError),
}

/// Finds the partition, mounts littlefs on it for the whole run (formatting
/// it first when it does not mount); the volume and whether it was
/// formatted.
pub fn mount(mut flash: FlashStorage<'static>) -> Result<(Fs, bool), StorageError> {
    let offset = find_partition(&mut flash)?;
    let device = PartitionFlash { flash, offset };
    // No wall clock on this board: littlefs stores no modification times.
    VOLUME.mount(device, false).map_err(StorageError::Mount)
}

/// The offset of the data partition labelled [`LABEL`], checked to hold
/// the volume.
#[inline(never)]
fn find_partition(flash: &mut FlashStorage<'static>) -> Result<u32, StorageError> {
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let table = partitions::read_partition_table(flash, &mut table)
        .map_err(StorageError::PartitionTable)?;
    let entry = table
        .iter()
        .find(|p| {
            p.label_as_str() == LABEL
                && matches!(p.partition_type(), partitions::PartitionType::Data(_))
        })
        .ok_or(StorageError::NoPartition)?;
    let (offset, len) = (entry.offset(), entry.len());
    let needed = (BLOCK_SIZE * BLOCK_COUNT) as u32;
    if len < needed || offset % BLOCK_SIZE as u32 != 0 {
        return Err(StorageError::TooSmall(offset, len));
    }
    Ok(offset)
}

/// The `ferry` partition of the SPI flash as a block device. Programs
/// only erased bytes correctly (NOR flash): it serves littlefs, which
/// never does otherwise.
pub struct PartitionFlash {
    flash: FlashStorage<'static>,
    /// The partition's offset in the flash.
    offset: u32,
}

impl PartitionFlash {
    /// The flash address of `offset..offset + len` in the partition.
    fn address(&self, offset: u64, len: usize) -> Result<u32, BlockError> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(BlockError::OutOfRange)?;
        if end > (BLOCK_SIZE * BLOCK_COUNT) as u64 {
            return Err(BlockError::OutOfRange);
        }
        // Within 2 MiB (checked above), so it fits a u32.
        Ok(self.offset + offset as u32)
    }
}

impl BlockDevice for PartitionFlash {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn block_count(&self) -> usize {
        BLOCK_COUNT
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let address = self.address(offset, buf.len())?;
        self.flash
            .read_nor(address, buf)
            .map_err(|_| BlockError::Io)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let address = self.address(offset, data.len())?;
        self.flash
            .write_nor(address, data)
            .map_err(|_| BlockError::Io)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        let block = BLOCK_SIZE as u64;
        if offset % block != 0 || len % block != 0 {
            return Err(BlockError::Misaligned);
        }
        let from = self.address(offset, len as usize)?;
        // `address` checked that `from + len` lies within the partition.
        self.flash
            .erase(from, from + len as u32)
            .map_err(|_| BlockError::Io)
    }
}

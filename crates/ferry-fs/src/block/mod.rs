//! Block devices: the storage under a file system image, no_std and no alloc.
//!
//! A [`BlockDevice`] is a run of fixed-size erase blocks addressed by byte
//! offset. It is the one seam under both on-medium file systems: the littlefs
//! adapter reaches it through `littlefs::LfsStorage` (littlefs2's
//! `driver::Storage`), the FAT adapter through `fat::FatIo` (`std::io`
//! `Read + Write + Seek`). A device is written once, and [`RamDisk`],
//! `FileDisk` (an image file, `std` feature) and the power-cut simulator
//! [`CutOff`] serve both file systems.
//!
//! Contract:
//! - Offsets are bytes from the start of the device; an access that does not
//!   fit inside [`BlockDevice::capacity`] fails with [`BlockError::OutOfRange`]
//!   and changes nothing.
//! - [`BlockDevice::program`] may be called on any byte range. The devices
//!   here are *rewritable* media (RAM, an image file, an SD card behind its
//!   controller): programming overwrites bytes whether or not they were
//!   erased. A raw NOR/NAND flash driver implementing this trait can only
//!   serve littlefs, which programs erased ranges only, in multiples of its
//!   program size.
//! - [`BlockDevice::erase`] takes whole blocks (offset and length multiples of
//!   [`BlockDevice::block_size`], [`BlockError::Misaligned`] otherwise) and
//!   sets them to [`ERASED`].
//! - A call that returns an error may have done nothing (every device here
//!   does nothing then). [`CutOff`] relies on that to model a power cut.

mod cut_off;
#[cfg(feature = "std")]
mod file_disk;
mod ram;

pub use cut_off::CutOff;
#[cfg(feature = "std")]
pub use file_disk::FileDisk;
pub use ram::RamDisk;

/// The value of a byte after [`BlockDevice::erase`], as on NOR flash.
pub const ERASED: u8 = 0xFF;

/// Why a block device refused an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// The range does not fit inside the device.
    OutOfRange,
    /// An erase that does not cover whole blocks, or a geometry that does not
    /// divide the device (e.g. a RAM buffer that is not a multiple of the
    /// block size).
    Misaligned,
    /// The power is gone: a [`CutOff`] refuses every write from its cut on.
    PowerCut,
    /// The medium failed (e.g. the host's I/O error on an image file).
    Io,
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BlockError::OutOfRange => "access beyond the end of the block device",
            BlockError::Misaligned => "access not aligned to the device's blocks",
            BlockError::PowerCut => "power cut: the device takes no more writes",
            BlockError::Io => "block device I/O error",
        })
    }
}

impl core::error::Error for BlockError {}

/// A medium of `block_count` erase blocks of `block_size` bytes each.
///
/// See the [module docs](self) for the contract.
pub trait BlockDevice {
    /// Size of an erase block in bytes (a power of two, at least 128 for
    /// littlefs and 512 for FAT).
    fn block_size(&self) -> usize;
    /// Number of blocks.
    fn block_count(&self) -> usize;
    /// Reads `buf.len()` bytes starting at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `data` starting at `offset`.
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError>;
    /// Sets `len` bytes from `offset` to [`ERASED`]; both are multiples of
    /// [`BlockDevice::block_size`].
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError>;
    /// Makes completed writes durable (e.g. `fsync` of an image file).
    fn sync(&mut self) -> Result<(), BlockError> {
        Ok(())
    }

    /// Size of the device in bytes.
    fn capacity(&self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        (self.block_size() as u64).saturating_mul(self.block_count() as u64)
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn block_count(&self) -> usize {
        (**self).block_count()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        (**self).program(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        (**self).erase(offset, len)
    }
    fn sync(&mut self) -> Result<(), BlockError> {
        (**self).sync()
    }
}

/// Checks that `offset..offset + len` lies inside a device of `capacity`
/// bytes, and returns the range as `usize` indices.
pub(crate) fn checked_range(
    offset: u64,
    len: usize,
    capacity: u64,
) -> Result<core::ops::Range<usize>, BlockError> {
    let end = offset
        .checked_add(len as u64)
        .filter(|&end| end <= capacity)
        .ok_or(BlockError::OutOfRange)?;
    let start = usize::try_from(offset).map_err(|_| BlockError::OutOfRange)?;
    let end = usize::try_from(end).map_err(|_| BlockError::OutOfRange)?;
    Ok(start..end)
}

/// Checks that an erase covers whole blocks of `block_size` inside the device.
pub(crate) fn check_erase(
    offset: u64,
    len: u64,
    block_size: usize,
    capacity: u64,
) -> Result<(), BlockError> {
    let bs = block_size as u64;
    if bs == 0 || !offset.is_multiple_of(bs) || !len.is_multiple_of(bs) {
        return Err(BlockError::Misaligned);
    }
    match offset.checked_add(len) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(BlockError::OutOfRange),
    }
}

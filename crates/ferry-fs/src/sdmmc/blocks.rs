//! [`SdBlocks`]: any Ferry [`BlockDevice`] as an `embedded-sdmmc` block device.

use core::cell::RefCell;

use embedded_sdmmc::{Block, BlockCount, BlockIdx};

use crate::block::{BlockDevice, BlockError};

/// A Ferry [`BlockDevice`] (a [`RamDisk`](crate::block::RamDisk), an image
/// file, a [`CutOff`](crate::block::CutOff)) in 512-byte blocks, as the
/// `embedded_sdmmc::BlockDevice` a `VolumeManager` reads. An SD card's own
/// driver (`embedded_sdmmc::SdCard`) needs no bridge.
///
/// `embedded-sdmmc` takes its device by shared reference, so the device sits
/// in a `RefCell`; a re-entrant access (which `embedded-sdmmc` never makes)
/// fails with [`BlockError::Io`].
#[derive(Debug)]
pub struct SdBlocks<D> {
    device: RefCell<D>,
}

impl<D: BlockDevice> SdBlocks<D> {
    /// Serves `device`; its size should be a multiple of 512 bytes (a tail
    /// is never used).
    pub fn new(device: D) -> SdBlocks<D> {
        SdBlocks {
            device: RefCell::new(device),
        }
    }

    /// The device, e.g. to mount what a power cut left.
    pub fn into_inner(self) -> D {
        self.device.into_inner()
    }

    fn device(&self) -> Result<core::cell::RefMut<'_, D>, BlockError> {
        self.device.try_borrow_mut().map_err(|_| BlockError::Io)
    }
}

/// The byte offset of block `idx` plus `i`.
fn offset(idx: BlockIdx, i: usize) -> u64 {
    (u64::from(idx.0) + i as u64) * Block::LEN as u64
}

impl<D: BlockDevice> embedded_sdmmc::BlockDevice for SdBlocks<D> {
    type Error = BlockError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), BlockError> {
        let mut device = self.device()?;
        for (i, block) in blocks.iter_mut().enumerate() {
            device.read(offset(start, i), &mut block[..])?;
        }
        Ok(())
    }

    /// Writes go to the device as they come; nothing is synced (an image
    /// file's writes reach the host's page cache at once).
    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), BlockError> {
        let mut device = self.device()?;
        for (i, block) in blocks.iter().enumerate() {
            device.program(offset(start, i), &block[..])?;
        }
        Ok(())
    }

    fn num_blocks(&self) -> Result<BlockCount, BlockError> {
        let bytes = self.device()?.capacity();
        Ok(BlockCount(
            u32::try_from(bytes / Block::LEN as u64).unwrap_or(u32::MAX),
        ))
    }
}

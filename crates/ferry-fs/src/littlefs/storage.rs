//! [`LfsStorage`]: any [`BlockDevice`] as littlefs2's `driver::Storage`.

use littlefs2::consts::{U256, U8};
use littlefs2::driver::Storage;

use crate::block::{BlockDevice, BlockError};

/// A [`BlockDevice`] seen by littlefs2, with the geometry in the type.
///
/// littlefs2 0.8 takes the geometry as associated constants, so it is fixed
/// at compile time here: `BLOCK_SIZE` bytes per littlefs block (a multiple
/// of 256, the cache size, and of the device's erase block) and
/// `BLOCK_COUNT` blocks (the device may be larger; the rest is unused).
/// Reads and programs go in units of 16 bytes, through a 256-byte cache;
/// the lookahead buffer covers 512 blocks per scan; metadata blocks are
/// relocated after 500 erase cycles (wear leveling).
///
/// A board with a flash driver of its own can implement
/// `littlefs2::driver::Storage` directly instead:
/// [`LittleFs`](super::LittleFs) takes any `Storage`.
#[derive(Debug)]
pub struct LfsStorage<D, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize> {
    device: D,
}

impl<D: BlockDevice, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize>
    LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>
{
    /// Fails to compile for a block size littlefs2's cache cannot divide.
    const GEOMETRY: () = assert!(
        BLOCK_SIZE >= 256 && BLOCK_SIZE.is_multiple_of(256) && BLOCK_COUNT >= 2,
        "littlefs blocks must be a multiple of 256 bytes, and there must be two or more"
    );

    /// littlefs on `device`.
    ///
    /// Fails with [`BlockError::Misaligned`] if `BLOCK_SIZE` is not a multiple
    /// of the device's block size, and with [`BlockError::OutOfRange`] if the
    /// device is smaller than `BLOCK_SIZE * BLOCK_COUNT` bytes.
    pub fn new(device: D) -> Result<Self, BlockError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::GEOMETRY;
        let dev_block = device.block_size();
        if dev_block == 0 || !BLOCK_SIZE.is_multiple_of(dev_block) {
            return Err(BlockError::Misaligned);
        }
        let needed = (BLOCK_SIZE as u64).saturating_mul(BLOCK_COUNT as u64);
        if device.capacity() < needed {
            return Err(BlockError::OutOfRange);
        }
        Ok(LfsStorage { device })
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (e.g. to change a [`CutOff`](crate::block::CutOff)'s budget).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The device, to mount its bytes again or to use it for something else.
    pub fn into_inner(self) -> D {
        self.device
    }
}

fn lfs_err(e: BlockError) -> littlefs2::io::Error {
    match e {
        // Refusing an access outside the medium means littlefs is confused:
        // treat it as corruption rather than as a failing medium.
        BlockError::OutOfRange | BlockError::Misaligned => littlefs2::io::Error::CORRUPTION,
        _ => littlefs2::io::Error::IO,
    }
}

impl<D: BlockDevice, const BLOCK_SIZE: usize, const BLOCK_COUNT: usize> Storage
    for LfsStorage<D, BLOCK_SIZE, BLOCK_COUNT>
{
    const READ_SIZE: usize = 16;
    const WRITE_SIZE: usize = 16;
    const BLOCK_SIZE: usize = BLOCK_SIZE;
    const BLOCK_COUNT: usize = BLOCK_COUNT;
    const BLOCK_CYCLES: isize = 500;
    type CACHE_SIZE = U256;
    type LOOKAHEAD_SIZE = U8;

    fn read(&mut self, off: usize, buf: &mut [u8]) -> littlefs2::io::Result<usize> {
        self.device.read(off as u64, buf).map_err(lfs_err)?;
        Ok(buf.len())
    }

    fn write(&mut self, off: usize, data: &[u8]) -> littlefs2::io::Result<usize> {
        self.device.program(off as u64, data).map_err(lfs_err)?;
        Ok(data.len())
    }

    fn erase(&mut self, off: usize, len: usize) -> littlefs2::io::Result<usize> {
        self.device.erase(off as u64, len as u64).map_err(lfs_err)?;
        Ok(len)
    }
}

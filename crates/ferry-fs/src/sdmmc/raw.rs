//! What `embedded-sdmmc` cannot do, done on the raw blocks: directory entry
//! edits (rename, times, case flags) and freeing cluster chains (its delete
//! only marks the entry).
//!
//! Every access goes through `VolumeManager::device`, which drops the
//! manager's one-block cache first, and the manager writes its own changes
//! through at once, so the two never see stale blocks.

use embedded_sdmmc::{Block, BlockDevice, BlockIdx, TimeSource, VolumeManager};

use crate::ErrorKind;

use super::SdError;

/// A directory entry's place: its block and byte offset in it.
pub(crate) type Slot = (BlockIdx, u32);

/// The length of a directory entry.
pub(crate) const ENTRY_LEN: usize = 32;
/// First byte of a deleted entry.
pub(crate) const DELETED: u8 = 0xE5;

/// Where the FATs of the mounted volume are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    fat_start: u32,
    fat_blocks: u32,
    fats: u32,
    fat32: bool,
    clusters: u32,
}

fn io(_: impl core::fmt::Debug) -> SdError {
    SdError::new(ErrorKind::Io, "block device error")
}

fn le16(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 2)
        .map_or(0, |s| u32::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads block `idx`, lets `f` change it, and writes it back if `f` says so.
pub(crate) fn with_block<D, T, R, const DIRS: usize, const FILES: usize>(
    vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    idx: BlockIdx,
    f: impl FnOnce(&mut [u8; Block::LEN]) -> (bool, R),
) -> Result<R, SdError>
where
    D: BlockDevice,
    T: TimeSource,
{
    vm.device(|d| {
        let mut block = [Block::new()];
        d.read(&mut block, idx).map_err(io)?;
        let (dirty, r) = f(&mut block[0]);
        if dirty {
            d.write(&block, idx).map_err(io)?;
        }
        Ok(r)
    })
}

/// The 32 bytes of the entry at `slot`.
pub(crate) fn read_entry<D, T, const DIRS: usize, const FILES: usize>(
    vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    slot: Slot,
) -> Result<[u8; ENTRY_LEN], SdError>
where
    D: BlockDevice,
    T: TimeSource,
{
    with_block(vm, slot.0, |b| {
        let mut e = [0u8; ENTRY_LEN];
        if let Some(src) = b.get(slot.1 as usize..slot.1 as usize + ENTRY_LEN) {
            e.copy_from_slice(src);
        }
        (false, e)
    })
}

/// Writes entries in order; consecutive ones in the same block go in one
/// block write (which a power cut takes whole or not at all).
pub(crate) fn write_entries<D, T, const DIRS: usize, const FILES: usize>(
    vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    entries: &[(Slot, [u8; ENTRY_LEN])],
) -> Result<(), SdError>
where
    D: BlockDevice,
    T: TimeSource,
{
    let mut rest = entries;
    while let Some(((block, _), _)) = rest.first() {
        let n = rest.iter().take_while(|((b, _), _)| b == block).count();
        let (group, tail) = rest.split_at(n);
        with_block(vm, *block, |b| {
            for ((_, off), bytes) in group {
                if let Some(dst) = b.get_mut(*off as usize..*off as usize + ENTRY_LEN) {
                    dst.copy_from_slice(bytes);
                }
            }
            (true, ())
        })?;
        rest = tail;
    }
    Ok(())
}

/// Changes bytes `at..` of the entry at `slot` to `bytes`, if they differ.
pub(crate) fn patch_entry<D, T, const DIRS: usize, const FILES: usize>(
    vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    slot: Slot,
    at: usize,
    bytes: &[u8],
) -> Result<(), SdError>
where
    D: BlockDevice,
    T: TimeSource,
{
    let start = slot.1 as usize + at;
    with_block(vm, slot.0, |b| {
        match b.get_mut(start..start + bytes.len()) {
            Some(dst) if dst != bytes => {
                dst.copy_from_slice(bytes);
                (true, ())
            }
            _ => (false, ()),
        }
    })
}

/// The first cluster an entry's bytes name.
pub(crate) fn entry_cluster(e: &[u8; ENTRY_LEN]) -> u32 {
    (le16(e, 20) << 16) | le16(e, 26)
}

/// `e` pointing at cluster `c`.
pub(crate) fn set_entry_cluster(e: &mut [u8; ENTRY_LEN], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}

impl Geometry {
    /// Reads the MBR's first partition and its boot sector, as
    /// `embedded-sdmmc` does when it opens volume 0.
    pub(crate) fn read<D, T, const DIRS: usize, const FILES: usize>(
        vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    ) -> Result<Geometry, SdError>
    where
        D: BlockDevice,
        T: TimeSource,
    {
        let lba = with_block(vm, BlockIdx(0), |b| (false, le32(b, 446 + 8)))?;
        with_block(vm, BlockIdx(lba), |b| {
            let reserved = le16(b, 14);
            let fats = u32::from(b[16]);
            let root_entries = le16(b, 17);
            let total = match le16(b, 19) {
                0 => le32(b, 32),
                n => n,
            };
            let fat16_size = le16(b, 22);
            let fat_blocks = if fat16_size == 0 {
                le32(b, 36)
            } else {
                fat16_size
            };
            let per_cluster = u32::from(b[13]).max(1);
            let root_blocks = (root_entries * 32).div_ceil(512);
            let data = total.saturating_sub(reserved + fats * fat_blocks + root_blocks);
            let clusters = data / per_cluster;
            (
                false,
                Geometry {
                    fat_start: lba + reserved,
                    fat_blocks,
                    fats,
                    fat32: clusters >= 65525,
                    clusters,
                },
            )
        })
    }

    /// Bytes per FAT cell, and cells per block.
    fn cells(&self) -> (u32, u32) {
        let width = if self.fat32 { 4 } else { 2 };
        (width, 512 / width)
    }

    /// Block `block` of FAT number `copy`.
    fn fat_block(&self, copy: u32, block: u32) -> BlockIdx {
        BlockIdx(self.fat_start + copy * self.fat_blocks + block)
    }

    /// Marks the FAT cells after the last cluster, in the FAT block that
    /// holds it, as bad clusters. `embedded-sdmmc` 0.10 looks for a free
    /// cluster a whole FAT block at a time and takes a free cell past the
    /// end of the volume, whose data would land beyond the partition (on a
    /// full volume: a device error instead of "disk full", or another
    /// partition's blocks). Cells already marked are left alone.
    pub(crate) fn fence_fat_tail<D, T, const DIRS: usize, const FILES: usize>(
        &self,
        vm: &VolumeManager<D, T, DIRS, FILES, 1>,
    ) -> Result<(), SdError>
    where
        D: BlockDevice,
        T: TimeSource,
    {
        let (width, per_block) = self.cells();
        let first_past = self.clusters + 2;
        let block = first_past / per_block;
        if first_past.is_multiple_of(per_block) || block >= self.fat_blocks {
            return Ok(());
        }
        let bad: &[u8] = if self.fat32 {
            &[0xF7, 0xFF, 0xFF, 0x0F]
        } else {
            &[0xF7, 0xFF]
        };
        for copy in 0..self.fats {
            with_block(vm, self.fat_block(copy, block), |b| {
                let mut dirty = false;
                let from = (first_past % per_block * width) as usize;
                for cell in b[from..].chunks_exact_mut(width as usize) {
                    if cell.iter().all(|&x| x == 0) {
                        cell.copy_from_slice(bad);
                        dirty = true;
                    }
                }
                (dirty, ())
            })?;
        }
        Ok(())
    }

    /// Marks every cluster of the chain from `first` free in every FAT. A
    /// damaged chain (a loop, a free or out-of-range link) stops the walk.
    pub(crate) fn free_chain<D, T, const DIRS: usize, const FILES: usize>(
        &self,
        vm: &VolumeManager<D, T, DIRS, FILES, 1>,
        first: u32,
    ) -> Result<(), SdError>
    where
        D: BlockDevice,
        T: TimeSource,
    {
        let (width, per_block) = self.cells();
        let last = self.clusters + 1;
        let mut cluster = first;
        let mut steps = 0;
        while (2..=last).contains(&cluster) && steps <= self.clusters {
            let block = cluster / per_block;
            if block >= self.fat_blocks {
                break;
            }
            // Free every link of the chain that stays in this FAT block, then
            // write the block to each FAT.
            let mut image = [0u8; 512];
            let next = with_block(vm, self.fat_block(0, block), |b| {
                let mut c = cluster;
                while (2..=last).contains(&c) && c / per_block == block && steps <= self.clusters {
                    let at = (c % per_block * width) as usize;
                    let next = if self.fat32 {
                        let v = le32(b, at);
                        b[at..at + 4].copy_from_slice(&(v & 0xF000_0000).to_le_bytes());
                        v & 0x0FFF_FFFF
                    } else {
                        let v = le16(b, at);
                        b[at..at + 2].copy_from_slice(&[0, 0]);
                        if v >= 0xFFF8 {
                            0x0FFF_FFFF
                        } else {
                            v
                        }
                    };
                    steps += 1;
                    c = next;
                }
                image.copy_from_slice(&b[..]);
                (true, c)
            })?;
            for copy in 1..self.fats {
                with_block(vm, self.fat_block(copy, block), |b| {
                    b.copy_from_slice(&image);
                    (true, ())
                })?;
            }
            cluster = next;
        }
        Ok(())
    }
}

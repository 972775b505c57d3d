//! [`format`]: an empty FAT16 volume in one MBR partition, the layout
//! `embedded-sdmmc` mounts (it reads MBR-partitioned media only, FAT16/32).

use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};

use crate::ErrorKind;

use super::SdError;

/// Where the partition starts: 1 MiB, as partitioning tools align it.
const START: u32 = 2048;
const RESERVED: u32 = 1;
const FATS: u32 = 2;
const ROOT_ENTRIES: u32 = 512;
const ROOT_BLOCKS: u32 = ROOT_ENTRIES * 32 / 512;
/// FAT16 holds 4085..=65524 clusters.
const MIN_CLUSTERS: u32 = 4085;
const MAX_CLUSTERS: u32 = 65524;

/// Sizes of the FAT16 volume on `total` blocks of the partition: blocks per
/// cluster and per FAT.
fn layout(total: u32) -> Option<(u32, u32)> {
    let mut per_cluster = 1;
    while per_cluster <= 64 {
        let rough = total.saturating_sub(RESERVED + ROOT_BLOCKS) / per_cluster;
        // At most 65 536 blocks: FAT16 cells of a partition under 2 TiB.
        let fat_blocks = ((u64::from(rough) + 2) * 2).div_ceil(512) as u32;
        let data = total.saturating_sub(RESERVED + ROOT_BLOCKS + FATS * fat_blocks);
        let clusters = data / per_cluster;
        if clusters < MIN_CLUSTERS {
            return None;
        }
        if clusters <= MAX_CLUSTERS {
            return Some((per_cluster, fat_blocks));
        }
        per_cluster *= 2;
    }
    None
}

/// Writes an MBR with one FAT16 partition (type 0x0E) filling `device` from
/// 1 MiB on, and an empty FAT16 file system in it (two FATs, 512 root
/// entries, clusters of 512 bytes to 32 KiB). `device` must hold 4 MiB to
/// 2 GiB; larger cards come formatted FAT32 (`mkfs.fat`, the SD
/// Association's formatter) and mount as they are.
///
/// Everything the volume needs is written (boot sector, FATs, root
/// directory); the data area is left as it was.
pub fn format<D: BlockDevice>(device: &D) -> Result<(), SdError> {
    let io = |_| SdError::new(ErrorKind::Io, "block device error");
    let blocks = device.num_blocks().map_err(io)?.0;
    let too_small = SdError::new(ErrorKind::Other, "FAT16 needs 4 MiB to 2 GiB");
    let total = blocks.checked_sub(START).ok_or(too_small)?;
    let (per_cluster, fat_blocks) = layout(total).ok_or(too_small)?;

    let mut mbr = Block::new();
    let part = &mut mbr[446..462];
    part[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]); // CHS: use LBA
    part[4] = 0x0E; // FAT16, LBA
    part[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    part[8..12].copy_from_slice(&START.to_le_bytes());
    part[12..16].copy_from_slice(&total.to_le_bytes());
    mbr[510..512].copy_from_slice(&[0x55, 0xAA]);

    let mut boot = Block::new();
    boot[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    boot[3..11].copy_from_slice(b"FERRY   ");
    boot[11..13].copy_from_slice(&512u16.to_le_bytes());
    boot[13] = per_cluster as u8;
    boot[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
    boot[16] = FATS as u8;
    boot[17..19].copy_from_slice(&(ROOT_ENTRIES as u16).to_le_bytes());
    match u16::try_from(total) {
        Ok(small) => boot[19..21].copy_from_slice(&small.to_le_bytes()),
        Err(_) => boot[32..36].copy_from_slice(&total.to_le_bytes()),
    }
    boot[21] = 0xF8; // fixed disk
    boot[22..24].copy_from_slice(&(fat_blocks as u16).to_le_bytes());
    boot[24..26].copy_from_slice(&63u16.to_le_bytes()); // sectors per track
    boot[26..28].copy_from_slice(&255u16.to_le_bytes()); // heads
    boot[28..32].copy_from_slice(&START.to_le_bytes()); // hidden sectors
    boot[36] = 0x80; // drive number
    boot[38] = 0x29; // extended boot signature
    boot[39..43].copy_from_slice(&total.wrapping_mul(2_654_435_761).to_le_bytes()); // serial
    boot[43..54].copy_from_slice(b"NO NAME    ");
    boot[54..62].copy_from_slice(b"FAT16   ");
    boot[510..512].copy_from_slice(&[0x55, 0xAA]);

    let mut fat_head = Block::new();
    fat_head[0..4].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF]);
    let zero = Block::new();

    let base = BlockIdx(START);
    let write = |block: &Block, idx: BlockIdx| device.write(core::slice::from_ref(block), idx);
    // Clear the FATs and the root directory, then write the FAT heads, the
    // boot sector and last the MBR, so a cut leaves no half-valid volume.
    let meta = FATS * fat_blocks + ROOT_BLOCKS;
    for i in 0..meta {
        write(&zero, base + BlockCount(RESERVED + i)).map_err(io)?;
    }
    for fat in 0..FATS {
        write(&fat_head, base + BlockCount(RESERVED + fat * fat_blocks)).map_err(io)?;
    }
    write(&boot, base).map_err(io)?;
    write(&mbr, BlockIdx(0)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        // 4 MiB: 512-byte clusters; 2 GiB: 32 KiB clusters.
        let (pc, fat) = layout(4 * 2048 - START).unwrap();
        assert_eq!(pc, 1);
        assert!(fat >= 16);
        assert_eq!(layout(2 * 1024 * 2048 - START).map(|l| l.0), Some(64));
        assert_eq!(layout(3 * 2048 - START), None);
        assert_eq!(layout(4 * 1024 * 2048 - START), None);
        assert_eq!(layout(u32::MAX), None);
    }
}

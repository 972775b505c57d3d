//! Power loss during an upload that replaces a file, at every write
//! operation: the upload writes a temporary file in 1 KiB chunks and renames
//! it over the target, as the FTP engine does. After each cut the surviving
//! bytes are mounted afresh.
//!
//! littlefs must mount cleanly and hold exactly the old or exactly the new
//! target, and so must FAT through `embedded-sdmmc` (whose adapter orders its
//! directory-entry writes for that). FAT through `fatfs` promises nothing;
//! for it the test only checks that a cut, the remount and reading back
//! never panic.
#![cfg(any(feature = "littlefs2", feature = "fatfs", feature = "sdmmc"))]

mod common;

use common::try_read;

use ferry_fs::block::{CutOff, RamDisk};
use ferry_fs::embedded_io::Write;
use ferry_fs::{FileSystem, WriteMode};

const TARGET: &[u8] = b"/data/target.bin";
const TEMP: &[u8] = b"/data/.target.bin.part";

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The engine's upload: temporary file, 1 KiB chunks, close, rename over the
/// target; on the first error, try to remove the temporary file and stop.
fn upload<F: FileSystem>(fs: &mut F, data: &[u8]) -> bool {
    upload_via(fs, TEMP, data)
}

/// [`upload`] through the temporary `temp`.
fn upload_via<F: FileSystem>(fs: &mut F, temp: &[u8], data: &[u8]) -> bool {
    let ok = (|| {
        let mut f = fs.open_write(temp, WriteMode::Truncate).ok()?;
        for chunk in data.chunks(1024) {
            if f.write_all(chunk).is_err() {
                let _ = fs.close(f);
                return None;
            }
        }
        fs.close(f).ok()?;
        fs.rename(temp, TARGET).ok()
    })()
    .is_some();
    if !ok {
        let _ = fs.remove_file(temp);
    }
    ok
}

fn write<F: FileSystem>(fs: &mut F, path: &[u8], data: &[u8]) {
    let mut f = fs.open_write(path, WriteMode::Truncate).unwrap();
    f.write_all(data).unwrap();
    fs.close(f).unwrap();
}

#[cfg(feature = "littlefs2")]
mod littlefs {
    use super::*;
    use ferry_fs::block::BlockDevice;
    use ferry_fs::embedded_io::{Seek, SeekFrom};
    use ferry_fs::littlefs::{self, LfsStorage};

    const BLOCK: usize = 512;
    const BLOCKS: usize = 96;

    type Ram = RamDisk<Vec<u8>>;

    /// Mounts `device` and runs `f`; panics if it does not mount.
    fn with_volume<D: BlockDevice, R>(
        device: D,
        f: impl FnOnce(&mut littlefs::LittleFs<'_, LfsStorage<D, BLOCK, BLOCKS>>) -> R,
    ) -> (R, D) {
        let mut storage = LfsStorage::<D, BLOCK, BLOCKS>::new(device).unwrap();
        let r = littlefs::mount_and_then(&mut storage, f).expect("the volume mounts");
        (r, storage.into_inner())
    }

    /// A volume holding the old target and a bystander file.
    fn base(old: &[u8]) -> Vec<u8> {
        let mut storage = LfsStorage::<Ram, BLOCK, BLOCKS>::new(
            RamDisk::new(vec![0; BLOCK * BLOCKS], BLOCK).unwrap(),
        )
        .unwrap();
        littlefs::format(&mut storage).unwrap();
        let ((), disk) = with_volume(storage.into_inner(), |fs| {
            fs.create_dir(b"/data").unwrap();
            write(fs, TARGET, old);
            write(fs, b"/data/bystander", b"untouched");
        });
        disk.into_inner()
    }

    /// What a cut left at the target.
    #[derive(Debug, Default)]
    struct Outcomes {
        old: usize,
        new: usize,
        /// Cut points after which the target was missing or neither version.
        broken: Vec<u64>,
    }

    type Upload =
        fn(&mut littlefs::LittleFs<'_, LfsStorage<CutOff<Ram>, BLOCK, BLOCKS>>, &[u8]) -> bool;

    /// Cuts the power at every write operation of `upload` replacing `old`
    /// by `new`, and mounts what survived each time.
    fn cut_everywhere(old: &[u8], new: &[u8], upload: Upload) -> Outcomes {
        let base = base(old);
        // A dry run counts the upload's write operations.
        let dev = CutOff::unlimited(RamDisk::new(base.clone(), BLOCK).unwrap());
        let (done, dev) = with_volume(dev, |fs| upload(fs, new));
        assert!(done);
        let total = dev.writes();
        assert!(total >= 3, "{total} write operations");

        let mut outcomes = Outcomes::default();
        for cut in 0..=total + 1 {
            let dev = CutOff::new(RamDisk::new(base.clone(), BLOCK).unwrap(), cut);
            let (done, dev) = with_volume(dev, |fs| upload(fs, new));
            assert_eq!(done, cut >= total, "cut at {cut} of {total}");
            let bytes = dev.into_inner().into_inner();
            // A fresh mount of what survived.
            let (target, _) = with_volume(RamDisk::new(bytes, BLOCK).unwrap(), |fs| {
                let target = try_read(fs, TARGET);
                assert_eq!(try_read(fs, b"/data/bystander").unwrap(), b"untouched");
                // The volume takes writes again.
                let _ = fs.remove_file(TEMP);
                write(fs, b"/data/after", b"still works");
                assert_eq!(try_read(fs, b"/data/after").unwrap(), b"still works");
                target
            });
            match target {
                Some(t) if t == old => outcomes.old += 1,
                Some(t) if t == new => outcomes.new += 1,
                _ => outcomes.broken.push(cut),
            }
        }
        eprintln!("littlefs: {total} write operations: {outcomes:?}");
        outcomes
    }

    /// The engine's upload ([`upload`]) on this volume type.
    fn engine_upload(
        fs: &mut littlefs::LittleFs<'_, LfsStorage<CutOff<Ram>, BLOCK, BLOCKS>>,
        data: &[u8],
    ) -> bool {
        upload(fs, data)
    }

    /// A replacement that is not atomic: remove the target, then rename.
    fn upload_remove_then_rename(
        fs: &mut littlefs::LittleFs<'_, LfsStorage<CutOff<Ram>, BLOCK, BLOCKS>>,
        data: &[u8],
    ) -> bool {
        (|| {
            let mut f = fs.open_write(TEMP, WriteMode::Truncate).ok()?;
            f.write_all(data).ok()?;
            fs.close(f).ok()?;
            fs.remove_file(TARGET).ok()?;
            fs.rename(TEMP, TARGET).ok()
        })()
        .is_some()
    }

    #[test]
    fn replacing_upload_is_old_or_new_at_every_cut() {
        let o = cut_everywhere(&content(3000, 1), &content(7000, 2), engine_upload);
        assert!(o.broken.is_empty(), "broken at cuts {:?}", o.broken);
        assert!(o.old > 0 && o.new > 0, "{o:?}");
    }

    #[test]
    fn replacing_a_large_file_by_a_small_one() {
        let o = cut_everywhere(&content(9000, 3), &content(100, 4), engine_upload);
        assert!(o.broken.is_empty(), "broken at cuts {:?}", o.broken);
        assert!(o.old > 0 && o.new > 0, "{o:?}");
    }

    /// Where each littlefs block of a file ends, as file positions: block 0
    /// holds `BLOCK` bytes of data, block `i > 0` starts with `ctz(i) + 1`
    /// pointers of 4 bytes.
    fn block_ends(up_to: usize) -> Vec<usize> {
        let mut ends = vec![0];
        let mut end = 0;
        for i in 1usize.. {
            end += BLOCK
                - if i == 1 {
                    0
                } else {
                    4 * ((i - 1).trailing_zeros() as usize + 1)
                };
            if end > up_to {
                break;
            }
            ends.push(end);
        }
        ends
    }

    /// A new file uploaded in place (as the engine writes a new file, so a
    /// cut upload can be resumed), cut at every write operation: afterwards
    /// the file is missing or a prefix of the upload that ends at a littlefs
    /// block end (or is all of it), at most one block short of what the
    /// writes had taken; and resuming from there (`REST` + `STOR`) gives the
    /// whole file.
    #[test]
    fn in_place_upload_keeps_whole_blocks_at_every_cut() {
        let data = content(7000, 5);
        let ends = block_ends(data.len());
        let base = base(b"old");
        /// Uploads in 1 KiB writes; returns the bytes the writes took.
        fn upload_new(
            fs: &mut littlefs::LittleFs<'_, LfsStorage<CutOff<Ram>, BLOCK, BLOCKS>>,
            data: &[u8],
        ) -> usize {
            let Ok(mut f) = fs.open_write(b"/data/new.bin", WriteMode::Truncate) else {
                return 0;
            };
            let mut taken = 0;
            while taken < data.len() {
                match f.write(&data[taken..(taken + 1024).min(data.len())]) {
                    Ok(n) => taken += n,
                    Err(_) => break,
                }
            }
            let _ = fs.close(f);
            taken
        }
        let dev = CutOff::unlimited(RamDisk::new(base.clone(), BLOCK).unwrap());
        let (taken, dev) = with_volume(dev, |fs| upload_new(fs, &data));
        assert_eq!(taken, data.len());
        let total = dev.writes();

        let mut partial = 0;
        for cut in 0..=total {
            let dev = CutOff::new(RamDisk::new(base.clone(), BLOCK).unwrap(), cut);
            let (taken, dev) = with_volume(dev, |fs| upload_new(fs, &data));
            let bytes = dev.into_inner().into_inner();
            let (kept, _) = with_volume(RamDisk::new(bytes, BLOCK).unwrap(), |fs| {
                let kept = try_read(fs, b"/data/new.bin");
                if let Some(kept) = &kept {
                    // Resume the upload where the cut left it.
                    let mut f = fs.open_write(b"/data/new.bin", WriteMode::Update).unwrap();
                    f.seek(SeekFrom::Start(kept.len() as u64)).unwrap();
                    f.write_all(&data[kept.len()..]).unwrap();
                    fs.close(f).unwrap();
                    assert!(
                        try_read(fs, b"/data/new.bin").unwrap() == data,
                        "cut at {cut}"
                    );
                }
                kept
            });
            let Some(kept) = kept else { continue };
            assert!(kept == data[..kept.len()], "cut at {cut}: not a prefix");
            assert!(
                kept.len() == data.len() || ends.contains(&kept.len()),
                "cut at {cut}: {} bytes kept, not at a block end",
                kept.len()
            );
            assert!(
                kept.len() + BLOCK >= taken,
                "cut at {cut}: {} bytes kept of {taken} taken",
                kept.len()
            );
            partial += usize::from(!kept.is_empty() && kept.len() < data.len());
        }
        assert!(partial > 5, "{partial} cuts kept part of the upload");
    }

    /// The harness has teeth: removing the target before renaming loses it
    /// at the cut in between.
    #[test]
    fn remove_then_rename_is_caught() {
        let o = cut_everywhere(
            &content(3000, 1),
            &content(7000, 2),
            upload_remove_then_rename,
        );
        assert!(!o.broken.is_empty(), "{o:?}");
    }
}

#[cfg(feature = "fatfs")]
mod fat {
    use super::*;
    use ferry_fs::fat::{self, FatFs};

    const SIZE: usize = 256 << 10;

    fn base(old: &[u8]) -> Vec<u8> {
        let mut disk = RamDisk::new(vec![0u8; SIZE], 512).unwrap();
        fat::format(&mut disk).unwrap();
        {
            let volume = fat::mount(&mut disk).unwrap();
            let mut fs = FatFs::new(&volume);
            fs.create_dir(b"/data").unwrap();
            write(&mut fs, TARGET, old);
            volume.unmount().unwrap();
        }
        disk.into_inner()
    }

    /// FAT gives no guarantee: only that nothing panics, during the cut
    /// upload, the remount, or reading and listing afterwards.
    #[test]
    fn cut_upload_never_panics() {
        let old = content(3000, 1);
        let new = content(7000, 2);
        let base = base(&old);
        let mut dev = CutOff::unlimited(RamDisk::new(base.clone(), 512).unwrap());
        {
            let volume = fat::mount(&mut dev).unwrap();
            assert!(upload(&mut FatFs::new(&volume), &new));
        }
        let total = dev.writes();
        assert!(total > 10, "{total} write operations");

        let mut intact = 0;
        for cut in 0..=total {
            let mut dev = CutOff::new(RamDisk::new(base.clone(), 512).unwrap(), cut);
            if let Ok(volume) = fat::mount(&mut dev) {
                upload(&mut FatFs::new(&volume), &new);
            }
            let bytes = dev.into_inner().into_inner();
            let Ok(volume) = fat::mount(RamDisk::new(bytes, 512).unwrap()) else {
                continue;
            };
            let mut fs = FatFs::new(&volume);
            let target = try_read(&mut fs, TARGET);
            if target.as_deref() == Some(&old[..]) || target.as_deref() == Some(&new[..]) {
                intact += 1;
            }
            if let Ok(mut dir) = fs.open_dir(b"/data") {
                let mut name = [0u8; 255];
                while let Ok(Some(_)) = fs.read_dir(&mut dir, &mut name) {}
            };
        }
        // Most cut points leave one version or the other, but that is luck.
        eprintln!(
            "FAT: {intact} of {} cut points left a whole file",
            total + 1
        );
    }
}

#[cfg(feature = "sdmmc")]
mod sdmmc {
    use super::*;
    use ferry_fs::block::BlockDevice;
    use ferry_fs::sdmmc::{self, SdBlocks, SdFat, UnixClock, VolumeManager};

    /// The engine's temporary name (stored as `~FP1.TMP`).
    const ENGINE_TEMP: &[u8] = b"/data/.1.ferry-part";
    const SIZE: usize = 4 << 20;

    fn now() -> u64 {
        1_700_000_000
    }

    /// Mounts `device` and runs `f`; panics if it does not mount.
    fn with_volume<D: BlockDevice, R>(
        device: D,
        f: impl FnOnce(&mut SdFat<'_, SdBlocks<D>, UnixClock>) -> R,
    ) -> (R, D) {
        let manager = VolumeManager::new(SdBlocks::new(device), UnixClock(now));
        let r = {
            let mut fs = SdFat::open(&manager).expect("the volume mounts");
            f(&mut fs)
        };
        (r, manager.free().0.into_inner())
    }

    fn base(old: &[u8]) -> Vec<u8> {
        let blocks = SdBlocks::new(RamDisk::new(vec![0u8; SIZE], 512).unwrap());
        sdmmc::format(&blocks).unwrap();
        let ((), disk) = with_volume(blocks.into_inner(), |fs| {
            fs.create_dir(b"/data").unwrap();
            write(fs, TARGET, old);
            write(fs, b"/data/other.bin", b"untouched");
        });
        disk.into_inner()
    }

    /// Cuts the power at every write operation of the engine's replacing
    /// upload, mounts what survived, and checks the target is exactly the
    /// old or exactly the new file; the volume then takes writes again.
    fn cut_everywhere(old: &[u8], new: &[u8]) -> (usize, usize) {
        let base = base(old);
        let dev = CutOff::unlimited(RamDisk::new(base.clone(), 512).unwrap());
        let (done, dev) = with_volume(dev, |fs| upload_via(fs, ENGINE_TEMP, new));
        assert!(done);
        let total = dev.writes();
        assert!(total >= 3, "{total} write operations");
        let (mut olds, mut news) = (0, 0);
        for cut in 0..=total + 1 {
            let dev = CutOff::new(RamDisk::new(base.clone(), 512).unwrap(), cut);
            let (done, dev) = with_volume(dev, |fs| upload_via(fs, ENGINE_TEMP, new));
            assert_eq!(done, cut >= total, "cut at {cut} of {total}");
            let bytes = dev.into_inner().into_inner();
            let (target, _) = with_volume(RamDisk::new(bytes, 512).unwrap(), |fs| {
                let target = try_read(fs, TARGET);
                assert_eq!(try_read(fs, b"/data/other.bin").unwrap(), b"untouched");
                // The start-up cleanup removes a leftover temporary.
                let _ = fs.remove_file(ENGINE_TEMP);
                write(fs, b"/data/after", b"still works");
                assert_eq!(try_read(fs, b"/data/after").unwrap(), b"still works");
                target
            });
            match target {
                Some(t) if t == old => olds += 1,
                Some(t) if t == new => news += 1,
                t => panic!(
                    "cut at {cut} of {total}: target is {:?}",
                    t.map(|t| t.len())
                ),
            }
        }
        eprintln!("sdmmc: {total} write operations: {olds} old, {news} new");
        (olds, news)
    }

    #[test]
    fn replacing_upload_is_old_or_new_at_every_cut() {
        let (old, new) = cut_everywhere(&content(3000, 1), &content(7000, 2));
        assert!(old > 0 && new > 0);
    }

    #[test]
    fn replacing_a_large_file_by_a_small_one() {
        let (old, new) = cut_everywhere(&content(9000, 3), &content(100, 4));
        assert!(old > 0 && new > 0);
    }
}

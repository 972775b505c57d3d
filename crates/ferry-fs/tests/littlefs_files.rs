//! littlefs files kept open between calls: what an upload costs the medium
//! (erases and programmed bytes), what a power cut at any moment keeps
//! (the medium's bytes mounted afresh mid-upload), and the file slots
//! (exhaustion, files dropped or leaked instead of closed).
#![cfg(feature = "littlefs2")]

mod common;

use common::try_read;

use std::cell::RefCell;
use std::rc::Rc;

use ferry_fs::block::{BlockDevice, BlockError, RamDisk};
use ferry_fs::embedded_io::{Read as _, Seek as _, SeekFrom, Write as _};
use ferry_fs::littlefs::{self, FileSlots, LfsError, LfsStorage, LittleFs};
use ferry_fs::{Error as _, ErrorKind, FileSystem, WriteMode};

/// A RAM disk whose bytes and counters stay reachable while it is mounted:
/// a test can copy the bytes at any moment, which is what a power cut at
/// that moment would leave.
#[derive(Debug, Clone)]
struct Shared(Rc<RefCell<Medium>>);

#[derive(Debug)]
struct Medium {
    disk: RamDisk<Vec<u8>>,
    erases: u64,
    programmed: u64,
}

impl Shared {
    fn new(len: usize, block: usize) -> Shared {
        Shared(Rc::new(RefCell::new(Medium {
            disk: RamDisk::new(vec![0u8; len], block).unwrap(),
            erases: 0,
            programmed: 0,
        })))
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.borrow().disk.as_bytes().to_vec()
    }

    /// Erases and programmed bytes so far.
    fn counts(&self) -> (u64, u64) {
        let m = self.0.borrow();
        (m.erases, m.programmed)
    }
}

impl BlockDevice for Shared {
    fn block_size(&self) -> usize {
        self.0.borrow().disk.block_size()
    }
    fn block_count(&self) -> usize {
        self.0.borrow().disk.block_count()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.borrow_mut().disk.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let mut m = self.0.borrow_mut();
        m.programmed += data.len() as u64;
        m.disk.program(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        let mut m = self.0.borrow_mut();
        m.erases += 1;
        m.disk.erase(offset, len)
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A formatted volume of `BLOCKS` blocks of `BLOCK` bytes.
fn volume<const BLOCK: usize, const BLOCKS: usize>() -> (Shared, LfsStorage<Shared, BLOCK, BLOCKS>)
{
    let medium = Shared::new(BLOCK * BLOCKS, BLOCK);
    let mut storage = LfsStorage::<_, BLOCK, BLOCKS>::new(medium.clone()).unwrap();
    littlefs::format(&mut storage).unwrap();
    (medium, storage)
}

/// `path` as a fresh mount of `bytes` sees it: what a power cut when the
/// bytes were taken would have left.
fn after_cut<const BLOCK: usize, const BLOCKS: usize>(
    bytes: Vec<u8>,
    path: &[u8],
) -> Option<Vec<u8>> {
    let disk = RamDisk::new(bytes, BLOCK).unwrap();
    let mut storage = LfsStorage::<_, BLOCK, BLOCKS>::new(disk).unwrap();
    littlefs::mount_and_then(&mut storage, |fs| try_read(fs, path)).expect("the volume mounts")
}

/// Where each littlefs block of a file ends, as file positions: block 0
/// holds `block` bytes of data, block `i > 0` starts with `ctz(i) + 1`
/// pointers of 4 bytes.
fn block_ends(block: usize, up_to: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut end = 0;
    for i in 0usize.. {
        let pointers = if i == 0 {
            0
        } else {
            4 * (i.trailing_zeros() as usize + 1)
        };
        end += block - pointers;
        if end > up_to {
            break;
        }
        ends.push(end);
    }
    ends
}

/// Uploads `len` bytes in `chunk`-byte writes to a fresh volume of
/// `BLOCKS` blocks of `BLOCK` bytes and reads them back; returns the erases
/// and programmed bytes the upload took (the format not counted).
fn upload<const BLOCK: usize, const BLOCKS: usize>(len: usize, chunk: usize) -> (u64, u64) {
    let (medium, mut storage) = volume::<BLOCK, BLOCKS>();
    let (e0, p0) = medium.counts();
    let data = pattern(len);
    littlefs::mount_and_then(&mut storage, |fs| {
        let mut f = fs.open_write(b"/up.bin", WriteMode::Truncate).unwrap();
        for c in data.chunks(chunk) {
            f.write_all(c).unwrap();
        }
        fs.close(f).unwrap();
    })
    .unwrap();
    let (e1, p1) = medium.counts();
    let (erases, programmed) = (e1 - e0, p1 - p0);
    littlefs::mount_and_then(&mut storage, |fs| {
        assert!(try_read(fs, b"/up.bin").unwrap() == data, "read back");
    })
    .unwrap();
    eprintln!(
        "{len} bytes in {chunk}-byte writes, {BLOCK}-byte blocks: \
         {erases} erases, {programmed} bytes programmed"
    );
    (erases, programmed)
}

/// A 256 KiB upload in 2 KiB writes on 128 KiB blocks (the STM32F429's
/// flash sectors) erases the blocks it fills, not one per write, and
/// programs little more than the data. (Opening and closing the file on
/// every write, as this adapter once did, took 129 erases and programmed
/// 8.5 MB: each write copied the partly written last block.)
#[test]
fn upload_erases_the_blocks_it_fills() {
    let len = 256 << 10;
    let (erases, programmed) = upload::<{ 128 << 10 }, 16>(len, 2048);
    // 3 data blocks, and room for a metadata compaction.
    assert!(erases <= 5, "{erases} erases");
    assert!(
        programmed < len as u64 * 11 / 10,
        "{programmed} bytes programmed"
    );
}

/// The same on 4 KiB blocks (host images, the QEMU board): 65 data blocks
/// (once 192 erases).
#[test]
fn upload_erases_the_blocks_it_fills_small_blocks() {
    let len = 256 << 10;
    let (erases, programmed) = upload::<4096, 256>(len, 2048);
    assert!(erases <= 65 + 4, "{erases} erases");
    assert!(
        programmed < len as u64 * 11 / 10,
        "{programmed} bytes programmed"
    );
}

/// What a power cut keeps of an upload in progress: the file as opened
/// (empty: truncating is committed at once), then the upload up to the last
/// littlefs block it filled, then all of it once closed. Writes stop at
/// block ends, and are never empty.
#[test]
fn upload_is_committed_block_by_block() {
    const BLOCK: usize = 512;
    const BLOCKS: usize = 64;
    let data = pattern(10_000);
    let ends = block_ends(BLOCK, data.len());
    let (medium, mut storage) = volume::<BLOCK, BLOCKS>();
    littlefs::mount_and_then(&mut storage, |fs| {
        let mut f = fs.open_write(b"/old", WriteMode::Truncate).unwrap();
        f.write_all(b"the old contents").unwrap();
        fs.close(f).unwrap();

        let mut f = fs.open_write(b"/old", WriteMode::Truncate).unwrap();
        assert_eq!(
            after_cut::<BLOCK, BLOCKS>(medium.bytes(), b"/old").unwrap(),
            b""
        );
        let mut pos = 0;
        let mut seen = Vec::new();
        while pos < data.len() {
            let n = f.write(&data[pos..(pos + 700).min(data.len())]).unwrap();
            assert!(n > 0);
            pos += n;
            // A write ends at the next block end if it reaches it.
            if let Some(&end) = ends.iter().find(|&&e| e > pos - n) {
                assert!(pos <= end, "wrote across the block end {end}");
            }
            let kept = after_cut::<BLOCK, BLOCKS>(medium.bytes(), b"/old").unwrap();
            let last_end = ends.iter().copied().rfind(|&e| e <= pos);
            assert_eq!(kept.len(), last_end.unwrap_or(0), "cut at {pos}");
            assert!(kept == data[..kept.len()], "a prefix of the upload");
            seen.push(kept.len());
        }
        // Commits happened along the way, not only at the end.
        assert!(ends.len() >= 15 && seen.iter().filter(|&&k| k > 0).count() > 10);
        f.flush().unwrap();
        assert!(after_cut::<BLOCK, BLOCKS>(medium.bytes(), b"/old").unwrap() == data);
        fs.close(f).unwrap();
        assert!(after_cut::<BLOCK, BLOCKS>(medium.bytes(), b"/old").unwrap() == data);

        // An upload resumes where the cut left it (REST + STOR).
        let resume_at = ends[3];
        let mut f = fs.open_write(b"/resumed", WriteMode::Truncate).unwrap();
        f.write_all(&data[..resume_at + 100]).unwrap();
        let bytes = medium.bytes();
        drop(f);
        let disk = RamDisk::new(bytes, BLOCK).unwrap();
        let mut cut = LfsStorage::<_, BLOCK, BLOCKS>::new(disk).unwrap();
        littlefs::mount_and_then(&mut cut, |fs| {
            let size = fs.metadata(b"/resumed").unwrap().size;
            assert_eq!(size, resume_at as u64);
            let mut f = fs.open_write(b"/resumed", WriteMode::Update).unwrap();
            f.seek(SeekFrom::Start(size)).unwrap();
            f.write_all(&data[resume_at..]).unwrap();
            fs.close(f).unwrap();
            assert!(try_read(fs, b"/resumed").unwrap() == data);
        })
        .unwrap();
    })
    .unwrap();
}

/// Reads, seeks and writes on one open file see each other, across block
/// ends, with seeks before and beyond the end.
#[test]
fn open_file_reads_back_and_seeks() {
    let (_, mut storage) = volume::<512, 64>();
    littlefs::mount_and_then(&mut storage, |fs| {
        let data = pattern(3000);
        let mut f = fs.open_write(b"/f", WriteMode::Truncate).unwrap();
        f.write_all(&data).unwrap();
        assert_eq!(f.seek(SeekFrom::Start(1000)).unwrap(), 1000);
        let mut buf = [0u8; 600];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[1000..1600]);
        assert_eq!(f.seek(SeekFrom::End(0)).unwrap(), 3000);
        // Beyond the end: a write there fills the gap with zeros.
        f.seek(SeekFrom::Start(3100)).unwrap();
        f.write_all(b"tail").unwrap();
        // Beyond what littlefs takes: reads end, writes are out of space.
        f.seek(SeekFrom::Start(5 << 30)).unwrap();
        assert_eq!(f.read(&mut buf).unwrap(), 0);
        assert_eq!(f.write(b"x").unwrap_err().fs_kind(), ErrorKind::NoSpace);
        fs.close(f).unwrap();
        let mut want = data.clone();
        want.extend_from_slice(&[0; 100]);
        want.extend_from_slice(b"tail");
        assert!(try_read(fs, b"/f").unwrap() == want);
        // A file opened for reading refuses writes.
        let mut r = fs.open_read(b"/f").unwrap();
        assert_eq!(
            r.write(b"x").unwrap_err().fs_kind(),
            ErrorKind::PermissionDenied
        );
        fs.close(r).unwrap();
    })
    .unwrap();
}

/// With every slot in use, opening fails with `NO_FREE_SLOT` (a transient
/// local error), never a panic; closing, dropping or failing to open frees
/// a slot, leaking a file keeps its slot, and the volume works throughout.
#[test]
fn file_slots_run_out_and_come_back() {
    let (_, mut storage) = volume::<512, 64>();
    littlefs::mount_and_then(&mut storage, |fs| {
        let slots = fs.file_slots();
        for name in [&b"/a"[..], b"/b", b"/c"] {
            let mut f = fs.open_write(name, WriteMode::Truncate).unwrap();
            f.write_all(name).unwrap();
            fs.close(f).unwrap();
        }
        let a = fs.open_read(b"/a").unwrap();
        let b = fs.open_read(b"/b").unwrap();
        let mut c = fs.open_write(b"/c", WriteMode::Append).unwrap();
        let mut d = fs.open_write(b"/d", WriteMode::Truncate).unwrap();
        assert_eq!(slots.in_use(), 4);
        for e in [
            fs.open_read(b"/a").unwrap_err(),
            fs.open_write(b"/e", WriteMode::Truncate).unwrap_err(),
        ] {
            assert_eq!(e, LfsError::NO_FREE_SLOT);
            assert_eq!(e.fs_kind(), ErrorKind::Other);
        }
        // The refused open created nothing.
        assert_eq!(
            fs.metadata(b"/e").unwrap_err().fs_kind(),
            ErrorKind::NotFound
        );

        // Dropped instead of closed: the slot comes back, the data stays.
        c.write_all(b"+dropped").unwrap();
        drop(c);
        assert_eq!(slots.in_use(), 3);
        assert_eq!(try_read(fs, b"/c").unwrap(), b"/c+dropped");
        // A failed open frees its slot too.
        assert_eq!(
            fs.open_read(b"/missing").unwrap_err().fs_kind(),
            ErrorKind::NotFound
        );
        assert_eq!(slots.in_use(), 3);

        // Leaked: its slot stays taken for good, and the volume keeps
        // working around the file littlefs still has open.
        d.write_all(b"leaked").unwrap();
        std::mem::forget(d);
        assert_eq!(slots.in_use(), 3);
        let c = fs.open_read(b"/c").unwrap();
        assert_eq!(fs.open_read(b"/a").unwrap_err(), LfsError::NO_FREE_SLOT);
        for f in [a, b, c] {
            fs.close(f).unwrap();
        }
        assert_eq!(slots.in_use(), 1);
        fs.rename(b"/d", b"/d2").unwrap();
        fs.remove_file(b"/b").unwrap();
        let mut e = fs.open_write(b"/e", WriteMode::Truncate).unwrap();
        e.write_all(&pattern(5000)).unwrap();
        fs.close(e).unwrap();
        assert!(try_read(fs, b"/e").unwrap() == pattern(5000));
        assert_eq!(try_read(fs, b"/a").unwrap(), b"/a");
        assert_eq!(slots.in_use(), 1);
    })
    .unwrap();
}

/// A server sizes the slots to its sessions: `LittleFs` over slots of its
/// own, here 2.
#[test]
fn slots_of_any_number() {
    use littlefs::littlefs2::fs::{Allocation, Filesystem};
    let (_, mut storage) = volume::<512, 64>();
    let slots = FileSlots::<_, 2>::new();
    let mut alloc = Allocation::new();
    let volume = Filesystem::mount(&mut alloc, &mut storage).unwrap();
    let mut fs = LittleFs::new(&volume, &slots);
    let a = fs.open_write(b"/a", WriteMode::Truncate).unwrap();
    let b = fs.open_write(b"/b", WriteMode::Truncate).unwrap();
    assert_eq!(
        fs.open_write(b"/c", WriteMode::Truncate).unwrap_err(),
        LfsError::NO_FREE_SLOT
    );
    fs.close(a).unwrap();
    fs.close(b).unwrap();
    assert_eq!(format!("{slots:?}"), "FileSlots { slots: 2, in_use: 0 }");
}

/// Overwriting the middle of a file (`REST` + `STOR` short of its end)
/// does not commit at block ends: there a commit would copy the rest of
/// the file each time. The rest is copied once, on close.
#[test]
fn overwrite_in_mid_file_copies_the_rest_once() {
    const BLOCK: usize = 512;
    let (medium, mut storage) = volume::<BLOCK, 512>();
    let old = pattern(64 << 10);
    let new = vec![0xA5; 16 << 10];
    littlefs::mount_and_then(&mut storage, |fs| {
        let mut f = fs.open_write(b"/f", WriteMode::Truncate).unwrap();
        f.write_all(&old).unwrap();
        fs.close(f).unwrap();
        let (_, p0) = medium.counts();
        let mut f = fs.open_write(b"/f", WriteMode::Update).unwrap();
        f.seek(SeekFrom::Start(1000)).unwrap();
        for c in new.chunks(1024) {
            f.write_all(c).unwrap();
        }
        fs.close(f).unwrap();
        let programmed = medium.counts().1 - p0;
        assert!(
            programmed < 2 * old.len() as u64,
            "{programmed} bytes programmed"
        );
        let mut want = old.clone();
        want[1000..1000 + new.len()].copy_from_slice(&new);
        assert!(try_read(fs, b"/f").unwrap() == want);
    })
    .unwrap();
}

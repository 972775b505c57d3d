//! The conformance suite (`tests/conformance`) against every backend: a host
//! directory (`std`), littlefs on a RAM disk (`littlefs2`) and FAT on a RAM
//! disk (`fatfs`), and FAT through `embedded-sdmmc` on a RAM disk (`sdmmc`).
//! Each backend declares what it can do in one [`Caps`].

mod conformance;

#[allow(unused_imports)]
use conformance::Caps;
#[allow(unused_imports)]
use ferry_fs::{ErrorKind, FileSystem as _, WriteMode};

/// One `#[test]` per conformance case, each on a fresh volume from
/// `$with_fs` (a function that lends a `&mut impl FileSystem` to a closure);
/// `disk_full` runs on the small volume of `$with_small_fs`.
#[allow(unused_macros)]
macro_rules! conformance_tests {
    ($with_fs:ident, $with_small_fs:ident, $caps:expr) => {
        conformance_tests!(@cases $with_fs, $caps;
            create_and_read open_errors append seek truncate_on_overwrite update_mode
            metadata list_empty list_many list_small_buffer mkdir_rmdir remove rename
            rename_over_existing long_names utf8_names odd_names case);
        #[test]
        fn disk_full() {
            $with_small_fs(|fs| crate::conformance::disk_full(fs, &$caps));
        }
    };
    (@cases $with_fs:ident, $caps:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $with_fs(|fs| crate::conformance::$case(fs, &$caps));
            }
        )*
    };
}

#[cfg(feature = "std")]
mod std_dir {
    use super::*;
    use ferry_fs::std_dir::StdDir;

    const CAPS: Caps = Caps {
        set_modified_files: true,
        set_modified_dirs: true,
        mtime_on_write: true,
        mtime_step: 1,
        set_mode: cfg!(unix),
        case_sensitive: true,
        max_name_bytes: 255,
        refused_chars: "",
        short_names: false,
    };

    fn with_fs(f: impl FnOnce(&mut StdDir)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut fs = StdDir::open(tmp.path()).unwrap();
        f(&mut fs);
    }

    /// A host directory cannot be made small without privileges, so the
    /// test re-runs itself in a child process whose file size is limited
    /// (`ulimit -f`, with `SIGXFSZ` ignored): writing past the limit fails
    /// with `EFBIG`, which `StdDir` reports as `NoSpace` like `ENOSPC`.
    fn with_small_fs(f: impl FnOnce(&mut StdDir)) {
        if std::env::var_os("FERRY_FS_SMALL_CHILD").is_some() {
            return with_fs(f);
        }
        if !cfg!(unix) {
            eprintln!("no file size limit off Unix: disk_full not run for StdDir");
            return;
        }
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 256 && exec \"$0\" \"$@\"")
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "std_dir::disk_full", "--test-threads=1"])
            .env("FERRY_FS_SMALL_CHILD", "1")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "disk_full in a size-limited child: {status}"
        );
    }

    conformance_tests!(with_fs, with_small_fs, CAPS);
}

#[cfg(feature = "littlefs2")]
mod littlefs {
    use super::*;
    use ferry_fs::block::RamDisk;
    use ferry_fs::littlefs::{self, LfsStorage, LittleFs};

    const CAPS: Caps = Caps {
        set_modified_files: true,
        set_modified_dirs: true,
        mtime_on_write: true, // with the clock these tests give it
        mtime_step: 1,
        set_mode: false,
        case_sensitive: true,
        max_name_bytes: 255,
        refused_chars: "",
        short_names: false,
    };

    type Ram = RamDisk<Vec<u8>>;

    fn run<const BS: usize, const BC: usize>(
        f: impl FnOnce(&mut LittleFs<'_, LfsStorage<Ram, BS, BC>>),
    ) {
        let disk = RamDisk::new(vec![0u8; BS * BC], BS).unwrap();
        let mut storage = LfsStorage::<_, BS, BC>::new(disk).unwrap();
        littlefs::format(&mut storage).unwrap();
        littlefs::mount_and_then(&mut storage, |fs| {
            fs.set_clock(Some(conformance::now));
            f(fs)
        })
        .unwrap();
    }

    /// 1 MiB in 4 KiB blocks.
    fn with_fs(f: impl FnOnce(&mut LittleFs<'_, LfsStorage<Ram, 4096, 256>>)) {
        run(f)
    }

    /// 32 KiB in 512-byte blocks.
    fn with_small_fs(f: impl FnOnce(&mut LittleFs<'_, LfsStorage<Ram, 512, 64>>)) {
        run(f)
    }

    conformance_tests!(with_fs, with_small_fs, CAPS);

    /// Without a clock, a written file has no time, and writing removes a
    /// time set before (it would be stale); `set_modified` still works.
    #[test]
    fn no_clock_no_stale_time() {
        let disk = RamDisk::new(vec![0u8; 64 * 512], 512).unwrap();
        let mut storage = LfsStorage::<_, 512, 64>::new(disk).unwrap();
        littlefs::mount_or_format_and_then(&mut storage, |fs| {
            conformance::write_file(fs, b"/f", b"data", WriteMode::Truncate);
            assert_eq!(fs.metadata(b"/f").unwrap().modified, None);
            fs.set_modified(b"/f", 1234).unwrap();
            assert_eq!(fs.metadata(b"/f").unwrap().modified, Some(1234));
            // Reading keeps the time; writing drops it.
            assert_eq!(conformance::read_file(fs, b"/f"), b"data");
            assert_eq!(fs.metadata(b"/f").unwrap().modified, Some(1234));
            conformance::write_file(fs, b"/f", b"more", WriteMode::Append);
            assert_eq!(fs.metadata(b"/f").unwrap().modified, None);
            // A rename keeps a stored time.
            fs.set_modified(b"/f", 99).unwrap();
            fs.rename(b"/f", b"/g").unwrap();
            assert_eq!(fs.metadata(b"/g").unwrap().modified, Some(99));
        })
        .unwrap();
    }

    /// What was written is there after mounting the same bytes again.
    #[test]
    fn survives_remount() {
        let disk = RamDisk::new(vec![0u8; 64 * 512], 512).unwrap();
        let mut storage = LfsStorage::<_, 512, 64>::new(disk).unwrap();
        littlefs::format(&mut storage).unwrap();
        littlefs::mount_and_then(&mut storage, |fs| {
            fs.create_dir(b"/d").unwrap();
            conformance::write_file(fs, "/d/Grüße".as_bytes(), &[7; 3000], WriteMode::Truncate);
        })
        .unwrap();
        let bytes = storage.into_inner().into_inner();
        let mut storage = LfsStorage::<_, 512, 64>::new(RamDisk::new(bytes, 512).unwrap()).unwrap();
        littlefs::mount_and_then(&mut storage, |fs| {
            assert_eq!(
                conformance::read_file(fs, "/d/Grüße".as_bytes()),
                vec![7; 3000]
            );
            assert_eq!(
                conformance::names(fs, b"/d"),
                vec!["Grüße".as_bytes().to_vec()]
            );
        })
        .unwrap();
    }

    /// A directory rename that would push a path below it past littlefs2's
    /// 255 bytes is refused (littlefs2 would panic listing it).
    #[test]
    fn directory_rename_keeps_paths_short() {
        with_fs(|fs| {
            fs.create_dir(b"/d").unwrap();
            let name = vec![b'n'; 250];
            let mut p = b"/d/".to_vec();
            p.extend_from_slice(&name);
            conformance::write_file(fs, &p, b"x", WriteMode::Truncate);
            let long_dir = vec![b'D'; 10];
            let mut to = b"/".to_vec();
            to.extend_from_slice(&long_dir);
            assert_eq!(
                conformance::kind(fs.rename(b"/d", &to)),
                ErrorKind::NameTooLong
            );
            assert_eq!(conformance::names(fs, b"/d"), vec![name.clone()]);
            // Shorter or equal is fine.
            fs.rename(b"/d", b"/e").unwrap();
            assert_eq!(conformance::names(fs, b"/e"), vec![name]);
        });
    }
}

#[cfg(feature = "fatfs")]
mod fat {
    use super::*;
    use ferry_fs::block::RamDisk;
    use ferry_fs::fat::{self, FatFs, FatIo};

    const CAPS: Caps = Caps {
        set_modified_files: true,
        set_modified_dirs: false,
        mtime_on_write: true,
        mtime_step: 2,
        set_mode: false,
        case_sensitive: false,
        max_name_bytes: 255,
        refused_chars: "\"*:<>?|\t",
        short_names: false,
    };

    type Ram = RamDisk<Vec<u8>>;

    fn run(size: usize, f: impl FnOnce(&mut FatFs<'_, FatIo<Ram>>)) {
        let mut disk = RamDisk::new(vec![0u8; size], 512).unwrap();
        fat::format(&mut disk).unwrap();
        let volume = fat::mount(disk).unwrap();
        f(&mut FatFs::new(&volume));
    }

    /// 4 MiB.
    fn with_fs(f: impl FnOnce(&mut FatFs<'_, FatIo<Ram>>)) {
        run(4 << 20, f)
    }

    /// 256 KiB.
    fn with_small_fs(f: impl FnOnce(&mut FatFs<'_, FatIo<Ram>>)) {
        run(256 << 10, f)
    }

    conformance_tests!(with_fs, with_small_fs, CAPS);

    /// What was written is there after mounting the same bytes again.
    #[test]
    fn survives_remount() {
        let mut disk = RamDisk::new(vec![0u8; 1 << 20], 512).unwrap();
        fat::format(&mut disk).unwrap();
        {
            let volume = fat::mount(&mut disk).unwrap();
            let mut fs = FatFs::new(&volume);
            fs.create_dir(b"/d").unwrap();
            conformance::write_file(
                &mut fs,
                "/d/Grüße".as_bytes(),
                &[7; 3000],
                WriteMode::Truncate,
            );
            fs.set_modified("/d/Grüße".as_bytes(), 1_500_000_000)
                .unwrap();
            volume.unmount().unwrap();
        }
        let volume = fat::mount(disk).unwrap();
        let mut fs = FatFs::new(&volume);
        assert_eq!(
            conformance::read_file(&mut fs, "/d/Grüße".as_bytes()),
            vec![7; 3000]
        );
        assert_eq!(
            conformance::names(&mut fs, b"/d"),
            vec!["Grüße".as_bytes().to_vec()]
        );
        // Found ignoring case, as FAT does.
        let m = fs.metadata("/D/GRÜßE".as_bytes()).unwrap();
        assert_eq!(m.modified, Some(1_500_000_000));
    }
}

#[cfg(feature = "sdmmc")]
mod sdmmc {
    use super::*;
    use ferry_fs::block::RamDisk;
    use ferry_fs::sdmmc::{self, SdBlocks, SdFat, UnixClock, VolumeManager};

    const CAPS: Caps = Caps {
        set_modified_files: true,
        set_modified_dirs: true,
        mtime_on_write: true,
        mtime_step: 2,
        set_mode: false,
        case_sensitive: false,
        max_name_bytes: 8,
        refused_chars: "\"*:<>?|\t +,;=[]",
        short_names: true,
    };

    type Blocks = SdBlocks<RamDisk<Vec<u8>>>;
    type Fs<'a> = SdFat<'a, Blocks, UnixClock>;

    fn run(size: usize, f: impl FnOnce(&mut Fs<'_>)) {
        let blocks = SdBlocks::new(RamDisk::new(vec![0u8; size], 512).unwrap());
        sdmmc::format(&blocks).unwrap();
        let manager = VolumeManager::new(blocks, UnixClock(conformance::now));
        f(&mut SdFat::open(&manager).unwrap());
    }

    /// 8 MiB.
    fn with_fs(f: impl FnOnce(&mut Fs<'_>)) {
        run(8 << 20, f)
    }

    /// 4 MiB, the smallest FAT16 volume `sdmmc::format` makes.
    fn with_small_fs(f: impl FnOnce(&mut Fs<'_>)) {
        run(4 << 20, f)
    }

    conformance_tests!(with_fs, with_small_fs, CAPS);

    /// What was written is there after mounting the same bytes again, and
    /// a removed file's clusters are free again.
    #[test]
    fn survives_remount_and_frees_space() {
        let blocks = SdBlocks::new(RamDisk::new(vec![0u8; 4 << 20], 512).unwrap());
        sdmmc::format(&blocks).unwrap();
        let manager = VolumeManager::new(blocks, UnixClock(conformance::now));
        {
            let mut fs = SdFat::open(&manager).unwrap();
            fs.create_dir(b"/d").unwrap();
            conformance::write_file(&mut fs, b"/d/data.bin", &[7; 3000], WriteMode::Truncate);
            fs.set_modified(b"/d/data.bin", 1_500_000_000).unwrap();
            fs.rename(b"/d", b"/moved").unwrap();
        }
        let (blocks, _) = manager.free();
        let bytes = blocks.into_inner().into_inner();
        let manager = VolumeManager::new(
            SdBlocks::new(RamDisk::new(bytes, 512).unwrap()),
            UnixClock(conformance::now),
        );
        let mut fs = SdFat::open(&manager).unwrap();
        assert_eq!(
            conformance::read_file(&mut fs, b"/moved/data.bin"),
            vec![7; 3000]
        );
        assert_eq!(
            conformance::names(&mut fs, b"/moved"),
            vec![b"data.bin".to_vec()]
        );
        let m = fs.metadata(b"/MOVED/DATA.BIN").unwrap();
        assert_eq!(m.modified, Some(1_500_000_000));
        // Fill, free, fill again: the same amount fits twice.
        let fill = |fs: &mut Fs<'_>| {
            let mut f = fs.open_write(b"/big", WriteMode::Truncate).unwrap();
            let mut n = 0;
            while ferry_fs::embedded_io::Write::write_all(&mut f, &[1; 4096]).is_ok() {
                n += 1;
            }
            let _ = fs.close(f);
            fs.remove_file(b"/big").unwrap();
            n
        };
        let first = fill(&mut fs);
        assert!(first > 500, "{first}");
        assert_eq!(fill(&mut fs), first);
    }
}

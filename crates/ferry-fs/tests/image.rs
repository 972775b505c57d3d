//! Image files for tools: created and formatted when missing or blank,
//! mounted when they hold a volume, refused (and left alone) otherwise.
#![cfg(all(feature = "std", any(feature = "littlefs2", feature = "fatfs")))]

use std::io::ErrorKind as IoKind;
use std::path::Path;

use ferry_fs::embedded_io::{Read, Write};
use ferry_fs::image::WithFileSystem;
use ferry_fs::{FileSystem, WriteMode};

/// Writes `/hello.txt` if given contents, and returns what it holds then.
struct Hello(Option<&'static [u8]>);

impl WithFileSystem for Hello {
    type Output = Option<Vec<u8>>;
    fn run<F: FileSystem>(self, fs: &mut F) -> Option<Vec<u8>> {
        if let Some(data) = self.0 {
            let mut f = fs.open_write(b"/hello.txt", WriteMode::Truncate).unwrap();
            f.write_all(data).unwrap();
            fs.close(f).unwrap();
        }
        let mut f = fs.open_read(b"/hello.txt").ok()?;
        let mut buf = vec![0u8; 100];
        let n = f.read(&mut buf).unwrap();
        buf.truncate(n);
        Some(buf)
    }
}

fn garbage(path: &Path, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8 | 1).collect();
    std::fs::write(path, &data).unwrap();
    data
}

#[cfg(feature = "littlefs2")]
mod littlefs {
    use super::*;
    use ferry_fs::image::{parse_size, with_littlefs, LITTLEFS_SIZES};

    #[test]
    fn created_then_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("lfs.img");
        let size = parse_size("64K");
        let got = with_littlefs(&img, size, Hello(Some(b"hi there"))).unwrap();
        assert_eq!(got.as_deref(), Some(&b"hi there"[..]));
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 10);
        // Reopened with and without the size: the file is still there.
        assert_eq!(
            with_littlefs(&img, None, Hello(None)).unwrap().as_deref(),
            Some(&b"hi there"[..])
        );
        assert_eq!(
            with_littlefs(&img, size, Hello(None)).unwrap().as_deref(),
            Some(&b"hi there"[..])
        );
        // A different size is refused.
        let e = with_littlefs(&img, Some(128 << 10), Hello(None)).unwrap_err();
        assert_eq!(e.kind(), IoKind::InvalidInput);
    }

    #[test]
    fn sizes_and_missing_images() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("lfs.img");
        let e = with_littlefs(&img, None, Hello(None)).unwrap_err();
        assert_eq!(e.kind(), IoKind::NotFound);
        let e = with_littlefs(&img, Some(100_000), Hello(None)).unwrap_err();
        assert_eq!(e.kind(), IoKind::InvalidInput);
        assert!(!img.exists(), "nothing created for a bad size");
        assert_eq!(LITTLEFS_SIZES.first(), Some(&(64 << 10)));
        assert_eq!(LITTLEFS_SIZES.last(), Some(&(1 << 30)));
        // An existing file of an unsupported size.
        std::fs::write(&img, vec![0u8; 3 * 4096 * 7]).unwrap();
        let e = with_littlefs(&img, None, Hello(None)).unwrap_err();
        assert_eq!(e.kind(), IoKind::InvalidInput);
    }

    #[test]
    fn blank_image_is_formatted_and_foreign_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank.img");
        std::fs::write(&blank, vec![0u8; 128 << 10]).unwrap();
        let got = with_littlefs(&blank, None, Hello(Some(b"x"))).unwrap();
        assert_eq!(got.as_deref(), Some(&b"x"[..]));

        let foreign = dir.path().join("foreign.img");
        let data = garbage(&foreign, 64 << 10);
        let e = with_littlefs(&foreign, None, Hello(Some(b"x"))).unwrap_err();
        assert_eq!(e.kind(), IoKind::InvalidData, "{e}");
        assert_eq!(std::fs::read(&foreign).unwrap(), data, "left alone");
    }

    /// Modification times come from the host's clock.
    #[test]
    fn times_are_stored() {
        struct Mtime;
        impl WithFileSystem for Mtime {
            type Output = Option<u64>;
            fn run<F: FileSystem>(self, fs: &mut F) -> Option<u64> {
                let f = fs.open_write(b"/t", WriteMode::Truncate).unwrap();
                fs.close(f).unwrap();
                fs.metadata(b"/t").unwrap().modified
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("lfs.img");
        let t = with_littlefs(&img, Some(64 << 10), Mtime).unwrap().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(t.abs_diff(now) < 60);
    }
}

#[cfg(feature = "fatfs")]
mod fat {
    use super::*;
    use ferry_fs::image::{open_fat, with_fat};

    #[test]
    fn created_then_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fat.img");
        let got = with_fat(&img, Some(1 << 20), Hello(Some(b"hi there"))).unwrap();
        assert_eq!(got.as_deref(), Some(&b"hi there"[..]));
        let image = open_fat(&img, None).unwrap();
        assert_eq!(image.file_system().metadata(b"/HELLO.TXT").unwrap().size, 8);
        image.unmount().unwrap();
        let e = open_fat(&img, Some(2 << 20)).unwrap_err();
        assert_eq!(e.kind(), IoKind::InvalidInput);
        let e = open_fat(dir.path().join("missing.img"), None).unwrap_err();
        assert_eq!(e.kind(), IoKind::NotFound);
    }

    #[test]
    fn blank_image_is_formatted_and_foreign_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank.img");
        std::fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
        let got = with_fat(&blank, None, Hello(Some(b"x"))).unwrap();
        assert_eq!(got.as_deref(), Some(&b"x"[..]));

        let foreign = dir.path().join("foreign.img");
        let data = garbage(&foreign, 1 << 20);
        assert!(open_fat(&foreign, None).is_err());
        assert_eq!(std::fs::read(&foreign).unwrap(), data, "left alone");
    }
}

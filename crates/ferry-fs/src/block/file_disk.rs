//! [`FileDisk`]: a block device over an image file on the host (`std`).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::{format, vec};

use super::{check_erase, checked_range, BlockDevice, BlockError, ERASED};

/// A block device over an image file: the file's bytes are the medium.
///
/// The image has a fixed size, a multiple of the block size; a new image is
/// created sparse (all zeros, which every file system here formats over).
/// [`BlockDevice::sync`] calls `fsync` (`File::sync_data`). The host's I/O
/// errors come out as [`BlockError::Io`]; the last one is kept for the
/// operator ([`FileDisk::take_last_error`]).
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    block_size: usize,
    block_count: usize,
    last_error: Option<std::io::Error>,
}

impl FileDisk {
    /// Opens an existing image for reading and writing; its length must be
    /// a non-zero multiple of `block_size`.
    pub fn open(path: impl AsRef<Path>, block_size: usize) -> std::io::Result<FileDisk> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        FileDisk::from_file(file, block_size)
    }

    /// Creates a new image of `size` bytes (a non-zero multiple of
    /// `block_size`); fails if the file exists.
    pub fn create(
        path: impl AsRef<Path>,
        size: u64,
        block_size: usize,
    ) -> std::io::Result<FileDisk> {
        check_geometry(size, block_size)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.set_len(size)?;
        FileDisk::from_file(file, block_size)
    }

    /// A device over an open file (read and write access), sized by its
    /// current length.
    pub fn from_file(file: File, block_size: usize) -> std::io::Result<FileDisk> {
        let size = file.metadata()?.len();
        let block_count = check_geometry(size, block_size)?;
        Ok(FileDisk {
            file,
            block_size,
            block_count,
            last_error: None,
        })
    }

    /// The last host I/O error behind a [`BlockError::Io`], taken out.
    pub fn take_last_error(&mut self) -> Option<std::io::Error> {
        self.last_error.take()
    }

    /// The image file.
    pub fn into_file(self) -> File {
        self.file
    }

    fn io<T>(&mut self, r: std::io::Result<T>) -> Result<T, BlockError> {
        r.map_err(|e| {
            self.last_error = Some(e);
            BlockError::Io
        })
    }
}

/// Block count of an image of `size` bytes, or why it cannot be one.
fn check_geometry(size: u64, block_size: usize) -> std::io::Result<usize> {
    let bs = block_size as u64;
    if bs == 0 || size == 0 || !size.is_multiple_of(bs) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("image size {size} is not a non-zero multiple of the block size {block_size}"),
        ));
    }
    usize::try_from(size / bs)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "image too large"))
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_count(&self) -> usize {
        self.block_count
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        checked_range(offset, buf.len(), self.capacity())?;
        let r = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(buf));
        self.io(r)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        checked_range(offset, data.len(), self.capacity())?;
        let r = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(data));
        self.io(r)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        check_erase(offset, len, self.block_size, self.capacity())?;
        let ones = vec![ERASED; self.block_size];
        let r = self.file.seek(SeekFrom::Start(offset)).and_then(|_| {
            (0..len / self.block_size as u64).try_for_each(|_| self.file.write_all(&ones))
        });
        self.io(r)
    }

    fn sync(&mut self) -> Result<(), BlockError> {
        let r = self.file.sync_data();
        self.io(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_reopen_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        assert!(FileDisk::create(&path, 1000, 512).is_err());
        let mut d = FileDisk::create(&path, 4096, 512).unwrap();
        assert!(FileDisk::create(&path, 4096, 512).is_err(), "exists");
        assert_eq!((d.block_size(), d.block_count()), (512, 8));
        d.program(4094, b"ab").unwrap();
        d.erase(0, 512).unwrap();
        assert_eq!(d.program(4095, b"ab"), Err(BlockError::OutOfRange));
        d.sync().unwrap();
        drop(d);
        let mut d = FileDisk::open(&path, 512).unwrap();
        let mut buf = [0u8; 2];
        d.read(4094, &mut buf).unwrap();
        assert_eq!(&buf, b"ab");
        d.read(511, &mut buf).unwrap();
        assert_eq!(buf, [ERASED, 0]);
        assert!(FileDisk::open(&path, 3000).is_err());
    }
}

//! [`FatIo`]: any [`BlockDevice`] as the `std::io` stream `fatfs` reads.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::block::{BlockDevice, BlockError};

/// A [`BlockDevice`] as a `Read + Write + Seek` stream (which makes it a
/// `fatfs::ReadWriteSeek`).
///
/// `fatfs` 0.3 writes directory entries and FAT cells in place, a few bytes
/// at a time, so this relies on the device being rewritable (see the
/// [block module](crate::block)); it never erases. `flush` syncs the device.
/// A device error comes out as an `std::io::Error` of kind `Other` that
/// wraps the [`BlockError`] (the FAT adapter reports it as
/// [`ErrorKind::Io`](crate::ErrorKind::Io)).
#[derive(Debug)]
pub struct FatIo<D> {
    device: D,
    pos: u64,
}

impl<D: BlockDevice> FatIo<D> {
    /// A stream over `device`, positioned at its start.
    pub fn new(device: D) -> FatIo<D> {
        FatIo { device, pos: 0 }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, e.g. to mount its bytes again.
    pub fn into_inner(self) -> D {
        self.device
    }
}

fn io_err(e: BlockError) -> std::io::Error {
    std::io::Error::other(e)
}

impl<D: BlockDevice> Read for FatIo<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.device.capacity().saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        self.device.read(self.pos, dst).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: BlockDevice> Write for FatIo<D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.device.capacity().saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if n == 0 && !buf.is_empty() {
            return Err(io_err(BlockError::OutOfRange));
        }
        let src = buf.get(..n).unwrap_or_default();
        self.device.program(self.pos, src).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.device.sync().map_err(io_err)
    }
}

impl<D: BlockDevice> Seek for FatIo<D> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.device.capacity().checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::RamDisk;
    use std::vec;

    #[test]
    fn stream_over_device() {
        let mut io = FatIo::new(RamDisk::new(vec![0u8; 1024], 512).unwrap());
        io.seek(SeekFrom::Start(1020)).unwrap();
        assert_eq!(io.write(b"abcdef").unwrap(), 4);
        assert!(io.write(b"x").is_err());
        assert_eq!(io.seek(SeekFrom::End(-4)).unwrap(), 1020);
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
        assert_eq!(io.read(&mut buf).unwrap(), 0);
        assert!(io.seek(SeekFrom::Current(-2000)).is_err());
    }
}

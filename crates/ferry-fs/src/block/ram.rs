//! [`RamDisk`]: a block device in memory, for tests and RAM-backed volumes.

use super::{check_erase, checked_range, BlockDevice, BlockError, ERASED};

/// A block device over a byte buffer the caller provides.
///
/// `B` is any owned or borrowed buffer: `[u8; N]` or `&mut [u8]` (no_std, no
/// alloc; e.g. a `static` buffer on a microcontroller), `Vec<u8>` or
/// `Box<[u8]>` on a host. The buffer's contents are the medium: take it back
/// with [`RamDisk::into_inner`] (or look at it with [`RamDisk::as_bytes`]) to
/// mount the same bytes again, as after a power cut.
///
/// ```
/// use ferry_fs::block::{BlockDevice, RamDisk};
/// let mut disk = RamDisk::new([0u8; 4096], 512).unwrap();
/// disk.program(10, b"hi").unwrap();
/// let mut buf = [0u8; 2];
/// disk.read(10, &mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
#[derive(Debug, Clone)]
pub struct RamDisk<B> {
    buf: B,
    block_size: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RamDisk<B> {
    /// A disk over `buf`, with erase blocks of `block_size` bytes, keeping the
    /// buffer's contents (so a buffer that holds an image mounts as is).
    ///
    /// Fails with [`BlockError::Misaligned`] if `block_size` is zero or does
    /// not divide the buffer's length.
    pub fn new(buf: B, block_size: usize) -> Result<RamDisk<B>, BlockError> {
        let len = buf.as_ref().len();
        if block_size == 0 || !len.is_multiple_of(block_size) {
            return Err(BlockError::Misaligned);
        }
        Ok(RamDisk { buf, block_size })
    }

    /// The medium's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The buffer, holding the medium's bytes.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> BlockDevice for RamDisk<B> {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_count(&self) -> usize {
        self.buf.as_ref().len() / self.block_size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let range = checked_range(offset, buf.len(), self.capacity())?;
        let src = self.buf.as_ref().get(range).ok_or(BlockError::OutOfRange)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let range = checked_range(offset, data.len(), self.capacity())?;
        let dst = self
            .buf
            .as_mut()
            .get_mut(range)
            .ok_or(BlockError::OutOfRange)?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        check_erase(offset, len, self.block_size, self.capacity())?;
        let len = usize::try_from(len).map_err(|_| BlockError::OutOfRange)?;
        let range = checked_range(offset, len, self.capacity())?;
        let dst = self
            .buf
            .as_mut()
            .get_mut(range)
            .ok_or(BlockError::OutOfRange)?;
        dst.fill(ERASED);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_bounds() {
        assert_eq!(
            RamDisk::new([0u8; 1000], 512).unwrap_err(),
            BlockError::Misaligned
        );
        let mut d = RamDisk::new([0u8; 2048], 512).unwrap();
        assert_eq!(
            (d.block_size(), d.block_count(), d.capacity()),
            (512, 4, 2048)
        );
        let mut buf = [0u8; 4];
        assert_eq!(d.read(2046, &mut buf), Err(BlockError::OutOfRange));
        assert_eq!(d.program(u64::MAX, b"x"), Err(BlockError::OutOfRange));
        assert_eq!(d.erase(100, 512), Err(BlockError::Misaligned));
        assert_eq!(d.erase(1536, 1024), Err(BlockError::OutOfRange));
    }

    #[test]
    fn program_overwrites_and_erase_fills() {
        let mut d = RamDisk::new([0u8; 1024], 512).unwrap();
        d.program(510, b"abcd").unwrap();
        d.program(511, b"X").unwrap();
        let mut buf = [0u8; 4];
        d.read(510, &mut buf).unwrap();
        assert_eq!(&buf, b"aXcd");
        d.erase(512, 512).unwrap();
        d.read(510, &mut buf).unwrap();
        assert_eq!(&buf, &[b'a', b'X', ERASED, ERASED]);
    }

    #[test]
    fn borrowed_buffer_keeps_contents() {
        let mut mem = [7u8; 512];
        {
            let mut d = RamDisk::new(&mut mem[..], 128).unwrap();
            d.program(0, b"z").unwrap();
        }
        assert_eq!(mem[0], b'z');
        assert_eq!(mem[1], 7);
    }
}

//! [`CutOff`]: a block device whose power fails after a set number of writes.

use super::{BlockDevice, BlockError};

/// Wraps a device and simulates a power cut after a budget of write
/// operations.
///
/// Every [`BlockDevice::program`] and [`BlockDevice::erase`] call counts as
/// one write operation. The first `budget` of them reach the inner device;
/// from the next one on, every program and erase fails with
/// [`BlockError::PowerCut`] and is dropped whole, as if the power had failed
/// just before it. Reads keep working, so the code under test sees errors
/// instead of a frozen medium. To check what survived, take the inner device
/// back ([`CutOff::into_inner`]) and mount it afresh.
///
/// With no budget ([`CutOff::unlimited`]) it only counts, which gives the
/// number of write operations a scenario takes: every cut point from 0 to
/// that count is worth testing.
#[derive(Debug, Clone)]
pub struct CutOff<D> {
    inner: D,
    budget: Option<u64>,
    writes: u64,
    refused: u64,
}

impl<D: BlockDevice> CutOff<D> {
    /// Lets `budget` write operations through, then cuts the power.
    pub fn new(inner: D, budget: u64) -> CutOff<D> {
        CutOff {
            inner,
            budget: Some(budget),
            writes: 0,
            refused: 0,
        }
    }

    /// Never cuts; counts write operations.
    pub fn unlimited(inner: D) -> CutOff<D> {
        CutOff {
            inner,
            budget: None,
            writes: 0,
            refused: 0,
        }
    }

    /// Sets a new budget, counted from the writes done so far (`None`: never
    /// cut). A device already cut takes writes again: the power is back.
    pub fn set_budget(&mut self, budget: Option<u64>) {
        self.budget = budget.map(|b| self.writes.saturating_add(b));
        self.refused = 0;
    }

    /// Write operations that reached the inner device.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Whether the power is cut: at least one write was refused.
    pub fn is_cut(&self) -> bool {
        self.refused > 0
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The inner device, e.g. to mount what survived the cut.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// Counts one write operation, or refuses it when the budget is spent.
    fn take_write(&mut self) -> Result<(), BlockError> {
        match self.budget {
            Some(budget) if self.writes >= budget => {
                self.refused = self.refused.saturating_add(1);
                Err(BlockError::PowerCut)
            }
            _ => {
                self.writes = self.writes.saturating_add(1);
                Ok(())
            }
        }
    }
}

impl<D: BlockDevice> BlockDevice for CutOff<D> {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    fn block_count(&self) -> usize {
        self.inner.block_count()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.inner.read(offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.take_write()?;
        self.inner.program(offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        self.take_write()?;
        self.inner.erase(offset, len)
    }

    fn sync(&mut self) -> Result<(), BlockError> {
        if self.is_cut() {
            return Err(BlockError::PowerCut);
        }
        self.inner.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::RamDisk;

    #[test]
    fn cuts_after_budget_and_reads_go_on() {
        let mut d = CutOff::new(RamDisk::new([0u8; 1024], 512).unwrap(), 2);
        d.program(0, b"a").unwrap();
        d.erase(512, 512).unwrap();
        assert!(!d.is_cut());
        assert_eq!(d.program(1, b"b"), Err(BlockError::PowerCut));
        assert_eq!(d.erase(0, 512), Err(BlockError::PowerCut));
        assert!(d.is_cut());
        assert_eq!(d.writes(), 2);
        let mut buf = [0u8; 2];
        d.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"a\0", "the refused write was dropped");
        d.set_budget(Some(1));
        d.program(1, b"c").unwrap();
        assert_eq!(d.program(2, b"d"), Err(BlockError::PowerCut));
        assert_eq!(&d.into_inner().into_inner()[..3], b"ac\0");
    }

    #[test]
    fn unlimited_counts() {
        let mut d = CutOff::unlimited(RamDisk::new([0u8; 512], 512).unwrap());
        for i in 0..10 {
            d.program(i, b"x").unwrap();
        }
        assert_eq!(d.writes(), 10);
        assert!(!d.is_cut());
    }
}

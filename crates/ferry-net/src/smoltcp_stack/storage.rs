//! [`StackStorage`]: all the memory of a [`SmoltcpStack`] pool in one
//! value, for a `static` on a microcontroller.

use smoltcp::iface::{Interface, SocketStorage};

use super::{SmoltcpStack, StackConfig};

/// The memory of a pool of `N` sockets with `RX`-byte receive and
/// `TX`-byte transmit buffers: `N × (RX + TX + size_of::<SocketStorage>())`
/// bytes, all of it here (put it in a `static` or leak it; nothing is
/// allocated).
///
/// ```
/// use ferry_net::smoltcp_stack::{SmoltcpStack, StackConfig, StackStorage};
///
/// fn stack(iface: smoltcp::iface::Interface) -> SmoltcpStack<'static, 12> {
///     // Firmware puts it in a `static` (e.g. with `static_cell`).
///     let storage: &'static mut StackStorage<'static, 12, 4096, 4096> =
///         Box::leak(Box::new(StackStorage::new()));
///     SmoltcpStack::with_storage(iface, storage, StackConfig::default())
/// }
/// ```
pub struct StackStorage<'a, const N: usize, const RX: usize, const TX: usize> {
    sockets: [SocketStorage<'a>; N],
    rx: [[u8; RX]; N],
    tx: [[u8; TX]; N],
}

impl<const N: usize, const RX: usize, const TX: usize> StackStorage<'_, N, RX, TX> {
    /// Empty storage (zeroed buffers), usable in a `const` or `static`.
    pub const fn new() -> Self {
        StackStorage {
            sockets: [const { SocketStorage::EMPTY }; N],
            rx: [[0; RX]; N],
            tx: [[0; TX]; N],
        }
    }
}

impl<const N: usize, const RX: usize, const TX: usize> Default for StackStorage<'_, N, RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> SmoltcpStack<'a, N> {
    /// A stack whose pool is all `N` sockets of `storage`.
    pub fn with_storage<const RX: usize, const TX: usize>(
        iface: Interface,
        storage: &'a mut StackStorage<'a, N, RX, TX>,
        config: StackConfig,
    ) -> Self {
        let StackStorage { sockets, rx, tx } = storage;
        let mut stack = SmoltcpStack::new(iface, &mut sockets[..], config);
        for (rx, tx) in rx.iter_mut().zip(tx.iter_mut()) {
            // Cannot fail: the storage and the pool both hold `N` sockets.
            let _ = stack.add_socket(&mut rx[..], &mut tx[..]);
        }
        stack
    }
}

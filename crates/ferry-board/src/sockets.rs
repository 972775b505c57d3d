//! A `SmoltcpStack`'s socket pool from a board's static buffers.
use ferry_net::smoltcp_stack::{SmoltcpError, SmoltcpStack};

/// Adds one pool socket per pair of buffers: `rx[i]` (the TCP window) and
/// `tx[i]`. The buffers are zero bytes at boot, so as `static`s
/// (`ConstStaticCell`) they take RAM in `.bss` and no flash.
pub fn add_sockets<const N: usize, const RX: usize, const TX: usize>(
    stack: &mut SmoltcpStack<'static, N>,
    rx: &'static mut [[u8; RX]],
    tx: &'static mut [[u8; TX]],
) -> Result<(), SmoltcpError> {
    for (rx, tx) in rx.iter_mut().zip(tx) {
        stack.add_socket(&mut rx[..], &mut tx[..])?;
    }
    Ok(())
}

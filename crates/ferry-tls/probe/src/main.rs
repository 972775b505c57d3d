//! A Cortex-M4F image that drives ferry-tls's `TlsStack` in its device
//! configuration (rustls 0.23, TLS 1.3, the `device` provider, a P-256 key
//! given as its scalar: `TlsConfig::from_p256_key`) over opaque stubs, so
//! that `cargo xtask size` can measure the flash TLS costs (one
//! connection's RAM is measured by running `tls_ram` in QEMU).
//!
//! As in `size-probe/`, every value the stubs return comes out of
//! [`core::hint::black_box`], so no path of the TLS layer is folded away,
//! and the image is never run: the certificate and key are opaque bytes.
//!
//! [`FERRY_TLS_RAM`], read out of the ELF file, holds `size_of` of the
//! stack and of one connection's fixed state, and the sizes of its two
//! buffers ([`ferry_tls::footprint`]), to explain the measured figure.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::hint::black_box;
use core::mem::{size_of, MaybeUninit};

// The single-core critical section embedded-alloc needs.
use cortex_m as _;
use cortex_m_rt::entry;
use embedded_alloc::LlffHeap;
use ferry_net::{
    nb, Clock, Instant, IpAddr, Ipv4Addr, SecureStack, SocketAddr, TcpClientStack, TcpError,
    TcpErrorKind, TcpFullStack, TcpLocalAddr,
};
use ferry_tls::rustls::pki_types::CertificateDer;
use ferry_tls::{footprint, ClockTime, TlsConfig, TlsStack};

/// Bytes of heap the image reserves (the figure does not enter the sizes).
const HEAP_BYTES: usize = 64 * 1024;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// What xtask reads (little-endian `u32`s, in this order): `size_of` of the
/// `TlsStack`, of one connection's fixed state, of rustls' unbuffered
/// server connection and of its `ServerConfig` (two per control
/// connection, behind `Arc`s); then the bytes of the incoming buffer and
/// of the outgoing one (2 KB records); two words unused.
#[no_mangle]
#[used]
pub static FERRY_TLS_RAM: [u32; 8] = [
    size_of::<Stack>() as u32,
    footprint::CONNECTION_STATE as u32,
    size_of::<ferry_tls::rustls::server::UnbufferedServerConnection>() as u32,
    size_of::<ferry_tls::rustls::ServerConfig>() as u32,
    footprint::INCOMING as u32,
    footprint::outgoing(footprint::DEVICE_RECORD_PLAINTEXT) as u32,
    0,
    0,
];

type Stack = TlsStack<StubStack, StubClock>;

/// A value the optimizer cannot predict.
#[inline(always)]
fn input<T>(value: T) -> T {
    black_box(value)
}

/// Opaque bytes (a certificate or key that is never checked).
fn bytes() -> Vec<u8> {
    vec![input(0u8); input(0usize)]
}

/// A network error.
#[derive(Debug, Clone, Copy)]
pub struct NetError(u8);

impl TcpError for NetError {
    fn kind(&self) -> TcpErrorKind {
        if self.0 == 1 {
            TcpErrorKind::PipeClosed
        } else {
            TcpErrorKind::Other
        }
    }
}

/// A socket handle.
#[derive(Debug)]
pub struct StubSocket(usize);

fn nb_outcome<T>(ok: T) -> nb::Result<T, NetError> {
    match input(0u8) {
        0 => Ok(ok),
        1 => Err(nb::Error::WouldBlock),
        e => Err(nb::Error::Other(NetError(e))),
    }
}

fn net_outcome<T>(ok: T) -> Result<T, NetError> {
    match input(0u8) {
        0 => Ok(ok),
        e => Err(NetError(e)),
    }
}

fn any_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(input(0u32))), input(0))
}

/// A plain TCP/IP stack whose every answer is opaque.
pub struct StubStack;

impl TcpClientStack for StubStack {
    type TcpSocket = StubSocket;
    type Error = NetError;

    fn socket(&mut self) -> Result<StubSocket, NetError> {
        net_outcome(StubSocket(input(0)))
    }
    fn connect(&mut self, socket: &mut StubSocket, remote: SocketAddr) -> nb::Result<(), NetError> {
        black_box((socket.0, remote));
        nb_outcome(())
    }
    fn send(&mut self, socket: &mut StubSocket, buffer: &[u8]) -> nb::Result<usize, NetError> {
        black_box((socket.0, buffer));
        nb_outcome(input(0usize).min(buffer.len()))
    }
    fn receive(
        &mut self,
        socket: &mut StubSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, NetError> {
        black_box(socket.0);
        let n = input(0usize).min(buffer.len());
        for byte in buffer.iter_mut().take(n) {
            *byte = input(0);
        }
        nb_outcome(n)
    }
    fn close(&mut self, socket: StubSocket) -> Result<(), NetError> {
        black_box(socket.0);
        net_outcome(())
    }
}

impl TcpFullStack for StubStack {
    fn bind(&mut self, socket: &mut StubSocket, local_port: u16) -> Result<(), NetError> {
        black_box((socket.0, local_port));
        net_outcome(())
    }
    fn listen(&mut self, socket: &mut StubSocket) -> Result<(), NetError> {
        black_box(socket.0);
        net_outcome(())
    }
    fn accept(
        &mut self,
        socket: &mut StubSocket,
    ) -> nb::Result<(StubSocket, SocketAddr), NetError> {
        black_box(socket.0);
        nb_outcome((StubSocket(input(0)), any_addr()))
    }
}

/// A plain stack: the TLS layer above it is the security layer.
impl ferry_net::SecureStack for StubStack {}

impl TcpLocalAddr for StubStack {
    fn bind_addr(&mut self, socket: &mut StubSocket, local: SocketAddr) -> Result<(), NetError> {
        black_box((socket.0, local));
        net_outcome(())
    }
    fn local_addr(&mut self, socket: &StubSocket) -> Result<SocketAddr, NetError> {
        black_box(socket.0);
        net_outcome(any_addr())
    }
}

/// A clock whose readings are opaque.
#[derive(Debug, Clone, Copy)]
pub struct StubClock;

impl Clock for StubClock {
    fn now(&self) -> Instant {
        Instant(input(0))
    }
    fn unix_time(&self) -> Option<u64> {
        input(None)
    }
}

/// The board's random numbers (a hardware RNG on a real board).
fn board_random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    for byte in buf.iter_mut() {
        *byte = input(0);
    }
    Ok(())
}
getrandom::register_custom_getrandom!(board_random);

#[entry]
fn main() -> ! {
    {
        static mut MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
        // SAFETY: runs once, before any allocation; MEMORY is used by
        // nothing else (this block's only reference to it).
        unsafe { HEAP.init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_BYTES) }
    }
    black_box(&FERRY_TLS_RAM);

    let key = bytes();
    let config = match TlsConfig::from_p256_key(
        vec![CertificateDer::from(bytes())],
        &key,
        Arc::new(ClockTime(StubClock)),
    ) {
        Ok(c) => c.require_session_reuse(input(false)),
        Err(e) => {
            black_box(&e);
            loop {
                core::hint::spin_loop();
            }
        }
    };
    let mut stack: Stack = TlsStack::new(StubStack, StubClock, config).implicit_port(990);
    let mut listener = stack.socket().ok();
    if let Some(l) = listener.as_mut() {
        let _ = stack.bind_addr(l, any_addr());
        let _ = stack.listen(l);
    }
    let mut control = None;
    let mut buffer = [0u8; 512];
    loop {
        if let Some(l) = listener.as_mut() {
            if let Ok((mut socket, _)) = stack.accept(l) {
                if !stack.is_tls(&socket) {
                    let _ = stack.start_tls(&mut socket, control.as_ref());
                }
                if let Some(old) = control.replace(socket) {
                    let _ = stack.close(old);
                }
            }
        }
        if let Some(c) = control.as_mut() {
            if let Ok(n) = stack.receive(c, &mut buffer) {
                let _ = stack.send(c, &buffer[..n]);
            }
        }
        black_box((stack.has_pending(), stack.poll_at()));
        if input(false) {
            if let Some(c) = control.take() {
                let _ = stack.close(c);
            }
        }
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

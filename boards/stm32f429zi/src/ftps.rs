//! FTPS on the board (feature `ftps`): ferry-tls's device configuration
//! over the board's stack, the chip's hardware RNG as the source of every
//! random byte, and a heap in the core-coupled RAM for the TLS connections.
//!
//! - FTPES (`AUTH TLS`) on port 21, implicit FTPS on port 990, `PROT P`
//!   data connections.
//! - The certificate and key are built in from `FERRY_TLS_CERT` (a DER
//!   certificate) and `FERRY_TLS_KEY` (its ECDSA P-256 key as the 32-byte
//!   secret scalar) at build time: a build without them does not compile,
//!   so no image carries a key it was not given (README.md, "FTPS").
//! - The heap: [`HEAP_BYTES`] in the CCM (not reachable by DMA, and TLS
//!   buffers need no DMA), room for [`TLS_CONNECTIONS`] TLS connections at
//!   their peak (about 22 KB each, docs/SECURITY.md): one FTPS session with
//!   a transfer. One more is refused before it allocates anything
//!   (`TlsConfig::max_connections`).
use core::cell::RefCell;
use core::mem::MaybeUninit;

use alloc::sync::Arc;
use alloc::vec;
use cortex_m::interrupt::{self, Mutex};
use embedded_alloc::LlffHeap;
use ferry_net::{Borrowed, TcpLocalAddr};
use ferry_tls::rustls::pki_types::CertificateDer;
use ferry_tls::{ClockTime, TlsConfig, TlsStack};
use rand_core::RngCore;
use stm32f4xx_hal::rng::Rng;

use crate::board::BoardClock;

/// The stack the engine runs on: TLS over the board's.
pub type Net<S> = TlsStack<Borrowed<'static, S>, BoardClock>;

/// Bytes of heap (all of the CCM but what the section aligns away).
pub const HEAP_BYTES: usize = 60 * 1024;
/// TLS connections at once (see the module docs).
pub const TLS_CONNECTIONS: usize = 2;
/// The implicit FTPS port.
pub const IMPLICIT_PORT: u16 = 990;

const CERT: &[u8] = include_bytes!(env!("FERRY_TLS_CERT"));
const KEY: &[u8] = include_bytes!(env!("FERRY_TLS_KEY"));

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// The heap's memory, in the CCM (`memory.x`'s `.ccmram`, not loaded).
#[link_section = ".ccmram.heap"]
static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];

/// The hardware RNG, for getrandom's hook.
static RNG: Mutex<RefCell<Option<Rng>>> = Mutex::new(RefCell::new(None));

/// getrandom's source: the chip's RNG (a true RNG with its own health
/// checks; `try_fill_bytes` fails on a seed or clock error).
fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    interrupt::free(|cs| match RNG.borrow(cs).borrow_mut().as_mut() {
        Some(rng) => rng
            .try_fill_bytes(buf)
            .map_err(|_| getrandom::Error::UNSUPPORTED),
        None => Err(getrandom::Error::UNSUPPORTED),
    })
}
getrandom::register_custom_getrandom!(fill);

/// Sets the heap and the RNG up and wraps `plain` in TLS.
pub fn wrap<S: TcpLocalAddr>(plain: &'static mut S, rng: Rng) -> Net<S> {
    // SAFETY: called once, from start-up, before anything allocates; this
    // is the only reference to HEAP_MEMORY.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(HEAP_MEMORY) as usize, HEAP_BYTES) }
    interrupt::free(|cs| *RNG.borrow(cs).borrow_mut() = Some(rng));
    let chain = vec![CertificateDer::from(CERT.to_vec())];
    let config = match TlsConfig::from_p256_key(chain, KEY, Arc::new(ClockTime(BoardClock))) {
        Ok(config) => config
            .max_connections(TLS_CONNECTIONS)
            .handshake_timeout_ms(10_000),
        Err(e) => crate::fail_with("TLS certificate", e),
    };
    TlsStack::new(Borrowed(plain), BoardClock, config).implicit_port(IMPLICIT_PORT)
}

//! FTPS on the firmware (feature `tls`): the TLS layer over the smoltcp
//! stack, its heap, its certificate and its random numbers.
//!
//! - FTPES (`AUTH TLS`) on the control port, implicit FTPS on a second port
//!   (boot argument `implicit=PORT`, 990 by default), `PROT P` data
//!   connections: `ferry_tls::TlsStack` wraps the smoltcp stack, and the
//!   engine calls it as any stack.
//! - The certificate and key are built in (`tls/`, a **test** pair whose key
//!   is public: see tls/README.md); the key is given as its P-256 scalar
//!   (`TlsConfig::from_p256_key`: nothing is parsed on the device).
//! - The heap: [`HEAP_BYTES`] for the TLS connections (each takes about 22
//!   KB at its peak: see docs/SECURITY.md); its use and high water are
//!   logged when the last session ends.
//! - Randomness: QEMU's mps2-an385 has no RNG, so this board has only a
//!   **test-only** generator (feature `insecure-test-rng`): ChaCha20 seeded
//!   from the host's clock and the NIC's free-running counter. Anyone who
//!   can guess those can predict the keys; the firmware says so at boot.
//!   A real board registers its hardware RNG instead (boards/stm32f429zi).
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, RefCell};
use core::mem::MaybeUninit;

use alloc::sync::Arc;
use alloc::vec;
use cortex_m::interrupt::{self, Mutex};
use embedded_alloc::LlffHeap;
use ferry_tls::rustls::pki_types::CertificateDer;
use ferry_tls::{ClockTime, TlsConfig, TlsStack};

use crate::clock::BoardClock;
use crate::log;

#[cfg(not(feature = "insecure-test-rng"))]
compile_error!(
    "the `tls` feature needs an RNG, and QEMU's mps2-an385 has none: build with \
     `--features tls,insecure-test-rng` for tests (NOT SECURE), or port the firmware \
     to a board with a hardware RNG"
);

/// The stack the engine runs on: TLS over smoltcp.
pub type Net<S> = TlsStack<S, BoardClock>;

/// TLS connections at once: each of the 4 sessions with a transfer
/// running. One more is refused before it allocates anything.
pub const TLS_CONNECTIONS: usize = 8;

/// Bytes of heap for TLS: [`TLS_CONNECTIONS`] of ~22 KB at their peak
/// (docs/SECURITY.md), and the stack's tables.
pub const HEAP_BYTES: usize = 192 * 1024;

/// How long a TLS handshake may take (tests/qemu/test_tls.py knows it).
const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// The built-in test certificate (DER) and its key's scalar.
const CERT: &[u8] = include_bytes!("../tls/cert.der");
const KEY: &[u8] = include_bytes!("../tls/key.scalar");

/// The heap, with its high water.
struct Heap {
    heap: LlffHeap,
    high: Mutex<Cell<usize>>,
}

#[global_allocator]
static HEAP: Heap = Heap {
    heap: LlffHeap::empty(),
    high: Mutex::new(Cell::new(0)),
};

// SAFETY: every call is forwarded to `LlffHeap`, which is a sound
// allocator; the high water is bookkeeping only.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let ptr = unsafe { self.heap.alloc(layout) };
        let used = self.heap.used();
        interrupt::free(|cs| {
            let high = self.high.borrow(cs);
            high.set(high.get().max(used));
        });
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as given.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Heap bytes in use now, and the most ever in use.
pub fn heap_use() -> (usize, usize) {
    let high = interrupt::free(|cs| HEAP.high.borrow(cs).get());
    (HEAP.heap.used(), high)
}

/// Gives the heap its memory; before any allocation.
fn start_heap() {
    static mut MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
    // SAFETY: called once, from start-up, before anything allocates; this
    // is the only reference to MEMORY.
    unsafe {
        HEAP.heap
            .init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_BYTES)
    }
}

/// Sets the heap and the RNG up and wraps `plain` in TLS: FTPES on every
/// listener, implicit TLS on `implicit_port`.
pub fn wrap<S: ferry_net::TcpLocalAddr>(plain: S, implicit_port: u16, seed: u64) -> Net<S> {
    start_heap();
    rng::seed(seed);
    let chain = vec![CertificateDer::from(CERT.to_vec())];
    let config = match TlsConfig::from_p256_key(chain, KEY, Arc::new(ClockTime(BoardClock))) {
        Ok(config) => config,
        Err(e) => crate::fail_with("TLS certificate", e),
    };
    // A client that stalls mid-handshake holds a session slot (of 4) and
    // its heap: 10 s, not the default 30.
    let config = config
        .handshake_timeout_ms(HANDSHAKE_TIMEOUT_MS)
        .max_connections(TLS_CONNECTIONS);
    TlsStack::new(plain, BoardClock, config).implicit_port(implicit_port)
}

/// Logs what TLS is and says loudly that its randomness is not.
pub fn log_start(implicit: core::net::SocketAddr) {
    log!("WARNING: TEST-ONLY RNG: this firmware's random numbers come from a generator seeded with the host's clock (feature insecure-test-rng): its TLS is NOT SECURE; never serve anything real with it");
    log!("WARNING: the TLS key is the test key in boards/qemu-mps2-an385/tls/, which is public");
    log!(
        "FTPS: AUTH TLS on the control port, implicit TLS on {implicit}; TLS 1.3, ECDSA P-256 test certificate; heap {} KiB",
        HEAP_BYTES / 1024
    );
}

/// The test-only generator behind getrandom's `custom` hook.
#[cfg(feature = "insecure-test-rng")]
mod rng {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    static RNG: Mutex<RefCell<Option<ChaCha20Rng>>> = Mutex::new(RefCell::new(None));

    /// Seeds the generator (TEST ONLY: see the module docs).
    pub fn seed(seed: u64) {
        let mut bytes = *b"ferry qemu TEST ONLY not secure!";
        for (b, s) in bytes.iter_mut().zip(seed.to_le_bytes()) {
            *b ^= s;
        }
        interrupt::free(|cs| {
            *RNG.borrow(cs).borrow_mut() = Some(ChaCha20Rng::from_seed(bytes));
        });
    }

    /// getrandom's hook: fails until [`seed`] ran.
    fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
        interrupt::free(|cs| match RNG.borrow(cs).borrow_mut().as_mut() {
            Some(rng) => {
                rng.fill_bytes(buf);
                Ok(())
            }
            None => Err(getrandom::Error::UNSUPPORTED),
        })
    }

    getrandom::register_custom_getrandom!(fill);
}

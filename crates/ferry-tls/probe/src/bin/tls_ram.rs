//! Measures one TLS connection's RAM at its peak, on a Cortex-M4 under
//! QEMU (mps2-an386): ferry-tls's `TlsStack` with the device provider
//! serves a rustls client that runs in the same image over in-memory
//! pipes. The client uploads 64 KiB in full 16 KiB records (what curl
//! sends), the server answers with 64 KiB in its own records, and both
//! close; every heap byte the server side holds is counted (allocations
//! made while the server runs, until they are freed), and the image prints
//! over semihosting:
//!
//! `tls-ram: baseline B peak P per-connection C retained R leak L`
//!
//! B is the server's heap before the client connects (the stack and its
//! config), P its peak over two connections one after the other, C = P - B,
//! R what the stack keeps after the first (its tables' room, reused), and
//! L what the second added to that (must be 0).
//! `cargo xtask size` runs it. The certificate and key in `keys/` are a
//! test pair, and the random numbers a fixed-seed generator: **test
//! only**, like everything in this image.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, RefCell};
use core::mem::MaybeUninit;

use cortex_m::interrupt::{self, Mutex};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap;
use ferry_net::{
    nb, Clock, Instant, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpError, TcpErrorKind,
    TcpFullStack, TcpLocalAddr,
};
use ferry_tls::rustls;
use ferry_tls::{ClockTime, TlsConfig, TlsSocket, TlsStack};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

const HEAP_BYTES: usize = 256 * 1024;
const UPLOAD: usize = 64 * 1024;
const DOWNLOAD: usize = 64 * 1024;

// ------------------------------------------------------------------ heap

/// The heap, counting what the server side holds.
struct Counting {
    heap: LlffHeap,
    books: Mutex<RefCell<Books>>,
}

/// Allocations made while the server ran and not yet freed.
struct Books {
    server: bool,
    live: [(usize, usize); 256],
    held: usize,
    peak: usize,
    overflow: bool,
}

#[global_allocator]
static HEAP: Counting = Counting {
    heap: LlffHeap::empty(),
    books: Mutex::new(RefCell::new(Books {
        server: false,
        live: [(0, 0); 256],
        held: 0,
        peak: 0,
        overflow: false,
    })),
};

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let ptr = unsafe { self.heap.alloc(layout) };
        interrupt::free(|cs| {
            let mut b = self.books.borrow(cs).borrow_mut();
            if b.server && !ptr.is_null() {
                match b.live.iter().position(|e| e.0 == 0) {
                    Some(i) => {
                        b.live[i] = (ptr as usize, layout.size());
                        b.held += layout.size();
                        b.peak = b.peak.max(b.held);
                    }
                    None => b.overflow = true,
                }
            }
        });
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        interrupt::free(|cs| {
            let mut b = self.books.borrow(cs).borrow_mut();
            if let Some(i) = b.live.iter().position(|e| e.0 == ptr as usize) {
                b.held -= b.live[i].1;
                b.live[i] = (0, 0);
            }
        });
        // SAFETY: forwarded as given.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Runs `f` as the server: its allocations are counted.
fn as_server<T>(f: impl FnOnce() -> T) -> T {
    set_server(true);
    let out = f();
    set_server(false);
    out
}

fn set_server(on: bool) {
    interrupt::free(|cs| HEAP.books.borrow(cs).borrow_mut().server = on);
}

/// (held, peak) of the server's heap; resets the peak to what is held.
fn books() -> (usize, usize, bool) {
    interrupt::free(|cs| {
        let mut b = HEAP.books.borrow(cs).borrow_mut();
        let out = (b.held, b.peak, b.overflow);
        b.peak = b.held;
        out
    })
}

// ------------------------------------------------------------ the pipes

/// One direction of a connection: a fixed ring of bytes (no heap).
struct Ring {
    bytes: [u8; 20 * 1024],
    start: usize,
    len: usize,
    closed: bool,
}

impl Ring {
    const fn new() -> Self {
        Ring {
            bytes: [0; 20 * 1024],
            start: 0,
            len: 0,
            closed: false,
        }
    }

    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.bytes.len() - self.len);
        for (i, byte) in data.iter().take(n).enumerate() {
            let at = (self.start + self.len + i) % self.bytes.len();
            self.bytes[at] = *byte;
        }
        self.len += n;
        n
    }

    fn pull(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for (i, byte) in out.iter_mut().take(n).enumerate() {
            *byte = self.bytes[(self.start + i) % self.bytes.len()];
        }
        self.start = (self.start + n) % self.bytes.len();
        self.len -= n;
        n
    }
}

/// Client to server, and server to client.
static mut TO_SERVER: Ring = Ring::new();
static mut TO_CLIENT: Ring = Ring::new();

fn to_server() -> &'static mut Ring {
    // SAFETY: one thread; each call's borrow ends before the next.
    unsafe { &mut *core::ptr::addr_of_mut!(TO_SERVER) }
}

fn to_client() -> &'static mut Ring {
    // SAFETY: as above.
    unsafe { &mut *core::ptr::addr_of_mut!(TO_CLIENT) }
}

#[derive(Debug, Clone, Copy)]
pub struct PipeError;

impl TcpError for PipeError {
    fn kind(&self) -> TcpErrorKind {
        TcpErrorKind::PipeClosed
    }
}

/// 0: the listener; 1: the one accepted connection.
#[derive(Debug)]
pub struct Pipe(u8);

/// A stack with one listener and one connection, the client's.
struct PipeStack {
    connected: bool,
    accepted: bool,
}

fn addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 990)
}

impl TcpClientStack for PipeStack {
    type TcpSocket = Pipe;
    type Error = PipeError;

    fn socket(&mut self) -> Result<Pipe, PipeError> {
        Ok(Pipe(0))
    }
    fn connect(&mut self, _: &mut Pipe, _: SocketAddr) -> nb::Result<(), PipeError> {
        Err(nb::Error::Other(PipeError))
    }
    fn send(&mut self, _: &mut Pipe, buffer: &[u8]) -> nb::Result<usize, PipeError> {
        match to_client().push(buffer) {
            0 if !buffer.is_empty() => Err(nb::Error::WouldBlock),
            n => Ok(n),
        }
    }
    fn receive(&mut self, _: &mut Pipe, buffer: &mut [u8]) -> nb::Result<usize, PipeError> {
        let ring = to_server();
        match ring.pull(buffer) {
            0 if ring.closed => Ok(0),
            0 => Err(nb::Error::WouldBlock),
            n => Ok(n),
        }
    }
    fn close(&mut self, pipe: Pipe) -> Result<(), PipeError> {
        if pipe.0 == 1 {
            to_client().closed = true;
        }
        Ok(())
    }
}

impl TcpFullStack for PipeStack {
    fn bind(&mut self, _: &mut Pipe, _: u16) -> Result<(), PipeError> {
        Ok(())
    }
    fn listen(&mut self, _: &mut Pipe) -> Result<(), PipeError> {
        Ok(())
    }
    fn accept(&mut self, _: &mut Pipe) -> nb::Result<(Pipe, SocketAddr), PipeError> {
        if self.connected && !self.accepted {
            self.accepted = true;
            return Ok((Pipe(1), addr()));
        }
        Err(nb::Error::WouldBlock)
    }
}

/// A plain stack: the TLS layer above it is the security layer.
impl ferry_net::SecureStack for PipeStack {}

impl TcpLocalAddr for PipeStack {
    fn bind_addr(&mut self, _: &mut Pipe, _: SocketAddr) -> Result<(), PipeError> {
        Ok(())
    }
    fn local_addr(&mut self, _: &Pipe) -> Result<SocketAddr, PipeError> {
        Ok(addr())
    }
}

/// A clock that moves a millisecond per reading.
#[derive(Clone, Copy)]
struct TickClock;

static TICKS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

impl Clock for TickClock {
    fn now(&self) -> Instant {
        interrupt::free(|cs| {
            let t = TICKS.borrow(cs);
            t.set(t.get() + 1);
            Instant(t.get())
        })
    }
    fn unix_time(&self) -> Option<u64> {
        Some(1_800_000_000)
    }
}

/// TEST ONLY: a fixed-seed xorshift generator standing in for a hardware
/// RNG, so that this measurement image links. Never use it for TLS.
fn test_only_random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    static STATE: Mutex<Cell<u64>> = Mutex::new(Cell::new(0x9e37_79b9_7f4a_7c15));
    interrupt::free(|cs| {
        let s = STATE.borrow(cs);
        for byte in buf.iter_mut() {
            let mut x = s.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            *byte = x as u8;
        }
    });
    Ok(())
}
getrandom::register_custom_getrandom!(test_only_random);

// ------------------------------------------------------------ the client

/// Accepts the test certificate unchecked (this image is the test).
#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

/// The client: rustls' unbuffered connection and its buffers.
struct Client {
    conn: UnbufferedClientConnection,
    incoming: Vec<u8>,
    in_len: usize,
    sent: usize,
    received: usize,
    closed: bool,
}

impl Client {
    /// One round: reads what the server sent, runs rustls, writes what it
    /// wants to send, and upload bytes once it may.
    fn step(&mut self) {
        if self.in_len < self.incoming.len() {
            self.in_len += to_client().pull(&mut self.incoming[self.in_len..]);
        }
        for _ in 0..16 {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.in_len]);
            let mut stop = false;
            match state.expect("client TLS") {
                ConnectionState::EncodeTlsData(mut enc) => {
                    let mut out = [0u8; 4096];
                    let n = match enc.encode(&mut out) {
                        Ok(n) => n,
                        Err(EncodeError::AlreadyEncoded) => 0,
                        Err(e) => panic!("encode: {e:?}"),
                    };
                    assert_eq!(to_server().push(&out[..n]), n);
                }
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.expect("client record");
                        discard += record.discard;
                        self.received += record.payload.len();
                    }
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    if self.sent < UPLOAD {
                        // A full record, as curl sends; only when it fits.
                        let chunk = [0x5a_u8; 16 * 1024];
                        let mut out = vec![0u8; 16 * 1024 + 64];
                        let ring = to_server();
                        if ring.bytes.len() - ring.len >= out.len() {
                            let n = match traffic.encrypt(&chunk, &mut out) {
                                Ok(n) => n,
                                Err(EncryptError::InsufficientSize(e)) => panic!("{e:?}"),
                                Err(e) => panic!("encrypt: {e:?}"),
                            };
                            assert_eq!(ring.push(&out[..n]), n);
                            self.sent += chunk.len();
                        }
                    } else if self.received >= DOWNLOAD && !self.closed {
                        let mut out = [0u8; 64];
                        let n = traffic.queue_close_notify(&mut out).expect("close");
                        assert_eq!(to_server().push(&out[..n]), n);
                        self.closed = true;
                    }
                    stop = true;
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => stop = true,
                _ => stop = true,
            }
            if discard > 0 {
                self.incoming.copy_within(discard..self.in_len, 0);
                self.in_len -= discard;
            }
            if stop {
                break;
            }
        }
    }
}

// ------------------------------------------------------------- the run

#[entry]
fn main() -> ! {
    {
        static mut MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
        // SAFETY: runs once, before any allocation.
        unsafe {
            HEAP.heap
                .init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_BYTES)
        }
    }
    let cert = CertificateDer::from(include_bytes!("../../keys/cert.der").to_vec());
    let key = include_bytes!("../../keys/key.scalar");

    let (mut stack, mut listener) = as_server(|| {
        let config = TlsConfig::from_p256_key(vec![cert], key, Arc::new(ClockTime(TickClock)))
            .expect("config");
        let inner = PipeStack {
            connected: false,
            accepted: false,
        };
        let mut stack = TlsStack::new(inner, TickClock, config).implicit_port(990);
        let mut listener = stack.socket().expect("socket");
        stack.bind(&mut listener, 990).expect("bind");
        stack.listen(&mut listener).expect("listen");
        (stack, listener)
    });
    let (baseline, _, _) = books();

    let first = connection(&mut stack, &mut listener);
    let (after_first, _, _) = books();
    let second = connection(&mut stack, &mut listener);
    let (after_second, _, overflow) = books();
    assert!(!overflow, "more live allocations than the books hold");
    let peak = first.max(second);
    hprintln!(
        "tls-ram: baseline {} peak {} per-connection {} retained {} leak {}",
        baseline,
        peak,
        peak - baseline,
        after_first - baseline,
        after_second.saturating_sub(after_first),
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        core::hint::spin_loop();
    }
}

type Stack = TlsStack<PipeStack, TickClock>;

/// One client connects, uploads, downloads and closes; the server heap's
/// peak meanwhile.
fn connection(stack: &mut Stack, listener: &mut TlsSocket<Pipe>) -> usize {
    *to_server() = Ring::new();
    *to_client() = Ring::new();
    let client_config = ClientConfig::builder_with_details(
        Arc::new(ferry_tls::device::provider()),
        Arc::new(ClockTime(TickClock)),
    )
    .with_safe_default_protocol_versions()
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_no_client_auth();
    let name = ServerName::try_from("ferry.test").expect("name");
    let mut client = Client {
        conn: UnbufferedClientConnection::new(Arc::new(client_config), name).expect("client"),
        incoming: vec![0; 20 * 1024],
        in_len: 0,
        sent: 0,
        received: 0,
        closed: false,
    };
    let plain = stack.inner_mut();
    plain.connected = true;
    plain.accepted = false;

    let mut socket = None;
    let mut got = 0usize;
    let mut out_sent = 0usize;
    let mut buffer = [0u8; 512];
    let mut done = false;
    let mut peak = 0;
    for _round in 0..100_000 {
        client.step();
        as_server(|| {
            if socket.is_none() {
                if let Ok((s, _)) = stack.accept(listener) {
                    socket = Some(s);
                }
            }
            let Some(s) = socket.as_mut() else {
                return;
            };
            loop {
                match stack.receive(s, &mut buffer) {
                    Ok(0) => {
                        if let Some(s) = socket.take() {
                            stack.close(s).expect("close");
                        }
                        done = true;
                        break;
                    }
                    Ok(n) => got += n,
                    Err(_) => break,
                }
            }
            if let Some(s) = socket.as_mut() {
                let chunk = [0xa5u8; 512];
                while got >= UPLOAD && out_sent < DOWNLOAD {
                    match stack.send(s, &chunk) {
                        Ok(n) => out_sent += n,
                        Err(_) => break,
                    }
                }
            }
            // Drives the lingering close.
            let _ = stack.accept(listener);
        });
        peak = peak.max(books().1);
        if done && to_client().len == 0 {
            break;
        }
    }
    // The client has read everything: the lingering close ends.
    to_server().closed = true;
    for _ in 0..64 {
        client.step();
        as_server(|| {
            let _ = stack.accept(listener);
        });
    }
    stack.inner_mut().connected = false;
    assert_eq!((got, client.received), (UPLOAD, DOWNLOAD), "bytes lost");
    peak.max(books().1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("tls-ram: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        core::hint::spin_loop();
    }
}

//! Ferry's security layer: FTPS on rustls, `no_std` + `alloc`.
//!
//! [`TlsStack`] wraps a plain TCP/IP stack (any [`ferry_net::TcpLocalAddr`]:
//! host sockets, smoltcp, ...) and implements the same traits plus
//! [`ferry_net::SecureStack`], the seam the engine calls. ferry-core holds
//! no TLS code: it asks this layer to start TLS on a socket (after `234` to
//! `AUTH TLS`, and on data connections under `PROT P`), and keeps calling
//! `send`, `receive` and `close` as before, in plaintext.
//!
//! - Explicit TLS (FTPES, RFC 4217): the engine calls
//!   [`SecureStack::start_tls`](ferry_net::SecureStack::start_tls).
//! - Implicit TLS (FTPS, port 990): [`TlsStack::implicit_port`] or
//!   [`TlsStack::implicit_addr`] names the listeners whose accepted
//!   connections start TLS at once; `is_tls` then reports them as protected.
//! - Data connections resume the control connection's TLS session: every
//!   control connection gets its own session cache (see [`TlsConfig`]), so a
//!   data connection can only resume a session of *its* control connection.
//!   [`TlsConfig::require_session_reuse`] turns resumption into a must (off
//!   by default: Python's ftplib never resumes).
//!
//! # Contract (beyond [`ferry_net::TcpClientStack`])
//!
//! - `send` on a TLS socket returns `WouldBlock` until the handshake is
//!   done, and while ciphertext of earlier calls is still waiting for the
//!   plain socket. `Ok(n)` means `n` bytes were encrypted and will be sent.
//! - `receive` returns decrypted bytes; `Ok(0)` means the peer sent
//!   `close_notify` or closed TCP after the handshake. Any TLS failure (a bad
//!   record, a handshake that fails or times out, a data connection that
//!   must resume and did not) is an error.
//! - `close` sends `close_notify` (finishing the handshake first if the
//!   client is still in it) and keeps the plain socket open for a moment in
//!   a *lingering* list, so the client reads everything and closes first.
//!   Every later call into the stack drives that list (the engine calls
//!   `accept` on every poll); [`TlsStack::poll_at`] tells when to call again.
//! - Decrypted bytes can wait inside this layer where the plain stack's
//!   readiness cannot see them: a host loop that sleeps on readiness must
//!   poll again without sleeping while [`TlsStack::has_pending`] is true.
//!
//! Memory: one TLS connection holds a rustls connection (~1.5 KB on a
//! Cortex-M4) plus two heap buffers, freed with the connection: incoming
//! ciphertext, one record of the largest size (16.3 KB; records are
//! decrypted in place, so there is no plaintext buffer), and outgoing
//! ciphertext, one record of the config's `max_fragment_size` (16 KB by
//! default, 2 KB on a device build; [`footprint`]). See `docs/SECURITY.md`
//! and `cargo xtask size`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cache;
mod config;
mod conn;
#[cfg(feature = "device")]
pub mod device;
mod error;
mod records;
#[cfg(feature = "self-signed")]
pub mod self_signed;
mod stack;
mod time;

pub use config::TlsConfig;
pub use error::TlsStackError;
pub use stack::{TlsSocket, TlsStack};
pub use time::ClockTime;

/// RAM figures of one TLS connection, to size a heap (`cargo xtask size`
/// prints them for a Cortex-M4F).
pub mod footprint {
    /// Bytes of one connection's fixed state (the rustls connection handle
    /// and this layer's bookkeeping), not counting the heap it points to.
    pub const CONNECTION_STATE: usize = core::mem::size_of::<crate::conn::TlsConn>();
    /// The incoming buffer: one record of the largest size (records are
    /// decrypted in place there; there is no plaintext buffer).
    pub const INCOMING: usize = crate::conn::MAX_RECORD;
    /// The outgoing buffer with records of `max_plaintext` bytes (the
    /// config's `max_fragment_size` less the 5-byte header): one record
    /// with its header, content type and AEAD tag. The handshake's flight
    /// may need more (about 1 KB plus the certificate chain).
    pub const fn outgoing(max_plaintext: usize) -> usize {
        max_plaintext + 5 + 1 + 16
    }
    /// The records [`crate::TlsConfig::from_der`] sends on a device build
    /// (`device` without `rustcrypto`): plaintext bytes per record.
    pub const DEVICE_RECORD_PLAINTEXT: usize = crate::config::DEVICE_RECORD_PLAINTEXT;
}

/// The rustls this layer is built on (0.23), for building a custom
/// [`rustls::ServerConfig`].
pub use rustls;

/// The pure-Rust RustCrypto provider (`rustls-rustcrypto`): X25519, P-256
/// and P-384 key exchange, AES-GCM and ChaCha20-Poly1305, ECDSA, Ed25519 and
/// RSA signatures, TLS 1.2 and 1.3. It needs randomness from `getrandom`
/// (on a microcontroller: `getrandom` 0.2's `custom` feature and the
/// board's hardware RNG).
#[cfg(feature = "rustcrypto")]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls_rustcrypto::provider()
}

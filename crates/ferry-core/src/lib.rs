//! Ferry's FTP engine: `no_std`, allocation-free, and independent of the
//! TCP/IP stack and the file system.
//!
//! Three layers, each testable alone:
//! 1. [`protocol`]: sans-IO parsing and formatting (commands, replies, paths,
//!    listings).
//! 2. [`session`]: one control connection's state, driven by commands; it
//!    touches storage through [`ferry_fs::FileSystem`] but never a socket.
//! 3. [`server`]: a fixed table of sessions driven by [`Server::poll`] over
//!    any [`ferry_net::TcpFullStack`] with [`ferry_net::TcpLocalAddr`] and
//!    the security layer [`ferry_net::SecureStack`] (TLS lives outside the core).
//!
//! Architecture invariant: ferry-core never blocks, never allocates, and
//! uses neither `std` nor `core::fmt` on its paths.
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

pub mod auth;
pub mod cleanup;
pub mod config;
pub mod protocol;
pub mod server;
pub mod session;
mod transfer;

pub use auth::{AuthError, Authenticator, Permissions, User};
pub use config::Config;
pub use server::{Poll, Server, Slot};

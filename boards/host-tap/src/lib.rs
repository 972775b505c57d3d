//! What host-tap and host-w5500 share: the command line's value types
//! ([`cli`]) and the host's side of a board ([`host`]: clock, the one user,
//! the log).
pub mod cli;
pub mod host;

//! The sans-IO protocol layer: command lines in, reply bytes out, paths and
//! listing lines formatted into caller buffers. Nothing here does I/O, and
//! nothing uses `core::fmt`.
pub mod addr;
pub mod command;
pub mod line;
pub mod listing;
pub mod num;
pub mod path;
pub mod reply;
#[cfg(feature = "mtime")]
pub mod time;

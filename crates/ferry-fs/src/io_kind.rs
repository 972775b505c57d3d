//! The `embedded_io` error kind that goes with each Ferry [`ErrorKind`], shared
//! by the adapters whose errors carry no host I/O kind of their own.

use crate::ErrorKind;

/// The closest `embedded_io` kind of a Ferry error kind.
pub(crate) fn io_kind(kind: ErrorKind) -> embedded_io::ErrorKind {
    match kind {
        ErrorKind::NotFound => embedded_io::ErrorKind::NotFound,
        ErrorKind::AlreadyExists => embedded_io::ErrorKind::AlreadyExists,
        ErrorKind::PermissionDenied => embedded_io::ErrorKind::PermissionDenied,
        ErrorKind::InvalidName | ErrorKind::NameTooLong => embedded_io::ErrorKind::InvalidInput,
        ErrorKind::Unsupported => embedded_io::ErrorKind::Unsupported,
        ErrorKind::Io => embedded_io::ErrorKind::InvalidData,
        _ => embedded_io::ErrorKind::Other,
    }
}

//! The error of a [`crate::TlsStack`] operation.
use core::fmt;

use ferry_net::{TcpError, TcpErrorKind};

/// Why an operation of a [`crate::TlsStack`] failed.
#[derive(Debug)]
pub enum TlsStackError<E> {
    /// The plain stack underneath failed.
    Net(E),
    /// TLS failed on this connection: a malformed record, a failed
    /// handshake, an alert from the peer, ...
    Tls(rustls::Error),
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// The peer closed TCP in the middle of the handshake.
    HandshakeCut,
    /// Policy ([`crate::TlsConfig::require_session_reuse`]): a data
    /// connection did not resume its control connection's TLS session.
    NotResumed,
    /// The connection failed earlier (that call reported why).
    Broken,
    /// The socket handle does not belong to this stack (or was closed).
    UnknownSocket,
}

impl<E: fmt::Debug> TcpError for TlsStackError<E>
where
    E: TcpError,
{
    /// The plain stack's kind for [`TlsStackError::Net`]; `PipeClosed` when
    /// TLS ended the connection; `Other` for an unknown socket.
    fn kind(&self) -> TcpErrorKind {
        match self {
            TlsStackError::Net(e) => e.kind(),
            TlsStackError::Tls(_)
            | TlsStackError::HandshakeTimeout
            | TlsStackError::HandshakeCut
            | TlsStackError::NotResumed
            | TlsStackError::Broken => TcpErrorKind::PipeClosed,
            TlsStackError::UnknownSocket => TcpErrorKind::Other,
        }
    }
}

impl<E: fmt::Display> fmt::Display for TlsStackError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsStackError::Net(e) => e.fmt(f),
            TlsStackError::Tls(e) => write!(f, "TLS: {e}"),
            TlsStackError::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            TlsStackError::HandshakeCut => f.write_str("peer closed during the TLS handshake"),
            TlsStackError::NotResumed => {
                f.write_str("data connection did not resume the control connection's TLS session")
            }
            TlsStackError::Broken => f.write_str("the connection failed earlier"),
            TlsStackError::UnknownSocket => f.write_str("unknown socket handle"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: fmt::Debug + fmt::Display> std::error::Error for TlsStackError<E> {}

/// How a TLS connection failed, kept until the engine is told.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// See [`TlsStackError::Tls`].
    Tls(rustls::Error),
    /// See [`TlsStackError::HandshakeTimeout`].
    HandshakeTimeout,
    /// See [`TlsStackError::HandshakeCut`].
    HandshakeCut,
    /// See [`TlsStackError::NotResumed`].
    NotResumed,
    /// The plain socket failed; its error went to the caller that saw it.
    Net,
}

impl Failure {
    /// The error to report for this failure; `net` is the plain stack's
    /// error if this very call saw one.
    pub(crate) fn to_error<E>(&self, net: Option<E>) -> TlsStackError<E> {
        match (self, net) {
            (_, Some(e)) => TlsStackError::Net(e),
            (Failure::Tls(e), None) => TlsStackError::Tls(e.clone()),
            (Failure::HandshakeTimeout, None) => TlsStackError::HandshakeTimeout,
            (Failure::HandshakeCut, None) => TlsStackError::HandshakeCut,
            (Failure::NotResumed, None) => TlsStackError::NotResumed,
            // An earlier call reported the plain stack's error.
            (Failure::Net, None) => TlsStackError::Broken,
        }
    }
}

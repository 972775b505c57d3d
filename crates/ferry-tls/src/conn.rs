//! One TLS connection over one plain socket: rustls' unbuffered server
//! connection (it works with and without `std`), the ciphertext waiting to
//! go out, the ciphertext that came in, and decrypted bytes not yet read.
//!
//! # Contract
//!
//! - [`TlsConn::pump`] moves bytes between rustls and the plain socket: it
//!   flushes ciphertext, and (when asked to read) reads until the plain
//!   socket says `WouldBlock`, the peer closed, or decrypted bytes are
//!   waiting. So a caller that returns `WouldBlock` after a pump leaves the
//!   plain socket in a state where its readiness will report new events.
//! - Records are decrypted only while no decrypted bytes wait: at most one
//!   record's plaintext (16 KB) is held.
//! - Once a connection has failed, every call reports the failure.
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

use ferry_net::{nb, Instant, TcpClientStack};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus,
};
use rustls::{HandshakeKind, ServerConfig};

use crate::error::{Failure, TlsStackError};

/// The largest TLS record on the wire: a 5-byte header and 2^14 bytes of
/// plaintext with up to 2048 bytes of expansion (TLS 1.2's limit; TLS 1.3
/// allows 256).
pub(crate) const MAX_RECORD: usize = 5 + 16_384 + 2_048;

/// The most ciphertext held unprocessed: two records (a handshake message
/// that spans records is joined in place).
pub(crate) const MAX_INCOMING: usize = 2 * MAX_RECORD;

/// The first size of the incoming buffer: a ClientHello with a
/// post-quantum key share fits. It grows to one record when needed.
const INITIAL_INCOMING: usize = 4 * 1024;

/// The most plaintext one `send` takes: one full record.
pub(crate) const MAX_PLAIN_CHUNK: usize = 16_384;

/// Bound on rustls state-machine steps (each handles one message or
/// record) and on read rounds per call, so one call stays short.
const MAX_STEPS: usize = 64;

/// When [`TlsConn::pump`] reads from the plain socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Only while the handshake runs (a `send`: it needs the client's
    /// handshake messages, not its data).
    Handshake,
    /// Whenever no decrypted bytes wait.
    Always,
}

/// What a run of the rustls state machine should do once it may write.
enum Want<'a> {
    /// Nothing: process what came in, queue what rustls wants to send.
    Nothing,
    /// Encrypt this plaintext.
    Write(&'a [u8]),
    /// Queue a `close_notify` alert.
    CloseNotify,
}

/// One server-side TLS connection's state.
pub(crate) struct TlsConn {
    conn: UnbufferedServerConnection,
    /// For a control connection: the config its data connections start
    /// with (they resume its sessions).
    data_config: Option<Arc<ServerConfig>>,
    /// Fail the handshake unless it resumes a session.
    require_resumption: bool,
    /// When the handshake started (for its timeout).
    started: Instant,
    /// Ciphertext received: `incoming[..in_len]`.
    incoming: Vec<u8>,
    in_len: usize,
    /// Ciphertext to send: `outgoing[out_pos..]`.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// Decrypted bytes not yet read: `plain[plain_pos..]`.
    plain: Vec<u8>,
    plain_pos: usize,
    /// The handshake got far enough to send application data.
    writable: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
    /// The plain socket reached end of stream.
    tcp_eof: bool,
    /// `close_notify` is queued.
    close_queued: bool,
    failure: Option<Failure>,
    /// Bytes arrived that readiness will not report again (see
    /// `TlsStack::has_pending`); cleared by whoever reports it.
    fresh: Cell<bool>,
}

impl TlsConn {
    /// A connection waiting for the client's hello, with `config`; a
    /// control connection keeps `data_config` for its data connections.
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        data_config: Option<Arc<ServerConfig>>,
        require_resumption: bool,
        now: Instant,
    ) -> Result<Self, rustls::Error> {
        Ok(TlsConn {
            conn: UnbufferedServerConnection::new(config)?,
            data_config,
            require_resumption,
            started: now,
            incoming: vec![0; INITIAL_INCOMING],
            in_len: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            plain: Vec::new(),
            plain_pos: 0,
            writable: false,
            peer_closed: false,
            tcp_eof: false,
            close_queued: false,
            failure: None,
            fresh: Cell::new(false),
        })
    }

    /// For a control connection: the config of its data connections.
    pub(crate) fn data_config(&self) -> Option<&Arc<ServerConfig>> {
        self.data_config.as_ref()
    }

    /// Whether the connection has failed.
    pub(crate) fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Whether the handshake is still running.
    pub(crate) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether application data may be encrypted now.
    pub(crate) fn may_send(&self) -> bool {
        self.writable && self.failure.is_none() && !self.close_queued
    }

    /// Whether ciphertext is waiting for the plain socket.
    pub(crate) fn out_pending(&self) -> bool {
        self.out_pos < self.outgoing.len()
    }

    /// Whether the peer ended its side: `close_notify`, or TCP end of
    /// stream after the handshake.
    pub(crate) fn peer_done(&self) -> bool {
        self.peer_closed || self.tcp_eof
    }

    /// Whether `close_notify` is queued.
    pub(crate) fn close_queued(&self) -> bool {
        self.close_queued
    }

    /// When the handshake times out, while it runs.
    pub(crate) fn handshake_deadline(&self, timeout_ms: u64) -> Option<Instant> {
        (self.handshaking() && self.failure.is_none()).then(|| self.started.add_millis(timeout_ms))
    }

    /// Takes the "bytes arrived that readiness will not report" flag.
    pub(crate) fn take_fresh(&self) -> bool {
        self.fresh.replace(false)
    }

    /// Copies decrypted bytes into `buffer`; how many.
    pub(crate) fn read_plain(&mut self, buffer: &mut [u8]) -> usize {
        let waiting = self.plain.get(self.plain_pos..).unwrap_or(&[]);
        let n = waiting.len().min(buffer.len());
        if let (Some(dst), Some(src)) = (buffer.get_mut(..n), waiting.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.plain_pos += n;
        if self.plain_pos >= self.plain.len() {
            self.plain.clear();
            self.plain_pos = 0;
        }
        n
    }

    /// Drops decrypted bytes nobody will read (a closing connection).
    pub(crate) fn discard_plain(&mut self) {
        self.plain.clear();
        self.plain_pos = 0;
    }

    /// Records `failure` (the first one wins) and returns its error.
    fn fail<E>(&mut self, failure: Failure, net: Option<E>) -> TlsStackError<E> {
        let failure = self.failure.get_or_insert(failure).clone();
        self.outgoing.clear();
        self.out_pos = 0;
        failure.to_error(net)
    }

    /// The error of a connection that failed earlier.
    fn check<E>(&self) -> Result<(), TlsStackError<E>> {
        match &self.failure {
            Some(f) => Err(f.to_error(None)),
            None => Ok(()),
        }
    }

    /// Moves bytes between rustls and the plain socket; see the module docs.
    pub(crate) fn pump<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
        mode: ReadMode,
        now: Instant,
        handshake_timeout_ms: u64,
    ) -> Result<(), TlsStackError<S::Error>> {
        self.check()?;
        if self.handshaking() && now.millis_since(self.started) >= handshake_timeout_ms {
            return Err(self.fail(Failure::HandshakeTimeout, None));
        }
        let mut read_without_block = false;
        for _ in 0..MAX_STEPS {
            self.process(stack, socket)?;
            self.flush(stack, socket)?;
            let wants_read = match mode {
                ReadMode::Always => true,
                ReadMode::Handshake => self.handshaking(),
            };
            if !wants_read || self.peer_done() || self.plain_pos < self.plain.len() {
                break;
            }
            let Some(space) = self.read_space() else {
                break;
            };
            match stack.receive(socket, space) {
                Ok(0) => {
                    self.tcp_eof = true;
                    read_without_block = false;
                    if self.handshaking() {
                        return Err(self.fail(Failure::HandshakeCut, None));
                    }
                }
                Ok(n) => {
                    self.in_len += n;
                    read_without_block = true;
                }
                Err(nb::Error::WouldBlock) => {
                    read_without_block = false;
                    break;
                }
                Err(nb::Error::Other(e)) => return Err(self.fail(Failure::Net, Some(e))),
            }
        }
        let waiting = self.plain_pos < self.plain.len() || self.has_complete_record();
        if waiting || read_without_block {
            self.fresh.set(true);
        }
        Ok(())
    }

    /// Runs the rustls state machine over what came in, queueing what it
    /// wants to send and checking the resumption policy.
    fn process<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
    ) -> Result<(), TlsStackError<S::Error>> {
        let result = self.run(Want::Nothing);
        if let Err(e) = result {
            self.send_alert(stack, socket);
            return Err(self.fail(Failure::Tls(e), None));
        }
        if self.require_resumption {
            if let Some(kind) = self.conn.handshake_kind() {
                if kind != HandshakeKind::Resumed {
                    // Nothing of this handshake is sent: the client sees the
                    // connection close before the server's hello.
                    return Err(self.fail(Failure::NotResumed, None));
                }
            }
        }
        Ok(())
    }

    /// Encrypts up to one record of `data`; how many bytes were taken.
    /// Call only when [`TlsConn::may_send`] and nothing is pending out.
    pub(crate) fn encrypt<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
        data: &[u8],
    ) -> Result<usize, TlsStackError<S::Error>> {
        self.check()?;
        let data = data.get(..MAX_PLAIN_CHUNK).unwrap_or(data);
        match self.run(Want::Write(data)) {
            Ok(Some(n)) => {
                self.flush(stack, socket)?;
                Ok(n)
            }
            Ok(None) => Ok(0),
            Err(e) => {
                self.send_alert(stack, socket);
                Err(self.fail(Failure::Tls(e), None))
            }
        }
    }

    /// Queues `close_notify` (once the handshake allows writing) and tries
    /// to send it.
    pub(crate) fn close_notify<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
    ) -> Result<(), TlsStackError<S::Error>> {
        self.check()?;
        if self.close_queued || !self.writable {
            return Ok(());
        }
        match self.run(Want::CloseNotify) {
            Ok(_) => self.flush(stack, socket),
            Err(e) => Err(self.fail(Failure::Tls(e), None)),
        }
    }

    /// Sends what ciphertext the plain socket takes now.
    fn flush<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
    ) -> Result<(), TlsStackError<S::Error>> {
        while let Some(pending) = self.outgoing.get(self.out_pos..).filter(|p| !p.is_empty()) {
            match stack.send(socket, pending) {
                Ok(0) | Err(nb::Error::WouldBlock) => break,
                Ok(n) => self.out_pos += n,
                Err(nb::Error::Other(e)) => return Err(self.fail(Failure::Net, Some(e))),
            }
        }
        if self.out_pos >= self.outgoing.len() {
            self.outgoing.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Best effort after a TLS error: rustls queued an alert for the peer;
    /// encode it and try to send it once.
    fn send_alert<S: TcpClientStack>(&mut self, stack: &mut S, socket: &mut S::TcpSocket) {
        for _ in 0..4 {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut encoder)) => {
                    if encode(&mut encoder, &mut self.outgoing).is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => break,
            }
        }
        // The connection is failing anyway: a send error changes nothing.
        let _ = self.flush(stack, socket);
    }

    /// Runs rustls until it blocks, or until `want` is done; for
    /// `Want::Write`, `Some(bytes taken)` once encrypted.
    fn run(&mut self, want: Want<'_>) -> Result<Option<usize>, rustls::Error> {
        let TlsConn {
            conn,
            incoming,
            in_len,
            outgoing,
            plain,
            plain_pos,
            writable,
            peer_closed,
            close_queued,
            ..
        } = self;
        for _ in 0..MAX_STEPS {
            // Decrypt no further while decrypted bytes wait (one record's
            // worth is held at most), unless the caller wants to write.
            if matches!(want, Want::Nothing) && *plain_pos < plain.len() {
                return Ok(None);
            }
            let filled = incoming.get_mut(..*in_len).unwrap_or(&mut []);
            let UnbufferedStatus { mut discard, state } = conn.process_tls_records(filled);
            let mut done = false;
            let mut taken = None;
            let step = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut step = Ok(());
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                plain.extend_from_slice(record.payload);
                            }
                            Err(e) => {
                                step = Err(e);
                                break;
                            }
                        }
                    }
                    step
                }
                // Early data is off (max_early_data_size = 0); drop any.
                Ok(ConnectionState::ReadEarlyData(mut early)) => {
                    let mut step = Ok(());
                    while let Some(record) = early.next_record() {
                        match record {
                            Ok(record) => discard += record.discard,
                            Err(e) => {
                                step = Err(e);
                                break;
                            }
                        }
                    }
                    step
                }
                Ok(ConnectionState::EncodeTlsData(mut encoder)) => encode(&mut encoder, outgoing),
                // The bytes are in `outgoing`, which the caller flushes in
                // order; rustls only needs to know they are taken care of.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Ok(())
                }
                Ok(ConnectionState::BlockedHandshake) => {
                    done = true;
                    Ok(())
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    *writable = true;
                    done = true;
                    match want {
                        Want::Nothing => Ok(()),
                        Want::Write(data) => {
                            let step = append(outgoing, |out| traffic.encrypt(data, out));
                            if step.is_ok() {
                                taken = Some(data.len());
                            }
                            step
                        }
                        Want::CloseNotify => {
                            let step = append(outgoing, |out| traffic.queue_close_notify(out));
                            if step.is_ok() {
                                *close_queued = true;
                            }
                            step
                        }
                    }
                }
                Ok(ConnectionState::PeerClosed) => {
                    *peer_closed = true;
                    Ok(())
                }
                Ok(ConnectionState::Closed) => {
                    *peer_closed = true;
                    done = true;
                    Ok(())
                }
                Ok(_) => {
                    done = true;
                    Ok(())
                }
            };
            drop_front(incoming, in_len, discard);
            step?;
            if done {
                return Ok(taken);
            }
        }
        Ok(None)
    }

    /// Room to read ciphertext into, growing the buffer towards the record
    /// that is coming; `None` at the size limit (a peer that sends more
    /// than rustls can use at once).
    fn read_space(&mut self) -> Option<&mut [u8]> {
        if self.in_len >= self.incoming.len() {
            // rustls has processed every whole record before a read (or
            // keeps a handshake message that spans records in place), so a
            // full buffer needs to grow: to the coming record, or by a step.
            let next = match self.first_record_len() {
                Some(n) if n > self.in_len => n,
                _ => self.in_len + INITIAL_INCOMING,
            };
            let size = next.min(MAX_INCOMING);
            if size <= self.incoming.len() {
                return None;
            }
            self.incoming.resize(size, 0);
        }
        self.incoming.get_mut(self.in_len..)
    }

    /// The wire length of the first record, once its header is in.
    fn first_record_len(&self) -> Option<usize> {
        match self.incoming.get(..self.in_len.min(5))? {
            [_, _, _, hi, lo] => Some(5 + usize::from(u16::from_be_bytes([*hi, *lo]))),
            _ => None,
        }
    }

    /// Whether a whole record waits in the incoming buffer.
    fn has_complete_record(&self) -> bool {
        self.first_record_len().is_some_and(|n| n <= self.in_len)
    }
}

/// Removes `n` processed bytes from the front of `buffer[..*len]`.
fn drop_front(buffer: &mut [u8], len: &mut usize, n: usize) {
    let n = n.min(*len);
    if n > 0 {
        buffer.copy_within(n..*len, 0);
        *len -= n;
    }
}

/// Encodes a handshake record rustls produced onto the end of `out`.
fn encode(
    encoder: &mut EncodeTlsData<'_, ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    let need = match encoder.encode(&mut []) {
        Ok(_) => return Ok(()),
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            required_size
        }
        Err(EncodeError::AlreadyEncoded) => return Ok(()),
    };
    let start = out.len();
    out.resize(start + need, 0);
    let written = match out.get_mut(start..).map(|room| encoder.encode(room)) {
        Some(Ok(n)) => n,
        _ => {
            out.truncate(start);
            return Err(rustls::Error::General("cannot encode a TLS record".into()));
        }
    };
    out.truncate(start + written);
    Ok(())
}

/// Appends what `produce` writes (an encryption) onto the end of `out`,
/// sizing the room from the size rustls asks for.
fn append(
    out: &mut Vec<u8>,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), rustls::Error> {
    let need = match produce(&mut []) {
        Ok(_) => return Ok(()),
        Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
            required_size
        }
        Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
    };
    let start = out.len();
    out.resize(start + need, 0);
    let written = match out.get_mut(start..).map(&mut produce) {
        Some(Ok(n)) => n,
        _ => {
            out.truncate(start);
            return Err(rustls::Error::EncryptError);
        }
    };
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_front_keeps_the_rest_in_order() {
        let mut buf = [1, 2, 3, 4, 5];
        let mut len = 4;
        drop_front(&mut buf, &mut len, 3);
        assert_eq!((len, buf[0]), (1, 4));
        drop_front(&mut buf, &mut len, 9);
        assert_eq!(len, 0);
    }
}

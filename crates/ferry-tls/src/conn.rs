//! One TLS connection over one plain socket: rustls' unbuffered server
//! connection for the handshake (it works with and without `std`), then,
//! for TLS 1.3, this layer's own record layer ([`crate::records`]) with the
//! keys rustls negotiated; the ciphertext waiting to go out; and the
//! ciphertext that came in, where TLS 1.3 records are decrypted in place.
//!
//! # Contract
//!
//! - [`TlsConn::pump`] moves bytes between TLS and the plain socket: it
//!   flushes ciphertext, and (when asked to read) reads until the plain
//!   socket says `WouldBlock`, the peer closed, or decrypted bytes are
//!   waiting. So a caller that returns `WouldBlock` after a pump leaves the
//!   plain socket in a state where its readiness will report new events.
//! - Records are decrypted only while no decrypted bytes wait: one record's
//!   plaintext is held at most (in place for TLS 1.3; TLS 1.2 records,
//!   which rustls decrypts into an allocation of its own, are copied into
//!   a buffer that is freed once read).
//! - The incoming buffer holds one record of the largest size TLS allows
//!   (allocated at that size once; with the feature `release-idle`, on a
//!   control connection whose config asks for it, freed while empty after
//!   the handshake and allocated again for the next read: see
//!   `TlsConfig::release_idle_buffers`); a peer that announces a larger
//!   record fails the connection. The outgoing buffer holds one record of
//!   the config's `max_fragment_size`, or the handshake's flight.
//! - Once a connection has failed, every call reports the failure.
use alloc::boxed::Box;
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
use rustls::{ContentType, HandshakeKind, InvalidMessage, ProtocolVersion, ServerConfig};

use crate::error::{Failure, TlsStackError};
use crate::records::{Opened, Records};

/// The largest TLS record rustls' suites produce on the wire: a 5-byte
/// header and 2^14 bytes of plaintext with up to 256 bytes of expansion
/// (TLS 1.3's limit, RFC 8446 5.2; TLS 1.2's AEAD suites add 24). Larger
/// records (TLS 1.2's CBC suites, which rustls does not have) are refused.
pub(crate) const MAX_RECORD: usize = 5 + 16_384 + 256;

/// The most plaintext one `send` takes when the config does not limit
/// records (`max_fragment_size`): one full record.
pub(crate) const MAX_PLAIN_CHUNK: usize = 16_384;

/// A record header's bytes (rustls' `max_fragment_size` counts them).
const RECORD_HEADER: usize = 5;

/// Bound on state-machine steps (each handles one message or record) and
/// on read rounds per call, so one call stays short.
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

/// What a run of the state machine should do once it may write.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// Nothing: process what came in, queue what must be sent.
    Nothing,
    /// Encrypt this plaintext.
    Write(&'a [u8]),
    /// Queue a `close_notify` alert.
    CloseNotify,
}

/// Who does the records.
enum Phase {
    /// rustls: the handshake, and a TLS 1.2 connection's records (boxed:
    /// about 1 KB, freed when a TLS 1.3 connection switches).
    Rustls(Box<UnbufferedServerConnection>),
    /// This layer: a TLS 1.3 connection's records after the handshake.
    Records(Box<Records>),
    /// Between the two (a connection whose switch failed stays here).
    Switching,
}

/// How a run of rustls ended.
enum RunEnd {
    /// Blocked or done; for `Want::Write`, `Some(bytes taken)`.
    Done(Option<usize>),
    /// A TLS 1.3 handshake is over: the records are this layer's now.
    Switch,
}

/// One server-side TLS connection's state.
pub(crate) struct TlsConn {
    phase: Phase,
    /// For a control connection: the config its data connections start
    /// with (they resume its sessions).
    data_config: Option<Arc<ServerConfig>>,
    /// Fail the handshake unless it resumes a session.
    require_resumption: bool,
    /// When the handshake started (for its timeout).
    started: Instant,
    /// Ciphertext received: `incoming[..in_len]` (one record's room).
    incoming: Vec<u8>,
    in_len: usize,
    /// Give rustls the whole buffer, not one record at a time: it holds a
    /// handshake message that spans records.
    whole: bool,
    /// Bytes rustls decrypted (TLS 1.2), not yet read: `plain[plain_pos..]`.
    plain: Vec<u8>,
    plain_pos: usize,
    /// Bytes decrypted in place (TLS 1.3), not yet read:
    /// `incoming[opened.0..opened.1]`, from the record that is the first
    /// `opened_record` bytes of `incoming` (dropped once read).
    opened: (usize, usize),
    opened_record: usize,
    /// Ciphertext to send: `outgoing[out_pos..]`.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The most plaintext one record carries (the config's
    /// `max_fragment_size`).
    max_chunk: usize,
    /// The handshake got far enough to send application data.
    writable: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
    /// The plain socket reached end of stream.
    tcp_eof: bool,
    /// Free the record buffers while they are empty (a control connection
    /// of a config with `release_idle_buffers`).
    #[cfg(feature = "release-idle")]
    release: bool,
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
        let max_chunk = config
            .max_fragment_size
            .map_or(MAX_PLAIN_CHUNK, |n| n.saturating_sub(RECORD_HEADER))
            .clamp(1, MAX_PLAIN_CHUNK);
        Ok(TlsConn {
            phase: Phase::Rustls(Box::new(UnbufferedServerConnection::new(config)?)),
            data_config,
            require_resumption,
            started: now,
            incoming: vec![0; MAX_RECORD],
            in_len: 0,
            whole: false,
            #[cfg(feature = "release-idle")]
            release: false,
            plain: Vec::new(),
            plain_pos: 0,
            opened: (0, 0),
            opened_record: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            max_chunk,
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
        match &self.phase {
            Phase::Rustls(conn) => conn.is_handshaking(),
            Phase::Records(_) | Phase::Switching => false,
        }
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

    /// Whether decrypted bytes wait to be read.
    fn plain_waiting(&self) -> bool {
        self.plain_pos < self.plain.len() || self.opened.0 < self.opened.1
    }

    /// Copies decrypted bytes into `buffer`; how many.
    pub(crate) fn read_plain(&mut self, buffer: &mut [u8]) -> usize {
        let from_vec = self.plain_pos < self.plain.len();
        let waiting = match from_vec {
            true => self.plain.get(self.plain_pos..),
            false => self.incoming.get(self.opened.0..self.opened.1),
        }
        .unwrap_or(&[]);
        let n = waiting.len().min(buffer.len());
        if let (Some(dst), Some(src)) = (buffer.get_mut(..n), waiting.get(..n)) {
            dst.copy_from_slice(src);
        }
        match from_vec {
            true => self.plain_pos += n,
            false => self.opened.0 += n,
        }
        if !self.plain_waiting() {
            self.discard_plain();
        }
        n
    }

    /// Drops decrypted bytes nobody will read (a closing connection), or
    /// their buffers once read.
    pub(crate) fn discard_plain(&mut self) {
        // Freed, not kept: TLS 1.2's records are rare on a device.
        self.plain = Vec::new();
        self.plain_pos = 0;
        self.opened = (0, 0);
        drop_front(&mut self.incoming, &mut self.in_len, self.opened_record);
        self.opened_record = 0;
    }

    /// Records `failure` (the first one wins) and returns its error.
    fn fail<E>(&mut self, failure: Failure, net: Option<E>) -> TlsStackError<E> {
        let failure = self.failure.get_or_insert(failure).clone();
        self.outgoing = Vec::new();
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

    /// Moves bytes between TLS and the plain socket; see the module docs.
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
            if !wants_read || self.peer_done() || self.plain_waiting() {
                break;
            }
            // Freed while idle (see `release_idle`).
            #[cfg(feature = "release-idle")]
            if self.incoming.is_empty() {
                self.incoming = vec![0; MAX_RECORD];
            }
            let Some(space) = self
                .incoming
                .get_mut(self.in_len..)
                .filter(|s| !s.is_empty())
            else {
                // Every whole record was processed before this read, so a
                // full buffer holds one record larger than TLS allows.
                let too_large = rustls::Error::InvalidMessage(InvalidMessage::MessageTooLarge);
                return Err(self.fail(Failure::Tls(too_large), None));
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
        let waiting = self.plain_waiting() || self.has_complete_record();
        if waiting || read_without_block {
            self.fresh.set(true);
        }
        #[cfg(feature = "release-idle")]
        self.release_idle();
        Ok(())
    }

    /// This connection, freeing its record buffers while idle if
    /// `release` and it is a control connection (see `release_idle`).
    #[cfg(feature = "release-idle")]
    pub(crate) fn releasing_idle_buffers(mut self, release: bool) -> Self {
        self.release = release && self.data_config.is_some();
        self
    }

    /// Frees the record buffers of a connection that releases them (see
    /// `release`) while nothing is in them and the handshake is over: an
    /// idle control connection then holds no record's room.
    #[cfg(feature = "release-idle")]
    fn release_idle(&mut self) {
        if !self.release {
            return;
        }
        let idle = self.in_len == 0
            && self.opened_record == 0
            && !self.plain_waiting()
            && !self.handshaking();
        if idle && !self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.outgoing.is_empty() && self.outgoing.capacity() > 0 {
            self.outgoing = Vec::new();
        }
    }

    /// Processes what came in, queueing what must be sent and checking the
    /// resumption policy.
    fn process<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
    ) -> Result<(), TlsStackError<S::Error>> {
        if let Err(e) = self.run(Want::Nothing) {
            self.send_alert(stack, socket);
            return Err(self.fail(Failure::Tls(e), None));
        }
        if let (true, Phase::Rustls(conn)) = (self.require_resumption, &self.phase) {
            if let Some(kind) = conn.handshake_kind() {
                if kind != HandshakeKind::Resumed {
                    // Nothing of this handshake is sent: the client sees the
                    // connection close before the server's hello.
                    return Err(self.fail(Failure::NotResumed, None));
                }
            }
        }
        Ok(())
    }

    /// Encrypts up to `records` records of `data` (one while rustls does
    /// the records); how many bytes were taken. Call only when
    /// [`TlsConn::may_send`] and nothing is pending out.
    pub(crate) fn encrypt<S: TcpClientStack>(
        &mut self,
        stack: &mut S,
        socket: &mut S::TcpSocket,
        data: &[u8],
        records: usize,
    ) -> Result<usize, TlsStackError<S::Error>> {
        self.check()?;
        let mut taken = 0;
        for _ in 0..records.max(1) {
            let Some(rest) = data.get(taken..).filter(|r| !r.is_empty()) else {
                break;
            };
            let chunk = rest.get(..self.max_chunk).unwrap_or(rest);
            match self.run(Want::Write(chunk)) {
                Ok(Some(n)) => taken += n,
                Ok(None) => break,
                Err(e) => {
                    self.send_alert(stack, socket);
                    return Err(self.fail(Failure::Tls(e), None));
                }
            }
            if !matches!(self.phase, Phase::Records(_)) {
                break;
            }
        }
        if taken > 0 {
            self.flush(stack, socket)?;
        }
        Ok(taken)
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

    /// Best effort after a TLS error in rustls' hands: it queued an alert
    /// for the peer; encode it and try to send it once.
    fn send_alert<S: TcpClientStack>(&mut self, stack: &mut S, socket: &mut S::TcpSocket) {
        let Phase::Rustls(conn) = &mut self.phase else {
            return;
        };
        // One call: the queued alert comes out before rustls looks at the
        // input again (a second look would fail on the same bytes and
        // queue a second fatal alert). The bytes it was given stay in view:
        // it may keep part of a handshake message there, and an empty
        // buffer would make it index past the end (both found by fuzzing).
        let filled = self.incoming.get_mut(..self.in_len).unwrap_or(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut encoder)) =
            conn.process_tls_records(filled).state
        {
            if encode(&mut encoder, &mut self.outgoing).is_err() {
                return;
            }
        }
        // The connection is failing anyway: a send error changes nothing.
        let _ = self.flush(stack, socket);
    }

    /// Runs the connection until it blocks, or until `want` is done; for
    /// `Want::Write`, `Some(bytes taken)` once encrypted.
    fn run(&mut self, want: Want<'_>) -> Result<Option<usize>, rustls::Error> {
        if let Phase::Rustls(_) = self.phase {
            match self.run_rustls(want)? {
                RunEnd::Done(taken) => return Ok(taken),
                RunEnd::Switch => {
                    let Phase::Rustls(conn) = core::mem::replace(&mut self.phase, Phase::Switching)
                    else {
                        return Ok(None);
                    };
                    self.phase = Phase::Records(Box::new(Records::take_over(*conn)?));
                    self.writable = true;
                }
            }
        }
        let Phase::Records(records) = &mut self.phase else {
            return Ok(None);
        };
        match want {
            Want::Nothing => {
                // Decrypt until a record with data waits, or none is whole.
                for _ in 0..MAX_STEPS {
                    if self.opened.0 < self.opened.1 || self.peer_closed {
                        break;
                    }
                    let Some(len) = complete_record(&self.incoming, self.in_len) else {
                        break;
                    };
                    match records.open(&mut self.incoming, len, &mut self.outgoing)? {
                        Opened::Data { start, end, record } => {
                            self.opened = (start, end);
                            self.opened_record = record;
                        }
                        Opened::Nothing { record } => {
                            drop_front(&mut self.incoming, &mut self.in_len, record)
                        }
                        Opened::CloseNotify { record } => {
                            drop_front(&mut self.incoming, &mut self.in_len, record);
                            self.peer_closed = true;
                        }
                    }
                }
                Ok(None)
            }
            Want::Write(data) => {
                records.seal(ContentType::ApplicationData, data, &mut self.outgoing)?;
                Ok(Some(data.len()))
            }
            Want::CloseNotify => {
                // Alert level warning (1), close_notify (0).
                records.seal(ContentType::Alert, &[1, 0], &mut self.outgoing)?;
                self.close_queued = true;
                Ok(None)
            }
        }
    }

    /// Runs rustls until it blocks, until `want` is done, or until a
    /// TLS 1.3 handshake is over (then this layer takes the records over,
    /// before rustls decrypts any: it is given one record at a time).
    fn run_rustls(&mut self, want: Want<'_>) -> Result<RunEnd, rustls::Error> {
        let TlsConn {
            phase,
            incoming,
            in_len,
            whole,
            plain,
            plain_pos,
            outgoing,
            writable,
            peer_closed,
            close_queued,
            ..
        } = self;
        let Phase::Rustls(conn) = phase else {
            return Ok(RunEnd::Done(None));
        };
        for _ in 0..MAX_STEPS {
            // Decrypt no further while decrypted bytes wait (one record's
            // worth is held at most), unless the caller wants to write.
            if matches!(want, Want::Nothing) && *plain_pos < plain.len() {
                return Ok(RunEnd::Done(None));
            }
            let tls13_done =
                !conn.is_handshaking() && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
            // Once a TLS 1.3 handshake is over nothing more is given to
            // rustls; before, one record at a time, so that it never
            // decrypts the data that follows the client's Finished.
            let end = match (tls13_done, *whole) {
                (true, _) => 0,
                (false, true) => *in_len,
                (false, false) => complete_record(incoming, *in_len).unwrap_or(*in_len),
            };
            let given = end;
            let filled = incoming.get_mut(..end).unwrap_or(&mut []);
            let UnbufferedStatus { mut discard, state } = conn.process_tls_records(filled);
            let mut done = false;
            let mut taken = None;
            let mut blocked = false;
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
                    blocked = true;
                    done = true;
                    Ok(())
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    *writable = true;
                    done = true;
                    if tls13_done {
                        // Nothing is left to send (rustls reports this
                        // state only then): switch before writing.
                        drop_front(incoming, in_len, discard);
                        return Ok(RunEnd::Switch);
                    }
                    match want {
                        Want::Nothing => {
                            blocked = true;
                            Ok(())
                        }
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
            if discard > 0 {
                *whole = false;
            } else if blocked && given > 0 {
                // rustls took nothing of what it was given: a record is
                // not whole yet, or it keeps part of a handshake message
                // and waits for the rest. From now on it sees everything
                // (it expects what it was shown to stay in place).
                *whole = true;
            }
            // rustls was not shown everything: give it the next record.
            let more = given < *in_len + discard;
            if done && !(blocked && more) {
                return Ok(RunEnd::Done(taken));
            }
        }
        Ok(RunEnd::Done(None))
    }

    /// Whether a whole record waits in the incoming buffer.
    fn has_complete_record(&self) -> bool {
        complete_record(&self.incoming, self.in_len).is_some()
    }
}

/// The wire length of the first record of `buffer[..len]`, once its
/// header is in.
fn record_len(buffer: &[u8], len: usize) -> Option<usize> {
    match buffer.get(..len.min(5))? {
        [_, _, _, hi, lo] => Some(5 + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// The wire length of the first record of `buffer[..len]`, once it is all
/// in.
fn complete_record(buffer: &[u8], len: usize) -> Option<usize> {
    record_len(buffer, len).filter(|n| *n <= len)
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

    #[test]
    fn record_len_reads_the_header_once_whole() {
        let buf = [23, 3, 3, 0x01, 0x02, 0];
        assert_eq!(record_len(&buf, 4), None);
        assert_eq!(record_len(&buf, 5), Some(5 + 0x0102));
    }
}

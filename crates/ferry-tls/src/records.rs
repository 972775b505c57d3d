//! TLS 1.3 records after the handshake, done by this layer with the keys
//! rustls negotiated (rustls' kernel-connection API): records are
//! decrypted in place in the connection's incoming buffer, so no record's
//! plaintext is ever copied into a buffer of its own (rustls' unbuffered
//! API copies each record into a fresh allocation). rustls keeps only
//! what computes key updates.
//!
//! What comes in: application data; `close_notify` (other alerts fail the
//! connection); `KeyUpdate` (answered when the peer asks for it). Anything
//! else fails the connection, as RFC 8446 wants.
use alloc::boxed::Box;
use alloc::vec::Vec;

use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter, MessageEncrypter, OutboundChunks,
    OutboundPlainMessage, Tls13AeadAlgorithm,
};
use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, Error, HandshakeType, InvalidMessage,
    PeerMisbehaved, ProtocolVersion,
};

/// The largest ciphertext of a TLS 1.3 record (RFC 8446 5.2).
const MAX_CIPHERTEXT: usize = 16_384 + 256;

/// TLS 1.3's handshake message type of a `KeyUpdate`.
const KEY_UPDATE: u8 = 24;

/// A decrypted record, as [`Records::open`] found it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Application data at `buffer[start..end]`; the record is the first
    /// `record` bytes of the buffer.
    Data {
        start: usize,
        end: usize,
        record: usize,
    },
    /// A record with nothing for the reader (an empty one, a key update):
    /// drop its `record` bytes.
    Nothing { record: usize },
    /// The peer's `close_notify`, in a record of `record` bytes.
    CloseNotify { record: usize },
}

/// One connection's record layer: each direction's cipher and sequence
/// number, and rustls' state for key updates.
pub(crate) struct Records {
    kernel: KernelConnection<ServerConnectionData>,
    aead: &'static dyn Tls13AeadAlgorithm,
    tx: Box<dyn MessageEncrypter>,
    tx_seq: u64,
    rx: Box<dyn MessageDecrypter>,
    rx_seq: u64,
    /// Records one key may protect (the suite's confidentiality limit).
    limit: u64,
}

impl Records {
    /// Takes a TLS 1.3 connection over from rustls once its handshake is
    /// done and it has nothing left to send.
    pub(crate) fn take_over(conn: UnbufferedServerConnection) -> Result<Self, Error> {
        let (secrets, kernel) = conn.dangerous_into_kernel_connection()?;
        let suite = kernel
            .negotiated_cipher_suite()
            .tls13()
            .ok_or_else(|| Error::General("not a TLS 1.3 connection".into()))?;
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let (tx_key, tx_iv) = key_and_iv(tx)?;
        let (rx_key, rx_iv) = key_and_iv(rx)?;
        Ok(Records {
            kernel,
            aead: suite.aead_alg,
            tx: suite.aead_alg.encrypter(tx_key, tx_iv),
            tx_seq,
            rx: suite.aead_alg.decrypter(rx_key, rx_iv),
            rx_seq,
            limit: suite.common.confidentiality_limit,
        })
    }

    /// Decrypts the record `buffer` starts with (the caller made sure it is
    /// whole: `record_len` bytes) in place, answering a key update into
    /// `out`.
    pub(crate) fn open(
        &mut self,
        buffer: &mut [u8],
        record_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Opened, Error> {
        let base = buffer.as_ptr() as usize;
        let (header, body) = match buffer.get_mut(..record_len) {
            Some(record) if record_len >= 5 => record.split_at_mut(5),
            _ => return Err(InvalidMessage::MessageTooShort.into()),
        };
        if body.len() > MAX_CIPHERTEXT {
            return Err(InvalidMessage::MessageTooLarge.into());
        }
        let (typ, version) = match header {
            [t, v0, v1, _, _] => (ContentType::from(*t), u16::from_be_bytes([*v0, *v1])),
            _ => return Err(InvalidMessage::MessageTooShort.into()),
        };
        // After the handshake every TLS 1.3 record is protected and says
        // it is application data.
        if typ != ContentType::ApplicationData {
            return Err(PeerMisbehaved::IllegalMiddleboxChangeCipherSpec.into());
        }
        let message = InboundOpaqueMessage::new(typ, ProtocolVersion::from(version), body);
        let plain = self.rx.decrypt(message, self.rx_seq)?;
        self.rx_seq += 1;
        let record = record_len;
        match plain.typ {
            ContentType::ApplicationData if plain.payload.is_empty() => {
                Ok(Opened::Nothing { record })
            }
            ContentType::ApplicationData => {
                let start = (plain.payload.as_ptr() as usize).wrapping_sub(base);
                Ok(Opened::Data {
                    start,
                    end: start + plain.payload.len(),
                    record,
                })
            }
            ContentType::Alert => match plain.payload {
                [_, description]
                    if AlertDescription::from(*description) == AlertDescription::CloseNotify =>
                {
                    Ok(Opened::CloseNotify { record })
                }
                [_, description] => Err(Error::AlertReceived(AlertDescription::from(*description))),
                _ => Err(InvalidMessage::MessageTooShort.into()),
            },
            ContentType::Handshake => match plain.payload {
                // KeyUpdate { request_update }: 1 asks for ours too.
                [KEY_UPDATE, 0, 0, 1, request @ (0 | 1)] => {
                    let asked = *request == 1;
                    self.update_rx()?;
                    if asked {
                        self.seal(ContentType::Handshake, &[KEY_UPDATE, 0, 0, 1, 0], out)?;
                        self.update_tx()?;
                    }
                    Ok(Opened::Nothing { record })
                }
                _ => Err(Error::InappropriateHandshakeMessage {
                    expect_types: alloc::vec![HandshakeType::KeyUpdate],
                    got_type: HandshakeType::from(plain.payload.first().copied().unwrap_or(0)),
                }),
            },
            other => Err(Error::InappropriateMessage {
                expect_types: alloc::vec![ContentType::ApplicationData],
                got_type: other,
            }),
        }
    }

    /// Encrypts `data` as one record of type `typ` onto the end of `out`.
    pub(crate) fn seal(
        &mut self,
        typ: ContentType,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        // Past the suite's limit the key must not be used again: update it.
        if self.tx_seq >= self.limit.saturating_sub(1) {
            self.seal_raw(ContentType::Handshake, &[KEY_UPDATE, 0, 0, 1, 0], out)?;
            self.update_tx()?;
        }
        self.seal_raw(typ, data, out)
    }

    /// [`Records::seal`] without the limit check.
    fn seal_raw(&mut self, typ: ContentType, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let message = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(data),
        };
        let record = self.tx.encrypt(message, self.tx_seq)?.encode();
        self.tx_seq += 1;
        if out.is_empty() {
            // The encrypter's buffer becomes the outgoing one: no copy.
            *out = record;
        } else {
            out.extend_from_slice(&record);
        }
        Ok(())
    }

    /// The peer's next traffic key.
    fn update_rx(&mut self) -> Result<(), Error> {
        let (seq, secrets) = self.kernel.update_rx_secret()?;
        let (key, iv) = key_and_iv(secrets)?;
        self.rx = self.aead.decrypter(key, iv);
        self.rx_seq = seq;
        Ok(())
    }

    /// This side's next traffic key (after sending a `KeyUpdate`).
    fn update_tx(&mut self) -> Result<(), Error> {
        let (seq, secrets) = self.kernel.update_tx_secret()?;
        let (key, iv) = key_and_iv(secrets)?;
        self.tx = self.aead.encrypter(key, iv);
        self.tx_seq = seq;
        Ok(())
    }
}

/// The key and IV of one direction, whatever the AEAD (providers name the
/// variant differently; the suite's own algorithm uses them).
fn key_and_iv(secrets: ConnectionTrafficSecrets) -> Result<(AeadKey, Iv), Error> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(Error::General("unknown traffic secrets".into())),
    }
}

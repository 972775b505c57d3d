//! ferry-tls's `TlsStack` fed arbitrary bytes by a client, over an
//! in-memory stack: before the handshake (garbage instead of a
//! ClientHello), after a real TLS 1.3 handshake (forged records where the
//! record layer of this crate decrypts in place), and as the plaintext of
//! a well-behaved client with key updates mixed in, whose bytes must come
//! out of the server unchanged.
//!
//! Input: the first byte picks the mode and the chunking, the rest is the
//! stream.
#![no_main]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use ferry_net::{
    nb, Clock, Instant, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpError, TcpErrorKind,
    TcpFullStack, TcpLocalAddr,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct};
use ferry_tls::{ClockTime, TlsConfig, TlsSocket, TlsStack};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone, Copy)]
struct PipeError;

impl TcpError for PipeError {
    fn kind(&self) -> TcpErrorKind {
        TcpErrorKind::PipeClosed
    }
}

/// 0: the listener; 1: the client's connection.
#[derive(Debug)]
struct Pipe(u8);

/// One listener, one connection: bytes in memory.
#[derive(Default)]
struct Mem {
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    client_closed: bool,
    accepted: bool,
}

fn addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 990)
}

impl TcpClientStack for Mem {
    type TcpSocket = Pipe;
    type Error = PipeError;
    fn socket(&mut self) -> Result<Pipe, PipeError> {
        Ok(Pipe(0))
    }
    fn connect(&mut self, _: &mut Pipe, _: SocketAddr) -> nb::Result<(), PipeError> {
        Err(nb::Error::Other(PipeError))
    }
    fn send(&mut self, _: &mut Pipe, buffer: &[u8]) -> nb::Result<usize, PipeError> {
        self.to_client.extend(buffer);
        Ok(buffer.len())
    }
    fn receive(&mut self, _: &mut Pipe, buffer: &mut [u8]) -> nb::Result<usize, PipeError> {
        let n = buffer.len().min(self.to_server.len());
        if n == 0 {
            return match self.client_closed {
                true => Ok(0),
                false => Err(nb::Error::WouldBlock),
            };
        }
        for (dst, src) in buffer.iter_mut().zip(self.to_server.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
    fn close(&mut self, _: Pipe) -> Result<(), PipeError> {
        Ok(())
    }
}

impl TcpFullStack for Mem {
    fn bind(&mut self, _: &mut Pipe, _: u16) -> Result<(), PipeError> {
        Ok(())
    }
    fn listen(&mut self, _: &mut Pipe) -> Result<(), PipeError> {
        Ok(())
    }
    fn accept(&mut self, _: &mut Pipe) -> nb::Result<(Pipe, SocketAddr), PipeError> {
        match std::mem::replace(&mut self.accepted, true) {
            false => Ok((Pipe(1), addr())),
            true => Err(nb::Error::WouldBlock),
        }
    }
}

impl TcpLocalAddr for Mem {
    fn bind_addr(&mut self, _: &mut Pipe, _: SocketAddr) -> Result<(), PipeError> {
        Ok(())
    }
    fn local_addr(&mut self, _: &Pipe) -> Result<SocketAddr, PipeError> {
        Ok(addr())
    }
}

/// A clock that stands still (no timeouts during a run).
#[derive(Clone, Copy)]
struct Still;

impl Clock for Still {
    fn now(&self) -> Instant {
        Instant(1)
    }
    fn unix_time(&self) -> Option<u64> {
        Some(1_800_000_000)
    }
}

/// The client trusts the test certificate unchecked.
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
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

/// The server's config (the device provider, a key given as its scalar)
/// and the client's, made once.
fn configs() -> &'static (TlsConfig, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<(TlsConfig, Arc<ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        use p256::pkcs8::DecodePrivateKey;
        let cert = ferry_tls::self_signed::generate(&["localhost".to_string()]).unwrap();
        let secret = p256::SecretKey::from_pkcs8_der(cert.key.secret_der()).unwrap();
        let server = TlsConfig::from_p256_key(
            vec![cert.cert.clone()],
            &secret.to_bytes(),
            Arc::new(ClockTime(Still)),
        )
        .unwrap();
        let client = ClientConfig::builder_with_provider(Arc::new(ferry_tls::provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth();
        (server, Arc::new(client))
    })
}

type Stack = TlsStack<Mem, Still>;

/// The server's side: reads what it can; `Err` once the connection failed.
fn serve(stack: &mut Stack, socket: &mut TlsSocket<Pipe>, got: &mut Vec<u8>) -> Result<(), ()> {
    let mut buffer = [0u8; 700];
    for _ in 0..64 {
        match stack.receive(socket, &mut buffer) {
            Ok(0) => return Err(()),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(nb::Error::WouldBlock) => return Ok(()),
            Err(nb::Error::Other(_)) => return Err(()),
        }
    }
    Ok(())
}

/// Moves the client's output to the server and the server's to the client.
fn shuttle(stack: &mut Stack, client: &mut ClientConnection) -> Result<(), ()> {
    let mem = stack.inner_mut();
    let mut out = Vec::new();
    client.write_tls(&mut out).map_err(|_| ())?;
    mem.to_server.extend(out);
    let incoming: Vec<u8> = mem.to_client.drain(..).collect();
    let mut reader = &incoming[..];
    while !reader.is_empty() {
        client.read_tls(&mut reader).map_err(|_| ())?;
        client.process_new_packets().map_err(|_| ())?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let (server_config, client_config) = configs();
    let mut stack: Stack =
        TlsStack::new(Mem::default(), Still, server_config.clone()).implicit_port(990);
    let mut listener = stack.socket().unwrap();
    stack.bind(&mut listener, 990).unwrap();
    stack.listen(&mut listener).unwrap();
    let (mut socket, _) = stack.accept(&mut listener).unwrap();
    let chunk = usize::from(control >> 2).max(1) * 7;
    let mut got = Vec::new();
    match control & 3 {
        // Garbage instead of a ClientHello.
        0 => {
            for piece in stream.chunks(chunk) {
                stack.inner_mut().to_server.extend(piece);
                if serve(&mut stack, &mut socket, &mut got).is_err() {
                    break;
                }
            }
            assert!(got.is_empty(), "plaintext before a handshake");
        }
        mode => {
            let name = ServerName::try_from("localhost").unwrap();
            let mut client = ClientConnection::new(Arc::clone(client_config), name).unwrap();
            client.writer().write_all(b"hello").unwrap();
            for _ in 0..16 {
                if shuttle(&mut stack, &mut client).is_err() {
                    panic!("handshake failed");
                }
                serve(&mut stack, &mut socket, &mut got).expect("server failed in the handshake");
                if !client.is_handshaking() && got.len() >= 5 {
                    break;
                }
            }
            assert_eq!(got, b"hello");
            got.clear();
            if mode == 1 {
                // Forged records after the handshake.
                for piece in stream.chunks(chunk) {
                    stack.inner_mut().to_server.extend(piece);
                    if serve(&mut stack, &mut socket, &mut got).is_err() {
                        break;
                    }
                }
                // Forged records cannot decrypt: nothing comes out.
                assert!(got.is_empty(), "forged bytes decrypted");
            } else {
                // A well-behaved client: the bytes come out unchanged.
                for (i, piece) in stream.chunks(chunk).enumerate() {
                    client.writer().write_all(piece).unwrap();
                    if mode == 3 && i % 3 == 0 {
                        client.refresh_traffic_keys().unwrap();
                    }
                    shuttle(&mut stack, &mut client).expect("client failed");
                    serve(&mut stack, &mut socket, &mut got).expect("server failed");
                }
                serve(&mut stack, &mut socket, &mut got).expect("server failed");
                assert_eq!(got, stream, "bytes changed on the way");
                let mut rest = Vec::new();
                let _ = client.reader().read_to_end(&mut rest);
            }
        }
    }
    let _ = stack.close(socket);
});

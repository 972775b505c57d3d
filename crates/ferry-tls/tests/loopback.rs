//! `TlsStack<StdStack>` against rustls' own client over loopback sockets.
//!
//! A small server runs in a thread: an implicit-TLS listener for "control"
//! connections and a plain listener for "data" connections, on which it
//! starts TLS with the latest control connection (as the engine does under
//! `PROT P`). Every connection echoes what it receives, except one whose
//! first line is `SEND n`: it sends `n` bytes and closes at once (the
//! lingering close must still deliver them and `close_notify`).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_net::std_stack::{StdClock, StdSocket, StdStack};
use ferry_net::{nb, SecureStack, TcpClientStack, TcpFullStack, TcpLocalAddr};
use ferry_tls::self_signed::{self, SelfSigned};
use ferry_tls::{ClockTime, TlsConfig, TlsSocket, TlsStack};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};

const TIMEOUT: Duration = Duration::from_secs(10);

type Stack = TlsStack<StdStack, StdClock>;
type Sock = TlsSocket<StdSocket>;

/// What one server-side connection does.
enum Mode {
    /// Not decided: waiting for the first line.
    Start,
    Echo,
    /// Sending this many more pattern bytes, then closing.
    Send(usize),
}

struct Conn {
    sock: Sock,
    mode: Mode,
    input: Vec<u8>,
    out: Vec<u8>,
    /// Bytes a `SEND` connection produced so far.
    sent: usize,
    eof: bool,
}

/// The byte at `i` of a `SEND` stream.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

struct Server {
    control: SocketAddr,
    data: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Errors the server's connections saw, as text.
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(cert: &SelfSigned, require_reuse: bool) -> Server {
        Server::with_config(tls_config(cert).require_session_reuse(require_reuse))
    }

    /// Serves with the small device provider and 2 KB records out.
    fn device(cert: &SelfSigned) -> Server {
        let server = rustls::ServerConfig::builder_with_details(
            Arc::new(ferry_tls::device::provider()),
            Arc::new(ClockTime(StdClock::new())),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.clone()], cert.key.clone_key())
        .unwrap();
        Server::with_config(TlsConfig::new(server).max_record_plaintext(2048))
    }

    fn with_config(config: TlsConfig) -> Server {
        let clock = StdClock::new();
        let config = config.handshake_timeout_ms(3_000);
        // Its own address: port 0 names no port, and `implicit_addr` must
        // match the control listener alone.
        let implicit: SocketAddr = "127.0.0.2:0".parse().unwrap();
        let mut stack =
            TlsStack::new(StdStack::new().unwrap(), clock, config).implicit_addr(implicit);
        let mut control_listener = stack.socket().unwrap();
        stack.bind_addr(&mut control_listener, implicit).unwrap();
        stack.listen(&mut control_listener).unwrap();
        let mut data_listener = stack.socket().unwrap();
        stack
            .bind_addr(&mut data_listener, "127.0.0.1:0".parse().unwrap())
            .unwrap();
        stack.listen(&mut data_listener).unwrap();
        let control = stack.local_addr(&control_listener).unwrap();
        let data = stack.local_addr(&data_listener).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let errors = Arc::clone(&errors);
            std::thread::spawn(move || {
                serve(stack, control_listener, data_listener, &stop, &errors);
            })
        };
        Server {
            control,
            data,
            stop,
            errors,
            thread: Some(thread),
        }
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut stack: Stack,
    mut control_listener: Sock,
    mut data_listener: Sock,
    stop: &AtomicBool,
    errors: &Mutex<Vec<String>>,
) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut last_control: Option<usize> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut busy = false;
        while let Ok((sock, _)) = stack.accept(&mut control_listener) {
            assert!(stack.is_tls(&sock));
            conns.push(new_conn(sock));
            last_control = Some(conns.len() - 1);
            busy = true;
        }
        while let Ok((mut sock, _)) = stack.accept(&mut data_listener) {
            let control = last_control.and_then(|i| conns.get(i)).map(|c| &c.sock);
            stack.start_tls(&mut sock, control).unwrap();
            conns.push(new_conn(sock));
            busy = true;
        }
        let mut i = 0;
        while i < conns.len() {
            match step(&mut stack, &mut conns[i]) {
                Ok(progress) => {
                    busy |= progress;
                    let c = &conns[i];
                    // A sender is done once every byte went into TLS.
                    let finished = match c.mode {
                        Mode::Send(0) => c.out.is_empty(),
                        _ => c.eof && c.out.is_empty(),
                    };
                    if finished {
                        let c = conns.remove(i);
                        fix_last(&mut last_control, i);
                        stack.close(c.sock).unwrap();
                        continue;
                    }
                }
                Err(e) => {
                    errors.lock().unwrap().push(e);
                    let c = conns.remove(i);
                    fix_last(&mut last_control, i);
                    let _ = stack.close(c.sock);
                    continue;
                }
            }
            i += 1;
        }
        if !busy && !stack.has_pending() {
            stack
                .inner_mut()
                .wait(Some(Duration::from_millis(20)))
                .unwrap();
        }
    }
    for c in conns {
        let _ = stack.close(c.sock);
    }
}

fn fix_last(last: &mut Option<usize>, removed: usize) {
    *last = match *last {
        Some(l) if l == removed => None,
        Some(l) if l > removed => Some(l - 1),
        other => other,
    };
}

fn new_conn(sock: Sock) -> Conn {
    Conn {
        sock,
        mode: Mode::Start,
        input: Vec::new(),
        out: Vec::new(),
        sent: 0,
        eof: false,
    }
}

/// One round of a connection's work; whether anything moved.
fn step(stack: &mut Stack, c: &mut Conn) -> Result<bool, String> {
    let mut busy = false;
    let mut buf = [0u8; 8192];
    if !c.eof {
        match stack.receive(&mut c.sock, &mut buf) {
            Ok(0) => {
                c.eof = true;
                busy = true;
            }
            Ok(n) => {
                busy = true;
                match c.mode {
                    Mode::Start => {
                        c.input.extend_from_slice(&buf[..n]);
                        if let Some(end) = c.input.iter().position(|b| *b == b'\n') {
                            let line = String::from_utf8_lossy(&c.input[..end]).to_string();
                            if let Some(n) = line.strip_prefix("SEND ") {
                                c.mode = Mode::Send(n.trim().parse().unwrap());
                            } else {
                                c.mode = Mode::Echo;
                                c.out.append(&mut c.input);
                            }
                        }
                    }
                    Mode::Echo => c.out.extend_from_slice(&buf[..n]),
                    Mode::Send(_) => {}
                }
            }
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => return Err(e.to_string()),
        }
    }
    if let Mode::Send(left) = c.mode {
        if c.out.is_empty() && left > 0 {
            let n = left.min(4096);
            c.out = (0..n).map(|i| pattern(c.sent + i)).collect();
            c.sent += n;
            c.mode = Mode::Send(left - n);
        }
    }
    while !c.out.is_empty() {
        match stack.send(&mut c.sock, &c.out) {
            Ok(n) => {
                c.out.drain(..n);
                busy = true;
            }
            Err(nb::Error::WouldBlock) => break,
            Err(nb::Error::Other(e)) => return Err(e.to_string()),
        }
    }
    Ok(busy)
}

// ------------------------------------------------------------------ client

/// The servers' TLS settings for `cert`, defaults otherwise.
fn tls_config(cert: &SelfSigned) -> TlsConfig {
    TlsConfig::from_der(
        vec![cert.cert.clone()],
        cert.key.clone_key(),
        Arc::new(ClockTime(StdClock::new())),
    )
    .unwrap()
}

fn cert() -> SelfSigned {
    self_signed::generate(&["localhost".to_string(), "127.0.0.1".to_string()]).unwrap()
}

fn client_config(cert: &CertificateDer<'static>, tls12: bool) -> Arc<ClientConfig> {
    client_with(cert, tls12, ferry_tls::provider())
}

/// A client that offers only what `provider` has.
fn client_with(
    cert: &CertificateDer<'static>,
    tls12: bool,
    provider: rustls::crypto::CryptoProvider,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Client = StreamOwned<ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::clone(config), name).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Writes `data`, reads the same number of bytes back, checks them.
fn echo(client: &mut Client, data: &[u8]) {
    client.write_all(data).unwrap();
    client.flush().unwrap();
    let mut back = vec![0; data.len()];
    client.read_exact(&mut back).unwrap();
    assert!(back == data, "echo differs");
}

/// Sends close_notify and reads to the end: the server must answer with
/// its own close_notify (a clean end, not a truncation).
fn finish(mut client: Client) {
    client.conn.send_close_notify();
    client.flush().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

fn both_versions(test: impl Fn(bool)) {
    for tls12 in [false, true] {
        test(tls12);
    }
}

// ------------------------------------------------------------------- tests

#[test]
fn implicit_tls_echoes_and_closes_cleanly() {
    let cert = cert();
    both_versions(|tls12| {
        let server = Server::start(&cert, false);
        let config = client_config(&cert.cert, tls12);
        let mut client = connect(server.control, &config);
        echo(&mut client, b"hello\n");
        echo(&mut client, b"second line\n");
        let version = client.conn.protocol_version().unwrap();
        assert_eq!(version == rustls::ProtocolVersion::TLSv1_2, tls12);
        finish(client);
        assert!(server.errors().is_empty(), "{:?}", server.errors());
    });
}

#[test]
fn large_transfers_both_ways() {
    let cert = cert();
    both_versions(|tls12| {
        let server = Server::start(&cert, false);
        let config = client_config(&cert.cert, tls12);
        let mut control = connect(server.control, &config);
        echo(&mut control, b"ctrl\n");
        // Upload and echo 512 KiB in pieces larger than a record (the
        // crypto is slow in debug builds; release runs 10x the size fast).
        let mut data = connect(server.data, &config);
        let blob: Vec<u8> = (0..512 << 10).map(|i: usize| (i * 7 % 256) as u8).collect();
        echo(&mut data, b"start\n");
        for piece in blob.chunks(100_000) {
            echo(&mut data, piece);
        }
        finish(data);
        // Download: the server sends and closes at once.
        let n = 1 << 20;
        let mut data = connect(server.data, &config);
        data.write_all(format!("SEND {n}\n").as_bytes()).unwrap();
        data.flush().unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), n);
        assert!(got.iter().enumerate().all(|(i, b)| *b == pattern(i)));
        finish(control);
        assert!(server.errors().is_empty(), "{:?}", server.errors());
    });
}

#[test]
fn empty_download_still_completes_the_handshake() {
    // FileZilla expects a handshake even when the server closes at once.
    let cert = cert();
    let server = Server::start(&cert, false);
    let config = client_config(&cert.cert, false);
    let mut data = connect(server.data, &config);
    data.write_all(b"SEND 0\n").unwrap();
    data.flush().unwrap();
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert!(got.is_empty());
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn data_connections_resume_the_control_session() {
    let cert = cert();
    both_versions(|tls12| {
        let server = Server::start(&cert, true);
        let config = client_config(&cert.cert, tls12);
        let mut control = connect(server.control, &config);
        echo(&mut control, b"ctrl\n");
        // TLS 1.2: the session ID serves any number of data connections,
        // more than the control connection's cache holds sessions (data
        // connections must not push it out). TLS 1.3: rustls' client uses
        // each ticket once, and the control connection sent two.
        let transfers = if tls12 { 10 } else { 2 };
        for _ in 0..transfers {
            let mut data = connect(server.data, &config);
            echo(&mut data, b"resumed\n");
            assert_eq!(data.conn.handshake_kind(), Some(HandshakeKind::Resumed));
            finish(data);
        }
        assert!(server.errors().is_empty(), "{:?}", server.errors());

        // Another client (no session of this control connection) is refused.
        let stranger = client_config(&cert.cert, tls12);
        let mut data = connect(server.data, &stranger);
        // The handshake runs inside the first write, and fails there (or
        // the read after it sees the connection closed).
        let mut buf = [0u8; 16];
        let refused = data
            .write_all(b"take over\n")
            .and_then(|()| data.flush())
            .is_err()
            || !matches!(data.read(&mut buf), Ok(n) if n > 0);
        assert!(refused);
        let deadline = Instant::now() + TIMEOUT;
        while server.errors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let errors = server.errors();
        assert!(
            errors.len() == 1 && errors[0].contains("did not resume"),
            "{errors:?}"
        );
        // The control connection is unharmed.
        echo(&mut control, b"still here\n");
        finish(control);
    });
}

#[test]
fn without_the_policy_a_full_handshake_is_fine() {
    let cert = cert();
    let server = Server::start(&cert, false);
    let config = client_config(&cert.cert, true);
    let mut control = connect(server.control, &config);
    echo(&mut control, b"ctrl\n");
    let mut data = connect(server.data, &client_config(&cert.cert, true));
    echo(&mut data, b"full handshake\n");
    assert_eq!(data.conn.handshake_kind(), Some(HandshakeKind::Full));
    finish(data);
    finish(control);
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn garbage_and_stalled_handshakes_do_not_disturb_others() {
    let cert = cert();
    let server = Server::start(&cert, false);
    let config = client_config(&cert.cert, false);
    // Plain FTP text on the implicit-TLS port.
    let mut garbage = TcpStream::connect(server.control).unwrap();
    garbage.set_read_timeout(Some(TIMEOUT)).unwrap();
    garbage.write_all(b"USER anonymous\r\n").unwrap();
    // A client that stops after half a ClientHello.
    let mut stalled = TcpStream::connect(server.control).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // A good client meanwhile.
    let mut good = connect(server.control, &config);
    echo(&mut good, b"fine\n");
    // The garbage connection is closed (maybe after an alert).
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert!(rest.len() < 64, "{rest:?}");
    // The stalled one times out after the handshake timeout (3 s here).
    stalled.set_read_timeout(Some(TIMEOUT)).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(started.elapsed() < TIMEOUT);
    echo(&mut good, b"still fine\n");
    finish(good);
    let errors = server.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("timed out")), "{errors:?}");
}

#[test]
fn stack_without_tls_stays_plain() {
    let mut stack = TlsStack::without_tls(StdStack::new().unwrap(), StdClock::new());
    assert!(!stack.tls_available());
    let mut l = stack.socket().unwrap();
    stack
        .bind_addr(&mut l, "127.0.0.1:0".parse().unwrap())
        .unwrap();
    stack.listen(&mut l).unwrap();
    let addr = stack.local_addr(&l).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let (mut s, _) = loop {
        match stack.accept(&mut l) {
            Ok(pair) => break pair,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(!stack.is_tls(&s));
    assert_eq!(
        stack.start_tls(&mut s, None),
        Err(ferry_net::TlsError::Unavailable)
    );
    client.write_all(b"plain").unwrap();
    let mut buf = [0u8; 5];
    let mut got = 0;
    while got < 5 && Instant::now() < deadline {
        match stack.receive(&mut s, &mut buf[got..]) {
            Ok(n) => got += n,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert_eq!(&buf, b"plain");
    stack.close(s).unwrap();
    stack.close(l).unwrap();
    assert_eq!(stack.lingering(), 0);
}

#[test]
fn device_provider_serves_each_suite_and_group() {
    let cert = cert();
    let server = Server::device(&cert);
    let full = ferry_tls::provider();
    for tls12 in [false, true] {
        let suites: Vec<_> = ferry_tls::device::provider()
            .cipher_suites
            .into_iter()
            .filter(|s| (s.version() == &rustls::version::TLS12) == tls12)
            .collect();
        assert_eq!(suites.len(), 2);
        for suite in suites {
            for group in [rustls::NamedGroup::X25519, rustls::NamedGroup::secp256r1] {
                let mut provider = full.clone();
                provider.cipher_suites = vec![suite];
                provider.kx_groups.retain(|g| g.name() == group);
                let config = client_with(&cert.cert, tls12, provider);
                let mut client = connect(server.control, &config);
                echo(&mut client, b"hello\n");
                assert_eq!(client.conn.negotiated_cipher_suite(), Some(suite));
                assert_eq!(
                    client
                        .conn
                        .negotiated_key_exchange_group()
                        .map(|g| g.name()),
                    Some(group)
                );
                // Bigger than a record both ways (the server's are 2 KB).
                let blob: Vec<u8> = (0..40_000).map(|i: usize| (i * 13 % 256) as u8).collect();
                echo(&mut client, &blob);
                finish(client);
            }
        }
    }
    // Offered nothing the device has (only P-384): refused, no panic.
    let mut provider = full.clone();
    provider
        .kx_groups
        .retain(|g| g.name() == rustls::NamedGroup::secp384r1);
    let config = client_with(&cert.cert, false, provider);
    let mut client = connect(server.control, &config);
    assert!(client
        .write_all(b"x")
        .and_then(|()| client.flush())
        .is_err());
    // The server records the failure just after it sends the alert.
    let started = Instant::now();
    while server.errors().is_empty() && started.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(10));
    }
    let errors = server.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn key_updates_both_ways_keep_the_stream_whole() {
    let cert = cert();
    let server = Server::start(&cert, false);
    let config = client_config(&cert.cert, false);
    let mut client = connect(server.control, &config);
    echo(&mut client, b"before\n");
    for round in 0..3 {
        // A KeyUpdate that asks the server to update its own key too.
        client.conn.refresh_traffic_keys().unwrap();
        echo(&mut client, format!("after {round}\n").as_bytes());
    }
    finish(client);
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

#[test]
fn a_record_larger_than_tls_allows_ends_that_connection_only() {
    let cert = cert();
    let server = Server::start(&cert, false);
    let config = client_config(&cert.cert, false);
    let mut good = connect(server.control, &config);
    echo(&mut good, b"fine\n");
    // A handshake record announcing 20 000 bytes, and then sending them.
    let mut big = TcpStream::connect(server.control).unwrap();
    big.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut record = vec![0x16, 0x03, 0x01, 0x4e, 0x20];
    record.resize(5 + 20_000, 0);
    let _ = big.write_all(&record);
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not closed at once"
    );
    // The same after the handshake, inside a session.
    let mut session = connect(server.control, &config);
    echo(&mut session, b"mine\n");
    let mut record = vec![0x17, 0x03, 0x03, 0x4e, 0x20];
    record.resize(5 + 20_000, 0);
    let _ = session.sock.write_all(&record);
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = session.sock.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not closed at once"
    );
    echo(&mut good, b"still fine\n");
    finish(good);
    let errors = server.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("MessageTooLarge")),
        "{errors:?}"
    );
}

#[test]
fn a_p256_key_given_as_its_scalar_serves() {
    use p256::pkcs8::DecodePrivateKey;
    let cert = cert();
    let secret = p256::SecretKey::from_pkcs8_der(cert.key.secret_der()).unwrap();
    let time = Arc::new(ClockTime(StdClock::new()));
    let config =
        TlsConfig::from_p256_key(vec![cert.cert.clone()], &secret.to_bytes(), time.clone())
            .unwrap();
    let server = Server::with_config(config);
    let mut client = connect(server.control, &client_config(&cert.cert, false));
    echo(&mut client, b"scalar\n");
    finish(client);
    // Not a scalar of the curve: refused when the config is built.
    assert!(TlsConfig::from_p256_key(vec![cert.cert.clone()], &[0; 32], time.clone()).is_err());
    assert!(TlsConfig::from_p256_key(vec![cert.cert.clone()], &[1; 31], time).is_err());
}

#[test]
fn a_split_handshake_message_too_long_to_be_one_fails_cleanly() {
    // Found by fuzzing: rustls keeps the start of a handshake message that
    // claims 6.6 MB; the server must fail this connection with an alert,
    // not panic, and keep serving.
    let cert = cert();
    let server = Server::start(&cert, false);
    let mut bad = TcpStream::connect(server.control).unwrap();
    bad.set_read_timeout(Some(TIMEOUT)).unwrap();
    bad.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, b'h', b'e'])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    bad.write_all(b"llo").unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    // An alert record at most.
    assert!(rest.len() <= 7, "{rest:?}");
    let mut good = connect(server.control, &client_config(&cert.cert, false));
    echo(&mut good, b"fine\n");
    finish(good);
    assert_eq!(server.errors().len(), 1, "{:?}", server.errors());
}

#[test]
fn connections_past_the_limit_are_refused_before_they_allocate() {
    let cert = cert();
    let config = TlsConfig::from_der(
        vec![cert.cert.clone()],
        cert.key.clone_key(),
        Arc::new(ClockTime(StdClock::new())),
    )
    .unwrap()
    .max_connections(1);
    let server = Server::with_config(config);
    let client = client_config(&cert.cert, false);
    let mut first = connect(server.control, &client);
    echo(&mut first, b"one\n");
    // A second TLS connection while the first is open: closed at once.
    let mut second = connect(server.control, &client);
    assert!(
        second
            .write_all(b"x")
            .and_then(|()| second.flush())
            .is_err()
            || second.read(&mut [0; 1]).map_or(true, |n| n == 0)
    );
    echo(&mut first, b"still one\n");
    finish(first);
    // Once it has gone (its lingering close included), there is room again.
    let started = Instant::now();
    loop {
        let mut next = connect(server.control, &client);
        next.write_all(b"again\n").unwrap();
        let _ = next.flush();
        let mut back = [0u8; 6];
        if next.read_exact(&mut back).is_ok() {
            assert_eq!(&back, b"again\n");
            finish(next);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no room after the first closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(feature = "release-idle")]
#[test]
fn control_connections_that_free_idle_buffers_keep_the_stream_whole() {
    let cert = cert();
    both_versions(|tls12| {
        let server = Server::with_config(tls_config(&cert).release_idle_buffers(true));
        let config = client_config(&cert.cert, tls12);
        let mut client = connect(server.control, &config);
        for round in 0..5 {
            // Idle in between: the server frees its buffers, then needs
            // them again for the next record.
            std::thread::sleep(Duration::from_millis(30));
            echo(&mut client, format!("line {round}\n").as_bytes());
        }
        // Many records at once, and records split across reads.
        let big: Vec<u8> = (0..200_000).map(pattern).collect();
        echo(&mut client, &big);
        if !tls12 {
            client.conn.refresh_traffic_keys().unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
        echo(&mut client, b"after\n");
        finish(client);
        assert!(server.errors().is_empty(), "{:?}", server.errors());
    });
}

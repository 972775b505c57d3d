//! The W5500 adapter (`w5500_stack`) over the emulated chip
//! (`w5500_emulator`), against std sockets on loopback: the contract the
//! engine relies on (module docs of `w5500_stack`).
#![cfg(feature = "w5500-emulator")]

use std::io::{Read, Write};
use std::net::{Ipv6Addr, Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant as StdInstant};

use ferry_net::w5500_emulator::W5500Emulator;
use ferry_net::w5500_stack::{W5500Config, W5500Error, W5500Socket, W5500Stack};
use ferry_net::{
    nb, Instant, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpError, TcpErrorKind,
    TcpFullStack, TcpLocalAddr,
};

type Stack = W5500Stack<W5500Emulator>;
type Error = W5500Error<core::convert::Infallible>;

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const DEADLINE: Duration = Duration::from_secs(10);

fn stack() -> Stack {
    let config = W5500Config {
        ip: LOCALHOST,
        subnet: Ipv4Addr::new(255, 0, 0, 0),
        close_timeout_ms: 2_000,
        ..W5500Config::default()
    };
    let mut stack = W5500Stack::new(W5500Emulator::new(), config);
    stack.init().expect("init");
    stack
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind((LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn now(start: StdInstant) -> Instant {
    Instant(start.elapsed().as_millis() as u64)
}

/// Polls `f` (and the stack) until it is not `WouldBlock`, within the
/// deadline.
fn until<T>(
    stack: &mut Stack,
    mut f: impl FnMut(&mut Stack) -> nb::Result<T, Error>,
) -> Result<T, Error> {
    let start = StdInstant::now();
    loop {
        stack.poll(now(start)).expect("poll");
        match f(stack) {
            Ok(v) => return Ok(v),
            Err(nb::Error::Other(e)) => return Err(e),
            Err(nb::Error::WouldBlock) => {
                assert!(start.elapsed() < DEADLINE, "timed out");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn listener(stack: &mut Stack, port: u16) -> W5500Socket {
    let mut l = stack.socket().expect("socket");
    stack
        .bind_addr(&mut l, SocketAddr::new(IpAddr::V4(LOCALHOST), port))
        .expect("bind");
    stack.listen(&mut l).expect("listen");
    l
}

fn client(port: u16) -> TcpStream {
    let c = TcpStream::connect((LOCALHOST, port)).expect("connect");
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.set_write_timeout(Some(DEADLINE)).unwrap();
    c
}

/// Sends all of `data` through the stack, polling.
fn send_all(stack: &mut Stack, socket: &mut W5500Socket, mut data: &[u8]) {
    while !data.is_empty() {
        let n = until(stack, |s| s.send(socket, data)).expect("send");
        data = &data[n..];
    }
}

/// Receives until the peer's FIN (Ok(0)).
fn receive_to_end(stack: &mut Stack, socket: &mut W5500Socket) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 3000];
    loop {
        let n = until(stack, |s| s.receive(socket, &mut buf)).expect("receive");
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn two_clients_at_once_are_both_accepted_with_their_addresses() {
    let mut stack = stack();
    let port = free_port();
    let mut l = listener(&mut stack, port);
    let a = client(port);
    let b = client(port);
    let (sa, peer_a) = until(&mut stack, |s| s.accept(&mut l)).expect("first");
    let (sb, peer_b) = until(&mut stack, |s| s.accept(&mut l)).expect("second");
    let mut peers = [peer_a, peer_b];
    peers.sort();
    let mut expected = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    expected.sort();
    assert_eq!(peers, expected);
    assert_eq!(
        stack.local_addr(&sa).unwrap(),
        SocketAddr::new(IpAddr::V4(LOCALHOST), port)
    );
    stack.close(sa).unwrap();
    stack.close(sb).unwrap();
}

#[test]
fn large_data_both_ways_through_2_kib_buffers() {
    let mut stack = stack();
    let port = free_port();
    let mut l = listener(&mut stack, port);
    let data = pattern(200_000);
    let mut c = client(port);
    let (mut s, _) = until(&mut stack, |st| st.accept(&mut l)).expect("accept");

    // Client to chip: the client writes on a thread (the chip's window is
    // 2 KiB), then closes its side.
    let upload = data.clone();
    let mut writer = c.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        writer.write_all(&upload).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let got = receive_to_end(&mut stack, &mut s);
    t.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "received bytes differ");

    // Chip to client, then close: the client reads everything, then EOF.
    let reader = std::thread::spawn(move || {
        let mut back = Vec::new();
        c.read_to_end(&mut back).map(|_| back)
    });
    send_all(&mut stack, &mut s, &data);
    stack.close(s).unwrap();
    let start = StdInstant::now();
    while !reader.is_finished() {
        stack.poll(now(start)).unwrap();
        assert!(start.elapsed() < DEADLINE, "the client never saw EOF");
        std::thread::sleep(Duration::from_millis(1));
    }
    let back = reader.join().unwrap().expect("client read");
    assert!(
        back == data,
        "sent bytes differ ({} of {})",
        back.len(),
        data.len()
    );
    // The closed connection's socket comes back once its FIN is answered.
    let start = StdInstant::now();
    while stack.free_sockets() < 8 - 2 {
        stack.poll(now(start)).unwrap();
        assert!(start.elapsed() < DEADLINE, "socket not freed");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn receive_reports_the_peers_fin_after_its_data_and_a_reset_as_pipe_closed() {
    let mut stack = stack();
    let port = free_port();
    let mut l = listener(&mut stack, port);
    let mut c = client(port);
    let (mut s, _) = until(&mut stack, |st| st.accept(&mut l)).expect("accept");
    c.write_all(b"last words").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(receive_to_end(&mut stack, &mut s), b"last words");
    // Sending still works after the peer's FIN (half-close).
    send_all(&mut stack, &mut s, b"reply");
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"reply");
    stack.close(s).unwrap();

    // A reset: SO_LINGER 0 makes close send RST.
    let c2 = client(port);
    let (mut s2, _) = until(&mut stack, |st| st.accept(&mut l)).expect("accept");
    socket2::SockRef::from(&c2)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c2);
    let mut buf = [0u8; 16];
    let e = until(&mut stack, |st| st.receive(&mut s2, &mut buf)).expect_err("a reset");
    assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
    stack.close(s2).unwrap();
}

#[test]
fn connect_reaches_a_listener_and_a_closed_port_is_refused() {
    let mut stack = stack();
    let server = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let remote = server.local_addr().unwrap();
    let mut s = stack.socket().unwrap();
    until(&mut stack, |st| st.connect(&mut s, remote)).expect("connect");
    let (mut peer, from) = server.accept().unwrap();
    let local = stack.local_addr(&s).unwrap();
    assert_eq!(local.ip(), IpAddr::V4(LOCALHOST));
    assert!(local.port() >= 49152, "an ephemeral port: {local}");
    assert_eq!(from.ip(), IpAddr::V4(LOCALHOST));
    send_all(&mut stack, &mut s, b"active mode");
    let mut buf = [0u8; 11];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"active mode");
    stack.close(s).unwrap();
    // The peer sees our FIN, closes too, and the socket comes back.
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
    drop(peer);
    let start = StdInstant::now();
    while stack.free_sockets() < 8 {
        stack.poll(now(start)).unwrap();
        assert!(start.elapsed() < DEADLINE, "socket not freed");
        std::thread::sleep(Duration::from_millis(1));
    }

    let closed = SocketAddr::new(IpAddr::V4(LOCALHOST), free_port());
    let mut s = stack.socket().unwrap();
    let e = until(&mut stack, |st| st.connect(&mut s, closed)).expect_err("refused");
    assert_eq!(e, W5500Error::ConnectionRefused);
    stack.close(s).unwrap();
    assert_eq!(stack.free_sockets(), 8);
}

#[test]
fn eight_sockets_run_out_gracefully_and_come_back() {
    let mut stack = stack();
    let port = free_port();
    // backlog 2: four listeners take all eight sockets.
    let mut listeners: Vec<W5500Socket> =
        (0..4).map(|i| listener(&mut stack, port + i + 1)).collect();
    assert_eq!(stack.free_sockets(), 0);
    let mut fifth = stack.socket().unwrap();
    stack.bind(&mut fifth, port).unwrap();
    assert_eq!(stack.listen(&mut fifth), Err(W5500Error::NoSocket));
    let mut active = stack.socket().unwrap();
    let far = SocketAddr::new(IpAddr::V4(LOCALHOST), 9);
    assert_eq!(
        stack.connect(&mut active, far),
        Err(nb::Error::Other(W5500Error::NoSocket))
    );
    for l in listeners.drain(..) {
        stack.close(l).unwrap();
    }
    assert_eq!(stack.free_sockets(), 8);
    stack
        .listen(&mut fifth)
        .expect("listen once sockets are free");
    stack.close(fifth).unwrap();
    stack.close(active).unwrap();
}

#[test]
fn handles_addresses_and_ports_are_checked() {
    let mut stack = stack();
    let port = free_port();
    let mut l = listener(&mut stack, port);
    // The same port again, and an address that is not the chip's.
    let mut again = stack.socket().unwrap();
    assert_eq!(
        stack.bind_addr(&mut again, SocketAddr::new(IpAddr::V4(LOCALHOST), port)),
        Err(W5500Error::AddrInUse)
    );
    assert_eq!(
        stack.bind_addr(
            &mut again,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), port + 1)
        ),
        Err(W5500Error::AddrNotAvailable)
    );
    assert_eq!(
        stack.bind_addr(
            &mut again,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0)
        ),
        Err(W5500Error::Unsupported)
    );
    // An IPv4-mapped address is IPv4; port 0 picks an ephemeral port.
    let mapped = IpAddr::V6(LOCALHOST.to_ipv6_mapped());
    stack
        .bind_addr(&mut again, SocketAddr::new(mapped, 0))
        .unwrap();
    assert!(stack.local_addr(&again).unwrap().port() >= 49152);
    // Operations that the state does not allow.
    let mut buf = [0u8; 4];
    assert_eq!(
        stack.receive(&mut l, &mut buf),
        Err(nb::Error::Other(W5500Error::InvalidState))
    );
    assert_eq!(
        stack.accept(&mut again).map(|_| ()),
        Err(nb::Error::Other(W5500Error::InvalidState))
    );
    // A closed handle is stale, never a panic; the table is bounded.
    stack.close(again).unwrap();
    let mut handles = Vec::new();
    loop {
        match stack.socket() {
            Ok(h) => handles.push(h),
            Err(e) => {
                assert_eq!(e, W5500Error::NoHandle);
                break;
            }
        }
    }
    assert!(handles.len() >= 8, "only {} handles", handles.len());
    for h in handles {
        stack.close(h).unwrap();
    }
    stack.close(l).unwrap();
}

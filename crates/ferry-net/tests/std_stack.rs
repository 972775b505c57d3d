//! `StdStack` over real loopback sockets (127.0.0.1 and ::1).
#![cfg(feature = "std")]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ferry_net::std_stack::{StdClock, StdNetError, StdSocket, StdStack};
use ferry_net::{nb, Clock, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, TcpLocalAddr};

/// How many `wait`s a retry loop may take before the test fails.
const MAX_TRIES: usize = 200;
/// How long one `wait` of a retry loop may block.
const TRY_WAIT: Duration = Duration::from_millis(100);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Repeats `op`, waiting for readiness after each `WouldBlock`, until it
/// completes; panics if it never does.
fn until_done<T>(
    stack: &mut StdStack,
    mut op: impl FnMut(&mut StdStack) -> nb::Result<T, StdNetError>,
) -> Result<T, StdNetError> {
    for _ in 0..MAX_TRIES {
        match op(stack) {
            Ok(value) => return Ok(value),
            Err(nb::Error::Other(e)) => return Err(e),
            Err(nb::Error::WouldBlock) => stack.wait(Some(TRY_WAIT)).expect("wait"),
        }
    }
    panic!("operation still blocked after {MAX_TRIES} waits");
}

/// A listener bound to `ip` on an ephemeral port, or `None` when the host
/// cannot bind that address (no IPv6).
fn listener(stack: &mut StdStack, ip: IpAddr) -> Option<(StdSocket, SocketAddr)> {
    let mut sock = stack.socket().expect("socket");
    if let Err(e) = stack.bind_addr(&mut sock, SocketAddr::new(ip, 0)) {
        eprintln!("skipping {ip}: cannot bind it ({e})");
        stack.close(sock).expect("close");
        return None;
    }
    stack.listen(&mut sock).expect("listen");
    let local = stack.local_addr(&sock).expect("local_addr");
    assert_eq!(local.ip(), ip);
    assert_ne!(local.port(), 0);
    Some((sock, local))
}

/// A connected pair: the stack's accepted socket and a blocking std client.
fn accepted_pair(stack: &mut StdStack, ip: IpAddr) -> Option<(StdSocket, StdSocket, TcpStream)> {
    let (mut listen, local) = listener(stack, ip)?;
    let client = TcpStream::connect(local).expect("client connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let (conn, peer) = until_done(stack, |s| s.accept(&mut listen)).expect("accept");
    assert_eq!(peer, client.local_addr().expect("client local"));
    assert_eq!(
        stack.local_addr(&conn).expect("conn local"),
        client.peer_addr().expect("client peer")
    );
    Some((listen, conn, client))
}

/// Receives exactly `len` bytes from `sock`.
fn receive_exactly(stack: &mut StdStack, sock: &mut StdSocket, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < len {
        let n = until_done(stack, |s| s.receive(sock, &mut buf)).expect("receive");
        assert_ne!(n, 0, "peer closed early");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Sends all of `data` on `sock`.
fn send_all(stack: &mut StdStack, sock: &mut StdSocket, mut data: &[u8]) {
    while !data.is_empty() {
        let n = until_done(stack, |s| s.send(sock, data)).expect("send");
        data = &data[n..];
    }
}

fn exchange_both_ways(ip: IpAddr) {
    let mut stack = StdStack::new().expect("stack");
    let Some((listen, mut conn, mut client)) = accepted_pair(&mut stack, ip) else {
        return;
    };

    // Nothing sent yet: receive must not block.
    let mut buf = [0u8; 16];
    assert!(matches!(
        stack.receive(&mut conn, &mut buf),
        Err(nb::Error::WouldBlock)
    ));

    client
        .write_all(b"USER anonymous\r\n")
        .expect("client write");
    assert_eq!(
        receive_exactly(&mut stack, &mut conn, 16),
        b"USER anonymous\r\n"
    );

    // More than one socket buffer's worth, so `send` sees `WouldBlock`
    // while a reader thread drains the other end.
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let reader = {
        let mut client = client.try_clone().expect("clone");
        let len = big.len();
        thread::spawn(move || {
            let mut got = vec![0u8; len];
            client.read_exact(&mut got).expect("client read");
            got
        })
    };
    send_all(&mut stack, &mut conn, &big);
    assert!(reader.join().expect("reader") == big);

    stack.close(conn).expect("close conn");
    stack.close(listen).expect("close listener");
    assert_eq!(stack.socket_count(), 0);
}

#[test]
fn exchange_both_ways_v4() {
    exchange_both_ways(V4);
}

#[test]
fn exchange_both_ways_v6() {
    exchange_both_ways(V6);
}

#[test]
fn wait_times_out_without_events() {
    let mut stack = StdStack::new().expect("stack");
    let _listener = listener(&mut stack, V4).expect("listener");
    let start = Instant::now();
    stack.wait(Some(Duration::from_millis(50))).expect("wait");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn wait_returns_when_data_arrives() {
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("pair");
    // Consume the events of setting up (the new stream is writable).
    stack.wait(Some(Duration::ZERO)).expect("wait");
    stack.wait(Some(Duration::ZERO)).expect("wait");

    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        client.write_all(b"x").expect("client write");
        client
    });
    let start = Instant::now();
    let mut buf = [0u8; 8];
    let n = loop {
        match stack.receive(&mut conn, &mut buf) {
            Ok(n) => break n,
            Err(nb::Error::WouldBlock) => stack.wait(Some(Duration::from_secs(30))).expect("wait"),
            Err(nb::Error::Other(e)) => panic!("receive: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no wake-up");
    };
    assert_eq!(&buf[..n], b"x");
    assert!(start.elapsed() < Duration::from_secs(10), "wait slept on");
    drop(writer.join());
}

#[test]
fn waker_interrupts_wait() {
    let mut stack = StdStack::new().expect("stack");
    let waker = stack.waker().expect("waker");
    let waking = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        waker.wake().expect("wake");
    });
    let start = Instant::now();
    stack.wait(Some(Duration::from_secs(30))).expect("wait");
    assert!(start.elapsed() < Duration::from_secs(10));
    waking.join().expect("waker thread");
}

fn bind_addr_in_use_fails(ip: IpAddr) {
    let mut stack = StdStack::new().expect("stack");
    let Some((_listen, local)) = listener(&mut stack, ip) else {
        return;
    };
    let mut second = stack.socket().expect("socket");
    let err = stack
        .bind_addr(&mut second, local)
        .expect_err("port in use must fail");
    assert_eq!(err.kind(), TcpErrorKind::Other);
    // The failed socket is still usable on a free port.
    stack
        .bind_addr(&mut second, SocketAddr::new(ip, 0))
        .expect("bind free port");
}

#[test]
fn bind_addr_in_use_fails_v4() {
    bind_addr_in_use_fails(V4);
}

#[test]
fn bind_addr_in_use_fails_v6() {
    bind_addr_in_use_fails(V6);
}

#[test]
fn bind_any_port_accepts_v4_with_unmapped_addresses() {
    let mut stack = StdStack::new().expect("stack");
    let mut listen = stack.socket().expect("socket");
    stack.bind(&mut listen, 0).expect("bind");
    stack.listen(&mut listen).expect("listen");
    let port = stack.local_addr(&listen).expect("local").port();

    let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    let (conn, peer) = until_done(&mut stack, |s| s.accept(&mut listen)).expect("accept");
    // A dual-stack listener sees ::ffff:127.0.0.1; the stack reports IPv4.
    assert_eq!(peer, client.local_addr().expect("client local"));
    assert!(peer.is_ipv4());
    assert_eq!(
        stack.local_addr(&conn).expect("conn local"),
        SocketAddr::new(V4, port)
    );
}

fn connect_to_closed_port_fails(ip: IpAddr) {
    // A port that was free a moment ago and has no listener now.
    let port = match TcpListener::bind((ip, 0)) {
        Ok(l) => l.local_addr().expect("local").port(),
        Err(e) => {
            eprintln!("skipping {ip}: cannot bind it ({e})");
            return;
        }
    };
    let mut stack = StdStack::new().expect("stack");
    let mut sock = stack.socket().expect("socket");
    let err = until_done(&mut stack, |s| {
        s.connect(&mut sock, SocketAddr::new(ip, port))
    })
    .expect_err("connect to a closed port must fail");
    assert_eq!(err.0.kind(), std::io::ErrorKind::ConnectionRefused);
    stack.close(sock).expect("close");
}

#[test]
fn connect_to_closed_port_fails_v4() {
    connect_to_closed_port_fails(V4);
}

#[test]
fn connect_to_closed_port_fails_v6() {
    connect_to_closed_port_fails(V6);
}

fn connect_to_listener(remote_ip: IpAddr, listen_ip: IpAddr) {
    let server = match TcpListener::bind((listen_ip, 0)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping {listen_ip}: cannot bind it ({e})");
            return;
        }
    };
    let port = server.local_addr().expect("local").port();
    let mut stack = StdStack::new().expect("stack");
    let mut sock = stack.socket().expect("socket");
    let remote = SocketAddr::new(remote_ip, port);
    until_done(&mut stack, |s| s.connect(&mut sock, remote)).expect("connect");
    // Asking again once connected is harmless.
    stack.connect(&mut sock, remote).expect("connect again");

    let (mut accepted, peer) = server.accept().expect("accept");
    assert_eq!(stack.local_addr(&sock).expect("local_addr"), peer);
    send_all(&mut stack, &mut sock, b"227 Entering Passive Mode\r\n");
    let mut got = [0u8; 27];
    accepted.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"227 Entering Passive Mode\r\n");
    stack.close(sock).expect("close");
}

#[test]
fn connect_to_listening_port_v4() {
    connect_to_listener(V4, V4);
}

#[test]
fn connect_to_listening_port_v6() {
    connect_to_listener(V6, V6);
}

#[test]
fn connect_unmaps_ipv4_mapped_remote() {
    connect_to_listener(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()), V4);
}

#[test]
fn peer_close_gives_zero_then_send_fails() {
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, client) = accepted_pair(&mut stack, V4).expect("pair");
    drop(client);
    let mut buf = [0u8; 8];
    let n = until_done(&mut stack, |s| s.receive(&mut conn, &mut buf)).expect("receive");
    assert_eq!(n, 0, "peer close reads as Ok(0)");

    // The first write after the peer closed may still succeed (the peer
    // answers it with a reset); a later one fails with a pipe error.
    let mut failure = None;
    for _ in 0..MAX_TRIES {
        match stack.send(&mut conn, b"426 closed\r\n") {
            Ok(_) | Err(nb::Error::WouldBlock) => stack.wait(Some(TRY_WAIT)).expect("wait"),
            Err(nb::Error::Other(e)) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("send to a closed peer must fail");
    assert_eq!(failure.kind(), TcpErrorKind::PipeClosed, "{failure:?}");
}

/// A read that takes less than it was offered: the stack waits for the
/// next event before reading that socket again (Linux), and the bytes sent
/// after it still arrive.
#[test]
fn after_a_short_read_new_bytes_still_arrive() {
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("pair");
    let mut buf = [0u8; 64];
    for round in 0..20u8 {
        let line = [b'a' + round; 10];
        client.write_all(&line).expect("send");
        let n = until_done(&mut stack, |s| s.receive(&mut conn, &mut buf)).expect("receive");
        assert_eq!(&buf[..n], &line, "round {round}");
        assert!(
            matches!(
                stack.receive(&mut conn, &mut buf),
                Err(nb::Error::WouldBlock)
            ),
            "nothing more was sent"
        );
    }
}

/// Bytes and the end of the stream that arrive together: the short read of
/// the bytes does not hide the end, which the next read sees at once.
#[test]
fn a_short_read_does_not_hide_the_end_of_the_stream() {
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("pair");
    // A first event, so that the stack tracks readiness from here on.
    client.write_all(b"one").expect("send");
    let mut buf = [0u8; 64];
    let n = until_done(&mut stack, |s| s.receive(&mut conn, &mut buf)).expect("receive");
    assert_eq!(&buf[..n], b"one");
    client.write_all(b"last").expect("send");
    drop(client);
    // Both have arrived before the stack hears of them.
    thread::sleep(Duration::from_millis(50));
    stack.wait(Some(TRY_WAIT)).expect("wait");
    let n = stack.receive(&mut conn, &mut buf).expect("the last bytes");
    assert_eq!(&buf[..n], b"last");
    assert_eq!(
        stack
            .receive(&mut conn, &mut buf)
            .expect("the end, without a wait"),
        0
    );
}

#[test]
fn state_errors_are_reported_not_panics() {
    let mut stack = StdStack::new().expect("stack");
    let mut sock = stack.socket().expect("socket");
    let mut buf = [0u8; 4];
    assert!(stack.listen(&mut sock).is_err());
    assert!(stack.local_addr(&sock).is_err());
    assert!(matches!(
        stack.receive(&mut sock, &mut buf),
        Err(nb::Error::Other(_))
    ));
    assert!(matches!(stack.accept(&mut sock), Err(nb::Error::Other(_))));

    stack
        .bind_addr(&mut sock, SocketAddr::new(V4, 0))
        .expect("bind");
    stack
        .listen(&mut sock)
        .expect("listen is a no-op when listening");
    assert!(stack.bind_addr(&mut sock, SocketAddr::new(V4, 0)).is_err());
    assert!(matches!(
        stack.send(&mut sock, b"x"),
        Err(nb::Error::Other(_))
    ));
    assert!(matches!(
        stack.accept(&mut sock),
        Err(nb::Error::WouldBlock)
    ));
    assert!(matches!(
        stack.connect(&mut sock, SocketAddr::new(V4, 21)),
        Err(nb::Error::Other(_))
    ));
    stack.close(sock).expect("close");
}

#[test]
fn close_frees_and_reuses_entries() {
    let mut stack = StdStack::new().expect("stack");
    let a = stack.socket().expect("socket");
    let b = stack.socket().expect("socket");
    assert_eq!(stack.socket_count(), 2);
    stack.close(a).expect("close");
    assert_eq!(stack.socket_count(), 1);
    let c = stack.socket().expect("socket");
    assert_eq!(stack.socket_count(), 2);
    stack.close(b).expect("close");
    stack.close(c).expect("close");
    assert_eq!(stack.socket_count(), 0);

    // A handle of another stack is refused, not confused with a socket here.
    let mut other = StdStack::new().expect("stack");
    let foreign = other.socket().expect("socket");
    assert!(stack.close(foreign).is_err());
}

#[test]
fn a_closed_connections_entry_serves_the_next_one() {
    // Closing drops the socket without deregistering it on Linux: the
    // system's epoll set forgets it, and the entry's next socket hears of
    // its own events alone.
    let mut stack = StdStack::new().expect("stack");
    let (mut listen, first, mut first_client) = accepted_pair(&mut stack, V4).expect("pair");
    let local = stack.local_addr(&first).expect("local");
    stack.close(first).expect("close");
    first_client.write_all(b"to a closed socket").ok();
    // The closed socket's events, if any, wake nothing that is still open.
    stack.wait(Some(Duration::from_millis(50))).expect("wait");

    let listen_addr = stack.local_addr(&listen).expect("listener local");
    let mut client = TcpStream::connect(listen_addr).expect("connect");
    let (mut second, _) = until_done(&mut stack, |s| s.accept(&mut listen)).expect("accept");
    assert_eq!(stack.socket_count(), 2, "the closed entry is taken again");
    // Asked twice: the second answer is the first, remembered.
    for _ in 0..2 {
        let mine = stack.local_addr(&second).expect("local");
        assert_eq!(mine, client.peer_addr().expect("client peer"));
        assert_eq!(mine.ip(), local.ip());
    }
    client.write_all(b"hello").expect("client write");
    assert_eq!(receive_exactly(&mut stack, &mut second, 5), b"hello");
    send_all(&mut stack, &mut second, b"back");
    let mut buf = [0u8; 4];
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.read_exact(&mut buf).expect("client read");
    assert_eq!(&buf, b"back");
    // The first client sees its connection closed.
    first_client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = first_client.read_to_end(&mut rest);
    assert!(rest.is_empty());
    stack.close(second).expect("close");
    stack.close(listen).expect("close");
    assert_eq!(stack.socket_count(), 0);
}

#[test]
fn error_kinds() {
    let kind = |k| StdNetError(std::io::Error::from(k)).kind();
    use std::io::ErrorKind as K;
    assert_eq!(kind(K::BrokenPipe), TcpErrorKind::PipeClosed);
    assert_eq!(kind(K::ConnectionReset), TcpErrorKind::PipeClosed);
    assert_eq!(kind(K::ConnectionAborted), TcpErrorKind::PipeClosed);
    assert_eq!(kind(K::NotConnected), TcpErrorKind::PipeClosed);
    assert_eq!(kind(K::AddrInUse), TcpErrorKind::Other);
    assert_eq!(kind(K::ConnectionRefused), TcpErrorKind::Other);
}

#[test]
fn clock_is_monotonic_and_knows_the_date() {
    let clock = StdClock::new();
    let a = clock.now();
    thread::sleep(Duration::from_millis(5));
    let b = clock.now();
    assert!(b >= a);
    assert!(b.millis_since(a) >= 1);
    // After 2020-01-01.
    assert!(clock.unix_time().expect("unix time") > 1_577_836_800);
}

#[test]
fn a_borrowed_stack_is_the_stack_it_borrows() {
    use ferry_net::Borrowed;
    let mut owned = StdStack::new().expect("stack");
    let (mut listener, addr) = {
        let mut borrowed = Borrowed(&mut owned);
        let mut sock = borrowed.socket().expect("socket");
        borrowed
            .bind_addr(&mut sock, SocketAddr::new(V4, 0))
            .expect("bind");
        borrowed.listen(&mut sock).expect("listen");
        let addr = borrowed.local_addr(&sock).expect("local_addr");
        (sock, addr)
    };
    assert_ne!(addr.port(), 0);
    let mut client = TcpStream::connect(addr).expect("connect");
    client.write_all(b"through a borrow").expect("write");
    // Accept and read through the borrow; the owner sees the same sockets.
    let (mut conn, peer) =
        until_done(&mut owned, |s| Borrowed(s).accept(&mut listener)).expect("accept");
    assert_eq!(peer.ip(), V4);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 16 {
        let n =
            until_done(&mut owned, |s| Borrowed(s).receive(&mut conn, &mut buf)).expect("receive");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"through a borrow");
    let sent = until_done(&mut owned, |s| Borrowed(s).send(&mut conn, b"back")).expect("send");
    assert_eq!(sent, 4);
    let mut back = [0u8; 4];
    client.read_exact(&mut back).expect("read");
    assert_eq!(&back, b"back");
    Borrowed(&mut owned).close(conn).expect("close");
    owned.close(listener).expect("close listener");
}

/// Linux: `send_file` sends the file's bytes from its position, in as
/// many calls as the socket takes, moving the position past them; `Ok(0)`
/// at its end.
#[cfg(target_os = "linux")]
#[test]
fn send_file_sends_a_file_from_its_position() {
    use ferry_net::{OsFile, SecureStack};
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("IPv4 loopback");
    let data = pattern(3_000_000);
    let dir = scratch_dir("sendfile");
    let path = dir.join("f.bin");
    std::fs::write(&path, &data).expect("write");
    let mut file = std::fs::File::open(&path).expect("open");
    let from = 12_345usize;
    file.seek(SeekFrom::Start(from as u64)).expect("seek");
    let fd = OsFile(file.as_raw_fd());
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("read");
        got
    });
    let mut sent = 0;
    loop {
        let n = until_done(&mut stack, |s| {
            s.send_file(&mut conn, fd, 1 << 20)
                .expect("the std stack sends files")
        })
        .expect("send_file");
        if n == 0 {
            break;
        }
        sent += n;
    }
    assert_eq!(from + sent, data.len());
    stack.close(conn).expect("close");
    let got = reader.join().expect("reader");
    assert!(got == data[from..], "bytes differ ({} received)", got.len());
    let at = file.stream_position().expect("position");
    assert_eq!(at, data.len() as u64, "the file's position did not move");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Linux: `receive_file` writes what arrives, at the file's position, in
/// as many calls as it takes, and `Ok(0)` when the client has closed.
#[cfg(target_os = "linux")]
#[test]
fn receive_file_writes_what_arrives_at_the_files_position() {
    use ferry_net::OsFile;
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("IPv4 loopback");
    let data = pattern(5_000_000);
    let dir = scratch_dir("splice");
    let path = dir.join("up.bin");
    let head = b"kept head:";
    std::fs::write(&path, head).expect("write");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.seek(SeekFrom::End(0)).expect("seek");
    let fd = OsFile(file.as_raw_fd());
    let sent = data.clone();
    let writer = thread::spawn(move || {
        client.write_all(&sent).expect("send");
    });
    let got = receive_all(&mut stack, &mut conn, fd, 300_000);
    writer.join().expect("writer");
    assert_eq!(got, data.len());
    let on_disk = std::fs::read(&path).expect("read back");
    assert_eq!(&on_disk[..head.len()], head);
    assert!(on_disk[head.len()..] == data[..], "file bytes differ");
    stack.close(conn).expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Linux: a file that refuses the bytes is a storage failure, not the
/// connection's, and the next receive into a good file still works (the
/// stack's pipe held nothing over).
#[cfg(target_os = "linux")]
#[test]
fn receive_file_reports_a_failing_file_as_storage() {
    use ferry_net::{FileError, OsFile, SecureStack};
    use std::os::fd::AsRawFd;
    let mut stack = StdStack::new().expect("stack");
    let (_listen, mut conn, mut client) = accepted_pair(&mut stack, V4).expect("IPv4 loopback");
    let dir = scratch_dir("splice-bad");
    let path = dir.join("ro.bin");
    std::fs::write(&path, b"").expect("write");
    let read_only = std::fs::File::open(&path).expect("open");
    client.write_all(b"lost").expect("send");
    let failed = until_done(&mut stack, |s| {
        match s.receive_file(&mut conn, OsFile(read_only.as_raw_fd()), 1024) {
            Some(Err(nb::Error::Other(FileError::Storage { no_space }))) => Ok(no_space),
            Some(Err(nb::Error::WouldBlock)) => Err(nb::Error::WouldBlock),
            other => panic!("expected a storage failure, got {other:?}"),
        }
    })
    .expect("receive_file");
    assert!(!failed, "a read-only file is not a full disk");
    let good_path = dir.join("good.bin");
    let good = std::fs::File::create(&good_path).expect("create");
    client.write_all(b"kept").expect("send");
    drop(client);
    let got = receive_all(&mut stack, &mut conn, OsFile(good.as_raw_fd()), 1024);
    assert_eq!(got, 4);
    assert_eq!(std::fs::read(&good_path).expect("read back"), b"kept");
    stack.close(conn).expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Receives into `file`, `len` bytes at most a call, until the peer
/// closes; how many bytes came. Panics if the file fails.
#[cfg(target_os = "linux")]
fn receive_all(
    stack: &mut StdStack,
    conn: &mut StdSocket,
    file: ferry_net::OsFile,
    len: usize,
) -> usize {
    use ferry_net::{FileError, SecureStack};
    let mut got = 0;
    loop {
        let n = until_done(stack, |s| {
            s.receive_file(conn, file, len)
                .expect("the std stack receives into files")
                .map_err(|e| {
                    e.map(|e| match e {
                        FileError::Net(e) => e,
                        other => panic!("the file failed: {other:?}"),
                    })
                })
        })
        .expect("receive_file");
        assert!(n <= len, "moved {n}, more than asked");
        if n == 0 {
            return got;
        }
        got += n;
    }
}

/// `len` bytes of a pattern that does not repeat every power of two.
#[cfg(target_os = "linux")]
fn pattern(len: u32) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A fresh directory under the system's temporary one for test `name`.
#[cfg(target_os = "linux")]
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

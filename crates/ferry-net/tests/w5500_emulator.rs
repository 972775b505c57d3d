//! `W5500Emulator` driven through `w5500_ll::Registers` only, against std
//! TCP peers on 127.0.0.1.
#![cfg(feature = "w5500-emulator")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ferry_net::w5500_emulator::W5500Emulator;
use w5500_ll::{
    BufferSize, Mode, Protocol, Registers, Sn, SocketCommand, SocketInterrupt, SocketMode,
    SocketStatus, COMMON_BLOCK_OFFSET, SOCKETS, VERSION,
};

/// How long any wait of a test may take before it fails.
const DEADLINE: Duration = Duration::from_secs(5);
/// The pause between two polls of a waiting loop.
const POLL: Duration = Duration::from_millis(1);

const CON: u8 = SocketInterrupt::CON_MASK;
const DISCON: u8 = SocketInterrupt::DISCON_MASK;
const RECV: u8 = SocketInterrupt::RECV_MASK;
const TIMEOUT: u8 = SocketInterrupt::TIMEOUT_MASK;
const SEND_OK: u8 = SocketInterrupt::SENDOK_MASK;

/// A chip at 127.0.0.1.
fn chip() -> W5500Emulator {
    let mut chip = W5500Emulator::new();
    chip.set_sipr(&Ipv4Addr::LOCALHOST).unwrap();
    chip
}

/// A loopback port that nothing listens on (as far as we know).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn status(chip: &mut W5500Emulator, sn: Sn) -> SocketStatus {
    chip.sn_sr(sn).unwrap().expect("a known status")
}

/// Polls `sn`'s status until it is `want`.
fn wait_status(chip: &mut W5500Emulator, sn: Sn, want: SocketStatus) {
    let start = Instant::now();
    loop {
        let now = status(chip, sn);
        if now == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{sn:?} stays {now:?}, not {want:?}"
        );
        thread::sleep(POLL);
    }
}

/// Reads `sn`'s interrupts and clears them.
fn take_interrupts(chip: &mut W5500Emulator, sn: Sn) -> u8 {
    let raised = u8::from(chip.sn_ir(sn).unwrap());
    chip.set_sn_ir(sn, raised).unwrap();
    raised
}

/// OPEN as TCP with local port `port`: INIT.
fn open(chip: &mut W5500Emulator, sn: Sn, port: u16) {
    chip.set_sn_mr(sn, SocketMode::DEFAULT.set_protocol(Protocol::Tcp))
        .unwrap();
    chip.set_sn_port(sn, port).unwrap();
    chip.set_sn_cr(sn, SocketCommand::Open).unwrap();
    assert_eq!(status(chip, sn), SocketStatus::Init);
}

fn listen(chip: &mut W5500Emulator, sn: Sn, port: u16) {
    open(chip, sn, port);
    chip.set_sn_cr(sn, SocketCommand::Listen).unwrap();
    assert_eq!(status(chip, sn), SocketStatus::Listen);
}

/// A std client connected to socket `sn`, which listens on a free port.
fn accepted(chip: &mut W5500Emulator, sn: Sn) -> TcpStream {
    let port = free_port();
    listen(chip, sn, port);
    let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    wait_status(chip, sn, SocketStatus::Established);
    assert_eq!(take_interrupts(chip, sn) & CON, CON);
    client
}

/// Writes as much of `data` as fits into the TX buffer and SENDs it;
/// returns how much that was.
fn send_some(chip: &mut W5500Emulator, sn: Sn, data: &[u8]) -> usize {
    let free = usize::from(chip.sn_tx_fsr(sn).unwrap());
    let n = free.min(data.len());
    if n > 0 {
        let wr = chip.sn_tx_wr(sn).unwrap();
        chip.set_sn_tx_buf(sn, wr, &data[..n]).unwrap();
        chip.set_sn_tx_wr(sn, wr.wrapping_add(n as u16)).unwrap();
        chip.set_sn_cr(sn, SocketCommand::Send).unwrap();
    }
    n
}

/// SENDs all of `data`, waiting for room.
fn send_all(chip: &mut W5500Emulator, sn: Sn, mut data: &[u8]) {
    let start = Instant::now();
    while !data.is_empty() {
        let n = send_some(chip, sn, data);
        data = &data[n..];
        if n == 0 {
            assert!(start.elapsed() < DEADLINE, "TX buffer stays full");
            thread::sleep(POLL);
        }
    }
}

/// Takes up to `max` received bytes out of the RX buffer (RECV).
fn recv_some(chip: &mut W5500Emulator, sn: Sn, max: usize) -> Vec<u8> {
    let n = usize::from(chip.sn_rx_rsr(sn).unwrap()).min(max);
    let mut data = vec![0; n];
    if n > 0 {
        let rd = chip.sn_rx_rd(sn).unwrap();
        chip.sn_rx_buf(sn, rd, &mut data).unwrap();
        chip.set_sn_rx_rd(sn, rd.wrapping_add(n as u16)).unwrap();
        chip.set_sn_cr(sn, SocketCommand::Recv).unwrap();
    }
    data
}

/// Receives exactly `len` bytes.
fn recv_exact(chip: &mut W5500Emulator, sn: Sn, len: usize) -> Vec<u8> {
    let start = Instant::now();
    let mut data = Vec::new();
    while data.len() < len {
        let got = recv_some(chip, sn, len - data.len());
        if got.is_empty() {
            assert!(
                start.elapsed() < DEADLINE,
                "got {} of {len} bytes",
                data.len()
            );
            thread::sleep(POLL);
        }
        data.extend(got);
    }
    data
}

/// Bytes that show a reordering or a wrong wrap.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn reset_values_version_and_phy() {
    let mut chip = W5500Emulator::new();
    assert_eq!(chip.version().unwrap(), VERSION);
    assert_eq!(u8::from(chip.phycfgr().unwrap()), 0xBF);
    assert_eq!(chip.rtr().unwrap(), 2000);
    assert_eq!(chip.rcr().unwrap(), 8);
    for &sn in SOCKETS.iter() {
        assert_eq!(status(&mut chip, sn), SocketStatus::Closed);
        assert_eq!(chip.sn_txbuf_size(sn).unwrap(), Ok(BufferSize::KB2));
        assert_eq!(chip.sn_rxbuf_size(sn).unwrap(), Ok(BufferSize::KB2));
        assert_eq!(chip.sn_tx_fsr(sn).unwrap(), 2048);
        assert_eq!(chip.sn_rx_rsr(sn).unwrap(), 0);
        assert_eq!(chip.sn_ttl(sn).unwrap(), 0x80);
        assert_eq!(chip.sn_frag(sn).unwrap(), 0x4000);
    }
}

#[test]
fn soft_reset_restores_power_on_state_and_stops_listening() {
    let mut chip = chip();
    let port = free_port();
    listen(&mut chip, Sn::Sn3, port);
    chip.set_sn_txbuf_size(Sn::Sn3, BufferSize::KB8).unwrap();
    chip.set_mr(Mode::DEFAULT.rst()).unwrap();

    assert_eq!(u8::from(chip.mr().unwrap()), 0, "RST self-clears");
    assert_eq!(chip.sipr().unwrap(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(chip.sn_port(Sn::Sn3).unwrap(), 0);
    assert_eq!(status(&mut chip, Sn::Sn3), SocketStatus::Closed);
    assert_eq!(chip.sn_tx_fsr(Sn::Sn3).unwrap(), 2048);
    assert_eq!(chip.version().unwrap(), VERSION);
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn buffer_offsets_wrap_within_one_access() {
    let mut chip = chip();
    let sn = Sn::Sn1;
    // 0xFFFE is offset 2046 of the 2 KiB buffer: the access wraps to 0.
    chip.set_sn_tx_buf(sn, 0xFFFE, &[1, 2, 3, 4]).unwrap();
    let mut back = [0; 4];
    chip.sn_tx_buf(sn, 0x07FE, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    let mut start = [0; 2];
    chip.sn_tx_buf(sn, 0x0800, &mut start).unwrap();
    assert_eq!(start, [3, 4]);

    chip.set_sn_rxbuf_size(sn, BufferSize::KB1).unwrap();
    chip.set_sn_rx_buf(sn, 1023, &[9, 8]).unwrap();
    let mut rx = [0; 2];
    chip.sn_rx_buf(sn, 0, &mut rx).unwrap();
    assert_eq!(rx, [8, 0]);
}

#[test]
fn registers_span_and_read_only_registers_hold() {
    let mut chip = chip();
    let sn = Sn::Sn2;
    // One write across Sn_DIPR and Sn_DPORT.
    let dest = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 2121);
    chip.set_sn_dest(sn, &dest).unwrap();
    assert_eq!(chip.sn_dest(sn).unwrap(), dest);
    assert_eq!(chip.sn_dport(sn).unwrap(), 2121);
    // Sn_TX_FSR, Sn_TX_RD and Sn_RX_RSR ignore writes; Sn_CR reads 0.
    chip.write(0x20, sn.block(), &[0, 1, 0, 2]).unwrap();
    assert_eq!(chip.sn_tx_fsr(sn).unwrap(), 2048);
    assert_eq!(chip.sn_tx_rd(sn).unwrap(), 0);
    chip.set_sn_cr(sn, SocketCommand::Close).unwrap();
    assert_eq!(chip.sn_cr(sn).unwrap(), 0);
    // An invalid buffer size is not taken.
    chip.write(0x1F, sn.block(), &[3]).unwrap();
    assert_eq!(chip.sn_txbuf_size(sn).unwrap(), Ok(BufferSize::KB2));
}

#[test]
fn any_access_is_safe() {
    let mut chip = chip();
    for block in 0..=u8::MAX {
        for addr in [0, 1, 0x2F, 0x30, 0x39, 0x3A, 0x7FF, 0xFFFF] {
            for len in [0, 1, 2, 7, 64, 3000] {
                let mut data = vec![0; len];
                chip.read(addr, block, &mut data).unwrap();
                // Avoid MR.RST, which would undo the destinations above.
                if block != COMMON_BLOCK_OFFSET {
                    chip.write(addr, block, &vec![0xFF; len]).unwrap();
                }
            }
        }
    }
    // Every command value from INIT, and in the states the values before it
    // left, with a peer that refuses connections.
    let closed = free_port();
    for &sn in SOCKETS.iter() {
        chip.set_sn_dest(sn, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, closed))
            .unwrap();
        chip.set_sn_mr(sn, SocketMode::DEFAULT.set_protocol(Protocol::Tcp))
            .unwrap();
        for command in 0..=u8::MAX {
            chip.write(0x01, sn.block(), &[command]).unwrap();
            let _ = chip.sn_sr(sn).unwrap();
            chip.set_sn_cr(sn, SocketCommand::Open).unwrap();
            chip.write(0x01, sn.block(), &[command]).unwrap();
            let _ = chip.sn_sr(sn).unwrap();
        }
        chip.set_sn_cr(sn, SocketCommand::Close).unwrap();
    }
    assert!(chip.bus_accesses() > 0);
}

#[test]
fn udp_is_not_supported() {
    let mut chip = chip();
    chip.set_sn_mr(Sn::Sn0, SocketMode::DEFAULT.set_protocol(Protocol::Udp))
        .unwrap();
    chip.set_sn_cr(Sn::Sn0, SocketCommand::Open).unwrap();
    assert_eq!(status(&mut chip, Sn::Sn0), SocketStatus::Closed);
}

#[test]
fn two_sockets_listening_on_one_port_take_two_clients() {
    let mut chip = chip();
    let port = free_port();
    listen(&mut chip, Sn::Sn0, port);
    listen(&mut chip, Sn::Sn1, port);
    let mut a = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut b = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    wait_status(&mut chip, Sn::Sn0, SocketStatus::Established);
    wait_status(&mut chip, Sn::Sn1, SocketStatus::Established);
    assert_eq!(chip.sir().unwrap(), 0b11, "CON on both");

    // Each socket names its own client, and carries its bytes.
    let a_addr = a.local_addr().unwrap();
    let b_addr = b.local_addr().unwrap();
    let dest0 = chip.sn_dest(Sn::Sn0).unwrap();
    let (sn_a, sn_b) = if dest0.port() == a_addr.port() {
        (Sn::Sn0, Sn::Sn1)
    } else {
        (Sn::Sn1, Sn::Sn0)
    };
    assert_eq!(
        std::net::SocketAddr::V4(chip.sn_dest(sn_a).unwrap()),
        a_addr
    );
    assert_eq!(
        std::net::SocketAddr::V4(chip.sn_dest(sn_b).unwrap()),
        b_addr
    );
    a.write_all(b"from a").unwrap();
    b.write_all(b"from b").unwrap();
    assert_eq!(recv_exact(&mut chip, sn_a, 6), b"from a");
    assert_eq!(recv_exact(&mut chip, sn_b, 6), b"from b");
    send_all(&mut chip, sn_b, b"to b");
    let mut reply = [0; 4];
    b.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"to b");

    // No socket listens any more: the host refuses a third client.
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

/// Echoes `len` bytes from a client back to it through buffers of `size`.
fn echo(size: BufferSize, len: usize) {
    let mut chip = chip();
    let sn = Sn::Sn4;
    chip.set_sn_txbuf_size(sn, size).unwrap();
    chip.set_sn_rxbuf_size(sn, size).unwrap();
    let client = accepted(&mut chip, sn);
    let data = pattern(len);

    let mut writer = client.try_clone().unwrap();
    let to_send = data.clone();
    let sender = thread::spawn(move || writer.write_all(&to_send).unwrap());
    let mut reader = client;
    let receiver = thread::spawn(move || {
        let mut back = vec![0; len];
        reader.read_exact(&mut back).unwrap();
        back
    });

    let start = Instant::now();
    let mut pending: Vec<u8> = Vec::new();
    let mut echoed = 0;
    while echoed < len {
        assert!(start.elapsed() < DEADLINE, "echoed {echoed} of {len}");
        if pending.is_empty() {
            pending = recv_some(&mut chip, sn, usize::MAX);
        }
        let n = send_some(&mut chip, sn, &pending);
        pending.drain(..n);
        echoed += n;
        if n == 0 {
            thread::sleep(POLL);
        }
    }
    sender.join().unwrap();
    assert!(receiver.join().unwrap() == data, "echo differs");
    // The u16 pointers went round.
    assert!(len > 0x10000);
    let tx_wr = chip.sn_tx_wr(sn).unwrap();
    assert_eq!(usize::from(tx_wr), len % 0x10000);
    let start = Instant::now();
    while chip.sn_tx_rd(sn).unwrap() != tx_wr {
        assert!(start.elapsed() < DEADLINE, "TX never drains");
        thread::sleep(POLL);
    }
    assert_eq!(usize::from(chip.sn_rx_rd(sn).unwrap()), len % 0x10000);
    assert_eq!(
        take_interrupts(&mut chip, sn) & (RECV | SEND_OK),
        RECV | SEND_OK
    );
}

#[test]
fn echo_through_2_kib_buffers() {
    echo(BufferSize::KB2, 150_000);
}

#[test]
fn echo_through_16_kib_buffers() {
    echo(BufferSize::KB16, 300_000);
}

#[test]
fn full_rx_buffer_stops_the_peer() {
    let mut chip = chip();
    let sn = Sn::Sn5;
    chip.set_sn_rxbuf_size(sn, BufferSize::KB1).unwrap();
    let mut client = accepted(&mut chip, sn);
    client.set_nonblocking(true).unwrap();
    let chunk = [7; 4096];
    let mut sent = 0;
    let mut stalls = 0;
    let start = Instant::now();
    // The client stalls once the host's buffers and the 1 KiB are full.
    while stalls < 10 {
        assert!(start.elapsed() < DEADLINE, "the client never stalls");
        match client.write(&chunk) {
            Ok(n) => {
                sent += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                let _ = chip.sn_sr(sn).unwrap();
                thread::sleep(POLL);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(chip.sn_rx_rsr(sn).unwrap(), 1024, "the buffer is full");
    // The driver reads all: everything the client sent arrives.
    let got = recv_exact(&mut chip, sn, sent);
    assert!(got.iter().all(|&b| b == 7));
}

#[test]
fn peer_fin_gives_close_wait_with_data_readable() {
    let mut chip = chip();
    let sn = Sn::Sn6;
    let mut client = accepted(&mut chip, sn);
    client.write_all(b"last words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    wait_status(&mut chip, sn, SocketStatus::CloseWait);
    assert_eq!(
        take_interrupts(&mut chip, sn) & (RECV | DISCON),
        RECV | DISCON
    );
    assert_eq!(recv_exact(&mut chip, sn, 10), b"last words");

    // Half-closed: we may still send, then close our side.
    send_all(&mut chip, sn, b"reply");
    chip.set_sn_cr(sn, SocketCommand::Disconnect).unwrap();
    wait_status(&mut chip, sn, SocketStatus::Closed);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"reply");
}

#[test]
fn discon_sends_fin_then_closes_at_the_peer_fin() {
    let mut chip = chip();
    let sn = Sn::Sn7;
    let mut client = accepted(&mut chip, sn);
    send_all(&mut chip, sn, b"bye");
    chip.set_sn_cr(sn, SocketCommand::Disconnect).unwrap();
    assert_eq!(status(&mut chip, sn), SocketStatus::FinWait);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    assert_eq!(status(&mut chip, sn), SocketStatus::FinWait);
    drop(client);
    wait_status(&mut chip, sn, SocketStatus::Closed);
    assert_eq!(take_interrupts(&mut chip, sn) & DISCON, DISCON);
}

#[test]
fn close_drops_the_connection_at_once() {
    let mut chip = chip();
    let sn = Sn::Sn2;
    let mut client = accepted(&mut chip, sn);
    chip.set_sn_cr(sn, SocketCommand::Close).unwrap();
    assert_eq!(status(&mut chip, sn), SocketStatus::Closed);
    let mut buf = [0; 8];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected end of stream or reset, got {other:?}"),
    }
}

#[test]
fn peer_reset_closes_with_discon() {
    let mut chip = chip();
    let sn = Sn::Sn3;
    let client = accepted(&mut chip, sn);
    // Unread data makes the client's close a reset.
    send_all(&mut chip, sn, b"unread");
    client.peek(&mut [0; 6]).unwrap();
    drop(client);
    let start = Instant::now();
    loop {
        // Sending to a reset peer fails, or reading reports it.
        send_some(&mut chip, sn, b"more");
        match status(&mut chip, sn) {
            SocketStatus::Closed => break,
            // The reset may show as a FIN first on some hosts.
            SocketStatus::CloseWait | SocketStatus::Established => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(start.elapsed() < DEADLINE, "the reset is never seen");
        thread::sleep(POLL);
    }
    assert_eq!(take_interrupts(&mut chip, sn) & DISCON, DISCON);
}

#[test]
fn connect_reaches_a_listening_peer_from_sn_port() {
    let mut chip = chip();
    let sn = Sn::Sn1;
    let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let server_port = server.local_addr().unwrap().port();
    let local_port = free_port();
    open(&mut chip, sn, local_port);
    chip.set_sn_dest(sn, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, server_port))
        .unwrap();
    chip.set_sn_cr(sn, SocketCommand::Connect).unwrap();
    wait_status(&mut chip, sn, SocketStatus::Established);
    assert_eq!(take_interrupts(&mut chip, sn) & CON, CON);

    let (mut peer, from) = server.accept().unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(from.port(), local_port);
    send_all(&mut chip, sn, b"PORT");
    let mut got = [0; 4];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"PORT");
    peer.write_all(b"200").unwrap();
    assert_eq!(recv_exact(&mut chip, sn, 3), b"200");
}

#[test]
fn connect_to_a_closed_port_times_out() {
    let mut chip = chip();
    let sn = Sn::Sn0;
    open(&mut chip, sn, free_port());
    chip.set_sn_dest(sn, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port()))
        .unwrap();
    chip.set_sn_cr(sn, SocketCommand::Connect).unwrap();
    wait_status(&mut chip, sn, SocketStatus::Closed);
    assert_eq!(take_interrupts(&mut chip, sn) & TIMEOUT, TIMEOUT);
}

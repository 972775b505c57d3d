//! `SmoltcpStack` over smoltcp's in-memory loopback device, on a virtual
//! clock: one interface with two addresses plays server and client, so
//! `accept` and `connect` are exercised against each other.
#![cfg(feature = "smoltcp")]

use ferry_net::smoltcp_stack::{SmolSocket, SmoltcpError, SmoltcpStack, StackConfig, StackStorage};
use ferry_net::{
    nb, IpAddr, Ipv4Addr, SocketAddr, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack,
    TcpLocalAddr,
};
use smoltcp::iface::{Config, Interface, SocketStorage};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

/// Pool and handle-table size of the test stacks.
const N: usize = 24;
/// Most virtual milliseconds a retry loop may take before the test fails.
const MAX_STEPS: usize = 20_000;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

type Stack = SmoltcpStack<'static, N>;

/// A stack on a loopback device with addresses `A` and `B`, and its clock.
struct Net {
    stack: Stack,
    device: Loopback,
    now: Instant,
}

fn interface(device: &mut Loopback) -> Interface {
    let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
    config.random_seed = 0x5eed;
    let mut iface = Interface::new(config, device, Instant::from_millis(0));
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(IpAddress::Ipv4(A), 24)).unwrap();
        addrs.push(IpCidr::new(IpAddress::Ipv4(B), 24)).unwrap();
    });
    iface
}

/// `sockets` pool sockets with `rx`/`tx`-byte buffers (leaked: tests only).
fn net_with(sockets: usize, rx: usize, tx: usize, config: StackConfig) -> Net {
    let mut device = Loopback::new(Medium::Ethernet);
    let iface = interface(&mut device);
    let storage: &'static mut [SocketStorage<'static>] = (0..sockets)
        .map(|_| SocketStorage::EMPTY)
        .collect::<Vec<_>>()
        .leak();
    let mut stack = SmoltcpStack::new(iface, storage, config);
    for _ in 0..sockets {
        let rx = vec![0u8; rx].leak();
        let tx = vec![0u8; tx].leak();
        stack.add_socket(rx, tx).expect("add_socket");
    }
    Net {
        stack,
        device,
        now: Instant::from_millis(0),
    }
}

fn net() -> Net {
    net_with(16, 4096, 4096, StackConfig::default())
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

impl Net {
    /// One millisecond passes and the stack moves packets.
    fn step(&mut self) {
        self.now += Duration::from_millis(1);
        self.stack.poll(self.now, &mut self.device);
    }

    /// Repeats `op`, stepping the clock after each `WouldBlock`, until it
    /// completes; panics if it never does.
    fn until<T>(
        &mut self,
        mut op: impl FnMut(&mut Stack) -> nb::Result<T, SmoltcpError>,
    ) -> Result<T, SmoltcpError> {
        for _ in 0..MAX_STEPS {
            match op(&mut self.stack) {
                Ok(value) => return Ok(value),
                Err(nb::Error::Other(e)) => return Err(e),
                Err(nb::Error::WouldBlock) => self.step(),
            }
        }
        panic!("operation still blocked after {MAX_STEPS} steps");
    }

    /// Steps until `done` holds; panics if it never does.
    fn settle(&mut self, mut done: impl FnMut(&mut Stack) -> bool) {
        for _ in 0..MAX_STEPS {
            if done(&mut self.stack) {
                return;
            }
            self.step();
        }
        panic!("the stack did not settle after {MAX_STEPS} steps");
    }

    fn listener(&mut self, local: SocketAddr) -> SmolSocket {
        let mut sock = self.stack.socket().expect("socket");
        self.stack.bind_addr(&mut sock, local).expect("bind_addr");
        self.stack.listen(&mut sock).expect("listen");
        sock
    }

    /// A client connected to `remote` and the connection `listener`
    /// accepted for it.
    fn pair(&mut self, listener: &mut SmolSocket, remote: SocketAddr) -> (SmolSocket, SmolSocket) {
        let mut client = self.stack.socket().expect("socket");
        self.until(|s| s.connect(&mut client, remote))
            .expect("connect");
        let (server, peer) = self.until(|s| s.accept(listener)).expect("accept");
        assert_eq!(peer, self.stack.local_addr(&client).expect("client local"));
        assert_eq!(
            self.stack.local_addr(&server).expect("server local"),
            remote
        );
        (client, server)
    }

    /// Sends all of `data` on `sock`.
    fn send_all(&mut self, sock: &mut SmolSocket, mut data: &[u8]) {
        while !data.is_empty() {
            let n = self.until(|s| s.send(sock, data)).expect("send");
            data = &data[n..];
        }
    }

    /// Receives until the peer closes (`Ok(0)`).
    fn receive_to_end(&mut self, sock: &mut SmolSocket) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        loop {
            match self.until(|s| s.receive(sock, &mut buf)).expect("receive") {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn exchange_both_ways_and_close_after_the_last_send() {
    let mut net = net();
    let mut listener = net.listener(addr(A, 2121));
    assert_eq!(net.stack.local_addr(&listener), Ok(addr(A, 2121)));
    let (mut client, mut server) = net.pair(&mut listener, addr(A, 2121));

    // Client to server: more than both buffers hold.
    let up = pattern(100_000, 1);
    let mut received = Vec::new();
    let mut buf = [0u8; 2000];
    let mut rest = &up[..];
    while received.len() < up.len() {
        if let Ok(n) = net.stack.send(&mut client, rest) {
            rest = &rest[n..];
        }
        if let Ok(n) = net.stack.receive(&mut server, &mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        net.step();
    }
    assert!(received == up, "upload corrupted");

    // Server to client, closed right after the last send (as the engine
    // closes a data connection): the client still gets every byte.
    let down = pattern(50_000, 2);
    let mut got = Vec::new();
    let mut rest = &down[..];
    while !rest.is_empty() {
        if let Ok(n) = net.stack.send(&mut server, rest) {
            rest = &rest[n..];
        }
        if let Ok(n) = net.stack.receive(&mut client, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        net.step();
    }
    net.stack.close(server).expect("close server");
    got.extend(net.receive_to_end(&mut client));
    assert!(got == down, "download corrupted or cut");
    net.stack.close(client).expect("close client");

    // Every socket but the listener's two comes back to the pool.
    net.settle(|s| s.free_sockets() == s.pool_size() - 2);
    net.stack.close(listener).expect("close listener");
    net.settle(|s| s.free_sockets() == s.pool_size());
    assert_eq!(net.stack.handle_count(), 0);
}

#[test]
fn a_full_transmit_buffer_is_flushed_after_close() {
    let mut net = net_with(8, 65536, 65536, StackConfig::default());
    let mut listener = net.listener(addr(A, 20));
    let (mut client, mut server) = net.pair(&mut listener, addr(A, 20));
    let data = pattern(65536, 3);
    assert_eq!(net.stack.send(&mut server, &data), Ok(data.len()));
    net.stack.close(server).expect("close");
    let got = net.receive_to_end(&mut client);
    assert!(
        got == data,
        "lost the tail after close: {} bytes",
        got.len()
    );
    net.stack.close(client).expect("close");
}

#[test]
fn a_burst_of_clients_is_accepted_with_a_backlog_of_two() {
    let mut net = net();
    let mut listener = net.listener(addr(A, 21));
    let mut clients: Vec<SmolSocket> = (0..5).map(|_| net.stack.socket().unwrap()).collect();
    // All SYNs go out before the server accepts anything.
    for c in clients.iter_mut() {
        assert_eq!(
            net.stack.connect(c, addr(A, 21)),
            Err(nb::Error::WouldBlock)
        );
    }
    for c in clients.iter_mut() {
        net.until(|s| s.connect(c, addr(A, 21))).expect("connect");
    }
    let mut accepted = Vec::new();
    while accepted.len() < clients.len() {
        let (sock, peer) = net.until(|s| s.accept(&mut listener)).expect("accept");
        accepted.push((sock, peer));
    }
    let mut peers: Vec<SocketAddr> = accepted.iter().map(|(_, p)| *p).collect();
    let mut locals: Vec<SocketAddr> = clients
        .iter()
        .map(|c| net.stack.local_addr(c).unwrap())
        .collect();
    peers.sort();
    locals.sort();
    assert_eq!(peers, locals);
    // The listener is re-armed after each accept.
    let extra = net.stack.socket().unwrap();
    let mut extra = extra;
    net.until(|s| s.connect(&mut extra, addr(A, 21)))
        .expect("connect after burst");
}

#[test]
fn max_pending_bounds_the_connections_waiting_for_accept() {
    let config = StackConfig {
        backlog: 2,
        max_pending: 3,
        ..StackConfig::default()
    };
    let mut net = net_with(20, 1024, 1024, config);
    let mut listener = net.listener(addr(A, 21));
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let mut client = net.stack.socket().unwrap();
        outcomes.push(net.until(|s| s.connect(&mut client, addr(A, 21))).is_ok());
    }
    // backlog + max_pending connections wait; the next one is refused.
    assert_eq!(outcomes, [true, true, true, true, true, false]);
    net.until(|s| s.accept(&mut listener)).expect("accept");
    let mut client = net.stack.socket().unwrap();
    net.until(|s| s.connect(&mut client, addr(A, 21)))
        .expect("room again after accept");
}

#[test]
fn a_connection_closed_before_accept_still_delivers_its_data() {
    let mut net = net();
    let mut listener = net.listener(addr(A, 2000));
    let mut client = net.stack.socket().unwrap();
    net.until(|s| s.connect(&mut client, addr(A, 2000)))
        .unwrap();
    net.send_all(&mut client, b"hello");
    net.stack.close(client).unwrap();
    for _ in 0..50 {
        net.step();
    }
    let (mut server, _) = net.until(|s| s.accept(&mut listener)).expect("accept");
    assert_eq!(net.receive_to_end(&mut server), b"hello");
}

#[test]
fn peer_close_gives_zero_then_send_fails() {
    let mut net = net();
    let mut listener = net.listener(addr(A, 2001));
    let (client, mut server) = net.pair(&mut listener, addr(A, 2001));
    net.stack.close(client).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(net.until(|s| s.receive(&mut server, &mut buf)), Ok(0));
    // The half-closed peer resets on data: sends start failing.
    let mut failed = None;
    for _ in 0..1000 {
        match net.stack.send(&mut server, b"data") {
            Err(nb::Error::Other(e)) => {
                failed = Some(e);
                break;
            }
            _ => net.step(),
        }
    }
    let e = failed.expect("send never failed");
    assert_eq!(e, SmoltcpError::ConnectionReset);
    assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
    // Reading a reset connection that had sent its FIN is end of stream
    // (or an error), never a wait.
    let after = net.stack.receive(&mut server, &mut buf);
    assert!(
        matches!(
            after,
            Ok(0) | Err(nb::Error::Other(SmoltcpError::ConnectionReset))
        ),
        "{after:?}"
    );
}

#[test]
fn connect_to_a_closed_port_is_refused_and_can_be_retried() {
    let mut net = net();
    let mut sock = net.stack.socket().unwrap();
    let result = net.until(|s| s.connect(&mut sock, addr(A, 9)));
    assert_eq!(result, Err(SmoltcpError::ConnectionRefused));
    // Unbound again: a listener appears, and the next attempt works.
    let mut listener = net.listener(addr(A, 9));
    net.until(|s| s.connect(&mut sock, addr(A, 9)))
        .expect("second attempt");
    net.until(|s| s.accept(&mut listener)).expect("accept");
}

#[test]
fn a_listener_bound_to_one_address_ignores_the_other() {
    let mut net = net();
    let _listener = net.listener(addr(A, 2121));
    let mut sock = net.stack.socket().unwrap();
    assert_eq!(
        net.until(|s| s.connect(&mut sock, addr(B, 2121))),
        Err(SmoltcpError::ConnectionRefused)
    );
    // The other address and the same port is free to bind.
    let mut other = net.listener(addr(B, 2121));
    net.until(|s| s.connect(&mut sock, addr(B, 2121)))
        .expect("connect to B");
    let (conn, _) = net.until(|s| s.accept(&mut other)).unwrap();
    assert_eq!(net.stack.local_addr(&conn), Ok(addr(B, 2121)));
}

#[test]
fn a_listener_on_any_address_reports_the_address_reached() {
    let mut net = net();
    let mut listener = net.stack.socket().unwrap();
    net.stack.bind(&mut listener, 2121).unwrap();
    net.stack.listen(&mut listener).unwrap();
    let (_, conn) = net.pair(&mut listener, addr(B, 2121));
    assert_eq!(net.stack.local_addr(&conn), Ok(addr(B, 2121)));
}

#[test]
fn binding_a_taken_port_fails_with_kind_other() {
    let mut net = net();
    let _a = net.listener(addr(A, 3000));
    for taken in [addr(A, 3000), addr(Ipv4Addr::UNSPECIFIED, 3000)] {
        let mut sock = net.stack.socket().unwrap();
        let e = net.stack.bind_addr(&mut sock, taken).unwrap_err();
        assert_eq!(e, SmoltcpError::AddrInUse);
        assert_eq!(e.kind(), TcpErrorKind::Other);
        net.stack.close(sock).unwrap();
    }
    let mut sock = net.stack.socket().unwrap();
    assert_eq!(
        net.stack
            .bind_addr(&mut sock, addr(Ipv4Addr::new(192, 0, 2, 1), 3001)),
        Err(SmoltcpError::AddrNotAvailable)
    );
}

#[test]
fn port_zero_picks_an_ephemeral_port() {
    let mut net = net();
    let mut sock = net.stack.socket().unwrap();
    net.stack.bind_addr(&mut sock, addr(A, 0)).unwrap();
    net.stack.listen(&mut sock).unwrap();
    let local = net.stack.local_addr(&sock).unwrap();
    assert_eq!(local.ip(), IpAddr::V4(A));
    assert!(local.port() >= 49152, "{local}");
    net.pair(&mut sock, local);
}

#[test]
fn ipv4_mapped_addresses_are_unmapped() {
    let mut net = net();
    let mapped = SocketAddr::new(IpAddr::V6(A.to_ipv6_mapped()), 2200);
    let mut listener = net.listener(mapped);
    assert_eq!(net.stack.local_addr(&listener), Ok(addr(A, 2200)));
    let mut client = net.stack.socket().unwrap();
    net.until(|s| s.connect(&mut client, mapped))
        .expect("connect");
    let (_, peer) = net.until(|s| s.accept(&mut listener)).unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(A));
}

#[test]
fn state_errors_are_reported_not_panics() {
    let mut net = net_with(3, 1024, 1024, StackConfig::default());
    let mut unbound = net.stack.socket().unwrap();
    let mut buf = [0u8; 4];
    let not_connected = Err(nb::Error::Other(SmoltcpError::NotConnected));
    assert_eq!(net.stack.send(&mut unbound, b"x"), not_connected);
    assert_eq!(net.stack.receive(&mut unbound, &mut buf), not_connected);
    assert_eq!(
        net.stack.accept(&mut unbound).map(|_| ()),
        Err(nb::Error::Other(SmoltcpError::InvalidState))
    );
    assert_eq!(
        net.stack.listen(&mut unbound),
        Err(SmoltcpError::InvalidState)
    );
    assert_eq!(
        net.stack.local_addr(&unbound),
        Err(SmoltcpError::InvalidState)
    );

    // A listener with backlog 2 and a pool of 3: one socket left.
    let mut listener = net.listener(addr(A, 21));
    let mut bound = net.stack.socket().unwrap();
    assert_eq!(
        net.stack.bind_addr(&mut listener, addr(A, 22)),
        Err(SmoltcpError::InvalidState)
    );
    assert_eq!(
        net.stack.send(&mut listener, b"x"),
        Err(nb::Error::Other(SmoltcpError::NotConnected))
    );
    net.stack.bind_addr(&mut bound, addr(A, 23)).unwrap();
    net.stack.listen(&mut bound).unwrap();
    let mut another = net.stack.socket().unwrap();
    net.stack.bind_addr(&mut another, addr(A, 24)).unwrap();
    assert_eq!(net.stack.listen(&mut another), Err(SmoltcpError::NoSocket));
    let mut client = net.stack.socket().unwrap();
    assert_eq!(
        net.stack.connect(&mut client, addr(A, 21)),
        Err(nb::Error::Other(SmoltcpError::NoSocket))
    );

    // A handle of another stack, whose entry here was closed, is refused.
    let mut other = net_with(1, 64, 64, StackConfig::default());
    let foreign = other.stack.socket().unwrap();
    let mut fresh = net_with(1, 64, 64, StackConfig::default());
    let first = fresh.stack.socket().unwrap();
    fresh.stack.close(first).unwrap();
    assert_eq!(fresh.stack.close(foreign), Err(SmoltcpError::InvalidHandle));

    // More sockets than the storage holds.
    assert_eq!(
        net.stack.add_socket(vec![0; 8].leak(), vec![0; 8].leak()),
        Err(SmoltcpError::NoSocket)
    );
}

#[test]
fn a_silent_peer_does_not_keep_a_closed_socket_forever() {
    let config = StackConfig {
        close_timeout: Duration::from_millis(500),
        ..StackConfig::default()
    };
    let mut net = net_with(6, 2048, 2048, config);
    let mut listener = net.listener(addr(A, 2300));
    let (_client, server) = net.pair(&mut listener, addr(A, 2300));
    // The client never closes: the server's socket sits in FIN-WAIT-2.
    net.stack.close(server).unwrap();
    let in_use = net.stack.pool_size() - net.stack.free_sockets();
    assert!(net.stack.poll_delay(net.now).is_some());
    for _ in 0..400 {
        net.step();
    }
    assert_eq!(net.stack.pool_size() - net.stack.free_sockets(), in_use);
    net.settle(|s| s.pool_size() - s.free_sockets() == in_use - 1);
}

#[test]
fn an_idle_stack_has_no_deadline() {
    let mut net = net();
    let _listener = net.listener(addr(A, 21));
    for _ in 0..20 {
        net.step();
    }
    assert_eq!(net.stack.poll_delay(net.now), None);
}

#[test]
fn static_storage_builds_a_full_pool() {
    let storage: &'static mut StackStorage<'static, 4, 512, 512> =
        Box::leak(Box::new(StackStorage::new()));
    let mut device = Loopback::new(Medium::Ethernet);
    let iface = interface(&mut device);
    let stack = SmoltcpStack::<4>::with_storage(iface, storage, StackConfig::default());
    assert_eq!(stack.pool_size(), 4);
    assert_eq!(stack.free_sockets(), 4);
}

#[cfg(feature = "smoltcp-ipv6")]
#[test]
fn ipv6_connections() {
    use ferry_net::Ipv6Addr;
    let mut net = net();
    let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    net.stack.interface_mut().update_ip_addrs(|addrs| {
        addrs.pop();
        addrs.push(IpCidr::new(IpAddress::Ipv6(v6), 64)).unwrap();
    });
    let local = SocketAddr::new(IpAddr::V6(v6), 2121);
    let mut listener = net.listener(local);
    let (mut client, mut server) = net.pair(&mut listener, local);
    net.send_all(&mut client, b"over v6");
    net.stack.close(client).unwrap();
    assert_eq!(net.receive_to_end(&mut server), b"over v6");
}

#[cfg(not(feature = "smoltcp-ipv6"))]
#[test]
fn ipv6_is_unsupported_without_the_feature() {
    let mut net = net();
    let mut sock = net.stack.socket().unwrap();
    let v6 = SocketAddr::new(IpAddr::V6(ferry_net::Ipv6Addr::LOCALHOST), 21);
    assert_eq!(
        net.stack.bind_addr(&mut sock, v6),
        Err(SmoltcpError::Unsupported)
    );
    assert_eq!(
        net.stack.connect(&mut sock, v6),
        Err(nb::Error::Other(SmoltcpError::Unsupported))
    );
}

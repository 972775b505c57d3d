//! `Server::reset`: a server set up again in place serves as a new one
//! with the new settings, whatever state it was left in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_core::Config;
use support::*;

#[test]
fn a_reset_server_serves_as_a_new_one_with_the_new_settings() {
    let mut h = Harness::new();
    // Leave state behind: a session in a subdirectory with a passive
    // listener, another one half logged in, and a partial command line.
    let a = h.login();
    assert!(h.cmd(a, "CWD home").starts_with("250 "));
    let _ = h.pasv(a);
    let b = h.connect();
    let _ = h.recv(b);
    assert!(h.cmd(b, "USER u").starts_with("331 "));
    h.stack.client_send(b, b"NO");
    h.run();
    h.server.shutdown(&mut h.stack, &mut h.fs);
    assert_eq!(h.stack.open_sockets(), 0);

    let config = Config {
        passive_ports: (50000, 50001),
        ..test_config()
    };
    h.server.reset(config);
    assert_eq!(h.server.config(), &config);
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.listen_addrs(&mut h.stack).count(), 0);
    h.server
        .listen(
            &mut h.stack,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTROL_PORT),
        )
        .expect("listen");

    let events = h.events().len();
    let c = h.connect();
    assert_eq!(h.recv(c), "220 Ferry FTP server ready.\r\n");
    // The first slot again, logged out, at the root, with a clean line.
    let peer = h.client_addr(c);
    assert_eq!(h.events()[events..], [Ev::Connected { session: 0, peer }]);
    assert!(h.cmd(c, "PWD").starts_with("530 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert!(h.cmd(c, "PASS p").starts_with("230 "));
    assert_eq!(h.cmd(c, "PWD"), "257 \"/\" is the current directory.\r\n");
    // Passive ports come from the new range, from its first port.
    assert_eq!(h.pasv(c).port(), 50000);
}

//! Engine bugs the simulation found, each replayed as a short script over
//! the simulated network and storage (no random faults) so it stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use ferry_core::{Config, Server};
use ferry_fs::ErrorKind;
use ferry_sim::client::passive_port;
use ferry_sim::net::{ConnId, NetFaults, SimStack, CONTROL_PORT, SERVER_IP};
use ferry_sim::rng::Source;
use ferry_sim::storage::{read_file, write_file, FaultFs, FsFaults, MemFs};
use ferry_sim::trace::Trace;
use ferry_sim::{SimAuth, SimClock};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A server over a leaked [`MemFs`] with `faults`, and one logged-in client.
struct Rig {
    server: Box<Server<SimStack, FaultFs<'static, MemFs>, 4, 512>>,
    stack: SimStack,
    fs: FaultFs<'static, MemFs>,
    clock: SimClock,
    ctrl: ConnId,
}

impl Rig {
    fn new(faults: FsFaults, setup: impl FnOnce(&mut MemFs)) -> Rig {
        let rng = Rc::new(RefCell::new(Source::seeded(1)));
        let trace = Rc::new(RefCell::new(Trace::default()));
        let mem: &'static mut MemFs = Box::leak(Box::new(MemFs::new(1 << 20)));
        setup(mem);
        let fs = FaultFs::new(mem, rng.clone(), trace.clone(), faults);
        let mut stack = SimStack::new(rng, trace, NetFaults::default());
        let config = Config {
            data_timeout_ms: 5_000,
            ..Config::default()
        };
        let mut server = Box::new(Server::new(config));
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTROL_PORT);
        server.listen(&mut stack, any).unwrap();
        let ctrl = stack
            .connect(CLIENT, SocketAddr::new(IpAddr::V4(SERVER_IP), CONTROL_PORT))
            .unwrap();
        let mut rig = Rig {
            server,
            stack,
            fs,
            clock: SimClock::new(1_000, None),
            ctrl,
        };
        assert!(rig.recv().starts_with("220 "));
        assert!(rig.cmd("USER u").starts_with("331 "));
        assert!(rig.cmd("PASS p").starts_with("230 "));
        rig
    }

    fn run(&mut self) {
        for _ in 0..1_000 {
            let p = self.server.poll(
                &mut self.stack,
                &mut self.fs,
                &mut SimAuth::default(),
                &self.clock,
                &mut (),
            );
            if !p.busy {
                return;
            }
        }
        panic!("server still busy");
    }

    fn recv(&mut self) -> String {
        self.run();
        String::from_utf8_lossy(&self.stack.recv(self.ctrl, usize::MAX)).into_owned()
    }

    fn cmd(&mut self, line: &str) -> String {
        self.stack.send(self.ctrl, format!("{line}\r\n").as_bytes());
        self.recv()
    }

    /// EPSV, the data connection, then `line`: returns the data connection
    /// and the reply text so far.
    fn transfer(&mut self, line: &str) -> (ConnId, String) {
        let reply = self.cmd("EPSV");
        let port = passive_port(reply.as_bytes()).expect("229");
        let data = self
            .stack
            .connect(CLIENT, SocketAddr::new(IpAddr::V4(SERVER_IP), port))
            .unwrap();
        self.run();
        (data, self.cmd(line))
    }
}

/// Found by `cargo xtask sim` (seeds 89, 168, 274 of the first version): a
/// replacing STOR whose `metadata` call failed (an I/O error, not "not
/// found") took the target for a new file and wrote it in place, so the
/// failed upload truncated the old file, and a storage failure then
/// removed it. Now the STOR is refused with the storage error's reply.
#[test]
fn stor_over_a_file_whose_metadata_fails_leaves_it_whole() {
    let faults = FsFaults {
        fail_on: Some(("metadata", b"/f", ErrorKind::Io)),
        ..FsFaults::default()
    };
    let mut rig = Rig::new(faults, |mem| {
        write_file(mem, b"/f", b"old contents").unwrap()
    });
    let (data, reply) = rig.transfer("STOR f");
    assert!(reply.starts_with("451 "), "{reply:?}");
    rig.stack.send(data, b"new");
    rig.stack.close(data, true);
    rig.run();
    assert_eq!(
        read_file(rig.fs.inner(), b"/f").unwrap().as_deref(),
        Some(&b"old contents"[..])
    );
}

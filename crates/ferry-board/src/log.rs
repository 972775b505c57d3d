//! The engine's events as log lines.
use core::fmt;
use core::net::SocketAddr;

use ferry_core::server::{Event, Observer, TransferKind};

/// Logs each of the engine's events as one line through `print`, the
/// board's way to print (`print(format_args!(..))`; the function adds the
/// line end).
///
/// `LogObserver::new` gives lines that name the session by its number
/// (`[1] login ferry ok`). `LogObserver::<S>::with_peers`, for a server of
/// `S` sessions, keeps each session's peer from its `Connected` event and
/// names it on every line of that session (`[1] 10.0.2.2:40000 login
/// ferry ok`, `-` if unknown), at `S` × 32 bytes. Commands are logged only
/// when [`verbose`](LogObserver::verbose).
#[derive(Clone, Copy)]
pub struct LogObserver<const S: usize = 0> {
    print: fn(fmt::Arguments<'_>),
    verbose: bool,
    peers: [Option<SocketAddr>; S],
}

impl LogObserver {
    /// An observer printing through `print`, naming sessions by number.
    pub const fn new(print: fn(fmt::Arguments<'_>)) -> LogObserver {
        LogObserver {
            print,
            verbose: false,
            peers: [],
        }
    }
}

impl<const S: usize> LogObserver<S> {
    /// An observer printing through `print` that names each session's
    /// peer, for a server of `S` sessions (`S` > 0).
    pub const fn with_peers(print: fn(fmt::Arguments<'_>)) -> LogObserver<S> {
        LogObserver {
            print,
            verbose: false,
            peers: [None; S],
        }
    }

    /// The same observer, logging command lines too when `verbose`
    /// (`[1] > LIST`, with the peer if kept). Passwords are in them.
    pub const fn verbose(mut self, verbose: bool) -> LogObserver<S> {
        self.verbose = verbose;
        self
    }

    /// How a line names `session`.
    fn who(&self, session: usize) -> Who {
        Who {
            session,
            peer: (S > 0).then(|| self.peers.get(session).copied().flatten()),
        }
    }
}

impl<const S: usize> fmt::Debug for LogObserver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogObserver")
            .field("verbose", &self.verbose)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl<const S: usize> Observer for LogObserver<S> {
    fn event(&mut self, event: Event<'_>) {
        let print = self.print;
        match event {
            Event::Connected { session, peer } => {
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = Some(peer);
                }
                print(format_args!("[{session}] {peer} connected"))
            }
            Event::Refused { peer } => {
                print(format_args!("{peer} refused with 421 (limit reached)"))
            }
            Event::Evicted { session } => {
                print(format_args!("{} closed to make room", self.who(session)))
            }
            Event::Command { session, line } if self.verbose => print(format_args!(
                "{} > {}",
                self.who(session),
                line.escape_ascii()
            )),
            Event::Login { session, user, ok } => print(format_args!(
                "{} login {} {}",
                self.who(session),
                user.escape_ascii(),
                if ok { "ok" } else { "failed" }
            )),
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => print(format_args!(
                "{} {} {} {bytes} bytes {}",
                self.who(session),
                kind_name(kind),
                path.escape_ascii(),
                if ok { "ok" } else { "failed" }
            )),
            Event::Disconnected { session } => {
                print(format_args!("{} disconnected", self.who(session)));
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = None;
                }
            }
            // Commands unless verbose; boards park no sessions (`scale`).
            _ => {}
        }
    }
}

/// A session as a line names it: `[N]`, or `[N] PEER` (`[N] -` if the
/// peer is unknown) when the observer keeps peers.
struct Who {
    session: usize,
    peer: Option<Option<SocketAddr>>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.session)?;
        match self.peer {
            None => Ok(()),
            Some(Some(peer)) => write!(f, " {peer}"),
            Some(None) => f.write_str(" -"),
        }
    }
}

/// A transfer's kind as the log names it.
fn kind_name(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Download => "download",
        TransferKind::Upload => "upload",
        TransferKind::Append => "append",
        TransferKind::Listing => "listing",
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};
    use std::cell::RefCell;
    use std::string::String;
    use std::vec::Vec;

    std::thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    fn record(args: fmt::Arguments<'_>) {
        LINES.with(|l| l.borrow_mut().push(std::format!("{args}")));
    }

    fn take_lines() -> Vec<String> {
        LINES.with(|l| core::mem::take(&mut *l.borrow_mut()))
    }

    /// One of each event for session 1 (peer 10.0.2.2:40000), and a
    /// command.
    fn events(observer: &mut impl Observer) {
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)), 40000);
        observer.event(Event::Connected { session: 1, peer });
        observer.event(Event::Login {
            session: 1,
            user: b"ferry",
            ok: true,
        });
        observer.event(Event::Command {
            session: 1,
            line: b"NOOP",
        });
        observer.event(Event::Transfer {
            session: 1,
            kind: TransferKind::Upload,
            path: b"/a b.txt",
            bytes: 42,
            ok: true,
        });
        observer.event(Event::Evicted { session: 1 });
        observer.event(Event::Disconnected { session: 1 });
        observer.event(Event::Login {
            session: 1,
            user: b"x\n",
            ok: false,
        });
        observer.event(Event::Refused { peer });
    }

    #[test]
    fn one_line_per_event() {
        take_lines();
        events(&mut LogObserver::new(record));
        assert_eq!(
            take_lines(),
            [
                "[1] 10.0.2.2:40000 connected",
                "[1] login ferry ok",
                "[1] upload /a b.txt 42 bytes ok",
                "[1] closed to make room",
                "[1] disconnected",
                "[1] login x\\n failed",
                "10.0.2.2:40000 refused with 421 (limit reached)",
            ]
        );
    }

    #[test]
    fn with_peers_names_each_sessions_peer_until_it_leaves() {
        take_lines();
        events(&mut LogObserver::<2>::with_peers(record).verbose(true));
        assert_eq!(
            take_lines(),
            [
                "[1] 10.0.2.2:40000 connected",
                "[1] 10.0.2.2:40000 login ferry ok",
                "[1] 10.0.2.2:40000 > NOOP",
                "[1] 10.0.2.2:40000 upload /a b.txt 42 bytes ok",
                "[1] 10.0.2.2:40000 closed to make room",
                "[1] 10.0.2.2:40000 disconnected",
                "[1] - login x\\n failed",
                "10.0.2.2:40000 refused with 421 (limit reached)",
            ]
        );
    }
}

//! Logs the engine's [`Event`]s with `tracing`: connections, commands,
//! logins and transfers, each tagged with the session's peer address.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferry_core::server::{Event, Observer, TransferKind};
use tracing::{debug, info, warn};

/// The logged-in sessions of each worker, counted by their observers, so
/// that `--max-sessions` holds for ferryd as a whole. Sessions not logged
/// in are left out: in one table a newcomer evicts them, and a worker
/// cannot evict another's, so counting them would let a flood that lands
/// on one worker lock out the clients another serves; they end within the
/// login timeout.
#[derive(Debug)]
pub struct Census(Vec<AtomicUsize>);

impl Census {
    /// Counts for `workers` workers, all 0.
    pub fn new(workers: usize) -> Arc<Census> {
        Arc::new(Census((0..workers).map(|_| AtomicUsize::new(0)).collect()))
    }
}

/// An [`Observer`] that logs every event; it remembers what it knows of
/// each session (its log number, peer, whether it is logged in) by slot,
/// and by parked entry while the engine keeps the session parked, so that
/// later events name the client. Log numbers count connections: worker
/// `w` of `n` gives `w`, `w + n`, `w + 2n`, ..., so a session keeps its
/// number wherever the engine moves it and numbers never repeat.
#[derive(Debug)]
pub struct LogObserver {
    /// By session slot.
    slots: Vec<Option<Known>>,
    /// By parked entry.
    parked: Vec<Option<Known>>,
    /// The next session's number.
    next: u64,
    /// The step between this worker's numbers (the number of workers).
    step: u64,
    /// The counts and this worker's index in them.
    census: Option<(Arc<Census>, usize)>,
}

/// What the observer knows of one session.
#[derive(Debug, Clone, Copy)]
struct Known {
    number: u64,
    peer: SocketAddr,
    /// Counted in the census.
    logged_in: bool,
}

/// The entry `index` of `table`, made if the table is shorter (the
/// engine's tables grow).
fn entry(table: &mut Vec<Option<Known>>, index: usize) -> &mut Option<Known> {
    if table.len() <= index {
        table.resize(index + 1, None);
    }
    &mut table[index]
}

impl LogObserver {
    /// An observer for a lone server.
    pub fn new() -> LogObserver {
        LogObserver {
            slots: Vec::new(),
            parked: Vec::new(),
            next: 0,
            step: 1,
            census: None,
        }
    }

    /// The observer of worker `index` of `census.len()`, counting its
    /// logged-in sessions in `census`.
    pub fn worker(census: Arc<Census>, index: usize) -> LogObserver {
        LogObserver {
            next: index as u64,
            step: census.0.len().max(1) as u64,
            census: Some((census, index)),
            ..LogObserver::new()
        }
    }

    /// Counts a logged-in session in or out of the census.
    fn count(&self, logged_in: bool) {
        if let Some(n) = self.census.as_ref().and_then(|(c, i)| c.0.get(*i)) {
            if logged_in {
                n.fetch_add(1, Ordering::Relaxed);
            } else {
                n.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The session in slot `slot`, if known.
    fn known(&self, slot: usize) -> Option<Known> {
        self.slots.get(slot).copied().flatten()
    }

    /// Log number and peer of the session in `slot`, as logged.
    fn who(&self, slot: usize) -> (String, String) {
        match self.known(slot) {
            Some(k) => (k.number.to_string(), k.peer.to_string()),
            None => ("-".to_string(), "-".to_string()),
        }
    }
}

impl Default for LogObserver {
    fn default() -> Self {
        LogObserver::new()
    }
}

fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn kind_name(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Download => "download",
        TransferKind::Upload => "upload",
        TransferKind::Append => "append",
        TransferKind::Listing => "listing",
    }
}

impl Observer for LogObserver {
    fn sessions_elsewhere(&mut self) -> usize {
        let Some((census, me)) = &self.census else {
            return 0;
        };
        let all: usize = census.0.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        all.saturating_sub(census.0.get(*me).map_or(0, |n| n.load(Ordering::Relaxed)))
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Connected { session, peer } => {
                let number = self.next;
                self.next += self.step;
                let old = entry(&mut self.slots, session).replace(Known {
                    number,
                    peer,
                    logged_in: false,
                });
                if old.is_some_and(|k| k.logged_in) {
                    self.count(false);
                }
                info!(session = number, %peer, "connected");
            }
            Event::Refused { peer } => {
                warn!(%peer, "refused with 421: session or per-IP limit reached")
            }
            Event::Evicted { session } => {
                let (session, peer) = self.who(session);
                warn!(
                    session,
                    peer,
                    "closed to make room: the table was full and it had not logged in or was leaving"
                )
            }
            Event::Command { session, line } => {
                let (session, peer) = self.who(session);
                debug!(session, peer, "> {}", shown(line));
            }
            Event::Login {
                session,
                user,
                ok: true,
            } => {
                if let Some(k) = entry(&mut self.slots, session) {
                    if !std::mem::replace(&mut k.logged_in, true) {
                        self.count(true);
                    }
                }
                let (session, peer) = self.who(session);
                info!(session, peer, user = %shown(user), "logged in");
            }
            Event::Login {
                session,
                user,
                ok: false,
            } => {
                let (session, peer) = self.who(session);
                warn!(session, peer, user = %shown(user), "login failed");
            }
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => {
                let (session, peer) = self.who(session);
                let (kind, path) = (kind_name(kind), shown(path));
                if ok {
                    info!(session, peer, kind, path, bytes, "transfer complete");
                } else {
                    warn!(session, peer, kind, path, bytes, "transfer failed");
                }
            }
            Event::Disconnected { session } => {
                let (number, peer) = self.who(session);
                if entry(&mut self.slots, session)
                    .take()
                    .is_some_and(|k| k.logged_in)
                {
                    self.count(false);
                }
                info!(session = number, peer, "disconnected");
            }
            // The session moves between the table and the parked entries;
            // it stays counted and keeps its number.
            Event::Parked { session, parked } => {
                let known = entry(&mut self.slots, session).take();
                *entry(&mut self.parked, parked) = known;
            }
            Event::Resumed { parked, session } => {
                let known = entry(&mut self.parked, parked).take();
                *entry(&mut self.slots, session) = known;
            }
            Event::Swapped { session, parked } => {
                let known = entry(&mut self.slots, session).take();
                let back = std::mem::replace(entry(&mut self.parked, parked), known);
                *entry(&mut self.slots, session) = back;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_bytes_are_escaped() {
        assert_eq!(shown(b"RETR a b"), "RETR a b");
        assert_eq!(shown(b"x\r\nINFO fake"), "x\\r\\nINFO fake");
        assert_eq!(shown(&[0xff, b'a']), "\\xffa");
    }

    #[test]
    fn sessions_keep_their_number_and_peer_while_parked_and_resumed() {
        let mut obs = LogObserver::new();
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let other: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        obs.event(Event::Connected { session: 1, peer });
        obs.event(Event::Connected {
            session: 0,
            peer: other,
        });
        assert_eq!(obs.who(1), ("0".to_string(), "192.0.2.1:4000".to_string()));
        assert_eq!(obs.who(0), ("1".to_string(), "192.0.2.2:5000".to_string()));
        assert_eq!(obs.who(5), ("-".to_string(), "-".to_string()));
        obs.event(Event::Parked {
            session: 1,
            parked: 3,
        });
        assert_eq!(obs.who(1).1, "-");
        obs.event(Event::Resumed {
            parked: 3,
            session: 4,
        });
        assert_eq!(obs.who(4), ("0".to_string(), "192.0.2.1:4000".to_string()));
        obs.event(Event::Disconnected { session: 4 });
        assert_eq!(obs.who(4).1, "-");
        // A new session in a slot gets a new number.
        obs.event(Event::Connected { session: 4, peer });
        assert_eq!(obs.who(4).0, "2");
    }

    #[test]
    fn workers_count_each_others_sessions_and_number_them_apart() {
        let census = Census::new(3);
        let mut a = LogObserver::worker(Arc::clone(&census), 0);
        let mut b = LogObserver::worker(Arc::clone(&census), 2);
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let login = |o: &mut LogObserver, session| {
            o.event(Event::Login {
                session,
                user: b"u",
                ok: true,
            })
        };
        a.event(Event::Connected { session: 0, peer });
        a.event(Event::Connected { session: 1, peer });
        b.event(Event::Connected { session: 3, peer });
        b.event(Event::Connected { session: 0, peer });
        // Numbered apart: worker 0 of 3 gives 0, 3; worker 2 gives 2, 5.
        assert_eq!((a.who(0).0, a.who(1).0), ("0".to_string(), "3".to_string()));
        assert_eq!((b.who(3).0, b.who(0).0), ("2".to_string(), "5".to_string()));
        // Not logged in: not counted (a newcomer could evict them).
        assert_eq!(b.sessions_elsewhere(), 0);
        login(&mut a, 0);
        login(&mut a, 1);
        login(&mut b, 3);
        login(&mut b, 3);
        assert_eq!(a.sessions_elsewhere(), 1);
        assert_eq!(b.sessions_elsewhere(), 2);
        // Parked and back: still counted once.
        a.event(Event::Parked {
            session: 1,
            parked: 0,
        });
        assert_eq!(b.sessions_elsewhere(), 2);
        a.event(Event::Resumed {
            parked: 0,
            session: 2,
        });
        a.event(Event::Disconnected { session: 2 });
        assert_eq!(b.sessions_elsewhere(), 1);
        b.event(Event::Disconnected { session: 3 });
        assert_eq!(a.sessions_elsewhere(), 0);
    }
}

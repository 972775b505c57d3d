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

/// An [`Observer`] that logs every event; it remembers each session slot's
/// peer so that later events name the client. Sessions are numbered
/// across workers: worker `w` of a table of `n` logs `w * n + slot`.
#[derive(Debug)]
pub struct LogObserver {
    peers: Vec<Option<SocketAddr>>,
    /// Which slots hold a logged-in session (counted in the census).
    logged_in: Vec<bool>,
    /// This worker's first session number.
    base: usize,
    /// The counts and this worker's index in them.
    census: Option<(Arc<Census>, usize)>,
}

impl LogObserver {
    /// An observer for a table of `slots` sessions (one worker).
    pub fn new(slots: usize) -> LogObserver {
        LogObserver {
            peers: vec![None; slots],
            logged_in: vec![false; slots],
            base: 0,
            census: None,
        }
    }

    /// The observer of worker `index` of `census`, for a table of `slots`.
    pub fn worker(slots: usize, census: Arc<Census>, index: usize) -> LogObserver {
        LogObserver {
            peers: vec![None; slots],
            logged_in: vec![false; slots],
            base: index * slots,
            census: Some((census, index)),
        }
    }

    /// Marks the session in `slot` (this worker's numbering) logged in or
    /// gone, and counts it in the census when that changes.
    fn count(&mut self, slot: usize, logged_in: bool) {
        let Some(was) = self.logged_in.get_mut(slot) else {
            return;
        };
        if std::mem::replace(was, logged_in) == logged_in {
            return;
        }
        if let Some(n) = self.census.as_ref().and_then(|(c, i)| c.0.get(*i)) {
            if logged_in {
                n.fetch_add(1, Ordering::Relaxed);
            } else {
                n.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The peer of `session`, for log fields (`-` if unknown).
    fn peer(&self, session: usize) -> String {
        match self
            .peers
            .get(session.wrapping_sub(self.base))
            .copied()
            .flatten()
        {
            Some(addr) => addr.to_string(),
            None => "-".to_string(),
        }
    }
}

/// Bytes from the network shown safely: non-ASCII and control bytes escaped,
/// so a client cannot forge log lines.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A transfer kind in log terms.
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
        let mut event = event;
        if let Some(session) = event.session_mut() {
            *session += self.base;
        }
        match event {
            Event::Connected { session, peer } => {
                self.count(session.wrapping_sub(self.base), false);
                if let Some(slot) = self.peers.get_mut(session.wrapping_sub(self.base)) {
                    *slot = Some(peer);
                }
                info!(session, %peer, "connected");
            }
            Event::Refused { peer } => {
                warn!(%peer, "refused with 421: session or per-IP limit reached")
            }
            Event::Evicted { session } => {
                warn!(
                    session,
                    peer = %self.peer(session),
                    "closed to make room: the table was full and it had not logged in or was leaving"
                )
            }
            // Every command is a line of its own, many per transfer: at
            // debug, so that the default log (connections, logins,
            // transfers) costs a busy server little.
            Event::Command { session, line } => {
                debug!(session, peer = %self.peer(session), "> {}", shown(line));
            }
            Event::Login {
                session,
                user,
                ok: true,
            } => {
                self.count(session.wrapping_sub(self.base), true);
                info!(session, peer = %self.peer(session), user = %shown(user), "logged in");
            }
            Event::Login {
                session,
                user,
                ok: false,
            } => {
                warn!(session, peer = %self.peer(session), user = %shown(user), "login failed");
            }
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => {
                let peer = self.peer(session);
                let (kind, path) = (kind_name(kind), shown(path));
                if ok {
                    info!(session, %peer, kind, path, bytes, "transfer complete");
                } else {
                    warn!(session, %peer, kind, path, bytes, "transfer failed");
                }
            }
            Event::Disconnected { session } => {
                self.count(session.wrapping_sub(self.base), false);
                let peer = self.peer(session);
                if let Some(slot) = self.peers.get_mut(session.wrapping_sub(self.base)) {
                    *slot = None;
                }
                info!(session, %peer, "disconnected");
            }
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
    fn peers_are_remembered_per_slot_and_forgotten_on_disconnect() {
        let mut obs = LogObserver::new(2);
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        obs.event(Event::Connected { session: 1, peer });
        assert_eq!(obs.peer(1), "192.0.2.1:4000");
        assert_eq!(obs.peer(0), "-");
        obs.event(Event::Command {
            session: 1,
            line: b"NOOP",
        });
        obs.event(Event::Disconnected { session: 1 });
        assert_eq!(obs.peer(1), "-");
        // Slots beyond the table are ignored, not a panic.
        obs.event(Event::Connected { session: 7, peer });
        obs.event(Event::Disconnected { session: 7 });
    }

    #[test]
    fn workers_count_each_others_sessions_and_number_them_apart() {
        let census = Census::new(3);
        let mut a = LogObserver::worker(4, Arc::clone(&census), 0);
        let mut b = LogObserver::worker(4, Arc::clone(&census), 2);
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
        // Not logged in: not counted (a newcomer could evict them).
        assert_eq!(b.sessions_elsewhere(), 0);
        login(&mut a, 0);
        login(&mut a, 1);
        login(&mut b, 3);
        login(&mut b, 3);
        assert_eq!(a.sessions_elsewhere(), 1);
        assert_eq!(b.sessions_elsewhere(), 2);
        assert_eq!(b.peer(8 + 3), "192.0.2.1:4000");
        assert_eq!(b.peer(3), "-");
        a.event(Event::Disconnected { session: 1 });
        assert_eq!(b.sessions_elsewhere(), 1);
        b.event(Event::Disconnected { session: 3 });
        assert_eq!(a.sessions_elsewhere(), 0);
        assert_eq!(b.peer(8 + 3), "-");
    }
}

//! Logs the engine's [`Event`]s with `tracing`: connections, commands,
//! logins and transfers, each tagged with the session's peer address.
use std::net::SocketAddr;

use ferry_core::server::{Event, Observer, TransferKind};
use tracing::{info, warn};

/// An [`Observer`] that logs every event; it remembers each session slot's
/// peer so that later events name the client.
#[derive(Debug)]
pub struct LogObserver {
    peers: Vec<Option<SocketAddr>>,
}

impl LogObserver {
    /// An observer for a table of `slots` sessions.
    pub fn new(slots: usize) -> LogObserver {
        LogObserver {
            peers: vec![None; slots],
        }
    }

    /// The peer of `session`, for log fields (`-` if unknown).
    fn peer(&self, session: usize) -> String {
        match self.peers.get(session).copied().flatten() {
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
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Connected { session, peer } => {
                if let Some(slot) = self.peers.get_mut(session) {
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
            Event::Command { session, line } => {
                info!(session, peer = %self.peer(session), "> {}", shown(line));
            }
            Event::Login {
                session,
                user,
                ok: true,
            } => {
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
                let peer = self.peer(session);
                if let Some(slot) = self.peers.get_mut(session) {
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
}

//! What the server reports through its `Observer`: logged in the trace
//! (connections, refusals, logins, transfers, disconnections), and the
//! time of the last command it took from each peer, which bounds when it
//! may give up on a goodbye.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use ferry_core::server::{Event, Observer};

use crate::trace::{show, SharedTrace};

/// Facts gathered from the server's events.
#[derive(Debug, Default)]
pub struct Seen {
    /// Which peer holds each session slot.
    slots: BTreeMap<usize, SocketAddr>,
    /// When the server last took a command from (or accepted) each peer.
    last_command: BTreeMap<SocketAddr, u64>,
    /// Peers whose session the server evicted to make room (its 421 is
    /// sent once, best effort, like a refusal's).
    evicted: BTreeSet<SocketAddr>,
}

impl Seen {
    /// When the server last took a command from `peer` or accepted it
    /// (0 if never).
    pub fn last_command(&self, peer: Option<SocketAddr>) -> u64 {
        peer.and_then(|p| self.last_command.get(&p).copied())
            .unwrap_or(0)
    }

    /// Whether the server evicted `peer`'s session.
    pub fn evicted(&self, peer: Option<SocketAddr>) -> bool {
        peer.is_some_and(|p| self.evicted.contains(&p))
    }
}

/// The observer given to `Server::poll`.
pub struct TraceObserver<'a> {
    /// Where events are logged.
    pub trace: &'a SharedTrace,
    /// What is gathered.
    pub seen: &'a mut Seen,
    /// The simulated time of this poll (ms).
    pub now: u64,
}

impl Observer for TraceObserver<'_> {
    fn event(&mut self, event: Event<'_>) {
        let line = match event {
            Event::Connected { session, peer } => {
                self.seen.slots.insert(session, peer);
                self.seen.last_command.insert(peer, self.now);
                format!("server: {peer} takes slot {session}")
            }
            Event::Refused { peer } => format!("server: {peer} refused"),
            Event::Command { session, .. } => {
                if let Some(peer) = self.seen.slots.get(&session) {
                    self.seen.last_command.insert(*peer, self.now);
                }
                return;
            }
            Event::Login { session, user, ok } => {
                format!(
                    "server: slot {session} login {} {}",
                    show(user, 20),
                    if ok { "ok" } else { "failed" }
                )
            }
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => format!(
                "server: slot {session} {kind:?} {} {bytes} bytes {}",
                show(path, 60),
                if ok { "done" } else { "failed" }
            ),
            Event::Evicted { session } => {
                if let Some(peer) = self.seen.slots.get(&session) {
                    self.seen.evicted.insert(*peer);
                }
                format!("server: slot {session} evicted (table full, not logged in)")
            }
            Event::Disconnected { session } => {
                self.seen.slots.remove(&session);
                format!("server: slot {session} closed")
            }
            // Sessions moving in and out of the parked table (`scale`).
            _ => return,
        };
        self.trace.borrow_mut().log(line);
    }
}

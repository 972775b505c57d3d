//! The board's side of the engine's seams other than network and storage:
//! the one fixed user, and the log of the engine's events.
use core::net::{IpAddr, SocketAddr};

use ferry_core::server::{Event, Observer, TransferKind};
use ferry_core::{AuthError, Authenticator, Permissions, User};

use crate::log;

/// The user name the firmware accepts.
pub const USER: &str = "ferry";
/// Its password. A fixed password in a firmware image is for a test rig
/// only: a product keeps a salted hash in its configuration storage.
pub const PASSWORD: &str = "ferry";

/// One user with every permission, whose home is the volume's root.
#[derive(Debug, Clone, Copy)]
pub struct FixedUser;

impl Authenticator for FixedUser {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        let name_ok = user == USER.as_bytes();
        // Compare every byte whatever the name: the timing tells nothing.
        let expected = PASSWORD.as_bytes();
        let mut diff = u8::from(expected.len() != password.len());
        for (i, e) in expected.iter().enumerate() {
            diff |= e ^ password.get(i).copied().unwrap_or(0);
        }
        if name_ok && diff == 0 {
            Ok(User {
                id: 0,
                permissions: Permissions::ALL,
            })
        } else {
            Err(AuthError::Invalid)
        }
    }

    fn home(&self, _user: &User) -> &[u8] {
        b"/"
    }
}

/// Logs the engine's events over semihosting, one line each, with the
/// peer of each session slot (for `S` slots).
#[derive(Debug)]
pub struct LogObserver<const S: usize> {
    /// Log command lines too.
    pub verbose: bool,
    peers: [Option<SocketAddr>; S],
}

impl<const S: usize> LogObserver<S> {
    /// An observer with no sessions yet.
    pub fn new(verbose: bool) -> Self {
        LogObserver {
            verbose,
            peers: [None; S],
        }
    }

    fn peer(&self, session: usize) -> PeerName {
        PeerName(self.peers.get(session).copied().flatten())
    }
}

/// A session's peer for a log line (`-` if unknown).
struct PeerName(Option<SocketAddr>);

impl core::fmt::Display for PeerName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(peer) => write!(f, "{peer}"),
            None => f.write_str("-"),
        }
    }
}

impl<const S: usize> Observer for LogObserver<S> {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Connected { session, peer } => {
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = Some(peer);
                }
                log!("[{session}] {peer} connected");
            }
            Event::Refused { peer } => log!("{peer} refused with 421 (limit reached)"),
            Event::Evicted { session } => {
                log!("[{session}] {} closed to make room", self.peer(session))
            }
            Event::Command { session, line } => {
                if self.verbose {
                    log!(
                        "[{session}] {} > {}",
                        self.peer(session),
                        line.escape_ascii()
                    );
                }
            }
            Event::Login { session, user, ok } => log!(
                "[{session}] {} login {} {}",
                self.peer(session),
                user.escape_ascii(),
                if ok { "ok" } else { "failed" }
            ),
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => {
                let kind = match kind {
                    TransferKind::Download => "download",
                    TransferKind::Upload => "upload",
                    TransferKind::Listing => "listing",
                    // APPE (and so `Append`) is part of the engine's
                    // `resume` feature: the arm is written so that the
                    // match holds with and without it.
                    #[allow(unreachable_patterns)]
                    _ => "append",
                };
                log!(
                    "[{session}] {} {kind} {} {bytes} bytes {}",
                    self.peer(session),
                    path.escape_ascii(),
                    if ok { "ok" } else { "failed" }
                );
            }
            Event::Disconnected { session } => {
                log!("[{session}] {} disconnected", self.peer(session));
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = None;
                }
            }
        }
    }
}

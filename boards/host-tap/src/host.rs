//! The host's side of the board: the clock, the one-user authenticator, the
//! log observer (what firmware would get from its RTC, its config and its
//! UART), and the stop flag that Ctrl-C and SIGTERM set.
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::server::{Event, Observer, TransferKind};
use ferry_core::{AuthError, Authenticator, Permissions, User};
use ferry_net::{Clock, Instant};

use crate::cli::UserSpec;

/// A flag that Ctrl-C or SIGTERM sets, for the board loop to stop at; a
/// second Ctrl-C while shutting down exits at once (status 130).
pub fn stop_on_signal() -> Result<Arc<AtomicBool>, ctrlc::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })?;
    Ok(stop)
}

/// Monotonic milliseconds since start, and the system's wall clock.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    origin: std::time::Instant,
}

impl Default for HostClock {
    fn default() -> Self {
        HostClock::new()
    }
}

impl HostClock {
    /// A clock whose [`Clock::now`] starts at 0 now.
    pub fn new() -> Self {
        HostClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock for HostClock {
    fn now(&self) -> Instant {
        Instant(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn unix_time(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// One user with all permissions, whose home is the served root.
#[derive(Debug)]
pub struct OneUser(pub UserSpec);

impl Authenticator for OneUser {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        let name_ok = user == self.0.name.as_bytes();
        // Compare every byte whatever the name: the timing tells nothing.
        let expected = self.0.password.0.as_bytes();
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

/// Logs the engine's events to stderr, one line each.
#[derive(Debug)]
pub struct LogObserver {
    /// Whether command lines are logged too.
    pub verbose: bool,
    peers: Vec<Option<SocketAddr>>,
}

impl LogObserver {
    /// An observer for `slots` sessions.
    pub fn new(slots: usize, verbose: bool) -> Self {
        LogObserver {
            verbose,
            peers: vec![None; slots],
        }
    }

    fn peer(&self, session: usize) -> String {
        match self.peers.get(session).copied().flatten() {
            Some(peer) => peer.to_string(),
            None => "-".into(),
        }
    }
}

impl Observer for LogObserver {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Connected { session, peer } => {
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = Some(peer);
                }
                eprintln!("[{session}] {peer} connected");
            }
            Event::Refused { peer } => eprintln!("{peer} refused with 421 (limit reached)"),
            Event::Evicted { session } => {
                eprintln!("[{session}] {} closed to make room", self.peer(session))
            }
            Event::Command { session, line } => {
                if self.verbose {
                    eprintln!(
                        "[{session}] {} > {}",
                        self.peer(session),
                        line.escape_ascii()
                    );
                }
            }
            Event::Login { session, user, ok } => eprintln!(
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
                    TransferKind::Append => "append",
                    TransferKind::Listing => "listing",
                };
                eprintln!(
                    "[{session}] {} {kind} {} {bytes} bytes {}",
                    self.peer(session),
                    path.escape_ascii(),
                    if ok { "ok" } else { "failed" }
                );
            }
            Event::Disconnected { session } => {
                eprintln!("[{session}] {} disconnected", self.peer(session));
                if let Some(slot) = self.peers.get_mut(session) {
                    *slot = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Password;
    use std::net::Ipv4Addr;

    #[test]
    fn one_user_checks_name_and_password() {
        let mut auth = OneUser(UserSpec {
            name: "ferry".into(),
            password: Password("secret".into()),
        });
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(auth.authenticate(b"ferry", b"secret", peer).is_ok());
        assert!(auth.authenticate(b"ferry", b"secre", peer).is_err());
        assert!(auth.authenticate(b"ferry", b"secret!", peer).is_err());
        assert!(auth.authenticate(b"other", b"secret", peer).is_err());
        let user = auth.authenticate(b"ferry", b"secret", peer).unwrap();
        assert_eq!(auth.home(&user), b"/");
        assert_eq!(user.permissions, Permissions::ALL);
    }

    #[test]
    fn clock_is_monotonic_and_knows_the_date() {
        let clock = HostClock::new();
        let a = clock.now();
        assert!(clock.now() >= a);
        assert!(clock.unix_time().unwrap() > 1_600_000_000);
    }
}

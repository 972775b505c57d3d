//! The one user (named at build time), the log of the engine's events
//! (RTT), and the millisecond clock (the RP2040's 1 MHz timer).
use core::net::IpAddr;

use ferry_core::server::{Event, Observer, TransferKind};
use ferry_core::{AuthError, Authenticator, Permissions, User};
use ferry_net::{Clock, Instant};
use rp2040_hal::Timer;
use rtt_target::rprintln;

/// The user name the firmware accepts: `FERRY_USER` when it was built,
/// `ferry` otherwise.
pub const USER: &str = match option_env!("FERRY_USER") {
    Some(user) => user,
    None => "ferry",
};

/// The password: `FERRY_PASSWORD` when it was built, `ferry` otherwise.
/// It is in the image in clear text: whoever reads the flash has it.
const PASSWORD: &str = match option_env!("FERRY_PASSWORD") {
    Some(password) => password,
    None => "ferry",
};

/// Whether the password is the default one (the start-up log shows only
/// that one).
pub const DEFAULT_PASSWORD: bool = option_env!("FERRY_PASSWORD").is_none();

/// One user with every permission, whose home is the volume's root.
pub struct FixedUser;

impl Authenticator for FixedUser {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        // Compare every byte whatever the name: the timing tells nothing.
        let expected = PASSWORD.as_bytes();
        let mut diff = u8::from(expected.len() != password.len());
        for (i, e) in expected.iter().enumerate() {
            diff |= e ^ password.get(i).copied().unwrap_or(0);
        }
        if user == USER.as_bytes() && diff == 0 {
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

/// Logs the engine's events over RTT, one line each.
pub struct RttObserver;

impl Observer for RttObserver {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Connected { session, peer } => rprintln!("[{}] {} connected", session, peer),
            Event::Refused { peer } => rprintln!("{} refused with 421 (limit reached)", peer),
            Event::Evicted { session } => {
                rprintln!("[{}] evicted: not logged in, room needed", session)
            }
            Event::Command { .. } => {}
            Event::Login { session, user, ok } => rprintln!(
                "[{}] login {} {}",
                session,
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
                rprintln!(
                    "[{}] {} {} {} bytes {}",
                    session,
                    kind,
                    path.escape_ascii(),
                    bytes,
                    if ok { "ok" } else { "failed" }
                );
            }
            Event::Disconnected { session } => rprintln!("[{}] disconnected", session),
        }
    }
}

/// The board's clock: the RP2040's 64-bit microsecond timer, read without
/// an interrupt (so it keeps counting while a flash erase has interrupts
/// off); no wall clock.
#[derive(Clone, Copy)]
pub struct BoardClock(pub Timer);

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(self.0.get_counter().ticks() / 1000)
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

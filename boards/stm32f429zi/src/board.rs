//! The one fixed user, the log of the engine's events (RTT), and the
//! millisecond clock (SysTick).
use core::cell::Cell;
use core::net::IpAddr;

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use ferry_core::server::{Event, Observer, TransferKind};
use ferry_core::{AuthError, Authenticator, Permissions, User};
use ferry_net::{Clock, Instant};
use rtt_target::rprintln;

/// The user name the firmware accepts.
pub const USER: &str = "ferry";
/// Its password: change it before the board leaves your desk (a product
/// keeps a salted hash in its configuration storage instead).
pub const PASSWORD: &str = "ferry";

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
                rprintln!("[{}] closed to make room", session)
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

/// Milliseconds since [`start_clock`].
static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts SysTick at 1 kHz from the core clock (`hclk` Hz).
pub fn start_clock(syst: &mut SYST, hclk: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(hclk / 1000 - 1);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
}

#[exception]
fn SysTick() {
    interrupt::free(|cs| {
        let millis = MILLIS.borrow(cs);
        millis.set(millis.get().wrapping_add(1));
    });
}

/// The board's clock: SysTick milliseconds; no wall clock.
pub struct BoardClock;

impl Clock for BoardClock {
    fn now(&self) -> Instant {
        Instant(interrupt::free(|cs| MILLIS.borrow(cs).get()))
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

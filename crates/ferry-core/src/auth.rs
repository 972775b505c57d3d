//! The user seam: who may log in, where their home is, and what they may do.
use ferry_net::IpAddr;

/// What a logged-in user may do. Read-only and anonymous users have only `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Download files and list directories.
    pub read: bool,
    /// Upload (STOR, STOU, APPE) and change metadata (MFMT, SITE CHMOD).
    pub write: bool,
    /// Delete files and directories (DELE, RMD).
    pub delete: bool,
    /// Make directories (MKD).
    pub mkdir: bool,
    /// Rename (RNFR/RNTO).
    pub rename: bool,
}

impl Permissions {
    /// Everything allowed.
    pub const ALL: Permissions = Permissions {
        read: true,
        write: true,
        delete: true,
        mkdir: true,
        rename: true,
    };
    /// Only reading and listing.
    pub const READ_ONLY: Permissions = Permissions {
        read: true,
        write: false,
        delete: false,
        mkdir: false,
        rename: false,
    };
}

/// A logged-in user as the engine keeps it: an id the [`Authenticator`]
/// understands, and the user's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The authenticator's handle for this user (e.g. an index into its table).
    pub id: u16,
    /// What the user may do.
    pub permissions: Permissions,
}

/// Why a login was refused. Every variant replies 530 (after the failed-login
/// delay): the client learns nothing about which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user or wrong password.
    Invalid,
    /// From [`Authenticator::begin_login`]: the check takes a while (e.g. a
    /// password hash on a worker thread); the engine asks
    /// [`Authenticator::poll_login`] on its next polls.
    Pending,
}

/// Decides who may log in.
pub trait Authenticator {
    /// Whether `user` needs a password (`331`) or is logged in by `USER`
    /// alone; returning `true` for unknown users hides which names exist.
    fn needs_password(&mut self, user: &[u8]) -> bool {
        let _ = user;
        true
    }
    /// Checks a user name and password from `peer`.
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError>;
    /// The user's home directory: a canonical path in the file system that
    /// becomes the user's `/` (`/` serves the whole root).
    fn home(&self, user: &User) -> &[u8];
    /// Starts the login check of session slot `slot`, which the engine
    /// calls instead of [`Authenticator::authenticate`]. A check that is
    /// slow (a password hash: tens of milliseconds) must not stall the
    /// poll loop, which serves every session: return
    /// `Err(AuthError::Pending)`, do the work elsewhere (a worker thread),
    /// and give the result from [`Authenticator::poll_login`]; wake the
    /// caller's loop when it is ready (the engine also asks again within
    /// [`crate::server::PENDING_LOGIN_POLL_MS`]). A new `begin_login` for
    /// a slot replaces its pending one (its session ended meanwhile).
    /// The default checks at once.
    fn begin_login(
        &mut self,
        slot: usize,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        let _ = slot;
        self.authenticate(user, password, peer)
    }
    /// The result of `slot`'s pending check, once it is known (then
    /// forgotten); `None` while it runs. `Err(AuthError::Pending)` is taken
    /// as `Invalid`.
    fn poll_login(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        let _ = slot;
        Some(Err(AuthError::Invalid))
    }
}

impl<A: Authenticator + ?Sized> Authenticator for &mut A {
    fn needs_password(&mut self, user: &[u8]) -> bool {
        (**self).needs_password(user)
    }
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        (**self).authenticate(user, password, peer)
    }
    fn home(&self, user: &User) -> &[u8] {
        (**self).home(user)
    }
    fn begin_login(
        &mut self,
        slot: usize,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        (**self).begin_login(slot, user, password, peer)
    }
    fn poll_login(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        (**self).poll_login(slot)
    }
}

//! One fixed user: the login of a device whose name and password are
//! given at build time (or, on a host, on the command line).
use core::net::IpAddr;

use ferry_core::{AuthError, Authenticator, Permissions, User};

/// One user with every permission, whose home is the volume's root.
///
/// The password is compared in constant time, whatever the name: the
/// timing tells a guesser nothing. A product that keeps its users in
/// storage would keep salted hashes instead.
#[derive(Clone, Copy)]
pub struct FixedUser<'a> {
    user: &'a str,
    password: &'a str,
}

impl<'a> FixedUser<'a> {
    /// The user `user` with `password`.
    pub const fn new(user: &'a str, password: &'a str) -> FixedUser<'a> {
        FixedUser { user, password }
    }

    /// The user name (for a log line; the password is never shown).
    pub fn user(&self) -> &'a str {
        self.user
    }
}

impl core::fmt::Debug for FixedUser<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FixedUser")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Authenticator for FixedUser<'_> {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        let expected = self.password.as_bytes();
        let mut diff = u8::from(expected.len() != password.len());
        for (i, e) in expected.iter().enumerate() {
            diff |= e ^ password.get(i).copied().unwrap_or(0);
        }
        if user == self.user.as_bytes() && diff == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn only_the_right_pair_logs_in() {
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut auth = FixedUser::new("ferry", "s3cret");
        assert!(auth.authenticate(b"ferry", b"s3cret", peer).is_ok());
        assert!(auth.authenticate(b"ferry", b"s3cre", peer).is_err());
        assert!(auth.authenticate(b"ferry", b"s3cret!", peer).is_err());
        assert!(auth.authenticate(b"other", b"s3cret", peer).is_err());
        assert!(auth.authenticate(b"ferry", b"", peer).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        extern crate std;
        let text = std::format!("{:?}", FixedUser::new("ferry", "s3cret"));
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("***"), "{text}");
    }
}

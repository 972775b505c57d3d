//! Who may log in to `ferryd`: a table of users with plain or argon2-hashed
//! passwords, optional anonymous access, as a [`ferry_core::Authenticator`].
use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ferry_core::{AuthError, Authenticator, Permissions, User};
use ferry_net::IpAddr;
use rand::distributions::{Alphanumeric, DistString};

use crate::cli::Password;
use crate::settings::UserSpec;

/// Length of the password made up for the default user.
const GENERATED_PASSWORD_LEN: usize = 16;

/// The [`User::id`] of anonymous users; real users are indices into the table.
const ANONYMOUS_ID: u16 = u16::MAX;

/// How a user's password is checked. `Debug` shows neither password nor hash.
#[derive(Clone)]
pub enum Secret {
    /// Compared in constant time.
    Plain(Password),
    /// An argon2 PHC string, checked well-formed at load.
    Hash(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(***)"),
            Secret::Hash(_) => f.write_str("Hash(***)"),
        }
    }
}

impl Secret {
    /// An argon2 hash from a config file; refused unless it is a well-formed
    /// PHC string of one of the argon2 variants.
    pub fn hash(phc: &str) -> Result<Secret, String> {
        let parsed = PasswordHash::new(phc).map_err(|e| {
            format!("not a PHC hash string ({e}); make one with `ferryd --hash-password`")
        })?;
        if argon2::Algorithm::try_from(parsed.algorithm).is_err() {
            return Err(format!("{} is not an argon2 hash", parsed.algorithm));
        }
        if parsed.hash.is_none() {
            return Err("the hash has no output part".to_string());
        }
        Ok(Secret::Hash(phc.to_string()))
    }

    /// Whether `password` matches.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Secret::Plain(expected) => constant_time_eq(expected.0.as_bytes(), password),
            Secret::Hash(phc) => verify_hash(phc, password),
        }
    }
}

/// Checks `password` against an argon2 PHC string, with the parameters the
/// string names.
fn verify_hash(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
        Err(_) => false,
    }
}

/// Compares without an early exit on the first differing byte, so the time
/// taken says nothing about how much of the password was right (only, at
/// most, its length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    std::hint::black_box(diff) == 0
}

/// A password for the default user: 16 random letters and digits.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_PASSWORD_LEN)
}

/// Hashes `password` with argon2id and the crate's recommended parameters,
/// as a PHC string for a config file's `password_hash`.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    hash_password_with(&Argon2::default(), password)
}

/// Hashes `password` with the given argon2 context and a random salt.
pub fn hash_password_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `name` is one of the anonymous login names (`anonymous`, `ftp`,
/// in any case).
pub fn is_anonymous_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp")
}

/// One entry of the table.
#[derive(Debug)]
struct Account {
    name: Vec<u8>,
    secret: Secret,
    home: Vec<u8>,
    permissions: Permissions,
}

/// The users of a running `ferryd`; fixed at start.
#[derive(Debug)]
pub struct UserTable {
    accounts: Vec<Account>,
    anonymous: bool,
    /// Verified for unknown names when some users have hashes, so that the
    /// time a refusal takes does not tell which names exist.
    decoy: Option<Secret>,
}

impl UserTable {
    /// A table of `users`; `anonymous` allows `anonymous`/`ftp` with any
    /// password; `read_only` takes write rights from everyone.
    pub fn new(users: &[UserSpec], anonymous: bool, read_only: bool) -> UserTable {
        let accounts = users
            .iter()
            .map(|u| Account {
                name: u.name.as_bytes().to_vec(),
                secret: u.secret.clone(),
                home: u.home.as_bytes().to_vec(),
                permissions: if read_only || u.read_only {
                    Permissions::READ_ONLY
                } else {
                    Permissions::ALL
                },
            })
            .collect::<Vec<_>>();
        let decoy = accounts.iter().find_map(|a| match &a.secret {
            Secret::Hash(phc) => Some(Secret::Hash(phc.clone())),
            Secret::Plain(_) => None,
        });
        UserTable {
            accounts,
            anonymous,
            decoy,
        }
    }

    /// Number of configured users (anonymous not counted).
    pub fn len(&self) -> usize {
        self.accounts.len()
    }
}

impl Authenticator for UserTable {
    fn needs_password(&mut self, _user: &[u8]) -> bool {
        // Always: anonymous users send an e-mail address by convention, and
        // unknown names must look like known ones.
        true
    }

    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        if self.anonymous && is_anonymous_name(user) {
            return Ok(User {
                id: ANONYMOUS_ID,
                permissions: Permissions::READ_ONLY,
            });
        }
        let found = self
            .accounts
            .iter()
            .enumerate()
            .find(|(_, a)| a.name == user);
        match found {
            Some((index, account)) => match (account.secret.verify(password), u16::try_from(index))
            {
                (true, Ok(id)) if id != ANONYMOUS_ID => Ok(User {
                    id,
                    permissions: account.permissions,
                }),
                _ => Err(AuthError::Invalid),
            },
            None => {
                if let Some(decoy) = &self.decoy {
                    // The result does not matter, only the time spent.
                    let _ = decoy.verify(password);
                }
                Err(AuthError::Invalid)
            }
        }
    }

    fn home(&self, user: &User) -> &[u8] {
        // Ids come only from `authenticate` and the table never changes, so
        // the lookup always succeeds; anonymous users get the whole root.
        match self.accounts.get(usize::from(user.id)) {
            Some(account) if user.id != ANONYMOUS_ID => &account.home,
            _ => b"/",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};
    use ferry_net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// An argon2id hash with tiny parameters: fast in debug builds.
    pub(crate) fn cheap_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        hash_password_with(&argon2, password.as_bytes()).unwrap()
    }

    fn spec(name: &str, secret: Secret, home: &str, read_only: bool) -> UserSpec {
        UserSpec {
            name: name.into(),
            secret,
            home: home.into(),
            read_only,
        }
    }

    fn plain(pw: &str) -> Secret {
        Secret::Plain(Password(pw.into()))
    }

    #[test]
    fn constant_time_eq_matches_only_equal_bytes() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn argon2_hash_verifies_and_rejects() {
        let phc = cheap_hash("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        let secret = Secret::hash(&phc).unwrap();
        assert!(secret.verify(b"correct horse"));
        assert!(!secret.verify(b"correct horse "));
        assert!(!secret.verify(b""));
    }

    #[test]
    fn hash_without_output_is_refused() {
        // Parses as PHC, but no password could ever match it.
        assert!(Secret::hash("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA").is_err());
    }

    #[test]
    fn non_argon2_hashes_are_refused() {
        assert!(Secret::hash("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_err());
        assert!(Secret::hash("hunter2").is_err());
    }

    #[test]
    fn secret_debug_hides_everything() {
        let shown = format!(
            "{:?} {:?}",
            plain("hunter2"),
            Secret::hash(&cheap_hash("x")).unwrap()
        );
        assert_eq!(shown, "Plain(***) Hash(***)");
    }

    #[test]
    fn random_passwords_are_16_alphanumerics_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_password());
    }

    #[test]
    fn users_log_in_with_their_password_only() {
        let users = [
            spec("alice", plain("a:1"), "/alice", false),
            spec("bob", Secret::hash(&cheap_hash("b")).unwrap(), "/", true),
        ];
        let mut table = UserTable::new(&users, false, false);
        assert_eq!(table.len(), 2);
        let alice = table.authenticate(b"alice", b"a:1", PEER).unwrap();
        assert_eq!(alice.permissions, Permissions::ALL);
        assert_eq!(table.home(&alice), b"/alice");
        let bob = table.authenticate(b"bob", b"b", PEER).unwrap();
        assert_eq!(bob.permissions, Permissions::READ_ONLY);
        assert_eq!(table.home(&bob), b"/");
        assert_eq!(
            table.authenticate(b"alice", b"a:2", PEER),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            table.authenticate(b"Alice", b"a:1", PEER),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            table.authenticate(b"bob", b"a:1", PEER),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            table.authenticate(b"carol", b"b", PEER),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn unknown_users_need_a_password_too() {
        let mut table = UserTable::new(&[spec("alice", plain("a"), "/", false)], false, false);
        assert!(table.needs_password(b"alice"));
        assert!(table.needs_password(b"nobody"));
    }

    #[test]
    fn anonymous_is_read_only_with_any_password_when_enabled() {
        let mut off = UserTable::new(&[], false, false);
        assert_eq!(
            off.authenticate(b"anonymous", b"x@y", PEER),
            Err(AuthError::Invalid)
        );
        let mut on = UserTable::new(&[spec("alice", plain("a"), "/alice", false)], true, false);
        for name in [&b"anonymous"[..], b"ftp", b"FTP", b"Anonymous"] {
            let user = on.authenticate(name, b"whatever", PEER).unwrap();
            assert_eq!(user.permissions, Permissions::READ_ONLY);
            assert_eq!(on.home(&user), b"/");
        }
        assert_eq!(
            on.authenticate(b"alice", b"b", PEER),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn read_only_applies_to_everyone() {
        let mut table = UserTable::new(&[spec("alice", plain("a"), "/", false)], false, true);
        let alice = table.authenticate(b"alice", b"a", PEER).unwrap();
        assert_eq!(alice.permissions, Permissions::READ_ONLY);
    }
}

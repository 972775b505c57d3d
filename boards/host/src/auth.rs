//! Who may log in to `ferryd`: a table of users with plain or argon2-hashed
//! passwords, optional anonymous access, as a [`ferry_core::Authenticator`].
use std::collections::HashMap;
use std::fmt;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

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
    /// Where hashes are checked, once [`UserTable::check_in_background`]
    /// started it; without it, they are checked inside the poll loop.
    checker: Option<Checker>,
}

/// A hash to check on a worker thread.
struct Job {
    slot: usize,
    generation: u64,
    phc: Arc<str>,
    password: Vec<u8>,
    /// Who logs in if it matches; `None`: the decoy of an unknown name,
    /// which never does.
    user: Option<User>,
}

/// A checked [`Job`].
struct Done {
    slot: usize,
    generation: u64,
    result: Result<User, AuthError>,
}

/// Worker threads that check argon2 hashes: one check takes tens of
/// milliseconds, and inside the poll loop it would stall every session
/// (issue 15: 40 connections guessing passwords took a logged-in user's
/// NOOP from 0.4 ms to 220 ms at worst).
struct Checker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    /// The generation of each slot's current check; a result for an older
    /// one (its session ended meanwhile) is dropped.
    current: HashMap<usize, u64>,
    results: HashMap<usize, Result<User, AuthError>>,
    next: u64,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("pending", &self.current.len())
            .finish()
    }
}

impl Checker {
    /// `threads` workers; `wake` is called after each check (it wakes the
    /// poll loop).
    fn start(threads: usize, wake: Arc<dyn Fn() + Send + Sync>) -> Checker {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (report, done) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let wake = Arc::clone(&wake);
            let spawned = thread::Builder::new()
                .name(format!("ferryd-login-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job.
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return; // the table is gone
                    };
                    let matches = verify_hash(&job.phc, &job.password);
                    let result = match (matches, job.user) {
                        (true, Some(user)) => Ok(user),
                        _ => Err(AuthError::Invalid),
                    };
                    let sent = report.send(Done {
                        slot: job.slot,
                        generation: job.generation,
                        result,
                    });
                    if sent.is_err() {
                        return;
                    }
                    wake();
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a login-check thread: {e}");
            }
        }
        Checker {
            jobs,
            done,
            current: HashMap::new(),
            results: HashMap::new(),
            next: 0,
        }
    }

    /// Queues a check for `slot`, replacing any it had.
    fn submit(&mut self, slot: usize, phc: &str, password: &[u8], user: Option<User>) -> bool {
        self.next += 1;
        self.current.insert(slot, self.next);
        self.results.remove(&slot);
        self.jobs
            .send(Job {
                slot,
                generation: self.next,
                phc: Arc::from(phc),
                password: password.to_vec(),
                user,
            })
            .is_ok()
    }

    fn poll(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        while let Ok(done) = self.done.try_recv() {
            if self.current.get(&done.slot) == Some(&done.generation) {
                self.current.remove(&done.slot);
                self.results.insert(done.slot, done.result);
            }
        }
        if let Some(result) = self.results.remove(&slot) {
            return Some(result);
        }

        // Nothing pending for this slot: nothing can come.
        (!self.current.contains_key(&slot)).then_some(Err(AuthError::Invalid))
    }
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
            checker: None,
        }
    }

    /// Checks password hashes on `threads` worker threads from now on (see
    /// [`Authenticator::begin_login`]), calling `wake` when a result is in.
    pub fn check_in_background(&mut self, threads: usize, wake: Arc<dyn Fn() + Send + Sync>) {
        self.checker = Some(Checker::start(threads, wake));
    }

    /// Number of configured users (anonymous not counted).
    pub fn len(&self) -> usize {
        self.accounts.len()
    }
}

/// Whom a login name names, as both [`Authenticator::authenticate`] and
/// [`Authenticator::begin_login`] see it.
enum Whom<'a> {
    /// `anonymous` or `ftp`, with anonymous logins on.
    Anonymous,
    /// A user of the table, and the secret its password must match.
    Known(User, &'a Secret),
    /// Nobody; the decoy to spend a check's time on, if there is one.
    Unknown(Option<&'a Secret>),
}

/// Looks `user` up (the table's fields apart, so that a caller may hold
/// the result while it uses the checker).
fn whom<'a>(
    accounts: &'a [Account],
    anonymous: bool,
    decoy: &'a Option<Secret>,
    user: &[u8],
) -> Whom<'a> {
    if anonymous && is_anonymous_name(user) {
        return Whom::Anonymous;
    }
    let found = accounts.iter().enumerate().find(|(_, a)| a.name == user);
    match found.map(|(index, a)| (u16::try_from(index), a)) {
        Some((Ok(id), account)) if id != ANONYMOUS_ID => Whom::Known(
            User {
                id,
                permissions: account.permissions,
            },
            &account.secret,
        ),
        _ => Whom::Unknown(decoy.as_ref()),
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
        match whom(&self.accounts, self.anonymous, &self.decoy, user) {
            Whom::Anonymous => Ok(User {
                id: ANONYMOUS_ID,
                permissions: Permissions::READ_ONLY,
            }),
            Whom::Known(user, secret) if secret.verify(password) => Ok(user),
            Whom::Known(..) => Err(AuthError::Invalid),
            Whom::Unknown(decoy) => {
                if let Some(decoy) = decoy {
                    // The result does not matter, only the time spent.
                    let _ = decoy.verify(password);
                }
                Err(AuthError::Invalid)
            }
        }
    }

    fn begin_login(
        &mut self,
        slot: usize,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        // Hashes go to the workers (an unknown name checks the decoy, as
        // `authenticate` does); the rest is answered at once.
        let job = match whom(&self.accounts, self.anonymous, &self.decoy, user) {
            Whom::Known(who, Secret::Hash(phc)) => Some((phc, Some(who))),
            Whom::Unknown(Some(Secret::Hash(phc))) => Some((phc, None)),
            _ => None,
        };
        let pending = match (job, self.checker.as_mut()) {
            (Some((phc, who)), Some(checker)) => checker.submit(slot, phc, password, who),
            _ => false,
        };
        if pending {
            return Err(AuthError::Pending);
        }
        self.authenticate(user, password, peer)
    }

    fn poll_login(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        match self.checker.as_mut() {
            Some(checker) => checker.poll(slot),
            None => Some(Err(AuthError::Invalid)),
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

    /// Polls `slot` until its background check answers.
    fn wait(table: &mut UserTable, slot: usize) -> Result<User, AuthError> {
        for _ in 0..5000 {
            if let Some(r) = table.poll_login(slot) {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("no answer for slot {slot}");
    }

    #[test]
    fn hashes_are_checked_in_the_background_and_plain_passwords_at_once() {
        let users = [
            spec("alice", Secret::hash(&cheap_hash("a")).unwrap(), "/", false),
            spec("bob", plain("b"), "/", false),
        ];
        let mut table = UserTable::new(&users, true, false);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        table.check_in_background(
            1,
            Arc::new(move || {
                w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        assert_eq!(
            table.begin_login(0, b"alice", b"a", PEER),
            Err(AuthError::Pending)
        );
        assert_eq!(
            table.begin_login(1, b"alice", b"x", PEER),
            Err(AuthError::Pending)
        );
        // An unknown name checks the decoy hash, in the background too.
        assert_eq!(
            table.begin_login(2, b"nobody", b"a", PEER),
            Err(AuthError::Pending)
        );
        assert_eq!(wait(&mut table, 0).map(|u| u.id), Ok(0));
        assert_eq!(wait(&mut table, 1), Err(AuthError::Invalid));
        assert_eq!(wait(&mut table, 2), Err(AuthError::Invalid));
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        // Plain passwords and anonymous logins answer at once.
        assert_eq!(
            table.begin_login(3, b"bob", b"b", PEER).map(|u| u.id),
            Ok(1)
        );
        assert_eq!(
            table.begin_login(3, b"bob", b"x", PEER),
            Err(AuthError::Invalid)
        );
        assert!(table.begin_login(3, b"ftp", b"me@x", PEER).is_ok());
        // A slot with nothing pending answers Invalid at once.
        assert_eq!(table.poll_login(9), Some(Err(AuthError::Invalid)));
    }

    #[test]
    fn a_newer_check_of_a_slot_replaces_the_older_one() {
        let users = [spec(
            "alice",
            Secret::hash(&cheap_hash("a")).unwrap(),
            "/",
            false,
        )];
        let mut table = UserTable::new(&users, false, false);
        table.check_in_background(1, Arc::new(|| {}));
        // The session that asked first ended; its slot's new session asks.
        assert_eq!(
            table.begin_login(0, b"alice", b"wrong", PEER),
            Err(AuthError::Pending)
        );
        assert_eq!(
            table.begin_login(0, b"alice", b"a", PEER),
            Err(AuthError::Pending)
        );
        assert_eq!(wait(&mut table, 0).map(|u| u.id), Ok(0));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            table.poll_login(0),
            Some(Err(AuthError::Invalid)),
            "nothing left over"
        );
    }
}

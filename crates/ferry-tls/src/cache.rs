//! One control connection's TLS session cache, and the ticketer that keeps
//! resumption stateful (so it stays inside that cache).
//!
//! Every control connection gets its own `rustls::ServerConfig` whose
//! `session_storage` is a [`SessionCache`] and whose `ticketer` is
//! [`NoTickets`]. Its data connections are started with a twin config that
//! reads the same cache (a [`SessionStore`] view of it), so they can resume
//! the control connection's sessions and nobody else's: a third party that
//! connects to a passive port cannot present a session of this control
//! connection (it never saw its keys), and the sessions of its own control
//! connection are not in this cache.
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::server::{ProducesTickets, StoresServerSessions};

/// Sessions as (key, encoded session), oldest first.
type Fifo = VecDeque<(Vec<u8>, Vec<u8>)>;

/// The TLS sessions (TLS 1.2 session IDs, TLS 1.3 stateful tickets) of one
/// control connection and its data connections, in two bounded FIFOs: the
/// control connection's own, and those of its data connections (TLS 1.2
/// sessions of data connections that did not resume; they get no TLS 1.3
/// tickets). Data connections never push the control connection's sessions
/// out: clients resume the control session on every transfer.
pub(crate) struct SessionCache {
    own: spin::Mutex<Fifo>,
    data: spin::Mutex<Fifo>,
    capacity: usize,
}

impl SessionCache {
    /// A cache of at most `capacity` sessions of each kind (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        SessionCache {
            own: spin::Mutex::new(VecDeque::new()),
            data: spin::Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn put(&self, fifo: &spin::Mutex<Fifo>, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = fifo.lock();
        if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return true;
        }
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let find = |fifo: &spin::Mutex<Fifo>| {
            fifo.lock()
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v.clone())
        };
        find(&self.own).or_else(|| find(&self.data))
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("own", &self.own.lock().len())
            .field("data", &self.data.lock().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// One connection's view of its control connection's [`SessionCache`]:
/// both read every session; each stores into its own FIFO.
#[derive(Debug)]
pub(crate) struct SessionStore {
    cache: Arc<SessionCache>,
    /// A data connection's view (stores into the data FIFO).
    data: bool,
}

impl SessionStore {
    /// The control connection's view of `cache`.
    pub(crate) fn control(cache: Arc<SessionCache>) -> Self {
        SessionStore { cache, data: false }
    }

    /// Its data connections' view of `cache`.
    pub(crate) fn data(cache: Arc<SessionCache>) -> Self {
        SessionStore { cache, data: true }
    }
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let fifo = if self.data {
            &self.cache.data
        } else {
            &self.cache.own
        };
        self.cache.put(fifo, key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.get(key)
    }

    /// Like `get`: the session stays. rustls takes TLS 1.3 tickets to make
    /// them single-use, but FTP clients (Python, FileZilla, curl) resume the
    /// control connection's one session on every data connection. Single
    /// use guards 0-RTT data against replay, and 0-RTT is off
    /// (`max_early_data_size` = 0); linking two connections to one client
    /// reveals nothing here, since they belong to one FTP session anyway.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// A ticketer that issues nothing: stateless tickets could be presented on
/// any connection, which would defeat the per-control-connection binding.
#[derive(Debug)]
pub(crate) struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pair(capacity: usize) -> (SessionStore, SessionStore) {
        let cache = Arc::new(SessionCache::new(capacity));
        (
            SessionStore::control(Arc::clone(&cache)),
            SessionStore::data(cache),
        )
    }

    #[test]
    fn sessions_can_be_resumed_more_than_once() {
        let (control, data) = pair(4);
        assert!(control.put(vec![1], vec![10]));
        assert_eq!(data.take(&[1]), Some(vec![10]));
        assert_eq!(data.take(&[1]), Some(vec![10]));
        assert_eq!(control.get(&[1]), Some(vec![10]));
        assert_eq!(control.get(&[2]), None);
        assert!(control.can_cache() && data.can_cache());
    }

    #[test]
    fn oldest_session_goes_first_and_put_replaces() {
        let (control, _) = pair(2);
        control.put(vec![1], vec![10]);
        control.put(vec![2], vec![20]);
        control.put(vec![1], vec![11]);
        control.put(vec![3], vec![30]);
        // Replaced in place, [1] stayed the oldest and went first.
        assert_eq!(control.get(&[1]), None);
        assert_eq!(control.get(&[2]), Some(vec![20]));
        assert_eq!(control.get(&[3]), Some(vec![30]));
        let (zero, _) = pair(0);
        zero.put(vec![1], vec![1]);
        assert_eq!(zero.get(&[1]), Some(vec![1]));
    }

    #[test]
    fn data_connections_never_push_the_control_sessions_out() {
        let (control, data) = pair(2);
        control.put(vec![1], vec![10]);
        control.put(vec![2], vec![20]);
        for i in 10..20 {
            data.put(vec![i], vec![i]);
        }
        assert_eq!(data.get(&[1]), Some(vec![10]));
        assert_eq!(data.get(&[2]), Some(vec![20]));
        assert_eq!(control.get(&[19]), Some(vec![19]));
        assert_eq!(control.get(&[10]), None);
    }

    #[test]
    fn no_tickets_is_disabled() {
        assert!(!NoTickets.enabled());
        assert_eq!(NoTickets.encrypt(b"x"), None);
        assert_eq!(NoTickets.decrypt(b"x"), None);
    }
}

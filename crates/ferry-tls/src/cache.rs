//! One control connection's TLS session cache, and the ticketer that keeps
//! resumption stateful (so it stays inside that cache).
//!
//! Every control connection gets its own `rustls::ServerConfig` whose
//! `session_storage` is a [`SessionCache`] and whose `ticketer` is
//! [`NoTickets`]. Its data connections are started with the same config, so
//! they can resume the control connection's sessions and nobody else's: a
//! third party that connects to a passive port cannot present a session of
//! this control connection (it never saw its keys), and the sessions of its
//! own control connection are not in this cache.
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use rustls::server::{ProducesTickets, StoresServerSessions};

/// A small FIFO of TLS sessions (TLS 1.2 session IDs, TLS 1.3 stateful
/// tickets) for one control connection and its data connections.
pub(crate) struct SessionCache {
    entries: spin::Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
    capacity: usize,
}

impl SessionCache {
    /// A cache of at most `capacity` sessions (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        SessionCache {
            entries: spin::Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("sessions", &self.entries.lock().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = self.entries.lock();
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
        let entries = self.entries.lock();
        entries
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.clone())
    }

    /// Like `get`: the session stays. rustls takes TLS 1.3 tickets to make
    /// them single-use, but FTP clients (curl, lftp, FileZilla) resume the
    /// control connection's one session on every data connection. Single
    /// use guards 0-RTT data against replay, and 0-RTT is off
    /// (`max_early_data_size` = 0); linking two connections to one client
    /// reveals nothing here, since they belong to one FTP session anyway.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
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

    #[test]
    fn sessions_can_be_resumed_more_than_once() {
        let cache = SessionCache::new(4);
        assert!(cache.put(vec![1], vec![10]));
        assert_eq!(cache.take(&[1]), Some(vec![10]));
        assert_eq!(cache.take(&[1]), Some(vec![10]));
        assert_eq!(cache.get(&[1]), Some(vec![10]));
        assert_eq!(cache.get(&[2]), None);
    }

    #[test]
    fn oldest_session_goes_first_and_put_replaces() {
        let cache = SessionCache::new(2);
        cache.put(vec![1], vec![10]);
        cache.put(vec![2], vec![20]);
        cache.put(vec![1], vec![11]);
        cache.put(vec![3], vec![30]);
        assert_eq!(cache.get(&[1]), None);
        assert_eq!(cache.get(&[2]), Some(vec![20]));
        assert_eq!(cache.get(&[3]), Some(vec![30]));
        // Replaced in place, [1] stayed the oldest and went first.
        let zero = SessionCache::new(0);
        zero.put(vec![1], vec![1]);
        assert_eq!(zero.get(&[1]), Some(vec![1]));
    }

    #[test]
    fn no_tickets_is_disabled() {
        assert!(!NoTickets.enabled());
        assert_eq!(NoTickets.encrypt(b"x"), None);
        assert!(SessionCache::new(1).can_cache());
    }
}

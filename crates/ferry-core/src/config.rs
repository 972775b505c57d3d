//! Server settings: limits, timeouts, the passive range and NAT override.
use ferry_net::IpAddr;

/// Settings of a [`crate::Server`]; plain data, cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most concurrent control connections (capped by the server's table
    /// size `N`; 0 means `N`). With the feature `scale` idle sessions may
    /// be parked outside the table, so the cap is the table's length plus
    /// its parked entries', and so is 0. When they are all taken, a new connection
    /// evicts the oldest session that has not logged in (see
    /// [`crate::Server::poll`]); if every session has logged in, or is
    /// too young to evict, the new connection gets 421.
    pub max_sessions: u16,
    /// Most concurrent connections from one IP address (0 = no limit);
    /// beyond it a new connection gets 421 and is closed.
    pub max_per_ip: u16,
    /// Close a control connection idle this long (ms). Paused during transfers.
    pub idle_timeout_ms: u64,
    /// Abort a data connection without progress for this long (ms), and the
    /// wait for a passive connection or an active connect.
    pub data_timeout_ms: u64,
    /// Close a control connection that has not logged in this long after
    /// it was accepted (ms; 0 = only the idle timeout applies). The default,
    /// 10 s, suits a device with a few sessions; ferryd's is 30 s. A login
    /// in progress, or one waiting out its failure delay, has not logged
    /// in. The two login times are `u32` (up to 49 days): as a pair they
    /// take the room of one `u64`.
    pub login_timeout_ms: u32,
    /// Delay before answering a failed login (ms).
    pub login_fail_delay_ms: u32,
    /// Failed logins after which the connection is closed.
    pub max_login_failures: u8,
    /// Passive ports, inclusive.
    pub passive_ports: (u16, u16),
    /// Address announced in `PASV` replies instead of the control connection's
    /// local address (for NAT). `EPSV` is unaffected: it names only a port.
    pub passive_address: Option<IpAddr>,
    /// Refuse every change (uploads, deletes, renames, mkdir) for all users.
    pub read_only: bool,
    /// Whether `SITE CHMOD` is offered (the storage must support modes).
    pub site_chmod: bool,
    /// Refuse `USER` (530) until the control connection is TLS-protected
    /// (`AUTH TLS`, or an implicit-TLS listener).
    pub require_tls_login: bool,
    /// Refuse data transfers (521) unless `PROT P` protects them.
    pub require_tls_data: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: 0,
            max_per_ip: 0,
            idle_timeout_ms: 300_000,
            data_timeout_ms: 60_000,
            login_timeout_ms: 10_000,
            login_fail_delay_ms: 1_000,
            max_login_failures: 3,
            passive_ports: (49152, 65534),
            passive_address: None,
            read_only: false,
            site_chmod: true,
            require_tls_login: false,
            require_tls_data: false,
        }
    }
}

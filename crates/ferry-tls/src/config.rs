//! What the TLS layer serves: the certificate and rustls settings, and the
//! session-reuse policy for data connections.
use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::ServerConfig;

use crate::cache::{NoTickets, SessionCache, SessionStore};

/// The configs of one control connection: its own, and its data
/// connections' (which share its session cache).
pub(crate) struct ControlConfigs {
    /// For the control connection.
    pub(crate) control: Arc<ServerConfig>,
    /// For its data connections.
    pub(crate) data: Arc<ServerConfig>,
}

/// Sessions one control connection's cache keeps of each kind (its own:
/// a TLS 1.2 session or 2 TLS 1.3 tickets; its data connections': TLS 1.2
/// sessions of those that did not resume).
const DEFAULT_SESSIONS_PER_CONTROL: usize = 4;

/// Plaintext bytes per record a device build sends (see
/// [`TlsConfig::from_der`]): the outgoing buffer is one such record, and
/// 2 KB records cost about 1% more bytes on the wire than 16 KB ones.
pub(crate) const DEVICE_RECORD_PLAINTEXT: usize = 2048;

/// Records one `send` encrypts at most, by default (4 × 16 KB: a host's
/// 64 KiB transfer buffer in one call).
const DEFAULT_SEND_BATCH: usize = 4;

/// The TLS settings of a [`crate::TlsStack`]: a rustls [`ServerConfig`]
/// (certificate, versions, cipher suites) and the data-connection policy.
///
/// The `session_storage` and `ticketer` of the given config are replaced
/// per control connection (see the [`crate`] docs on resumption), and early
/// data is turned off.
#[derive(Clone)]
pub struct TlsConfig {
    base: Arc<ServerConfig>,
    require_session_reuse: bool,
    sessions_per_control: usize,
    handshake_timeout_ms: u64,
    max_connections: usize,
    send_batch: usize,
    #[cfg(feature = "release-idle")]
    release_idle_buffers: bool,
}

impl core::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("require_session_reuse", &self.require_session_reuse)
            .field("sessions_per_control", &self.sessions_per_control)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field("send_batch", &self.send_batch)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Serves with `server` (built with any crypto provider), session reuse
    /// optional, handshakes limited to 30 s.
    pub fn new(server: ServerConfig) -> Self {
        TlsConfig {
            base: Arc::new(server),
            require_session_reuse: false,
            sessions_per_control: DEFAULT_SESSIONS_PER_CONTROL,
            handshake_timeout_ms: 30_000,
            max_connections: usize::MAX,
            send_batch: DEFAULT_SEND_BATCH,
            #[cfg(feature = "release-idle")]
            release_idle_buffers: false,
        }
    }

    /// Serves `chain` (leaf first) with its private `key`, TLS 1.3 (and 1.2
    /// with the `tls12` feature), through the pure-Rust provider; `time`
    /// dates sessions (e.g. [`crate::ClockTime`]).
    ///
    /// The provider is [`crate::provider`] (every suite and key type) with
    /// the `rustcrypto` feature; else, with `device`, the small
    /// [`crate::device::provider`] (ECDSA P-256 keys only), and records of
    /// 2 KB of plaintext out (see [`TlsConfig::max_record_plaintext`]).
    #[cfg(any(feature = "rustcrypto", feature = "device"))]
    pub fn from_der(
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
        time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Result<Self, rustls::Error> {
        #[cfg(feature = "rustcrypto")]
        return Self::with_provider(crate::provider(), chain, key, time);
        #[cfg(not(feature = "rustcrypto"))]
        {
            let provider = crate::device::provider();
            let key = provider.key_provider.load_private_key(key)?;
            Self::device(provider, chain, key, time)
        }
    }

    /// Serves `chain` (leaf first) with its private `key` (any type
    /// `provider` loads), TLS 1.2 (with rustls' `tls12` feature) and 1.3,
    /// through `provider` (e.g. rustls' `ring` on a host); `time` dates
    /// sessions.
    pub fn with_provider(
        provider: rustls::crypto::CryptoProvider,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
        time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Result<Self, rustls::Error> {
        let server = ServerConfig::builder_with_details(Arc::new(provider), time)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsConfig::new(server))
    }

    /// Serves `chain` (leaf first, DER, sent as it is) with the ECDSA P-256
    /// key whose 32-byte secret scalar is `key` ([`crate::device::signing_key`]),
    /// TLS 1.3 (and 1.2 with the `tls12` feature) through the small
    /// [`crate::device::provider`], with records of 2 KB of plaintext out.
    /// The smallest way to serve TLS on a device: neither the key nor the
    /// certificate is parsed (a key that does not match the certificate
    /// shows at the first handshake).
    #[cfg(feature = "device")]
    pub fn from_p256_key(
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: &[u8],
        time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Result<Self, rustls::Error> {
        let key = crate::device::signing_key(key)
            .ok_or(rustls::Error::General("not a P-256 secret scalar".into()))?;
        let provider = crate::device::provider_for_raw_keys();
        Self::device(provider, chain, key, time)
    }

    /// A device build's config: `provider`, `chain` and `key` as given.
    #[cfg(feature = "device")]
    fn device(
        provider: rustls::crypto::CryptoProvider,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: Arc<dyn rustls::sign::SigningKey>,
        time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Result<Self, rustls::Error> {
        use rustls::sign::{CertifiedKey, SingleCertAndKey};
        // Served as given: the check that the key matches the certificate
        // (`with_single_cert`) parses the certificate, 5 KB of flash; a
        // mismatch shows at the first handshake instead.
        let resolver = SingleCertAndKey::from(CertifiedKey::new(chain, key));
        let server = ServerConfig::builder_with_details(Arc::new(provider), time)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        Ok(TlsConfig::new(server)
            .max_record_plaintext(DEVICE_RECORD_PLAINTEXT)
            .send_batch(1))
    }

    /// The most plaintext bytes one record this server sends carries (32 to
    /// 16 384, clamped; default 16 384): each connection's outgoing buffer
    /// holds one such record, so a device saves RAM with small records.
    /// Records that come in are not limited by this (clients send up to
    /// 16 KB).
    pub fn max_record_plaintext(mut self, bytes: usize) -> Self {
        let bytes = bytes.clamp(32, crate::conn::MAX_PLAIN_CHUNK);
        // rustls counts the 5-byte record header in.
        Arc::make_mut(&mut self.base).max_fragment_size = Some(bytes + 5);
        self
    }

    /// Whether a data connection must resume its control connection's TLS
    /// session (else its handshake fails, and the engine replies 425/426).
    /// This stops anyone but the control connection's client from taking
    /// over a data connection; clients that do not resume (Python's ftplib)
    /// then cannot transfer. Off by default.
    pub fn require_session_reuse(mut self, required: bool) -> Self {
        self.require_session_reuse = required;
        self
    }

    /// Whether data connections must resume (see
    /// [`TlsConfig::require_session_reuse`]).
    pub fn session_reuse_required(&self) -> bool {
        self.require_session_reuse
    }

    /// How many sessions each control connection's cache keeps, of its own
    /// and of its data connections' each (default 4).
    pub fn sessions_per_control(mut self, sessions: usize) -> Self {
        self.sessions_per_control = sessions.max(1);
        self
    }

    /// How long a handshake may take before the connection fails (default
    /// 30 000 ms); a client that stalls mid-handshake is dropped then.
    pub fn handshake_timeout_ms(mut self, ms: u64) -> Self {
        self.handshake_timeout_ms = ms;
        self
    }

    /// How many TLS connections may be open at once, closing ones included
    /// (default: no limit). A board sizes its heap for so many (about 22 KB
    /// each at their peak in the device configuration): one more is refused
    /// before it allocates anything (`AUTH TLS` and `PROT P` get the
    /// engine's 4xx reply, an implicit-TLS connection is closed), instead of
    /// running the heap out.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// How many records one `send` encrypts at most (default 4; 1 in a
    /// device build): each connection's outgoing buffer holds that many, so
    /// a device keeps one; a host that hands the TLS layer 64 KiB at a time
    /// saves three calls (and the engine's re-reads of what a short send
    /// left) per 64 KiB.
    pub fn send_batch(mut self, records: usize) -> Self {
        self.send_batch = records.max(1);
        self
    }

    /// Whether a control connection frees its record buffers while they
    /// are empty, once its handshake is over, and allocates them again for
    /// the next record (default: no, they stay allocated from the first
    /// use, as a device's heap wants). A host with many idle FTPS sessions
    /// says yes: an idle one then holds its keys, not a record's room
    /// (about 17 KB). Feature `release-idle`.
    #[cfg(feature = "release-idle")]
    pub fn release_idle_buffers(mut self, release: bool) -> Self {
        self.release_idle_buffers = release;
        self
    }

    /// See [`TlsConfig::release_idle_buffers`].
    #[cfg(feature = "release-idle")]
    pub(crate) fn releases_idle_buffers(&self) -> bool {
        self.release_idle_buffers
    }

    /// See [`TlsConfig::send_batch`].
    pub(crate) fn batch(&self) -> usize {
        self.send_batch
    }

    /// See [`TlsConfig::max_connections`].
    pub(crate) fn connection_limit(&self) -> usize {
        self.max_connections
    }

    /// See [`TlsConfig::handshake_timeout_ms`].
    pub(crate) fn handshake_timeout(&self) -> u64 {
        self.handshake_timeout_ms
    }

    /// Configs of their own for a new control connection and its data
    /// connections: the base settings with a fresh session cache, no
    /// stateless tickets and no early data.
    pub(crate) fn for_control(&self) -> ControlConfigs {
        let cache = Arc::new(SessionCache::new(self.sessions_per_control));
        let mut control = ServerConfig::clone(&self.base);
        control.ticketer = Arc::new(NoTickets);
        control.max_early_data_size = 0;
        // TLS 1.3 records after the handshake are this layer's (decrypted
        // in place): rustls hands the traffic keys over.
        control.enable_secret_extraction = true;
        let mut data = control.clone();
        control.session_storage = Arc::new(SessionStore::control(Arc::clone(&cache)));
        data.session_storage = Arc::new(SessionStore::data(cache));
        // No TLS 1.3 tickets on data connections: a client that only
        // uploads never reads them, and closing a socket with unread bytes
        // sends a reset, which can destroy the end of its upload in the
        // server's receive queue (seen with curl). Clients resume the
        // control connection's session instead.
        data.send_tls13_tickets = 0;
        ControlConfigs {
            control: Arc::new(control),
            data: Arc::new(data),
        }
    }
}

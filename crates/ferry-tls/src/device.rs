//! A crypto provider sized for a microcontroller: only what an FTPS server
//! with an ECDSA P-256 certificate needs.
//!
//! - TLS 1.3 with `TLS13_AES_128_GCM_SHA256` and
//!   `TLS13_CHACHA20_POLY1305_SHA256`; with the `tls12` feature also TLS 1.2
//!   with `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` and
//!   `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`, for older clients.
//! - Key exchange: X25519 and P-256 (secp256r1).
//! - The server's key: ECDSA P-256 (PKCS#8 or SEC1 DER); other key types are
//!   refused when the config is built.
//! - No signature verification: the server does not ask for client
//!   certificates.
//!
//! The AEADs and hashes are RustCrypto's (through `rustls-rustcrypto`), the
//! curves `x25519-dalek` and `p256`, all pure Rust. Leaving out P-384,
//! Ed25519, RSA and the SHA-384 suites is what makes it small: see
//! `cargo xtask size` and docs/SECURITY.md.
//!
//! # Randomness
//!
//! Every random byte (key shares, ECDSA nonces' extra entropy, session IDs)
//! comes from `getrandom` 0.2. On a microcontroller the board plugs its
//! hardware RNG in with `getrandom::register_custom_getrandom!` (getrandom's
//! `custom` feature, which this feature turns on); a board that registers
//! nothing does not link (`undefined symbol: __getrandom_custom`), so no
//! build silently runs on a weak generator. On a host the OS generator is
//! used and the hook is ignored.
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use p256::ecdsa::signature::RandomizedSigner;
use p256::pkcs8::DecodePrivateKey;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, SharedSecret,
    SupportedKxGroup, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{Error, NamedGroup, PeerMisbehaved, SignatureAlgorithm, SignatureScheme};

/// The provider: see the [module docs](self). Its key provider loads
/// ECDSA P-256 keys from PKCS#8 or SEC1 DER.
pub fn provider() -> CryptoProvider {
    provider_with(&Device)
}

/// The provider with `keys` to load private keys.
fn provider_with(keys: &'static dyn KeyProvider) -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            rustls_rustcrypto::TLS13_AES_128_GCM_SHA256,
            rustls_rustcrypto::TLS13_CHACHA20_POLY1305_SHA256,
            #[cfg(feature = "tls12")]
            rustls_rustcrypto::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            #[cfg(feature = "tls12")]
            rustls_rustcrypto::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![&X25519, &P256],
        // Nothing is verified: no client certificates.
        signature_verification_algorithms: WebPkiSupportedAlgorithms {
            all: &[],
            mapping: &[],
        },
        secure_random: &Device,
        key_provider: keys,
    }
}

/// The provider for a key given as its raw scalar ([`signing_key`]): it
/// loads no keys itself, so no DER decoder is linked (about 10 KB of flash
/// less than [`provider`]).
pub(crate) fn provider_for_raw_keys() -> CryptoProvider {
    provider_with(&NoKeys)
}

/// An ECDSA P-256 signing key from its 32-byte secret scalar (big-endian,
/// as in SEC1 and in the last 32 bytes of `openssl ec -outform DER`'s
/// private key field); `None` if it is not 32 bytes or not a valid scalar.
pub fn signing_key(scalar: &[u8]) -> Option<Arc<dyn SigningKey>> {
    // `from_slice` would take shorter slices as left-padded.
    let scalar: &[u8; 32] = scalar.try_into().ok()?;
    let key = p256::SecretKey::from_bytes(scalar.into()).ok()?;
    Some(Arc::new(P256Key(Arc::new(key.into()))))
}

/// A key provider that loads nothing (keys come from [`signing_key`]).
#[derive(Debug)]
struct NoKeys;

impl KeyProvider for NoKeys {
    fn load_private_key(&self, _: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        Err(Error::General(NOT_P256.into()))
    }
}

/// The provider's randomness and key loading.
#[derive(Debug)]
struct Device;

impl SecureRandom for Device {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::getrandom(bytes).map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Device {
    fn load_private_key(&self, der: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        let key = match &der {
            PrivateKeyDer::Pkcs8(key) => {
                p256::SecretKey::from_pkcs8_der(key.secret_pkcs8_der()).ok()
            }
            PrivateKeyDer::Sec1(key) => p256::SecretKey::from_sec1_der(key.secret_sec1_der()).ok(),
            _ => None,
        };
        let key = key.ok_or(Error::General(NOT_P256.into()))?;
        Ok(Arc::new(P256Key(Arc::new(key.into()))))
    }
}

/// Why a key was refused.
const NOT_P256: &str = "the device provider takes ECDSA P-256 keys (PKCS#8 or SEC1 DER) only";

/// The server's ECDSA P-256 key.
#[derive(Debug)]
struct P256Key(Arc<p256::ecdsa::SigningKey>);

impl SigningKey for P256Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(P256Signer(Arc::clone(&self.0))) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

/// Signs one handshake with the server's key.
#[derive(Debug)]
struct P256Signer(Arc<p256::ecdsa::SigningKey>);

impl Signer for P256Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        // RFC 6979 nonces, hedged with fresh randomness.
        let signature: p256::ecdsa::Signature = self
            .0
            .try_sign_with_rng(&mut rand_core::OsRng, message)
            .map_err(|_| Error::General("ECDSA signing failed".into()))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// X25519 key exchange.
#[derive(Debug)]
struct X25519;

/// One X25519 exchange: the ephemeral secret and its public key.
struct X25519Exchange {
    secret: x25519_dalek::EphemeralSecret,
    public: x25519_dalek::PublicKey,
}

impl SupportedKxGroup for X25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = x25519_dalek::EphemeralSecret::random_from_rng(rand_core::OsRng);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(X25519Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer
            .try_into()
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        // An all-zero secret means a low-order point (RFC 7748, 6.1).
        if !shared.was_contributory() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// P-256 (secp256r1) key exchange.
#[derive(Debug)]
struct P256;

/// One P-256 exchange: the ephemeral secret and its uncompressed public
/// point (65 bytes).
struct P256Exchange {
    secret: p256::ecdh::EphemeralSecret,
    public: p256::EncodedPoint,
}

impl SupportedKxGroup for P256 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = p256::ecdh::EphemeralSecret::random(&mut rand_core::OsRng);
        let public = p256::EncodedPoint::from(secret.public_key());
        Ok(Box::new(P256Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

impl ActiveKeyExchange for P256Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer = p256::PublicKey::from_sec1_bytes(peer)
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&peer);
        Ok(SharedSecret::from(shared.raw_secret_bytes().as_slice()))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

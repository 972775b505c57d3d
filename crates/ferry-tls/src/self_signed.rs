//! A throwaway certificate for a quick start (`ferryd --tls-self-signed`):
//! a fresh P-256 key and a self-signed certificate for the given names,
//! made in pure Rust (rcgen writes the certificate, p256 signs it).
//!
//! Clients cannot verify such a certificate against a CA: they must be told
//! to trust it, ideally by comparing its [`fingerprint`] with the one the
//! server printed (FileZilla shows it when it asks).
use std::string::{String, ToString};
use std::vec::Vec;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A certificate and its private key, DER-encoded.
pub struct SelfSigned {
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// Its private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

impl core::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("fingerprint", &fingerprint(&self.cert))
            .field("key", &"***")
            .finish()
    }
}

/// The P-256 key, as rcgen's signer.
struct P256Signer {
    key: SigningKey,
    public: Vec<u8>,
}

impl rcgen::RemoteKeyPair for P256Signer {
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: DerSignature = self.key.sign(msg);
        Ok(signature.as_bytes().to_vec())
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Makes a key and a certificate valid for `names` (host names, or IP
/// addresses written as text, which become IP address names), with the
/// first name as common name.
pub fn generate(names: &[String]) -> Result<SelfSigned, String> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let public = key
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|e| std::format!("cannot encode the key: {e}"))?
        .as_bytes()
        .to_vec();
    let signer = rcgen::KeyPair::from_remote(std::boxed::Box::new(P256Signer { key, public }))
        .map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    // A random positive serial (rcgen picks none without its own crypto).
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("ferry", String::as_str),
    );
    let cert = params.self_signed(&signer).map_err(|e| e.to_string())?;
    Ok(SelfSigned {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
    })
}

/// The SHA-256 fingerprint of a DER certificate as colon-separated
/// upper-case hex (`AB:01:...`), the form browsers and FileZilla show.
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&std::format!("{byte:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex() {
        // SHA-256 of the empty string.
        let f = fingerprint(b"");
        assert!(f.starts_with("E3:B0:C4:42:98:FC"), "{f}");
        assert_eq!(f.len(), 32 * 3 - 1);
    }

    #[test]
    fn generated_certificate_serves() {
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let made = generate(&names).unwrap();
        assert!(made.cert.len() > 200);
        let time = std::sync::Arc::new(crate::ClockTime(ferry_net::std_stack::StdClock::new()));
        crate::TlsConfig::from_der(std::vec![made.cert.clone()], made.key, time).unwrap();
    }
}

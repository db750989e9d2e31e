//! TLS by rustls (the `ring` provider) from PEM files: the certificate
//! chain, and its private key (PKCS#8, PKCS#1 or SEC1).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("the TLS certificate {cert} and key {key} do not make a TLS setup: {reason}; check that the key belongs to the certificate")]
    Config {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// The certificates of a PEM file, in order.
///
/// # Errors
/// [`TlsError::Pem`].
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read the certificate file ({e})")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no `-----BEGIN CERTIFICATE-----` block; give the server's certificate chain in PEM"
                .into(),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file.
///
/// # Errors
/// [`TlsError::Pem`].
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: format!(
            "no usable private key ({e}); give the certificate's key in PEM (PKCS#8, PKCS#1 or SEC1), unencrypted, readable only by the service"
        ),
    })
}

/// The crypto provider: `ring`, which builds with a C compiler alone.
/// rustls deprecates it for lacking post-quantum key exchange; what TLS
/// protects here is the privacy of requests and the server's identity (the
/// licenses and requests are signed end to end), so the classic X25519
/// exchange is acceptable until the provider is switched for `aws-lc-rs`.
#[allow(deprecated)]
#[must_use]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The server side: HTTP/1.1 over TLS 1.2 or 1.3.
///
/// # Errors
/// [`TlsError`].
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let private = load_key(key)?;
    let provider = Arc::new(provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| TlsError::Config {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

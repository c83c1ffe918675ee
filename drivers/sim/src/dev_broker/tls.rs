//! The broker's TLS identity: a rustls server configuration from PEM certificate and key.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::DevBrokerError;

/// A TLS server configuration (ring crypto, TLS 1.2 and 1.3, no client certificates) from a
/// PEM certificate chain (the server's certificate first) and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1).
pub fn tls_server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, DevBrokerError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DevBrokerError::Tls(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(DevBrokerError::Tls(
            "certificate: no PEM certificate found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| DevBrokerError::Tls(format!("private key: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| DevBrokerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| DevBrokerError::Tls(format!("certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// [`tls_server_config`] from PEM files.
pub fn tls_server_config_from_files(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, DevBrokerError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| DevBrokerError::Tls(format!("{}: {e}", p.display())))
    };
    tls_server_config(&read(cert)?, &read(key)?)
}

//! TLS for every connection, in the core: rustls's client is itself sans-IO, so encryption
//! sits between the connection state machine and the driver's socket and every driver (and
//! the simulation) gets the same TLS behaviour. The core carries no cryptography of its own:
//! the driver hands in a rustls `CryptoProvider` (and the bytes of any CA or key files it read).

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What a TLS client needs, in bytes the driver has read.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates to trust (`ssl_cafile`); `system_roots` are used as well.
    pub ca_pem: Option<Vec<u8>>,
    /// DER certificates from the operating system's store, read by the driver.
    pub system_roots: Vec<CertificateDer<'static>>,
    /// PEM client certificate chain (`ssl_certfile`), for mutual TLS.
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM client private key (`ssl_keyfile`).
    pub client_key_pem: Option<Vec<u8>>,
    /// Verify that the certificate names the host (`ssl_check_hostname`, default true).
    pub check_hostname: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|b| b.len()))
            .field("system_roots", &self.system_roots.len())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field(
                "client_key",
                &self.client_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("check_hostname", &self.check_hostname)
            .finish()
    }
}

/// Builds the rustls client configuration.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    opts: &TlsOptions,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in &opts.system_roots {
        // A broken certificate in the OS store should not stop everything else.
        let _ = roots.add(cert.clone());
    }
    if let Some(pem) = &opts.ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("ssl_cafile: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("ssl_cafile: unusable certificate: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err("ssl_cafile: no PEM certificate found".into());
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates (set ssl_cafile)".into());
    }
    let roots = Arc::new(roots);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if opts.check_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("TLS: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier { inner }))
    };
    let config = match (&opts.client_cert_pem, &opts.client_key_pem) {
        (Some(cert), Some(key)) => {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(cert).collect();
            let certs = certs.map_err(|e| format!("ssl_certfile: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("ssl_keyfile: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("ssl_certfile and ssl_keyfile go together".into()),
    };
    Ok(Arc::new(config))
}

/// Checks the chain against the roots but accepts any host name (`ssl_check_hostname=false`).
#[derive(Debug)]
struct NoHostnameVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One connection's TLS session: ciphertext in and out on one side, plaintext on the other.
pub(crate) struct TlsSession {
    conn: ClientConnection,
    handshake_reported: bool,
}

impl TlsSession {
    pub(crate) fn new(config: Arc<ClientConfig>, host: &str) -> Result<Self, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))?;
        let conn = ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
        Ok(TlsSession {
            conn,
            handshake_reported: false,
        })
    }

    /// Whether the handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Ciphertext waiting to be sent (the ClientHello at first, then records).
    pub(crate) fn take_outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// Feeds ciphertext; appends decrypted bytes to `plain`. Returns true when the handshake
    /// has just completed.
    pub(crate) fn feed(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> Result<bool, String> {
        while !data.is_empty() {
            let n = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| format!("TLS: {e}"))?;
            if n == 0 {
                break;
            }
            let state = self.conn.process_new_packets().map_err(|e| e.to_string())?;
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                let start = plain.len();
                plain.resize(start + available, 0);
                self.conn
                    .reader()
                    .read_exact(&mut plain[start..])
                    .map_err(|e| format!("TLS: {e}"))?;
            }
        }
        if !self.handshake_reported && !self.conn.is_handshaking() {
            self.handshake_reported = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Encrypts plaintext for sending; the ciphertext comes out of `take_outgoing`.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| format!("TLS: {e}"))
    }
}

//! TLS for every connection, in the core: rustls's client is itself sans-IO, so encryption
//! sits between the connection state machine and the driver's socket and every driver (and
//! the simulation) gets the same TLS behaviour. The core carries no cryptography of its own:
//! the driver hands in a rustls `CryptoProvider` (and the bytes of any CA or key files it read).

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::ReadBuffer;

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
    let mut pinned = Vec::new();
    if let Some(pem) = &opts.ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("ssl_cafile: {e}"))?;
            roots
                .add(cert.clone())
                .map_err(|e| format!("ssl_cafile: unusable certificate: {e}"))?;
            pinned.push(cert);
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
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            inner,
            pinned,
            check_hostname: opts.check_hostname,
        }));
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

/// The server certificate check: the chain against the roots (webpki), and
///
/// - a certificate `ssl_cafile` holds itself is trusted as it is (pinned). openssl, Java and
///   librdkafka accept a self-signed server certificate given as the CA file; webpki refuses
///   one that is marked as a CA (`CaUsedAsEndEntity`, what `openssl req -x509` makes by
///   default). Only that exact certificate is accepted this way; its name is still checked
///   (unless `ssl_check_hostname=false`), and the handshake signatures are verified with its
///   key through the provider like any other.
/// - with `ssl_check_hostname=false` any host name is accepted; the issuer still is checked.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    /// The certificates of `ssl_cafile`, as DER.
    pinned: Vec<CertificateDer<'static>>,
    check_hostname: bool,
}

fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    )
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        match result {
            Err(e) if is_name_error(&e) && !self.check_hostname => {
                Ok(ServerCertVerified::assertion())
            }
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
                | rustls::CertificateError::Other(_)
                | rustls::CertificateError::BadEncoding,
            )) if self
                .pinned
                .iter()
                .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                // The exact certificate the user trusts. webpki checked its validity period
                // before it refused it as an end entity; the name is checked here.
                if self.check_hostname {
                    let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
                        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
                    })?;
                    cert.verify_is_valid_for_subject_name(server_name)
                        .map_err(|_| {
                            rustls::Error::InvalidCertificate(
                                rustls::CertificateError::NotValidForName,
                            )
                        })?;
                }
                Ok(ServerCertVerified::assertion())
            }
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

/// A TLS failure in words a user can act on (rustls's own `Display` of certificate errors
/// prints Rust debug text such as `Other(OtherError(CaUsedAsEndEntity))`).
pub(crate) fn describe_error(e: &rustls::Error, host: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the broker's certificate is not signed by a trusted CA: set \
                 ssl_cafile to the CA that signed it (or to the broker's own certificate if it \
                 is self-signed)"
                .into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the broker's certificate is not valid for the name '{host}': connect with a \
                 name it lists, or set ssl_check_hostname=false"
            ),
            C::Expired | C::ExpiredContext { .. } => "the broker's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet (check the clocks)".into()
            }
            C::Revoked => "the broker's certificate is revoked".into(),
            C::BadSignature => "the broker's certificate does not verify against ssl_cafile \
                 (a bad signature: another certificate or CA under the same name?)"
                .into(),
            C::BadEncoding => "the broker's certificate could not be parsed".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the broker's certificate is not meant for TLS servers (extended key usage)".into()
            }
            _ => "the broker's certificate was refused (it or its chain is not usable; \
                  ssl_cafile may need the CA that issued it)"
                .into(),
        },
        E::AlertReceived(alert) => match alert {
            A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::CertificateUnknown => {
                "the broker refused the client certificate (set ssl_certfile and ssl_keyfile to \
                 one it trusts)"
                    .into()
            }
            A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity => {
                "the broker and the client share no TLS version or cipher suite".into()
            }
            other => format!("the broker ended the TLS handshake (alert {other:?})"),
        },
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            "the broker did not answer in TLS: is this a PLAINTEXT listener? (set \
             security_protocol to PLAINTEXT or SASL_PLAINTEXT)"
                .into()
        }
        E::NoCertificatesPresented => "the broker presented no certificate".into(),
        E::PeerIncompatible(_) => {
            "the broker's TLS is incompatible with this client (TLS 1.2 or 1.3 is needed)".into()
        }
        other => format!("handshake failed ({other})"),
    }
}

/// One connection's TLS session: ciphertext in and out on one side, plaintext on the other.
pub(crate) struct TlsSession {
    conn: ClientConnection,
    handshake_reported: bool,
    host: String,
    /// Where decrypted bytes land: the plaintext is a stream of Kafka frames, so it is framed
    /// here as a plaintext socket's bytes are in the driver (see [`ReadBuffer`]), and a large
    /// response is decrypted into one allocation and sliced without a further copy.
    plain: ReadBuffer,
}

impl TlsSession {
    /// A session with `host`, whose decrypted frames are at most `max_frame` bytes (a larger
    /// size prefix allocates nothing; the connection's decoder reports it).
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        host: &str,
        max_frame: usize,
    ) -> Result<Self, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))?;
        let conn = ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
        Ok(TlsSession {
            conn,
            handshake_reported: false,
            host: host.to_owned(),
            plain: ReadBuffer::framed(max_frame),
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

    /// Feeds ciphertext; pushes the decrypted bytes to `plain`, whole frames at a time (or
    /// as they come once the plaintext turned out not to be framed, for the decoder to
    /// report). Returns true when the handshake has just completed.
    ///
    /// rustls decrypts into its own buffer; from there the plaintext is read straight into
    /// room sized for the frame it belongs to, so a frame that spans TLS records (any large
    /// Fetch response: a record carries at most 16 KiB) is not assembled again downstream.
    pub(crate) fn feed(&mut self, mut data: &[u8], plain: &mut Vec<Bytes>) -> Result<bool, String> {
        while !data.is_empty() {
            let n = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| format!("TLS: {e}"))?;
            if n == 0 {
                break;
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| describe_error(&e, &self.host))?;
            let mut available = state.plaintext_bytes_to_read();
            while available > 0 {
                let room = self.plain.spare();
                let want = room.len().min(available);
                self.conn
                    .reader()
                    .read_exact(&mut room[..want])
                    .map_err(|e| format!("TLS: {e}"))?;
                available -= want;
                self.plain.did_read(want);
                // Taken after every read: what is not taken would be copied when the buffer
                // makes room for the next frame.
                if let Some(frames) = self.plain.take() {
                    plain.push(frames);
                }
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

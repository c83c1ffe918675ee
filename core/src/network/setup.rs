//! From a client configuration to the network layer's options: bootstrap addresses, timeouts,
//! TLS and SASL. What needs the outside world (reading certificate files, the OS's root
//! store, the crypto provider, randomness) comes from the driver through [`DriverEnv`], so
//! this stays free of I/O.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

use super::client::NetOptions;
use super::entropy::Entropy;
use super::tls::{client_config, TlsOptions};
use super::versions::ApiVersionTable;
use crate::config::{CommonConfig, SaslMechanism};
use crate::sasl::{OAuthBearerToken, SaslConfig, ScramMechanism, StaticTokenProvider};

/// Loads the operating system's root certificates (called only when a TLS connection is
/// configured without `ssl_cafile`).
pub type RootsLoader = fn() -> Vec<CertificateDer<'static>>;

/// Reads a file named in the configuration (`ssl_cafile`, `ssl_certfile`, `ssl_keyfile`).
pub type FileReader = fn(&Path) -> std::io::Result<Vec<u8>>;

/// What a driver (or an embedder) provides for setting up connections from a configuration:
/// an [`Entropy`] source, always; a rustls crypto provider and the OS's root certificates,
/// only for TLS; a file reader, only for certificate and key files. A PLAINTEXT or
/// SASL_PLAINTEXT client needs nothing but the entropy source.
#[derive(Clone)]
pub struct DriverEnv {
    entropy: Arc<dyn Entropy>,
    tls: Option<(Arc<CryptoProvider>, RootsLoader)>,
    read_file: Option<FileReader>,
}

impl std::fmt::Debug for DriverEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverEnv")
            .field("tls", &self.tls.is_some())
            .field("read_file", &self.read_file.is_some())
            .finish_non_exhaustive()
    }
}

impl DriverEnv {
    /// An environment with `entropy` (SCRAM nonces, and the seed of the core's generator
    /// when the configuration sets no `random_seed`), enough for PLAINTEXT and SASL_PLAINTEXT.
    pub fn new(entropy: Arc<dyn Entropy>) -> Self {
        DriverEnv {
            entropy,
            tls: None,
            read_file: None,
        }
    }

    /// Adds TLS support: the rustls crypto provider, and a loader of the OS's root
    /// certificates (trusted when no `ssl_cafile` is configured).
    #[must_use]
    pub fn with_tls(mut self, crypto: Arc<CryptoProvider>, system_roots: RootsLoader) -> Self {
        self.tls = Some((crypto, system_roots));
        self
    }

    /// Adds reading of the certificate and key files a configuration names.
    #[must_use]
    pub fn with_file_reader(mut self, read_file: FileReader) -> Self {
        self.read_file = Some(read_file);
        self
    }

    /// The entropy source.
    pub fn entropy(&self) -> &Arc<dyn Entropy> {
        &self.entropy
    }
}

/// Why a client could not be set up from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// A `bootstrap_servers` entry is not `host:port`.
    #[error("bootstrap_servers: '{0}' is not host:port")]
    Bootstrap(String),
    /// TLS could not be configured (unreadable or invalid certificate or key files, ...).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// SASL is enabled but its credentials are missing.
    #[error("SASL setup failed: {0}")]
    Sasl(String),
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

fn host_port(entry: &str) -> Option<(String, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

impl NetOptions {
    /// The network options a configuration describes.
    pub fn from_config(config: &CommonConfig, env: &DriverEnv) -> Result<NetOptions, SetupError> {
        config.validate()?;
        let bootstrap = config
            .bootstrap_servers
            .iter()
            .map(|s| host_port(s).ok_or_else(|| SetupError::Bootstrap(s.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut opts = NetOptions::new(bootstrap);
        let ms = |v: u64| Duration::from_millis(v);
        opts.conn.client_id = Some(config.client_id.clone());
        opts.conn.request_timeout = ms(config.request_timeout_ms as u64);
        opts.conn.setup_timeout = ms(config.socket_connection_setup_timeout_ms);
        opts.conn.max_in_flight = config.max_in_flight_requests_per_connection.max(1) as usize;
        opts.conn.max_frame = config.max_response_size as usize;
        opts.bootstrap_fail_fast = config.bootstrap_fail_fast;
        // A pin replaces what cannot be asked: brokers before 0.10 have no ApiVersions, so a
        // pinned old release skips probing and uses that release's table. From 0.10 on the
        // broker's own ApiVersions answer is asked (a fixed table could name versions a
        // newer broker dropped, as 4.0 did) and capped to the pinned release, so the client
        // speaks as to that release (kafka-python's behaviour with `api_version`).
        opts.conn.pinned_versions = config
            .api_version
            .filter(|v| *v < crate::config::BrokerVersion::new(0, 10, 0))
            .and_then(ApiVersionTable::for_release)
            .map(Arc::new);
        opts.conn.pinned_release = config
            .api_version
            .filter(|v| *v >= crate::config::BrokerVersion::new(0, 10, 0));
        opts.reconnect_backoff = ms(config.reconnect_backoff_ms);
        opts.reconnect_backoff_max = ms(config.reconnect_backoff_max_ms);
        opts.retry_backoff = ms(config.retry_backoff_ms);
        opts.metadata_max_age = ms(config.metadata_max_age_ms);
        opts.connections_max_idle = ms(config.connections_max_idle_ms);
        opts.seed = config.random_seed.unwrap_or_else(|| {
            let mut seed = [0u8; 8];
            env.entropy.fill(&mut seed);
            u64::from_le_bytes(seed)
        });
        opts.entropy = Some(env.entropy.clone());
        if config.security_protocol.uses_tls() {
            let Some((crypto, system_roots)) = &env.tls else {
                return Err(SetupError::Tls(format!(
                    "security_protocol {} needs a TLS crypto provider: build the DriverEnv \
                     with_tls (every kafkit driver does)",
                    config.security_protocol.as_str()
                )));
            };
            let read = |what: &str, path: &Option<std::path::PathBuf>| {
                path.as_ref()
                    .map(|p| {
                        let read_file = env.read_file.ok_or_else(|| {
                            SetupError::Tls(format!(
                                "{what} {} cannot be read: the DriverEnv has no file reader \
                                 (with_file_reader)",
                                p.display()
                            ))
                        })?;
                        read_file(p)
                            .map_err(|e| SetupError::Tls(format!("{what} {}: {e}", p.display())))
                    })
                    .transpose()
            };
            let tls = TlsOptions {
                ca_pem: read("ssl_cafile", &config.ssl_cafile)?,
                system_roots: system_roots(),
                client_cert_pem: read("ssl_certfile", &config.ssl_certfile)?,
                client_key_pem: read("ssl_keyfile", &config.ssl_keyfile)?,
                check_hostname: config.ssl_check_hostname,
            };
            opts.tls = Some(client_config(crypto.clone(), &tls).map_err(SetupError::Tls)?);
        }
        if config.security_protocol.uses_sasl() {
            opts.sasl = Some(Arc::new(sasl_config(config)?));
        }
        Ok(opts)
    }
}

fn sasl_config(config: &CommonConfig) -> Result<SaslConfig, SetupError> {
    let credentials = || {
        let user = config.sasl_plain_username.clone().ok_or_else(|| {
            SetupError::Sasl(format!(
                "{} needs sasl_plain_username and sasl_plain_password",
                config.sasl_mechanism.as_str()
            ))
        })?;
        let password = config
            .sasl_plain_password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .ok_or_else(|| SetupError::Sasl("sasl_plain_password is not set".into()))?;
        Ok::<_, SetupError>((user, password))
    };
    Ok(match config.sasl_mechanism {
        SaslMechanism::Plain => {
            let (user, password) = credentials()?;
            SaslConfig::plain(user, password)
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let (user, password) = credentials()?;
            let mechanism = if config.sasl_mechanism == SaslMechanism::ScramSha256 {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            SaslConfig::scram(mechanism, user, password)
        }
        SaslMechanism::OAuthBearer => {
            let token = config.sasl_oauth_token.as_ref().ok_or_else(|| {
                SetupError::Sasl("OAUTHBEARER needs sasl_oauth_token (or a token provider)".into())
            })?;
            SaslConfig::oauthbearer(Arc::new(StaticTokenProvider(OAuthBearerToken::new(
                token.expose().to_owned(),
            ))))
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(SetupError::Sasl(format!(
                "mechanism {} is not supported",
                other.as_str()
            )))
        }
    })
}

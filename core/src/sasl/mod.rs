//! SASL authentication as pure state machines: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
//! OAUTHBEARER, client side, plus server-side verifiers for PLAIN and SCRAM (used by the
//! simulated development broker).
//!
//! Nothing here performs I/O, reads a clock or draws randomness: the SCRAM nonces are passed in
//! by the caller (drawn from the client's seeded generator), OAUTHBEARER tokens are fetched by
//! the user or driver and handed in as values.
//!
//! # Driving a client authenticator
//! The network layer first negotiates the mechanism with `SaslHandshake` (the name is
//! [`SaslMechanism::as_str`]), then runs this loop over `SaslAuthenticate` requests:
//!
//! ```text
//! let mut auth = config.authenticator(&entropy)?;      // or PlainClient::new(..) etc.
//! let mut bytes = auth.start()?;                       // initial client message
//! loop {
//!     send SaslAuthenticate { auth_bytes: bytes };
//!     receive response;
//!     if response.error_code != 0 { fail with response.error_message }  // server rejected
//!     match auth.handle_challenge(&response.auth_bytes)? {
//!         SaslStep::Continue(next) => bytes = next,
//!         SaslStep::Complete { final_message: None } => break,        // authenticated
//!         SaslStep::Complete { final_message: Some(m) } => { send m; break }
//!         SaslStep::Abort { final_message, error } => {
//!             send final_message; ignore the (error) response; fail with error
//!         }
//!     }
//! }
//! ```
//!
//! Every successful response's `auth_bytes` is fed to [`SaslAuthenticator::handle_challenge`],
//! even when empty: the PLAIN and OAUTHBEARER exchanges complete on the server's empty reply.
//! The exact message sequence of each mechanism is documented on its client type:
//! [`PlainClient`], [`ScramClient`], [`OAuthBearerClient`].
//!
//! An `Err` from any method is final: the authenticator stays failed and the connection must
//! be closed. Secrets are held in [`Secret`], whose `Debug` prints `[redacted]`.
//!
//! # Example: a SCRAM-SHA-256 client against the server-side verifier
//! ```
//! use kafkit_core::sasl::{
//!     SaslAuthenticator, SaslConfig, SaslStep, ScramCredential, ScramMechanism, ScramServer,
//! };
//!
//! // Broker side: a stored credential and a server state machine.
//! let credential =
//!     ScramCredential::from_password(ScramMechanism::Sha256, "pencil", b"salt-from-rng", 4096)?;
//! let mut server = ScramServer::new(ScramMechanism::Sha256);
//!
//! // Client side: nonce entropy comes from the client's seeded generator.
//! let config = SaslConfig::scram(ScramMechanism::Sha256, "user", "pencil");
//! let mut client = config.authenticator(&[0x5a; 24])?;
//!
//! let client_first = client.start()?;
//! let server_first = server.handle_client_first(&client_first, "srv-nonce", |first| {
//!     (first.username() == "user").then(|| credential.clone())
//! })?;
//! let SaslStep::Continue(client_final) = client.handle_challenge(&server_first)? else {
//!     unreachable!("SCRAM always sends client-final")
//! };
//! let server_final = server.handle_client_final(&client_final)?;
//! let step = client.handle_challenge(&server_final)?;
//! assert_eq!(step, SaslStep::Complete { final_message: None });
//! assert!(client.is_complete());
//! assert_eq!(server.authenticated_user(), Some("user"));
//! # Ok::<(), kafkit_core::sasl::SaslError>(())
//! ```

mod error;
mod oauthbearer;
mod plain;
mod scram;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;

pub use error::SaslError;
pub use oauthbearer::{
    OAuthBearerClient, OAuthBearerInitialResponse, OAuthBearerToken, StaticTokenProvider,
    TokenProvider,
};
pub use plain::{verify_plain, PlainClient, PlainMessage};
pub use scram::{
    ScramClient, ScramClientFirst, ScramCredential, ScramHash, ScramMechanism, ScramServer,
    SCRAM_DEFAULT_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS,
};

/// Passwords and tokens are the configuration's [`Secret`](crate::config::Secret): redacted in
/// `Debug`, no `Display`, zeroed when dropped.
pub use crate::config::Secret;

/// A SASL mechanism kafkit supports, named as Kafka names it (`sasl.mechanism`,
/// `SaslHandshake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): user name and password in clear; use only over TLS.
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512` (RFC 5802 with SHA-512).
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628 as Kafka uses it: KIP-255, KIP-342).
    OAuthBearer,
}

impl SaslMechanism {
    /// Every supported mechanism, in the order of [`SaslMechanism::as_str`]'s documentation.
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ];

    /// The Kafka name: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SaslMechanism {
    type Err = SaslError;

    /// Parses a Kafka mechanism name. Matching is exact (Kafka's names are upper case), so
    /// `"scram-sha-256"` is rejected with [`SaslError::UnknownMechanism`], whose message lists
    /// the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SaslMechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| SaslError::UnknownMechanism { name: s.to_owned() })
    }
}

/// What the driver must do after a server message was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SaslStep {
    /// Send these bytes as the next `SaslAuthenticate` request and feed the response's
    /// `auth_bytes` to [`SaslAuthenticator::handle_challenge`].
    Continue(Vec<u8>),
    /// Authentication succeeded. When `final_message` is `Some`, send it as one more
    /// `SaslAuthenticate` request (its response carries no further challenge). None of the
    /// mechanisms here produces a final message today; the field exists so that the driver
    /// handles every mechanism the same way.
    Complete {
        /// A last message for the server, if the mechanism has one.
        final_message: Option<Vec<u8>>,
    },
    /// The server rejected the client in-band. Send `final_message` (the protocol requires
    /// it, e.g. OAUTHBEARER answers a JSON error with `\x01`), expect the server to answer with
    /// an error response, then fail the connection with `error`.
    Abort {
        /// The message that politely ends the exchange.
        final_message: Vec<u8>,
        /// The failure to report, carrying the server's text.
        error: SaslError,
    },
}

/// A client-side SASL state machine, one per connection attempt. Object safe, so a
/// connection can hold a `Box<dyn SaslAuthenticator>`; [`SaslClient`] is the enum equivalent.
///
/// Contract: call [`start`](SaslAuthenticator::start) exactly once, then
/// [`handle_challenge`](SaslAuthenticator::handle_challenge) with the `auth_bytes` of every
/// successful `SaslAuthenticate` response until it returns [`SaslStep::Complete`] or
/// [`SaslStep::Abort`], or an `Err`. Calls out of that order return
/// [`SaslError::InvalidState`]; after an `Err` or `Abort` the machine stays failed.
pub trait SaslAuthenticator: fmt::Debug + Send {
    /// The mechanism name to send in `SaslHandshake` (e.g. `SCRAM-SHA-256`).
    fn mechanism_name(&self) -> &'static str;

    /// The initial client message. Callable once.
    fn start(&mut self) -> Result<Vec<u8>, SaslError>;

    /// Handles one server message (a successful `SaslAuthenticate` response's `auth_bytes`,
    /// possibly empty) and says what to do next.
    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError>;

    /// Whether the exchange ended successfully (the server is authenticated to the client
    /// where the mechanism allows it, and the server accepted the client).
    fn is_complete(&self) -> bool;
}

impl<T: SaslAuthenticator + ?Sized> SaslAuthenticator for Box<T> {
    fn mechanism_name(&self) -> &'static str {
        (**self).mechanism_name()
    }
    fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        (**self).start()
    }
    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError> {
        (**self).handle_challenge(server_msg)
    }
    fn is_complete(&self) -> bool {
        (**self).is_complete()
    }
}

/// Any of the client authenticators, as an enum (no allocation, no dynamic dispatch).
#[derive(Debug)]
pub enum SaslClient {
    /// PLAIN.
    Plain(PlainClient),
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramClient),
    /// OAUTHBEARER.
    OAuthBearer(OAuthBearerClient),
}

impl SaslAuthenticator for SaslClient {
    fn mechanism_name(&self) -> &'static str {
        match self {
            SaslClient::Plain(c) => c.mechanism_name(),
            SaslClient::Scram(c) => c.mechanism_name(),
            SaslClient::OAuthBearer(c) => c.mechanism_name(),
        }
    }
    fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        match self {
            SaslClient::Plain(c) => c.start(),
            SaslClient::Scram(c) => c.start(),
            SaslClient::OAuthBearer(c) => c.start(),
        }
    }
    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError> {
        match self {
            SaslClient::Plain(c) => c.handle_challenge(server_msg),
            SaslClient::Scram(c) => c.handle_challenge(server_msg),
            SaslClient::OAuthBearer(c) => c.handle_challenge(server_msg),
        }
    }
    fn is_complete(&self) -> bool {
        match self {
            SaslClient::Plain(c) => c.is_complete(),
            SaslClient::Scram(c) => c.is_complete(),
            SaslClient::OAuthBearer(c) => c.is_complete(),
        }
    }
}

/// How many random bytes [`SaslConfig::authenticator`] should be given for a SCRAM client
/// nonce (24 bytes, 32 base64 characters, as many as Kafka's Java client uses in effect).
pub const SCRAM_NONCE_ENTROPY_LEN: usize = 24;

/// The smallest amount of nonce entropy [`SaslConfig::authenticator`] accepts for SCRAM.
pub const SCRAM_MIN_NONCE_ENTROPY_LEN: usize = 16;

/// Client SASL configuration: which mechanism and which credentials. Cloneable and cheap to
/// keep in a client config; its `Debug` shows no password or token.
#[derive(Clone)]
pub enum SaslConfig {
    /// PLAIN with a user name and password.
    Plain {
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret,
    },
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram {
        /// Which hash.
        mechanism: ScramMechanism,
        /// The user name, or the token id when `token_auth` is set.
        username: String,
        /// The password, or the token HMAC when `token_auth` is set.
        password: Secret,
        /// Authenticate with a Kafka delegation token: sends the `tokenauth=true` extension.
        token_auth: bool,
    },
    /// OAUTHBEARER with a user-supplied token source.
    OAuthBearer {
        /// Where tokens come from; see [`TokenProvider`] for the non-blocking contract.
        provider: Arc<dyn TokenProvider>,
    },
}

impl SaslConfig {
    /// PLAIN credentials.
    pub fn plain(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        SaslConfig::Plain {
            username: username.into(),
            password: password.into(),
        }
    }

    /// SCRAM credentials for a user.
    pub fn scram(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        SaslConfig::Scram {
            mechanism,
            username: username.into(),
            password: password.into(),
            token_auth: false,
        }
    }

    /// SCRAM credentials from a Kafka delegation token: the token id as user name, the token
    /// HMAC (base64, as Kafka prints it) as password, and the `tokenauth=true` extension.
    pub fn scram_delegation_token(
        mechanism: ScramMechanism,
        token_id: impl Into<String>,
        token_hmac: impl Into<Secret>,
    ) -> Self {
        SaslConfig::Scram {
            mechanism,
            username: token_id.into(),
            password: token_hmac.into(),
            token_auth: true,
        }
    }

    /// OAUTHBEARER with the given token provider.
    pub fn oauthbearer(provider: Arc<dyn TokenProvider>) -> Self {
        SaslConfig::OAuthBearer { provider }
    }

    /// The configured mechanism.
    pub fn mechanism(&self) -> SaslMechanism {
        match self {
            SaslConfig::Plain { .. } => SaslMechanism::Plain,
            SaslConfig::Scram { mechanism, .. } => mechanism.sasl_mechanism(),
            SaslConfig::OAuthBearer { .. } => SaslMechanism::OAuthBearer,
        }
    }

    /// A fresh authenticator for one connection attempt.
    ///
    /// `nonce_entropy` is used by SCRAM only (ignored otherwise): random bytes drawn by the
    /// caller from its seeded generator, at least [`SCRAM_MIN_NONCE_ENTROPY_LEN`] bytes
    /// ([`SCRAM_NONCE_ENTROPY_LEN`] recommended), base64-encoded into the client nonce. Use
    /// fresh bytes for every attempt. For OAUTHBEARER this calls
    /// [`TokenProvider::token`] once, which by contract returns without blocking.
    pub fn authenticator(&self, nonce_entropy: &[u8]) -> Result<SaslClient, SaslError> {
        match self {
            SaslConfig::Plain { username, password } => Ok(SaslClient::Plain(PlainClient::new(
                username.clone(),
                password.clone(),
            )?)),
            SaslConfig::Scram {
                mechanism,
                username,
                password,
                token_auth,
            } => {
                if nonce_entropy.len() < SCRAM_MIN_NONCE_ENTROPY_LEN {
                    return Err(SaslError::InvalidNonce(
                        "fewer than SCRAM_MIN_NONCE_ENTROPY_LEN random bytes for the nonce",
                    ));
                }
                let nonce = base64::engine::general_purpose::STANDARD.encode(nonce_entropy);
                let client =
                    ScramClient::new(*mechanism, username.clone(), password.clone(), nonce)?
                        .with_token_auth(*token_auth);
                Ok(SaslClient::Scram(client))
            }
            SaslConfig::OAuthBearer { provider } => Ok(SaslClient::OAuthBearer(
                OAuthBearerClient::new(provider.token()?)?,
            )),
        }
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslConfig::Plain { username, password } => f
                .debug_struct("Plain")
                .field("username", username)
                .field("password", password)
                .finish(),
            SaslConfig::Scram {
                mechanism,
                username,
                password,
                token_auth,
            } => f
                .debug_struct("Scram")
                .field("mechanism", mechanism)
                .field("username", username)
                .field("password", password)
                .field("token_auth", token_auth)
                .finish(),
            SaslConfig::OAuthBearer { .. } => f
                .debug_struct("OAuthBearer")
                .field("provider", &format_args!("<dyn TokenProvider>"))
                .finish(),
        }
    }
}

/// Constant-time equality of two byte strings of equal length (the length itself is not
/// secret: it is the digest size). Returns `false` when the lengths differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests;

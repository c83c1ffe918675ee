//! OAUTHBEARER (RFC 7628) as Kafka uses it (KIP-255, SASL extensions from KIP-342).

use std::collections::BTreeMap;

use super::error::peer_text;
use super::{SaslAuthenticator, SaslError, SaslStep, Secret};

const MECHANISM: &str = "OAUTHBEARER";
const CLIENT_MESSAGE: &str = "OAUTHBEARER client";
/// RFC 7628 `kvsep`.
const KVSEP: char = '\x01';

/// An OAuth 2 bearer token and the SASL extensions to send with it.
///
/// `Debug` shows the extensions but not the token.
#[derive(Debug, Clone)]
pub struct OAuthBearerToken {
    value: Secret,
    extensions: BTreeMap<String, String>,
}

impl OAuthBearerToken {
    /// A token (typically a JWT) with no extensions.
    pub fn new(value: impl Into<Secret>) -> Self {
        OAuthBearerToken {
            value: value.into(),
            extensions: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a SASL extension, e.g. Confluent Cloud's `logicalCluster`. Keys must
    /// be ASCII letters other than `auth`, values printable ASCII, space, tab, CR or LF;
    /// [`OAuthBearerClient::new`] rejects anything else.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// The token value.
    pub fn value(&self) -> &Secret {
        &self.value
    }

    /// The extensions, sorted by key (the order they are sent in).
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }
}

/// Source of OAUTHBEARER tokens, implemented by the user.
///
/// Contract: [`token`](TokenProvider::token) is called by the driver (through
/// [`super::SaslConfig::authenticator`]) each time a connection authenticates, from the
/// thread that runs the client's state machines, so it must return promptly without I/O:
/// return the current cached token, and refresh it elsewhere (a background task of the
/// application or the driver) well before it expires. The core never calls it on its own.
pub trait TokenProvider: Send + Sync {
    /// The token to authenticate with now, or [`SaslError::TokenUnavailable`].
    fn token(&self) -> Result<OAuthBearerToken, SaslError>;
}

/// A [`TokenProvider`] that always returns the same token (tests, unsecured development
/// brokers, short-lived programs).
#[derive(Debug, Clone)]
pub struct StaticTokenProvider(pub OAuthBearerToken);

impl TokenProvider for StaticTokenProvider {
    fn token(&self) -> Result<OAuthBearerToken, SaslError> {
        Ok(self.0.clone())
    }
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// KIP-342 extension key: `[A-Za-z]+`, and not the reserved `auth`.
fn is_extension_key(key: &str) -> bool {
    !key.is_empty() && key != "auth" && key.bytes().all(|b| b.is_ascii_alphabetic())
}

/// KIP-342 extension value: `[\x21-\x7E \t\r\n]+`.
fn is_extension_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// The OAUTHBEARER client initial response: `n,[a=authzid],\x01auth=Bearer <token>\x01`
/// followed by `key=value\x01` per extension and a final `\x01`.
///
/// The client builds it; the server side (development broker) parses it.
#[derive(Debug, Clone)]
pub struct OAuthBearerInitialResponse {
    /// The authorization identity (`a=`); Kafka's client never sends one.
    pub authzid: Option<String>,
    /// The bearer token.
    pub token: Secret,
    /// The SASL extensions.
    pub extensions: BTreeMap<String, String>,
}

impl OAuthBearerInitialResponse {
    fn validate(&self) -> Result<(), String> {
        if !is_b64token(self.token.expose()) {
            return Err("token is empty or not an RFC 6750 b64token".to_owned());
        }
        if let Some(authzid) = &self.authzid {
            if authzid.is_empty() || authzid.contains([',', KVSEP]) {
                return Err("authzid is empty or contains ',' or \\x01".to_owned());
            }
        }
        for (key, value) in &self.extensions {
            if !is_extension_key(key) {
                return Err(format!(
                    "extension key {:?} must be ASCII letters and not \"auth\"",
                    peer_text(key.as_bytes())
                ));
            }
            if !is_extension_value(value) {
                return Err(format!(
                    "value of extension {key:?} must be non-empty printable ASCII, space, tab, \
                     CR or LF"
                ));
            }
        }
        Ok(())
    }

    /// Encodes the message (valid input assumed; [`OAuthBearerClient::new`] validates).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("n,");
        if let Some(authzid) = &self.authzid {
            out.push_str("a=");
            out.push_str(authzid);
        }
        out.push(',');
        out.push(KVSEP);
        out.push_str("auth=Bearer ");
        out.push_str(self.token.expose());
        out.push(KVSEP);
        for (key, value) in &self.extensions {
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push(KVSEP);
        }
        out.push(KVSEP);
        out.into_bytes()
    }

    /// Parses a client initial response. Errors with [`SaslError::Malformed`] when the gs2
    /// header, separators, `auth=Bearer <token>` pair or an extension is missing or invalid,
    /// or a key repeats.
    pub fn parse(message: &[u8]) -> Result<Self, SaslError> {
        let bad = |reason: &str| SaslError::malformed(CLIENT_MESSAGE, reason);
        let text = std::str::from_utf8(message).map_err(|_| bad("not valid UTF-8"))?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or_else(|| bad("missing gs2 header"))?;
        if flag != "n" && flag != "y" {
            return Err(bad("gs2 header must start with n or y"));
        }
        let (authzid, rest) = rest
            .split_once(',')
            .ok_or_else(|| bad("truncated gs2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .ok_or_else(|| bad("authzid must start with a="))?
                    .to_owned(),
            ),
        };
        let pairs = rest
            .strip_prefix(KVSEP)
            .and_then(|r| r.strip_suffix("\x01\x01"))
            .ok_or_else(|| bad("key/value pairs must be framed by \\x01 ... \\x01\\x01"))?;
        let mut token = None;
        let mut extensions = BTreeMap::new();
        for pair in pairs.split(KVSEP) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("pair is not of the form key=value"))?;
            if key == "auth" {
                if token.is_some() {
                    return Err(bad("auth given twice"));
                }
                let (scheme, value) = value
                    .split_once(' ')
                    .ok_or_else(|| bad("auth must be \"Bearer <token>\""))?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(bad("auth scheme is not Bearer"));
                }
                token = Some(Secret::new(value.trim_start_matches(' ')));
            } else if extensions
                .insert(key.to_owned(), value.to_owned())
                .is_some()
            {
                return Err(bad("extension given twice"));
            }
        }
        let parsed = OAuthBearerInitialResponse {
            authzid,
            token: token.ok_or_else(|| bad("missing auth=Bearer <token>"))?,
            extensions,
        };
        parsed
            .validate()
            .map_err(|reason| SaslError::malformed(CLIENT_MESSAGE, reason))?;
        Ok(parsed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Initial,
    Sent,
    Complete,
    Failed,
}

/// OAUTHBEARER client (RFC 7628, KIP-255, KIP-342).
///
/// Sequence:
/// 1. [`start`](SaslAuthenticator::start) returns
///    `n,,\x01auth=Bearer <token>\x01[key=value\x01]*\x01` (extensions sorted by key).
/// 2. On success the server answers with empty bytes:
///    [`handle_challenge`](SaslAuthenticator::handle_challenge) returns
///    `Complete { final_message: None }`.
///    On failure it answers with a JSON error (RFC 7628 section 3.2.2, e.g.
///    `{"status":"invalid_token"}`): `handle_challenge` returns
///    `Abort { final_message: b"\x01", error: AuthenticationFailed(<the JSON text>) }`; the
///    driver sends `\x01`, the broker replies with an error code, and the connection fails.
///
/// The token is taken as a value: obtaining it (possibly with I/O) is the user's job, see
/// [`TokenProvider`].
#[derive(Debug)]
pub struct OAuthBearerClient {
    response: OAuthBearerInitialResponse,
    state: State,
}

impl OAuthBearerClient {
    /// A client sending `token` and its extensions. Errors with
    /// [`SaslError::InvalidCredential`] when the token is not an RFC 6750 `b64token` (a JWT
    /// is) or an extension key or value is invalid.
    pub fn new(token: OAuthBearerToken) -> Result<Self, SaslError> {
        let response = OAuthBearerInitialResponse {
            authzid: None,
            token: token.value,
            extensions: token.extensions,
        };
        response.validate().map_err(SaslError::InvalidCredential)?;
        Ok(OAuthBearerClient {
            response,
            state: State::Initial,
        })
    }
}

impl SaslAuthenticator for OAuthBearerClient {
    fn mechanism_name(&self) -> &'static str {
        MECHANISM
    }

    fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        if self.state != State::Initial {
            self.state = State::Failed;
            return Err(SaslError::InvalidState("OAUTHBEARER start called twice"));
        }
        self.state = State::Sent;
        Ok(self.response.encode())
    }

    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError> {
        if self.state != State::Sent {
            self.state = State::Failed;
            return Err(SaslError::InvalidState(
                "OAUTHBEARER handle_challenge called before start or after the end",
            ));
        }
        if server_msg.is_empty() {
            self.state = State::Complete;
            return Ok(SaslStep::Complete {
                final_message: None,
            });
        }
        self.state = State::Failed;
        Ok(SaslStep::Abort {
            final_message: vec![KVSEP as u8],
            error: SaslError::AuthenticationFailed(peer_text(server_msg)),
        })
    }

    fn is_complete(&self) -> bool {
        self.state == State::Complete
    }
}

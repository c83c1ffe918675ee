//! The error type shared by every SASL mechanism.

use thiserror::Error;

/// Everything that can go wrong while authenticating with SASL, on the client or the server
/// side.
///
/// Messages never contain a password, a token or a derived key. They may contain user names,
/// mechanism names and text the peer sent (a SCRAM `e=` value, an OAUTHBEARER JSON error),
/// truncated to a bounded length.
///
/// Once a state machine has returned an error it stays failed: every later call returns
/// [`SaslError::InvalidState`] or the same error again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SaslError {
    /// A mechanism name that kafkit does not implement.
    #[error(
        "unknown SASL mechanism {name:?}; accepted values are PLAIN, SCRAM-SHA-256, \
         SCRAM-SHA-512 and OAUTHBEARER"
    )]
    UnknownMechanism {
        /// The name that was given.
        name: String,
    },

    /// A mechanism that exists but cannot be used where it was given (for example PLAIN
    /// where a SCRAM mechanism is required).
    #[error("SASL mechanism {mechanism} cannot be used here: {reason}")]
    UnsupportedMechanism {
        /// The mechanism's Kafka name.
        mechanism: String,
        /// Why it is not usable.
        reason: &'static str,
    },

    /// A message from the peer does not follow the mechanism's grammar (missing or
    /// out-of-order attribute, bad base64, invalid UTF-8, truncated, trailing data).
    #[error("malformed {message} message: {reason}")]
    Malformed {
        /// Which message was malformed, e.g. "SCRAM server-first".
        message: &'static str,
        /// What exactly was wrong.
        reason: String,
    },

    /// A SCRAM server-first message whose nonce does not start with (and extend) the nonce
    /// the client sent: the server is broken or an attacker is replaying an exchange.
    #[error("SCRAM server nonce does not extend the client nonce")]
    InvalidServerNonce,

    /// A nonce supplied by the caller (client nonce or server nonce suffix) is empty or
    /// contains characters outside printable ASCII or a comma.
    #[error("invalid SCRAM nonce: {0}")]
    InvalidNonce(&'static str),

    /// The iteration count a SCRAM server asked for is below Kafka's minimum or above the
    /// configured cap (a hostile server could otherwise make the client burn CPU).
    #[error("SCRAM iteration count {iterations} out of range (accepted {min}..={max})")]
    IterationCountOutOfRange {
        /// The count the server sent.
        iterations: u64,
        /// The smallest accepted count.
        min: u32,
        /// The largest accepted count.
        max: u32,
    },

    /// The SCRAM server-final `v=` signature does not match the one computed from the
    /// password: the server does not know the credential (it may be an impostor).
    #[error("SCRAM server signature mismatch: the server could not prove it knows the credential")]
    ServerSignatureMismatch,

    /// The SCRAM server ended the exchange with `e=<value>`.
    #[error("SCRAM server error: e={0}")]
    ServerError(String),

    /// The peer rejected the credentials (client side: the server's text, e.g. an OAUTHBEARER
    /// JSON error; server side: a wrong password, unknown user or bad proof).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),

    /// A credential given to a constructor cannot be encoded by the mechanism (empty user
    /// name, NUL in a PLAIN field, a token or extension outside the allowed characters).
    #[error("invalid SASL credential: {0}")]
    InvalidCredential(String),

    /// The token provider could not supply an OAUTHBEARER token.
    #[error("OAUTHBEARER token unavailable: {0}")]
    TokenUnavailable(String),

    /// A state machine was called out of order (e.g. `handle_challenge` before `start`, or
    /// after completion or failure).
    #[error("SASL state machine called in the wrong state: {0}")]
    InvalidState(&'static str),
}

impl SaslError {
    /// Builds a [`SaslError::Malformed`].
    pub(crate) fn malformed(message: &'static str, reason: impl Into<String>) -> Self {
        SaslError::Malformed {
            message,
            reason: reason.into(),
        }
    }
}

/// Longest peer-supplied text kept in an error message.
pub(crate) const MAX_PEER_TEXT: usize = 1024;

/// Turns peer-supplied bytes into text for an error message: lossy UTF-8, control characters
/// escaped, cut at [`MAX_PEER_TEXT`] characters.
pub(crate) fn peer_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_PEER_TEXT {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

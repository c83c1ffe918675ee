//! Errors of the network layer. Every error that ends a request names the broker it concerns.

use std::time::Duration;

use crate::codec::{DecodeError, EncodeError};
use crate::protocol::{ApiKey, ErrorCode};

/// Why a request did not get a response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Nothing answered within the deadline.
    #[error("request timed out after {}ms waiting for {broker}{}", after.as_millis(), detail_suffix(.detail))]
    Timeout {
        /// The broker (host:port, node id) or brokers waited on.
        broker: String,
        /// How long the request waited.
        after: Duration,
        /// The last connection error seen, if any.
        detail: Option<String>,
    },
    /// The connection closed with the request in flight.
    #[error("connection to {broker} lost: {reason}")]
    Disconnected {
        /// The broker.
        broker: String,
        /// Why it closed.
        reason: String,
    },
    /// No version of the API is supported by both sides.
    #[error("{api} is unsupported by this broker ({broker}): {detail}")]
    Unsupported {
        /// The API.
        api: ApiKey,
        /// The broker.
        broker: String,
        /// The ranges that failed to meet.
        detail: String,
    },
    /// The request could not be encoded at the negotiated version.
    #[error("cannot encode request for {broker}: {error}")]
    Encode {
        /// The broker.
        broker: String,
        /// The encoder's error.
        error: EncodeError,
    },
    /// The broker's response could not be decoded; the connection was closed.
    #[error("malformed response from {broker}: {error}")]
    Decode {
        /// The broker.
        broker: String,
        /// The decoder's error.
        error: DecodeError,
    },
    /// SASL authentication failed; the failure sticks for this connection attempt.
    #[error("authentication with {broker} failed: {detail}")]
    Authentication {
        /// The broker.
        broker: String,
        /// What failed (the server's message where it sent one).
        detail: String,
    },
    /// TLS failed: handshake, certificate chain, or host name. Retrying will not help until
    /// the configuration or the broker's certificate changes.
    #[error("TLS with {broker} failed: {detail}")]
    Tls {
        /// The broker.
        broker: String,
        /// What rustls or the socket said.
        detail: String,
    },
    /// What answered is not a Kafka broker speaking the configured protocol: a TLS listener
    /// answering a plaintext client, or an HTTP server. Retrying will not help until the
    /// address or `security_protocol` changes.
    #[error("{broker} is not a Kafka {expected} listener: {detail}")]
    NotKafka {
        /// The broker.
        broker: String,
        /// What was expected (`PLAINTEXT`).
        expected: String,
        /// What it looks like and what to set.
        detail: String,
    },
    /// No bootstrap address could be used in a round (`bootstrap_fail_fast`): each was
    /// refused, unresolvable, not Kafka, or did not connect within the setup timeout.
    #[error("no bootstrap broker could be reached: {}", .causes.join("; "))]
    NoBroker {
        /// Each address's cause, naming the address.
        causes: Vec<String>,
    },
    /// The broker answered a request with an error code that ends it.
    #[error("{broker} answered {api} with {code}{}", detail_suffix(.message))]
    Broker {
        /// The broker.
        broker: String,
        /// The API.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The error message the broker sent, if any.
        message: Option<String>,
    },
    /// The topic or partition does not exist (per the latest metadata).
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

impl NetError {
    /// A short class of this error for span attributes (OpenTelemetry's `error.type`): the
    /// broker's error code name for [`NetError::Broker`], else the variant in snake case.
    pub fn kind(&self) -> &'static str {
        match self {
            NetError::Timeout { .. } => "timeout",
            NetError::Disconnected { .. } => "disconnected",
            NetError::Unsupported { .. } => "unsupported_version",
            NetError::Encode { .. } => "encode",
            NetError::Decode { .. } => "decode",
            NetError::Authentication { .. } => "authentication",
            NetError::Tls { .. } => "tls",
            NetError::NotKafka { .. } => "not_kafka",
            NetError::NoBroker { .. } => "no_broker",
            NetError::Broker { code, .. } => code.name(),
            NetError::UnknownTopicOrPartition(_) => "UNKNOWN_TOPIC_OR_PARTITION",
            NetError::Closed => "closed",
        }
    }
}

fn detail_suffix(d: &Option<String>) -> String {
    match d {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

/// Why a driver reports a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The TCP connection could not be established (refused, unreachable, DNS failure).
    ConnectFailed(String),
    /// TLS failed (handshake, certificate, hostname).
    Tls(String),
    /// The peer closed the connection.
    PeerClosed,
    /// A read or write failed.
    Io(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::Tls(e) => write!(f, "TLS error: {e}"),
            CloseReason::PeerClosed => f.write_str("closed by the broker"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

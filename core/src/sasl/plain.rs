//! PLAIN (RFC 4616): the client sends `authzid NUL authcid NUL passwd` once.

use super::{constant_time_eq, SaslAuthenticator, SaslError, SaslStep, Secret};

const MECHANISM: &str = "PLAIN";
const MESSAGE: &str = "PLAIN client";

/// A decoded PLAIN message: `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2).
///
/// `Debug` shows the identities but not the password.
#[derive(Debug, Clone)]
pub struct PlainMessage {
    /// The authorization identity; empty means "the same as `username`".
    pub authzid: String,
    /// The authentication identity (user name); never empty.
    pub username: String,
    /// The password; never empty.
    pub password: Secret,
}

impl PlainMessage {
    /// Checks the RFC 4616 constraints: no NUL anywhere, non-empty user name and password.
    fn validate(&self) -> Result<(), &'static str> {
        if self.username.is_empty() {
            return Err("empty user name");
        }
        if self.password.is_empty() {
            return Err("empty password");
        }
        if self.authzid.contains('\0')
            || self.username.contains('\0')
            || self.password.expose().contains('\0')
        {
            return Err("NUL character in a PLAIN field");
        }
        Ok(())
    }

    /// Encodes the message: `authzid NUL username NUL password`, UTF-8.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.authzid.len() + self.username.len() + self.password.expose().len() + 2,
        );
        out.extend_from_slice(self.authzid.as_bytes());
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.expose().as_bytes());
        out
    }

    /// Parses a client message. Errors with [`SaslError::Malformed`] unless the message has
    /// exactly two NULs, is UTF-8 and has a non-empty user name and password.
    pub fn parse(message: &[u8]) -> Result<Self, SaslError> {
        let text = std::str::from_utf8(message)
            .map_err(|_| SaslError::malformed(MESSAGE, "not valid UTF-8"))?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(username), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::malformed(
                MESSAGE,
                "expected exactly two NUL separators",
            ));
        };
        let parsed = PlainMessage {
            authzid: authzid.to_owned(),
            username: username.to_owned(),
            password: Secret::new(password),
        };
        parsed
            .validate()
            .map_err(|reason| SaslError::malformed(MESSAGE, reason))?;
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

/// PLAIN client (RFC 4616).
///
/// Sequence:
/// 1. [`start`](SaslAuthenticator::start) returns `authzid NUL username NUL password`
///    (authzid empty unless set with [`PlainClient::with_authzid`]).
/// 2. The server answers with an empty success response (or an error code, which the driver
///    handles without calling this machine). Feed the (empty) `auth_bytes` to
///    [`handle_challenge`](SaslAuthenticator::handle_challenge): it returns
///    `Complete { final_message: None }`. Non-empty bytes are a protocol error.
///
/// PLAIN sends the password in clear: use it over TLS only.
#[derive(Debug)]
pub struct PlainClient {
    message: PlainMessage,
    state: State,
}

impl PlainClient {
    /// A client authenticating as `username` (no separate authorization identity).
    ///
    /// Errors with [`SaslError::InvalidCredential`] when the user name or password is empty or
    /// either contains a NUL.
    pub fn new(
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, SaslError> {
        Self::with_authzid("", username, password)
    }

    /// A client authenticating as `username` and asking to act as `authzid` (Kafka's
    /// broker rejects an authzid different from the user name).
    pub fn with_authzid(
        authzid: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, SaslError> {
        let message = PlainMessage {
            authzid: authzid.into(),
            username: username.into(),
            password: password.into(),
        };
        message
            .validate()
            .map_err(|reason| SaslError::InvalidCredential(reason.to_owned()))?;
        Ok(PlainClient {
            message,
            state: State::Initial,
        })
    }
}

impl SaslAuthenticator for PlainClient {
    fn mechanism_name(&self) -> &'static str {
        MECHANISM
    }

    fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        if self.state != State::Initial {
            return Err(SaslError::InvalidState("PLAIN start called twice"));
        }
        self.state = State::Sent;
        Ok(self.message.encode())
    }

    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError> {
        if self.state != State::Sent {
            self.state = State::Failed;
            return Err(SaslError::InvalidState(
                "PLAIN handle_challenge called before start or after the end",
            ));
        }
        if !server_msg.is_empty() {
            self.state = State::Failed;
            return Err(SaslError::malformed(
                "PLAIN server",
                format!("expected an empty response, got {} bytes", server_msg.len()),
            ));
        }
        self.state = State::Complete;
        Ok(SaslStep::Complete {
            final_message: None,
        })
    }

    fn is_complete(&self) -> bool {
        self.state == State::Complete
    }
}

/// Server side of PLAIN: parses the client message, looks up the user's password with
/// `lookup` and compares it in constant time.
///
/// Returns the authenticated user name. Fails with [`SaslError::Malformed`] for a message
/// that is not RFC 4616 PLAIN, and with [`SaslError::AuthenticationFailed`] when the user is
/// unknown, the password differs, or an authzid other than the user name is requested (as
/// Kafka's broker does). The failure text does not say which of these happened.
pub fn verify_plain<'a, F>(message: &[u8], lookup: F) -> Result<String, SaslError>
where
    F: FnOnce(&str) -> Option<&'a Secret>,
{
    let parsed = PlainMessage::parse(message)?;
    if !parsed.authzid.is_empty() && parsed.authzid != parsed.username {
        return Err(SaslError::AuthenticationFailed(
            "authorization identity differs from the user name".to_owned(),
        ));
    }
    let known = lookup(&parsed.username);
    let ok = known.is_some_and(|expected| {
        constant_time_eq(
            expected.expose().as_bytes(),
            parsed.password.expose().as_bytes(),
        )
    });
    if ok {
        Ok(parsed.username)
    } else {
        Err(SaslError::AuthenticationFailed(
            "invalid user name or password".to_owned(),
        ))
    }
}

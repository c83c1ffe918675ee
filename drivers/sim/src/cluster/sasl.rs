//! SASL on the broker side: SaslHandshake, SaslAuthenticate, and the raw token exchange that
//! follows a v0 handshake. PLAIN and SCRAM-SHA-256/512 against the configured users.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::network::Rng;
use kafkit_core::protocol::{
    ErrorCode, ResponseBody, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafkit_core::sasl::{
    verify_plain, SaslError, ScramCredential, ScramMechanism, ScramServer, Secret,
};

use super::config::SaslUser;
use super::wire::raw_frame;
use super::{Cluster, ConnKey, Ctx, Outcome};

/// PBKDF2 iterations of the stored SCRAM credentials (Kafka's minimum, 4096).
const SCRAM_ITERATIONS: u32 = 4096;

/// The mechanism a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

/// Where a connection is in authentication.
#[derive(Debug)]
pub(super) enum SaslState {
    /// The listener has no SASL: every request is allowed.
    Disabled,
    /// Waiting for SaslHandshake.
    Start,
    /// Mechanism chosen; `legacy` (handshake v0) means raw tokens follow instead of
    /// SaslAuthenticate requests.
    Handshaken { mechanism: Mechanism, legacy: bool },
    /// SCRAM server-first sent.
    ScramFinal {
        server: Box<ScramServer>,
        legacy: bool,
    },
    /// Authenticated as this user.
    Authenticated(String),
    /// Authentication failed; the connection is closing.
    Failed,
}

impl SaslState {
    /// Whether requests other than the SASL ones are allowed.
    pub(super) fn is_authenticated(&self) -> bool {
        matches!(self, SaslState::Disabled | SaslState::Authenticated(_))
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake).
    pub(super) fn expects_raw_token(&self) -> bool {
        matches!(
            self,
            SaslState::Handshaken { legacy: true, .. } | SaslState::ScramFinal { legacy: true, .. }
        )
    }
}

/// The configured users: PLAIN passwords and SCRAM credentials.
pub(super) struct SaslUsers {
    enabled: bool,
    mechanisms: Vec<String>,
    plain: HashMap<String, Secret>,
    scram: HashMap<(ScramMechanism, String), ScramCredential>,
}

impl SaslUsers {
    /// Derives the credentials (salts drawn from `rng`). Users of unknown mechanisms are
    /// ignored with a warning.
    pub(super) fn new(users: &[SaslUser], rng: &mut Rng) -> Self {
        let mut mechanisms = BTreeSet::new();
        let mut plain = HashMap::new();
        let mut scram = HashMap::new();
        for u in users {
            if u.mechanism == "PLAIN" {
                plain.insert(u.user.clone(), Secret::new(u.password.clone()));
                mechanisms.insert(u.mechanism.clone());
                continue;
            }
            match u.mechanism.parse::<ScramMechanism>() {
                Ok(m) => {
                    let salt: Vec<u8> = (0..16).map(|_| rng.next_u64() as u8).collect();
                    match ScramCredential::from_password(m, &u.password, &salt, SCRAM_ITERATIONS) {
                        Ok(c) => {
                            scram.insert((m, u.user.clone()), c);
                            mechanisms.insert(u.mechanism.clone());
                        }
                        Err(e) => {
                            tracing::warn!(user = %u.user, error = %e, "cluster: bad SCRAM user")
                        }
                    }
                }
                Err(_) => {
                    tracing::warn!(mechanism = %u.mechanism, "cluster: unsupported SASL mechanism ignored")
                }
            }
        }
        SaslUsers {
            enabled: !users.is_empty(),
            mechanisms: mechanisms.into_iter().collect(),
            plain,
            scram,
        }
    }

    /// The state a new connection starts in.
    pub(super) fn initial_state(&self) -> SaslState {
        if self.enabled {
            SaslState::Start
        } else {
            SaslState::Disabled
        }
    }
}

/// The result of one token.
enum Step {
    /// Send this challenge (or final message); authentication continues or completed.
    Reply(Vec<u8>),
    /// Authentication failed with this message.
    Failed(String),
}

impl Cluster {
    /// The user connection `conn` of `broker` authenticated as, if SASL completed on it.
    pub fn authenticated_user(&self, broker: i32, conn: ConnKey) -> Option<&str> {
        match &self.conns.get(&(broker, conn))?.sasl {
            SaslState::Authenticated(user) => Some(user),
            _ => None,
        }
    }

    fn sasl_state(&mut self, key: (i32, ConnKey)) -> SaslState {
        self.conns.get_mut(&key).map_or(SaslState::Failed, |c| {
            std::mem::replace(&mut c.sasl, SaslState::Failed)
        })
    }

    fn set_sasl_state(&mut self, key: (i32, ConnKey), state: SaslState) {
        if let Some(c) = self.conns.get_mut(&key) {
            c.sasl = state;
        }
    }

    pub(super) fn handle_sasl_handshake(
        &mut self,
        ctx: &Ctx,
        req: SaslHandshakeRequest,
    ) -> Outcome {
        let key = (ctx.broker, ctx.conn);
        let state = self.sasl_state(key);
        let mechanisms = self.sasl_users.mechanisms.clone();
        let reply = |code: ErrorCode| {
            ResponseBody::SaslHandshake(SaslHandshakeResponse {
                error_code: code.code(),
                mechanisms: mechanisms.clone(),
                ..Default::default()
            })
        };
        match state {
            SaslState::Disabled => {
                self.set_sasl_state(key, SaslState::Disabled);
                Outcome::Reply(reply(ErrorCode::ILLEGAL_SASL_STATE))
            }
            SaslState::Start => {
                let mechanism = match req.mechanism.as_str() {
                    m if !self.sasl_users.mechanisms.iter().any(|x| x == m) => None,
                    "PLAIN" => Some(Mechanism::Plain),
                    m => m.parse::<ScramMechanism>().ok().map(Mechanism::Scram),
                };
                match mechanism {
                    Some(mechanism) => {
                        self.set_sasl_state(
                            key,
                            SaslState::Handshaken {
                                mechanism,
                                legacy: ctx.version == 0,
                            },
                        );
                        Outcome::Reply(reply(ErrorCode::NONE))
                    }
                    None => Outcome::ReplyThenClose(reply(ErrorCode::UNSUPPORTED_SASL_MECHANISM)),
                }
            }
            _ => Outcome::ReplyThenClose(reply(ErrorCode::ILLEGAL_SASL_STATE)),
        }
    }

    pub(super) fn handle_sasl_authenticate(
        &mut self,
        ctx: &Ctx,
        req: SaslAuthenticateRequest,
    ) -> Outcome {
        let key = (ctx.broker, ctx.conn);
        let state = self.sasl_state(key);
        let framed = matches!(
            state,
            SaslState::Handshaken { legacy: false, .. }
                | SaslState::ScramFinal { legacy: false, .. }
        );
        if !framed {
            if let SaslState::Disabled = state {
                self.set_sasl_state(key, SaslState::Disabled);
            }
            return Outcome::ReplyThenClose(ResponseBody::SaslAuthenticate(
                SaslAuthenticateResponse {
                    error_code: ErrorCode::ILLEGAL_SASL_STATE.code(),
                    error_message: Some("Unexpected SaslAuthenticate request".into()),
                    ..Default::default()
                },
            ));
        }
        match self.sasl_step(key, state, &req.auth_bytes) {
            Step::Reply(bytes) => {
                Outcome::Reply(ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                    error_code: ErrorCode::NONE.code(),
                    error_message: None,
                    auth_bytes: Bytes::from(bytes),
                    ..Default::default()
                }))
            }
            Step::Failed(msg) => {
                Outcome::ReplyThenClose(ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                    error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.code(),
                    error_message: Some(msg),
                    ..Default::default()
                }))
            }
        }
    }

    /// A raw token after a v0 handshake: the reply is a raw frame; failure closes.
    pub(super) fn sasl_raw_token(
        &mut self,
        key: (i32, ConnKey),
        token: &[u8],
        _now: Instant,
    ) -> Outcome {
        let state = self.sasl_state(key);
        match self.sasl_step(key, state, token) {
            Step::Reply(bytes) => Outcome::Raw(raw_frame(&bytes)),
            Step::Failed(msg) => Outcome::Close(format!("SASL authentication failed: {msg}")),
        }
    }

    /// Feeds one client token to the mechanism; sets the next state.
    fn sasl_step(&mut self, key: (i32, ConnKey), state: SaslState, token: &[u8]) -> Step {
        let failed = |e: SaslError, mech: &str| {
            tracing::debug!(error = %e, "cluster: SASL authentication failed");
            Step::Failed(format!(
                "Authentication failed during authentication due to invalid credentials with \
                 SASL mechanism {mech}"
            ))
        };
        match state {
            SaslState::Handshaken {
                mechanism: Mechanism::Plain,
                ..
            } => match verify_plain(token, |u| self.sasl_users.plain.get(u)) {
                Ok(user) => {
                    self.set_sasl_state(key, SaslState::Authenticated(user));
                    Step::Reply(Vec::new())
                }
                Err(_) => {
                    Step::Failed("Authentication failed: Invalid username or password".into())
                }
            },
            SaslState::Handshaken {
                mechanism: Mechanism::Scram(m),
                legacy,
            } => {
                let mut server = ScramServer::new(m);
                let nonce = self.rng.nonce(24);
                let creds = &self.sasl_users.scram;
                match server.handle_client_first(token, &nonce, |first| {
                    creds.get(&(m, first.username().to_owned())).cloned()
                }) {
                    Ok(reply) => {
                        self.set_sasl_state(
                            key,
                            SaslState::ScramFinal {
                                server: Box::new(server),
                                legacy,
                            },
                        );
                        Step::Reply(reply)
                    }
                    Err(e) => failed(e, m.as_str()),
                }
            }
            SaslState::ScramFinal { mut server, .. } => match server.handle_client_final(token) {
                Ok(reply) => {
                    let user = server.authenticated_user().unwrap_or_default().to_owned();
                    self.set_sasl_state(key, SaslState::Authenticated(user));
                    Step::Reply(reply)
                }
                Err(e) => failed(e, server.mechanism_name()),
            },
            other => {
                self.set_sasl_state(key, other);
                Step::Failed("Unexpected SASL token".into())
            }
        }
    }
}

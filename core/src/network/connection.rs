//! One broker connection: framing, correlation, in-flight limit, request timeouts, version
//! negotiation, legacy probing and SASL.
//!
//! A [`Connection`] never touches a socket. The [`super::NetworkClient`] that owns it feeds it
//! the driver's inputs and drains its outbound frames and [`ConnEvent`]s. Its life:
//!
//! ```text
//! Connecting --connected--> Negotiating (ApiVersions) --+--> Authenticating (SASL) --> Ready
//!            \                 (or Probing, for brokers   \-------------------------> Ready
//!             \                 older than 0.10)
//!              any error, timeout or close --> Closed (sticky: a closed connection is
//!                                              replaced, never revived)
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::NetError;
use super::frame::FrameDecoder;
use super::request_frame::encode_request;
use super::versions::{ApiVersionTable, BrokerVersion};
use super::{ConnId, NodeId, RequestId};
use crate::codec::Reader;
use crate::protocol::{
    self, ApiKey, ApiVersionsRequest, ApiVersionsResponse, ErrorCode, RequestBody, RequestHeader,
    ResponseBody, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use crate::sasl::{SaslAuthenticator, SaslClient, SaslStep};

/// Settings every connection of one client shares.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// `client_id` sent in every request header.
    pub client_id: Option<String>,
    /// How long a request may wait for its response once sent.
    pub request_timeout: Duration,
    /// How long a connection may take to connect, negotiate and authenticate.
    pub setup_timeout: Duration,
    /// Requests in flight per connection.
    pub max_in_flight: usize,
    /// The largest response frame accepted.
    pub max_frame: usize,
    /// Versions fixed by configuration (`api_version` before 0.10), skipping ApiVersions.
    pub pinned_versions: Option<Arc<ApiVersionTable>>,
    /// A release pinned by configuration at or above 0.10 (`api_version`): ApiVersions is
    /// asked, and its answer capped to what that release had
    /// ([`ApiVersionTable::capped_to_release`]).
    pub pinned_release: Option<super::versions::BrokerVersion>,
    /// Sent in ApiVersions v3+.
    pub software_name: String,
    /// Sent in ApiVersions v3+.
    pub software_version: String,
}

/// What a connection tells its owner.
#[derive(Debug)]
pub enum ConnEvent {
    /// Versions are known and authentication (if any) is done: requests may flow.
    Ready,
    /// A user request completed.
    Response {
        /// The request.
        id: RequestId,
        /// The negotiated version and decoded body, or why there is none.
        result: Result<(i16, ResponseBody), NetError>,
    },
    /// A legacy probe was answered: the broker is at least this release.
    ProbeAnswered(BrokerVersion),
    /// A request of the connection's setup (ApiVersions, SASL, a legacy probe) was written or
    /// answered: the owner counts it in its per-API request metrics, as Java does.
    Setup(SetupExchange),
    /// The connection is finished and must be closed; in-flight requests are failed by the
    /// owner with `error`.
    Fatal {
        /// What went wrong.
        error: NetError,
        /// The broker closed the connection on our ApiVersions request: it may predate 0.10.
        maybe_legacy: bool,
    },
}

/// One step of a setup exchange (see [`ConnEvent::Setup`]). Its failures need no event: the
/// owner finds the setup requests still in flight when it drops the connection
/// ([`Connection::setup_in_flight`]).
#[derive(Debug)]
pub enum SetupExchange {
    /// A setup request of this API was queued for writing.
    Sent(ApiKey),
    /// Its response was read.
    Answered {
        /// The request's API.
        api: ApiKey,
        /// When the request was queued.
        sent: Instant,
        /// The response's `throttle_time_ms`, for the APIs that carry one (ApiVersions v1+).
        throttle_time_ms: Option<i32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Negotiating,
    Probing,
    SaslHandshake,
    SaslAuthenticate,
    SaslLegacy,
    Ready,
    Closed,
}

#[derive(Debug)]
enum Purpose {
    ApiVersions,
    Probe(BrokerVersion),
    SaslHandshake,
    SaslAuthenticate,
    SaslLegacy,
    User(RequestId),
}

#[derive(Debug)]
struct InFlight {
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    /// When it was queued (for the latency of setup requests, measured here).
    sent: Instant,
    deadline: Instant,
    /// How long this request may wait (for the error message).
    timeout: Duration,
    purpose: Purpose,
}

/// How a connection begins once TCP (and TLS) is up.
#[derive(Debug, Clone)]
pub enum Opening {
    /// Ask ApiVersions (the normal case).
    Negotiate,
    /// Use these versions without asking (pinned, or learned by probing earlier).
    Known(Arc<ApiVersionTable>),
    /// Send this legacy probe and report whether it is answered.
    Probe(BrokerVersion, ApiKey),
}

/// One broker connection's protocol state. See the module docs.
pub struct Connection {
    /// This connection's id, as the driver knows it.
    pub id: ConnId,
    /// The broker's node id (negative for bootstrap addresses).
    pub node: NodeId,
    /// "host:port (node N)", for errors and logs.
    pub broker: String,
    state: State,
    opening: Opening,
    decoder: FrameDecoder,
    next_correlation_id: i32,
    in_flight: VecDeque<InFlight>,
    versions: Option<Arc<ApiVersionTable>>,
    transmit: VecDeque<Bytes>,
    settings: Arc<ConnSettings>,
    sasl: Option<SaslClient>,
    setup_deadline: Option<Instant>,
    /// When this connection last sent or received anything.
    pub last_used: Instant,
    /// The `connect` span, from the connection's creation until it is ready or fails (see
    /// [`super::spans`]); disabled once closed.
    pub(super) span: tracing::Span,
    /// The `authenticate` span (a child of `span`) while SASL runs.
    auth_span: tracing::Span,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("broker", &self.broker)
            .field("state", &self.state)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection about to be opened at `now`.
    pub fn new(
        id: ConnId,
        node: NodeId,
        broker: String,
        opening: Opening,
        settings: Arc<ConnSettings>,
        sasl: Option<SaslClient>,
        now: Instant,
    ) -> Self {
        Connection {
            id,
            node,
            broker,
            state: State::Connecting,
            opening,
            decoder: FrameDecoder::new(settings.max_frame),
            next_correlation_id: 1,
            in_flight: VecDeque::new(),
            versions: None,
            transmit: VecDeque::new(),
            setup_deadline: Some(now + settings.setup_timeout),
            settings,
            sasl,
            last_used: now,
            span: tracing::Span::none(),
            auth_span: tracing::Span::none(),
        }
    }

    /// Whether requests may be sent now (ready, and below the in-flight limit).
    pub fn can_send(&self) -> bool {
        self.state == State::Ready && self.in_flight.len() < self.settings.max_in_flight
    }

    /// Whether the connection finished its setup.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Requests awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The broker's versions, once known.
    pub fn versions(&self) -> Option<&Arc<ApiVersionTable>> {
        self.versions.as_ref()
    }

    /// The next frame to write to the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// The earliest instant at which [`Connection::handle_timeout`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let inflight = self.in_flight.iter().map(|f| f.deadline).min();
        match (self.setup_deadline, inflight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The socket (and TLS, if any) is up.
    pub fn handle_connected(&mut self, now: Instant, events: &mut Vec<ConnEvent>) {
        if self.state != State::Connecting {
            return;
        }
        self.last_used = now;
        match self.opening.clone() {
            Opening::Negotiate => {
                self.state = State::Negotiating;
                let (_, max) = ApiKey::ApiVersions.request_versions();
                self.send_api_versions(max, now, events);
            }
            Opening::Known(table) => {
                self.versions = Some(table);
                self.after_versions(now, events);
            }
            Opening::Probe(release, api) => {
                self.state = State::Probing;
                let body = legacy_probe_request(api);
                self.send_internal(api, 0, &body, Purpose::Probe(release), now, events);
            }
        }
    }

    fn send_api_versions(&mut self, version: i16, now: Instant, events: &mut Vec<ConnEvent>) {
        let body = RequestBody::ApiVersions(ApiVersionsRequest {
            client_software_name: self.settings.software_name.clone(),
            client_software_version: self.settings.software_version.clone(),
            ..Default::default()
        });
        self.send_internal(
            ApiKey::ApiVersions,
            version,
            &body,
            Purpose::ApiVersions,
            now,
            events,
        );
    }

    fn after_versions(&mut self, now: Instant, events: &mut Vec<ConnEvent>) {
        let Some(sasl) = self.sasl.as_ref() else {
            self.become_ready(events);
            return;
        };
        let mechanism = sasl.mechanism_name().to_owned();
        self.auth_span = super::spans::authenticate(&self.span, &mechanism);
        let Some(version) = self.negotiated(ApiKey::SaslHandshake, None) else {
            let error = NetError::Authentication {
                broker: self.broker.clone(),
                detail: "the broker does not support SASL (no SaslHandshake API)".into(),
            };
            self.fatal(error, false, events);
            return;
        };
        self.state = State::SaslHandshake;
        let body = RequestBody::SaslHandshake(SaslHandshakeRequest {
            mechanism,
            ..Default::default()
        });
        self.send_internal(
            ApiKey::SaslHandshake,
            version,
            &body,
            Purpose::SaslHandshake,
            now,
            events,
        );
    }

    fn become_ready(&mut self, events: &mut Vec<ConnEvent>) {
        self.state = State::Ready;
        self.setup_deadline = None;
        super::spans::finish(&mut self.auth_span, None);
        super::spans::finish(&mut self.span, None);
        events.push(ConnEvent::Ready);
    }

    /// The highest version of `api` both sides support, capped at `max`.
    pub fn negotiated(&self, api: ApiKey, max: Option<i16>) -> Option<i16> {
        self.versions.as_ref()?.negotiate(api, max)
    }

    fn next_correlation(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        id
    }

    /// Encodes one request frame onto the transmit queue (in pieces: see
    /// [`super::request_frame`]); returns its correlation id.
    fn encode_frame(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &RequestBody,
    ) -> Result<i32, NetError> {
        let correlation_id = self.next_correlation();
        let header = RequestHeader {
            request_api_key: api.as_i16(),
            request_api_version: version,
            correlation_id,
            client_id: self.settings.client_id.clone(),
            ..Default::default()
        };
        let header_version = protocol::request_header_version(api, version);
        encode_request(&header, header_version, body, version, &mut self.transmit).map_err(
            |error| NetError::Encode {
                broker: self.broker.clone(),
                error,
            },
        )?;
        Ok(correlation_id)
    }

    fn send_internal(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &RequestBody,
        purpose: Purpose,
        now: Instant,
        events: &mut Vec<ConnEvent>,
    ) {
        match self.encode_frame(api, version, body) {
            Ok(correlation_id) => {
                self.in_flight.push_back(InFlight {
                    correlation_id,
                    api,
                    version,
                    sent: now,
                    deadline: now + self.settings.request_timeout,
                    timeout: self.settings.request_timeout,
                    purpose,
                });
                events.push(ConnEvent::Setup(SetupExchange::Sent(api)));
            }
            Err(error) => self.fatal(error, false, events),
        }
    }

    fn send_raw_sasl(&mut self, token: &[u8], now: Instant) {
        let mut buf = BytesMut::with_capacity(4 + token.len());
        buf.put_i32(token.len() as i32);
        buf.put_slice(token);
        self.transmit.push_back(buf.freeze());
        // Legacy tokens carry no correlation id; the in-flight entry only tracks the deadline.
        self.in_flight.push_back(InFlight {
            correlation_id: 0,
            api: ApiKey::SaslAuthenticate,
            version: 0,
            sent: now,
            deadline: now + self.settings.request_timeout,
            timeout: self.settings.request_timeout,
            purpose: Purpose::SaslLegacy,
        });
    }

    /// Queues a user request. `expect_response` is false only for acks=0 produce requests,
    /// which the broker never answers; `timeout` is how long the response may take (the
    /// configured request timeout unless the caller needs longer, as JoinGroup does). Fails at
    /// once if no version is common to both sides or the body cannot be encoded at that
    /// version.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        id: RequestId,
        body: &RequestBody,
        max_version: Option<i16>,
        expect_response: bool,
        timeout: Duration,
        now: Instant,
    ) -> Result<i16, NetError> {
        debug_assert!(self.can_send());
        let api = body.api_key();
        let Some(version) = self.negotiated(api, max_version) else {
            let (ours_min, ours_max) = api.request_versions();
            let theirs = self
                .versions
                .as_ref()
                .and_then(|v| v.broker_range(api))
                .map_or("none".to_string(), |(a, b)| format!("{a}-{b}"));
            return Err(NetError::Unsupported {
                api,
                broker: self.broker.clone(),
                detail: format!(
                    "kafkit speaks versions {ours_min}-{ours_max}, broker {theirs} (Kafka {})",
                    self.versions.as_ref().map_or_else(
                        || "unknown".into(),
                        |v| super::versions::release_name(v.guess_broker_version())
                    )
                ),
            });
        };
        let correlation_id = self.encode_frame(api, version, body)?;
        self.last_used = now;
        if expect_response {
            self.in_flight.push_back(InFlight {
                correlation_id,
                api,
                version,
                sent: now,
                deadline: now + timeout,
                timeout,
                purpose: Purpose::User(id),
            });
        }
        Ok(version)
    }

    /// Bytes arrived from the socket.
    pub fn handle_data(&mut self, data: &[u8], now: Instant, events: &mut Vec<ConnEvent>) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.push(data);
        self.decode_frames(now, events);
    }

    /// Bytes arrived from the socket, owned: whole frames in `data` are sliced out of it
    /// without copying.
    pub fn handle_bytes(&mut self, data: Bytes, now: Instant, events: &mut Vec<ConnEvent>) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.push_bytes(data);
        self.decode_frames(now, events);
    }

    fn decode_frames(&mut self, now: Instant, events: &mut Vec<ConnEvent>) {
        self.last_used = now;
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    let error = match not_kafka(e.size) {
                        Some(detail) => NetError::NotKafka {
                            broker: self.broker.clone(),
                            expected: "PLAINTEXT".into(),
                            detail,
                        },
                        None => NetError::Decode {
                            broker: self.broker.clone(),
                            error: crate::codec::DecodeError::invalid("frame", e.to_string()),
                        },
                    };
                    self.fatal(error, false, events);
                    return;
                }
            };
            self.handle_frame(frame, now, events);
            if self.state == State::Closed {
                return;
            }
        }
    }

    fn handle_frame(&mut self, frame: Bytes, now: Instant, events: &mut Vec<ConnEvent>) {
        if self.state == State::SaslLegacy {
            self.in_flight.pop_front();
            self.sasl_step(&frame, now, events);
            return;
        }
        let mut r = Reader::new(frame);
        let correlation_id = match r.read_i32() {
            Ok(c) => c,
            Err(error) => return self.fatal(self.decode_error(error), false, events),
        };
        // Kafka answers a connection's requests in order, so a response must match the oldest
        // request in flight; anything else means the stream is out of step and cannot be
        // trusted any more.
        let expected = self.in_flight.front().map(|f| f.correlation_id);
        if expected != Some(correlation_id) {
            let error = NetError::Decode {
                broker: self.broker.clone(),
                error: crate::codec::DecodeError::invalid(
                    "response",
                    format!("correlation id {correlation_id}, expected {expected:?}"),
                ),
            };
            return self.fatal(error, false, events);
        }
        let inflight = self.in_flight.pop_front().expect("checked above");
        // Kept for ApiVersions: a broker that does not know the version we asked for answers
        // in v0 (KIP-511), which only a second decode at v0 can read.
        let rest = matches!(inflight.purpose, Purpose::ApiVersions).then(|| r.clone());
        match inflight.purpose {
            Purpose::User(id) => {
                let result = decode_response(inflight.api, inflight.version, &mut r)
                    .map(|body| (inflight.version, body))
                    .map_err(|error| NetError::Decode {
                        broker: self.broker.clone(),
                        error,
                    });
                let failed = result.is_err();
                let err_copy = result.as_ref().err().cloned();
                events.push(ConnEvent::Response { id, result });
                if failed {
                    // A response we cannot parse leaves the stream in an unknown state.
                    self.fatal(err_copy.expect("failed"), false, events);
                }
            }
            Purpose::ApiVersions => {
                let decoded = decode_response_as::<ApiVersionsRequest>(inflight.version, &mut r);
                let decoded = match (decoded, rest) {
                    (Err(_), Some(mut rest)) if inflight.version > 0 => {
                        decode_response_as::<ApiVersionsRequest>(0, &mut rest).map(|body| (0, body))
                    }
                    (other, _) => other.map(|body| (inflight.version, body)),
                };
                // A v0 response has no throttle time (the field decodes as 0): none to report.
                let throttle = match &decoded {
                    Ok((v, body)) if *v >= 1 => Some(body.throttle_time_ms),
                    _ => None,
                };
                events.push(answered(&inflight, throttle));
                self.on_api_versions(inflight.version, decoded, now, events)
            }
            Purpose::Probe(release) => {
                events.push(answered(&inflight, None));
                events.push(ConnEvent::ProbeAnswered(release));
                self.state = State::Closed;
            }
            Purpose::SaslHandshake => {
                events.push(answered(&inflight, None));
                let decoded = decode_response_as::<SaslHandshakeRequest>(inflight.version, &mut r);
                self.on_sasl_handshake(inflight.version, decoded, now, events)
            }
            Purpose::SaslAuthenticate => {
                events.push(answered(&inflight, None));
                let decoded =
                    decode_response_as::<SaslAuthenticateRequest>(inflight.version, &mut r);
                self.on_sasl_authenticate(decoded, now, events)
            }
            Purpose::SaslLegacy => unreachable!("legacy SASL frames are handled above"),
        }
    }

    fn on_api_versions(
        &mut self,
        version: i16,
        decoded: Result<(i16, ApiVersionsResponse), crate::codec::DecodeError>,
        now: Instant,
        events: &mut Vec<ConnEvent>,
    ) {
        let resp = match decoded {
            Ok((_, resp)) => resp,
            Err(error) => return self.fatal(self.decode_error(error), false, events),
        };
        let code = resp.error();
        if code == ErrorCode::UNSUPPORTED_VERSION {
            // The broker lists its own ApiVersions range: retry at the highest it accepts.
            let table = ApiVersionTable::from_response(&resp);
            let retry = table
                .negotiate(ApiKey::ApiVersions, None)
                .unwrap_or(0)
                .min(version.saturating_sub(1).max(0));
            if version == 0 {
                let error = NetError::Unsupported {
                    api: ApiKey::ApiVersions,
                    broker: self.broker.clone(),
                    detail: "the broker rejects ApiVersions v0".into(),
                };
                return self.fatal(error, false, events);
            }
            self.send_api_versions(retry, now, events);
            return;
        }
        if !code.is_ok() {
            let error = NetError::Broker {
                broker: self.broker.clone(),
                api: ApiKey::ApiVersions,
                code,
                message: None,
            };
            return self.fatal(error, false, events);
        }
        let table = ApiVersionTable::from_response(&resp);
        let table = match self.settings.pinned_release {
            Some(pin) => table.capped_to_release(pin),
            None => table,
        };
        self.versions = Some(Arc::new(table));
        self.after_versions(now, events);
    }

    fn on_sasl_handshake(
        &mut self,
        version: i16,
        decoded: Result<SaslHandshakeResponse, crate::codec::DecodeError>,
        now: Instant,
        events: &mut Vec<ConnEvent>,
    ) {
        let resp = match decoded {
            Ok(resp) => resp,
            Err(error) => return self.fatal(self.decode_error(error), false, events),
        };
        let code = resp.error();
        if !code.is_ok() {
            let mechanism = self.sasl.as_ref().map(|s| s.mechanism_name().to_owned());
            let detail = format!(
                "mechanism {} rejected ({code}); the broker enables {:?}",
                mechanism.unwrap_or_default(),
                resp.mechanisms
            );
            return self.fatal(self.auth_error(detail), false, events);
        }
        let initial = match self.sasl.as_mut().expect("SASL configured").start() {
            Ok(bytes) => bytes,
            Err(e) => return self.fatal(self.auth_error(e.to_string()), false, events),
        };
        let framed = version >= 1 && self.negotiated(ApiKey::SaslAuthenticate, None).is_some();
        if framed {
            self.state = State::SaslAuthenticate;
            self.send_sasl_authenticate(initial, now, events);
        } else {
            // Handshake v0: tokens follow as bare size-prefixed frames (Kafka 0.10.0 style).
            self.state = State::SaslLegacy;
            self.send_raw_sasl(&initial, now);
        }
    }

    fn send_sasl_authenticate(
        &mut self,
        token: Vec<u8>,
        now: Instant,
        events: &mut Vec<ConnEvent>,
    ) {
        let version = self
            .negotiated(ApiKey::SaslAuthenticate, None)
            .expect("checked before framed SASL");
        let body = RequestBody::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::from(token),
            ..Default::default()
        });
        self.send_internal(
            ApiKey::SaslAuthenticate,
            version,
            &body,
            Purpose::SaslAuthenticate,
            now,
            events,
        );
    }

    fn on_sasl_authenticate(
        &mut self,
        decoded: Result<SaslAuthenticateResponse, crate::codec::DecodeError>,
        now: Instant,
        events: &mut Vec<ConnEvent>,
    ) {
        let resp = match decoded {
            Ok(resp) => resp,
            Err(error) => return self.fatal(self.decode_error(error), false, events),
        };
        let code = resp.error();
        if !code.is_ok() {
            let detail = match resp.error_message {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_string(),
            };
            return self.fatal(self.auth_error(detail), false, events);
        }
        self.sasl_step(&resp.auth_bytes, now, events);
    }

    fn sasl_step(&mut self, server: &[u8], now: Instant, events: &mut Vec<ConnEvent>) {
        if self.sasl.as_ref().is_some_and(|s| s.is_complete()) {
            // The answer to a mechanism's final message: nothing more to do.
            self.sasl = None;
            return self.become_ready(events);
        }
        let step = self
            .sasl
            .as_mut()
            .expect("SASL configured")
            .handle_challenge(server);
        match step {
            Ok(SaslStep::Complete {
                final_message: None,
            }) => {
                // The mechanism holds secrets; drop it as soon as it has served.
                self.sasl = None;
                self.become_ready(events);
            }
            Ok(SaslStep::Continue(token))
            | Ok(SaslStep::Complete {
                final_message: Some(token),
            }) => {
                if self.state == State::SaslLegacy {
                    self.send_raw_sasl(&token, now);
                } else {
                    self.send_sasl_authenticate(token, now, events);
                }
            }
            // The exchange is over either way; the connection closes without the courtesy
            // message, which the broker would only answer with an error.
            Ok(SaslStep::Abort { error, .. }) | Err(error) => {
                self.fatal(self.auth_error(error.to_string()), false, events)
            }
        }
    }

    fn decode_error(&self, error: crate::codec::DecodeError) -> NetError {
        NetError::Decode {
            broker: self.broker.clone(),
            error,
        }
    }

    fn auth_error(&self, detail: String) -> NetError {
        NetError::Authentication {
            broker: self.broker.clone(),
            detail,
        }
    }

    /// Time passed: fails the connection if its setup or its oldest request is overdue.
    pub fn handle_timeout(&mut self, now: Instant, events: &mut Vec<ConnEvent>) {
        if self.state == State::Closed {
            return;
        }
        if let Some(deadline) = self.setup_deadline {
            if now >= deadline {
                let stage = match self.state {
                    State::Connecting => "connecting",
                    State::Negotiating | State::Probing => "negotiating API versions",
                    _ => "authenticating",
                };
                let error = NetError::Timeout {
                    broker: self.broker.clone(),
                    after: self.settings.setup_timeout,
                    detail: Some(format!("no connection: timed out {stage}")),
                };
                return self.fatal(error, false, events);
            }
        }
        if let Some(f) = self.in_flight.iter().find(|f| now >= f.deadline) {
            // Java closes the connection on a request timeout: the response may still come,
            // and a late answer would desynchronise everything after it.
            let error = NetError::Timeout {
                broker: self.broker.clone(),
                after: f.timeout,
                detail: Some(format!("no response to {} v{}", f.api, f.version)),
            };
            self.fatal(error, false, events);
        }
    }

    /// The driver reports the socket closed. Returns the event describing the failure.
    pub fn handle_closed(&mut self, reason: &super::CloseReason, events: &mut Vec<ConnEvent>) {
        if self.state == State::Closed {
            return;
        }
        let maybe_legacy = self.state == State::Negotiating
            && matches!(reason, super::CloseReason::PeerClosed)
            && self
                .in_flight
                .front()
                .is_some_and(|f| matches!(f.purpose, Purpose::ApiVersions));
        let error = match (self.state, reason) {
            (State::Connecting, super::CloseReason::ConnectFailed(e)) => NetError::Disconnected {
                broker: self.broker.clone(),
                reason: format!("cannot connect: {e}"),
            },
            (_, super::CloseReason::Tls(detail)) => NetError::Tls {
                broker: self.broker.clone(),
                detail: detail.clone(),
            },
            (State::SaslAuthenticate | State::SaslHandshake | State::SaslLegacy, r) => {
                self.auth_error(format!("connection closed during authentication: {r}"))
            }
            (_, r) => NetError::Disconnected {
                broker: self.broker.clone(),
                reason: r.to_string(),
            },
        };
        self.fatal(error, maybe_legacy, events);
    }

    fn fatal(&mut self, error: NetError, maybe_legacy: bool, events: &mut Vec<ConnEvent>) {
        if self.state == State::Closed {
            return;
        }
        tracing::debug!(broker = %self.broker, %error, "connection failed");
        super::spans::finish(&mut self.auth_span, Some(&error));
        super::spans::finish(&mut self.span, Some(&error));
        self.state = State::Closed;
        self.sasl = None;
        self.transmit.clear();
        events.push(ConnEvent::Fatal {
            error,
            maybe_legacy,
        });
    }

    /// The APIs of the setup requests (ApiVersions, SASL, a legacy probe) written and not yet
    /// answered. Legacy SASL tokens are no Kafka requests and are not counted.
    pub fn setup_in_flight(&self) -> impl Iterator<Item = ApiKey> + '_ {
        self.in_flight.iter().filter_map(|f| match f.purpose {
            Purpose::ApiVersions
            | Purpose::Probe(_)
            | Purpose::SaslHandshake
            | Purpose::SaslAuthenticate => Some(f.api),
            Purpose::User(_) | Purpose::SaslLegacy => None,
        })
    }

    /// Closes the connection (owner's decision) and returns the user requests that were in
    /// flight, which the owner fails or retries.
    pub fn take_in_flight(&mut self) -> Vec<RequestId> {
        self.state = State::Closed;
        self.in_flight
            .drain(..)
            .filter_map(|f| match f.purpose {
                Purpose::User(id) => Some(id),
                _ => None,
            })
            .collect()
    }
}

/// The event for a setup request's response.
fn answered(f: &InFlight, throttle_time_ms: Option<i32>) -> ConnEvent {
    ConnEvent::Setup(SetupExchange::Answered {
        api: f.api,
        sent: f.sent,
        throttle_time_ms,
    })
}

/// Decodes a response of `api` after its correlation id: the rest of the header, then the body.
fn decode_response(
    api: ApiKey,
    version: i16,
    r: &mut Reader,
) -> Result<ResponseBody, crate::codec::DecodeError> {
    decode_after_header(api, version, r, |r| {
        ResponseBody::decode(api, protocol::layout_version(api, version), r)
    })
}

/// [`decode_response`] for the connection's own requests, typed: the response to `R`.
fn decode_response_as<R: protocol::Request>(
    version: i16,
    r: &mut Reader,
) -> Result<R::Response, crate::codec::DecodeError> {
    decode_after_header(R::API_KEY, version, r, |r| {
        <R::Response as protocol::Message>::decode(r, version)
    })
}

fn decode_after_header<T>(
    api: ApiKey,
    version: i16,
    r: &mut Reader,
    body: impl FnOnce(&mut Reader) -> Result<T, crate::codec::DecodeError>,
) -> Result<T, crate::codec::DecodeError> {
    if protocol::response_header_version(api, version) >= 1 {
        r.read_tagged_fields(|_, _| Ok(false))?;
    }
    let body = body(r)?;
    // Bytes after a complete response are ignored, as the Java client and librdkafka do:
    // some brokers (librdkafka's mock cluster, for one) end flexible responses with an extra
    // empty tag section.
    if !r.is_empty() {
        tracing::trace!(%api, version, trailing = r.remaining(), "ignoring trailing response bytes");
    }
    Ok(body)
}

fn legacy_probe_request(api: ApiKey) -> RequestBody {
    match api {
        ApiKey::ListGroups => RequestBody::ListGroups(Default::default()),
        ApiKey::FindCoordinator => RequestBody::FindCoordinator(protocol::FindCoordinatorRequest {
            key: "kafkit-probe".into(),
            ..Default::default()
        }),
        ApiKey::OffsetFetch => RequestBody::OffsetFetch(protocol::OffsetFetchRequest {
            group_id: "kafkit-probe".into(),
            topics: Some(Vec::new()),
            ..Default::default()
        }),
        _ => RequestBody::Metadata(protocol::MetadataRequest {
            topics: Some(Vec::new()),
            ..Default::default()
        }),
    }
}

/// What an impossible frame size says about the peer, from the four bytes it was read from
/// (a plaintext client reads a TLS record or an HTTP status line as a size prefix): a TLS
/// record (alert 0x15 or handshake 0x16, then version 3.x) is 352,518,912 and up; "HTTP" is
/// 1,213,486,160.
fn not_kafka(size: i64) -> Option<String> {
    let b = (size as i32).to_be_bytes();
    match b {
        [0x15 | 0x16, 0x03, 0x00..=0x04, _] => Some(format!(
            "the broker speaks TLS (it answered with a TLS {} record, read as frame size \
             {size}): set security_protocol=SSL (or SASL_SSL)",
            if b[0] == 0x15 { "alert" } else { "handshake" }
        )),
        [b'H', b'T', b'T', b'P'] => Some(
            "an HTTP server answered (\"HTTP\", read as frame size 1213486160): this is an HTTP \
             port, not Kafka; check the port of bootstrap_servers"
                .into(),
        ),
        _ => None,
    }
}

//! Per-API control hooks: tests intercept requests to drop them, delay them or answer them
//! with a response of their choosing (an injected error).

use std::time::Duration;

use kafkit_core::protocol::{RequestBody, RequestHeader, ResponseBody};

/// What a hook decides for one request.
#[derive(Debug, Clone)]
pub enum HookAction {
    /// Handle the request normally.
    Pass,
    /// Swallow the request: no effect, no response (the connection stays open).
    Drop,
    /// Handle the request after this much virtual time. The connection is muted meanwhile, as
    /// a busy Kafka broker mutes a connection with a request in progress: later requests on
    /// it wait their turn.
    Delay(Duration),
    /// Answer with this body instead of handling the request (it must be a response of the
    /// request's API, valid at the request's version, or the connection is closed).
    Respond(ResponseBody),
}

/// A hook: sees each request of its API (after SASL checks) and decides what happens.
pub type Hook = Box<dyn FnMut(&RequestHeader, &RequestBody) -> HookAction>;

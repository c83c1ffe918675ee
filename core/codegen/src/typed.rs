//! The typed way back from a decoded response: `TryFrom<ResponseBody>` for every response (in
//! `dispatch.rs`) and an `error()` accessor returning the typed `ErrorCode` on every response
//! struct that carries an `ErrorCode` field (in each API's module).

use std::fmt::Write as _;

use crate::spec::{field_ident, Kind, MessageSpec, StructDef, Ty};
use crate::Api;

/// The field Kafka names `ErrorCode` in every response that reports one; other `*ErrorCode`
/// fields (`PartitionErrorCode`, `AcknowledgeErrorCode`) keep their raw `i16`, as the Java
/// client's generated data classes do.
const ERROR_FIELD: &str = "ErrorCode";

/// `impl XResponse { pub fn error(&self) -> ErrorCode }` for a struct of a response message
/// that has an `int16` field named `ErrorCode`; empty for anything else.
pub fn error_accessor(msg: &MessageSpec, s: &StructDef) -> String {
    if msg.kind != Kind::Response {
        return String::new();
    }
    let Some(f) = s
        .fields
        .iter()
        .find(|f| f.name == ERROR_FIELD && f.ty == Ty::Int16)
    else {
        return String::new();
    };
    let absent = match f.versions {
        Some(v) if v.lo <= msg.valid.lo && v.hi >= msg.valid.hi => String::new(),
        Some(v) => format!(
            " The field exists in versions {}; decoded at another version it holds its default.",
            v.text()
        ),
        None => " The field exists in no version, so this is always its default.".into(),
    };
    format!(
        "impl {name} {{\n\
         /// The `{field}` field as an [`ErrorCode`] (`NONE` is success), like the Java client's\n\
         /// `error()`.{absent}\n\
         pub fn error(&self) -> ErrorCode {{\nErrorCode(self.{id})\n}}\n}}\n\n",
        name = s.name,
        field = ERROR_FIELD,
        id = field_ident(&f.name),
    )
}

/// `impl TryFrom<ResponseBody> for XResponse` for every API: the variant's message, or
/// `UnexpectedResponse` naming the API the body belongs to.
pub fn response_try_from(apis: &[Api]) -> String {
    let mut o = String::new();
    for a in apis {
        let _ = write!(
            o,
            "impl TryFrom<ResponseBody> for {n}Response {{\n\
             type Error = UnexpectedResponse;\n\
             /// The {n} response inside `body`, or which API `body` answers instead.\n\
             fn try_from(body: ResponseBody) -> Result<Self, UnexpectedResponse> {{\n\
             match body {{\n\
             ResponseBody::{n}(m) => Ok(m),\n\
             other => Err(UnexpectedResponse {{ expected: ApiKey::{n}, got: other.api_key() }}),\n\
             }}\n}}\n}}\n\n",
            n = a.name
        );
    }
    o
}

/// The field Kafka names `ThrottleTimeMs` in every response a quota may throttle.
const THROTTLE_FIELD: &str = "ThrottleTimeMs";

/// `impl ResponseBody { throttle_time_ms, throttle_time_ms_mut }`: the top-level
/// `ThrottleTimeMs` of any response, for the network layer's KIP-219 throttling (and for a
/// simulated broker that throttles), without a hand-written match per API.
pub fn response_throttle(apis: &[Api]) -> String {
    let with: Vec<&Api> = apis
        .iter()
        .filter(|a| {
            a.response.structs.first().is_some_and(|s| {
                s.fields
                    .iter()
                    .any(|f| f.name == THROTTLE_FIELD && f.ty == Ty::Int32)
            })
        })
        .collect();
    let mut o = String::from(
        "impl ResponseBody {\n\
         /// The response's top-level `ThrottleTimeMs`: how long the broker throttles this client\n\
         /// for a quota violation (0 when it does not, and when decoded at a version without the\n\
         /// field); `None` for APIs whose response has no such field.\n\
         pub fn throttle_time_ms(&self) -> Option<i32> {\nmatch self {\n",
    );
    for a in &with {
        let _ = writeln!(o, "Self::{}(m) => Some(m.throttle_time_ms),", a.name);
    }
    if with.len() < apis.len() {
        o.push_str("_ => None,\n");
    }
    o.push_str(
        "}\n}\n\n\
         /// [`ResponseBody::throttle_time_ms`], to set (a broker answering a throttled client).\n\
         pub fn throttle_time_ms_mut(&mut self) -> Option<&mut i32> {\nmatch self {\n",
    );
    for a in &with {
        let _ = writeln!(o, "Self::{}(m) => Some(&mut m.throttle_time_ms),", a.name);
    }
    if with.len() < apis.len() {
        o.push_str("_ => None,\n");
    }
    o.push_str("}\n}\n}\n\n");
    o
}

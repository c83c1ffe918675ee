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

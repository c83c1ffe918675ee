//! Response framing: size prefix, response header at the right version, body.

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_core::codec::EncodeError;
use kafkit_core::protocol::{
    response_header_version, Message, RequestHeader, ResponseBody, ResponseHeader,
};

/// Encodes `body` as the response to the request with `header`: 4-byte size, response
/// header (v0 or v1 as the API and version call for), body at the request's version.
pub(crate) fn encode_response_frame(
    header: &RequestHeader,
    body: &ResponseBody,
) -> Result<Bytes, EncodeError> {
    let version = header.request_api_version;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    let rh = ResponseHeader {
        correlation_id: header.correlation_id,
        ..Default::default()
    };
    rh.encode(&mut buf, response_header_version(body.api_key(), version))?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| EncodeError::Invalid {
        what: "response frame",
        detail: "larger than 2 GiB".into(),
    })?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// A raw frame (legacy SASL token): size prefix and bytes.
pub(crate) fn raw_frame(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + data.len());
    buf.put_i32(data.len() as i32);
    buf.put_slice(data);
    buf.freeze()
}

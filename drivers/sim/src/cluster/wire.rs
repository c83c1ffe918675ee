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
    let mut buf = BytesMut::with_capacity(size_hint(body));
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

/// Room for the frame of `body`: a Fetch response is sized from its records (tens of MB at
/// a time while a consumer catches up), so it is written once into memory of the right size
/// instead of being regrown (and copied, and page-faulted) from a few bytes; the per-partition
/// allowance is generous, and any other response starts small.
fn size_hint(body: &ResponseBody) -> usize {
    match body {
        ResponseBody::Fetch(f) => f.responses.iter().fold(256, |acc, t| {
            t.partitions
                .iter()
                .fold(acc + 64 + t.topic.len(), |acc, p| {
                    acc + 96 + p.records.as_ref().map_or(0, |r| r.len())
                })
        }),
        _ => 64,
    }
}

/// A raw frame (legacy SASL token): size prefix and bytes.
pub(crate) fn raw_frame(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + data.len());
    buf.put_i32(data.len() as i32);
    buf.put_slice(data);
    buf.freeze()
}

//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`). Each takes raw
//! bytes, must never panic, hang or allocate beyond what the input justifies, and checks the
//! decoders' own invariants where one exists: whatever decodes re-encodes and decodes to the
//! same value.

use bytes::{Bytes, BytesMut};

use crate::codec::Reader;
use crate::protocol::{
    self, ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, Message, RequestBody,
    ResponseBody,
};
use crate::records::{DecodeOptions, RecordBatch, RecordSet};

/// The first two bytes pick the API (modulo the number of keys) and the next two the version;
/// the rest is a response frame after its size prefix, as a client reads it.
pub fn response_frame(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let api = ApiKey::ALL[usize::from(u16::from_be_bytes([data[0], data[1]])) % ApiKey::ALL.len()];
    let (min, max) = api.response_versions();
    let span = (max - min + 1) as u16;
    let version = min + (u16::from_be_bytes([data[2], data[3]]) % span) as i16;
    let mut r = Reader::new(Bytes::copy_from_slice(&data[4..]));
    let decoded = (|| {
        r.read_i32()?;
        if protocol::response_header_version(api, version) >= 1 {
            r.read_tagged_fields(|_, _| Ok(false))?;
        }
        let body = ResponseBody::decode(api, version, &mut r)?;
        r.finish()?;
        Ok::<_, crate::codec::DecodeError>(body)
    })();
    if let Ok(body) = decoded {
        let mut buf = BytesMut::new();
        body.encode(&mut buf, version)
            .expect("a decoded response re-encodes");
        let first = buf.freeze();
        let again = ResponseBody::decode(api, version, &mut Reader::new(first.clone()))
            .expect("a re-encoded response decodes");
        // Bytes, not values: a NaN float is unequal to itself.
        let mut second = BytesMut::new();
        again.encode(&mut second, version).expect("re-encodes");
        assert!(first == second, "response changed across a round trip");
    }
}

/// A request frame after its size prefix, as a broker reads it.
pub fn request_frame(data: &[u8]) {
    let Ok((header, body)) = protocol::decode_request_frame(Bytes::copy_from_slice(data)) else {
        return;
    };
    // Versions Kafka added with no change on the wire (Produce v12, TxnOffsetCommit v5) decode
    // with the layout of the version before them, and are written with it too.
    let version = protocol::layout_version(body.api_key(), header.request_api_version);
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version)
        .expect("a decoded request re-encodes");
    let first = buf.freeze();
    let again = RequestBody::decode(body.api_key(), version, &mut Reader::new(first.clone()))
        .expect("a re-encoded request decodes");
    let mut second = BytesMut::new();
    again.encode(&mut second, version).expect("re-encodes");
    assert!(first == second, "request changed across a round trip");
}

/// A fetched record set, with decompression capped at 1 MiB; the first byte chooses whether
/// CRCs are checked (off lets the fuzzer reach the record decoders behind the checksum).
pub fn record_set(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let opts = DecodeOptions {
        check_crcs: flags & 1 == 1,
        max_decompressed_size: 1 << 20,
        skip_double_compressed: flags & 2 == 2,
    };
    let bytes = Bytes::copy_from_slice(rest);
    for batch in RecordSet::new(bytes.clone(), opts).take(1000) {
        let Ok(batch) = batch else { break };
        for record in batch.records().take(100_000) {
            let Ok(record) = record else { break };
            std::hint::black_box(&record);
        }
    }
    if let Ok(batch) = RecordBatch::decode(bytes, &opts) {
        let _ = std::hint::black_box(batch.decode_records());
    }
}

/// The consumer group protocol's embedded subscription and assignment, as a group member
/// reads them from JoinGroup and SyncGroup responses: an `int16` version, then the body,
/// decoded at the highest version this build knows when it is newer (as Java does).
pub fn consumer_protocol(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let read =
        |r: &mut Reader, max: i16| -> Option<i16> { r.read_i16().ok().map(|v| v.clamp(0, max)) };
    let mut r = Reader::new(bytes.clone());
    if let Some(v) = read(&mut r, ConsumerProtocolSubscription::VERSIONS.1) {
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut r, v) {
            let mut buf = BytesMut::new();
            sub.encode(&mut buf, v)
                .expect("a decoded subscription re-encodes");
        }
    }
    let mut r = Reader::new(bytes);
    if let Some(v) = read(&mut r, ConsumerProtocolAssignment::VERSIONS.1) {
        if let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut r, v) {
            let mut buf = BytesMut::new();
            assignment
                .encode(&mut buf, v)
                .expect("a decoded assignment re-encodes");
        }
    }
}

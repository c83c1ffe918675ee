//! Fixed byte vectors written by hand from Kafka's protocol documentation (the "Protocol
//! Primitive Types" and per-API BNF of kafka.apache.org/protocol), not produced by our encoder.
//! Each test decodes the bytes, checks the fields, and encodes the value back to the same bytes.

use bytes::Bytes;
use kafkit_core::codec::{RawTaggedField, Reader};
use kafkit_core::protocol::generated::api_versions::response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafkit_core::protocol::generated::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::generated::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_request_frame, decode_response_body, decode_response_frame, encode_request,
    encode_response, request_header_version, response_header_version, ApiKey, ApiVersionsRequest,
    ApiVersionsResponse, FindCoordinatorRequest, Message, MetadataRequest, ProduceRequest,
    RequestBody, RequestHeader, ResponseBody, ResponseHeader,
};

/// Concatenates byte groups (so each group can carry its own comment).
fn cat(groups: &[&[u8]]) -> Vec<u8> {
    groups.concat()
}

/// Decodes `bytes` as `M` at `version`, requiring all bytes to be used.
fn decode<M: Message>(bytes: &[u8], version: i16) -> M {
    let mut r = Reader::new(Bytes::copy_from_slice(bytes));
    let m = M::decode(&mut r, version).unwrap_or_else(|e| panic!("{} v{version}: {e}", M::NAME));
    assert_eq!(r.remaining(), 0, "{} v{version} left bytes", M::NAME);
    m
}

fn encode<M: Message>(m: &M, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out, version).unwrap();
    out
}

#[test]
fn request_header_v1() {
    let bytes = cat(&[
        &[0x00, 0x03],             // request_api_key: INT16 3 (Metadata)
        &[0x00, 0x01],             // request_api_version: INT16 1
        &[0x00, 0x00, 0x00, 0x07], // correlation_id: INT32 7
        &[0x00, 0x06],             // client_id: NULLABLE_STRING, INT16 length 6
        b"kafkit",                 //   "kafkit"
    ]);
    let h: RequestHeader = decode(&bytes, 1);
    assert_eq!(h.request_api_key, 3);
    assert_eq!(h.request_api_version, 1);
    assert_eq!(h.correlation_id, 7);
    assert_eq!(h.client_id.as_deref(), Some("kafkit"));
    assert_eq!(encode(&h, 1), bytes);

    // A null client id is INT16 -1.
    let null = cat(&[&[0x00, 0x03, 0x00, 0x01], &[0, 0, 0, 7], &[0xff, 0xff]]);
    let h: RequestHeader = decode(&null, 1);
    assert_eq!(h.client_id, None);
    assert_eq!(encode(&h, 1), null);
}

#[test]
fn response_header_v0_and_v1() {
    let v0 = [0x00, 0x00, 0x00, 0x2a]; // correlation_id: INT32 42
    let h: ResponseHeader = decode(&v0, 0);
    assert_eq!(h.correlation_id, 42);
    let v1 = cat(&[
        &[0x00, 0x00, 0x00, 0x2a], // correlation_id: INT32 42
        &[0x00],                   // TAG_BUFFER: 0 tagged fields
    ]);
    let h: ResponseHeader = decode(&v1, 1);
    assert_eq!(h.correlation_id, 42);
    assert_eq!(encode(&h, 1), v1);
}

#[test]
fn api_versions_request_v3_with_header_v2() {
    let frame = cat(&[
        // Request header v2 (ApiVersions v3 is flexible).
        &[0x00, 0x12],             // request_api_key: INT16 18 (ApiVersions)
        &[0x00, 0x03],             // request_api_version: INT16 3
        &[0x00, 0x00, 0x00, 0x01], // correlation_id: INT32 1
        &[0x00, 0x06],             // client_id: NULLABLE_STRING, still INT16 length 6 in v2
        b"kafkit",                 //   "kafkit"
        &[0x00],                   // header TAG_BUFFER: 0 tagged fields
        // ApiVersionsRequest v3 body.
        &[0x07],   // client_software_name: COMPACT_STRING, UNSIGNED_VARINT length+1 = 7
        b"kafkit", //   "kafkit"
        &[0x06],   // client_software_version: COMPACT_STRING, length+1 = 6
        b"0.1.0",  //   "0.1.0"
        &[0x00],   // body TAG_BUFFER: 0 tagged fields
    ]);
    assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
    let (header, body) = decode_request_frame(Bytes::from(frame.clone())).unwrap();
    assert_eq!(header.request_api_key, 18);
    assert_eq!(header.request_api_version, 3);
    assert_eq!(header.correlation_id, 1);
    assert_eq!(header.client_id.as_deref(), Some("kafkit"));
    let RequestBody::ApiVersions(req) = body else {
        panic!("wrong body {body:?}")
    };
    assert_eq!(req.client_software_name, "kafkit");
    assert_eq!(req.client_software_version, "0.1.0");

    let mut out = Vec::new();
    encode_request(&header, &req, 3, &mut out).unwrap();
    assert_eq!(out, frame);

    // Trailing bytes after the body are an error.
    let mut long = frame.clone();
    long.push(0);
    assert!(decode_request_frame(Bytes::from(long)).is_err());

    // ApiVersions v0 has an empty body; the header is v1.
    let v0 = ApiVersionsRequest::default();
    assert_eq!(encode(&v0, 0), Vec::<u8>::new());
    assert_eq!(request_header_version(ApiKey::ApiVersions, 0), 1);
}

#[test]
fn api_versions_response_v0() {
    let bytes = cat(&[
        &[0x00, 0x00],             // error_code: INT16 0
        &[0x00, 0x00, 0x00, 0x02], // api_keys: ARRAY, INT32 count 2
        &[0x00, 0x00],             //   [0] api_key 0 (Produce)
        &[0x00, 0x00],             //       min_version 0
        &[0x00, 0x0b],             //       max_version 11
        &[0x00, 0x12],             //   [1] api_key 18 (ApiVersions)
        &[0x00, 0x00],             //       min_version 0
        &[0x00, 0x04],             //       max_version 4
                                   // (no throttle_time_ms before v1)
    ]);
    let resp: ApiVersionsResponse = decode(&bytes, 0);
    assert_eq!(resp.error_code, 0);
    assert_eq!(
        resp.api_keys,
        vec![
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 11,
                ..Default::default()
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                ..Default::default()
            },
        ]
    );
    assert_eq!(encode(&resp, 0), bytes);
    // ApiVersions responses always use response header v0, even when flexible.
    assert_eq!(response_header_version(ApiKey::ApiVersions, 0), 0);
    assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
    assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
    assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
}

#[test]
fn api_versions_response_v3_with_tagged_fields() {
    let bytes = cat(&[
        &[0x00, 0x23],             // error_code: INT16 35 (UNSUPPORTED_VERSION)
        &[0x02],                   // api_keys: COMPACT_ARRAY, UNSIGNED_VARINT count+1 = 2
        &[0x00, 0x12],             //   [0] api_key 18
        &[0x00, 0x00],             //       min_version 0
        &[0x00, 0x04],             //       max_version 4
        &[0x00],                   //       TAG_BUFFER: none
        &[0x00, 0x00, 0x00, 0x64], // throttle_time_ms: INT32 100
        &[0x03],                   // TAG_BUFFER: 3 tagged fields
        &[0x00, 0x17],             //   tag 0 (SupportedFeatures), 23 bytes:
        &[0x02],                   //     COMPACT_ARRAY count+1 = 2
        &[0x11],                   //     [0] name: COMPACT_STRING length+1 = 17
        b"metadata.version",       //         "metadata.version"
        &[0x00, 0x01],             //         min_version 1
        &[0x00, 0x14],             //         max_version 20
        &[0x00],                   //         TAG_BUFFER: none
        &[0x01, 0x08],             //   tag 1 (FinalizedFeaturesEpoch), 8 bytes:
        &[0, 0, 0, 0, 0, 0, 0, 5], //     INT64 5
        &[0x07, 0x02],             //   tag 7 (unknown to us), 2 bytes:
        &[0xbe, 0xef],             //     kept as raw bytes
    ]);
    let resp: ApiVersionsResponse = decode(&bytes, 3);
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.throttle_time_ms, 100);
    assert_eq!(
        resp.supported_features,
        vec![SupportedFeatureKey {
            name: "metadata.version".into(),
            min_version: 1,
            max_version: 20,
            ..Default::default()
        }]
    );
    assert_eq!(resp.finalized_features_epoch, 5);
    assert_eq!(resp.finalized_features, Vec::<FinalizedFeatureKey>::new());
    assert!(!resp.zk_migration_ready);
    assert_eq!(
        resp.unknown_tagged_fields,
        vec![RawTaggedField {
            tag: 7,
            data: Bytes::from_static(&[0xbe, 0xef]),
        }]
    );
    // Tagged fields at their default (FinalizedFeatures empty, ZkMigrationReady false) are not
    // written, the unknown one is written back in tag order.
    assert_eq!(encode(&resp, 3), bytes);

    // The same through the dispatch entry point, after a v0 response header.
    let mut frame = vec![0x00, 0x00, 0x00, 0x09]; // response header v0: correlation_id 9
    frame.extend_from_slice(&bytes);
    let mut r = Reader::new(Bytes::from(frame));
    let h =
        ResponseHeader::decode(&mut r, response_header_version(ApiKey::ApiVersions, 3)).unwrap();
    assert_eq!(h.correlation_id, 9);
    let body = decode_response_body(ApiKey::ApiVersions, 3, &mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(body, ResponseBody::ApiVersions(resp.clone()));
    let mut frame = Vec::new();
    encode_response(9, &resp, 3, &mut frame).unwrap();
    let (h, body) = decode_response_frame(ApiKey::ApiVersions, 3, Bytes::from(frame)).unwrap();
    assert_eq!(h.correlation_id, 9);
    assert_eq!(body, ResponseBody::ApiVersions(resp));
}

#[test]
fn metadata_request_v0_and_v1() {
    let v0 = cat(&[
        &[0x00, 0x00, 0x00, 0x02], // topics: ARRAY, INT32 count 2
        &[0x00, 0x03],             //   [0] name: STRING length 3
        b"foo",                    //       "foo"
        &[0x00, 0x03],             //   [1] name: STRING length 3
        b"bar",                    //       "bar"
    ]);
    let req: MetadataRequest = decode(&v0, 0);
    let names: Vec<_> = req
        .topics
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["foo", "bar"]);
    assert_eq!(encode(&req, 0), v0);
    assert_eq!(encode(&req, 1), v0, "v1 has the same layout");

    // v0: an empty array means all topics.
    let all_v0 = [0x00, 0x00, 0x00, 0x00]; // topics: INT32 count 0
    let req: MetadataRequest = decode(&all_v0, 0);
    assert_eq!(req.topics, Some(vec![]));

    // v1+: null (-1) means all topics, an empty array means none.
    let all_v1 = [0xff, 0xff, 0xff, 0xff]; // topics: INT32 -1 (null)
    let req: MetadataRequest = decode(&all_v1, 1);
    assert_eq!(req.topics, None);
    assert_eq!(encode(&req, 1), all_v1);
    // Null topics cannot be written at v0.
    assert!(req.encode(&mut Vec::new(), 0).is_err());
    // ... and v0 rejects a null on the wire.
    assert!(MetadataRequest::decode(&mut Reader::new(Bytes::copy_from_slice(&all_v1)), 0).is_err());

    let one = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("t".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert_eq!(encode(&one, 1), cat(&[&[0, 0, 0, 1], &[0, 1], b"t"]));
}

#[test]
fn produce_request_v3() {
    let bytes = cat(&[
        &[0xff, 0xff],             // transactional_id: NULLABLE_STRING null (INT16 -1)
        &[0xff, 0xff],             // acks: INT16 -1 (all)
        &[0x00, 0x00, 0x75, 0x30], // timeout_ms: INT32 30000
        &[0x00, 0x00, 0x00, 0x01], // topic_data: ARRAY count 1
        &[0x00, 0x05],             //   name: STRING length 5
        b"topic",                  //     "topic"
        &[0x00, 0x00, 0x00, 0x01], //   partition_data: ARRAY count 1
        &[0x00, 0x00, 0x00, 0x02], //     index: INT32 2
        &[0x00, 0x00, 0x00, 0x03], //     records: RECORDS (NULLABLE_BYTES), INT32 length 3
        &[0xaa, 0xbb, 0xcc],       //       (opaque record batch bytes)
    ]);
    let req: ProduceRequest = decode(&bytes, 3);
    assert_eq!(req.transactional_id, None);
    assert_eq!(req.acks, -1);
    assert_eq!(req.timeout_ms, 30000);
    assert_eq!(
        req.topic_data,
        vec![TopicProduceData {
            name: "topic".into(),
            partition_data: vec![PartitionProduceData {
                index: 2,
                records: Some(Bytes::from_static(&[0xaa, 0xbb, 0xcc])),
                ..Default::default()
            }],
            ..Default::default()
        }]
    );
    assert_eq!(encode(&req, 3), bytes);

    // With a transactional id, and null records (INT32 -1).
    let tx = cat(&[
        &[0x00, 0x02],             // transactional_id: length 2
        b"tx",                     //   "tx"
        &[0x00, 0x01],             // acks: 1
        &[0x00, 0x00, 0x03, 0xe8], // timeout_ms: 1000
        &[0x00, 0x00, 0x00, 0x01], // topic_data: count 1
        &[0x00, 0x01],             //   name: length 1
        b"t",                      //     "t"
        &[0x00, 0x00, 0x00, 0x01], //   partition_data: count 1
        &[0x00, 0x00, 0x00, 0x00], //     index: 0
        &[0xff, 0xff, 0xff, 0xff], //     records: null
    ]);
    let req: ProduceRequest = decode(&tx, 3);
    assert_eq!(req.transactional_id.as_deref(), Some("tx"));
    assert_eq!(req.topic_data[0].partition_data[0].records, None);
    assert_eq!(encode(&req, 3), tx);
}

#[test]
fn produce_request_records_are_zero_copy() {
    let bytes = cat(&[
        &[0xff, 0xff],
        &[0x00, 0x01],
        &[0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x01],
        &[0x00, 0x01],
        b"t",
        &[0x00, 0x00, 0x00, 0x01],
        &[0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x02],
        &[0x11, 0x22],
    ]);
    let input = Bytes::from(bytes);
    let req = ProduceRequest::decode(&mut Reader::new(input.clone()), 3).unwrap();
    let records = req.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap();
    let start = input.as_ptr() as usize;
    let at = records.as_ptr() as usize;
    assert!(
        at >= start && at < start + input.len(),
        "records were copied"
    );
}

#[test]
fn find_coordinator_request_v0() {
    let bytes = cat(&[
        &[0x00, 0x07], // key: STRING length 7
        b"group-1",    //   "group-1"
    ]);
    let req: FindCoordinatorRequest = decode(&bytes, 0);
    assert_eq!(req.key, "group-1");
    assert_eq!(req.key_type, 0);
    assert_eq!(encode(&req, 0), bytes);

    // v1 adds key_type: INT8.
    let v1 = cat(&[&[0x00, 0x02], b"tx", &[0x01]]);
    let req: FindCoordinatorRequest = decode(&v1, 1);
    assert_eq!((req.key.as_str(), req.key_type), ("tx", 1));
    // key_type is not ignorable: a transaction coordinator cannot be asked for at v0.
    assert!(req.encode(&mut Vec::new(), 0).is_err());
}

#[test]
fn nullable_struct_uses_an_int8_marker() {
    use kafkit_core::protocol::generated::describe_topic_partitions::request::{
        Cursor, TopicRequest,
    };
    use kafkit_core::protocol::DescribeTopicPartitionsRequest;
    let null = cat(&[
        &[0x02],                   // topics: COMPACT_ARRAY count+1 = 2
        &[0x02, b't'],             //   [0] name: COMPACT_STRING "t"
        &[0x00],                   //       TAG_BUFFER: none
        &[0x00, 0x00, 0x07, 0xd0], // response_partition_limit: INT32 2000
        &[0xff],                   // cursor: INT8 -1 = null
        &[0x00],                   // TAG_BUFFER: none
    ]);
    let req: DescribeTopicPartitionsRequest = decode(&null, 0);
    assert_eq!(
        req.topics,
        vec![TopicRequest {
            name: "t".into(),
            ..Default::default()
        }]
    );
    assert_eq!(req.cursor, None);
    assert_eq!(encode(&req, 0), null);
    assert_eq!(
        DescribeTopicPartitionsRequest::default().response_partition_limit,
        2000
    );

    let some = cat(&[
        &[0x01],                   // topics: COMPACT_ARRAY count+1 = 1 (empty)
        &[0x00, 0x00, 0x00, 0x0a], // response_partition_limit: INT32 10
        &[0x01],                   // cursor: INT8 1 = present
        &[0x02, b't'],             //   topic_name: COMPACT_STRING "t"
        &[0x00, 0x00, 0x00, 0x03], //   partition_index: INT32 3
        &[0x00],                   //   TAG_BUFFER: none
        &[0x00],                   // TAG_BUFFER: none
    ]);
    let req: DescribeTopicPartitionsRequest = decode(&some, 0);
    assert_eq!(
        req.cursor,
        Some(Cursor {
            topic_name: "t".into(),
            partition_index: 3,
            ..Default::default()
        })
    );
    assert_eq!(encode(&req, 0), some);
}

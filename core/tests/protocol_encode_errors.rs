//! Encoding values a version cannot carry: non-ignorable fields, nulls, unknown tagged fields in
//! non-flexible versions, unsupported versions.

use bytes::Bytes;
use kafkit_core::codec::{DecodeError, EncodeError, RawTaggedField, Reader};
use kafkit_core::protocol::generated::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::{
    encode_request, ApiVersionsRequest, FetchRequest, Message, MetadataRequest, ProduceRequest,
    RequestHeader,
};

fn encode<M: Message>(m: &M, version: i16) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    m.encode(&mut out, version).map(|()| out)
}

#[test]
fn non_ignorable_field_in_old_version_is_an_error() {
    // AllowAutoTopicCreation exists from v4 and is not ignorable: false cannot be said before.
    let req = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert_eq!(
        encode(&req, 3),
        Err(EncodeError::FieldNotInVersion {
            message: "MetadataRequest",
            field: "AllowAutoTopicCreation",
            version: 3
        })
    );
    assert!(encode(&req, 4).is_ok());
    // Its default (true) is fine at v3.
    assert!(encode(&MetadataRequest::default(), 3).is_ok());

    // A transactional id cannot be sent in Produce v2.
    let tx = ProduceRequest {
        transactional_id: Some("tx".into()),
        ..Default::default()
    };
    assert!(matches!(
        encode(&tx, 2),
        Err(EncodeError::FieldNotInVersion {
            field: "TransactionalId",
            version: 2,
            ..
        })
    ));
    assert!(encode(&tx, 3).is_ok());
}

#[test]
fn ignorable_field_in_old_version_is_dropped() {
    let req = ApiVersionsRequest {
        client_software_name: "kafkit".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    // v0-v2 have an empty body: the names are silently dropped.
    for v in 0..=2 {
        assert_eq!(encode(&req, v), Ok(vec![]));
    }
    // The client id of a v0 request header is ignorable too.
    let header = RequestHeader {
        request_api_key: 18,
        client_id: Some("kafkit".into()),
        ..Default::default()
    };
    assert_eq!(encode(&header, 0).unwrap().len(), 8);
}

#[test]
fn null_in_non_nullable_version_is_an_error() {
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        encode(&all, 0),
        Err(EncodeError::NullNotAllowed {
            message: "MetadataRequest",
            field: "Topics",
            version: 0
        })
    );
    assert!(encode(&all, 1).is_ok());

    // Topic names are nullable from v10 only (when topic ids are used).
    let by_id = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: None,
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert_eq!(
        encode(&by_id, 9),
        Err(EncodeError::NullNotAllowed {
            message: "MetadataRequestTopic",
            field: "Name",
            version: 9
        })
    );
    assert!(encode(&by_id, 10).is_ok());
}

#[test]
fn unknown_tagged_fields_need_a_flexible_version() {
    let req = ApiVersionsRequest {
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 5,
            data: Bytes::from_static(b"x"),
        }],
        ..Default::default()
    };
    assert!(matches!(
        encode(&req, 2),
        Err(EncodeError::FieldNotInVersion {
            field: "unknown_tagged_fields",
            ..
        })
    ));
    assert_eq!(
        encode(&req, 3),
        Ok(vec![
            0x01, // client_software_name: COMPACT_STRING "" (length+1 = 1)
            0x01, // client_software_version: ""
            0x01, // TAG_BUFFER: 1 field
            0x05, //   tag 5
            0x01, //   size 1
            b'x', //   data
        ])
    );
}

#[test]
fn unsupported_versions_are_rejected() {
    let (lo, hi) = FetchRequest::VERSIONS;
    for v in [lo - 1, hi + 1, i16::MIN, i16::MAX] {
        assert!(matches!(
            encode(&FetchRequest::default(), v),
            Err(EncodeError::UnsupportedVersion {
                message: "FetchRequest",
                ..
            })
        ));
        assert!(matches!(
            FetchRequest::decode(&mut Reader::new(Bytes::from_static(&[0; 64])), v),
            Err(DecodeError::UnsupportedVersion {
                message: "FetchRequest",
                ..
            })
        ));
    }
}

#[test]
fn encode_request_checks_the_header() {
    let header = RequestHeader {
        request_api_key: 3, // Metadata, not ApiVersions
        request_api_version: 3,
        ..Default::default()
    };
    let mut out = Vec::new();
    assert!(encode_request(&header, &ApiVersionsRequest::default(), 3, &mut out).is_err());
}

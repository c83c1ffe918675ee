//! Truncated and corrupted input: decoders return errors, never panic, never over-allocate.

use bytes::Bytes;
use kafkit_core::codec::{DecodeError, Reader};
use kafkit_core::protocol::{decode_request_frame, ApiKey, Message, RequestBody, ResponseBody};

/// Every strict prefix of a valid encoding must fail to decode (a decoder that consumed all of
/// the full input needs bytes the prefix lacks).
fn check_prefixes(
    name: &str,
    version: i16,
    bytes: &[u8],
    decode: impl Fn(&mut Reader) -> Result<(), DecodeError>,
) {
    for len in 0..bytes.len() {
        let mut r = Reader::new(Bytes::copy_from_slice(&bytes[..len]));
        assert!(
            decode(&mut r).is_err(),
            "{name} v{version}: prefix of {len}/{} bytes decoded",
            bytes.len()
        );
    }
}

#[test]
fn short_and_garbage_frames_are_errors() {
    for frame in [&[][..], &[0], &[0, 0, 0], &[0xff, 0xff, 0, 0, 0, 0, 0, 0]] {
        assert!(decode_request_frame(Bytes::copy_from_slice(frame)).is_err());
    }
    // A huge array count in a tiny input is refused before allocating.
    let mut frame = vec![0x00, 0x03, 0x00, 0x01, 0, 0, 0, 1, 0xff, 0xff]; // Metadata v1, null client id
    frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]); // topics: 2^31-1 elements
    assert!(matches!(
        decode_request_frame(Bytes::from(frame)),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
    // Unknown API key.
    let frame = vec![0x7f, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0xff, 0xff];
    assert_eq!(
        decode_request_frame(Bytes::from(frame)),
        Err(DecodeError::UnknownApiKey(0x7f00))
    );
}

#[test]
fn arbitrary_bytes_never_panic_any_api() {
    // Deterministic pseudo-random inputs for every API and version, both directions.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for &api in ApiKey::ALL {
        let (lo, hi) = api.request_versions();
        for version in lo..=hi {
            for _ in 0..20 {
                let len = (next() % 64) as usize;
                let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let _ =
                    RequestBody::decode(api, version, &mut Reader::new(Bytes::from(data.clone())));
                let _ = ResponseBody::decode(api, version, &mut Reader::new(Bytes::from(data)));
            }
        }
    }
}

#[test]
fn prefixes_of_fixed_encodings_fail() {
    use kafkit_core::protocol::{ApiVersionsResponse, ProduceRequest};
    let resp = ApiVersionsResponse {
        finalized_features_epoch: 3,
        ..Default::default()
    };
    for v in 0..=4 {
        let mut bytes = Vec::new();
        resp.encode(&mut bytes, v).unwrap();
        check_prefixes("ApiVersionsResponse", v, &bytes, |r| {
            ApiVersionsResponse::decode(r, v).map(drop)
        });
    }
    let req = ProduceRequest::default();
    for v in 0..=11 {
        let mut bytes = Vec::new();
        req.encode(&mut bytes, v).unwrap();
        check_prefixes("ProduceRequest", v, &bytes, |r| {
            ProduceRequest::decode(r, v).map(drop)
        });
    }
}

#[cfg(feature = "fuzzing")]
mod random {
    use super::*;
    use kafkit_core::protocol::testing::{visit_all, MessageVisitor, Rng};

    /// For random valid values of every message and version: all strict prefixes fail, and
    /// byte flips never panic (and what decodes re-encodes).
    struct Corrupt {
        rng: Rng,
        encodings: usize,
    }

    impl MessageVisitor for Corrupt {
        fn visit<M: Message>(&mut self, random: fn(&mut Rng, i16) -> M) -> Result<(), String> {
            let (lo, hi) = M::VERSIONS;
            for version in lo..=hi {
                for _ in 0..3 {
                    let value = random(&mut self.rng, version);
                    let mut bytes = Vec::new();
                    value
                        .encode(&mut bytes, version)
                        .map_err(|e| e.to_string())?;
                    self.encodings += 1;
                    check_prefixes(M::NAME, version, &bytes, |r| {
                        M::decode(r, version).map(drop)
                    });
                    if bytes.is_empty() {
                        continue;
                    }
                    for _ in 0..16 {
                        let mut bad = bytes.clone();
                        for _ in 0..=self.rng.below(3) {
                            let i = self.rng.below(bad.len() as u64) as usize;
                            bad[i] ^= 1 << self.rng.below(8);
                        }
                        let mut r = Reader::new(Bytes::from(bad));
                        if let Ok(m) = M::decode(&mut r, version) {
                            // A value that decodes must be encodable again.
                            let mut again = Vec::new();
                            if let Err(e) = m.encode(&mut again, version) {
                                // Only values the wire can carry but the writer refuses: none
                                // are expected, so report them.
                                return Err(format!(
                                    "{} v{version}: decoded but cannot re-encode: {e}",
                                    M::NAME
                                ));
                            }
                        }
                    }
                }
            }
            Ok(())
        }
    }

    #[test]
    fn every_message_truncated_and_flipped() {
        for seed in 0..4 {
            let mut v = Corrupt {
                rng: Rng::new(seed),
                encodings: 0,
            };
            visit_all(&mut v).unwrap();
            assert!(v.encodings > 1000);
        }
    }

    #[test]
    fn random_frames_never_panic() {
        let mut rng = Rng::new(7);
        for &api in ApiKey::ALL {
            let (lo, hi) = api.request_versions();
            for version in lo..=hi {
                let body = RequestBody::random(api, version, &mut rng);
                let header = kafkit_core::protocol::RequestHeader {
                    request_api_key: api.as_i16(),
                    request_api_version: version,
                    correlation_id: 1,
                    client_id: Some("c".into()),
                    ..Default::default()
                };
                let mut frame = Vec::new();
                header
                    .encode(
                        &mut frame,
                        kafkit_core::protocol::request_header_version(api, version),
                    )
                    .unwrap();
                body.encode(&mut frame, version).unwrap();
                let (h, b) = decode_request_frame(Bytes::from(frame.clone())).unwrap();
                assert_eq!((h, &b), (header, &body));
                for _ in 0..8 {
                    let mut bad = frame.clone();
                    let i = rng.below(bad.len() as u64) as usize;
                    bad[i] = rng.next_u64() as u8;
                    let _ = decode_request_frame(Bytes::from(bad));
                }
            }
        }
    }
}

//! A request's frame (`int32` size, request header, body), as the pieces the driver writes.
//!
//! Most requests are one piece: one buffer holding the whole frame. A Produce request is the
//! exception that matters for speed: nearly all of its bytes are record batches the producer
//! already holds as [`Bytes`]. Copying them into a fresh frame buffer cost a `memcpy` of every
//! byte sent plus the page faults of a new buffer per request (a third of the producer's
//! page faults in the 100-byte-record profile of issue 9). So each batch of at least
//! [`SPLICE_MIN`] bytes goes out as its own piece, sharing the producer's buffer, between
//! pieces of one small buffer holding everything else. Concatenated, the pieces are exactly
//! the bytes of the generated encoder's frame (tested below for every version).
//!
//! Drivers write the pieces in order as one stream; they gather consecutive pieces into one
//! vectored write, so more pieces do not mean more system calls.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{EncodeError, Writer};
use crate::protocol::{Message, ProduceRequest, RequestBody, RequestHeader};

/// Smallest record set sent as a piece of its own rather than copied into the frame buffer.
/// Below it a copy is cheaper than the bookkeeping of one more piece (and a lingered batch
/// of a few records stays in one buffer with the rest).
pub(crate) const SPLICE_MIN: usize = 1024;

/// Room for a request's frame before encoding it (the copied part only, for Produce). A
/// Produce request carries whole record batches (up to `max_request_size`), and growing its
/// buffer from a small start meant a dozen reallocations and copies per request; its size is
/// known closely enough from the batches' lengths (an under-estimate only costs one more
/// growth). Other requests are small.
fn frame_size_hint(body: &RequestBody, client_id: Option<&str>) -> usize {
    /// Size prefix, header fields, and slack for lengths, tags and the fixed fields.
    const FIXED: usize = 64;
    /// Per topic or partition entry: index, lengths and tag sections.
    const ENTRY: usize = 16;
    let base = FIXED + client_id.map_or(0, str::len);
    match body {
        RequestBody::Produce(req) => {
            let topics: usize = req
                .topic_data
                .iter()
                .map(|t| {
                    ENTRY
                        + t.name.len()
                        + t.partition_data
                            .iter()
                            .map(|p| {
                                let copied = p.records.as_ref().map_or(0, Bytes::len);
                                ENTRY + if copied >= SPLICE_MIN { 0 } else { copied }
                            })
                            .sum::<usize>()
                })
                .sum();
            base + req.transactional_id.as_ref().map_or(0, String::len) + topics
        }
        _ => base,
    }
}

/// Encodes `header` (at `header_version`) and `body` (at `version`) as one frame and appends
/// its pieces to `out`. On error nothing is appended.
pub(crate) fn encode_request(
    header: &RequestHeader,
    header_version: i16,
    body: &RequestBody,
    version: i16,
    out: &mut VecDeque<Bytes>,
) -> Result<(), EncodeError> {
    let mut buf = BytesMut::with_capacity(frame_size_hint(body, header.client_id.as_deref()));
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    let mut spliced = Vec::new();
    // Produce v12 and TxnOffsetCommit v5 (KIP-890) are written as the version before.
    let version = crate::protocol::layout_version(body.api_key(), version);
    let fallback;
    let body = match body {
        // KIP-447's flag exists from OffsetFetch v7 (Kafka 2.5) and is not ignorable. Older
        // brokers never answer with a transaction's pending offsets anyway (only the last
        // committed one), so the request goes without it, as Java's request builder sends
        // it, instead of failing. Rare (old brokers only) and small: the copy costs nothing.
        RequestBody::OffsetFetch(req) if req.require_stable && version < 7 => {
            tracing::debug!(version, "OffsetFetch below v7: sent without require_stable");
            let mut req = req.clone();
            req.require_stable = false;
            fallback = RequestBody::OffsetFetch(req);
            &fallback
        }
        _ => body,
    };
    match body {
        RequestBody::Produce(req) if splices(req, version) => {
            encode_produce(req, version, &mut buf, &mut spliced)?;
        }
        _ => body.encode(&mut buf, version)?,
    }
    let shared: usize = spliced.iter().map(|(_, b)| b.len()).sum();
    let size = buf.len() - 4 + shared;
    let Ok(size) = i32::try_from(size) else {
        return Err(EncodeError::TooLong {
            what: "request frame",
            len: size,
            max: i32::MAX as usize,
        });
    };
    buf[..4].copy_from_slice(&size.to_be_bytes());
    let mut own = buf.freeze();
    let mut at = 0;
    for (cut, batch) in spliced {
        out.push_back(own.split_to(cut - at));
        at = cut;
        out.push_back(batch);
    }
    if !own.is_empty() {
        out.push_back(own);
    }
    Ok(())
}

/// Whether [`encode_produce`] handles `req` at `version`: a version it mirrors, with a
/// record set worth sharing. Anything else (including requests the generated encoder
/// refuses) goes through the generated encoder, which reports the error.
fn splices(req: &ProduceRequest, version: i16) -> bool {
    let flexible = version >= 9;
    let tags_fit = |tags: &[crate::codec::RawTaggedField]| flexible || tags.is_empty();
    (3..=11).contains(&version)
        && tags_fit(&req.unknown_tagged_fields)
        && req.topic_data.iter().all(|t| {
            tags_fit(&t.unknown_tagged_fields)
                && t.partition_data
                    .iter()
                    .all(|p| tags_fit(&p.unknown_tagged_fields))
        })
        && req.topic_data.iter().any(|t| {
            t.partition_data
                .iter()
                .any(|p| p.records.as_ref().is_some_and(|r| r.len() >= SPLICE_MIN))
        })
}

/// The generated `ProduceRequest` encoding for versions 3-11, field for field, except that a
/// record set of [`SPLICE_MIN`] bytes or more is not copied: its length prefix is written and
/// the set is recorded in `spliced` with the offset in `buf` where it goes.
fn encode_produce(
    req: &ProduceRequest,
    version: i16,
    buf: &mut BytesMut,
    spliced: &mut Vec<(usize, Bytes)>,
) -> Result<(), EncodeError> {
    let flexible = version >= 9;
    buf.put_nullable_string(req.transactional_id.as_deref(), flexible)?;
    buf.put_i16(req.acks);
    buf.put_i32(req.timeout_ms);
    buf.put_array_len(Some(req.topic_data.len()), flexible)?;
    for topic in &req.topic_data {
        buf.put_string(&topic.name, flexible)?;
        buf.put_array_len(Some(topic.partition_data.len()), flexible)?;
        for p in &topic.partition_data {
            buf.put_i32(p.index);
            match &p.records {
                Some(records) if records.len() >= SPLICE_MIN => {
                    buf.put_len(Some(records.len()), flexible, true, "bytes")?;
                    spliced.push((buf.len(), records.clone()));
                }
                records => buf.put_nullable_byte_field(records.as_deref(), flexible)?,
            }
            if flexible {
                buf.put_tagged_fields(&[], &p.unknown_tagged_fields);
            }
        }
        if flexible {
            buf.put_tagged_fields(&[], &topic.unknown_tagged_fields);
        }
    }
    if flexible {
        buf.put_tagged_fields(&[], &req.unknown_tagged_fields);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::RawTaggedField;
    use crate::protocol::generated::produce::request::{PartitionProduceData, TopicProduceData};
    use crate::protocol::{self, ApiKey};

    fn header(version: i16) -> RequestHeader {
        RequestHeader {
            request_api_key: ApiKey::Produce.as_i16(),
            request_api_version: version,
            correlation_id: 7,
            client_id: Some("kafkit-test".into()),
            ..Default::default()
        }
    }

    /// The generated encoder's frame: the reference every piece list must join into.
    fn reference(body: &RequestBody, version: i16) -> Vec<u8> {
        let hv = protocol::request_header_version(ApiKey::Produce, version);
        let mut buf = Vec::new();
        buf.put_i32(0);
        header(version).encode(&mut buf, hv).unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        buf
    }

    fn pieces(body: &RequestBody, version: i16) -> Vec<Bytes> {
        let hv = protocol::request_header_version(ApiKey::Produce, version);
        let mut out = VecDeque::new();
        encode_request(&header(version), hv, body, version, &mut out).unwrap();
        out.into()
    }

    fn records(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn tags(flexible: bool, n: u32) -> Vec<RawTaggedField> {
        if !flexible {
            return Vec::new();
        }
        (0..n)
            .map(|i| RawTaggedField {
                tag: 10 + i,
                data: vec![i as u8; i as usize + 1].into(),
            })
            .collect()
    }

    fn request(version: i16, sizes: &[&[Option<usize>]], txn: Option<&str>) -> RequestBody {
        let flexible = version >= 9;
        RequestBody::Produce(ProduceRequest {
            transactional_id: txn.map(str::to_owned),
            acks: -1,
            timeout_ms: 30_000,
            topic_data: sizes
                .iter()
                .enumerate()
                .map(|(t, parts)| TopicProduceData {
                    name: format!("topic-{t}"),
                    partition_data: parts
                        .iter()
                        .enumerate()
                        .map(|(p, len)| PartitionProduceData {
                            index: p as i32 * 3,
                            records: len.map(|len| records(len, (t * 16 + p) as u8)),
                            unknown_tagged_fields: tags(flexible, (p % 3) as u32),
                        })
                        .collect(),
                    unknown_tagged_fields: tags(flexible, (t % 2) as u32),
                })
                .collect(),
            unknown_tagged_fields: tags(flexible, 1),
        })
    }

    #[test]
    fn pieces_join_into_the_generated_frame_at_every_version() {
        let shapes: &[&[&[Option<usize>]]] = &[
            &[&[Some(16_384)]],
            &[&[Some(16_384), Some(900), None, Some(0), Some(SPLICE_MIN)]],
            &[
                &[Some(SPLICE_MIN - 1)],
                &[Some(200_000), Some(SPLICE_MIN + 1)],
            ],
            &[&[], &[Some(5_000)], &[Some(10), Some(70_000)]],
            // Lengths whose compact prefix takes 1, 2 and 3 bytes.
            &[&[
                Some(126),
                Some(127),
                Some(16_382),
                Some(16_383),
                Some(16_384),
            ]],
        ];
        for version in 3..=11 {
            for shape in shapes {
                for txn in [None, Some("txn-1")] {
                    let body = request(version, shape, txn);
                    let want = reference(&body, version);
                    let got = pieces(&body, version);
                    assert_eq!(got.concat(), want, "v{version} {shape:?} {txn:?}");
                    let size = i32::from_be_bytes(got[0][..4].try_into().unwrap());
                    assert_eq!(size as usize, want.len() - 4);
                }
            }
        }
    }

    #[test]
    fn large_record_sets_share_the_producer_s_buffer() {
        let body = request(9, &[&[Some(16_384), Some(500), Some(40_000)]], None);
        let RequestBody::Produce(req) = &body else {
            unreachable!()
        };
        let sets: Vec<&Bytes> = req.topic_data[0]
            .partition_data
            .iter()
            .map(|p| p.records.as_ref().unwrap())
            .collect();
        let got = pieces(&body, 9);
        // own, set 0, own (with the 500-byte set copied), set 2, own (tags).
        assert_eq!(
            got.len(),
            5,
            "{:?}",
            got.iter().map(Bytes::len).collect::<Vec<_>>()
        );
        assert_eq!(got[1].as_ptr(), sets[0].as_ptr());
        assert_eq!(got[3].as_ptr(), sets[2].as_ptr());
        assert!(
            got[2].len() > 500,
            "the small set is copied into the frame buffer"
        );
    }

    #[test]
    fn small_requests_and_other_apis_are_one_piece() {
        let body = request(11, &[&[Some(100), None, Some(SPLICE_MIN - 1)]], None);
        assert_eq!(pieces(&body, 11).len(), 1);
        assert_eq!(pieces(&body, 11)[0], reference(&body, 11));
        // Versions the splicing encoder does not mirror use the generated one.
        let old = request(2, &[&[Some(20_000)]], None);
        assert_eq!(pieces(&old, 2).len(), 1);
        assert_eq!(pieces(&old, 2)[0], reference(&old, 2));
    }

    #[test]
    fn what_the_generated_encoder_refuses_is_still_refused_and_nothing_is_queued() {
        // Tagged fields before version 9 cannot be written.
        let mut body = request(9, &[&[Some(20_000)]], None);
        let RequestBody::Produce(req) = &mut body else {
            unreachable!()
        };
        req.topic_data[0].partition_data[0].unknown_tagged_fields = tags(true, 1);
        let hv = protocol::request_header_version(ApiKey::Produce, 8);
        let mut out = VecDeque::new();
        let err = encode_request(&header(8), hv, &body, 8, &mut out).unwrap_err();
        assert!(
            matches!(err, EncodeError::FieldNotInVersion { .. }),
            "{err:?}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn offset_fetch_goes_without_require_stable_below_v7_as_java_sends_it() {
        use crate::protocol::generated::offset_fetch::request::OffsetFetchRequest;
        let frame = |req: &OffsetFetchRequest, version: i16| {
            let api = ApiKey::OffsetFetch;
            let header = RequestHeader {
                request_api_key: api.as_i16(),
                request_api_version: version,
                ..header(version)
            };
            let hv = protocol::request_header_version(api, version);
            let mut out = VecDeque::new();
            encode_request(
                &header,
                hv,
                &RequestBody::OffsetFetch(req.clone()),
                version,
                &mut out,
            )
            .map(|()| out.into_iter().flatten().collect::<Vec<u8>>())
        };
        let stable = OffsetFetchRequest {
            group_id: "g".into(),
            require_stable: true,
            ..Default::default()
        };
        let plain = OffsetFetchRequest {
            require_stable: false,
            ..stable.clone()
        };
        for version in 0..7 {
            assert_eq!(
                frame(&stable, version),
                frame(&plain, version),
                "v{version}"
            );
        }
        // From v7 the flag is on the wire.
        assert_ne!(frame(&stable, 7).unwrap(), frame(&plain, 7).unwrap());
        // The generated encoder alone still refuses it: only the frame encoder falls back.
        let mut buf = Vec::new();
        let err = RequestBody::OffsetFetch(stable)
            .encode(&mut buf, 6)
            .unwrap_err();
        assert!(
            matches!(err, EncodeError::FieldNotInVersion { .. }),
            "{err:?}"
        );
    }
}

//! Byte vectors written by hand from Kafka's protocol documentation (the "Record Batch",
//! "Record", "Message Sets" sections of the Kafka protocol guide), not produced by our
//! encoders. Only the CRCs are computed here, with the `crc32c`/`crc32fast` crates directly.

use bytes::Bytes;
use kafkit_core::compression::{lz4, snappy, Compression};
use kafkit_core::records::{
    Batch, ControlRecord, DecodeOptions, Header, LegacyBatch, LegacyMessageSetBuilder, RecordBatch,
    RecordBatchBuilder, RecordSet, TimestampType,
};

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

/// Fills the CRC-32C of a magic 2 batch (bytes 17..21, over 21..end).
fn fix_crc32c(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Fills the CRC-32 of a magic 0/1 message (bytes 12..16, over 16..end).
fn fix_crc32(msg: &mut [u8]) {
    let crc = crc32fast::hash(&msg[16..]);
    msg[12..16].copy_from_slice(&crc.to_be_bytes());
}

/// One uncompressed magic 2 batch holding one record with key "k", value "v" and one header
/// h="x", timestamp 1000, written by a non-idempotent producer.
fn v2_one_record() -> Vec<u8> {
    let mut b = vec![
        0, 0, 0, 0, 0, 0, 0, 0, // baseOffset: 0
        0, 0, 0, 62, // batchLength: 74 bytes in all - 12
        0xFF, 0xFF, 0xFF, 0xFF, // partitionLeaderEpoch: -1
        2,    // magic: 2
        0, 0, 0, 0, // crc: filled below
        0, 0, // attributes: no codec, create time, not transactional, not control
        0, 0, 0, 0, // lastOffsetDelta: 0
        0, 0, 0, 0, 0, 0, 0x03, 0xE8, // baseTimestamp: 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xE8, // maxTimestamp: 1000
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // producerId: -1
        0xFF, 0xFF, // producerEpoch: -1
        0xFF, 0xFF, 0xFF, 0xFF, // baseSequence: -1
        0, 0, 0, 1, // records count: 1
        // record (varints are zigzag: n -> 2n for n >= 0, -1 -> 1)
        0x18, // length: 12
        0x00, // attributes
        0x00, // timestampDelta: 0
        0x00, // offsetDelta: 0
        0x02, b'k', // key length 1, key "k"
        0x02, b'v', // value length 1, value "v"
        0x02, // header count: 1
        0x02, b'h', // header key length 1, "h"
        0x02, b'x', // header value length 1, "x"
    ];
    assert_eq!(b.len(), 74);
    fix_crc32c(&mut b);
    b
}

#[test]
fn v2_batch_by_hand_decodes() {
    let raw = v2_one_record();
    let batch = RecordBatch::decode(Bytes::from(raw.clone()), &opts()).unwrap();
    let h = batch.header();
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.batch_length, 62);
    assert_eq!(h.partition_leader_epoch, -1);
    assert_eq!(h.magic, 2);
    assert_eq!(h.last_offset_delta, 0);
    assert_eq!((h.base_timestamp, h.max_timestamp), (1000, 1000));
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (-1, -1, -1)
    );
    assert_eq!(batch.compression(), Compression::None);
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert!(!batch.is_control() && !batch.is_transactional());
    let recs = batch.decode_records().unwrap();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.offset, r.timestamp), (0, 1000));
    assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
    assert_eq!(r.headers.to_vec(), vec![Header::new("h", &b"x"[..])]);
    assert_eq!(r.headers.get("h"), Some(Some(Bytes::from_static(b"x"))));
    assert_eq!(r.headers.get("nope"), None);
}

#[test]
fn v2_batch_by_hand_equals_our_encoding() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(1000, Some(b"k"), Some(b"v"), &[Header::new("h", &b"x"[..])])
        .unwrap();
    assert_eq!(b.finish().unwrap().as_ref(), &v2_one_record()[..]);
}

#[test]
fn v2_control_batch_by_hand() {
    // A COMMIT marker from coordinator epoch 7, producer 42 epoch 3, at offset 100.
    let mut b = vec![
        0, 0, 0, 0, 0, 0, 0, 100, // baseOffset: 100
        0, 0, 0, 0, // batchLength: filled below
        0, 0, 0, 5, // partitionLeaderEpoch: 5
        2, // magic
        0, 0, 0, 0, // crc
        0, 0x30, // attributes: transactional (bit 4) | control (bit 5)
        0, 0, 0, 0, // lastOffsetDelta: 0
        0, 0, 0, 0, 0, 0, 0, 9, // baseTimestamp: 9
        0, 0, 0, 0, 0, 0, 0, 9, // maxTimestamp: 9
        0, 0, 0, 0, 0, 0, 0, 42, // producerId: 42
        0, 3, // producerEpoch: 3
        0xFF, 0xFF, 0xFF, 0xFF, // baseSequence: -1
        0, 0, 0, 1,    // records count
        0x20, // record length: 16
        0, 0, 0, // attributes, timestampDelta, offsetDelta
        0x08, 0, 0, 0, 1, // key length 4: version 0, type 1 (COMMIT)
        0x0C, 0, 0, 0, 0, 0, 7,    // value length 6: version 0, coordinatorEpoch 7
        0x00, // no headers
    ];
    let len = (b.len() - 12) as u32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    fix_crc32c(&mut b);
    let batch = RecordBatch::decode(Bytes::from(b.clone()), &opts()).unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(
        batch.control_record().unwrap(),
        Some(ControlRecord::commit(7))
    );
    // Our encoder writes the same bytes.
    let mut enc = RecordBatchBuilder::new(Compression::None)
        .base_offset(100)
        .partition_leader_epoch(5)
        .producer(42, 3, -1)
        .transactional(true)
        .control(true);
    enc.append_control(9, &ControlRecord::commit(7)).unwrap();
    assert_eq!(enc.finish().unwrap().as_ref(), &b[..]);
}

/// A magic 0 message at offset 5: null key, value "hi".
fn v0_message() -> Vec<u8> {
    let mut m = vec![
        0, 0, 0, 0, 0, 0, 0, 5, // offset: 5
        0, 0, 0, 16, // message size: 4 crc + 1 magic + 1 attributes + 4 key + 6 value
        0, 0, 0, 0, // crc: filled below
        0, // magic: 0
        0, // attributes: no codec
        0xFF, 0xFF, 0xFF, 0xFF, // key: null
        0, 0, 0, 2, b'h', b'i', // value: "hi"
    ];
    fix_crc32(&mut m);
    m
}

/// A magic 1 message at offset 7: key "a", value "b", create time 1234567890123.
fn v1_message() -> Vec<u8> {
    let mut m = vec![
        0, 0, 0, 0, 0, 0, 0, 7, // offset: 7
        0, 0, 0, 24, // message size: 4 + 1 + 1 + 8 timestamp + 5 key + 5 value
        0, 0, 0, 0, // crc
        1, // magic: 1
        0, // attributes: no codec, create time
        0x00, 0x00, 0x01, 0x1F, 0x71, 0xFB, 0x04, 0xCB, // timestamp: 1234567890123
        0, 0, 0, 1, b'a', // key: "a"
        0, 0, 0, 1, b'b', // value: "b"
    ];
    fix_crc32(&mut m);
    m
}

#[test]
fn v0_message_by_hand() {
    let m = LegacyBatch::decode(Bytes::from(v0_message()), &opts()).unwrap();
    assert_eq!((m.magic(), m.offset(), m.timestamp()), (0, 5, -1));
    let r = &m.records()[0];
    assert_eq!((r.offset, r.timestamp, r.key.clone()), (5, -1, None));
    assert_eq!(r.value.as_deref(), Some(&b"hi"[..]));
    let mut enc = LegacyMessageSetBuilder::new(0, Compression::None)
        .unwrap()
        .base_offset(5);
    enc.append(123, None, Some(b"hi")).unwrap();
    assert_eq!(enc.finish().unwrap().as_ref(), &v0_message()[..]);
}

#[test]
fn v1_message_by_hand() {
    let m = LegacyBatch::decode(Bytes::from(v1_message()), &opts()).unwrap();
    assert_eq!((m.magic(), m.offset()), (1, 7));
    assert_eq!(m.timestamp_type(), TimestampType::CreateTime);
    let r = &m.records()[0];
    assert_eq!((r.offset, r.timestamp), (7, 1_234_567_890_123));
    assert_eq!(r.key.as_deref(), Some(&b"a"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"b"[..]));
    let mut enc = LegacyMessageSetBuilder::new(1, Compression::None)
        .unwrap()
        .base_offset(7);
    enc.append(1_234_567_890_123, Some(b"a"), Some(b"b"))
        .unwrap();
    assert_eq!(enc.finish().unwrap().as_ref(), &v1_message()[..]);
}

#[test]
fn mixed_magic_record_set() {
    let mut set = v0_message();
    set.extend(v1_message());
    set.extend(v2_one_record());
    let batches: Vec<Batch> = RecordSet::new(Bytes::from(set), opts())
        .collect::<Result<_, _>>()
        .unwrap();
    let magics: Vec<i8> = batches.iter().map(Batch::magic).collect();
    assert_eq!(magics, vec![0, 1, 2]);
    let offsets: Vec<i64> = batches
        .into_iter()
        .flat_map(|b| b.into_records().unwrap())
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![5, 7, 0]);
}

/// Appends a magic 1 message to `out` (fields written one by one from the spec).
fn push_v1(out: &mut Vec<u8>, offset: i64, attributes: i8, ts: i64, value: &[u8]) {
    let start = out.len();
    out.extend(offset.to_be_bytes());
    out.extend(((4 + 1 + 1 + 8 + 4 + 4 + value.len()) as i32).to_be_bytes());
    out.extend([0; 4]); // crc
    out.push(1); // magic
    out.push(attributes as u8);
    out.extend(ts.to_be_bytes());
    out.extend((-1i32).to_be_bytes()); // null key
    out.extend((value.len() as i32).to_be_bytes());
    out.extend(value);
    fix_crc32(&mut out[start..]);
}

#[test]
fn v1_snappy_wrapper_by_hand_has_relative_offsets() {
    // Inner set: two magic 1 messages at relative offsets 0 and 1.
    let mut inner = Vec::new();
    push_v1(&mut inner, 0, 0, 100, b"a");
    push_v1(&mut inner, 1, 0, 200, b"b");
    assert_eq!(inner.len(), 70);
    // Snappy block: varint uncompressed length 70, then one literal of 70 bytes
    // (tag 60 << 2 = 0xF0 says "length - 1 in the next byte").
    let mut block = vec![70, 0xF0, 69];
    block.extend(&inner);
    // xerial framing, as snappy-java writes it: magic, version 1, compatible version 1, then
    // the block with an int32 length.
    let mut value = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    value.extend((block.len() as i32).to_be_bytes());
    value.extend(&block);
    // Wrapper at offset 11 (the last inner message's absolute offset), codec 2 (snappy).
    let mut wrapper = Vec::new();
    push_v1(&mut wrapper, 11, 2, 200, &value);
    let m = LegacyBatch::decode(Bytes::from(wrapper), &opts()).unwrap();
    let got: Vec<(i64, i64, Vec<u8>)> = m
        .records()
        .iter()
        .map(|r| (r.offset, r.timestamp, r.value.as_deref().unwrap().to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![(10, 100, b"a".to_vec()), (11, 200, b"b".to_vec())]
    );
    assert_eq!((m.base_offset(), m.last_offset()), (10, 11));
}

#[test]
fn java_xerial_snappy_bytes_decode_and_we_write_the_same() {
    // What snappy-java's SnappyOutputStream writes for "hello": the 16-byte header, the
    // block length 7, and a raw snappy block (varint length 5, literal tag (5-1)<<2, bytes).
    let java: &[u8] = &[
        0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, // magic
        0x00, 0x00, 0x00, 0x01, // version 1
        0x00, 0x00, 0x00, 0x01, // compatible version 1
        0x00, 0x00, 0x00, 0x07, // block length
        0x05, 0x10, b'h', b'e', b'l', b'l', b'o', // raw snappy block
    ];
    assert_eq!(snappy::decompress(java, 100).unwrap(), b"hello");
    let mut ours = Vec::new();
    snappy::compress(b"hello", &mut ours);
    assert_eq!(&ours[..], java);
}

#[test]
fn legacy_lz4_frame_with_kafka_08_header_checksum() {
    // An LZ4 frame as Kafka 0.8-0.9 wrote it: FLG 0x60, BD 0x40, and a header checksum
    // computed over the magic number as well as FLG and BD; one uncompressed block "hello"
    // (size with the high bit set), then the end mark.
    let mut frame = vec![0x04, 0x22, 0x4D, 0x18, 0x60, 0x40];
    let broken_hc = (lz4::xxh32(&frame[..6], 0) >> 8) as u8;
    let correct_hc = (lz4::xxh32(&frame[4..6], 0) >> 8) as u8;
    assert_eq!(
        correct_hc, 0x82,
        "the HC every Kafka LZ4 frame header carries"
    );
    assert_ne!(broken_hc, correct_hc);
    frame.push(broken_hc);
    frame.extend([0x05, 0x00, 0x00, 0x80]);
    frame.extend(b"hello");
    frame.extend([0, 0, 0, 0]);
    assert_eq!(lz4::decompress(&frame, 100, true).unwrap(), b"hello");
    assert!(lz4::decompress(&frame, 100, false).is_err());

    // The same frame inside a magic 0 wrapper decodes; inside magic 1 it does not.
    let mut inner = v0_message();
    inner[..8].copy_from_slice(&9i64.to_be_bytes());
    fix_crc32(&mut inner);
    let mut block_frame = vec![0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, broken_hc];
    block_frame.extend(((inner.len() as u32) | 0x8000_0000).to_le_bytes());
    block_frame.extend(&inner);
    block_frame.extend([0, 0, 0, 0]);
    let mut wrapper = Vec::new();
    wrapper.extend(9i64.to_be_bytes());
    wrapper.extend(((4 + 1 + 1 + 4 + 4 + block_frame.len()) as i32).to_be_bytes());
    wrapper.extend([0; 4]);
    wrapper.push(0); // magic 0
    wrapper.push(3); // lz4
    wrapper.extend((-1i32).to_be_bytes());
    wrapper.extend((block_frame.len() as i32).to_be_bytes());
    wrapper.extend(&block_frame);
    fix_crc32(&mut wrapper);
    let m = LegacyBatch::decode(Bytes::from(wrapper.clone()), &opts()).unwrap();
    assert_eq!(m.records()[0].offset, 9);
    assert_eq!(m.records()[0].value.as_deref(), Some(&b"hi"[..]));

    // Our magic 0 lz4 encoder writes the broken checksum too, as Java does for magic 0.
    let mut enc = LegacyMessageSetBuilder::new(0, Compression::Lz4).unwrap();
    enc.append(0, None, Some(b"hi")).unwrap();
    let ours = enc.finish().unwrap();
    assert_eq!(ours[16 + 2 + 8 + 6], broken_hc);
}

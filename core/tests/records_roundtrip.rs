//! Property tests: what the builders write, the decoders read back exactly, for every codec.

use bytes::Bytes;
use kafkit_core::compression::Compression;
use kafkit_core::records::{
    Batch, ControlRecord, DecodeOptions, Header, LegacyMessageSetBuilder, Record, RecordBatch,
    RecordBatchBuilder, RecordSet, TimestampType,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct In {
    gap: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => prop::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    ("[a-z\u{e9}\u{4e2d}]{0,8}", bytes_opt(20)).prop_map(|(key, value)| Header {
        key,
        value: value.map(Bytes::from),
    })
}

fn record_in() -> impl Strategy<Value = In> {
    (
        prop_oneof![3 => Just(1), 1 => 1..1000i32],
        prop_oneof![
            3 => 1_600_000_000_000i64..1_700_000_000_000,
            1 => any::<i64>(),
        ],
        bytes_opt(40),
        bytes_opt(300),
        prop::collection::vec(header(), 0..4),
    )
        .prop_map(|(gap, timestamp, key, value, headers)| In {
            gap,
            timestamp,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

#[derive(Debug, Clone)]
struct BatchIn {
    codec: Compression,
    base_offset: i64,
    leader_epoch: i32,
    producer: (i64, i16, i32),
    transactional: bool,
    log_append: bool,
    records: Vec<In>,
}

fn batch_in() -> impl Strategy<Value = BatchIn> {
    (
        codec(),
        0..i64::MAX / 2,
        any::<i32>(),
        (any::<i64>(), any::<i16>(), any::<i32>()),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(record_in(), 0..25),
    )
        .prop_map(
            |(codec, base_offset, leader_epoch, producer, transactional, log_append, records)| {
                BatchIn {
                    codec,
                    base_offset,
                    leader_epoch,
                    producer,
                    transactional,
                    log_append,
                    records,
                }
            },
        )
}

/// Encodes a batch and returns it with the records a reader should see.
fn build(b: &BatchIn) -> (Bytes, Vec<Record>) {
    let ty = if b.log_append {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    let mut builder = RecordBatchBuilder::new(b.codec)
        .base_offset(b.base_offset)
        .partition_leader_epoch(b.leader_epoch)
        .producer(b.producer.0, b.producer.1, b.producer.2)
        .transactional(b.transactional)
        .timestamp_type(ty);
    let mut delta = -1i32;
    let mut expected = Vec::new();
    for r in &b.records {
        delta += r.gap;
        builder
            .append_with_offset_delta(
                delta,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )
            .unwrap();
        expected.push(Record {
            offset: b.base_offset + delta as i64,
            timestamp: r.timestamp,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r.headers.clone().into(),
        });
    }
    assert_eq!(builder.len(), b.records.len());
    let uncompressed = builder.size_in_bytes();
    let bytes = builder.finish().unwrap();
    if b.codec == Compression::None {
        assert_eq!(bytes.len(), uncompressed);
    }
    if b.log_append {
        let max = b.records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        for e in &mut expected {
            e.timestamp = max;
        }
    }
    (bytes, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn v2_batches_round_trip(b in batch_in()) {
        let (bytes, expected) = build(&b);
        let batch = RecordBatch::decode(bytes.clone(), &DecodeOptions::default()).unwrap();
        let h = batch.header();
        prop_assert_eq!(h.base_offset, b.base_offset);
        prop_assert_eq!(h.partition_leader_epoch, b.leader_epoch);
        prop_assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), b.producer);
        prop_assert_eq!(h.record_count as usize, b.records.len());
        prop_assert_eq!(batch.compression(), b.codec);
        prop_assert_eq!(batch.is_transactional(), b.transactional);
        prop_assert!(!batch.is_control());
        prop_assert_eq!(batch.timestamp_type() == TimestampType::LogAppendTime, b.log_append);
        prop_assert_eq!(batch.raw(), &bytes);
        if let Some(last) = expected.last() {
            prop_assert_eq!(batch.last_offset(), last.offset);
            prop_assert_eq!(
                h.max_timestamp,
                b.records.iter().map(|r| r.timestamp).max().unwrap()
            );
        }
        let got = batch.decode_records().unwrap();
        prop_assert_eq!(&got, &expected);
        let refs: Vec<Record> = batch.record_refs().map(|r| r.unwrap().to_record()).collect();
        prop_assert_eq!(&refs, &expected);
        // Headers read the same through every accessor.
        for (g, r) in got.iter().zip(&b.records) {
            prop_assert_eq!(g.headers.len(), r.headers.len());
            prop_assert_eq!(g.headers.to_vec(), r.headers.clone());
            if let Some(first) = r.headers.first() {
                let want = r.headers.iter().find(|h| h.key == first.key).unwrap();
                prop_assert_eq!(g.headers.get(&first.key), Some(want.value.clone()));
            }
        }
    }

    #[test]
    fn record_sets_of_several_batches(batches in prop::collection::vec(batch_in(), 1..4), cut in any::<prop::sample::Index>()) {
        let mut set = Vec::new();
        let mut all = Vec::new();
        let mut ends = Vec::new();
        for b in &batches {
            let (bytes, expected) = build(b);
            set.extend_from_slice(&bytes);
            ends.push(set.len());
            all.push(expected);
        }
        let read: Vec<Vec<Record>> = RecordSet::new(Bytes::from(set.clone()), DecodeOptions::default())
            .map(|b| b.unwrap().into_records().unwrap())
            .collect();
        prop_assert_eq!(&read, &all);

        // Cut the set anywhere: the complete batches before the cut come out, the rest is a
        // partial tail, and there is no error.
        let at = cut.index(set.len() + 1);
        let mut rs = RecordSet::new(Bytes::copy_from_slice(&set[..at]), DecodeOptions::default());
        let got: Vec<Vec<Record>> = rs
            .by_ref()
            .map(|b| b.unwrap().into_records().unwrap())
            .collect();
        let complete = ends.iter().filter(|&&e| e <= at).count();
        prop_assert_eq!(&got[..], &all[..complete]);
        let done = if complete == 0 { 0 } else { ends[complete - 1] };
        prop_assert_eq!(rs.partial_tail(), at - done);
    }

    #[test]
    fn legacy_sets_round_trip(
        magic in 0i8..=1,
        codec in prop::sample::select(vec![Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4]),
        base in 0..i64::MAX / 2,
        recs in prop::collection::vec((any::<i64>(), bytes_opt(30), bytes_opt(200)), 0..20),
    ) {
        let mut enc = LegacyMessageSetBuilder::new(magic, codec).unwrap().base_offset(base);
        for (i, (ts, k, v)) in recs.iter().enumerate() {
            prop_assert_eq!(enc.append(*ts, k.as_deref(), v.as_deref()).unwrap(), base + i as i64);
        }
        let bytes = enc.finish().unwrap();
        let got: Vec<Record> = RecordSet::new(bytes, DecodeOptions::default())
            .flat_map(|b| {
                let b = b.unwrap();
                assert_eq!(b.magic(), magic);
                assert_eq!(b.compression(), codec);
                b.into_records().unwrap()
            })
            .collect();
        let want: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, (ts, k, v))| Record {
                offset: base + i as i64,
                timestamp: if magic == 0 { -1 } else { *ts },
                key: k.clone().map(Bytes::from),
                value: v.clone().map(Bytes::from),
                headers: Default::default(),
            })
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn control_batches_round_trip(codec in codec(), commit in any::<bool>(), epoch in any::<i32>(), pid in 0..i64::MAX) {
        let marker = if commit { ControlRecord::commit(epoch) } else { ControlRecord::abort(epoch) };
        let mut b = RecordBatchBuilder::new(codec).producer(pid, 1, -1).transactional(true).control(true);
        b.append_control(77, &marker).unwrap();
        let batch = RecordBatch::decode(b.finish().unwrap(), &DecodeOptions::default()).unwrap();
        prop_assert!(batch.is_control());
        prop_assert_eq!(batch.control_record().unwrap(), Some(marker));
        let set: Vec<Batch> = RecordSet::new(batch.raw().clone(), DecodeOptions::default()).map(Result::unwrap).collect();
        prop_assert!(set[0].is_control() && set[0].is_transactional());
        prop_assert_eq!(set[0].producer_id(), pid);
    }
}

#[test]
fn empty_batch_and_gaps() {
    let b = RecordBatchBuilder::new(Compression::None).finish().unwrap();
    let batch = RecordBatch::decode(b, &DecodeOptions::default()).unwrap();
    assert_eq!(batch.record_count(), 0);
    assert_eq!(batch.header().base_timestamp, -1);
    assert!(batch.decode_records().unwrap().is_empty());

    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    b.append_with_offset_delta(3, 5, None, Some(b"x"), &[])
        .unwrap();
    assert!(b.append_with_offset_delta(3, 5, None, None, &[]).is_err());
    assert!(b.append_with_offset_delta(2, 5, None, None, &[]).is_err());
    assert_eq!(b.append(4, None, None, &[]).unwrap(), 4);
    let batch = RecordBatch::decode(b.finish().unwrap(), &DecodeOptions::default()).unwrap();
    let offs: Vec<i64> = batch.records().map(|r| r.unwrap().offset).collect();
    assert_eq!(offs, vec![3, 4]);
    assert_eq!(batch.header().last_offset_delta, 4);
}

#[test]
fn delete_horizon_keeps_timestamps() {
    let mut b = RecordBatchBuilder::new(Compression::None).delete_horizon(5_000);
    b.append(7_000, None, Some(b"x"), &[]).unwrap();
    b.append(1_000, None, Some(b"y"), &[]).unwrap();
    let batch = RecordBatch::decode(b.finish().unwrap(), &DecodeOptions::default()).unwrap();
    assert!(batch.header().attributes.has_delete_horizon());
    assert_eq!(batch.header().base_timestamp, 5_000);
    assert_eq!(batch.header().max_timestamp, 7_000);
    let ts: Vec<i64> = batch.records().map(|r| r.unwrap().timestamp).collect();
    assert_eq!(ts, vec![7_000, 1_000]);
}

#[test]
fn broker_side_rewrites_keep_batches_valid() {
    use kafkit_core::records::{set_base_offset, set_log_append_time, set_partition_leader_epoch};
    let mut b = RecordBatchBuilder::new(Compression::Lz4);
    b.append(10, None, Some(b"a"), &[]).unwrap();
    b.append(20, None, Some(b"b"), &[]).unwrap();
    let mut raw = b.finish().unwrap().to_vec();
    set_base_offset(&mut raw, 500).unwrap();
    set_partition_leader_epoch(&mut raw, 3).unwrap();
    set_log_append_time(&mut raw, 99).unwrap();
    let batch = RecordBatch::decode(Bytes::from(raw), &DecodeOptions::default()).unwrap();
    assert_eq!(batch.header().partition_leader_epoch, 3);
    let recs: Vec<(i64, i64)> = batch
        .records()
        .map(|r| r.map(|r| (r.offset, r.timestamp)).unwrap())
        .collect();
    assert_eq!(recs, vec![(500, 99), (501, 99)]);
    assert!(set_base_offset(&mut [0u8; 10], 1).is_err());
}

#[test]
fn size_estimates_bound_the_real_size() {
    let headers = vec![Header::new("trace", &b"0123456789"[..])];
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..100 {
        let before = b.size_in_bytes();
        let key = format!("key-{i}");
        let bound = RecordBatchBuilder::record_size_upper_bound(
            Some(key.as_bytes()),
            Some(&[7u8; 100]),
            &headers,
        );
        b.append(
            1_700_000_000_000 + i,
            Some(key.as_bytes()),
            Some(&[7u8; 100]),
            &headers,
        )
        .unwrap();
        assert!(b.size_in_bytes() - before <= bound);
    }
}

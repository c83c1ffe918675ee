//! Produce at the frame level: offsets, acks, validation, idempotence, retention,
//! InitProducerId.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{batch, idempotent_batch, Harness};
use kafkit_core::protocol::create_topics::request::{CreatableTopic, CreatableTopicConfig};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::produce::response::PartitionProduceResponse;
use kafkit_core::protocol::{
    CreateTopicsRequest, ErrorCode, InitProducerIdRequest, ProduceRequest,
};
use kafkit_core::records::{RecordBatch, RecordSet};
use kafkit_sim::ClusterConfig;

fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 1_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn create(h: &mut Harness, topic: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) {
    let r = h.call(
        0,
        99,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: topic.into(),
                num_partitions: partitions,
                replication_factor: rf,
                configs: configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig {
                        name: (*k).into(),
                        value: Some((*v).into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        },
        7,
    );
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// Produces to the partition's leader and returns the partition response.
fn produce(
    h: &mut Harness,
    topic: &str,
    p: i32,
    records: Bytes,
    acks: i16,
    v: i16,
) -> PartitionProduceResponse {
    let leader = h.leader(topic, p);
    h.connect(leader, 1);
    let r = h.call(leader, 1, produce_req(topic, p, records, acks), v);
    r.responses[0].partition_responses[0].clone()
}

#[test]
fn offsets_are_assigned_in_order_at_every_produce_version() {
    let mut h = Harness::new(ClusterConfig::default());
    create(&mut h, "t", 1, 1, &[]);
    let mut next = 0;
    for v in 3..=11 {
        let r = produce(&mut h, "t", 0, batch(3, 10), 1, v);
        assert_eq!(r.error_code, 0, "v{v}");
        assert_eq!(r.base_offset, next, "v{v}");
        next += 3;
    }
    let p = h.cluster.partition("t", 0).unwrap();
    assert_eq!(p.high_watermark(), next);
    assert_eq!(p.log_end_offset(), next);
    // The stored batches decode, with their offsets rewritten.
    let mut offset = 0;
    for b in p.batches() {
        let batch = RecordBatch::decode(b.data.clone(), &Default::default()).unwrap();
        assert_eq!(batch.base_offset(), offset);
        assert_eq!(batch.header().partition_leader_epoch, 0);
        offset = batch.next_offset();
    }
}

#[test]
fn acks_zero_sends_nothing_and_invalid_acks_are_refused() {
    let mut h = Harness::new(ClusterConfig::default());
    create(&mut h, "t", 1, 1, &[]);
    let leader = h.leader("t", 0);
    h.connect(leader, 1);
    let reply = h.send(leader, 1, produce_req("t", 0, batch(2, 1), 0), 9);
    assert!(reply.frames.is_empty() && !reply.close);
    assert_eq!(h.cluster.partition("t", 0).unwrap().log_end_offset(), 2);
    // A failed acks=0 produce closes the connection: the client's only way to learn of it.
    let reply = h.send(leader, 1, produce_req("nope", 0, batch(2, 1), 0), 9);
    assert!(reply.frames.is_empty() && reply.close);

    let r = produce(&mut h, "t", 0, batch(1, 1), 2, 9);
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUIRED_ACKS.code());
}

#[test]
fn bad_records_get_their_error_codes() {
    let mut h = Harness::new(ClusterConfig::default());
    create(&mut h, "t", 1, 1, &[("max.message.bytes", "200")]);
    // Corrupt a byte inside the CRC's coverage.
    let mut bad = batch(2, 1).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let r = produce(&mut h, "t", 0, Bytes::from(bad), 1, 9);
    assert_eq!(r.error_code, ErrorCode::CORRUPT_MESSAGE.code());
    // Two batches in one partition's records.
    let mut two = batch(1, 1).to_vec();
    two.extend_from_slice(&batch(1, 2));
    let r = produce(&mut h, "t", 0, Bytes::from(two), 1, 9);
    assert_eq!(r.error_code, ErrorCode::INVALID_RECORD.code());
    // Truncated.
    let short = batch(2, 1).slice(..40);
    let r = produce(&mut h, "t", 0, short, 1, 9);
    assert_eq!(r.error_code, ErrorCode::CORRUPT_MESSAGE.code());
    // Larger than max.message.bytes.
    let r = produce(&mut h, "t", 0, batch(20, 1), 1, 9);
    assert_eq!(r.error_code, ErrorCode::MESSAGE_TOO_LARGE.code());
    // Error messages from v8.
    let r = produce(&mut h, "t", 0, batch(20, 1), 1, 8);
    assert!(r.error_message.unwrap().contains("max.message.bytes"));
    // Unknown partition; a non-leader.
    h.connect(0, 3);
    let resp = h.call(0, 3, produce_req("t", 5, batch(1, 1), 1), 9);
    let pr = &resp.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code());
    let leader = h.leader("t", 0);
    let other = (leader + 1) % 3;
    h.connect(other, 2);
    let resp = h.call(other, 2, produce_req("t", 0, batch(1, 1), 1), 10);
    let pr = &resp.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER.code());
    assert_eq!(pr.current_leader.leader_id, leader);
    assert_eq!(resp.node_endpoints[0].node_id, leader);
    assert_eq!(h.cluster.partition("t", 0).unwrap().log_end_offset(), 0);
}

#[test]
fn idempotent_duplicates_and_sequence_errors() {
    let mut h = Harness::new(ClusterConfig::default());
    create(&mut h, "t", 1, 1, &[]);
    let init = h.call(
        0,
        7,
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            ..Default::default()
        },
        4,
    );
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    assert!(pid >= 0);
    assert_eq!(epoch, 0);

    let mut seq = 0;
    let mut bases = Vec::new();
    for _ in 0..6 {
        let r = produce(&mut h, "t", 0, idempotent_batch(pid, epoch, seq, 2), 1, 9);
        assert_eq!(r.error_code, 0);
        bases.push(r.base_offset);
        seq += 2;
    }
    // A retry of any of the last five batches: DUPLICATE_SEQUENCE_NUMBER with the original
    // offset, nothing appended.
    for (i, base) in bases.iter().enumerate().skip(1) {
        let r = produce(
            &mut h,
            "t",
            0,
            idempotent_batch(pid, epoch, 2 * i as i32, 2),
            1,
            9,
        );
        assert_eq!(r.error_code, ErrorCode::DUPLICATE_SEQUENCE_NUMBER.code());
        assert_eq!(r.base_offset, *base);
    }
    // Older than the last five: out of order.
    let r = produce(&mut h, "t", 0, idempotent_batch(pid, epoch, 0, 2), 1, 9);
    assert_eq!(r.error_code, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code());
    assert_eq!(h.cluster.partition("t", 0).unwrap().log_end_offset(), 12);
    // A gap.
    let r = produce(
        &mut h,
        "t",
        0,
        idempotent_batch(pid, epoch, seq + 1, 1),
        1,
        9,
    );
    assert_eq!(r.error_code, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code());
    // In order again.
    let r = produce(&mut h, "t", 0, idempotent_batch(pid, epoch, seq, 1), 1, 9);
    assert_eq!((r.error_code, r.base_offset), (0, 12));
    // A new epoch must start at 0; then the old epoch is fenced.
    let r = produce(&mut h, "t", 0, idempotent_batch(pid, epoch + 1, 5, 1), 1, 9);
    assert_eq!(r.error_code, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code());
    let r = produce(&mut h, "t", 0, idempotent_batch(pid, epoch + 1, 0, 1), 1, 9);
    assert_eq!(r.error_code, 0);
    let r = produce(
        &mut h,
        "t",
        0,
        idempotent_batch(pid, epoch, seq + 1, 1),
        1,
        9,
    );
    assert_eq!(r.error_code, ErrorCode::INVALID_PRODUCER_EPOCH.code());
    // A producer id the partition never saw, not starting at 0.
    let r = produce(&mut h, "t", 0, idempotent_batch(pid + 1, 0, 7, 1), 1, 9);
    assert_eq!(r.error_code, ErrorCode::UNKNOWN_PRODUCER_ID.code());

    // InitProducerId v3+ with the current id and epoch bumps the epoch (KIP-360).
    let bumped = h.call(
        0,
        7,
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: pid,
            producer_epoch: epoch + 1,
            ..Default::default()
        },
        4,
    );
    assert_eq!(
        (bumped.producer_id, bumped.producer_epoch),
        (pid, epoch + 2)
    );
}

#[test]
fn log_append_time_topics_stamp_batches_with_the_virtual_clock() {
    let mut h = Harness::new(ClusterConfig {
        start_time_ms: 1_000_000,
        ..Default::default()
    });
    create(
        &mut h,
        "t",
        1,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    h.advance(Duration::from_millis(1500));
    let r = produce(&mut h, "t", 0, batch(3, 5), 1, 9);
    assert_eq!(r.log_append_time_ms, 1_001_500);
    let data = h
        .cluster
        .partition("t", 0)
        .unwrap()
        .batches()
        .next()
        .unwrap()
        .data
        .clone();
    let records: Vec<_> = RecordSet::new(data, Default::default())
        .flat_map(|b| b.unwrap().into_records().unwrap())
        .collect();
    assert!(records.iter().all(|r| r.timestamp == 1_001_500));
}

#[test]
fn retention_keeps_memory_bounded() {
    let mut h = Harness::new(ClusterConfig {
        retention_bytes: 4_096,
        ..Default::default()
    });
    create(&mut h, "t", 1, 1, &[]);
    let one = batch(10, 1).len() as u64;
    for _ in 0..200 {
        let r = produce(&mut h, "t", 0, batch(10, 1), 1, 9);
        assert_eq!(r.error_code, 0);
    }
    let p = h.cluster.partition("t", 0).unwrap();
    assert!(
        p.size_bytes() <= 4_096 + one,
        "{} bytes held",
        p.size_bytes()
    );
    assert_eq!(p.log_end_offset(), 2_000);
    let kept = 10 * (4_096 / one as i64 + 1);
    assert!(
        p.log_start_offset() >= 2_000 - kept,
        "{}",
        p.log_start_offset()
    );
    assert_eq!(p.log_start_offset() % 10, 0, "whole batches dropped");
    // A topic's retention.bytes lowers the bound further.
    create(&mut h, "small", 1, 1, &[("retention.bytes", "500")]);
    for _ in 0..20 {
        produce(&mut h, "small", 0, batch(10, 1), 1, 9);
    }
    let p = h.cluster.partition("small", 0).unwrap();
    assert!(p.size_bytes() <= 500 + one);
}

#[test]
fn acks_all_waits_for_followers_and_min_insync_replicas_is_enforced() {
    let mut h = Harness::new(ClusterConfig {
        replication_delay: Duration::from_millis(50),
        ..Default::default()
    });
    create(&mut h, "t", 1, 3, &[("min.insync.replicas", "2")]);
    let leader = h.leader("t", 0);
    h.connect(leader, 1);
    // acks=1 is answered at once; the high watermark follows after the delay.
    let r = produce(&mut h, "t", 0, batch(2, 1), 1, 9);
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    assert_eq!(h.cluster.partition("t", 0).unwrap().high_watermark(), 0);
    h.advance(Duration::from_millis(50));
    assert_eq!(h.cluster.partition("t", 0).unwrap().high_watermark(), 2);
    // acks=all: the answer waits for the followers.
    let reply = h.send(leader, 1, produce_req("t", 0, batch(2, 1), -1), 9);
    assert!(reply.frames.is_empty());
    h.advance(Duration::from_millis(49));
    assert!(h.ready(leader, 1).is_empty());
    h.advance(Duration::from_millis(1));
    let out = h.ready(leader, 1);
    assert_eq!(out.len(), 1);
    // Two brokers down: the ISR is below min.insync.replicas.
    let followers: Vec<i32> = (0..3).filter(|&b| b != leader).collect();
    for f in &followers {
        h.cluster.crash_broker(*f, h.now);
    }
    let r = produce(&mut h, "t", 0, batch(2, 1), -1, 9);
    assert_eq!(r.error_code, ErrorCode::NOT_ENOUGH_REPLICAS.code());
    let r = produce(&mut h, "t", 0, batch(2, 1), 1, 9);
    assert_eq!(r.error_code, 0, "acks=1 does not care");
}

#[test]
fn old_produce_versions_take_magic_0_and_1_message_sets() {
    use kafkit_core::compression::Compression;
    use kafkit_core::records::LegacyMessageSetBuilder;
    let mut h = Harness::new(ClusterConfig::default().with_api_versions(
        kafkit_core::protocol::ApiKey::Produce,
        0,
        11,
    ));
    create(&mut h, "t", 1, 1, &[]);
    let legacy = |magic: i8, codec: Compression, n: usize, ts0: i64| {
        let mut b = LegacyMessageSetBuilder::new(magic, codec).unwrap();
        for i in 0..n {
            let v = format!("m{magic}-{i}");
            b.append(ts0 + i as i64, Some(b"k"), Some(v.as_bytes()))
                .unwrap();
        }
        b.finish().unwrap()
    };
    let cases = [
        (0, 0, Compression::None, 3),
        (1, 0, Compression::Gzip, 2),
        (2, 1, Compression::None, 2),
        (2, 1, Compression::Snappy, 4),
        (2, 1, Compression::Lz4, 3),
    ];
    let mut next = 0;
    for (v, magic, codec, n) in cases {
        let r = produce(&mut h, "t", 0, legacy(magic, codec, n, 5_000 + next), 1, v);
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, next),
            "v{v} magic {magic} {codec:?}"
        );
        next += n as i64;
    }
    // Magic 2 mixed in through v3+ still works; magic 2 at v2 does not.
    let r = produce(&mut h, "t", 0, batch(2, 9_000), 1, 9);
    assert_eq!((r.error_code, r.base_offset), (0, next));
    next += 2;
    let r = produce(&mut h, "t", 0, batch(2, 9_000), 1, 2);
    assert_eq!(r.error_code, ErrorCode::INVALID_RECORD.code());
    // Legacy messages at v3+ are refused too.
    let r = produce(&mut h, "t", 0, legacy(1, Compression::None, 1, 1), 1, 3);
    assert_eq!(r.error_code, ErrorCode::INVALID_RECORD.code());

    // Everything reads back in order, with the offsets the broker assigned.
    let p = h.cluster.partition("t", 0).unwrap();
    let mut offsets = Vec::new();
    for b in p.batches() {
        for batch in RecordSet::new(b.data.clone(), Default::default()) {
            for r in batch.unwrap().into_records().unwrap() {
                offsets.push(r.offset);
            }
        }
    }
    assert_eq!(offsets, (0..next).collect::<Vec<_>>());
    // Timestamp lookups see magic 1 timestamps.
    assert_eq!(p.offset_for_timestamp(5_006, next).map(|x| x.0), Some(6));
}

//! Fetch at the frame level: long polls in virtual time, byte limits, leader epochs, fetch
//! sessions, ListOffsets, OffsetForLeaderEpoch.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{batch, decode_as, Harness};
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::offset_for_leader_epoch::request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    CreateTopicsRequest, ErrorCode, FetchRequest, FetchResponse, ListOffsetsRequest,
    OffsetForLeaderEpochRequest, ProduceRequest,
};
use kafkit_sim::cluster::ConnOutput;
use kafkit_sim::ClusterConfig;

fn setup(partitions: i32) -> (Harness, i32, Uuid) {
    let mut h = Harness::new(ClusterConfig::default());
    let r = h.call(
        0,
        99,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: partitions,
                replication_factor: 1,
                assignments: vec![],
                ..Default::default()
            }],
            ..Default::default()
        },
        7,
    );
    let id = r.topics[0].topic_id;
    // Put every partition on one leader so one fetch covers them all.
    for p in 0..partitions {
        let leader = h.leader("t", p);
        assert!(leader >= 0);
    }
    let leader = h.leader("t", 0);
    (h, leader, id)
}

fn produce(h: &mut Harness, partition: i32, records: Bytes) -> i64 {
    let leader = h.leader("t", partition);
    h.connect(leader, 50);
    let body = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = h.call(leader, 50, body, 9);
    let pr = &r.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, 0);
    pr.base_offset
}

fn part(partition: i32, offset: i64, max: i32) -> FetchPartition {
    FetchPartition {
        partition,
        fetch_offset: offset,
        partition_max_bytes: max,
        ..Default::default()
    }
}

fn fetch_req(
    id: Uuid,
    parts: Vec<FetchPartition>,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes,
        topics: vec![FetchTopic {
            topic: "t".into(),
            topic_id: id,
            partitions: parts,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch(h: &mut Harness, broker: i32, req: FetchRequest, v: i16) -> FetchResponse {
    h.call(broker, 1, req, v)
}

#[test]
fn a_long_poll_completes_when_data_arrives_or_after_max_wait() {
    let (mut h, leader, id) = setup(1);
    h.connect(leader, 1);
    // Nothing to read: the fetch waits, then answers empty at exactly max_wait.
    let reply = h.send(
        leader,
        1,
        fetch_req(id, vec![part(0, 0, 1 << 20)], 500, 1),
        13,
    );
    assert!(reply.frames.is_empty() && !reply.close);
    assert_eq!(
        h.cluster.poll_timeout(),
        Some(h.now + Duration::from_millis(500))
    );
    h.advance(Duration::from_millis(499));
    assert!(h.ready(leader, 1).is_empty());
    h.advance(Duration::from_millis(1));
    let out = h.ready(leader, 1);
    let [ConnOutput::Send(frame)] = &out[..] else {
        panic!("{out:?}")
    };
    let (_, f) = decode_as::<FetchRequest>(13, frame);
    assert_eq!(
        f.responses[0].partitions[0].records.as_deref(),
        Some(&[][..])
    );

    // Data arriving during the wait completes it early, with the data.
    let reply = h.send(
        leader,
        1,
        fetch_req(id, vec![part(0, 0, 1 << 20)], 10_000, 1),
        13,
    );
    assert!(reply.frames.is_empty());
    h.advance(Duration::from_millis(100));
    let sent = batch(3, 7);
    produce(&mut h, 0, sent.clone());
    let out = h.ready(leader, 1);
    let [ConnOutput::Send(frame)] = &out[..] else {
        panic!("{out:?}")
    };
    let (_, f) = decode_as::<FetchRequest>(13, frame);
    let records = f.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(records.len(), sent.len());
    assert_eq!(records[17..], sent[17..], "same batch after offset/epoch");

    // min_bytes above what is there keeps waiting; requests behind it on the connection queue.
    let reply = h.send(
        leader,
        1,
        fetch_req(id, vec![part(0, 0, 1 << 20)], 1_000, 1 << 20),
        13,
    );
    assert!(reply.frames.is_empty());
    let reply = h.send(
        leader,
        1,
        fetch_req(id, vec![part(0, 0, 1 << 20)], 0, 1),
        13,
    );
    assert!(reply.frames.is_empty(), "queued behind the parked fetch");
    h.advance(Duration::from_millis(1_000));
    let out = h.ready(leader, 1);
    assert_eq!(out.len(), 2, "both answered in order");
}

#[test]
fn byte_limits_return_whole_batches_and_at_least_one() {
    let (mut h, leader, id) = setup(1);
    h.connect(leader, 1);
    let b = batch(10, 1);
    let size = b.len() as i32;
    for _ in 0..4 {
        produce(&mut h, 0, b.clone());
    }
    // Partition max bytes: whole batches only.
    let f = fetch(
        &mut h,
        leader,
        fetch_req(id, vec![part(0, 0, 2 * size + 5)], 0, 1),
        13,
    );
    assert_eq!(
        f.responses[0].partitions[0].records.as_ref().unwrap().len() as i32,
        2 * size
    );
    // A first batch larger than the limit comes anyway.
    let f = fetch(
        &mut h,
        leader,
        fetch_req(id, vec![part(0, 0, 10)], 0, 1),
        13,
    );
    assert_eq!(
        f.responses[0].partitions[0].records.as_ref().unwrap().len() as i32,
        size
    );
    // Response max bytes.
    let mut req = fetch_req(id, vec![part(0, 0, 1 << 20)], 0, 1);
    req.max_bytes = 3 * size;
    let f = fetch(&mut h, leader, req, 13);
    assert_eq!(
        f.responses[0].partitions[0].records.as_ref().unwrap().len() as i32,
        3 * size
    );
}

#[test]
fn leader_epochs_are_checked() {
    let (mut h, leader, id) = setup(1);
    h.connect(leader, 1);
    produce(&mut h, 0, batch(1, 1));
    let with_epoch = |e: i32| {
        fetch_req(
            id,
            vec![FetchPartition {
                current_leader_epoch: e,
                ..part(0, 0, 1 << 20)
            }],
            0,
            1,
        )
    };
    let f = fetch(&mut h, leader, with_epoch(0), 13);
    assert_eq!(f.responses[0].partitions[0].error_code, 0);
    let f = fetch(&mut h, leader, with_epoch(1), 13);
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_LEADER_EPOCH.code()
    );
    // An unknown topic id.
    let f = fetch(
        &mut h,
        leader,
        fetch_req(Uuid::from_u128(42), vec![part(0, 0, 100)], 0, 1),
        13,
    );
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_ID.code()
    );
    assert_eq!(f.responses[0].topic_id, Uuid::from_u128(42));
    // By name before v13.
    let f = fetch(
        &mut h,
        leader,
        fetch_req(Uuid::ZERO, vec![part(0, 0, 100)], 0, 1),
        12,
    );
    assert_eq!(f.responses[0].topic, "t");
    assert_eq!(f.responses[0].partitions[0].error_code, 0);
}

#[test]
fn fetch_sessions_send_only_changes_and_check_epochs() {
    let mut h = Harness::new(ClusterConfig {
        brokers: 1,
        ..Default::default()
    });
    h.connect(0, 1);
    let r = h.call(
        0,
        1,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 2,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        },
        7,
    );
    let id = r.topics[0].topic_id;
    produce(&mut h, 0, batch(2, 1));
    // Open a session (epoch 0): a full response.
    let mut req = fetch_req(id, vec![part(0, 0, 1 << 20), part(1, 0, 1 << 20)], 0, 1);
    req.session_id = 0;
    req.session_epoch = 0;
    let f = fetch(&mut h, 0, req, 13);
    assert_eq!(f.error_code, 0);
    let session = f.session_id;
    assert_ne!(session, 0);
    assert_eq!(f.responses[0].partitions.len(), 2);

    // Incremental: the client moves partition 0's offset past what it got; nothing new, so
    // an empty response (after max_wait 0).
    let mut moved = fetch_req(id, vec![part(0, 2, 1 << 20)], 0, 1);
    moved.session_id = session;
    moved.session_epoch = 1;
    let f = fetch(&mut h, 0, moved, 13);
    assert_eq!(f.session_id, session);
    assert!(f.responses.is_empty(), "{f:?}");

    // New data in partition 1 only: only partition 1 comes back.
    produce(&mut h, 1, batch(1, 1));
    let mut inc = fetch_req(id, vec![], 0, 1);
    inc.topics.clear();
    inc.session_id = session;
    inc.session_epoch = 2;
    let f = fetch(&mut h, 0, inc.clone(), 13);
    assert_eq!(f.responses.len(), 1);
    assert_eq!(f.responses[0].partitions.len(), 1);
    assert_eq!(f.responses[0].partitions[0].partition_index, 1);

    // A stale epoch, an unknown session.
    let f = fetch(&mut h, 0, inc.clone(), 13);
    assert_eq!(f.error_code, ErrorCode::INVALID_FETCH_SESSION_EPOCH.code());
    let mut unknown = inc.clone();
    unknown.session_id = session.wrapping_add(1);
    unknown.session_epoch = 5;
    let f = fetch(&mut h, 0, unknown, 13);
    assert_eq!(f.error_code, ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code());

    // Forgetting partition 0 and moving partition 1's offset on.
    let mut next = fetch_req(id, vec![part(1, 1, 1 << 20)], 0, 1);
    next.session_id = session;
    next.session_epoch = 3;
    next.forgotten_topics_data = vec![ForgottenTopic {
        topic_id: id,
        partitions: vec![0],
        ..Default::default()
    }];
    let f = fetch(&mut h, 0, next, 13);
    assert_eq!(f.error_code, 0);
    produce(&mut h, 0, batch(1, 1));
    inc.session_epoch = 4;
    let f = fetch(&mut h, 0, inc.clone(), 13);
    assert!(f.responses.is_empty(), "partition 0 was forgotten: {f:?}");

    // Closing the session (epoch -1) is a sessionless full fetch.
    let mut close = fetch_req(id, vec![part(0, 0, 1 << 20)], 0, 1);
    close.session_id = session;
    close.session_epoch = -1;
    let f = fetch(&mut h, 0, close, 13);
    assert_eq!(f.session_id, 0);
    inc.session_epoch = 5;
    let f = fetch(&mut h, 0, inc, 13);
    assert_eq!(f.error_code, ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code());
}

#[test]
fn list_offsets_earliest_latest_timestamp_and_leader_epochs() {
    let (mut h, leader, _) = setup(1);
    h.connect(leader, 1);
    produce(&mut h, 0, batch(3, 1_000)); // offsets 0..3, timestamps 1000..1002
    produce(&mut h, 0, batch(3, 2_000)); // offsets 3..6, timestamps 2000..2002
    let list = |ts: i64| ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: ts,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    for v in [1, 4, 7, 10] {
        for (ts, offset, timestamp) in [
            (-1, 6, -1),
            (-2, 0, -1),
            (0, 0, 1_000),
            (1_001, 1, 1_001),
            (1_500, 3, 2_000),
            (2_002, 5, 2_002),
            (2_003, -1, -1),
        ] {
            let mut req = list(ts);
            if v >= 2 {
                req.isolation_level = 1;
            }
            let l = h.call(leader, 1, req, v);
            let p = &l.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.offset, p.timestamp),
                (0, offset, timestamp),
                "v{v} ts {ts}"
            );
        }
    }
    // Max timestamp (v7+).
    let l = h.call(leader, 1, list(-3), 7);
    assert_eq!(
        (
            l.topics[0].partitions[0].offset,
            l.topics[0].partitions[0].timestamp
        ),
        (5, 2_002)
    );
    // v0: old-style offsets.
    let l = h.call(leader, 1, list(-1), 0);
    assert_eq!(l.topics[0].partitions[0].old_style_offsets, vec![6]);

    // After a leader move the epoch is 1; the old one is fenced; OffsetForLeaderEpoch knows
    // where epoch 0 ended.
    let mut h2 = Harness::new(ClusterConfig::default());
    let _ = h2.call(
        0,
        99,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 1,
                replication_factor: 3,
                ..Default::default()
            }],
            ..Default::default()
        },
        7,
    );
    produce(&mut h2, 0, batch(4, 1));
    let old = h2.leader("t", 0);
    let new = (old + 1) % 3;
    let now = h2.now;
    h2.cluster.move_leader("t", 0, new, now).unwrap();
    produce(&mut h2, 0, batch(2, 1));
    h2.connect(new, 1);
    let mut req = list(-1);
    req.topics[0].partitions[0].current_leader_epoch = 0;
    let l = h2.call(new, 1, req, 4);
    assert_eq!(
        l.topics[0].partitions[0].error_code,
        ErrorCode::FENCED_LEADER_EPOCH.code()
    );
    let l = h2.call(new, 1, list(-1), 4);
    assert_eq!(
        (
            l.topics[0].partitions[0].offset,
            l.topics[0].partitions[0].leader_epoch
        ),
        (6, 1)
    );
    let epoch_req = |e: i32| OffsetForLeaderEpochRequest {
        topics: vec![OffsetForLeaderTopic {
            topic: "t".into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                leader_epoch: e,
                current_leader_epoch: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    for (e, want) in [(0, (0, 4)), (1, (1, 6))] {
        let r = h2.call(new, 1, epoch_req(e), 4);
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, want.0, want.1)
        );
    }
}

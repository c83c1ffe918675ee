//! Fault hooks: crashes and restarts (what survives follows acks), leader moves, request
//! hooks (drop, delay, inject), all in virtual time.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{batch, client_sim, decode_as, roundtrip, Harness};
use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::create_topics::request::{CreatableReplicaAssignment, CreatableTopic};
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::list_offsets::response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafkit_core::protocol::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    ApiKey, CreateTopicsRequest, ErrorCode, FetchRequest, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, ProduceRequest, ResponseBody,
};
use kafkit_sim::cluster::ConnOutput;
use kafkit_sim::{ClusterConfig, HookAction};

/// A harness with topic `t`: one partition on replicas 0, 1, 2 (leader 0).
fn replicated(delay_ms: u64) -> Harness {
    let mut h = Harness::new(ClusterConfig {
        replication_delay: Duration::from_millis(delay_ms),
        ..Default::default()
    });
    h.connect(0, 1);
    h.call(
        0,
        1,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![CreatableReplicaAssignment {
                    partition_index: 0,
                    broker_ids: vec![0, 1, 2],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        7,
    );
    h
}

fn produce_req(records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_req(offset: i64, epoch: i32, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                current_leader_epoch: epoch,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_leader_crash_loses_unreplicated_acks_one_data_but_never_acks_all_data() {
    let mut h = replicated(100);
    // acks=all: answered once the followers copied it.
    let reply = h.send(0, 1, produce_req(batch(3, 1), -1), 9);
    assert!(reply.frames.is_empty());
    h.advance(Duration::from_millis(100));
    let out = h.ready(0, 1);
    let [ConnOutput::Send(frame)] = &out[..] else {
        panic!("{out:?}")
    };
    let (_, p) = decode_as::<ProduceRequest>(9, frame);
    assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    // acks=1: answered at once, not yet on the followers.
    let p = h.call(0, 1, produce_req(batch(2, 1), 1), 9);
    assert_eq!(p.responses[0].partition_responses[0].base_offset, 3);
    assert_eq!(h.cluster.partition("t", 0).unwrap().log_end_offset(), 5);
    h.advance(Duration::from_millis(10));
    h.cluster.crash_broker(0, h.now);
    // The connection to the crashed broker closes.
    assert!(h.cluster.take_ready().contains(&(0, 1, ConnOutput::Close)));
    assert!(!h.connect(0, 2), "a crashed broker refuses connections");
    let p = h.cluster.partition("t", 0).unwrap();
    assert_eq!(p.leader, 1, "the first live in-sync replica takes over");
    assert_eq!(p.leader_epoch, 1);
    assert_eq!(p.log_end_offset(), 3, "the acks=1 batch is lost");
    assert_eq!(p.high_watermark(), 3);
    assert_eq!(p.isr, vec![1, 2]);

    // The old leader comes back as a follower, catches up and rejoins the ISR.
    h.cluster.restart_broker(0, h.now);
    assert!(h.connect(0, 3));
    h.advance(Duration::from_millis(100));
    let p = h.cluster.partition("t", 0).unwrap();
    assert_eq!(p.leader, 1);
    assert!(p.isr.contains(&0), "{:?}", p.isr);
    assert_eq!(p.replica_leo(0), Some(3));
    // Its fetches are refused with the new leader named.
    let f = h.call(0, 3, fetch_req(0, -1, 0), 12);
    let pd = &f.responses[0].partitions[0];
    assert_eq!(pd.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER.code());
    assert_eq!(
        (pd.current_leader.leader_id, pd.current_leader.leader_epoch),
        (1, 1)
    );
}

#[test]
fn with_every_replica_down_the_partition_waits_for_one_to_return() {
    let mut h = replicated(0);
    h.call(0, 1, produce_req(batch(4, 1), -1), 9);
    for b in [1, 2, 0] {
        h.cluster.crash_broker(b, h.now);
    }
    assert_eq!(h.cluster.partition("t", 0).unwrap().leader, -1);
    h.cluster.restart_broker(2, h.now);
    let p = h.cluster.partition("t", 0).unwrap();
    assert_eq!(p.leader, 2);
    assert_eq!(p.log_end_offset(), 4, "replicated data survives");
    h.connect(2, 5);
    let m = h.call(
        2,
        5,
        MetadataRequest {
            topics: None,
            ..Default::default()
        },
        12,
    );
    assert_eq!(m.brokers.len(), 1);
    let part = &m.topics[0].partitions[0];
    assert_eq!(part.leader_id, 2);
    assert_eq!(part.offline_replicas, vec![0, 1]);
}

#[test]
fn moving_a_leader_fences_old_epochs_and_wakes_parked_fetches() {
    let mut h = replicated(0);
    h.call(0, 1, produce_req(batch(2, 1), 1), 9);
    // A fetch parked on the old leader.
    let reply = h.send(0, 1, fetch_req(2, 0, 30_000), 12);
    assert!(reply.frames.is_empty());
    h.cluster.move_leader("t", 0, 2, h.now).unwrap();
    let out = h.ready(0, 1);
    let [ConnOutput::Send(frame)] = &out[..] else {
        panic!("{out:?}")
    };
    let (_, f) = decode_as::<FetchRequest>(12, frame);
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
    );
    h.connect(2, 2);
    let f = h.call(2, 2, fetch_req(0, 0, 0), 12);
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::FENCED_LEADER_EPOCH.code()
    );
    let f = h.call(2, 2, fetch_req(0, 1, 0), 12);
    assert_eq!(f.responses[0].partitions[0].error_code, 0);
    assert!(h.cluster.move_leader("t", 0, 7, h.now).is_err());
}

fn list_latest() -> ListOffsetsRequest {
    ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn hooks_drop_delay_and_inject_responses() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |o| {
        o.conn.request_timeout = Duration::from_secs(3);
    });
    let meta = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("t".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    roundtrip(&mut sim, Target::Any, meta, None).unwrap();
    let target = || Target::Leader {
        topic: "t".into(),
        partition: 0,
    };
    roundtrip(&mut sim, target(), list_latest(), None).unwrap();

    // Injected error.
    cluster.borrow_mut().set_hook(
        ApiKey::ListOffsets,
        Box::new(|_, _| {
            HookAction::Respond(ResponseBody::ListOffsets(ListOffsetsResponse {
                topics: vec![ListOffsetsTopicResponse {
                    name: "t".into(),
                    partitions: vec![ListOffsetsPartitionResponse {
                        partition_index: 0,
                        error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER.code(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }),
    );
    let resp = roundtrip(&mut sim, target(), list_latest(), None).unwrap();
    let l = resp.body_as::<ListOffsetsRequest>().unwrap();
    assert_eq!(
        l.topics[0].partitions[0].error_code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
    );

    // Delay: the answer comes after the delay, in virtual time.
    cluster.borrow_mut().set_hook(
        ApiKey::ListOffsets,
        Box::new(|_, _| HookAction::Delay(Duration::from_millis(700))),
    );
    let before = sim.elapsed();
    let resp = roundtrip(&mut sim, target(), list_latest(), None).unwrap();
    let took = sim.elapsed() - before;
    assert!(matches!(resp.body, ResponseBody::ListOffsets(_)));
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(710),
        "{took:?}"
    );

    // Drop: no answer; the client times out at its request timeout.
    cluster
        .borrow_mut()
        .set_hook(ApiKey::ListOffsets, Box::new(|_, _| HookAction::Drop));
    let before = sim.elapsed();
    let err = roundtrip(&mut sim, target(), list_latest(), None).unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    assert_eq!(sim.elapsed() - before, Duration::from_secs(3));

    cluster.borrow_mut().clear_hook(ApiKey::ListOffsets);
    roundtrip(&mut sim, target(), list_latest(), None).unwrap();
}

#[test]
fn a_crash_closes_client_connections_and_others_serve_on() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |o| {
        o.bootstrap = (0..3).map(|i| (format!("broker-{i}"), 9092 + i)).collect();
        o.conn.request_timeout = Duration::from_secs(5);
    });
    let meta = || MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let first = roundtrip(&mut sim, Target::Any, meta(), None).unwrap();
    let now = sim.now();
    cluster.borrow_mut().crash_broker(first.node.max(0), now);
    // The next request goes elsewhere and succeeds.
    let resp = roundtrip(&mut sim, Target::Any, meta(), None).unwrap();
    let m = resp.body_as::<MetadataRequest>().unwrap();
    assert_eq!(m.brokers.len(), 2);
    // The crashed node refuses new connections: a request pinned to it times out.
    let dead = first.node.max(0);
    let node_target = m
        .brokers
        .iter()
        .map(|b| b.node_id)
        .find(|&n| n != dead)
        .unwrap();
    roundtrip(&mut sim, Target::Node(node_target), meta(), None).unwrap();
}

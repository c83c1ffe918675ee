//! kafkit's own `LowLevelClient` against the simulated cluster, through `Simulation`:
//! metadata, produce and fetch back byte for byte, offsets and the high watermark, version
//! negotiation against an imitated old broker.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{batch, client_sim, roundtrip};
use kafkit_core::codec::Uuid;
use kafkit_core::network::Target;
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    ApiKey, ErrorCode, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
};
use kafkit_core::records::{set_base_offset, set_partition_leader_epoch};
use kafkit_sim::ClusterConfig;

fn metadata_for(topics: &[&str]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: true,
        ..Default::default()
    }
}

fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 5_000,
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

/// A fetch naming the topic both ways (name up to v12, id from v13).
fn fetch(topic: (&str, Uuid), partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let (topic, topic_id) = topic;
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            topic_id,
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn metadata_of_a_three_broker_cluster() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |_| {});
    let resp = roundtrip(&mut sim, Target::Any, metadata_for(&["orders"]), None).unwrap();
    assert_eq!(resp.version, 12);
    let m = resp.body_as::<MetadataRequest>().unwrap();
    let ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    for b in &m.brokers {
        assert_eq!(b.host, format!("broker-{}", b.node_id));
        assert_eq!(b.port, 9092 + b.node_id);
    }
    assert_eq!(m.controller_id, 0);
    assert_eq!(m.cluster_id.as_deref(), Some("kafkit-sim-cluster"));
    assert_eq!(m.topics.len(), 1);
    let t = &m.topics[0];
    assert_eq!(t.error_code, 0);
    assert_eq!(t.name.as_deref(), Some("orders"));
    let id = cluster.borrow().topic("orders").unwrap().id;
    assert_eq!(t.topic_id, id);
    assert_ne!(id, kafkit_core::codec::Uuid::ZERO);
    assert_eq!(t.partitions.len(), 3);
    let mut leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader_id).collect();
    leaders.sort_unstable();
    assert_eq!(leaders, vec![0, 1, 2], "leaders spread over the brokers");
    for p in &t.partitions {
        assert_eq!(p.leader_epoch, 0);
        assert_eq!(p.replica_nodes, vec![p.leader_id]);
        assert_eq!(p.isr_nodes, vec![p.leader_id]);
    }

    // Without auto-creation, an unknown topic is reported as such.
    let mut req = metadata_for(&["nope"]);
    req.allow_auto_topic_creation = false;
    let resp = roundtrip(&mut sim, Target::Any, req, None).unwrap();
    let m = resp.body_as::<MetadataRequest>().unwrap();
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
    );
    assert!(cluster.borrow().topic("nope").is_none());
}

#[test]
fn produce_then_fetch_back_byte_for_byte() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |_| {});
    roundtrip(&mut sim, Target::Any, metadata_for(&["t"]), None).unwrap();
    let t = ("t", cluster.borrow().topic("t").unwrap().id);
    let leader = || Target::Leader {
        topic: "t".into(),
        partition: 1,
    };
    let sent: Vec<Bytes> = (0..3).map(|i| batch(4, 1_000 + 10 * i)).collect();
    let mut bases = Vec::new();
    for b in &sent {
        let resp = roundtrip(&mut sim, leader(), produce("t", 1, b.clone(), 1), None).unwrap();
        let p = resp.body_as::<ProduceRequest>().unwrap();
        let pr = &p.responses[0].partition_responses[0];
        assert_eq!(pr.error_code, 0);
        assert_eq!(pr.log_start_offset, 0);
        bases.push(pr.base_offset);
    }
    assert_eq!(bases, vec![0, 4, 8], "offsets assigned in order");
    let p = cluster.borrow().partition("t", 1).unwrap().high_watermark();
    assert_eq!(p, 12);

    let resp = roundtrip(&mut sim, leader(), fetch(t, 1, 0, 500), None).unwrap();
    assert_eq!(resp.version, 17);
    let f = resp.body_as::<FetchRequest>().unwrap();
    assert_eq!(f.error_code, 0);
    let pd = &f.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 12);
    assert_eq!(pd.last_stable_offset, 12);
    assert_eq!(pd.log_start_offset, 0);
    // The broker rewrote base offsets and the leader epoch; nothing else changed.
    let mut expected = Vec::new();
    for (b, base) in sent.iter().zip(&bases) {
        let mut v = b.to_vec();
        set_base_offset(&mut v, *base).unwrap();
        set_partition_leader_epoch(&mut v, 0).unwrap();
        expected.extend_from_slice(&v);
    }
    assert_eq!(pd.records.as_deref(), Some(&expected[..]));

    // From the middle: the batch holding the offset comes whole, then the rest.
    let resp = roundtrip(&mut sim, leader(), fetch(t, 1, 5, 500), None).unwrap();
    let f = resp.body_as::<FetchRequest>().unwrap();
    let records = f.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(&records[..], &expected[sent[0].len()..]);

    // At the high watermark the fetch long-polls for max_wait in virtual time.
    let before = sim.elapsed();
    let resp = roundtrip(&mut sim, leader(), fetch(t, 1, 12, 300), None).unwrap();
    let f = resp.body_as::<FetchRequest>().unwrap();
    assert_eq!(
        f.responses[0].partitions[0].records.as_deref(),
        Some(&[][..])
    );
    let waited = sim.elapsed() - before;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(320),
        "{waited:?}"
    );

    // Past the log end: out of range.
    let resp = roundtrip(&mut sim, leader(), fetch(t, 1, 13, 300), None).unwrap();
    let f = resp.body_as::<FetchRequest>().unwrap();
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        ErrorCode::OFFSET_OUT_OF_RANGE.code()
    );
}

#[test]
fn fetch_to_a_follower_names_the_leader_and_list_offsets_tracks_the_high_watermark() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |_| {});
    roundtrip(&mut sim, Target::Any, metadata_for(&["t"]), None).unwrap();
    let t = ("t", cluster.borrow().topic("t").unwrap().id);
    let leader = cluster.borrow().partition("t", 0).unwrap().leader;
    let other = (leader + 1) % 3;
    let resp = roundtrip(&mut sim, Target::Node(other), fetch(t, 0, 0, 0), None).unwrap();
    let f = resp.body_as::<FetchRequest>().unwrap();
    let pd = &f.responses[0].partitions[0];
    assert_eq!(pd.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER.code());
    assert_eq!(pd.current_leader.leader_id, leader);
    assert_eq!(f.node_endpoints.len(), 1);
    assert_eq!(f.node_endpoints[0].node_id, leader);

    let target = || Target::Leader {
        topic: "t".into(),
        partition: 0,
    };
    roundtrip(&mut sim, target(), produce("t", 0, batch(5, 100), -1), None).unwrap();
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
    for (ts, offset) in [(-1, 5), (-2, 0), (102, 2)] {
        let resp = roundtrip(&mut sim, target(), list(ts), None).unwrap();
        let l = resp.body_as::<ListOffsetsRequest>().unwrap();
        let p = &l.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "timestamp {ts}");
        assert_eq!(p.offset, offset, "timestamp {ts}");
    }
}

#[test]
fn an_imitated_old_broker_is_what_the_client_negotiates_with() {
    let config = ClusterConfig::default()
        .with_api_versions(ApiKey::ApiVersions, 0, 2)
        .with_api_versions(ApiKey::Fetch, 4, 11)
        .with_api_versions(ApiKey::Metadata, 0, 8)
        .with_api_versions(ApiKey::Produce, 3, 8)
        .without_api(ApiKey::DescribeCluster);
    let (mut sim, cluster) = client_sim(config, |_| {});
    let resp = roundtrip(&mut sim, Target::Any, metadata_for(&["t"]), None).unwrap();
    let t = ("t", cluster.borrow().topic("t").unwrap().id);
    assert_eq!(resp.version, 8, "metadata at the broker's highest version");
    let (_, table) = sim.core().broker_versions(resp.node).unwrap();
    assert_eq!(table.broker_range(ApiKey::Fetch), Some((4, 11)));
    assert_eq!(table.broker_range(ApiKey::Produce), Some((3, 8)));
    assert_eq!(table.broker_range(ApiKey::DescribeCluster), None);
    // The client asked ApiVersions at v4, got the v0 UNSUPPORTED_VERSION answer and retried.
    assert_eq!(table.broker_range(ApiKey::ApiVersions), Some((0, 2)));
    let target = || Target::Leader {
        topic: "t".into(),
        partition: 0,
    };
    let resp = roundtrip(&mut sim, target(), produce("t", 0, batch(1, 1), 1), None).unwrap();
    assert_eq!(resp.version, 8);
    let resp = roundtrip(&mut sim, target(), fetch(t, 0, 0, 0), None).unwrap();
    assert_eq!(resp.version, 11);
    let f = resp.body_as::<FetchRequest>().unwrap();
    assert_eq!(f.responses[0].partitions[0].high_watermark, 1);
}

#[test]
fn runs_replay_exactly_from_the_seed() {
    let trace = |seed: u64| {
        let config = ClusterConfig {
            seed,
            ..Default::default()
        };
        let (mut sim, cluster) = client_sim(config, |_| {});
        let mut log = Vec::new();
        let resp = roundtrip(&mut sim, Target::Any, metadata_for(&["a", "b"]), None).unwrap();
        log.push(format!("{:?}", resp.body));
        let t = ("a", cluster.borrow().topic("a").unwrap().id);
        for p in 0..3 {
            let target = Target::Leader {
                topic: "a".into(),
                partition: p,
            };
            let r = roundtrip(
                &mut sim,
                target.clone(),
                produce("a", p, batch(2, 5), -1),
                None,
            );
            log.push(format!("{:?}", r.unwrap().body));
            let mut f = fetch(t, p, 0, 100);
            f.session_epoch = 0;
            let r = roundtrip(&mut sim, target, f, None).unwrap();
            log.push(format!("{:?} at {:?}", r.body, sim.elapsed()));
        }
        log
    };
    assert_eq!(trace(3), trace(3));
    assert_ne!(
        trace(3),
        trace(4),
        "topic ids and session ids follow the seed"
    );
}

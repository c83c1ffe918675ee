//! Group APIs through the cluster: FindCoordinator, NOT_COORDINATOR on other brokers, a
//! member joining and committing through kafkit's client, offsets surviving a coordinator
//! crash.

mod cluster_support;

use std::time::Duration;

use bytes::Bytes;
use cluster_support::{client_sim, roundtrip, Harness};
use kafkit_core::network::{CoordinatorKind, Target};
use kafkit_core::protocol::join_group::request::JoinGroupRequestProtocol;
use kafkit_core::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_core::protocol::offset_fetch::request::OffsetFetchRequestGroup;
use kafkit_core::protocol::sync_group::request::SyncGroupRequestAssignment;
use kafkit_core::protocol::{
    ErrorCode, FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, ListGroupsRequest,
    MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafkit_sim::ClusterConfig;

#[test]
fn find_coordinator_hashes_group_ids_over_live_brokers() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    let r = h.call(
        0,
        1,
        FindCoordinatorRequest {
            coordinator_keys: vec!["a".into(), "b".into(), "c".into(), String::new()],
            ..Default::default()
        },
        4,
    );
    let mut seen = Vec::new();
    for c in &r.coordinators[..3] {
        assert_eq!(c.error_code, 0);
        assert_eq!(c.node_id, h.cluster.coordinator_for(&c.key));
        assert_eq!(c.host, format!("broker-{}", c.node_id));
        assert_eq!(c.port, 9092 + c.node_id);
        seen.push(c.node_id);
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![0, 1, 2], "a, b and c land on different brokers");
    assert_eq!(
        r.coordinators[3].error_code,
        ErrorCode::INVALID_REQUEST.code()
    );

    // v0 layout; the coordinator moves when its broker goes down.
    let r = h.call(
        0,
        1,
        FindCoordinatorRequest {
            key: "a".into(),
            ..Default::default()
        },
        0,
    );
    let before = r.node_id;
    let now = h.now;
    h.cluster.crash_broker(before, now);
    let asker = (before + 1) % 3;
    h.connect(asker, 2);
    let r = h.call(
        asker,
        2,
        FindCoordinatorRequest {
            key: "a".into(),
            ..Default::default()
        },
        3,
    );
    assert_eq!(r.error_code, 0);
    assert_ne!(r.node_id, before);
}

#[test]
fn group_requests_to_other_brokers_get_not_coordinator() {
    let mut h = Harness::new(ClusterConfig::default());
    let coordinator = h.cluster.coordinator_for("g");
    let other = (coordinator + 1) % 3;
    h.connect(other, 1);
    let r = h.call(
        other,
        1,
        HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            ..Default::default()
        },
        4,
    );
    assert_eq!(r.error_code, ErrorCode::NOT_COORDINATOR.code());
    let r = h.call(
        other,
        1,
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g".into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        },
        8,
    );
    assert_eq!(r.groups[0].error_code, ErrorCode::NOT_COORDINATOR.code());
}

#[test]
fn a_member_joins_syncs_commits_and_its_offsets_survive_a_coordinator_crash() {
    let (mut sim, cluster) = client_sim(ClusterConfig::default(), |o| {
        o.bootstrap = (0..3).map(|i| (format!("broker-{i}"), 9092 + i)).collect();
        o.conn.request_timeout = Duration::from_secs(10);
    });
    roundtrip(
        &mut sim,
        Target::Any,
        MetadataRequest {
            topics: Some(vec![
                kafkit_core::protocol::metadata::request::MetadataRequestTopic {
                    name: Some("t".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let coord = || Target::Coordinator {
        kind: CoordinatorKind::Group,
        key: "g".into(),
    };
    let join = |member_id: &str| JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"subscription"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = roundtrip(&mut sim, coord(), join(""), None).unwrap();
    assert_eq!(resp.node, cluster.borrow().coordinator_for("g"));
    let j = resp.body_as::<JoinGroupRequest>().unwrap();
    assert_eq!(j.error_code, ErrorCode::MEMBER_ID_REQUIRED.code());
    let member = j.member_id;
    let j = roundtrip(&mut sim, coord(), join(&member), None)
        .unwrap()
        .body_as::<JoinGroupRequest>()
        .unwrap();
    assert_eq!(j.error_code, 0);
    assert_eq!(j.leader, member);
    let generation = j.generation_id;
    let s = roundtrip(
        &mut sim,
        coord(),
        SyncGroupRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: member.clone(),
                assignment: Bytes::from_static(b"all of t"),
                ..Default::default()
            }],
            ..Default::default()
        },
        None,
    )
    .unwrap()
    .body_as::<SyncGroupRequest>()
    .unwrap();
    assert_eq!(s.error_code, 0);
    assert_eq!(&s.assignment[..], b"all of t");

    let c = roundtrip(
        &mut sim,
        coord(),
        OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: generation,
            member_id: member.clone(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 42,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        None,
    )
    .unwrap()
    .body_as::<OffsetCommitRequest>()
    .unwrap();
    assert_eq!(c.topics[0].partitions[0].error_code, 0);
    let old = cluster.borrow().coordinator_for("g");
    let listed = roundtrip(
        &mut sim,
        Target::Node(old),
        ListGroupsRequest::default(),
        None,
    )
    .unwrap();
    let l = listed.body_as::<ListGroupsRequest>().unwrap();
    assert_eq!(l.groups.len(), 1);
    assert_eq!(l.groups[0].group_id, "g");

    // The coordinator crashes; the client finds the new one and the commit is still there.
    let now = sim.now();
    cluster.borrow_mut().crash_broker(old, now);
    sim.core()
        .network()
        .invalidate_coordinator(CoordinatorKind::Group, "g", now);
    let resp = roundtrip(
        &mut sim,
        coord(),
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g".into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_ne!(resp.node, old);
    let f = resp.body_as::<OffsetFetchRequest>().unwrap();
    let g = &f.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.topics[0].partitions[0].committed_offset, 42);
}

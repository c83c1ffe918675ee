//! The consumer protocol's member state machine against hand-built coordinator answers.

use super::super::test_support::*;
use crate::codec::Uuid;
use crate::config::GroupProtocol;
use crate::consumer::group::member::offset_commit::OffsetAndMetadata;
use crate::protocol::consumer_group_heartbeat::response::{
    Assignment as WireAssignment, TopicPartitions as WireTopicPartitions,
};
use crate::protocol::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, OffsetCommitRequest, RequestBody,
};

use super::{new_member_id, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};

const TID: Uuid = Uuid([7; 16]);

fn cp_t(tweak: impl FnOnce(&mut ConsumerConfig)) -> T {
    T::new(|c| {
        c.group_protocol = GroupProtocol::Consumer;
        c.partition_assignment_strategy = ConsumerConfig::default().partition_assignment_strategy;
        tweak(c);
    })
}

/// The heartbeat (or leave heartbeat) queued last, with its id.
fn sent(t: &T, want: fn(&Req) -> bool) -> (RequestId, ConsumerGroupHeartbeatRequest) {
    let id = t.pending(want).expect("a heartbeat was sent");
    match t.net.queued_request(id) {
        Some((RequestBody::ConsumerGroupHeartbeat(b), Some(1))) => (id, b.clone()),
        other => panic!("not a ConsumerGroupHeartbeat at v1 at most: {other:?}"),
    }
}

fn heartbeat(t: &T) -> (RequestId, ConsumerGroupHeartbeatRequest) {
    sent(t, |r| matches!(r, Req::CgHeartbeat))
}

fn answer(t: &mut T, id: RequestId, epoch: i32, assignment: Option<&[i32]>) {
    t.respond(
        id,
        ResponseBody::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
            member_epoch: epoch,
            heartbeat_interval_ms: 2_000,
            assignment: assignment.map(|ps| WireAssignment {
                topic_partitions: vec![WireTopicPartitions {
                    topic_id: TID,
                    partitions: ps.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
}

fn answer_error(t: &mut T, id: RequestId, code: ErrorCode) {
    t.respond(
        id,
        ResponseBody::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
            error_code: code.0,
            member_epoch: -1,
            ..Default::default()
        }),
    );
}

/// Answers the member's metadata request for the target's topic ids: topic "t" is `TID`.
fn answer_metadata(t: &mut T, partitions: i32) {
    let id = t
        .pending(|r| matches!(r, Req::AssignmentMetadata))
        .expect("metadata for the topic ids");
    t.respond(
        id,
        ResponseBody::Metadata(MetadataResponse {
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                topic_id: TID,
                partitions: (0..partitions)
                    .map(|p| MetadataResponsePartition {
                        partition_index: p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    );
}

fn wire(ps: &[i32]) -> Option<Vec<(Uuid, Vec<i32>)>> {
    Some(vec![(TID, ps.to_vec())])
}

fn partitions_of(b: &ConsumerGroupHeartbeatRequest) -> Option<Vec<(Uuid, Vec<i32>)>> {
    b.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|tp| (tp.topic_id, tp.partitions.clone()))
            .collect()
    })
}

/// Joins, gets `partitions` at epoch 1, runs the assigned callback and acknowledges.
fn join(t: &mut T, partitions: &[i32]) {
    t.poll(true);
    let (id, _) = heartbeat(t);
    answer(t, id, 1, Some(partitions));
    answer_metadata(t, 4);
    let call = t.complete();
    assert_eq!(call.kind, RebalanceKind::Assigned);
    assert_eq!(call.partitions, tps(partitions));
    let (id, ack) = heartbeat(t);
    assert_eq!(partitions_of(&ack), wire(partitions), "the acknowledgement");
    answer(t, id, 1, None);
    assert_eq!(t.g.state(), MemberState::Stable);
}

#[test]
fn joins_with_a_full_heartbeat_then_sends_only_what_changed() {
    let mut t = cp_t(|c| c.group_remote_assignor = Some("uniform".into()));
    assert!(
        t.pending(|r| matches!(r, Req::CgHeartbeat)).is_none(),
        "joins inside a poll"
    );
    t.poll(true);
    assert_eq!(t.g.state(), MemberState::Joining);
    let (id, first) = heartbeat(&t);
    assert_eq!(first.member_epoch, 0);
    assert_eq!(first.group_id, "g");
    assert_eq!(
        first.member_id.len(),
        22,
        "a client UUID (KIP-1082): {}",
        first.member_id
    );
    assert_eq!(first.subscribed_topic_names, Some(vec!["t".to_string()]));
    assert_eq!(
        first.subscribed_topic_regex.as_deref(),
        Some(""),
        "no regex"
    );
    assert_eq!(first.server_assignor.as_deref(), Some("uniform"));
    assert_eq!(first.rebalance_timeout_ms, 300_000);
    assert_eq!(partitions_of(&first), Some(vec![]), "owns nothing yet");

    answer(&mut t, id, 3, Some(&[0, 1]));
    assert_eq!(t.g.state(), MemberState::Reconciling);
    assert!(
        t.g.pending_call().is_none(),
        "the topic id is not known yet"
    );
    answer_metadata(&mut t, 2);
    let call = t.complete();
    assert_eq!(call.kind, RebalanceKind::Assigned);
    assert_eq!(call.partitions, tps(&[0, 1]));
    assert_eq!(t.subs.assignment(), tps(&[0, 1]));

    let (id, ack) = heartbeat(&t);
    assert_eq!(
        ack.member_id, first.member_id,
        "the same id for the consumer's lifetime"
    );
    assert_eq!(ack.member_epoch, 3);
    assert_eq!(
        partitions_of(&ack),
        wire(&[0, 1]),
        "reports the reconciled assignment"
    );
    assert_eq!(ack.subscribed_topic_names, None, "unchanged: null");
    assert_eq!(ack.subscribed_topic_regex, None);
    assert_eq!(ack.server_assignor, None);
    assert_eq!(ack.rebalance_timeout_ms, -1);
    answer(&mut t, id, 3, None);
    assert_eq!(t.g.state(), MemberState::Stable);
    assert_eq!(t.g.metadata().generation_id, 3);

    // The interval is the coordinator's (2 s), not heartbeat_interval_ms (3 s).
    t.now += Duration::from_millis(1_999);
    t.poll(true);
    assert!(t.pending(|r| matches!(r, Req::CgHeartbeat)).is_none());
    t.now += Duration::from_millis(1);
    t.poll(true);
    let (id, next) = heartbeat(&t);
    assert_eq!(next.member_epoch, 3);
    assert_eq!(
        partitions_of(&next),
        None,
        "nothing changed: every field null"
    );
    assert_eq!(next.subscribed_topic_names, None);

    // A failed heartbeat makes the next one full again.
    answer_error(&mut t, id, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    t.now += Duration::from_secs(1);
    t.poll(true);
    let (_, full) = heartbeat(&t);
    assert_eq!(full.subscribed_topic_names, Some(vec!["t".to_string()]));
    assert_eq!(partitions_of(&full), wire(&[0, 1]));
    assert_eq!(full.member_epoch, 3);
}

#[test]
fn revokes_and_commits_the_revoked_before_assigning() {
    let mut t = cp_t(|c| {
        c.enable_auto_commit = true;
        c.auto_commit_interval_ms = 60_000;
    });
    join(&mut t, &[0, 1]);
    for tp in tps(&[0, 1]) {
        t.subs.seek(&tp, 10, None).unwrap();
    }
    t.now += Duration::from_secs(2);
    t.poll(true);
    let (id, _) = heartbeat(&t);
    answer(&mut t, id, 2, Some(&[1, 2]));
    assert_eq!(t.g.state(), MemberState::Reconciling);

    // First the auto-commit, at OffsetCommit v9 with the new epoch and the member id.
    assert!(
        t.g.pending_call().is_none(),
        "the callback waits for the commit"
    );
    let commit = t
        .pending(|r| matches!(r, Req::Commit(_)))
        .expect("auto-commit");
    let Some((RequestBody::OffsetCommit(body), Some(9))) = t.net.queued_request(commit) else {
        panic!("not an OffsetCommit capped at v9");
    };
    let body: OffsetCommitRequest = body.clone();
    assert_eq!(body.generation_id_or_member_epoch, 2);
    assert_eq!(body.member_id, t.g.metadata().member_id);
    assert!(
        t.subs
            .get(&TopicPartition::new("t", 0))
            .unwrap()
            .pending_revocation
    );
    assert!(
        t.subs.assignment().contains(&TopicPartition::new("t", 0)),
        "still owned until revoked"
    );
    t.respond(commit, commit_ok(&[0, 1]));

    // Then the revocation, and only then the assignment.
    let revoked = t.g.pending_call().cloned().expect("revoked callback");
    assert_eq!(revoked.kind, RebalanceKind::Revoked);
    assert_eq!(revoked.partitions, tps(&[0]));
    assert!(!t.subs.assignment().contains(&TopicPartition::new("t", 2)));
    t.complete();
    let assigned = t.complete();
    assert_eq!(assigned.kind, RebalanceKind::Assigned);
    assert_eq!(assigned.partitions, tps(&[2]));
    assert_eq!(t.subs.assignment(), tps(&[1, 2]));
    let (id, ack) = heartbeat(&t);
    assert_eq!(ack.member_epoch, 2);
    assert_eq!(partitions_of(&ack), wire(&[1, 2]));
    answer(&mut t, id, 2, None);
    assert_eq!(t.g.state(), MemberState::Stable);
}

fn commit_ok(ps: &[i32]) -> ResponseBody {
    use crate::protocol::offset_commit::response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    ResponseBody::OffsetCommit(crate::protocol::OffsetCommitResponse {
        topics: vec![OffsetCommitResponseTopic {
            name: "t".into(),
            partitions: ps
                .iter()
                .map(|&p| OffsetCommitResponsePartition {
                    partition_index: p,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    })
}

#[test]
fn a_fenced_member_loses_its_partitions_and_rejoins_at_epoch_zero() {
    for code in [ErrorCode::FENCED_MEMBER_EPOCH, ErrorCode::UNKNOWN_MEMBER_ID] {
        let mut t = cp_t(|c| c.enable_auto_commit = true);
        join(&mut t, &[0, 1]);
        let member = t.g.metadata().member_id;
        for tp in tps(&[0, 1]) {
            t.subs.seek(&tp, 10, None).unwrap();
        }
        t.now += Duration::from_secs(2);
        t.poll(true);
        let (id, _) = heartbeat(&t);
        answer_error(&mut t, id, code);
        assert_eq!(t.g.state(), MemberState::Unjoined);
        let lost = t.g.pending_call().cloned().expect("lost callback");
        assert_eq!(lost.kind, RebalanceKind::Lost, "{code}");
        assert_eq!(lost.partitions, tps(&[0, 1]));
        assert!(
            t.pending(|r| matches!(r, Req::Commit(_))).is_none(),
            "no commit of lost partitions"
        );
        t.complete();
        assert!(t.subs.assignment().is_empty());
        t.poll(true);
        let (_, rejoin) = heartbeat(&t);
        assert_eq!(rejoin.member_epoch, 0);
        assert_eq!(rejoin.member_id, member, "the same member id");
        assert_eq!(rejoin.subscribed_topic_names, Some(vec!["t".to_string()]));
        assert_eq!(partitions_of(&rejoin), Some(vec![]));
    }
}

#[test]
fn leaving_sends_epoch_minus_one_and_minus_two_for_a_static_member() {
    for (instance, epoch) in [(None, LEAVE_EPOCH), (Some("i-1"), LEAVE_STATIC_EPOCH)] {
        let mut t = cp_t(|c| c.group_instance_id = instance.map(str::to_owned));
        join(&mut t, &[0]);
        let mut ctx = GroupCtx {
            net: &mut t.net,
            subs: &mut t.subs,
            now: t.now,
        };
        t.g.close(t.now + Duration::from_secs(30), &mut ctx);
        assert!(
            t.pending(|r| matches!(r, Req::Leave)).is_none(),
            "callback first"
        );
        assert_eq!(t.complete().kind, RebalanceKind::Revoked);
        let (_, leave) = sent(&t, |r| matches!(r, Req::Leave));
        assert_eq!(leave.member_epoch, epoch);
        assert_eq!(leave.instance_id.as_deref(), instance);
        assert_eq!(t.g.state(), MemberState::Unjoined);
        assert!(t.subs.assignment().is_empty());
    }
}

#[test]
fn a_pattern_goes_to_the_coordinator_as_written() {
    let mut t = cp_t(|_| {});
    let mut ctx = GroupCtx {
        net: &mut t.net,
        subs: &mut t.subs,
        now: t.now,
    };
    t.g.subscribe(Subscribed::pattern("t|u.*").unwrap(), &mut ctx);
    t.poll(true);
    let (_, hb) = heartbeat(&t);
    assert_eq!(hb.subscribed_topic_regex.as_deref(), Some("t|u.*"));
    assert_eq!(hb.subscribed_topic_names, Some(vec![]));
    assert!(
        t.pending(|r| matches!(r, Req::PatternMetadata)).is_none(),
        "the coordinator matches, not the client"
    );
}

#[test]
fn a_stale_member_epoch_retries_a_sync_commit() {
    let mut t = cp_t(|_| {});
    join(&mut t, &[0]);
    let mut ctx = GroupCtx {
        net: &mut t.net,
        subs: &mut t.subs,
        now: t.now,
    };
    let offsets = [(TopicPartition::new("t", 0), OffsetAndMetadata::new(3))].into();
    let key = t.g.commit(
        OpId(1),
        Some(offsets),
        Some(Duration::from_secs(30)),
        &mut ctx,
    );
    let id = t.pending(|r| matches!(r, Req::Commit(_))).unwrap();
    use crate::protocol::offset_commit::response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    t.respond(
        id,
        ResponseBody::OffsetCommit(crate::protocol::OffsetCommitResponse {
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitResponsePartition {
                    partition_index: 0,
                    error_code: ErrorCode::STALE_MEMBER_EPOCH.0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    );
    assert!(t.g.commits[&key].retry_at.is_some(), "retried");
    assert_eq!(
        t.g.state(),
        MemberState::Stable,
        "no rejoin for a stale epoch"
    );
}

#[test]
fn a_poll_timeout_leaves_and_the_next_poll_rejoins() {
    let mut t = cp_t(|c| c.max_poll_interval_ms = 10_000);
    join(&mut t, &[0]);
    t.now += Duration::from_secs(11);
    t.poll(false);
    let (_, leave) = sent(&t, |r| matches!(r, Req::Leave));
    assert_eq!(leave.member_epoch, LEAVE_EPOCH);
    assert_eq!(t.g.state(), MemberState::Unjoined);
    t.poll(true);
    assert_eq!(t.complete().kind, RebalanceKind::Lost);
    let (_, rejoin) = heartbeat(&t);
    assert_eq!(rejoin.member_epoch, 0);
}

#[test]
fn a_static_member_leaves_on_a_poll_timeout_with_epoch_minus_two() {
    // Java's poll-timer leave uses the same leave epoch as a close: -2 for a static member,
    // so the coordinator keeps its assignment for the session timeout and the rejoin with
    // the same instance id gets it back.
    let mut t = cp_t(|c| {
        c.max_poll_interval_ms = 10_000;
        c.group_instance_id = Some("i-1".into());
    });
    join(&mut t, &[0, 1]);
    t.now += Duration::from_secs(10);
    t.poll(false);
    let (_, leave) = sent(&t, |r| matches!(r, Req::Leave));
    assert_eq!(leave.member_epoch, LEAVE_STATIC_EPOCH);
    assert_eq!(leave.instance_id.as_deref(), Some("i-1"));
    assert_eq!(t.g.state(), MemberState::Unjoined);
    // Stale until the application polls: no heartbeat, no rejoin.
    t.now += Duration::from_secs(5);
    t.poll(false);
    assert!(t.pending(|r| matches!(r, Req::CgHeartbeat)).is_none());
    t.poll(true);
    let lost = t.complete();
    assert_eq!(lost.kind, RebalanceKind::Lost);
    assert_eq!(lost.partitions, tps(&[0, 1]));
    assert!(t.subs.assignment().is_empty());
    let (_, rejoin) = heartbeat(&t);
    assert_eq!(rejoin.member_epoch, 0);
    assert_eq!(rejoin.instance_id.as_deref(), Some("i-1"));
    assert_eq!(partitions_of(&rejoin), Some(vec![]));
}

#[test]
fn failing_heartbeats_keep_the_partitions_until_the_coordinator_says_otherwise() {
    // As Java's consumer protocol: no client-side session timer (the session timeout is the
    // broker's, unknown here). Failed heartbeats are retried, the coordinator looked up again,
    // and the partitions kept until the coordinator answers that the member is gone.
    let mut t = cp_t(|c| c.enable_auto_commit = true);
    join(&mut t, &[0, 1]);
    let start = t.now;
    let mut retries = 0;
    while t.now < start + Duration::from_secs(120) {
        t.now += Duration::from_secs(2);
        t.poll(true);
        let (id, hb) = heartbeat(&t);
        assert_eq!(hb.member_epoch, 1, "still the member's epoch");
        let mut ctx = GroupCtx {
            net: &mut t.net,
            subs: &mut t.subs,
            now: t.now,
        };
        t.g.handle_response(
            id,
            Err(NetError::Disconnected {
                broker: "b:9092".into(),
                reason: "reset".into(),
            }),
            &mut ctx,
        );
        retries += 1;
        assert_eq!(t.g.state(), MemberState::Stable);
        assert!(t.g.pending_call().is_none(), "no lost callback");
        assert_eq!(t.subs.assignment(), tps(&[0, 1]));
    }
    assert!(retries >= 60);
    t.now += Duration::from_secs(2);
    t.poll(true);
    let (id, full) = heartbeat(&t);
    assert_eq!(partitions_of(&full), wire(&[0, 1]), "a full heartbeat");
    answer_error(&mut t, id, ErrorCode::UNKNOWN_MEMBER_ID);
    let lost = t.complete();
    assert_eq!(lost.kind, RebalanceKind::Lost);
    assert_eq!(lost.partitions, tps(&[0, 1]));
}

#[test]
fn member_ids_are_random_url_safe_uuids() {
    let mut rng = crate::network::Rng::new(1);
    let a = new_member_id(None, &mut rng);
    let b = new_member_id(None, &mut rng);
    assert_ne!(a, b);
    assert_eq!(a.len(), 22);
    assert!(!a.starts_with('-'));
    let entropy: std::sync::Arc<dyn crate::network::Entropy> =
        std::sync::Arc::new(crate::network::SeededEntropy::new(9));
    assert_eq!(new_member_id(Some(&entropy), &mut rng).len(), 22);
}

#[test]
fn classic_only_options_are_refused_with_the_consumer_protocol() {
    let ok = ConsumerConfig::from_properties(
        "group.id=g\ngroup.protocol=consumer\ngroup.remote.assignor=range\n",
    )
    .unwrap();
    assert_eq!(ok.group_protocol, GroupProtocol::Consumer);
    assert_eq!(ok.group_remote_assignor.as_deref(), Some("range"));
    for extra in [
        "session.timeout.ms=10000",
        "heartbeat.interval.ms=1000",
        "partition.assignment.strategy=roundrobin",
    ] {
        let e = ConsumerConfig::from_properties(&format!(
            "group.id=g\ngroup.protocol=consumer\n{extra}\n"
        ));
        assert!(e.is_err(), "{extra} accepted");
    }
    assert!(ConsumerConfig::from_properties("group.id=g\ngroup.remote.assignor=range\n").is_err());
    assert!(ConsumerConfig::from_properties("group.protocol=eager\n").is_err());
}

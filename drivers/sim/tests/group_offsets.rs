//! The simulated group coordinator's offsets: OffsetCommit (generation checks and simple
//! commits), OffsetFetch (single group, all topics, several groups) and OffsetDelete.

#[path = "group_harness.rs"]
mod harness;

use harness::*;
use kafkit_core::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_core::protocol::offset_delete::request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafkit_core::protocol::offset_fetch::request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafkit_core::protocol::{
    ErrorCode, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, OffsetFetchResponse,
};

/// Who commits: generation, member id, instance id.
struct Committer<'a> {
    generation: i32,
    member_id: &'a str,
    instance_id: Option<&'a str>,
}

const SIMPLE: Committer<'static> = Committer {
    generation: -1,
    member_id: "",
    instance_id: None,
};

fn of(c: &Consumer) -> Committer<'_> {
    Committer {
        generation: c.generation,
        member_id: &c.member_id,
        instance_id: c.instance_id.as_deref(),
    }
}

/// Commits `(topic, partition, offset)`s for `group` at `version`; returns the error codes in
/// request order.
fn commit(
    h: &mut Harness,
    version: i16,
    group: &str,
    who: &Committer<'_>,
    offsets: &[(&str, i32, i64)],
) -> Vec<ErrorCode> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for &(topic, partition, offset) in offsets {
        let p = OffsetCommitRequestPartition {
            partition_index: partition,
            committed_offset: offset,
            committed_leader_epoch: if version >= 6 { 7 } else { -1 },
            commit_timestamp: if version == 1 { 1_700_000_000_000 } else { -1 },
            committed_metadata: Some(format!("m{offset}")),
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.name == topic => t.partitions.push(p),
            _ => topics.push(OffsetCommitRequestTopic {
                name: topic.to_string(),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let req = OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: if version >= 1 { who.generation } else { -1 },
        member_id: if version >= 1 {
            who.member_id.to_string()
        } else {
            String::new()
        },
        group_instance_id: who.instance_id.map(str::to_string).filter(|_| version >= 7),
        topics,
        ..Default::default()
    };
    let r = h.call(50, "committer", version, req);
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error()))
        .collect()
}

/// Fetches (v0-7) the offsets of `group`; `None` topics for all of them. Returns
/// `(topic, partition, offset, leader epoch, metadata)`.
fn fetch(
    h: &mut Harness,
    version: i16,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<(String, i32, i64, i32, String)> {
    let req = OffsetFetchRequest {
        group_id: group.to_string(),
        topics: topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| OffsetFetchRequestTopic {
                    name: t.to_string(),
                    partition_indexes: ps.to_vec(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    let r = h.call(51, "fetcher", version, req);
    assert_eq!(r.error_code, 0);
    assert!(r.groups.is_empty());
    let mut out = Vec::new();
    for t in r.topics {
        for p in t.partitions {
            assert_eq!(p.error_code, 0);
            out.push((
                t.name.clone(),
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
                p.metadata.unwrap_or_default(),
            ));
        }
    }
    out
}

fn row(t: &str, p: i32, o: i64, e: i32, m: &str) -> (String, i32, i64, i32, String) {
    (t.to_string(), p, o, e, m.to_string())
}

fn delete(h: &mut Harness, group: &str, offsets: &[(&str, i32)]) -> (ErrorCode, Vec<ErrorCode>) {
    let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
    for &(topic, partition) in offsets {
        let p = OffsetDeleteRequestPartition {
            partition_index: partition,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.name == topic => t.partitions.push(p),
            _ => topics.push(OffsetDeleteRequestTopic {
                name: topic.to_string(),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let req = OffsetDeleteRequest {
        group_id: group.to_string(),
        topics,
        ..Default::default()
    };
    let r = h.call(52, "admin", 0, req);
    let errors = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error()))
        .collect();
    (r.error(), errors)
}

const NONE: ErrorCode = ErrorCode::NONE;

#[test]
fn simple_commits_create_an_empty_group_and_fetch_returns_them() {
    let mut h = Harness::quick();
    let errors = commit(
        &mut h,
        2,
        "simple",
        &SIMPLE,
        &[("orders", 0, 42), ("orders", 1, 43), ("payments", 2, 9)],
    );
    assert_eq!(errors, vec![NONE; 3]);
    assert_eq!(h.state("simple"), Some(GroupState::Empty));
    let stored = h.gc.committed_offset("simple", "orders", 0).unwrap();
    assert_eq!((stored.offset, stored.metadata.as_str()), (42, "m42"));
    assert_eq!((stored.leader_epoch, stored.committed_at), (-1, h.now));

    // Asked-for partitions in request order; nothing committed is -1 with "" metadata.
    let asked: &[(&str, &[i32])] = &[("payments", &[2, 0]), ("orders", &[1])];
    assert_eq!(
        fetch(&mut h, 1, "simple", Some(asked)),
        vec![
            row("payments", 2, 9, -1, "m9"),
            row("payments", 0, -1, -1, ""),
            row("orders", 1, 43, -1, "m43"),
        ]
    );
    // From v2, null topics mean all, sorted.
    assert_eq!(
        fetch(&mut h, 2, "simple", None),
        vec![
            row("orders", 0, 42, -1, "m42"),
            row("orders", 1, 43, -1, "m43"),
            row("payments", 2, 9, -1, "m9"),
        ]
    );
    // Leader epochs are kept from v6 commits and shown from v5 fetches.
    assert_eq!(
        commit(&mut h, 8, "simple", &SIMPLE, &[("audit", 0, 5)]),
        vec![NONE]
    );
    let asked: &[(&str, &[i32])] = &[("audit", &[0])];
    assert_eq!(
        fetch(&mut h, 7, "simple", Some(asked)),
        vec![row("audit", 0, 5, 7, "m5")]
    );
    assert_eq!(
        fetch(&mut h, 4, "simple", Some(asked)),
        vec![row("audit", 0, 5, -1, "m5")]
    );
    // v0 and v1 commits work too (v1 keeps the client's timestamp).
    assert_eq!(
        commit(&mut h, 0, "simple", &SIMPLE, &[("audit", 0, 6)]),
        vec![NONE]
    );
    assert_eq!(
        commit(&mut h, 1, "simple", &SIMPLE, &[("audit", 0, 7)]),
        vec![NONE]
    );
    let stored = h.gc.committed_offset("simple", "audit", 0).unwrap();
    assert_eq!(
        (stored.offset, stored.commit_timestamp_ms),
        (7, 1_700_000_000_000)
    );
    // Generation -1 commits to an empty group go in whatever member id they carry.
    let admin = Committer {
        generation: -1,
        member_id: "someone",
        instance_id: None,
    };
    assert_eq!(
        commit(&mut h, 8, "simple", &admin, &[("audit", 0, 8)]),
        vec![NONE]
    );
    // Unknown groups have nothing.
    assert_eq!(fetch(&mut h, 6, "nobody", None), vec![]);
    assert_eq!(h.gc.group_ids(), vec!["simple".to_string()]);
}

#[test]
fn commit_checks_topics_metadata_and_unknown_groups() {
    let mut h = Harness::quick();
    let errors = commit(
        &mut h,
        8,
        "simple",
        &SIMPLE,
        &[("orders", 0, 1), ("orders", 6, 1), ("nope", 0, 1)],
    );
    assert_eq!(
        errors,
        vec![
            NONE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    // Only unknown partitions: the group is not even created.
    assert_eq!(
        commit(&mut h, 8, "other", &SIMPLE, &[("nope", 0, 1)]),
        vec![ErrorCode::UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(h.state("other"), None);
    // A generation for a group nobody knows is ILLEGAL_GENERATION.
    let who = Committer {
        generation: 3,
        member_id: "m",
        instance_id: None,
    };
    assert_eq!(
        commit(&mut h, 8, "other", &who, &[("orders", 0, 1)]),
        vec![ErrorCode::ILLEGAL_GENERATION]
    );
    assert_eq!(h.state("other"), None);
    // Metadata is limited to 4096 bytes.
    let req = OffsetCommitRequest {
        group_id: "simple".into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "orders".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 2,
                committed_metadata: Some("x".repeat(4097)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = h.call(1, "c", 8, req);
    assert_eq!(
        ErrorCode(r.topics[0].partitions[0].error_code),
        ErrorCode::OFFSET_METADATA_TOO_LARGE
    );
    assert_eq!(
        h.gc.committed_offset("simple", "orders", 0).unwrap().offset,
        1
    );
}

#[test]
fn member_commits_are_checked_against_generation_and_state() {
    let mut h = Harness::quick();
    let mut cs: Vec<_> = (1..=3)
        .map(|i| Consumer::new(i, "g", &["orders"]))
        .collect();
    let (two, third) = cs.split_at_mut(2);
    form_group(&mut h, two, 1_000);
    let at = &[("orders", 0, 10)];
    assert_eq!(commit(&mut h, 8, "g", &of(&two[0]), at), vec![NONE]);
    let mut stale = two[1].clone();
    stale.generation = 0;
    assert_eq!(
        commit(&mut h, 8, "g", &of(&stale), at),
        vec![ErrorCode::ILLEGAL_GENERATION]
    );
    stale.member_id = "ghost".into();
    stale.generation = 1;
    assert_eq!(
        commit(&mut h, 8, "g", &of(&stale), at),
        vec![ErrorCode::UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        commit(&mut h, 8, "g", &SIMPLE, at),
        vec![ErrorCode::UNKNOWN_MEMBER_ID],
        "only members commit for a group with members"
    );

    // A newcomer starts a rebalance: commits of the current generation still go in.
    let p2 = third[0].join(&mut h);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        commit(&mut h, 8, "g", &of(&two[1]), &[("orders", 1, 11)]),
        vec![NONE]
    );
    let p0 = two[0].join(&mut h);
    let p1 = two[1].join(&mut h);
    for (c, p) in two.iter_mut().zip([&p0, &p1]) {
        assert_eq!(c.joined(&mut h, p).generation_id, 2);
    }
    third[0].joined(&mut h, &p2);
    // CompletingRebalance: REBALANCE_IN_PROGRESS for the new generation, the old is illegal.
    assert_eq!(
        commit(&mut h, 8, "g", &of(&two[0]), at),
        vec![ErrorCode::REBALANCE_IN_PROGRESS]
    );
    let mut old = two[0].clone();
    old.generation = 1;
    assert_eq!(
        commit(&mut h, 8, "g", &of(&old), at),
        vec![ErrorCode::ILLEGAL_GENERATION]
    );
    assert_eq!(h.gc.committed_offset("g", "orders", 1).unwrap().offset, 11);
}

#[test]
fn commits_keep_a_member_alive_and_fence_old_static_instances() {
    let mut h = Harness::quick();
    let mut cs = vec![
        Consumer::new_static(1, "g", &["orders"], "i1"),
        Consumer::new_static(2, "g", &["orders"], "i2"),
    ];
    form_group(&mut h, &mut cs, 1_000);
    // cs[1] only commits, never heartbeats: the commits keep its session.
    for i in 0..10 {
        h.advance(3_000);
        assert_eq!(cs[0].heartbeat(&mut h), ErrorCode::NONE);
        assert_eq!(
            commit(&mut h, 8, "g", &of(&cs[1]), &[("orders", 0, i)]),
            vec![NONE]
        );
    }
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    let mut restarted = Consumer::new_static(12, "g", &["orders"], "i2");
    let p = restarted.join(&mut h);
    restarted.joined(&mut h, &p);
    assert_eq!(
        commit(&mut h, 7, "g", &of(&cs[1]), &[("orders", 0, 99)]),
        vec![ErrorCode::FENCED_INSTANCE_ID]
    );
    assert_eq!(
        commit(&mut h, 7, "g", &of(&restarted), &[("orders", 0, 99)]),
        vec![NONE]
    );
}

#[test]
fn fetch_of_several_groups_from_v8() {
    let mut h = Harness::quick();
    assert_eq!(
        commit(&mut h, 8, "a", &SIMPLE, &[("orders", 0, 1)]),
        vec![NONE]
    );
    assert_eq!(
        commit(&mut h, 8, "b", &SIMPLE, &[("payments", 1, 2)]),
        vec![NONE]
    );
    let req = OffsetFetchRequest {
        groups: vec![
            OffsetFetchRequestGroup {
                group_id: "a".into(),
                topics: None,
                ..Default::default()
            },
            OffsetFetchRequestGroup {
                group_id: "b".into(),
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: "payments".into(),
                    partition_indexes: vec![1, 2],
                    ..Default::default()
                }]),
                ..Default::default()
            },
            OffsetFetchRequestGroup {
                group_id: "c".into(),
                topics: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    for version in [8, 9] {
        let OffsetFetchResponse { topics, groups, .. } = h.call(1, "c", version, req.clone());
        assert!(topics.is_empty());
        let ids: Vec<_> = groups.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert!(groups.iter().all(|g| g.error_code == 0));
        let a = &groups[0].topics;
        assert_eq!((a.len(), a[0].name.as_str()), (1, "orders"));
        assert_eq!(a[0].partitions[0].committed_offset, 1);
        let b = &groups[1].topics[0].partitions;
        assert_eq!(
            b.iter().map(|p| p.committed_offset).collect::<Vec<_>>(),
            vec![2, -1]
        );
        assert!(groups[2].topics.is_empty());
    }
}

#[test]
fn offset_delete_refuses_subscribed_topics_and_empties_groups() {
    let mut h = Harness::quick();
    let mut cs = vec![Consumer::new(1, "g", &["orders"])];
    form_group(&mut h, &mut cs, 1_000);
    let c = &cs[0];
    assert_eq!(
        commit(
            &mut h,
            8,
            "g",
            &of(c),
            &[("orders", 0, 5), ("payments", 0, 6)]
        ),
        vec![NONE, NONE]
    );
    let (top, errors) = delete(&mut h, "g", &[("orders", 0), ("payments", 0), ("nope", 0)]);
    assert_eq!(top, NONE);
    assert_eq!(
        errors,
        vec![
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC,
            NONE,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert!(h.gc.committed_offset("g", "orders", 0).is_some());
    assert!(h.gc.committed_offset("g", "payments", 0).is_none());

    // Once the group is empty, anything goes; without offsets left, the group is gone.
    let req = kafkit_core::protocol::LeaveGroupRequest {
        group_id: "g".into(),
        member_id: c.member_id.clone(),
        ..Default::default()
    };
    h.call(1, "c1", 1, req);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    assert_eq!(delete(&mut h, "g", &[("orders", 0)]), (NONE, vec![NONE]));
    assert_eq!(h.state("g"), None);

    assert_eq!(
        delete(&mut h, "g", &[("orders", 0)]),
        (ErrorCode::GROUP_ID_NOT_FOUND, vec![])
    );
    assert_eq!(
        delete(&mut h, "", &[("orders", 0)]),
        (ErrorCode::INVALID_GROUP_ID, vec![])
    );

    // A group of another protocol type with members: NON_EMPTY_GROUP.
    let mut req = Consumer::new(3, "workers", &["orders"]).join_request();
    req.protocol_type = "connect".into();
    req.protocols[0].metadata = bytes::Bytes::from_static(b"not a subscription");
    let _ = h.send(3, "c3", 3, req);
    assert_eq!(h.gc.group("workers").unwrap().members.len(), 1);
    assert_eq!(
        delete(&mut h, "workers", &[("orders", 0)]),
        (ErrorCode::NON_EMPTY_GROUP, vec![])
    );
}

#[test]
fn unreadable_subscriptions_count_as_subscribed_to_everything() {
    let mut h = Harness::quick();
    let mut cs = vec![Consumer::new(1, "g", &["orders"])];
    cs[0].protocols[0].1 = bytes::Bytes::from_static(&[0, 0, 0xff]);
    form_group(&mut h, &mut cs, 1_000);
    assert_eq!(
        delete(&mut h, "g", &[("payments", 0)]),
        (NONE, vec![ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC])
    );
}

#[test]
fn deleted_topics_lose_their_offsets() {
    let mut h = Harness::quick();
    assert_eq!(
        commit(
            &mut h,
            8,
            "a",
            &SIMPLE,
            &[("orders", 0, 1), ("payments", 0, 1)]
        ),
        vec![NONE, NONE]
    );
    assert_eq!(
        commit(&mut h, 8, "b", &SIMPLE, &[("orders", 0, 1)]),
        vec![NONE]
    );
    h.gc.topic_deleted("orders");
    assert!(h.gc.committed_offset("a", "orders", 0).is_none());
    assert_eq!(h.gc.group_ids(), vec!["a".to_string()]);
}

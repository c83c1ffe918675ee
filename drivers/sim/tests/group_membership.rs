//! The simulated group coordinator's membership protocol: JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup through rebalances, session and rebalance timeouts, static membership.

#[path = "group_harness.rs"]
mod harness;

use bytes::Bytes;
use harness::*;
use kafkit_core::protocol::leave_group::request::MemberIdentity;
use kafkit_core::protocol::{
    ErrorCode, JoinGroupRequest, LeaveGroupRequest, ResponseBody, SyncGroupRequest,
};

const NONE: ErrorCode = ErrorCode::NONE;

fn consumers(n: u64) -> Vec<Consumer> {
    (1..=n)
        .map(|i| Consumer::new(i, "g", &["orders"]))
        .collect()
}

fn leave(
    h: &mut Harness,
    version: i16,
    members: &[(&str, Option<&str>)],
) -> kafkit_core::protocol::LeaveGroupResponse {
    let req = LeaveGroupRequest {
        group_id: "g".into(),
        member_id: members.first().map(|m| m.0.to_string()).unwrap_or_default(),
        members: if version >= 3 {
            members
                .iter()
                .map(|(m, i)| MemberIdentity {
                    member_id: m.to_string(),
                    group_instance_id: i.map(str::to_string),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    h.call(99, "admin", version, req)
}

#[test]
fn three_members_join_with_member_id_required_sync_and_heartbeat() {
    let mut h = Harness::new(GroupConfig::default());
    let mut cs = consumers(3);

    // First contact: MEMBER_ID_REQUIRED with a generated id, then the rejoin is parked.
    let (_, first) = h.send(1, "c1", 7, cs[0].join_request());
    let GroupReply::Now(ResponseBody::JoinGroup(r)) = first else {
        panic!("expected MEMBER_ID_REQUIRED")
    };
    assert_eq!(r.error(), ErrorCode::MEMBER_ID_REQUIRED);
    assert!(r.member_id.starts_with("c1-"), "{}", r.member_id);
    assert_eq!(r.generation_id, -1);
    cs[0].member_id = r.member_id.clone();
    let p0 = h.send(1, "c1", 7, cs[0].join_request());
    assert_eq!(p0.1, GroupReply::Deferred);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let p1 = cs[1].join(&mut h);
    let p2 = cs[2].join(&mut h);
    assert_eq!(p1.1, GroupReply::Deferred);
    assert_eq!(p2.1, GroupReply::Deferred);

    // The initial delay (3 s) is extended once because members joined during it.
    h.advance(5_999);
    assert!(
        h.answers.is_empty(),
        "answered before the delay: {:?}",
        h.answers
    );
    h.advance(1);
    let rs = [
        cs[0].joined(&mut h, &p0),
        cs[1].joined(&mut h, &p1),
        cs[2].joined(&mut h, &p2),
    ];
    for r in &rs {
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, cs[0].member_id, "the first member leads");
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    }
    assert_eq!(rs[0].members.len(), 3);
    assert_eq!(rs[0].members[1].member_id, cs[1].member_id);
    assert_eq!(rs[0].members[1].metadata, subscription(&["orders"]));
    assert!(rs[1].members.is_empty() && rs[2].members.is_empty());
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));

    // Followers wait for the leader's assignment.
    let s1 = cs[1].sync(&mut h, &[]);
    let s2 = cs[2].sync(&mut h, &[]);
    assert_eq!(s1.1, GroupReply::Deferred);
    assert_eq!(s2.1, GroupReply::Deferred);
    assert!(h.answers.is_empty());
    let plan: Vec<(&str, Bytes)> = vec![
        (&cs[0].member_id, assignment("orders", &[0, 1])),
        (&cs[1].member_id, assignment("orders", &[2, 3])),
        (&cs[2].member_id, assignment("orders", &[4, 5])),
    ];
    let s0 = cs[0].sync(&mut h, &plan);
    assert!(
        matches!(s0.1, GroupReply::Now(_)),
        "the leader is answered at once"
    );
    let r0 = cs[0].synced(&mut h, &s0);
    let r1 = cs[1].synced(&mut h, &s1);
    let r2 = cs[2].synced(&mut h, &s2);
    assert_eq!(
        assigned_partitions(&r0.assignment),
        vec![("orders".into(), vec![0, 1])]
    );
    assert_eq!(
        assigned_partitions(&r1.assignment),
        vec![("orders".into(), vec![2, 3])]
    );
    assert_eq!(
        assigned_partitions(&r2.assignment),
        vec![("orders".into(), vec![4, 5])]
    );
    assert_eq!(r1.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.state("g"), Some(GroupState::Stable));

    // Heartbeats keep everyone in for well past the session timeout.
    for _ in 0..10 {
        h.advance(3_000);
        for c in &cs {
            assert_eq!(c.heartbeat(&mut h), NONE);
        }
    }
    let g = h.gc.group("g").unwrap();
    assert_eq!(
        (g.state, g.generation_id, g.members.len()),
        (GroupState::Stable, 1, 3)
    );

    // A late SyncGroup in Stable gets the stored assignment.
    let again = cs[2].sync(&mut h, &[]);
    assert_eq!(cs[2].synced(&mut h, &again).assignment, r2.assignment);
}

#[test]
fn session_expiry_removes_the_silent_member_and_the_rest_rebalance() {
    let mut h = Harness::quick();
    let mut cs = consumers(3);
    form_group(&mut h, &mut cs, 1_000);
    let expired_at = h.elapsed_ms() + 10_000;
    // c3 stops heartbeating; the others keep going.
    let mut saw_rebalance = false;
    while h.elapsed_ms() < expired_at + 3_000 {
        h.advance(2_000);
        for c in &cs[..2] {
            let e = c.heartbeat(&mut h);
            if e == ErrorCode::REBALANCE_IN_PROGRESS {
                saw_rebalance = true;
            } else {
                assert_eq!(e, NONE);
            }
        }
    }
    assert!(saw_rebalance);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(cs[2].heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);

    let p0 = cs[0].join(&mut h);
    assert_eq!(p0.1, GroupReply::Deferred);
    let p1 = cs[1].join(&mut h);
    assert!(
        matches!(p1.1, GroupReply::Now(_)),
        "the last rejoin completes the join phase"
    );
    let r0 = cs[0].joined(&mut h, &p0);
    let r1 = cs[1].joined(&mut h, &p1);
    assert_eq!((r0.generation_id, r1.generation_id), (2, 2));
    assert_eq!(r0.members.len(), 2);
    assert_eq!(r0.leader, cs[0].member_id);
}

#[test]
fn a_leaving_member_triggers_a_rebalance() {
    let mut h = Harness::quick();
    let mut cs = consumers(3);
    form_group(&mut h, &mut cs, 1_000);
    let r = leave(&mut h, 4, &[(&cs[1].member_id, None)]);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.members[0].member_id, cs[1].member_id);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(cs[0].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(cs[2].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(cs[1].heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);
    let p0 = cs[0].join(&mut h);
    let p2 = cs[2].join(&mut h);
    let r0 = cs[0].joined(&mut h, &p0);
    let r2 = cs[2].joined(&mut h, &p2);
    assert_eq!((r0.generation_id, r2.generation_id), (2, 2));
    assert_eq!(
        r0.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![cs[0].member_id.clone(), cs[2].member_id.clone()]
    );

    // Leaving again: unknown members are per-member errors from v3, the single error before.
    let r = leave(&mut h, 3, &[(&cs[1].member_id, None)]);
    assert_eq!((r.error_code, r.members[0].error_code), (0, 25));
    let r = leave(&mut h, 1, &[(&cs[1].member_id, None)]);
    assert_eq!(r.error(), ErrorCode::UNKNOWN_MEMBER_ID);
    assert!(r.members.is_empty());
    // The last members leave (v0 and a v5 batch): the group ends Empty at the next generation.
    let r = leave(&mut h, 0, &[(&cs[0].member_id, None)]);
    assert_eq!(r.error_code, 0);
    let r = leave(&mut h, 5, &[(&cs[2].member_id, None)]);
    assert_eq!(r.members[0].error_code, 0);
    let g = h.gc.group("g").unwrap();
    assert_eq!((g.state, g.generation_id), (GroupState::Empty, 3));
    assert!(g.members.is_empty() && g.leader.is_none());
}

#[test]
fn a_fourth_member_makes_everyone_rejoin_at_the_next_generation() {
    let mut h = Harness::quick();
    let mut cs = consumers(4);
    let (first, fourth) = cs.split_at_mut(3);
    form_group(&mut h, first, 1_000);
    let p3 = fourth[0].join(&mut h);
    assert_eq!(p3.1, GroupReply::Deferred);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    for c in first.iter() {
        assert_eq!(c.heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    }
    let pending: Vec<_> = first.iter_mut().map(|c| c.join(&mut h)).collect();
    assert_eq!(pending[0].1, GroupReply::Deferred);
    assert!(matches!(pending[2].1, GroupReply::Now(_)));
    let mut rs: Vec<_> = first
        .iter_mut()
        .zip(&pending)
        .map(|(c, p)| c.joined(&mut h, p))
        .collect();
    rs.push(fourth[0].joined(&mut h, &p3));
    for r in &rs {
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, 2);
    }
    assert_eq!(rs[0].members.len(), 4);
    // The old generation is gone.
    let mut stale = first[1].clone();
    stale.generation = 1;
    assert_eq!(stale.heartbeat(&mut h), ErrorCode::ILLEGAL_GENERATION);
    // CompletingRebalance: heartbeats of the new generation are fine.
    assert_eq!(first[1].heartbeat(&mut h), NONE);
}

#[test]
fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed() {
    let mut h = Harness::quick();
    let mut cs = consumers(4);
    let (first, fourth) = cs.split_at_mut(3);
    form_group(&mut h, first, 1_000);
    let p3 = fourth[0].join(&mut h);
    let p0 = first[0].join(&mut h);
    let p1 = first[1].join(&mut h);
    // first[2] keeps heartbeating but never rejoins.
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(first[2].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    }
    assert!(h.answers.is_empty());
    h.advance(3_000); // 30 s: the rebalance timeout
    let r0 = first[0].joined(&mut h, &p0);
    first[1].joined(&mut h, &p1);
    fourth[0].joined(&mut h, &p3);
    assert_eq!(r0.generation_id, 2);
    let ids: Vec<_> = r0.members.iter().map(|m| m.member_id.clone()).collect();
    assert_eq!(
        ids,
        vec![
            first[0].member_id.clone(),
            first[1].member_id.clone(),
            fourth[0].member_id.clone()
        ]
    );
    assert_eq!(first[2].heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_member_id_handed_out_but_never_used_holds_the_rebalance_until_it_expires() {
    let mut h = Harness::quick();
    let mut cs = consumers(3);
    let (two, third) = cs.split_at_mut(2);
    form_group(&mut h, two, 1_000);
    // The third consumer gets its member id but never comes back with it.
    let (_, r) = h.send(3, "c3", 7, third[0].join_request());
    let GroupReply::Now(ResponseBody::JoinGroup(r)) = r else {
        panic!()
    };
    assert_eq!(r.error(), ErrorCode::MEMBER_ID_REQUIRED);
    assert_eq!(h.state("g"), Some(GroupState::Stable), "no rebalance yet");
    let start = h.elapsed_ms();
    // The leader rejoining starts a rebalance; the follower rejoins too.
    let p0 = two[0].join(&mut h);
    let p1 = two[1].join(&mut h);
    assert_eq!(
        p1.1,
        GroupReply::Deferred,
        "the pending member id is still outstanding"
    );
    h.advance(9_999);
    assert!(h.answers.is_empty());
    h.advance(1); // the pending id's session timeout (10 s)
    assert_eq!(h.elapsed_ms() - start, 10_000);
    assert_eq!(two[0].joined(&mut h, &p0).generation_id, 2);
    assert_eq!(two[1].joined(&mut h, &p1).generation_id, 2);
}

#[test]
fn static_member_restart_keeps_its_assignment_without_a_rebalance() {
    let mut h = Harness::quick();
    let mut cs = vec![
        Consumer::new_static(1, "g", &["orders"], "i1"),
        Consumer::new_static(2, "g", &["orders"], "i2"),
    ];
    form_group(&mut h, &mut cs, 1_000);
    assert!(cs[0].member_id.starts_with("i1-"), "{}", cs[0].member_id);
    let before = h.gc.group("g").unwrap();
    let old = cs[1].clone();
    let old_assignment = before.members[1].assignment.clone();
    assert!(!old_assignment.is_empty());

    // The process restarts: same instance id, no member id, new connection.
    let mut restarted = Consumer::new_static(12, "g", &["orders"], "i2");
    let p = restarted.join(&mut h);
    let GroupReply::Now(_) = p.1 else {
        panic!("a known static member is answered at once")
    };
    let r = restarted.joined(&mut h, &p);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1, "no new generation");
    assert_ne!(r.member_id, old.member_id);
    assert!(r.member_id.starts_with("i2-"));
    assert_eq!(r.leader, cs[0].member_id);
    assert!(r.members.is_empty());
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    let s = restarted.sync(&mut h, &[]);
    assert_eq!(restarted.synced(&mut h, &s).assignment, old_assignment);
    assert_eq!(restarted.heartbeat(&mut h), NONE);
    assert_eq!(
        cs[0].heartbeat(&mut h),
        NONE,
        "the other member never noticed"
    );

    // The old incarnation is fenced everywhere.
    assert_eq!(old.heartbeat(&mut h), ErrorCode::FENCED_INSTANCE_ID);
    let s = old.sync(&mut h, &[]);
    assert_eq!(
        ErrorCode(old.synced(&mut h, &s).error_code),
        ErrorCode::FENCED_INSTANCE_ID
    );
    let mut old_join = old.clone();
    let p = old_join.join(&mut h);
    assert_eq!(
        ErrorCode(old_join.joined(&mut h, &p).error_code),
        ErrorCode::FENCED_INSTANCE_ID
    );
    let r = leave(&mut h, 3, &[(&old.member_id, Some("i2"))]);
    assert_eq!(
        ErrorCode(r.members[0].error_code),
        ErrorCode::FENCED_INSTANCE_ID
    );
    let g = h.gc.group("g").unwrap();
    assert_eq!((g.state, g.generation_id), (GroupState::Stable, 1));

    // Removing the instance by id alone (administrative leave) does rebalance.
    let r = leave(&mut h, 3, &[("", Some("i2"))]);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let r = leave(&mut h, 3, &[("", Some("i9"))]);
    assert_eq!(
        ErrorCode(r.members[0].error_code),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn static_members_that_miss_the_rebalance_stay_until_their_session_expires() {
    let mut h = Harness::quick();
    let mut cs = vec![
        Consumer::new(1, "g", &["orders"]),
        Consumer::new_static(2, "g", &["orders"], "i2"),
    ];
    form_group(&mut h, &mut cs, 1_000);
    let p0 = cs[0].join(&mut h);
    // The static member heartbeats (told of the rebalance) but does not rejoin.
    for _ in 0..10 {
        h.advance(3_000);
        if h.answers.is_empty() {
            assert_eq!(cs[1].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
        }
    }
    // At the rebalance timeout it is kept, unlike a dynamic member: the generation has it.
    let r0 = cs[0].joined(&mut h, &p0);
    assert_eq!(r0.generation_id, 2);
    assert_eq!(r0.members.len(), 2);
    assert_eq!(cs[1].heartbeat(&mut h), ErrorCode::ILLEGAL_GENERATION);
    // Its heartbeats of the old generation do not keep it: its session ends, and the group
    // rebalances without it.
    let s = cs[0].sync(&mut h, &[]);
    assert_eq!(cs[0].synced(&mut h, &s).error_code, 0);
    for _ in 0..4 {
        h.advance(3_000);
        let _ = cs[0].heartbeat(&mut h);
    }
    let g = h.gc.group("g").unwrap();
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn restarted_static_leader_learns_it_leads_only_from_v9() {
    for version in [5, 9] {
        let mut h = Harness::quick();
        let mut cs = vec![
            Consumer::new_static(1, "g", &["orders"], "i1"),
            Consumer::new_static(2, "g", &["orders"], "i2"),
        ];
        form_group(&mut h, &mut cs, 1_000);
        let mut restarted = Consumer::new_static(11, "g", &["orders"], "i1");
        restarted.version = version;
        let p = restarted.join(&mut h);
        let r = restarted.joined(&mut h, &p);
        assert_eq!((r.error_code, r.generation_id), (0, 1));
        if version < 9 {
            assert_eq!(r.leader, cs[0].member_id, "the old leader id comes back");
            assert!(!r.skip_assignment && r.members.is_empty());
        } else {
            assert_eq!(r.leader, r.member_id);
            assert!(r.skip_assignment);
            assert_eq!(r.members.len(), 2);
        }
        assert_eq!(h.state("g"), Some(GroupState::Stable));
        assert_eq!(
            h.gc.group("g").unwrap().leader.as_deref(),
            Some(r.member_id.as_str())
        );
    }
}

#[test]
fn static_member_changing_the_protocol_choice_triggers_a_rebalance() {
    let mut h = Harness::quick();
    let both = |c: &mut Consumer| {
        c.protocols
            .push(("roundrobin".into(), subscription(&["orders"])));
    };
    let mut cs = vec![
        Consumer::new_static(1, "g", &["orders"], "i1"),
        Consumer::new_static(2, "g", &["orders"], "i2"),
    ];
    cs.iter_mut().for_each(both);
    form_group(&mut h, &mut cs, 1_000);
    let mut restarted = Consumer::new_static(12, "g", &["orders"], "i2");
    restarted.protocols = vec![("roundrobin".into(), subscription(&["orders"]))];
    let p = restarted.join(&mut h);
    assert_eq!(p.1, GroupReply::Deferred);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    cs[0].protocols.reverse();
    let p0 = cs[0].join(&mut h);
    let r0 = cs[0].joined(&mut h, &p0);
    let r = restarted.joined(&mut h, &p);
    assert_eq!((r0.generation_id, r.generation_id), (2, 2));
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn protocol_is_chosen_by_vote_among_those_all_members_support() {
    let mut h = Harness::quick();
    let meta = subscription(&["orders"]);
    let mut cs = consumers(3);
    cs[0].protocols = vec![
        ("roundrobin".into(), meta.clone()),
        ("range".into(), meta.clone()),
    ];
    cs[1].protocols = vec![
        ("sticky".into(), meta.clone()),
        ("range".into(), meta.clone()),
        ("roundrobin".into(), meta.clone()),
    ];
    cs[2].protocols = vec![
        ("range".into(), meta.clone()),
        ("roundrobin".into(), meta.clone()),
    ];
    let pending: Vec<_> = cs.iter_mut().map(|c| c.join(&mut h)).collect();
    h.advance(1_000);
    let r = cs[0].joined(&mut h, &pending[0]);
    assert_eq!(
        r.protocol_name.as_deref(),
        Some("range"),
        "sticky is not common; range 2-1"
    );
    assert_eq!(r.members[0].metadata, meta);

    // A newcomer sharing no protocol with everyone, or of another type, is refused.
    let mut odd = Consumer::new(4, "g", &["orders"]);
    odd.protocols = vec![("sticky".into(), meta.clone())];
    let p = odd.join(&mut h);
    assert_eq!(
        ErrorCode(odd.joined(&mut h, &p).error_code),
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut req = Consumer::new(5, "g", &["orders"]).join_request();
    req.protocol_type = "connect".into();
    let r = h.call(5, "c5", 7, req);
    assert_eq!(r.error(), ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn join_sync_and_heartbeat_errors() {
    let mut h = Harness::quick();
    let join_error = |h: &mut Harness, req: JoinGroupRequest, version: i16| {
        let r = h.call(7, "c7", version, req);
        assert_eq!(r.generation_id, -1);
        r.error()
    };
    let c = Consumer::new(7, "g", &["orders"]);
    let mut req = c.join_request();
    req.session_timeout_ms = 5_999;
    assert_eq!(
        join_error(&mut h, req.clone(), 7),
        ErrorCode::INVALID_SESSION_TIMEOUT
    );
    req.session_timeout_ms = 1_800_001;
    assert_eq!(
        join_error(&mut h, req, 7),
        ErrorCode::INVALID_SESSION_TIMEOUT
    );
    let mut req = c.join_request();
    req.group_id = String::new();
    assert_eq!(join_error(&mut h, req, 7), ErrorCode::INVALID_GROUP_ID);
    let mut req = c.join_request();
    req.member_id = "made-up".into();
    assert_eq!(
        join_error(&mut h, req.clone(), 7),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(h.gc.group_ids(), Vec::<String>::new(), "no group for that");
    // Every version encodes its error answer (protocol name "" before v7, null after).
    for v in 0..=9 {
        assert_eq!(
            join_error(&mut h, req.clone(), v),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    let mut cs = consumers(2);
    form_group(&mut h, &mut cs, 1_000);
    let mut stale = cs[1].clone();
    stale.generation += 5;
    assert_eq!(stale.heartbeat(&mut h), ErrorCode::ILLEGAL_GENERATION);
    let s = stale.sync(&mut h, &[]);
    assert_eq!(
        ErrorCode(stale.synced(&mut h, &s).error_code),
        ErrorCode::ILLEGAL_GENERATION
    );
    let mut unknown_instance = cs[1].clone();
    unknown_instance.instance_id = Some("never-joined".into());
    assert_eq!(
        unknown_instance.heartbeat(&mut h),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    let mut ghost = cs[1].clone();
    ghost.member_id = "ghost".into();
    assert_eq!(ghost.heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);
    ghost.group = "nowhere".into();
    assert_eq!(ghost.heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);
    let s = ghost.sync(&mut h, &[]);
    assert_eq!(
        ErrorCode(ghost.synced(&mut h, &s).error_code),
        ErrorCode::UNKNOWN_MEMBER_ID
    );

    // SyncGroup v5 must carry both protocol fields, and they must match the group's.
    let mut req: SyncGroupRequest = cs[1].sync_request(&[]);
    req.protocol_type = None;
    let r = h.call(2, "c2", 5, req.clone());
    assert_eq!(r.error(), ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let r = h.call(2, "c2", 4, req);
    assert_eq!(r.error_code, 0, "optional before v5");
    let mut req = cs[1].sync_request(&[]);
    req.protocol_name = Some("roundrobin".into());
    let r = h.call(2, "c2", 5, req);
    assert_eq!(r.error(), ErrorCode::INCONSISTENT_GROUP_PROTOCOL);

    // During PreparingRebalance, SyncGroup is REBALANCE_IN_PROGRESS.
    let _ = cs[0].join(&mut h);
    let s = cs[1].sync(&mut h, &[]);
    assert_eq!(
        ErrorCode(cs[1].synced(&mut h, &s).error_code),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}

#[test]
fn a_follower_that_never_syncs_is_removed_at_the_rebalance_timeout() {
    let mut h = Harness::quick();
    let mut cs = consumers(2);
    let pending: Vec<_> = cs.iter_mut().map(|c| c.join(&mut h)).collect();
    h.advance(1_000);
    for (c, p) in cs.iter_mut().zip(&pending) {
        c.joined(&mut h, p);
    }
    let s = cs[0].sync(
        &mut h,
        &[(&cs[0].member_id.clone(), assignment("orders", &[0]))],
    );
    assert_eq!(cs[0].synced(&mut h, &s).error_code, 0);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // The join phase ended at 200 ms: SyncGroup is due by 30.2 s.
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(cs[0].heartbeat(&mut h), NONE);
        assert_eq!(
            cs[1].heartbeat(&mut h),
            NONE,
            "heartbeats do not replace SyncGroup"
        );
    }
    h.advance(2_199);
    assert_eq!(cs[1].heartbeat(&mut h), NONE);
    h.advance(1);
    assert_eq!(cs[0].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(cs[1].heartbeat(&mut h), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn leader_leaving_during_completing_rebalance_fails_parked_syncs() {
    let mut h = Harness::quick();
    let mut cs = consumers(2);
    let pending: Vec<_> = cs.iter_mut().map(|c| c.join(&mut h)).collect();
    h.advance(1_000);
    for (c, p) in cs.iter_mut().zip(&pending) {
        c.joined(&mut h, p);
    }
    let s1 = cs[1].sync(&mut h, &[]);
    assert_eq!(s1.1, GroupReply::Deferred);
    let r = leave(&mut h, 4, &[(&cs[0].member_id, None)]);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(
        ErrorCode(cs[1].synced(&mut h, &s1).error_code),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let p = cs[1].join(&mut h);
    let r = cs[1].joined(&mut h, &p);
    assert_eq!(
        (r.generation_id, r.leader.clone()),
        (2, cs[1].member_id.clone())
    );
}

#[test]
fn a_closed_connection_loses_its_answer_but_not_its_membership() {
    let mut h = Harness::quick();
    let mut cs = consumers(2);
    let p0 = cs[0].join(&mut h);
    let p1 = cs[1].join(&mut h);
    h.gc.connection_closed(1, cs[1].conn);
    h.advance(1_000);
    let r0 = cs[0].joined(&mut h, &p0);
    assert_eq!(r0.members.len(), 2, "the member still joined");
    assert!(
        h.answer(&p1.0).is_none(),
        "nobody to answer on the closed connection"
    );
}

#[test]
fn old_join_versions_get_a_member_id_without_a_round_trip() {
    let mut h = Harness::quick();
    let mut cs = consumers(2);
    cs[0].version = 0;
    cs[1].version = 3;
    cs[0].session_timeout_ms = 7_000; // v0: also the rebalance timeout
    let pending: Vec<_> = cs.iter_mut().map(|c| c.join(&mut h)).collect();
    assert!(pending.iter().all(|p| p.1 == GroupReply::Deferred));
    h.advance(1_000);
    let r0 = cs[0].joined(&mut h, &pending[0]);
    let r1 = cs[1].joined(&mut h, &pending[1]);
    assert_eq!((r0.error_code, r1.error_code), (0, 0));
    assert_eq!(r0.protocol_type, None, "not in v0");
    assert!(r0.member_id.starts_with("c1-") && r1.member_id.starts_with("c2-"));
}

#[test]
fn the_same_inputs_give_the_same_answers() {
    let run = || {
        let mut h = Harness::new(GroupConfig::default());
        let mut cs = consumers(3);
        form_group(&mut h, &mut cs, 10_000);
        let _ = leave(&mut h, 4, &[(&cs[1].member_id, None)]);
        let p0 = cs[0].join(&mut h);
        let p2 = cs[2].join(&mut h);
        format!(
            "{:?} {:?} {:?}",
            cs[0].joined(&mut h, &p0),
            cs[2].joined(&mut h, &p2),
            h.gc.group("g")
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_new_member_parked_for_five_minutes_is_dropped() {
    let mut h = Harness::quick();
    let mut cs = consumers(2);
    cs[0].rebalance_timeout_ms = 600_000;
    let (first, second) = cs.split_at_mut(1);
    form_group(&mut h, first, 1_000);
    let p1 = second[0].join(&mut h);
    assert_eq!(p1.1, GroupReply::Deferred);
    // The first member heartbeats but never rejoins; the rebalance timeout is 10 minutes.
    for _ in 0..99 {
        h.advance(3_000);
        assert_eq!(first[0].heartbeat(&mut h), ErrorCode::REBALANCE_IN_PROGRESS);
    }
    assert!(h.answers.is_empty());
    h.advance(3_000); // 5 minutes after the newcomer joined
    let r = second[0].joined(&mut h, &p1);
    assert_eq!(r.error(), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(r.member_id, "");
    let g = h.gc.group("g").unwrap();
    assert_eq!(
        (g.state, g.members.len()),
        (GroupState::PreparingRebalance, 1)
    );
}

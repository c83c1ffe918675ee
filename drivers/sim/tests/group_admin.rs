//! The simulated group coordinator's admin side: ListGroups, DescribeGroups, DeleteGroups, and
//! every group API answering at every version with a response that encodes.

#[path = "group_harness.rs"]
mod harness;

use harness::*;
use kafkit_core::protocol::leave_group::request::MemberIdentity;
use kafkit_core::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_core::protocol::offset_fetch::request::OffsetFetchRequestGroup;
use kafkit_core::protocol::{
    DeleteGroupsRequest, DescribeGroupsRequest, ErrorCode, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, Message, OffsetCommitRequest, OffsetFetchRequest,
    RequestBody, SyncGroupRequest,
};

/// Groups "simple" (Empty, offsets only), "g" (Stable, two consumers) and "p"
/// (PreparingRebalance, one consumer waiting out the initial delay).
fn three_groups(h: &mut Harness) -> Vec<Consumer> {
    let commit = OffsetCommitRequest {
        group_id: "simple".into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "orders".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 3,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    h.call(9, "admin", 8, commit);
    let mut cs = vec![
        Consumer::new(1, "g", &["orders"]),
        Consumer::new_static(2, "g", &["orders"], "i2"),
    ];
    form_group(h, &mut cs, 1_000);
    let mut p = Consumer::new(3, "p", &["payments"]);
    let _ = p.join(h);
    cs.push(p);
    cs
}

fn list(
    h: &mut Harness,
    version: i16,
    states: &[&str],
    types: &[&str],
) -> Vec<(String, String, String)> {
    let req = ListGroupsRequest {
        states_filter: states.iter().map(|s| s.to_string()).collect(),
        types_filter: types.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let r = h.call(9, "admin", version, req);
    assert_eq!(r.error_code, 0);
    r.groups
        .into_iter()
        .map(|g| (g.group_id, g.protocol_type, g.group_state))
        .collect()
}

fn s(v: (&str, &str, &str)) -> (String, String, String) {
    (v.0.into(), v.1.into(), v.2.into())
}

#[test]
fn list_groups_with_state_and_type_filters() {
    let mut h = Harness::quick();
    assert!(list(&mut h, 4, &[], &[]).is_empty());
    three_groups(&mut h);
    assert_eq!(
        list(&mut h, 3, &[], &[]),
        vec![
            s(("g", "consumer", "")),
            s(("p", "consumer", "")),
            s(("simple", "", "")),
        ]
    );
    assert_eq!(
        list(&mut h, 4, &[], &[]),
        vec![
            s(("g", "consumer", "Stable")),
            s(("p", "consumer", "PreparingRebalance")),
            s(("simple", "", "Empty")),
        ]
    );
    assert_eq!(
        list(&mut h, 4, &["stable"], &[]),
        vec![s(("g", "consumer", "Stable"))]
    );
    assert_eq!(
        list(&mut h, 5, &["Empty", "PreparingRebalance"], &["Classic"]),
        vec![
            s(("p", "consumer", "PreparingRebalance")),
            s(("simple", "", "Empty"))
        ]
    );
    assert!(list(&mut h, 5, &[], &["consumer"]).is_empty());
    // Filters a version does not have are ignored.
    assert_eq!(list(&mut h, 3, &["Dead"], &[]).len(), 3);
}

#[test]
fn describe_groups_by_state() {
    let mut h = Harness::quick();
    let cs = three_groups(&mut h);
    let describe = |h: &mut Harness, version: i16, include_ops: bool| {
        let req = DescribeGroupsRequest {
            groups: vec!["g".into(), "p".into(), "simple".into(), "none".into()],
            include_authorized_operations: include_ops,
            ..Default::default()
        };
        let r = h.call(9, "admin", version, req);
        r.groups
    };
    let groups = describe(&mut h, 5, true);
    let states: Vec<_> = groups.iter().map(|g| g.group_state.as_str()).collect();
    assert_eq!(
        states,
        vec!["Stable", "PreparingRebalance", "Empty", "Dead"]
    );
    assert!(groups.iter().all(|g| g.error_code == 0));
    assert!(groups.iter().all(|g| g.authorized_operations == 328));

    let g = &groups[0];
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("consumer", "range")
    );
    assert_eq!(g.members.len(), 2);
    let m = &g.members[1];
    assert_eq!(m.member_id, cs[1].member_id);
    assert_eq!(m.group_instance_id.as_deref(), Some("i2"));
    assert_eq!(
        (m.client_id.as_str(), m.client_host.as_str()),
        ("c2", "/10.0.0.2")
    );
    assert_eq!(m.member_metadata, subscription(&["orders"]));
    assert_eq!(
        assigned_partitions(&m.member_assignment),
        vec![("orders".into(), vec![1])]
    );

    // Not Stable: members without metadata or assignment, no protocol.
    let p = &groups[1];
    assert_eq!(p.members.len(), 1);
    assert!(p.members[0].member_metadata.is_empty() && p.protocol_data.is_empty());
    assert_eq!(p.members[0].member_id, cs[2].member_id);
    let none = &groups[3];
    assert_eq!(
        (none.group_id.as_str(), none.protocol_type.as_str()),
        ("none", "")
    );
    assert!(none.members.is_empty());

    let old = describe(&mut h, 3, false);
    assert!(old.iter().all(|g| g.authorized_operations == i32::MIN));
    let older = describe(&mut h, 0, true);
    assert!(older.iter().all(|g| g.authorized_operations == i32::MIN));
    assert_eq!(older[0].members[1].group_instance_id, None, "not before v4");
}

#[test]
fn delete_groups_only_deletes_empty_ones() {
    let mut h = Harness::quick();
    three_groups(&mut h);
    let req = DeleteGroupsRequest {
        groups_names: vec![
            "simple".into(),
            "g".into(),
            "p".into(),
            "zz".into(),
            "simple".into(),
        ],
        ..Default::default()
    };
    let r = h.call(9, "admin", 2, req.clone());
    let results: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.group_id.as_str(), r.error()))
        .collect();
    assert_eq!(
        results,
        vec![
            ("simple", ErrorCode::NONE),
            ("g", ErrorCode::NON_EMPTY_GROUP),
            ("p", ErrorCode::NON_EMPTY_GROUP),
            ("zz", ErrorCode::GROUP_ID_NOT_FOUND),
        ]
    );
    assert_eq!(h.state("simple"), None);
    assert!(h.gc.committed_offset("simple", "orders", 0).is_none());
    let r = h.call(9, "admin", 0, req);
    assert_eq!(
        ErrorCode(r.results[0].error_code),
        ErrorCode::GROUP_ID_NOT_FOUND
    );

    // A group emptied by its last member leaving can be deleted; its members can not come back.
    let leave = LeaveGroupRequest {
        group_id: "p".into(),
        members: vec![MemberIdentity {
            member_id: h.gc.group("p").unwrap().members[0].member_id.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    h.call(3, "c3", 4, leave);
    // The initial delay never ends early: the group is Empty once it has passed.
    assert_eq!(h.state("p"), Some(GroupState::PreparingRebalance));
    h.advance(1_000);
    assert_eq!(h.state("p"), Some(GroupState::Empty));
    let req = DeleteGroupsRequest {
        groups_names: vec!["p".into()],
        ..Default::default()
    };
    let r = h.call(9, "admin", 1, req);
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(h.gc.group_ids(), vec!["g".to_string()]);
}

/// Each group API at each of its versions, on a busy coordinator: the harness checks every
/// answer encodes at the request's version.
#[test]
fn every_version_of_every_group_api_answers_with_an_encodable_response() {
    let mut h = Harness::quick();
    let cs = three_groups(&mut h);
    let g = &cs[0];
    let bodies: Vec<(i16, RequestBody)> = vec![
        (JoinGroupRequest::VERSIONS.1, g.join_request().into()),
        (
            SyncGroupRequest::VERSIONS.1,
            g.sync_request(&[(g.member_id.as_str(), assignment("orders", &[0]))])
                .into(),
        ),
        (
            HeartbeatRequest::VERSIONS.1,
            HeartbeatRequest {
                group_id: "g".into(),
                generation_id: g.generation,
                member_id: g.member_id.clone(),
                ..Default::default()
            }
            .into(),
        ),
        (
            OffsetCommitRequest::VERSIONS.1,
            OffsetCommitRequest {
                group_id: "simple".into(),
                topics: vec![OffsetCommitRequestTopic {
                    name: "orders".into(),
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 1,
                        committed_offset: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
        ),
        (
            OffsetFetchRequest::VERSIONS.1,
            OffsetFetchRequest {
                group_id: "simple".into(),
                topics: None,
                groups: vec![OffsetFetchRequestGroup {
                    group_id: "simple".into(),
                    topics: None,
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
        ),
        (
            ListGroupsRequest::VERSIONS.1,
            ListGroupsRequest::default().into(),
        ),
        (
            DescribeGroupsRequest::VERSIONS.1,
            DescribeGroupsRequest {
                groups: vec!["g".into(), "p".into(), "simple".into(), "none".into()],
                include_authorized_operations: true,
                ..Default::default()
            }
            .into(),
        ),
        (
            LeaveGroupRequest::VERSIONS.1,
            LeaveGroupRequest {
                group_id: "g".into(),
                member_id: "nobody".into(),
                members: vec![MemberIdentity {
                    member_id: "nobody".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
        ),
        (
            DeleteGroupsRequest::VERSIONS.1,
            DeleteGroupsRequest {
                groups_names: vec!["g".into(), "zz".into()],
                ..Default::default()
            }
            .into(),
        ),
    ];
    let mut answered = 0;
    for (max, body) in bodies {
        for version in 0..=max {
            // Drop what a version cannot carry, as a client would.
            let mut body = body.clone();
            if let RequestBody::OffsetFetch(r) = &mut body {
                if version < 8 {
                    r.groups.clear();
                    if version < 2 {
                        r.topics = Some(Vec::new());
                    }
                }
            }
            let encoded = body.encode(&mut Vec::new(), version);
            if encoded.is_err() {
                continue;
            }
            if let GroupReply::Now(_) = h.send(8, "any", version, body).1 {
                answered += 1;
            }
        }
    }
    assert!(answered > 30, "{answered}");
    h.advance(60_000);
}

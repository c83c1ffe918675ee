//! Unit tests of `kafkit groups`: text and JSON of listings and descriptions, offset rows,
//! error messages.

use bytes::Bytes;
use kafkit_core::consumer::assignor::{encode_assignment, Assignment};
use kafkit_core::consumer::TopicPartition;
use kafkit_core::protocol::offset_fetch::response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};

use super::*;

fn described() -> Described {
    Described {
        group_id: "g".into(),
        coordinator: Some(1),
        state: "Stable".into(),
        protocol_type: "consumer".into(),
        protocol: "range".into(),
        members: vec![Member {
            member_id: "m-1".into(),
            instance_id: None,
            client_id: "c1".into(),
            host: "/127.0.0.1".into(),
            assignment: Some(vec![("t".into(), 1), ("t".into(), 0), ("u".into(), 2)]),
            ..Default::default()
        }],
        rows: vec![
            Row {
                topic: "t".into(),
                partition: 0,
                committed: Some(5),
                end: Some(12),
                owner: Some(0),
            },
            Row {
                topic: "t".into(),
                partition: 1,
                committed: None,
                end: Some(3),
                owner: Some(0),
            },
            Row {
                topic: "v".into(),
                partition: 0,
                committed: Some(7),
                end: Some(7),
                owner: None,
            },
        ],
        ..Default::default()
    }
}

fn text(d: &Described) -> String {
    let mut out = Output::default();
    describe_text(d, None, &mut out);
    let mut bytes = Vec::new();
    out.write_to(&mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn lag_is_end_minus_committed() {
    let d = described();
    assert_eq!(d.rows[0].lag(), Some(7));
    assert_eq!(d.rows[1].lag(), None, "no committed offset, no lag");
    assert_eq!(d.rows[2].lag(), Some(0));
}

#[test]
fn text_is_like_kafka_consumer_groups() {
    let t = text(&described());
    assert!(
        t.contains("Group g: Stable, consumer protocol range, 1 member, coordinator 1"),
        "{t}"
    );
    assert!(
        t.contains("m-1        -            c1         /127.0.0.1  t:0,1 u:2"),
        "{t}"
    );
    assert!(
        t.contains(
            "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID"
        ),
        "{t}"
    );
    assert!(
        t.contains("g      t              0               5              12    7  m-1          /127.0.0.1  c1"),
        "{t}"
    );
    assert!(t.contains("g      v              0               7               7    0  -            -           -"), "{t}");
    assert!(t.contains("Total lag: 7"), "{t}");
}

#[test]
fn empty_group_says_so() {
    let mut d = described();
    d.state = "Empty".into();
    d.protocol.clear();
    d.members.clear();
    for r in &mut d.rows {
        r.owner = None;
    }
    let t = text(&d);
    assert!(
        t.contains("Group g: Empty, protocol type consumer, 0 members"),
        "{t}"
    );
    assert!(t.contains("Group 'g' has no active members."), "{t}");
}

#[test]
fn json_shape() {
    let v = describe_json(&described());
    assert_eq!(v["state"], "Stable");
    assert_eq!(v["members"][0]["assignment"][2]["topic"], "u");
    assert_eq!(v["offsets"][0]["lag"], 7);
    assert_eq!(v["offsets"][1]["lag"], Value::Null);
    assert_eq!(v["offsets"][0]["member_id"], "m-1");
    assert_eq!(v["offsets"][2]["member_id"], Value::Null);
    assert_eq!(v["total_lag"], 7);
    let failed = Described {
        group_id: "x".into(),
        error: Some("the group does not exist".into()),
        ..Default::default()
    };
    assert_eq!(describe_json(&failed)["error"], "the group does not exist");
}

/// A consumer-protocol group mid-reconciliation: m-1 still owns t:0,1 and is to keep t:1.
fn reconciling() -> Described {
    let mut d = described();
    d.state = "Reconciling".into();
    d.protocol = "uniform".into();
    d.group_type = "consumer".into();
    d.group_epoch = Some(3);
    d.assignment_epoch = Some(3);
    d.members[0].assignment = Some(vec![("t".into(), 0), ("t".into(), 1)]);
    d.members[0].member_epoch = Some(2);
    d.members[0].target_assignment = Some(vec![("t".into(), 1)]);
    d.members[0].subscribed_topics = vec!["t".into()];
    d
}

#[test]
fn a_consumer_protocol_group_shows_epochs_and_target_assignments() {
    let t = text(&reconciling());
    assert!(
        t.contains(
            "Group g: Reconciling, consumer group protocol (KIP-848), assignor uniform, \
             group epoch 3, assignment epoch 3, 1 member, coordinator 1"
        ),
        "{t}"
    );
    assert!(
        t.contains(
            "MEMBER-ID  INSTANCE-ID  CLIENT-ID  HOST        EPOCH  ASSIGNMENT  TARGET-ASSIGNMENT"
        ),
        "{t}"
    );
    assert!(
        t.contains("m-1        -            c1         /127.0.0.1      2  t:0,1       t:1"),
        "{t}"
    );
    let v = describe_json(&reconciling());
    assert_eq!(v["group_type"], "consumer");
    assert_eq!(
        (v["group_epoch"].clone(), v["assignment_epoch"].clone()),
        (3.into(), 3.into())
    );
    let m = &v["members"][0];
    assert_eq!(m["member_epoch"], 2);
    assert_eq!(m["assignment"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        m["target_assignment"],
        json!([{ "topic": "t", "partition": 1 }])
    );
    assert_eq!(m["subscribed_topics"], json!(["t"]));
    // A classic group has none of them.
    let v = describe_json(&described());
    assert_eq!(v["group_epoch"], Value::Null);
    assert_eq!(v["members"][0]["target_assignment"], Value::Null);
    assert!(!text(&described()).contains("TARGET-ASSIGNMENT"));
}

#[test]
fn the_listing_has_a_type_column() {
    let listed = |id: &str, group_type: &str| Listed {
        group_id: id.into(),
        protocol_type: "consumer".into(),
        state: Some("Stable".into()),
        group_type: group_type.into(),
        coordinator: 1,
    };
    let groups = [listed("a", "classic"), listed("b", "consumer")];
    let mut out = Output::default();
    list_text(&groups, &ClusterView::default(), &mut out);
    let mut bytes = Vec::new();
    out.write_to(&mut bytes).unwrap();
    let t = String::from_utf8(bytes).unwrap();
    assert!(
        t.contains("GROUP  TYPE      PROTOCOL  STATE   COORDINATOR"),
        "{t}"
    );
    assert!(t.contains("b      consumer  consumer  Stable  1"), "{t}");
    assert_eq!(
        list_json(&groups, &[])["groups"][0]["group_type"],
        "classic"
    );
}

#[test]
fn assignments_are_grouped_by_topic() {
    assert_eq!(
        assignment_text(&[("b".into(), 2), ("a".into(), 1), ("b".into(), 0)]),
        "a:1 b:0,2"
    );
    assert_eq!(assignment_text(&[]), "(none)");
    // What a member's assignment bytes decode to.
    let bytes = encode_assignment(
        &Assignment {
            partitions: vec![TopicPartition::new("t", 0)],
            user_data: None,
        },
        3,
    )
    .unwrap();
    let a = decode_assignment(&bytes).unwrap();
    assert_eq!(a.partitions, vec![TopicPartition::new("t", 0)]);
    assert!(decode_assignment(&Bytes::new())
        .unwrap()
        .partitions
        .is_empty());
}

#[test]
fn committed_offsets_skip_partitions_without_one() {
    let r = OffsetFetchResponse {
        topics: vec![OffsetFetchResponseTopic {
            name: "t".into(),
            partitions: vec![
                OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 4,
                    ..Default::default()
                },
                OffsetFetchResponsePartition {
                    partition_index: 1,
                    committed_offset: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let c = committed_of(&r, "g").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[&("t".to_owned(), 0)], 4);
    let refused = OffsetFetchResponse {
        error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED.0,
        ..Default::default()
    };
    assert!(matches!(
        committed_of(&refused, "g"),
        Err(Failure::Code(ErrorCode::GROUP_AUTHORIZATION_FAILED))
    ));
}

#[test]
fn committed_offsets_of_the_v8_layout() {
    use kafkit_core::protocol::offset_fetch::response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    let group = |id: &str, offset: i64, error_code: i16| OffsetFetchResponseGroup {
        group_id: id.into(),
        topics: vec![OffsetFetchResponseTopics {
            name: "t".into(),
            partitions: vec![OffsetFetchResponsePartitions {
                partition_index: 2,
                committed_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        error_code,
        ..Default::default()
    };
    let r = OffsetFetchResponse {
        groups: vec![group("other", 1, 0), group("g", 9, 0)],
        ..Default::default()
    };
    let c = committed_of(&r, "g").unwrap();
    assert_eq!(
        c.into_iter().collect::<Vec<_>>(),
        [(("t".to_owned(), 2), 9)]
    );
    let refused = OffsetFetchResponse {
        groups: vec![group("g", 9, ErrorCode::GROUP_AUTHORIZATION_FAILED.0)],
        ..Default::default()
    };
    assert!(matches!(
        committed_of(&refused, "g"),
        Err(Failure::Code(ErrorCode::GROUP_AUTHORIZATION_FAILED))
    ));
    assert!(committed_of(
        &OffsetFetchResponse {
            groups: vec![group("x", 1, 0)],
            ..Default::default()
        },
        "g"
    )
    .is_err());
}

#[test]
fn unreadable_offsets_are_not_reported_as_none() {
    let d = Described {
        group_id: "g".into(),
        offsets_error: Some("committed offsets: broken".into()),
        ..Default::default()
    };
    let mut out = Output::default();
    describe_text(&d, None, &mut out);
    let mut bytes = Vec::new();
    out.write_to(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("No committed offsets"), "{text}");
    assert!(text.contains("Offsets could not be read"), "{text}");
}

#[test]
fn error_messages_explain() {
    assert_eq!(
        code_message(ErrorCode::NON_EMPTY_GROUP),
        "NON_EMPTY_GROUP (68): the group still has members; stop them first"
    );
    assert_eq!(
        code_message(ErrorCode::GROUP_ID_NOT_FOUND),
        "GROUP_ID_NOT_FOUND (69): the group does not exist"
    );
}

//! Hand-worked vectors: Java's documented examples and consumer protocol bytes written out
//! from the message definitions.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::sticky::{decode_sticky_user_data, encode_sticky_user_data};
use super::*;
use crate::config::AssignmentStrategy;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn member(id: &str, topics: &[&str]) -> GroupMember {
    GroupMember {
        member_id: id.into(),
        group_instance_id: None,
        subscription: Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Subscription::default()
        },
    }
}

fn owning(mut m: GroupMember, owned: &[TopicPartition], generation: i32) -> GroupMember {
    m.subscription.owned_partitions = owned.to_vec();
    m.subscription.generation_id = generation;
    m
}

fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn run(
    a: &mut dyn PartitionAssignor,
    counts: &BTreeMap<String, i32>,
    members: &[GroupMember],
) -> BTreeMap<String, Vec<TopicPartition>> {
    a.assign(&ClusterMetadata::new(counts), members)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.partitions))
        .collect()
}

fn expect(pairs: &[(&str, &[TopicPartition])]) -> BTreeMap<String, Vec<TopicPartition>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

#[test]
fn names_and_protocols() {
    for (s, name) in [
        (AssignmentStrategy::Range, "range"),
        (AssignmentStrategy::RoundRobin, "roundrobin"),
        (AssignmentStrategy::Sticky, "sticky"),
        (AssignmentStrategy::CooperativeSticky, "cooperative-sticky"),
    ] {
        let a = built_in(s);
        assert_eq!(a.name(), name);
        assert_eq!(a.name(), s.protocol_name());
        let expected = if s == AssignmentStrategy::CooperativeSticky {
            vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
        } else {
            vec![RebalanceProtocol::Eager]
        };
        assert_eq!(a.supported_protocols(), expected);
    }
}

#[test]
fn range_java_example() {
    // RangeAssignor javadoc: C0 gets [t0p0, t0p1, t1p0, t1p1], C1 gets [t0p2, t1p2].
    let counts = topics(&[("t0", 3), ("t1", 3)]);
    let members = [member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])];
    let got = run(&mut RangeAssignor, &counts, &members);
    assert_eq!(
        got,
        expect(&[
            ("C0", &[tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]),
            ("C1", &[tp("t0", 2), tp("t1", 2)]),
        ])
    );
}

#[test]
fn range_per_topic_and_missing_topics() {
    // 7 partitions over 3 members: 3, 2, 2; t1 only has C1 and C2; "gone" has no metadata.
    let counts = topics(&[("t0", 7), ("t1", 2)]);
    let members = [
        member("C0", &["t0", "gone"]),
        member("C1", &["t0", "t1"]),
        member("C2", &["t0", "t1"]),
        member("C3", &["gone"]),
    ];
    let got = run(&mut RangeAssignor, &counts, &members);
    assert_eq!(
        got,
        expect(&[
            ("C0", &[tp("t0", 0), tp("t0", 1), tp("t0", 2)]),
            ("C1", &[tp("t0", 3), tp("t0", 4), tp("t1", 0)]),
            ("C2", &[tp("t0", 5), tp("t0", 6), tp("t1", 1)]),
            ("C3", &[]),
        ])
    );
}

#[test]
fn range_static_members_first_by_instance_id() {
    // Java's MemberInfo order: static members by group.instance.id, then the dynamic ones.
    let counts = topics(&[("t", 4)]);
    let mut a = member("a", &["t"]);
    a.group_instance_id = Some("z".into());
    let b = member("b", &["t"]);
    let mut c = member("c", &["t"]);
    c.group_instance_id = Some("y".into());
    let got = run(&mut RangeAssignor, &counts, &[a, b, c]);
    assert_eq!(
        got,
        expect(&[
            ("c", &[tp("t", 0), tp("t", 1)]),
            ("a", &[tp("t", 2)]),
            ("b", &[tp("t", 3)]),
        ])
    );
}

#[test]
fn round_robin_java_examples() {
    // RoundRobinAssignor javadoc, identical subscriptions.
    let counts = topics(&[("t0", 3), ("t1", 3)]);
    let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
    let got = run(&mut RoundRobinAssignor, &counts, &members);
    assert_eq!(
        got,
        expect(&[
            ("C0", &[tp("t0", 0), tp("t0", 2), tp("t1", 1)]),
            ("C1", &[tp("t0", 1), tp("t1", 0), tp("t1", 2)]),
        ])
    );

    // RoundRobinAssignor javadoc, different subscriptions: t0, t1, t2 with 1, 2, 3
    // partitions; C0 takes t0, C1 t0 and t1, C2 all three.
    let counts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let members = [
        member("C2", &["t0", "t1", "t2"]),
        member("C0", &["t0"]),
        member("C1", &["t0", "t1"]),
    ];
    let got = run(&mut RoundRobinAssignor, &counts, &members);
    assert_eq!(
        got,
        expect(&[
            ("C0", &[tp("t0", 0)]),
            ("C1", &[tp("t1", 0)]),
            ("C2", &[tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]),
        ])
    );
}

#[test]
fn duplicate_members_are_an_error() {
    let counts = topics(&[("t", 1)]);
    let members = [member("a", &["t"]), member("a", &["t"])];
    for s in [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::Sticky,
        AssignmentStrategy::CooperativeSticky,
    ] {
        assert_eq!(
            built_in(s).assign(&ClusterMetadata::new(&counts), &members),
            Err(AssignorError::DuplicateMember("a".into()))
        );
    }
}

#[test]
fn no_members_or_no_partitions() {
    let counts = topics(&[("t", 0)]);
    for s in [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::Sticky,
        AssignmentStrategy::CooperativeSticky,
    ] {
        let mut a = built_in(s);
        assert!(a
            .assign(&ClusterMetadata::new(&counts), &[])
            .unwrap()
            .is_empty());
        let got = run(&mut *a, &counts, &[member("m", &["t", "x"])]);
        assert_eq!(got, expect(&[("m", &[])]));
    }
}

#[test]
fn sticky_java_example() {
    // StickyAssignor javadoc: C0, C1, C2 over t0..t3 with two partitions each. A fresh
    // assignment is the round-robin one.
    let counts = topics(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let all = ["t0", "t1", "t2", "t3"];
    let members = [member("C0", &all), member("C1", &all), member("C2", &all)];
    let first = run(&mut StickyAssignor::new(), &counts, &members);
    assert_eq!(
        first,
        expect(&[
            ("C0", &[tp("t0", 0), tp("t1", 1), tp("t3", 0)]),
            ("C1", &[tp("t0", 1), tp("t2", 0), tp("t3", 1)]),
            ("C2", &[tp("t1", 0), tp("t2", 1)]),
        ])
    );
    // C1 leaves: C0 and C2 keep everything they had and share C1's three partitions.
    let members = [
        owning(member("C0", &all), &first["C0"], 1),
        owning(member("C2", &all), &first["C2"], 1),
    ];
    let second = run(&mut StickyAssignor::new(), &counts, &members);
    assert_eq!(second["C0"].len(), 4);
    assert_eq!(second["C2"].len(), 4);
    for m in ["C0", "C2"] {
        assert!(first[m].iter().all(|p| second[m].contains(p)));
    }
}

#[test]
fn sticky_reads_java_user_data_and_generations() {
    // Eager members send their history in user data, not as owned partitions.
    let counts = topics(&[("t", 4)]);
    let mut a = member("a", &["t"]);
    let mut b = member("b", &["t"]);
    let mut c = member("c", &["t"]);
    // a and b both claim t-0; b's generation is newer, so b keeps it.
    a.subscription.user_data = encode_sticky_user_data(&[tp("t", 0), tp("t", 1)], Some(4));
    b.subscription.user_data = encode_sticky_user_data(&[tp("t", 0), tp("t", 2)], Some(5));
    // A version 0 history (no generation) counts as generation -1.
    c.subscription.user_data = encode_sticky_user_data(&[tp("t", 3)], None);
    let got = run(&mut StickyAssignor::new(), &counts, &[a, b, c]);
    assert_eq!(
        got,
        expect(&[
            ("a", &[tp("t", 1)]),
            ("b", &[tp("t", 0), tp("t", 2)]),
            ("c", &[tp("t", 3)]),
        ])
    );

    // Two claims in the same generation: neither is believed.
    let a = owning(member("a", &["t"]), &[tp("t", 0), tp("t", 1)], 7);
    let b = owning(
        member("b", &["t"]),
        &[tp("t", 0), tp("t", 2), tp("t", 3)],
        7,
    );
    let got = run(&mut StickyAssignor::new(), &counts, &[a, b]);
    assert_eq!(got["a"], vec![tp("t", 0), tp("t", 1)]);
    assert_eq!(got["b"], vec![tp("t", 2), tp("t", 3)]);
}

#[test]
fn sticky_user_data_bytes() {
    // StickyAssignorUserData v1: [topic "t": [1]], generation 3.
    let v1 = [0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3];
    assert_eq!(
        encode_sticky_user_data(&[tp("t", 1)], Some(3)).unwrap(),
        Bytes::copy_from_slice(&v1)
    );
    assert_eq!(
        decode_sticky_user_data(&Bytes::copy_from_slice(&v1)),
        Some((vec![tp("t", 1)], Some(3)))
    );
    // v0 (no generation) and garbage.
    assert_eq!(
        decode_sticky_user_data(&Bytes::copy_from_slice(&v1[..15])),
        Some((vec![tp("t", 1)], None))
    );
    assert_eq!(decode_sticky_user_data(&Bytes::from_static(&[0, 0])), None);
    assert_eq!(
        decode_sticky_user_data(&Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff])),
        None
    );

    // The assignor writes its last assignment and generation once it has one.
    let mut s = StickyAssignor::new();
    assert_eq!(s.subscription_user_data(&BTreeSet::new()), None);
    s.on_assignment(
        &Assignment {
            partitions: vec![tp("t", 1)],
            user_data: None,
        },
        3,
    );
    assert_eq!(
        s.subscription_user_data(&BTreeSet::new()).unwrap(),
        Bytes::copy_from_slice(&v1)
    );
}

#[test]
fn cooperative_user_data_is_the_generation() {
    let mut c = CooperativeStickyAssignor::new();
    assert_eq!(
        c.subscription_user_data(&BTreeSet::new()).unwrap(),
        Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])
    );
    c.on_assignment(&Assignment::default(), 9);
    assert_eq!(
        c.subscription_user_data(&BTreeSet::new()).unwrap(),
        Bytes::from_static(&[0, 0, 0, 9])
    );

    // A version 1 subscription carries the generation only in user data: generation 3 beats
    // generation 2 for t-0.
    let counts = topics(&[("t", 2)]);
    let mut a = owning(member("a", &["t"]), &[tp("t", 0)], -1);
    a.subscription.user_data = Some(Bytes::from_static(&[0, 0, 0, 2]));
    let mut b = owning(member("b", &["t"]), &[tp("t", 0)], -1);
    b.subscription.user_data = Some(Bytes::from_static(&[0, 0, 0, 3]));
    let got = run(&mut CooperativeStickyAssignor::new(), &counts, &[a, b]);
    // b keeps t-0; a is given t-1, which nobody claims, and revokes its stale t-0.
    assert_eq!(got, expect(&[("a", &[tp("t", 1)]), ("b", &[tp("t", 0)])]));
}

#[test]
fn cooperative_two_phases() {
    let counts = topics(&[("t", 6)]);
    let all: Vec<TopicPartition> = (0..6).map(|p| tp("t", p)).collect();
    let c0 = owning(member("C0", &["t"]), &all[..3], 1);
    let c1 = owning(member("C1", &["t"]), &all[3..], 1);
    let c2 = member("C2", &["t"]);
    let mut a = CooperativeStickyAssignor::new();
    let first = run(&mut a, &counts, &[c0, c1, c2.clone()]);
    // C2 joins: C0 and C1 keep two each; t-2 and t-5 must first be revoked.
    assert_eq!(
        first,
        expect(&[("C0", &all[..2]), ("C1", &all[3..5]), ("C2", &[]),])
    );
    let c0 = owning(member("C0", &["t"]), &first["C0"], 2);
    let c1 = owning(member("C1", &["t"]), &first["C1"], 2);
    let second = run(&mut a, &counts, &[c0, c1, c2]);
    assert_eq!(
        second,
        expect(&[
            ("C0", &all[..2]),
            ("C1", &all[3..5]),
            ("C2", &[tp("t", 2), tp("t", 5)]),
        ])
    );
}

#[test]
fn sticky_unequal_subscriptions() {
    // C0 takes t0 only, C1 both: C1 gets all of t1 and C0 most of t0.
    let counts = topics(&[("t0", 3), ("t1", 3)]);
    let members = [member("C0", &["t0"]), member("C1", &["t0", "t1"])];
    let got = run(&mut StickyAssignor::new(), &counts, &members);
    assert_eq!(
        got,
        expect(&[
            ("C0", &[tp("t0", 0), tp("t0", 1), tp("t0", 2)]),
            ("C1", &[tp("t1", 0), tp("t1", 1), tp("t1", 2)]),
        ])
    );
}

#[test]
fn sticky_is_fast_for_1000_partitions_over_100_members() {
    let counts: BTreeMap<String, i32> = (0..10).map(|t| (format!("topic-{t}"), 100)).collect();
    let names: Vec<&str> = counts.keys().map(String::as_str).collect();
    let members: Vec<GroupMember> = (0..100)
        .map(|i| member(&format!("m{i:03}"), &names))
        .collect();
    let start = std::time::Instant::now();
    let first = run(&mut StickyAssignor::new(), &counts, &members);
    // Every member but one survives with what it had; unequal subscriptions for the last
    // ten take the general path.
    let mut next: Vec<GroupMember> = members[1..]
        .iter()
        .map(|m| owning(m.clone(), &first[&m.member_id], 1))
        .collect();
    for m in next.iter_mut().skip(90) {
        m.subscription.topics.truncate(5);
    }
    let second = run(&mut CooperativeStickyAssignor::new(), &counts, &next);
    assert!(second.values().map(Vec::len).sum::<usize>() > 900);
    // Generous for debug builds on a loaded machine; release takes well under a millisecond.
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

// ---- codec ----

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn subscription_bytes_at_every_version() {
    let sub = Subscription {
        topics: vec!["t".into()],
        user_data: None,
        owned_partitions: vec![tp("t", 0)],
        generation_id: 5,
        rack_id: Some("r1".into()),
    };
    // version | topics [ "t" ] | user_data null
    let v0 = "0000".to_owned() + "00000001" + "000174" + "ffffffff";
    // + owned [ "t": [0] ]
    let owned = "00000001".to_owned() + "000174" + "00000001" + "00000000";
    let v1 = "0001".to_owned() + &v0[4..] + &owned;
    let v2 = "0002".to_owned() + &v0[4..] + &owned + "00000005";
    let v3 = "0003".to_owned() + &v0[4..] + &owned + "00000005" + "00027231";
    for (version, want) in [(0, &v0), (1, &v1), (2, &v2), (3, &v3)] {
        let bytes = encode_subscription(&sub, version).unwrap();
        assert_eq!(&hex(&bytes), want, "version {version}");
        let back = decode_subscription(&bytes).unwrap();
        let mut expected = sub.clone();
        if version < 1 {
            expected.owned_partitions.clear();
        }
        if version < 2 {
            expected.generation_id = -1;
        }
        if version < 3 {
            expected.rack_id = None;
        }
        assert_eq!(back, expected, "version {version}");
    }
    // Versions above 3 are written as 3.
    assert_eq!(hex(&encode_subscription(&sub, 9).unwrap()), v3);
}

#[test]
fn subscription_from_a_newer_version_reads_its_prefix() {
    // A hypothetical version 4 with a field after the rack: read as version 3.
    let mut bytes = encode_subscription(
        &Subscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(b"ud")),
            owned_partitions: vec![tp("a", 1), tp("a", 2)],
            generation_id: 12,
            rack_id: None,
        },
        3,
    )
    .unwrap()
    .to_vec();
    bytes[1] = 4;
    bytes.extend_from_slice(&[0, 0, 0, 42, 1, 2, 3]);
    let sub = decode_subscription(&bytes).unwrap();
    assert_eq!(sub.topics, ["a", "b"]);
    assert_eq!(sub.user_data.as_deref(), Some(&b"ud"[..]));
    assert_eq!(sub.owned_partitions, [tp("a", 1), tp("a", 2)]);
    assert_eq!(sub.generation_id, 12);
    assert_eq!(sub.rack_id, None);
}

#[test]
fn assignment_bytes() {
    let a = Assignment {
        partitions: vec![tp("t", 2), tp("t", 0)],
        user_data: Some(Bytes::from_static(&[7])),
    };
    // version | [ "t": [0, 2] ] | user_data [7]
    let body =
        "00000001".to_owned() + "000174" + "00000002" + "00000000" + "00000002" + "0000000107";
    for version in 0..=3 {
        let bytes = encode_assignment(&a, version).unwrap();
        assert_eq!(hex(&bytes), format!("000{version}{body}"));
        let back = decode_assignment(&bytes).unwrap();
        assert_eq!(back.partitions, [tp("t", 0), tp("t", 2)]);
        assert_eq!(back.user_data, a.user_data);
    }
    // Newer version with trailing bytes; an empty assignment; a null user data.
    let mut newer = encode_assignment(&a, 3).unwrap().to_vec();
    newer[1] = 7;
    newer.push(0xee);
    assert_eq!(decode_assignment(&newer).unwrap().partitions.len(), 2);
    assert_eq!(decode_assignment(&[]).unwrap(), Assignment::default());
    let empty = [0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(decode_assignment(&empty).unwrap(), Assignment::default());
}

#[test]
fn bad_input_is_a_clear_error() {
    assert!(matches!(
        decode_subscription(&[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::Invalid { .. })
    ));
    assert!(matches!(
        decode_subscription(&[]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode_assignment(&[0x80, 0]),
        Err(DecodeError::Invalid { .. })
    ));
    // A topic count far beyond the input.
    assert!(decode_subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    assert!(decode_assignment(&[0, 3, 0, 0, 0, 1, 0, 5, b'a']).is_err());
    // Every truncation of a valid message fails cleanly (and never panics).
    let full = encode_subscription(
        &Subscription {
            topics: vec!["topic".into()],
            user_data: Some(Bytes::from_static(b"xyz")),
            owned_partitions: vec![tp("topic", 3)],
            generation_id: 1,
            rack_id: Some("rack".into()),
        },
        3,
    )
    .unwrap();
    for n in 0..full.len() {
        assert!(decode_subscription(&full[..n]).is_err(), "prefix {n}");
    }
}

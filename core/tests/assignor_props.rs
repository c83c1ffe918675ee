//! Property tests of the partition assignors and the consumer protocol codec.
//!
//! Scenarios: a group assigns from scratch (generation 1), then members leave and join and it
//! assigns again with the survivors owning what they got (generation 2); cooperatively there
//! is a follow-up rebalance (generation 3). Checked: every partition assigned exactly once
//! (cooperative: at most once, exactly once after the follow-up) and only to subscribers;
//! balance; minimal movement against the exact lower bound; and that a cooperative assignment
//! never hands a partition to a new owner while another member still holds it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafkit_core::consumer::assignor::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Assignment,
    ClusterMetadata, CooperativeStickyAssignor, GroupMember, PartitionAssignor, RangeAssignor,
    RoundRobinAssignor, StickyAssignor, Subscription,
};
use kafkit_core::consumer::TopicPartition;
use proptest::prelude::*;

type Result = BTreeMap<String, Vec<TopicPartition>>;

/// A group's life: topics, the first members, who leaves, who joins.
#[derive(Debug, Clone)]
struct Scenario {
    /// Partition count of topic `t{i}`.
    counts: Vec<i32>,
    /// Topic bit masks of the first members (`a00`, `a01`, ...).
    first: Vec<u8>,
    /// Which first members leave before generation 2.
    leaves: Vec<bool>,
    /// Topic bit masks of the members joining in generation 2 (`b00`, ...).
    joiners: Vec<u8>,
    /// Whether every member subscribes to every topic.
    shared: bool,
    /// An arbitrary earlier ownership, unbalanced and irregular: byte `i` picks the owner of
    /// the `i`-th partition among the first members (none if it picks past them, or a member
    /// not subscribed to the topic).
    prior: Vec<u8>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=4, 1usize..=8, 0usize..=3, any::<bool>()).prop_flat_map(|(t, m, j, shared)| {
        let mask = 1u8..(1u8 << t);
        (
            prop::collection::vec(0i32..=12, t),
            prop::collection::vec(mask.clone(), m),
            prop::collection::vec(any::<bool>(), m),
            prop::collection::vec(mask, j),
            prop::collection::vec(any::<u8>(), 48),
        )
            .prop_map(move |(counts, mut first, leaves, mut joiners, prior)| {
                if shared {
                    let all = (1u8 << counts.len()) - 1;
                    first.iter_mut().for_each(|x| *x = all);
                    joiners.iter_mut().for_each(|x| *x = all);
                }
                Scenario {
                    counts,
                    first,
                    leaves,
                    joiners,
                    shared,
                    prior,
                }
            })
    })
}

impl Scenario {
    fn counts(&self) -> BTreeMap<String, i32> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("t{i}"), n))
            .collect()
    }

    fn first_members(&self) -> Vec<GroupMember> {
        self.first
            .iter()
            .enumerate()
            .map(|(i, &mask)| member(&format!("a{i:02}"), mask))
            .collect()
    }

    /// The first members' partitions under `prior`.
    fn prior_owned(&self) -> Result {
        let members = self.first_members();
        let mut out: Result = members
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        let mut i = 0;
        for (t, &n) in self.counts.iter().enumerate() {
            for p in 0..n {
                let pick = usize::from(self.prior[i % self.prior.len()]) % (members.len() + 1);
                i += 1;
                let topic = format!("t{t}");
                if let Some(m) = members.get(pick) {
                    if m.subscription.topics.contains(&topic) {
                        out.get_mut(&m.member_id)
                            .unwrap()
                            .push(TopicPartition::new(topic, p));
                    }
                }
            }
        }
        out
    }

    /// Generation 2: survivors own what generation 1 gave them.
    fn second_members(&self, owned: &Result, generation: i32) -> Vec<GroupMember> {
        let mut out: Vec<GroupMember> = self
            .first_members()
            .into_iter()
            .zip(&self.leaves)
            .filter(|(_, &leaves)| !leaves)
            .map(|(m, _)| {
                let owned = owned[&m.member_id].clone();
                with_owned(m, owned, generation)
            })
            .collect();
        out.extend(
            self.joiners
                .iter()
                .enumerate()
                .map(|(j, &mask)| member(&format!("b{j:02}"), mask)),
        );
        out
    }
}

fn member(id: &str, mask: u8) -> GroupMember {
    GroupMember {
        member_id: id.into(),
        group_instance_id: None,
        subscription: Subscription {
            topics: (0..8)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| format!("t{i}"))
                .collect(),
            ..Subscription::default()
        },
    }
}

fn with_owned(mut m: GroupMember, owned: Vec<TopicPartition>, generation: i32) -> GroupMember {
    m.subscription.owned_partitions = owned;
    m.subscription.generation_id = generation;
    m
}

fn assign(
    a: &mut dyn PartitionAssignor,
    counts: &BTreeMap<String, i32>,
    members: &[GroupMember],
) -> Result {
    let out = a.assign(&ClusterMetadata::new(counts), members).unwrap();
    // One entry per member, nothing else.
    let ids: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(out.keys().map(String::as_str).collect::<BTreeSet<_>>(), ids);
    out.into_iter().map(|(k, v)| (k, v.partitions)).collect()
}

/// Every partition of a topic someone subscribes to.
fn subscribed_partitions(
    counts: &BTreeMap<String, i32>,
    members: &[GroupMember],
) -> BTreeSet<TopicPartition> {
    let topics: BTreeSet<&String> = members
        .iter()
        .flat_map(|m| &m.subscription.topics)
        .collect();
    topics
        .into_iter()
        .flat_map(|t| (0..counts[t]).map(move |p| TopicPartition::new(t.as_str(), p)))
        .collect()
}

/// (a): no partition twice, only to subscribers; with `exact`, every partition once.
fn check_valid(
    counts: &BTreeMap<String, i32>,
    members: &[GroupMember],
    result: &Result,
    exact: bool,
) -> std::result::Result<(), TestCaseError> {
    let mut seen = BTreeSet::new();
    for m in members {
        for tp in &result[&m.member_id] {
            prop_assert!(seen.insert(tp.clone()), "{tp} assigned twice");
            prop_assert!(
                m.subscription.topics.iter().any(|t| **t == *tp.topic),
                "{tp} given to {} which does not subscribe",
                m.member_id
            );
        }
    }
    let all = subscribed_partitions(counts, members);
    prop_assert!(seen.is_subset(&all));
    if exact {
        prop_assert_eq!(seen, all, "some partitions unassigned");
    }
    Ok(())
}

/// (b): no member holds two more than a member that could take one of its partitions. With
/// equal subscriptions that is: counts differ by at most one.
fn check_balanced(
    members: &[GroupMember],
    result: &Result,
) -> std::result::Result<(), TestCaseError> {
    let count = |id: &str| result[id].len();
    for a in members {
        for tp in &result[&a.member_id] {
            for b in members {
                if b.subscription.topics.iter().any(|t| **t == *tp.topic) {
                    prop_assert!(
                        count(&a.member_id) <= count(&b.member_id) + 1,
                        "{} has {} but {} could take {tp} and has {}",
                        a.member_id,
                        count(&a.member_id),
                        b.member_id,
                        count(&b.member_id)
                    );
                }
            }
        }
    }
    Ok(())
}

/// (c) for equal subscriptions: the partitions kept by their owners, and the most any balanced
/// assignment can keep (quotas differ by one; the larger ones to those that owned the most).
fn kept_and_bound(members: &[GroupMember], result: &Result, total: usize) -> (usize, usize) {
    let kept = members
        .iter()
        .map(|m| {
            let now: BTreeSet<_> = result[&m.member_id].iter().collect();
            m.subscription
                .owned_partitions
                .iter()
                .filter(|tp| now.contains(tp))
                .count()
        })
        .sum();
    let mut owned: Vec<usize> = members
        .iter()
        .map(|m| m.subscription.owned_partitions.len())
        .collect();
    owned.sort_unstable_by(|a, b| b.cmp(a));
    let (min, extra) = (total / owned.len(), total % owned.len());
    let bound = owned
        .iter()
        .enumerate()
        .map(|(i, &o)| o.min(min + usize::from(i < extra)))
        .sum();
    (kept, bound)
}

/// (d): a partition goes to a member that did not own it only if no member claims it.
fn check_no_double_ownership(
    members: &[GroupMember],
    result: &Result,
) -> std::result::Result<(), TestCaseError> {
    let mut claims: BTreeMap<&TopicPartition, Vec<&str>> = BTreeMap::new();
    for m in members {
        for tp in &m.subscription.owned_partitions {
            claims.entry(tp).or_default().push(&m.member_id);
        }
    }
    for m in members {
        for tp in &result[&m.member_id] {
            if let Some(owners) = claims.get(tp) {
                prop_assert!(
                    owners.contains(&m.member_id.as_str()),
                    "{tp} given to {} while {:?} still own it",
                    m.member_id,
                    owners
                );
            }
        }
    }
    Ok(())
}

fn check_eager(
    s: &Scenario,
    a: &mut dyn PartitionAssignor,
) -> std::result::Result<(), TestCaseError> {
    let counts = s.counts();
    let first = s.first_members();
    let r1 = assign(a, &counts, &first);
    check_valid(&counts, &first, &r1, true)?;
    check_balanced(&first, &r1)?;

    let second = s.second_members(&r1, 1);
    let r2 = assign(a, &counts, &second);
    check_valid(&counts, &second, &r2, true)?;
    check_balanced(&second, &r2)?;
    if s.shared && !second.is_empty() {
        let total = subscribed_partitions(&counts, &second).len();
        let (kept, bound) = kept_and_bound(&second, &r2, total);
        prop_assert_eq!(kept, bound, "moved more than balance requires");
        // Per member: a survivor keeps at least min(what it had, the smaller quota).
        let min_quota = total / second.len();
        for m in &second {
            let k = r2[&m.member_id]
                .iter()
                .filter(|tp| m.subscription.owned_partitions.contains(tp))
                .count();
            prop_assert!(k >= m.subscription.owned_partitions.len().min(min_quota));
        }
    }
    // The same from an arbitrary earlier ownership.
    let second = s.second_members(&s.prior_owned(), 1);
    let r2 = assign(a, &counts, &second);
    check_valid(&counts, &second, &r2, true)?;
    check_balanced(&second, &r2)?;
    if s.shared && !second.is_empty() {
        let total = subscribed_partitions(&counts, &second).len();
        let (kept, bound) = kept_and_bound(&second, &r2, total);
        prop_assert_eq!(kept, bound, "moved more than balance requires");
    }
    // With unequal subscriptions the lower bound is not simple; what must hold is that an
    // unchanged group moves nothing: re-assigning generation 1 as owned gives it back.
    let same: Vec<GroupMember> = first
        .iter()
        .map(|m| with_owned(m.clone(), r1[&m.member_id].clone(), 1))
        .collect();
    prop_assert_eq!(assign(a, &counts, &same), r1);
    Ok(())
}

fn check_cooperative(s: &Scenario) -> std::result::Result<(), TestCaseError> {
    let counts = s.counts();
    let first = s.first_members();
    let r1 = assign(&mut CooperativeStickyAssignor::new(), &counts, &first);
    // Nobody owned anything: a complete assignment at once.
    check_valid(&counts, &first, &r1, true)?;
    check_balanced(&first, &r1)?;
    cooperative_from(s, &r1)?;
    cooperative_from(s, &s.prior_owned())
}

/// Generation 2 with the survivors owning `owned`, then follow-ups until stable.
fn cooperative_from(s: &Scenario, owned: &Result) -> std::result::Result<(), TestCaseError> {
    let counts = s.counts();
    let mut a = CooperativeStickyAssignor::new();
    let mut members = s.second_members(owned, 1);
    let mut result = assign(&mut a, &counts, &members);
    check_valid(&counts, &members, &result, false)?;
    check_no_double_ownership(&members, &result)?;
    let gen2 = members.clone();
    // Follow-up rebalances: each member now owns what it was assigned (it revoked the rest).
    let mut rounds = 0;
    loop {
        let revoked = members.iter().any(|m| {
            m.subscription
                .owned_partitions
                .iter()
                .any(|tp| !result[&m.member_id].contains(tp))
        });
        let complete = result.values().map(Vec::len).sum::<usize>()
            == subscribed_partitions(&counts, &members).len();
        if !revoked && complete {
            break;
        }
        rounds += 1;
        prop_assert!(
            rounds <= 4,
            "no stable assignment after {rounds} follow-ups"
        );
        members = members
            .into_iter()
            .map(|m| {
                let owned = result[&m.member_id].clone();
                with_owned(m, owned, 2 + rounds)
            })
            .collect();
        result = assign(&mut a, &counts, &members);
        check_valid(&counts, &members, &result, false)?;
        check_no_double_ownership(&members, &result)?;
    }
    check_valid(&counts, &members, &result, true)?;
    check_balanced(&members, &result)?;
    if s.shared && !members.is_empty() {
        // One follow-up suffices, and the two phases keep as much as an eager sticky one.
        prop_assert!(rounds <= 1);
        let total = subscribed_partitions(&counts, &members).len();
        let (kept, bound) = kept_and_bound(&gen2, &result, total);
        prop_assert_eq!(kept, bound);
    }
    Ok(())
}

/// Claims that disagree: random partitions, random generations, some stale or invalid.
#[derive(Debug, Clone)]
struct Conflicts {
    counts: Vec<i32>,
    members: Vec<Claimant>,
}

/// A member's topic mask, its claims as (topic, partition), and the generation it claims in.
type Claimant = (u8, Vec<(u8, i32)>, i32);

fn conflicts() -> impl Strategy<Value = Conflicts> {
    (1usize..=3).prop_flat_map(|t| {
        let mask = 1u8..(1u8 << t);
        (
            prop::collection::vec(0i32..=8, t),
            prop::collection::vec(
                (
                    mask,
                    prop::collection::vec((0u8..4, 0i32..10), 0..8),
                    -1i32..3,
                ),
                1..=6,
            ),
        )
            .prop_map(|(counts, members)| Conflicts { counts, members })
    })
}

impl Conflicts {
    fn build(&self) -> (BTreeMap<String, i32>, Vec<GroupMember>) {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("t{i}"), n))
            .collect();
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(i, (mask, claims, generation))| {
                let owned = claims
                    .iter()
                    .map(|&(t, p)| TopicPartition::new(format!("t{t}"), p))
                    .collect();
                with_owned(member(&format!("m{i}"), *mask), owned, *generation)
            })
            .collect();
        (counts, members)
    }
}

proptest! {
    // Each case takes well under a millisecond; four times the default still runs in seconds.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn sticky_generations(s in scenario()) {
        check_eager(&s, &mut StickyAssignor::new())?;
    }

    #[test]
    fn cooperative_sticky_generations(s in scenario()) {
        check_cooperative(&s)?;
    }

    #[test]
    fn sticky_with_conflicting_claims(c in conflicts()) {
        let (counts, members) = c.build();
        let r = assign(&mut StickyAssignor::new(), &counts, &members);
        check_valid(&counts, &members, &r, true)?;
        check_balanced(&members, &r)?;
        let r = assign(&mut CooperativeStickyAssignor::new(), &counts, &members);
        check_valid(&counts, &members, &r, false)?;
        check_no_double_ownership(&members, &r)?;
    }

    #[test]
    fn deterministic_whatever_the_member_order(s in scenario()) {
        let counts = s.counts();
        let first = s.first_members();
        let r1 = assign(&mut StickyAssignor::new(), &counts, &first);
        let mut members = s.second_members(&r1, 1);
        let mut reversed = members.clone();
        reversed.reverse();
        for a in [
            &mut RangeAssignor as &mut dyn PartitionAssignor,
            &mut RoundRobinAssignor,
            &mut StickyAssignor::new(),
            &mut CooperativeStickyAssignor::new(),
        ] {
            prop_assert_eq!(assign(a, &counts, &members), assign(a, &counts, &reversed));
        }
        let half = members.len() / 2;
        members.rotate_left(half);
        prop_assert_eq!(
            assign(&mut StickyAssignor::new(), &counts, &members),
            assign(&mut StickyAssignor::new(), &counts, &reversed)
        );
    }

    #[test]
    fn range_and_round_robin_are_complete(s in scenario()) {
        let counts = s.counts();
        let members = s.first_members();
        let r = assign(&mut RangeAssignor, &counts, &members);
        check_valid(&counts, &members, &r, true)?;
        // Range balances each topic among its subscribers.
        for (topic, &n) in &counts {
            let subs: Vec<&GroupMember> = members
                .iter()
                .filter(|m| m.subscription.topics.contains(topic))
                .collect();
            let per: Vec<usize> = subs
                .iter()
                .map(|m| r[&m.member_id].iter().filter(|tp| *tp.topic == **topic).count())
                .collect();
            if let (Some(max), Some(min)) = (per.iter().max(), per.iter().min()) {
                prop_assert!(max - min <= 1);
                prop_assert_eq!(per.iter().sum::<usize>(), n as usize);
            }
        }
        let r = assign(&mut RoundRobinAssignor, &counts, &members);
        check_valid(&counts, &members, &r, true)?;
        if s.shared {
            let sizes: Vec<usize> = r.values().map(Vec::len).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn subscription_round_trips(
        topics in prop::collection::btree_set("[a-z._-]{1,12}", 0..5),
        user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        owned in prop::collection::btree_set(("[a-c]", 0i32..100), 0..10),
        generation_id in -1i32..1000,
        rack_id in prop::option::of("[a-z0-9]{0,6}"),
        version in 0i16..=3,
    ) {
        let sub = Subscription {
            topics: topics.into_iter().collect(),
            user_data: user_data.map(Bytes::from),
            owned_partitions: owned.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
            generation_id,
            rack_id,
        };
        let back = decode_subscription(&encode_subscription(&sub, version).unwrap()).unwrap();
        let mut expected = sub.clone();
        if version < 1 { expected.owned_partitions.clear(); }
        if version < 2 { expected.generation_id = -1; }
        if version < 3 { expected.rack_id = None; }
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn assignment_round_trips(
        parts in prop::collection::btree_set(("[a-d]{1,3}", 0i32..1000), 0..20),
        user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        version in 0i16..=3,
    ) {
        let a = Assignment {
            partitions: parts.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
            user_data: user_data.map(Bytes::from),
        };
        prop_assert_eq!(decode_assignment(&encode_assignment(&a, version).unwrap()).unwrap(), a);
    }

    #[test]
    fn decoders_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_subscription(&data);
        let _ = decode_assignment(&data);
    }
}

//! The KIP-848 group coordinator of the simulated cluster, through raw requests:
//! ConsumerGroupHeartbeat members joining, reconciling, leaving, expiring and being fenced,
//! static members, regex subscriptions, the empty classic group's upgrade, ConsumerGroupDescribe,
//! ListGroups types and OffsetCommit/OffsetFetch member checks. After every heartbeat the
//! tests check that no partition is owned by two members, both as the coordinator records it
//! and as the members were told.

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_support::Harness;
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::consumer_group_heartbeat::request::TopicPartitions;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::join_group::request::JoinGroupRequestProtocol;
use kafkit_core::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_core::protocol::offset_fetch::request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafkit_core::protocol::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    CreateTopicsRequest, DeleteGroupsRequest, DescribeGroupsRequest, ErrorCode, JoinGroupRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafkit_sim::ClusterConfig;

const GROUP: &str = "g848";
type Owned = BTreeMap<Uuid, BTreeSet<i32>>;

/// A consumer-protocol member as a cooperative client plays it: it reports what it owns,
/// and takes each assignment it is sent at once (giving up what is no longer in it).
struct Client {
    conn: u64,
    id: String,
    instance: Option<String>,
    epoch: i32,
    owned: Owned,
    topics: Option<Vec<String>>,
    regex: Option<String>,
    assignor: Option<String>,
}

impl Client {
    fn new(conn: u64, id: &str, topics: &[&str]) -> Self {
        Client {
            conn,
            id: id.to_owned(),
            instance: None,
            epoch: 0,
            owned: Owned::new(),
            topics: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
            regex: None,
            assignor: None,
        }
    }

    fn request(&self) -> ConsumerGroupHeartbeatRequest {
        let join = self.epoch == 0;
        ConsumerGroupHeartbeatRequest {
            group_id: GROUP.into(),
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            instance_id: self.instance.clone(),
            rebalance_timeout_ms: if join { 30_000 } else { -1 },
            subscribed_topic_names: self.topics.clone().filter(|_| join),
            subscribed_topic_regex: self.regex.clone().filter(|_| join),
            server_assignor: self.assignor.clone().filter(|_| join),
            topic_partitions: Some(
                self.owned
                    .iter()
                    .map(|(t, p)| TopicPartitions {
                        topic_id: *t,
                        partitions: p.iter().copied().collect(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

struct Group {
    h: Harness,
    coordinator: i32,
    clients: Vec<Client>,
}

impl Group {
    fn new() -> Self {
        let mut h = Harness::new(ClusterConfig::default());
        let coordinator = h.cluster.coordinator_for(GROUP);
        h.connect(coordinator, 1000);
        Group {
            h,
            coordinator,
            clients: Vec::new(),
        }
    }

    fn create_topic(&mut self, name: &str, partitions: i32) {
        let r = self.h.call(
            self.coordinator,
            1000,
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor: 1,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            7,
        );
        assert_eq!(r.topics[0].error_code, 0, "create {name}");
    }

    fn topic_id(&self, name: &str) -> Uuid {
        self.h.cluster.topic(name).unwrap().id
    }

    fn add(&mut self, client: Client) -> usize {
        self.h.connect(self.coordinator, client.conn);
        self.clients.push(client);
        self.clients.len() - 1
    }

    fn raw(
        &mut self,
        conn: u64,
        req: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        self.h.call(self.coordinator, conn, req, 1)
    }

    /// One heartbeat of client `i`; the response must be a success. Checks ownership after.
    fn beat(&mut self, i: usize) -> ConsumerGroupHeartbeatResponse {
        let req = self.clients[i].request();
        let conn = self.clients[i].conn;
        let r = self.raw(conn, req);
        assert_eq!(
            r.error_code, 0,
            "heartbeat of {}: {:?}",
            self.clients[i].id, r.error_message
        );
        let c = &mut self.clients[i];
        c.epoch = r.member_epoch;
        if let Some(id) = &r.member_id {
            c.id = id.clone();
        }
        if let Some(a) = &r.assignment {
            c.owned = a
                .topic_partitions
                .iter()
                .filter(|t| !t.partitions.is_empty())
                .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                .collect();
        }
        self.check_no_double_ownership();
        r
    }

    /// No partition owned by two members: as the coordinator records ownership (assigned or
    /// pending revocation), and as the clients were told.
    fn check_no_double_ownership(&self) {
        let mut told: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for c in &self.clients {
            for (t, parts) in &c.owned {
                for p in parts {
                    if let Some(other) = told.insert((*t, *p), &c.id) {
                        panic!("partition {p} told to {other} and {}", c.id);
                    }
                }
            }
        }
        let Some(g) = self.h.cluster.consumer_groups().group(GROUP) else {
            return;
        };
        let mut owners: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for m in g.members.values() {
            for (t, parts) in m.assigned.iter().chain(&m.pending_revocation) {
                for p in parts {
                    if let Some(other) = owners.insert((*t, *p), &m.id) {
                        panic!("partition {p} owned by {other} and {}", m.id);
                    }
                }
            }
        }
    }

    /// Heartbeats every client in turn until the group is Stable with every member at its
    /// target; panics if that takes more than 10 rounds.
    fn converge(&mut self) {
        for _ in 0..10 {
            for i in 0..self.clients.len() {
                self.beat(i);
            }
            let g = self.h.cluster.consumer_groups().group(GROUP).unwrap();
            let settled = g.state().name() == "Stable"
                && self.clients.iter().all(|c| {
                    let m = &g.members[&c.id];
                    let target = g.target.get(&c.id).cloned().unwrap_or_default();
                    c.owned == target && m.assigned == target && c.epoch == g.assignment_epoch
                });
            if settled {
                return;
            }
        }
        panic!("the group did not converge in 10 rounds");
    }

    fn counts(&self) -> Vec<usize> {
        self.clients
            .iter()
            .map(|c| c.owned.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn all_owned(&self) -> BTreeSet<(Uuid, i32)> {
        self.clients
            .iter()
            .flat_map(|c| {
                c.owned
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(|p| (*t, *p)))
            })
            .collect()
    }
}

fn partitions(id: Uuid, n: i32) -> BTreeSet<(Uuid, i32)> {
    (0..n).map(|p| (id, p)).collect()
}

#[test]
fn two_then_three_members_converge_with_no_partition_owned_twice() {
    let mut g = Group::new();
    g.create_topic("t", 6);
    let t = g.topic_id("t");
    let a = g.add(Client::new(1, "member-a", &["t"]));
    let r = g.beat(a);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5_000);
    assert_eq!(g.counts(), vec![6]);

    // b joins: it gets nothing until a acknowledged giving partitions up.
    let b = g.add(Client::new(2, "member-b", &["t"]));
    let r = g.beat(b);
    assert_eq!(r.member_epoch, 2, "b is at the new target epoch");
    assert_eq!(g.counts(), vec![6, 0]);
    let r = g.beat(a);
    assert_eq!(r.member_epoch, 1, "a revokes at its old epoch");
    assert_eq!(g.counts(), vec![3, 0]);
    let pending = &g.h.cluster.consumer_groups().group(GROUP).unwrap().members["member-a"];
    assert_eq!(
        pending.state.name(),
        "UNREVOKED_PARTITIONS",
        "a still owned all six"
    );
    g.converge();
    assert_eq!(g.counts(), vec![3, 3]);
    assert_eq!(g.all_owned(), partitions(t, 6));

    let c = g.add(Client::new(3, "member-c", &["t"]));
    g.beat(c);
    g.converge();
    assert_eq!(g.counts(), vec![2, 2, 2]);
    assert_eq!(g.all_owned(), partitions(t, 6));
    let group = g.h.cluster.consumer_groups().group(GROUP).unwrap();
    assert_eq!(group.group_epoch, 3);
    assert_eq!(group.assignment_epoch, 3);
    assert!(g.clients.iter().all(|c| c.epoch == 3));
}

#[test]
fn a_partition_moves_only_after_its_previous_owner_acknowledged_the_revocation() {
    let mut g = Group::new();
    g.create_topic("t", 4);
    let a = g.add(Client::new(1, "member-a", &["t"]));
    g.beat(a);
    let b = g.add(Client::new(2, "member-b", &["t"]));
    g.beat(b);
    // a heartbeats without its owned partitions: it has not acknowledged anything.
    let mut req = g.clients[a].request();
    req.topic_partitions = None;
    let r = g.raw(1, req);
    assert_eq!(r.error_code, 0);
    let assigned: usize = r
        .assignment
        .as_ref()
        .map(|x| x.topic_partitions.iter().map(|t| t.partitions.len()).sum())
        .unwrap();
    assert_eq!(assigned, 2, "a is told to keep two");
    let group = g.h.cluster.consumer_groups().group(GROUP).unwrap();
    assert_eq!(
        group.members["member-a"].state.name(),
        "UNREVOKED_PARTITIONS"
    );
    // b heartbeats: the two partitions a still owns are not given to it yet.
    let r = g.beat(b);
    assert!(r.assignment.is_none() || g.counts()[b] == 0);
    assert_eq!(g.counts()[b], 0);
    assert_eq!(
        g.h.cluster.consumer_groups().group(GROUP).unwrap().members["member-b"]
            .state
            .name(),
        "UNRELEASED_PARTITIONS"
    );
    // a still reports the four it had (it has not revoked yet): still nothing for b.
    g.beat(a);
    g.beat(b);
    assert_eq!(g.counts()[b], 0);
    // Now a reports owning only its two: b gets the others.
    g.beat(a);
    g.beat(b);
    assert_eq!(g.counts(), vec![2, 2]);
}

#[test]
fn a_member_leaving_hands_its_partitions_to_the_others() {
    let mut g = Group::new();
    g.create_topic("t", 6);
    let t = g.topic_id("t");
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let k = g.add(Client::new(i as u64 + 1, id, &["t"]));
        g.beat(k);
    }
    g.converge();
    let mut leave = g.clients[1].request();
    leave.member_epoch = -1;
    let r = g.raw(2, leave);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, -1);
    g.clients.remove(1);
    g.converge();
    assert_eq!(g.counts(), vec![3, 3]);
    assert_eq!(g.all_owned(), partitions(t, 6));
    // The member that left is unknown now.
    let mut stale = Client::new(2, "b", &["t"]);
    stale.epoch = 5;
    let r = g.raw(2, stale.request());
    assert_eq!(r.error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
}

#[test]
fn a_member_whose_session_expires_is_removed() {
    let mut g = Group::new();
    g.create_topic("t", 6);
    let t = g.topic_id("t");
    let a = g.add(Client::new(1, "a", &["t"]));
    g.beat(a);
    let b = g.add(Client::new(2, "b", &["t"]));
    g.beat(b);
    g.converge();
    // b goes silent (its process hangs: what it believes it owns no longer counts); only a
    // heartbeats for 50 s (the session timeout is 45 s).
    let silent = g.clients.remove(b);
    for _ in 0..10 {
        g.h.advance(Duration::from_secs(5));
        g.beat(a);
    }
    let group = g.h.cluster.consumer_groups().group(GROUP).unwrap();
    assert_eq!(group.members.keys().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(
        g.clients[a]
            .owned
            .values()
            .map(BTreeSet::len)
            .sum::<usize>(),
        6
    );
    let r = g.raw(2, silent.request());
    assert_eq!(r.error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
    assert_eq!(g.all_owned(), partitions(t, 6));
}

#[test]
fn a_member_that_never_revokes_is_removed_at_its_rebalance_timeout() {
    let mut g = Group::new();
    g.create_topic("t", 4);
    let a = g.add(Client::new(1, "a", &["t"]));
    g.beat(a);
    let b = g.add(Client::new(2, "b", &["t"]));
    g.beat(b);
    let mut req = g.clients[a].request();
    req.topic_partitions = None;
    assert_eq!(g.raw(1, req).error_code, 0);
    // a goes silent; its rebalance timeout (30 s) ends before its session (45 s). b keeps
    // heartbeating and gets nothing while a may still own the partitions.
    g.clients.remove(a);
    for step in 1..=7 {
        g.h.advance(Duration::from_secs(5));
        g.beat(0);
        let a_there =
            g.h.cluster
                .consumer_groups()
                .group(GROUP)
                .unwrap()
                .members
                .contains_key("a");
        assert_eq!(a_there, step * 5 < 30, "at {} s", step * 5);
        if a_there {
            assert_eq!(g.counts()[0], 0, "a may still own all four");
        }
    }
    assert_eq!(g.counts()[0], 4);
}

#[test]
fn a_static_member_is_replaced_by_its_next_incarnation_without_a_rebalance() {
    let mut g = Group::new();
    g.create_topic("t", 4);
    let mut first = Client::new(1, "a-1", &["t"]);
    first.instance = Some("instance-a".into());
    let a = g.add(first);
    g.beat(a);
    let b = g.add(Client::new(2, "b", &["t"]));
    g.beat(b);
    g.converge();
    let epoch =
        g.h.cluster
            .consumer_groups()
            .group(GROUP)
            .unwrap()
            .group_epoch;
    let owned_before = g.clients[a].owned.clone();

    // Another member id cannot take the instance id while a-1 is in the group.
    let mut thief = Client::new(3, "a-2", &["t"]);
    thief.instance = Some("instance-a".into());
    g.h.connect(g.coordinator, 3);
    let r = g.raw(3, thief.request());
    assert_eq!(r.error_code, ErrorCode::UNRELEASED_INSTANCE_ID.code());

    // a-1 leaves for now (epoch -2): it keeps its partitions.
    let mut leave = g.clients[a].request();
    leave.member_epoch = -2;
    let r = g.raw(1, leave);
    assert_eq!((r.error_code, r.member_epoch), (0, -2));
    let group = g.h.cluster.consumer_groups().group(GROUP).unwrap();
    assert_eq!(
        group.group_epoch, epoch,
        "a temporary leave does not rebalance"
    );

    // a-2 with the same instance id takes a-1's place, partitions and epoch.
    g.clients[a] = thief;
    let r = g.beat(a);
    assert_eq!(r.member_id.as_deref(), Some("a-2"));
    assert_eq!(g.clients[a].owned, owned_before);
    let group = g.h.cluster.consumer_groups().group(GROUP).unwrap();
    assert_eq!(group.group_epoch, epoch);
    assert!(!group.members.contains_key("a-1"));
    assert_eq!(r.member_epoch, epoch);
    g.converge();
}

#[test]
fn stale_and_future_epochs_are_fenced_and_offsets_check_the_member_epoch() {
    let mut g = Group::new();
    g.create_topic("t", 2);
    let a = g.add(Client::new(1, "a", &["t"]));
    g.beat(a);
    g.converge();
    let epoch = g.clients[a].epoch;

    let mut req = g.clients[a].request();
    req.member_epoch = epoch + 1;
    assert_eq!(
        g.raw(1, req).error_code,
        ErrorCode::FENCED_MEMBER_EPOCH.code()
    );
    let b = g.add(Client::new(2, "b", &["t"]));
    g.beat(b);
    g.converge();
    // a went from epoch 1 to 2. A heartbeat at epoch 1 (its answer was lost) is accepted
    // if a owns no more than it has now, fenced if it claims more.
    assert_eq!(g.clients[a].epoch, 2);
    let t = g.topic_id("t");
    let mut req = g.clients[a].request();
    req.member_epoch = 1;
    req.topic_partitions = Some(vec![TopicPartitions {
        topic_id: t,
        partitions: vec![0, 1],
        ..Default::default()
    }]);
    assert_eq!(
        g.raw(1, req).error_code,
        ErrorCode::FENCED_MEMBER_EPOCH.code()
    );
    let mut req = g.clients[a].request();
    req.member_epoch = 1;
    let r = g.raw(1, req);
    assert_eq!((r.error_code, r.member_epoch), (0, 2));
    let mut unknown = Client::new(9, "nobody", &["t"]);
    unknown.epoch = 1;
    g.h.connect(g.coordinator, 9);
    assert_eq!(
        g.raw(9, unknown.request()).error_code,
        ErrorCode::UNKNOWN_MEMBER_ID.code()
    );

    let commit = |epoch: i32| OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id_or_member_epoch: epoch,
        member_id: "a".into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 7,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let current = g.clients[a].epoch;
    let code =
        |r: kafkit_core::protocol::OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    let r = g.h.call(g.coordinator, 1, commit(current - 1), 9);
    assert_eq!(code(r), ErrorCode::STALE_MEMBER_EPOCH.code());
    let r = g.h.call(g.coordinator, 1, commit(current), 8);
    assert_eq!(code(r), ErrorCode::UNSUPPORTED_VERSION.code());
    let r = g.h.call(g.coordinator, 1, commit(current), 9);
    assert_eq!(code(r), 0);
    let mut anonymous = commit(-1);
    anonymous.member_id.clear();
    let r = g.h.call(g.coordinator, 1, anonymous, 9);
    assert_eq!(
        code(r),
        ErrorCode::UNKNOWN_MEMBER_ID.code(),
        "the group has members"
    );

    let fetch = |epoch: i32| OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: GROUP.into(),
            member_id: Some("a".into()),
            member_epoch: epoch,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: "t".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = g.h.call(g.coordinator, 1, fetch(current + 3), 9);
    assert_eq!(r.groups[0].error_code, ErrorCode::STALE_MEMBER_EPOCH.code());
    let r = g.h.call(g.coordinator, 1, fetch(current), 9);
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 7);
}

#[test]
fn a_regex_subscription_picks_up_topics_created_later() {
    let mut g = Group::new();
    g.create_topic("events-a", 2);
    g.create_topic("other", 2);
    let mut c = Client::new(1, "a", &[]);
    c.topics = None;
    c.regex = Some("events-.*".into());
    let a = g.add(c);
    g.beat(a);
    g.converge();
    assert_eq!(g.all_owned(), partitions(g.topic_id("events-a"), 2));
    let before =
        g.h.cluster
            .consumer_groups()
            .group(GROUP)
            .unwrap()
            .group_epoch;
    g.create_topic("events-b", 3);
    g.converge();
    let mut want = partitions(g.topic_id("events-a"), 2);
    want.extend(partitions(g.topic_id("events-b"), 3));
    assert_eq!(g.all_owned(), want);
    assert!(
        g.h.cluster
            .consumer_groups()
            .group(GROUP)
            .unwrap()
            .group_epoch
            > before
    );

    // A bad expression is refused.
    let mut bad = Client::new(2, "b", &[]);
    bad.topics = None;
    bad.regex = Some("events-(".into());
    g.h.connect(g.coordinator, 2);
    let r = g.raw(2, bad.request());
    assert_eq!(r.error_code, ErrorCode::INVALID_REGULAR_EXPRESSION.code());
}

#[test]
fn the_range_assignor_is_used_when_members_ask_for_it() {
    let mut g = Group::new();
    g.create_topic("t", 5);
    for (i, id) in ["x", "y"].iter().enumerate() {
        let mut c = Client::new(i as u64 + 1, id, &["t"]);
        c.assignor = Some("range".into());
        let k = g.add(c);
        g.beat(k);
    }
    g.converge();
    let t = g.topic_id("t");
    assert_eq!(g.clients[0].owned[&t], [0, 1, 2].into());
    assert_eq!(g.clients[1].owned[&t], [3, 4].into());
    let d = g.h.call(
        g.coordinator,
        1,
        ConsumerGroupDescribeRequest {
            group_ids: vec![GROUP.into(), "nope".into()],
            ..Default::default()
        },
        0,
    );
    let described = &d.groups[0];
    assert_eq!(described.error_code, 0);
    assert_eq!(described.assignor_name, "range");
    assert_eq!(described.group_state, "Stable");
    assert_eq!(described.members.len(), 2);
    let x = described
        .members
        .iter()
        .find(|m| m.member_id == "x")
        .unwrap();
    assert_eq!(x.member_epoch, described.assignment_epoch);
    assert_eq!(x.assignment, x.target_assignment);
    assert_eq!(x.assignment.topic_partitions[0].topic_name, "t");
    assert_eq!(d.groups[1].error_code, ErrorCode::GROUP_ID_NOT_FOUND.code());

    let mut bad = Client::new(3, "z", &["t"]);
    bad.assignor = Some("sticky".into());
    g.h.connect(g.coordinator, 3);
    let r = g.raw(3, bad.request());
    assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_ASSIGNOR.code());
}

fn classic_join(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: bytes::Bytes::from_static(b"sub"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn an_empty_classic_group_upgrades_and_a_busy_one_is_refused() {
    let mut g = Group::new();
    g.create_topic("t", 2);
    // A classic group that only holds offsets (a simple commit).
    let r = g.h.call(
        g.coordinator,
        1000,
        OffsetCommitRequest {
            group_id: GROUP.into(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 1,
                    committed_offset: 11,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        8,
    );
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let a = g.add(Client::new(1, "a", &["t"]));
    g.beat(a);
    g.converge();
    let listed =
        g.h.call(g.coordinator, 1000, ListGroupsRequest::default(), 5);
    let entry = listed.groups.iter().find(|l| l.group_id == GROUP).unwrap();
    assert_eq!(
        (entry.group_type.as_str(), entry.group_state.as_str()),
        ("consumer", "Stable")
    );
    assert_eq!(
        listed.groups.iter().filter(|l| l.group_id == GROUP).count(),
        1
    );
    let filtered = g.h.call(
        g.coordinator,
        1000,
        ListGroupsRequest {
            types_filter: vec!["classic".into()],
            ..Default::default()
        },
        5,
    );
    assert!(filtered.groups.iter().all(|l| l.group_id != GROUP));
    // The offsets committed before the upgrade are still there.
    let fetched = g.h.call(
        g.coordinator,
        1000,
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: GROUP.into(),
                member_epoch: -1,
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        },
        9,
    );
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        11
    );
    // A classic member cannot join a consumer group with members; DescribeGroups calls it
    // Dead (not a classic group); DeleteGroups refuses.
    let j = g.h.call(g.coordinator, 1000, classic_join(""), 9);
    assert_eq!(j.error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL.code());
    let d = g.h.call(
        g.coordinator,
        1000,
        DescribeGroupsRequest {
            groups: vec![GROUP.into()],
            ..Default::default()
        },
        5,
    );
    assert_eq!(d.groups[0].group_state, "Dead");
    let del = g.h.call(
        g.coordinator,
        1000,
        DeleteGroupsRequest {
            groups_names: vec![GROUP.into()],
            ..Default::default()
        },
        2,
    );
    assert_eq!(del.results[0].error_code, ErrorCode::NON_EMPTY_GROUP.code());

    // Once empty, the group goes back to the classic protocol on a JoinGroup...
    let mut leave = g.clients[a].request();
    leave.member_epoch = -1;
    assert_eq!(g.raw(1, leave).error_code, 0);
    g.clients.clear();
    let j = g.h.call(g.coordinator, 1000, classic_join(""), 9);
    assert_eq!(j.error_code, ErrorCode::MEMBER_ID_REQUIRED.code());
    let j = g.h.call(g.coordinator, 1000, classic_join(&j.member_id), 9);
    assert_eq!(j.error_code, 0);
    assert!(g.h.cluster.consumer_groups().group(GROUP).is_none());
    // ...and a classic group with a member refuses consumer-protocol heartbeats.
    g.h.connect(g.coordinator, 5);
    let r = g.raw(5, Client::new(5, "late", &["t"]).request());
    assert_eq!(r.error_code, ErrorCode::GROUP_ID_NOT_FOUND.code());
}

#[test]
fn requests_that_are_not_valid_are_refused() {
    let mut g = Group::new();
    g.create_topic("t", 1);
    g.h.connect(g.coordinator, 1);
    let mut no_subscription = Client::new(1, "a", &[]);
    no_subscription.topics = None;
    let r = g.raw(1, no_subscription.request());
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST.code());
    let r = g.raw(1, Client::new(1, "", &["t"]).request());
    assert_eq!(
        r.error_code,
        ErrorCode::INVALID_REQUEST.code(),
        "v1 needs a member id"
    );
    // v0 hands out a member id.
    let r =
        g.h.call(g.coordinator, 1, Client::new(1, "", &["t"]).request(), 0);
    assert_eq!(r.error_code, 0);
    assert!(!r.member_id.unwrap_or_default().is_empty());
    let other = (g.coordinator + 1) % 3;
    g.h.connect(other, 7);
    let r: ConsumerGroupHeartbeatResponse =
        g.h.call(other, 7, Client::new(7, "x", &["t"]).request(), 1);
    assert_eq!(r.error_code, ErrorCode::NOT_COORDINATOR.code());
}

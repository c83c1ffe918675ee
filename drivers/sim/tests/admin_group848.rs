//! The admin core's group calls on KIP-848 consumer-protocol groups, against the simulated
//! cluster: `describe_consumer_groups` asks ConsumerGroupDescribe (epochs, current vs target
//! assignments per member), falls back to DescribeGroups for classic groups and for a cluster
//! without the API, and `list_consumer_groups` reports each group's type.
//!
//! The consumer-protocol members are raw ConsumerGroupHeartbeats fed straight into the
//! cluster the admin client talks to (on connections of their own), so each step of the
//! group (joining, revoking, reconciled) is described exactly.

mod cluster_support;

use std::collections::BTreeMap;

use cluster_support::{decode_as, request_frame};
use kafkit_core::admin::{
    AdminCore, AdminError, AdminOutcome, ConsumerGroupDescription, GroupType, NewTopic,
};
use kafkit_core::config::AdminConfig;
use kafkit_core::consumer::{OffsetAndMetadata, TopicPartition};
use kafkit_core::protocol::consumer_group_heartbeat::request::TopicPartitions;
use kafkit_core::protocol::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, Request, RequestBody,
};
use kafkit_sim::{AdminSim, ClusterConfig};

const GROUP: &str = "g848";

fn admin(cluster: ClusterConfig) -> AdminSim {
    let config = AdminConfig::builder()
        .set("default_api_timeout_ms", "20000")
        .set("request_timeout_ms", "5000")
        .build()
        .expect("config");
    AdminSim::new(cluster, &config, 7).expect("admin")
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn tps(topic: &str, partitions: &[i32]) -> Vec<TopicPartition> {
    partitions.iter().map(|p| tp(topic, *p)).collect()
}

fn create_topic(a: &mut AdminSim, name: &str, partitions: i32) {
    let topics = vec![NewTopic::new(name, partitions, 1)];
    let o = a
        .call(move |c: &mut AdminCore, op, now| c.create_topics(op, topics, false, None, now))
        .expect("ran");
    let AdminOutcome::Topics(r) = o else {
        panic!("{o:?}")
    };
    assert!(r[name].is_ok(), "{r:?}");
}

/// A consumer-protocol member speaking raw heartbeats on a connection of its own to the
/// group's coordinator. It takes every assignment it is sent at once.
struct Member {
    conn: u64,
    id: String,
    epoch: i32,
    owned: Vec<TopicPartitions>,
    topics: Vec<String>,
}

impl Member {
    /// Connection ids far above the simulation's own (client index << shift | counter).
    fn new(a: &mut AdminSim, n: u64, id: &str, topics: &[&str]) -> Member {
        let conn = u64::MAX - n;
        let cluster = a.cluster().clone();
        let mut cluster = cluster.borrow_mut();
        let coordinator = cluster.coordinator_for(GROUP);
        assert!(cluster.connection_opened(coordinator, conn, "/10.0.0.9"));
        Member {
            conn,
            id: id.to_owned(),
            epoch: 0,
            owned: Vec::new(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn beat(&mut self, a: &mut AdminSim) -> ConsumerGroupHeartbeatResponse {
        let join = self.epoch == 0;
        let req = ConsumerGroupHeartbeatRequest {
            group_id: GROUP.into(),
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: if join { 30_000 } else { -1 },
            subscribed_topic_names: Some(self.topics.clone()).filter(|_| join),
            topic_partitions: Some(self.owned.clone()),
            ..Default::default()
        };
        let r = call(a, self.conn, req);
        assert_eq!(r.error_code, 0, "{}: {:?}", self.id, r.error_message);
        self.epoch = r.member_epoch;
        if let Some(assignment) = &r.assignment {
            self.owned = assignment
                .topic_partitions
                .iter()
                .map(|t| TopicPartitions {
                    topic_id: t.topic_id,
                    partitions: t.partitions.clone(),
                    ..Default::default()
                })
                .collect();
        }
        r
    }
}

/// One request on a raw connection to the group's coordinator, answered at once.
fn call<R: Request>(a: &mut AdminSim, conn: u64, body: R) -> R::Response
where
    RequestBody: From<R>,
{
    let now = a.sim().now();
    let cluster = a.cluster().clone();
    let mut cluster = cluster.borrow_mut();
    let coordinator = cluster.coordinator_for(GROUP);
    let frame = request_frame(&RequestBody::from(body), 0, 1);
    let reply = cluster.handle_frame(coordinator, conn, frame, now);
    assert_eq!(reply.frames.len(), 1, "{:?}: one response", R::API_KEY);
    decode_as::<R>(0, &reply.frames[0]).1
}

fn describe(
    a: &mut AdminSim,
    groups: &[&str],
) -> BTreeMap<String, Result<ConsumerGroupDescription, AdminError>> {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    let o = a
        .call(move |c: &mut AdminCore, op, now| c.describe_consumer_groups(op, groups, None, now))
        .expect("ran");
    match o {
        AdminOutcome::GroupDescriptions(d) => d,
        other => panic!("{other:?}"),
    }
}

/// (member id, epoch, current, target) of each member, sorted by id.
type MemberRow = (
    String,
    Option<i32>,
    Vec<TopicPartition>,
    Option<Vec<TopicPartition>>,
);

fn members(d: &ConsumerGroupDescription) -> Vec<MemberRow> {
    let mut rows: Vec<MemberRow> = d
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                m.member_epoch,
                m.assignment.clone(),
                m.target_assignment.clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(
    id: &str,
    epoch: i32,
    current: Vec<TopicPartition>,
    target: Vec<TopicPartition>,
) -> MemberRow {
    (id.to_owned(), Some(epoch), current, Some(target))
}

/// A classic group that only holds offsets: what Java's admin client makes when it commits
/// for a group from outside it.
fn classic_group(a: &mut AdminSim, group: &str) {
    let offsets = BTreeMap::from([(tp("t", 0), OffsetAndMetadata::new(4))]);
    let group = group.to_owned();
    let o = a
        .call(move |c: &mut AdminCore, op, now| {
            c.alter_consumer_group_offsets(op, &group, offsets, None, now)
        })
        .expect("ran");
    let AdminOutcome::Partitions(r) = o else {
        panic!("{o:?}")
    };
    assert!(r.values().all(Result::is_ok), "{r:?}");
}

#[test]
fn a_consumer_group_is_described_with_epochs_and_current_and_target_assignments() {
    let mut a = admin(ClusterConfig::default());
    create_topic(&mut a, "t", 4);
    let mut ma = Member::new(&mut a, 1, "member-a", &["t"]);
    assert_eq!(ma.beat(&mut a).member_epoch, 1);

    let d = describe(&mut a, &[GROUP]);
    let g = d[GROUP].as_ref().expect("described");
    assert_eq!(g.group_type, GroupType::Consumer);
    assert_eq!(g.protocol_type, "consumer");
    assert_eq!(g.partition_assignor, "uniform");
    assert_eq!(g.state, "Stable");
    assert_eq!((g.group_epoch, g.assignment_epoch), (Some(1), Some(1)));
    assert_eq!(
        members(g),
        vec![row(
            "member-a",
            1,
            tps("t", &[0, 1, 2, 3]),
            tps("t", &[0, 1, 2, 3])
        )]
    );
    let m = &g.members[0];
    assert_eq!(m.subscribed_topics, vec!["t".to_owned()]);
    assert_eq!(m.subscribed_topic_regex, None);
    assert_eq!(m.group_instance_id, None);

    // b joins: the target splits the partitions, but a still owns all four until it
    // acknowledges the revocation, and b owns nothing yet.
    let mut mb = Member::new(&mut a, 2, "member-b", &["t"]);
    assert_eq!(mb.beat(&mut a).member_epoch, 2);
    let d = describe(&mut a, &[GROUP]);
    let g = d[GROUP].as_ref().expect("described");
    assert_eq!(g.state, "Reconciling");
    assert_eq!((g.group_epoch, g.assignment_epoch), (Some(2), Some(2)));
    let rows = members(g);
    assert_eq!(rows[0].0, "member-a");
    assert_eq!(rows[0].1, Some(1), "a has not caught up to epoch 2");
    assert_eq!(rows[0].2, tps("t", &[0, 1, 2, 3]));
    let a_target = rows[0].3.clone().expect("a target");
    let b_target = rows[1].3.clone().expect("b target");
    // The uniform assignor keeps what it can in place: a keeps the upper half.
    assert_eq!(
        (a_target.clone(), b_target.clone()),
        (tps("t", &[2, 3]), tps("t", &[0, 1]))
    );
    assert_eq!(rows[1], row("member-b", 2, Vec::new(), b_target.clone()));

    // a gives up b's partitions, then b gets them: everyone at the target.
    ma.beat(&mut a);
    ma.beat(&mut a);
    mb.beat(&mut a);
    let d = describe(&mut a, &[GROUP]);
    let g = d[GROUP].as_ref().expect("described");
    assert_eq!(g.state, "Stable");
    assert_eq!((g.group_epoch, g.assignment_epoch), (Some(2), Some(2)));
    assert_eq!(
        members(g),
        vec![
            row("member-a", 2, a_target.clone(), a_target),
            row("member-b", 2, b_target.clone(), b_target),
        ]
    );
}

#[test]
fn classic_and_unknown_groups_are_described_with_describe_groups() {
    let mut a = admin(ClusterConfig::default());
    create_topic(&mut a, "t", 2);
    let mut m = Member::new(&mut a, 1, "member-a", &["t"]);
    m.beat(&mut a);
    classic_group(&mut a, "classic");

    let d = describe(&mut a, &[GROUP, "classic", "nope"]);
    assert_eq!(
        d[GROUP].as_ref().expect("848").group_type,
        GroupType::Consumer
    );
    let c = d["classic"].as_ref().expect("classic");
    assert_eq!(c.group_type, GroupType::Classic);
    assert_eq!(c.state, "Empty");
    assert_eq!(c.protocol_type, "");
    assert_eq!((c.group_epoch, c.assignment_epoch), (None, None));
    assert!(c.members.is_empty());
    // A group nobody knows fails as it did before ConsumerGroupDescribe: DescribeGroups
    // reports it Dead, which is GROUP_ID_NOT_FOUND.
    assert_eq!(
        d["nope"].as_ref().err().and_then(AdminError::code),
        Some(kafkit_core::protocol::ErrorCode::GROUP_ID_NOT_FOUND)
    );
}

#[test]
fn a_mixed_listing_names_each_group_type() {
    let mut a = admin(ClusterConfig::default());
    create_topic(&mut a, "t", 2);
    let mut m = Member::new(&mut a, 1, "member-a", &["t"]);
    m.beat(&mut a);
    classic_group(&mut a, "classic");

    let list = |a: &mut AdminSim| {
        let o = a
            .call(|c: &mut AdminCore, op, now| c.list_consumer_groups(op, None, now))
            .expect("ran");
        let AdminOutcome::GroupListing(Ok(l)) = o else {
            panic!("{o:?}")
        };
        assert!(l.errors.is_empty(), "{l:?}");
        l.groups
            .into_iter()
            .map(|g| (g.group_id, g.group_type, g.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&mut a),
        vec![
            (
                "classic".to_owned(),
                Some(GroupType::Classic),
                Some("Empty".to_owned())
            ),
            (
                GROUP.to_owned(),
                Some(GroupType::Consumer),
                Some("Stable".to_owned())
            ),
        ]
    );

    // Brokers before ListGroups v5 name no type.
    let mut old = admin(ClusterConfig::default().with_api_versions(ApiKey::ListGroups, 0, 4));
    create_topic(&mut old, "t", 2);
    classic_group(&mut old, "classic");
    assert_eq!(
        list(&mut old),
        vec![("classic".to_owned(), None, Some("Empty".to_owned()))]
    );
}

#[test]
fn a_cluster_without_consumer_group_describe_falls_back_to_describe_groups() {
    let mut a = admin(ClusterConfig::default().without_api(ApiKey::ConsumerGroupDescribe));
    create_topic(&mut a, "t", 2);
    classic_group(&mut a, "classic");
    let d = describe(&mut a, &["classic", "nope"]);
    let c = d["classic"].as_ref().expect("classic");
    assert_eq!(
        (c.group_type, c.state.as_str()),
        (GroupType::Classic, "Empty")
    );
    assert_eq!(
        d["nope"].as_ref().err().and_then(AdminError::code),
        Some(kafkit_core::protocol::ErrorCode::GROUP_ID_NOT_FOUND)
    );
    // Once the coordinator's versions are known, a call asks DescribeGroups straight away.
    let d = describe(&mut a, &["classic"]);
    assert_eq!(
        d["classic"].as_ref().expect("again").group_type,
        GroupType::Classic
    );
}

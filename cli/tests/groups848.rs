//! `kafkit groups list|describe` on a KIP-848 consumer-protocol group, against kafkit's
//! development broker (whose coordinator serves ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe): the listing names the group type, the description carries the
//! group and assignment epochs and per member its epoch and current vs target assignment, in
//! text and in `--json`. A classic group next to it is still described by DescribeGroups.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kafkit_blocking::{Consumer, LowLevelClient};
use kafkit_core::config::{CommonConfig, ConsumerConfig};
use kafkit_core::network::{CoordinatorKind, Target};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_core::protocol::{CreateTopicsRequest, OffsetCommitRequest};
use kafkit_sim::{DevBroker, DevBrokerConfig};
use serde_json::Value;

const TOPIC: &str = "k848-cli";

struct Cluster {
    bootstrap: String,
    _broker: DevBroker,
}

impl Cluster {
    fn start() -> Cluster {
        let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("dev broker");
        let bootstrap = broker.bootstrap();
        let mut common = CommonConfig::default();
        common
            .set("bootstrap_servers", &bootstrap)
            .expect("bootstrap");
        let client = LowLevelClient::start(&common).expect("client");
        let create = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: TOPIC.into(),
                num_partitions: 4,
                replication_factor: -1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        };
        let r = client
            .send(Target::Controller, create, None)
            .expect("CreateTopics")
            .body_as::<CreateTopicsRequest>()
            .expect("a CreateTopics response");
        assert!(r.topics[0].error().is_ok(), "{r:?}");
        Cluster {
            bootstrap,
            _broker: broker,
        }
    }

    /// A kafkit consumer of the consumer group protocol in `group`, subscribed to the topic.
    fn member(&self, group: &str, client_id: &str) -> Consumer {
        let c = Consumer::start(
            &ConsumerConfig::builder()
                .bootstrap_servers(self.bootstrap.as_str())
                .set("group_id", group)
                .set("group_protocol", "consumer")
                .set("client_id", client_id)
                .set("enable_auto_commit", "false")
                .build()
                .expect("config"),
        )
        .expect("consumer");
        c.subscribe([TOPIC]).expect("subscribe");
        c
    }

    fn kafkit(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kafkit"))
            .arg("-b")
            .arg(&self.bootstrap)
            .args(args)
            .env_remove("KAFKA_BOOTSTRAP")
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("running kafkit")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kafkit(args);
        assert!(
            out.status.success(),
            "kafkit {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn describe(&self, group: &str) -> Value {
        let out = self.ok(&["groups", "describe", group, "--json"]);
        let v: Value = serde_json::from_str(&out).expect("JSON");
        v["groups"][0].clone()
    }
}

/// The partitions of a JSON assignment.
fn partitions(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("an assignment: {v}"))
        .iter()
        .map(|p| {
            assert_eq!(p["topic"], TOPIC, "{v}");
            p["partition"].as_i64().expect("partition")
        })
        .collect()
}

/// Polls both members until the group described is Stable with each member owning its
/// target; returns that description.
fn stable(cluster: &Cluster, group: &str, members: &[&Consumer]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for m in members {
            m.poll(Duration::from_millis(100)).expect("poll");
        }
        let d = cluster.describe(group);
        let ms = d["members"].as_array().cloned().unwrap_or_default();
        let settled = d["state"] == "Stable"
            && ms.len() == members.len()
            && ms.iter().all(|m| {
                m["assignment"] == m["target_assignment"] && m["member_epoch"] == d["group_epoch"]
            });
        if settled {
            return d;
        }
        assert!(Instant::now() < deadline, "the group never settled: {d}");
    }
}

#[test]
fn a_consumer_protocol_group_is_listed_and_described_with_epochs_and_assignments() {
    let cluster = Cluster::start();
    let group = "k848-cli-group";
    let a = cluster.member(group, "member-a");
    let b = cluster.member(group, "member-b");
    let d = stable(&cluster, group, &[&a, &b]);

    assert_eq!(d["error"], Value::Null, "{d}");
    assert_eq!(d["group_type"], "consumer", "{d}");
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    assert_eq!(d["protocol"], "uniform", "{d}");
    let epoch = d["group_epoch"].as_i64().expect("group epoch");
    assert!(epoch >= 2, "two members joined: {d}");
    assert_eq!(d["assignment_epoch"], d["group_epoch"], "{d}");
    let members = d["members"].as_array().unwrap();
    let mut clients: Vec<&str> = members
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    clients.sort_unstable();
    assert_eq!(clients, ["member-a", "member-b"], "{d}");
    let mut owned = BTreeSet::new();
    for m in members {
        assert_eq!(m["member_epoch"].as_i64(), Some(epoch), "{d}");
        assert_eq!(m["subscribed_topics"], serde_json::json!([TOPIC]), "{d}");
        let mine = partitions(&m["assignment"]);
        assert_eq!(
            mine.len(),
            2,
            "the uniform assignor splits 4 partitions: {d}"
        );
        assert_eq!(mine, partitions(&m["target_assignment"]), "{d}");
        assert!(owned.is_disjoint(&mine), "a partition owned twice: {d}");
        owned.extend(mine);
    }
    assert_eq!(owned, BTreeSet::from([0, 1, 2, 3]), "{d}");

    // The text form: the epochs in the header, and EPOCH / ASSIGNMENT / TARGET-ASSIGNMENT per
    // member.
    let text = cluster.ok(&["groups", "describe", group]);
    assert!(
        text.contains(&format!("group epoch {epoch}, assignment epoch {epoch}")),
        "{text}"
    );
    assert!(text.contains("TARGET-ASSIGNMENT"), "{text}");
    let a_line = text
        .lines()
        .find(|l| l.contains("member-a") && l.contains(&format!("{TOPIC}:")))
        .unwrap_or_else(|| panic!("a member row for member-a: {text}"));
    let a_json = members
        .iter()
        .find(|m| m["client_id"] == "member-a")
        .unwrap();
    let a_parts: Vec<String> = partitions(&a_json["assignment"])
        .iter()
        .map(i64::to_string)
        .collect();
    let assigned = format!("{TOPIC}:{}", a_parts.join(","));
    assert_eq!(
        a_line.matches(&assigned).count(),
        2,
        "current and target: {a_line}"
    );

    // A classic group (offsets only: a commit from outside any group) next to it.
    let mut common = CommonConfig::default();
    common
        .set("bootstrap_servers", &cluster.bootstrap)
        .expect("bootstrap");
    let client = LowLevelClient::start(&common).expect("client");
    let commit = OffsetCommitRequest {
        group_id: "k848-cli-classic".into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let target = Target::Coordinator {
        kind: CoordinatorKind::Group,
        key: "k848-cli-classic".into(),
    };
    let r = client
        .send(target, commit, Some(8))
        .expect("OffsetCommit")
        .body_as::<OffsetCommitRequest>()
        .expect("an OffsetCommit response");
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
    let c = cluster.describe("k848-cli-classic");
    assert_eq!(c["group_type"], "classic", "{c}");
    assert_eq!(c["group_epoch"], Value::Null, "{c}");

    // The listing: a TYPE column and `group_type` in JSON.
    let listed: Value =
        serde_json::from_str(&cluster.ok(&["groups", "list", "--json"])).expect("JSON");
    let types: Vec<(String, String)> = listed["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group_id"].as_str().unwrap().to_owned(),
                g["group_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("k848-cli-classic".to_owned(), "classic".to_owned()),
            (group.to_owned(), "consumer".to_owned()),
        ],
        "{listed}"
    );
    let text = cluster.ok(&["groups", "list"]);
    assert!(
        text.lines().next().unwrap_or("").starts_with("GROUP") && text.contains("TYPE"),
        "{text}"
    );
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with(group))
        .unwrap_or_else(|| panic!("{group} listed: {text}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..4],
        [group, "consumer", "consumer", "Stable"],
        "{text}"
    );
    a.close().expect("close a");
    b.close().expect("close b");
}

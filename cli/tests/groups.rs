//! End-to-end tests of consumer groups on the command line, against kafkit's development
//! broker (its model has a group coordinator with ListGroups, DescribeGroups, DeleteGroups and
//! OffsetFetch), or the cluster in KAFKA_BOOTSTRAP when it is set:
//! - `kafkit consume -G` joins a group, commits what it printed and leaves; a second run with
//!   the same group continues where the first stopped;
//! - `kafkit groups list` shows the group; `groups describe` shows a live member (client id,
//!   host, decoded assignment), committed offsets, log end offsets and lag;
//! - `kafkit groups delete` deletes empty groups and names the error of each one it could not
//!   delete.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_blocking::{Consumer, LowLevelClient, Producer, Wait};
use kafkit_core::config::{CommonConfig, ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::{OffsetAndMetadata, TopicPartition};
use kafkit_core::network::Target;
use kafkit_core::producer::ProducerRecord;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::CreateTopicsRequest;
use kafkit_sim::{DevBroker, DevBrokerConfig};
use serde_json::Value;

/// The cluster under test: KAFKA_BOOTSTRAP, or a development broker of 3 brokers.
struct Cluster {
    bootstrap: String,
    _broker: Option<DevBroker>,
}

impl Cluster {
    fn start() -> Cluster {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.trim().is_empty() => Cluster {
                bootstrap: b,
                _broker: None,
            },
            _ => {
                let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
                Cluster {
                    bootstrap: broker.bootstrap(),
                    _broker: Some(broker),
                }
            }
        }
    }

    /// Creates a topic of `partitions` partitions and writes `records` keyed records to it,
    /// `value-N` for record N, spread over the partitions by key. Returns the topic.
    fn topic_with_records(&self, name: &str, partitions: i32, records: usize) -> String {
        let topic = unique(name);
        let mut common = CommonConfig::default();
        common
            .set("bootstrap_servers", &self.bootstrap)
            .expect("bootstrap");
        let client = LowLevelClient::start(&common).expect("client");
        let create = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: topic.clone(),
                num_partitions: partitions,
                replication_factor: -1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        };
        let resp = client
            .send(Target::Controller, create, None)
            .expect("CreateTopics");
        let r = resp
            .body_as::<CreateTopicsRequest>()
            .expect("a CreateTopics response");
        assert!(r.topics[0].error().is_ok(), "{r:?}");
        let producer = Producer::start(
            &ProducerConfig::builder()
                .bootstrap_servers(self.bootstrap.as_str())
                .build()
                .expect("config"),
        )
        .expect("producer");
        let deliveries: Vec<_> = (0..records)
            .map(|i| {
                producer
                    .enqueue(
                        ProducerRecord::new(topic.as_str())
                            .key(format!("key-{i}"))
                            .value(format!("value-{i}")),
                    )
                    .expect("send")
            })
            .collect();
        for d in deliveries {
            d.wait().expect("delivered");
        }
        producer.close(None).expect("close");
        topic
    }

    /// A kafkit consumer in `group` (not yet subscribed).
    fn member(&self, group: &str, client_id: &str) -> Consumer {
        Consumer::start(
            &ConsumerConfig::builder()
                .bootstrap_servers(self.bootstrap.as_str())
                .set("group_id", group)
                .set("client_id", client_id)
                .set("auto_offset_reset", "earliest")
                .set("enable_auto_commit", "false")
                .build()
                .expect("config"),
        )
        .expect("consumer")
    }

    /// Runs `kafkit -b BOOTSTRAP args..`.
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

    /// Runs kafkit, expecting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kafkit(args);
        assert!(
            out.status.success(),
            "kafkit {args:?} failed with {}: {}",
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `groups describe GROUP --json`, the one group's object.
    fn describe(&self, group: &str) -> Value {
        let out = self.ok(&["groups", "describe", group, "--json"]);
        let v: Value = serde_json::from_str(&out).expect("JSON");
        v["groups"][0].clone()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A name no other test (or earlier run against the same cluster) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{ms}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `partition:offset:value` lines as a set of (partition, offset), checking values are unique.
fn read_lines(out: &str) -> BTreeSet<(i32, i64)> {
    let mut seen = BTreeSet::new();
    let mut values = BTreeSet::new();
    for line in out.lines() {
        let mut parts = line.splitn(3, ':');
        let p: i32 = parts.next().unwrap().parse().expect("partition");
        let o: i64 = parts.next().unwrap().parse().expect("offset");
        let v = parts.next().expect("value").to_owned();
        assert!(seen.insert((p, o)), "{p}:{o} printed twice in one run");
        assert!(values.insert(v), "a value printed twice in one run: {line}");
    }
    seen
}

/// Offsets of the group's `offsets` rows in a describe JSON, by partition.
fn rows(group: &Value) -> BTreeMap<i64, (Value, Value, Value)> {
    group["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                (
                    r["committed_offset"].clone(),
                    r["log_end_offset"].clone(),
                    r["lag"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn consume_with_a_group_continues_where_the_last_run_stopped() {
    let cluster = Cluster::start();
    let topic = cluster.topic_with_records("cli-group-resume", 3, 30);
    let group = unique("cli-resume");
    let format = "%p:%o:%s\\n";

    // The first member prints 10 records, commits exactly those and leaves.
    let first = cluster.ok(&[
        "consume", "-G", &group, "-t", &topic, "-c", "10", "-f", format,
    ]);
    let first = read_lines(&first);
    assert_eq!(first.len(), 10, "{first:?}");

    let described = cluster.describe(&group);
    assert_eq!(described["error"], Value::Null, "{described}");
    assert_eq!(described["state"], "Empty", "the member left: {described}");
    assert_eq!(described["members"].as_array().unwrap().len(), 0);
    let committed: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["committed_offset"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(committed, 10, "committed what was printed: {described}");
    // Lag is shown for the partitions the group committed (as kafka-consumer-groups.sh does
    // for a group without members): which ones depends on where the first 10 records came from.
    let lag: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some(r["log_end_offset"].as_i64()? - r["committed_offset"].as_i64()?))
        .sum();
    assert!(lag <= 20, "{described}");
    assert_eq!(described["total_lag"], lag, "{described}");

    // The second run continues there and reads the other 20, then stops at the end.
    let second = cluster.ok(&["consume", "-G", &group, "-t", &topic, "-e", "-f", format]);
    let second = read_lines(&second);
    assert_eq!(second.len(), 20, "{second:?}");
    assert!(first.is_disjoint(&second), "no record twice");
    let all: BTreeSet<(i32, i64)> = first.union(&second).copied().collect();
    assert_eq!(all.len(), 30);

    let described = cluster.describe(&group);
    assert_eq!(described["total_lag"], 0, "{described}");
    for (p, (committed, end, lag)) in rows(&described) {
        assert_eq!(committed, end, "partition {p}");
        assert_eq!(lag, 0, "partition {p}");
    }

    // A third run has nothing left: -e ends it at once with no output.
    let third = cluster.ok(&["consume", "-G", &group, "-t", &topic, "-e", "-f", format]);
    assert!(third.is_empty(), "{third}");
}

#[test]
fn consume_with_a_group_reads_several_topics() {
    let cluster = Cluster::start();
    let a = cluster.topic_with_records("cli-group-a", 2, 8);
    let b = cluster.topic_with_records("cli-group-b", 1, 5);
    let group = unique("cli-two-topics");
    let out = cluster.ok(&[
        "consume",
        "-G",
        &group,
        "-t",
        &a,
        "-t",
        &b,
        "-e",
        "-f",
        "%t %p %o\\n",
    ]);
    let mut per_topic: BTreeMap<String, usize> = BTreeMap::new();
    for line in out.lines() {
        *per_topic
            .entry(line.split(' ').next().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_topic.get(&a), Some(&8), "{out}");
    assert_eq!(per_topic.get(&b), Some(&5), "{out}");

    let listed = cluster.ok(&["groups", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let entry = listed["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group.as_str())
        .unwrap_or_else(|| panic!("{group} listed: {listed}"))
        .clone();
    assert_eq!(entry["protocol_type"], "consumer", "{entry}");
    if cluster._broker.is_some() {
        assert_eq!(entry["state"], "Empty", "{entry}");
    }
    let text = cluster.ok(&["groups", "list"]);
    assert!(text.starts_with("GROUP"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&group) && l.contains("consumer")),
        "{text}"
    );
}

#[test]
fn describe_shows_members_assignments_and_lag() {
    let cluster = Cluster::start();
    let topic = cluster.topic_with_records("cli-group-describe", 3, 30);
    let group = unique("cli-describe");

    // A live member: joins, reads all 30 records and commits the end of every partition but
    // partition 0, which it commits at 0.
    let member = cluster.member(&group, "describe-test-member");
    member.subscribe([topic.as_str()]).expect("subscribe");
    let mut read: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.values().map(|n| *n as usize).sum::<usize>() < 30 {
        assert!(Instant::now() < deadline, "read only {read:?}");
        for r in member.poll(Duration::from_millis(200)).expect("poll") {
            *read.entry(r.topic_partition()).or_default() += 1;
        }
    }
    let p0 = TopicPartition::new(topic.as_str(), 0);
    let mut commit: BTreeMap<TopicPartition, OffsetAndMetadata> = read
        .iter()
        .map(|(tp, n)| (tp.clone(), OffsetAndMetadata::new(*n)))
        .collect();
    let p0_end = read[&p0];
    assert!(p0_end > 0, "partition 0 got records: {read:?}");
    commit.insert(p0.clone(), OffsetAndMetadata::new(0));
    member.commit(Some(commit)).expect("commit");

    let d = cluster.describe(&group);
    assert_eq!(d["error"], Value::Null, "{d}");
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    assert!(!d["protocol"].as_str().unwrap().is_empty(), "{d}");
    let members = d["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{d}");
    assert_eq!(members[0]["client_id"], "describe-test-member");
    assert!(!members[0]["host"].as_str().unwrap().is_empty(), "{d}");
    let assigned: BTreeSet<i64> = members[0]["assignment"]
        .as_array()
        .expect("a decoded assignment")
        .iter()
        .map(|a| {
            assert_eq!(a["topic"], topic.as_str());
            a["partition"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(assigned, BTreeSet::from([0, 1, 2]), "{d}");
    let rows = rows(&d);
    assert_eq!(rows.len(), 3, "{d}");
    assert_eq!(rows[&0].0, 0, "{d}");
    assert_eq!(rows[&0].2, p0_end, "lag = end - committed: {d}");
    assert_eq!(rows[&1].2, 0, "{d}");
    assert_eq!(d["total_lag"], p0_end, "{d}");
    let member_id = members[0]["member_id"].as_str().unwrap().to_owned();
    for r in d["offsets"].as_array().unwrap() {
        assert_eq!(
            r["member_id"],
            member_id.as_str(),
            "every partition is owned: {d}"
        );
    }

    // The table, like kafka-consumer-groups.sh --describe.
    let table = cluster.ok(&["groups", "describe", &group]);
    assert!(
        table.contains(&format!("Group {group}: Stable, consumer protocol")),
        "{table}"
    );
    assert!(table.contains("describe-test-member"), "{table}");
    assert!(
        table.contains(&format!("{topic}:0,1,2")),
        "the decoded assignment: {table}"
    );
    let header = table
        .lines()
        .find(|l| l.starts_with("GROUP "))
        .unwrap_or_else(|| panic!("{table}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ],
        "{table}"
    );
    let p0_row: Vec<&str> = table
        .lines()
        .find(|l| {
            l.starts_with(&format!("{group}  {topic}")) && l.split_whitespace().nth(2) == Some("0")
        })
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    let end = p0_end.to_string();
    assert_eq!(p0_row[3..6], ["0", end.as_str(), end.as_str()], "{table}");
    assert_eq!(p0_row[8], "describe-test-member", "{table}");
    assert!(table.contains(&format!("Total lag: {p0_end}")), "{table}");

    // A group with members is not deleted.
    let out = cluster.kafkit(&["groups", "delete", &group]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("NON_EMPTY_GROUP"),
        "{}",
        text(&out.stderr)
    );

    member.close().expect("close");
}

#[test]
fn delete_removes_empty_groups_and_names_each_failure() {
    let cluster = Cluster::start();
    let topic = cluster.topic_with_records("cli-group-delete", 1, 3);
    let group = unique("cli-delete");
    let out = cluster.ok(&["consume", "-G", &group, "-t", &topic, "-e"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let missing = unique("cli-never-existed");

    // One deleted, one error: exit 1, each group's outcome said.
    let out = cluster.kafkit(&["groups", "delete", &group, &missing]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout} {stderr}");
    assert!(
        stdout.contains(&format!("Deleted group {group}.")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "group {missing} not deleted: GROUP_ID_NOT_FOUND (69)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 groups not deleted"), "{stderr}");

    // Gone: not listed, described as not existing, deleting it again fails.
    let listed = cluster.ok(&["groups", "list", "--json"]);
    assert!(!listed.contains(&format!("\"{group}\"")), "{listed}");
    let out = cluster.kafkit(&["groups", "describe", &group]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = cluster.kafkit(&["groups", "delete", &group, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["results"][0]["deleted"], false, "{v}");
    assert!(
        v["results"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("GROUP_ID_NOT_FOUND"),
        "{v}"
    );
}

#[test]
fn groups_need_a_reachable_cluster_and_valid_usage() {
    // Usage: describe and delete need a group; consume -G needs a topic.
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["groups", "describe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["groups", "delete"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // -p and -o are manual assignment: not with a group.
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(["consume", "-G", "g", "-t", "t", "-p", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

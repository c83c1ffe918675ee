//! kafkit consumers and librdkafka consumers in one consumer group, on a broker nobody here
//! wrote: librdkafka's mock cluster, or the cluster `KAFKA_BOOTSTRAP` names (every test then
//! uses topic and group names of its own).
//!
//! - With `range`, `roundrobin` and `cooperative-sticky`, a group of kafkit members (tokio
//!   driver; the blocking driver in the roundrobin test) and rdkafka members (`BaseConsumer`
//!   with `group.id` and the same `partition.assignment.strategy`) splits the partitions with
//!   no overlap and no gap once it is stable; when a kafkit member leaves, the others (rdkafka
//!   among them) take its partitions; when another rdkafka member joins, the partitions are
//!   redistributed; each time no overlap, no gap, and the split is balanced (member sizes
//!   differ by at most one). Every record produced (by librdkafka's producer, before and
//!   between the membership changes) is consumed by some member at least once.
//! - Offsets: in one group, kafkit commits its consumed positions and an rdkafka member of the
//!   same group reads them with `committed_offsets`; rdkafka commits and kafkit reads them with
//!   `committed`; and a member taking over partitions of one that left starts exactly at the
//!   offsets the leaver committed, in both directions.
//!
//! The stable point: every member's assignment (rdkafka's `assignment()`, kafkit's
//! `assignment()` with `group_state() == Stable`) is read from the member's own polling
//! thread; the split is taken once the assignments are disjoint, cover the topic and stay the
//! same for [`STEADY`].
//!
//! Limits of librdkafka's mock cluster (rdkafka_mock_cgrp.c, librdkafka 2.12), and what the
//! tests do about them:
//! - it elects the protocol as the leader's *first* protocol and asserts (aborting the
//!   process) that every member's first protocol has that name; Kafka picks a protocol all
//!   members support. So every member here lists exactly one strategy, the same one.
//! - it waits `session.timeout.ms - 1 s` (of the last member to join) for members to rejoin a
//!   rebalance instead of their rebalance timeout (`max.poll.interval.ms`), and it waits that
//!   long every time, even once every member has rejoined: every member polls every 100 ms
//!   and uses a 6 s session timeout (Kafka's minimum), so rejoining is never late and a
//!   rebalance takes about 5 s.
//! - it advertises JoinGroup v6, SyncGroup v4 and LeaveGroup v3+ but parses them with the
//!   older layouts (closing the connection on a flexible JoinGroup or SyncGroup); kafkit
//!   recognises the mock by its cluster id and stays at JoinGroup v5, SyncGroup v3 and
//!   LeaveGroup v2 there, as librdkafka does everywhere.
//! - it completes a generation as soon as the leader's SyncGroup has arrived and then drops
//!   the assignments: a follower whose SyncGroup arrives after the leader's gets
//!   INVALID_REQUEST (with a null assignment, which is malformed: the connection is closed)
//!   and rejoins, and each rejoin waits up to `session.timeout.ms - 1 s` again. Kafka hands a
//!   late follower its assignment. A librdkafka leader with its metadata cached sends its
//!   SyncGroup within a fraction of a millisecond of the JoinGroup responses, so a kafkit
//!   follower (in a debug build, on a loaded machine) can lose that race generation after
//!   generation (this failed CI once: kafkit-2 still joining after 60 s, its partition
//!   never assigned). A kafkit leader asks for metadata before it assigns, which gives the
//!   followers a round trip's head start: followers still lose now and then on a loaded
//!   machine, but rarely twice in a row. The mock (like Kafka) elects the first member that
//!   joined, so the mixed-group tests let the kafkit members form the group before an
//!   rdkafka member joins: a kafkit member leads every generation.
//! - its first rebalance of an empty group waits 3 s (`group.initial.rebalance.delay.ms`),
//!   and it returns no MEMBER_ID_REQUIRED (KIP-394): kafkit's first JoinGroup gets its member
//!   id at once. Against a real cluster the same tests run with both.
//!
//! Set `CONSUMER_RDKAFKA_DEBUG=cgrp` (any librdkafka `debug` value) for librdkafka's log.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use harness::{consumer_config, rdkafka_config, rdkafka_producer, rdkafka_send, record, Cluster};
use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::{ConsumerRecords, MemberState, OffsetAndMetadata, TopicPartition};
use kafkit_tests::cluster::unique_topic;

const PARTITIONS: i32 = 6;
/// How long a stable split must stay the same to count.
const STEADY: Duration = Duration::from_secs(3);
/// How long a group may take to become stable (the mock's first rebalance alone takes 3 s;
/// an eager rebalance after a leave or join waits for every member's next heartbeat).
const STABLE_WITHIN: Duration = Duration::from_secs(60);
const CONSUME_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const SESSION_TIMEOUT_MS: &str = "6000";
const HEARTBEAT_INTERVAL_MS: &str = "500";

/// What a member's thread publishes about it.
#[derive(Debug, Default, Clone)]
struct View {
    /// The partitions of the topic it owns now.
    assignment: BTreeSet<i32>,
    /// Whether it is a stable member (always true for rdkafka, which does not say).
    stable: bool,
    /// Every (partition, offset) it consumed.
    consumed: BTreeSet<(i32, i64)>,
    /// The first offset it consumed of each partition.
    first: BTreeMap<i32, i64>,
    errors: Vec<String>,
    /// The member's group state, as it names it.
    state: String,
}

type Committed = BTreeMap<i32, Option<i64>>;

enum Cmd {
    /// Commit the consumed positions (synchronously).
    Commit(Sender<Result<(), String>>),
    /// Commit these offsets (synchronously).
    CommitOffsets(BTreeMap<i32, i64>, Sender<Result<(), String>>),
    /// The group's committed offsets of these partitions.
    Committed(Vec<i32>, Sender<Result<Committed, String>>),
    /// Close gracefully (leave the group) and stop.
    Close(Sender<Result<(), String>>),
}

/// One group member, polled by a thread of its own.
struct Member {
    name: String,
    view: Arc<Mutex<View>>,
    cmds: Sender<Cmd>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    KafkitTokio,
    KafkitBlocking,
    Rdkafka,
}

/// What every member of one test shares.
struct Group {
    bootstrap: String,
    topic: String,
    group: String,
    strategy: &'static str,
}

impl Group {
    fn kafkit_config(&self, name: &str) -> ConsumerConfig {
        consumer_config(
            &self.bootstrap,
            &[
                ("client_id", name),
                ("group_id", &self.group),
                ("partition_assignment_strategy", self.strategy),
                ("enable_auto_commit", "false"),
                ("session_timeout_ms", SESSION_TIMEOUT_MS),
                ("heartbeat_interval_ms", HEARTBEAT_INTERVAL_MS),
            ],
        )
    }

    fn start(&self, kind: Kind, name: &str) -> Member {
        let view = Arc::new(Mutex::new(View::default()));
        let (tx, rx) = mpsc::channel();
        let v = view.clone();
        let topic = self.topic.clone();
        let thread = match kind {
            Kind::KafkitTokio => {
                let config = self.kafkit_config(name);
                std::thread::spawn(move || run_kafkit_tokio(config, topic, v, rx))
            }
            Kind::KafkitBlocking => {
                let config = self.kafkit_config(name);
                std::thread::spawn(move || run_kafkit_blocking(config, topic, v, rx))
            }
            Kind::Rdkafka => {
                let mut c = rdkafka_config(&self.bootstrap);
                c.set("client.id", name)
                    .set("group.id", &self.group)
                    .set("partition.assignment.strategy", self.strategy)
                    .set("enable.auto.commit", "false")
                    .set("auto.offset.reset", "earliest")
                    .set("session.timeout.ms", SESSION_TIMEOUT_MS)
                    .set("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS)
                    .set("fetch.wait.max.ms", "100");
                let consumer: BaseConsumer = c.create().expect("rdkafka consumer");
                std::thread::spawn(move || run_rdkafka(consumer, topic, v, rx))
            }
        };
        Member {
            name: format!("{name} ({kind:?})"),
            view,
            cmds: tx,
            thread: Some(thread),
        }
    }
}

impl Member {
    fn view(&self) -> View {
        self.view.lock().expect("view").clone()
    }

    fn ask<T>(&self, cmd: impl FnOnce(Sender<T>) -> Cmd) -> T {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .send(cmd(tx))
            .unwrap_or_else(|_| panic!("{}: its thread is gone", self.name));
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{}: no answer within 60 s", self.name))
    }

    fn commit(&self) {
        self.ask(Cmd::Commit)
            .unwrap_or_else(|e| panic!("{}: commit: {e}", self.name));
    }

    fn commit_offsets(&self, offsets: BTreeMap<i32, i64>) {
        self.ask(|tx| Cmd::CommitOffsets(offsets, tx))
            .unwrap_or_else(|e| panic!("{}: commit: {e}", self.name));
    }

    fn committed(&self, partitions: &[i32]) -> Committed {
        let parts = partitions.to_vec();
        self.ask(|tx| Cmd::Committed(parts, tx))
            .unwrap_or_else(|e| panic!("{}: committed: {e}", self.name))
    }

    /// Closes gracefully (LeaveGroup) and waits for the thread.
    fn close(mut self) -> View {
        self.ask(Cmd::Close)
            .unwrap_or_else(|e| panic!("{}: close: {e}", self.name));
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
        self.view()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (tx, _rx) = mpsc::channel();
            let _ = self.cmds.send(Cmd::Close(tx));
            let _ = t.join();
        }
    }
}

fn note(view: &Arc<Mutex<View>>, records: ConsumerRecords) {
    let mut v = view.lock().expect("view");
    for r in records.iter() {
        v.consumed.insert((r.partition, r.offset));
        v.first.entry(r.partition).or_insert(r.offset);
    }
}

fn tps(topic: &str, partitions: &[i32]) -> Vec<TopicPartition> {
    partitions
        .iter()
        .map(|&p| TopicPartition::new(topic, p))
        .collect()
}

fn kafkit_committed(
    topic: &str,
    got: BTreeMap<TopicPartition, Option<OffsetAndMetadata>>,
) -> Committed {
    got.into_iter()
        .filter(|(tp, _)| &*tp.topic == topic)
        .map(|(tp, o)| (tp.partition, o.map(|o| o.offset)))
        .collect()
}

fn kafkit_offsets(
    topic: &str,
    offsets: BTreeMap<i32, i64>,
) -> kafkit_core::consumer::group::Offsets {
    offsets
        .into_iter()
        .map(|(p, o)| (TopicPartition::new(topic, p), OffsetAndMetadata::new(o)))
        .collect()
}

fn run_kafkit_tokio(
    config: ConsumerConfig,
    topic: String,
    view: Arc<Mutex<View>>,
    cmds: Receiver<Cmd>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let h = kafkit_tokio::consumer(&config).expect("kafkit tokio consumer");
        h.subscribe([topic.clone()]).await.expect("subscribe");
        loop {
            match h.poll(POLL).await {
                Ok(records) => note(&view, records),
                Err(e) => view.lock().expect("view").errors.push(e.to_string()),
            }
            let assignment = h.assignment().await.expect("assignment");
            let state = h.group_state().await.expect("group state");
            let stable = state == Some(MemberState::Stable);
            {
                let mut v = view.lock().expect("view");
                v.state = format!("{state:?}");
                v.assignment = assignment.iter().map(|t| t.partition).collect();
                v.stable = stable;
            }
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    Cmd::Commit(tx) => {
                        let _ = tx.send(h.commit(None).await.map_err(|e| e.to_string()));
                    }
                    Cmd::CommitOffsets(o, tx) => {
                        let r = h.commit(Some(kafkit_offsets(&topic, o))).await;
                        let _ = tx.send(r.map_err(|e| e.to_string()));
                    }
                    Cmd::Committed(parts, tx) => {
                        let r = h.committed(tps(&topic, &parts)).await;
                        let _ = tx.send(
                            r.map(|c| kafkit_committed(&topic, c))
                                .map_err(|e| e.to_string()),
                        );
                    }
                    Cmd::Close(tx) => {
                        let _ = tx.send(h.close().await.map_err(|e| e.to_string()));
                        return;
                    }
                }
            }
        }
    });
}

fn run_kafkit_blocking(
    config: ConsumerConfig,
    topic: String,
    view: Arc<Mutex<View>>,
    cmds: Receiver<Cmd>,
) {
    let c = kafkit_blocking::Consumer::start(&config).expect("kafkit blocking consumer");
    c.subscribe([topic.clone()]).expect("subscribe");
    loop {
        match c.poll(POLL) {
            Ok(records) => note(&view, records),
            Err(e) => view.lock().expect("view").errors.push(e.to_string()),
        }
        let assignment = c.assignment().expect("assignment");
        let state = c.group_state().expect("group state");
        let stable = state == Some(MemberState::Stable);
        {
            let mut v = view.lock().expect("view");
            v.state = format!("{state:?}");
            v.assignment = assignment.iter().map(|t| t.partition).collect();
            v.stable = stable;
        }
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Commit(tx) => {
                    let _ = tx.send(c.commit(None).map_err(|e| e.to_string()));
                }
                Cmd::CommitOffsets(o, tx) => {
                    let r = c.commit(Some(kafkit_offsets(&topic, o)));
                    let _ = tx.send(r.map_err(|e| e.to_string()));
                }
                Cmd::Committed(parts, tx) => {
                    let r = c.committed(&tps(&topic, &parts));
                    let _ = tx.send(
                        r.map(|c| kafkit_committed(&topic, c))
                            .map_err(|e| e.to_string()),
                    );
                }
                Cmd::Close(tx) => {
                    let _ = tx.send(c.close().map_err(|e| e.to_string()));
                    return;
                }
            }
        }
    }
}

fn tpl(topic: &str, offsets: &BTreeMap<i32, i64>) -> TopicPartitionList {
    let mut l = TopicPartitionList::new();
    for (p, o) in offsets {
        l.add_partition_offset(topic, *p, Offset::Offset(*o))
            .expect("add partition");
    }
    l
}

fn run_rdkafka(consumer: BaseConsumer, topic: String, view: Arc<Mutex<View>>, cmds: Receiver<Cmd>) {
    consumer.subscribe(&[&topic]).expect("subscribe");
    loop {
        match consumer.poll(POLL) {
            Some(Ok(m)) => {
                let mut v = view.lock().expect("view");
                v.consumed.insert((m.partition(), m.offset()));
                v.first.entry(m.partition()).or_insert(m.offset());
            }
            Some(Err(e)) => view.lock().expect("view").errors.push(e.to_string()),
            None => {}
        }
        let assignment = consumer.assignment().expect("assignment");
        {
            let mut v = view.lock().expect("view");
            v.assignment = assignment
                .elements_for_topic(&topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            v.stable = true;
            v.state = "(rdkafka)".into();
        }
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Commit(tx) => {
                    let r = consumer.commit_consumer_state(CommitMode::Sync);
                    let _ = tx.send(r.map_err(|e| e.to_string()));
                }
                Cmd::CommitOffsets(o, tx) => {
                    let r = consumer.commit(&tpl(&topic, &o), CommitMode::Sync);
                    let _ = tx.send(r.map_err(|e| e.to_string()));
                }
                Cmd::Committed(parts, tx) => {
                    let query: BTreeMap<i32, i64> = parts.iter().map(|&p| (p, 0)).collect();
                    let mut q = TopicPartitionList::new();
                    for p in query.keys() {
                        q.add_partition(&topic, *p);
                    }
                    let r = consumer.committed_offsets(q, Duration::from_secs(20));
                    let _ = tx.send(
                        r.map(|l| {
                            l.elements_for_topic(&topic)
                                .iter()
                                .map(|e| {
                                    let o = match e.offset() {
                                        Offset::Offset(o) => Some(o),
                                        _ => None,
                                    };
                                    (e.partition(), o)
                                })
                                .collect()
                        })
                        .map_err(|e| e.to_string()),
                    );
                }
                Cmd::Close(tx) => {
                    // Dropping a subscribed BaseConsumer closes it: revoke, LeaveGroup, then
                    // it polls until librdkafka reports the consumer closed. On the mock
                    // cluster that last wait sometimes never ends (librdkafka's log shows the
                    // LeaveGroup answered and the group sub-system terminated, then nothing),
                    // so the drop runs on a thread of its own and the member counts as gone
                    // once it has left the group or after 10 s.
                    let (done_tx, done_rx) = mpsc::channel();
                    std::thread::spawn(move || {
                        drop(consumer);
                        let _ = done_tx.send(());
                    });
                    let _ = done_rx.recv_timeout(Duration::from_secs(10));
                    let _ = tx.send(Ok(()));
                    return;
                }
            }
        }
    }
}

/// A topic of [`PARTITIONS`] partitions and a group, both of this test only.
fn setup(cluster: &Cluster, scenario: &str, strategy: &'static str) -> Group {
    let topic = unique_topic("group", scenario);
    cluster.create_topic(&topic, PARTITIONS);
    Group {
        bootstrap: cluster.bootstrap(),
        group: format!("{topic}-group"),
        topic,
        strategy,
    }
}

/// Produces `n` records (spread over every partition) with librdkafka's producer; returns
/// their (partition, offset).
fn produce(group: &Group, from: usize, n: usize) -> Vec<(i32, i64)> {
    let producer = rdkafka_producer(&group.bootstrap, "none");
    let mut records: Vec<_> = (from..from + n)
        .map(|i| record(i, PARTITIONS, 1_700_000_000_000))
        .collect();
    rdkafka_send(&producer, &group.topic, &mut records);
    records.iter().map(|r| (r.partition, r.offset)).collect()
}

/// Waits for the stable point of `members` (see the module docs) and returns each member's
/// partitions; fails, showing every member's view, if it does not come.
fn stable_split(what: &str, members: &[&Member]) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + STABLE_WITHIN;
    let mut last: Option<(Vec<BTreeSet<i32>>, Instant)> = None;
    loop {
        let views: Vec<View> = members.iter().map(|m| m.view()).collect();
        let split: Vec<BTreeSet<i32>> = views.iter().map(|v| v.assignment.clone()).collect();
        let mut union = BTreeSet::new();
        let disjoint = split.iter().flatten().all(|p| union.insert(*p));
        let complete = union.len() == PARTITIONS as usize;
        let stable = views.iter().all(|v| v.stable);
        if disjoint && complete && stable {
            match &last {
                Some((s, since)) if *s == split => {
                    if since.elapsed() >= STEADY {
                        return split;
                    }
                }
                _ => last = Some((split, Instant::now())),
            }
        } else {
            last = None;
        }
        if Instant::now() > deadline {
            let described: Vec<String> = members
                .iter()
                .zip(&views)
                .map(|(m, v)| {
                    format!(
                        "{}: owns {:?} state {} errors {:?}",
                        m.name, v.assignment, v.state, v.errors
                    )
                })
                .collect();
            panic!(
                "{what}: no stable split without overlap and gap within {STABLE_WITHIN:?}:\n  {}",
                described.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks a stable split: no overlap, no gap (as waited for), balanced, nobody idle.
fn check_split(what: &str, members: &[&Member], split: &[BTreeSet<i32>]) {
    let all: BTreeSet<i32> = split.iter().flatten().copied().collect();
    assert_eq!(all, (0..PARTITIONS).collect(), "{what}: no gap");
    assert_eq!(
        split.iter().map(|s| s.len()).sum::<usize>(),
        PARTITIONS as usize,
        "{what}: no overlap"
    );
    let sizes: Vec<usize> = split.iter().map(|s| s.len()).collect();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert!(
        max - min <= 1 && *min > 0,
        "{what}: unbalanced split {split:?} over {names:?}"
    );
    eprintln!("{what}: {:?}", names.iter().zip(split).collect::<Vec<_>>());
}

/// Waits until every record in `produced` was consumed by some member (of `members` or the
/// views of members gone).
fn all_consumed(what: &str, members: &[&Member], gone: &[View], produced: &[(i32, i64)]) {
    let deadline = Instant::now() + CONSUME_WITHIN;
    loop {
        let mut got: BTreeSet<(i32, i64)> = gone.iter().flat_map(|v| v.consumed.clone()).collect();
        for m in members {
            got.extend(m.view().consumed);
        }
        let missing: Vec<_> = produced.iter().filter(|r| !got.contains(r)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {} records never consumed, e.g. {:?}",
            missing.len(),
            produced.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two kafkit members and an rdkafka member split the partitions; the first kafkit member
/// leaves and the others take its partitions; a second rdkafka member joins.
fn mixed_group_splits_and_survives_leave_and_join(
    scenario: &str,
    strategy: &'static str,
    second: Kind,
) {
    let cluster = Cluster::new();
    let g = setup(&cluster, scenario, strategy);
    let mut produced = produce(&g, 0, 60);

    // The kafkit members form the group first, so one of them leads it from then on (see the
    // module docs: on the mock a librdkafka leader can starve its followers).
    let k1 = g.start(Kind::KafkitTokio, "kafkit-1");
    let k2 = g.start(second, "kafkit-2");
    let what = format!("{scenario} ({}): 2 kafkit", cluster.kind());
    let split = stable_split(&what, &[&k1, &k2]);
    check_split(&what, &[&k1, &k2], &split);

    let r1 = g.start(Kind::Rdkafka, "rdkafka-1");
    let what = format!("{scenario} ({}): 2 kafkit + 1 rdkafka", cluster.kind());
    let split = stable_split(&what, &[&k1, &k2, &r1]);
    check_split(&what, &[&k1, &k2, &r1], &split);
    produced.extend(produce(&g, 60, 60));
    all_consumed(&what, &[&k1, &k2, &r1], &[], &produced);

    // A kafkit member leaves: the others, rdkafka among them, take its partitions.
    let leaver = split[0].clone();
    let gone = k1.close();
    let what = format!("{scenario} ({}): after kafkit-1 left", cluster.kind());
    let split = stable_split(&what, &[&k2, &r1]);
    check_split(&what, &[&k2, &r1], &split);
    assert!(
        leaver
            .iter()
            .all(|p| split[0].contains(p) || split[1].contains(p)),
        "{what}: the leaver's partitions {leaver:?} were taken over: {split:?}"
    );
    produced.extend(produce(&g, 120, 60));
    all_consumed(&what, &[&k2, &r1], std::slice::from_ref(&gone), &produced);

    // An rdkafka member joins: the partitions are redistributed over three.
    let r2 = g.start(Kind::Rdkafka, "rdkafka-2");
    let what = format!("{scenario} ({}): after rdkafka-2 joined", cluster.kind());
    let split = stable_split(&what, &[&k2, &r1, &r2]);
    check_split(&what, &[&k2, &r1, &r2], &split);
    produced.extend(produce(&g, 180, 60));
    all_consumed(
        &what,
        &[&k2, &r1, &r2],
        std::slice::from_ref(&gone),
        &produced,
    );

    for m in [&k2, &r1, &r2] {
        let v = m.view();
        assert!(
            v.errors.is_empty(),
            "{what}: {} saw errors {:?}",
            m.name,
            v.errors
        );
    }
}

#[test]
fn range_group_of_kafkit_and_rdkafka_members() {
    mixed_group_splits_and_survives_leave_and_join("range", "range", Kind::KafkitTokio);
}

#[test]
fn roundrobin_group_of_kafkit_and_rdkafka_members_with_the_blocking_driver() {
    mixed_group_splits_and_survives_leave_and_join(
        "roundrobin",
        "roundrobin",
        Kind::KafkitBlocking,
    );
}

#[test]
fn cooperative_sticky_group_of_kafkit_and_rdkafka_members() {
    mixed_group_splits_and_survives_leave_and_join("coop", "cooperative-sticky", Kind::KafkitTokio);
}

/// Offsets one client kind commits are the group's offsets for the other: read back with the
/// other's committed(), and used as the start by a member that takes over the partitions.
#[test]
fn committed_offsets_cross_between_kafkit_and_rdkafka() {
    let cluster = Cluster::new();
    let g = setup(&cluster, "offsets", "range");
    let produced = produce(&g, 0, 120);
    let ends: BTreeMap<i32, i64> = produced.iter().fold(BTreeMap::new(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
        m
    });
    let all: Vec<i32> = (0..PARTITIONS).collect();

    let k = g.start(Kind::KafkitTokio, "kafkit");
    let r = g.start(Kind::Rdkafka, "rdkafka");
    let what = format!("offsets ({})", cluster.kind());
    let split = stable_split(&what, &[&k, &r]);
    check_split(&what, &[&k, &r], &split);
    let (mine_k, mine_r) = (split[0].clone(), split[1].clone());

    // Each commits explicit offsets of its own partitions (the middle of each); the other
    // reads them.
    let half = |parts: &BTreeSet<i32>| -> BTreeMap<i32, i64> {
        parts.iter().map(|p| (*p, ends[p] / 2)).collect()
    };
    k.commit_offsets(half(&mine_k));
    r.commit_offsets(half(&mine_r));
    let by_k = k.committed(&all);
    let by_r = r.committed(&all);
    for p in &all {
        let expected = Some(ends[p] / 2);
        assert_eq!(
            by_r.get(p).copied().flatten(),
            expected,
            "{what}: rdkafka reads partition {p}"
        );
        assert_eq!(
            by_k.get(p).copied().flatten(),
            expected,
            "{what}: kafkit reads partition {p}"
        );
    }

    // Both consume everything, then commit their consumed positions (the ends).
    all_consumed(&what, &[&k, &r], &[], &produced);
    k.commit();
    r.commit();
    let by_r = r.committed(&all);
    let by_k = k.committed(&all);
    for p in &all {
        assert_eq!(
            by_r.get(p).copied().flatten(),
            Some(ends[p]),
            "{what}: rdkafka reads kafkit's"
        );
        assert_eq!(
            by_k.get(p).copied().flatten(),
            Some(ends[p]),
            "{what}: kafkit reads rdkafka's"
        );
    }

    // kafkit leaves; rdkafka takes its partitions and starts exactly at kafkit's commits.
    let before = r.view().consumed;
    let more = produce(&g, 120, 60);
    let _ = k.close();
    let split = stable_split(&format!("{what}: kafkit left"), &[&r]);
    assert_eq!(split[0], all.iter().copied().collect());
    all_consumed(&format!("{what}: kafkit left"), &[&r], &[], &more);
    let after: BTreeSet<(i32, i64)> = &r.view().consumed - &before;
    for p in &mine_k {
        let first = after.iter().filter(|(q, _)| q == p).map(|(_, o)| *o).min();
        assert_eq!(
            first,
            Some(ends[p]),
            "{what}: rdkafka took partition {p} over at kafkit's commit"
        );
    }
    // The other way round: rdkafka commits everything and leaves; a new kafkit member starts
    // exactly at rdkafka's commits.
    r.commit();
    let ends2: BTreeMap<i32, i64> = more.iter().fold(ends.clone(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
        m
    });
    let _ = r.close();
    let last = produce(&g, 180, 60);
    let k2 = g.start(Kind::KafkitTokio, "kafkit-2");
    let split = stable_split(&format!("{what}: rdkafka left"), &[&k2]);
    assert_eq!(split[0], all.iter().copied().collect());
    all_consumed(&format!("{what}: rdkafka left"), &[&k2], &[], &last);
    let v = k2.view();
    for p in &all {
        if last.iter().any(|(q, _)| q == p) {
            assert_eq!(
                v.first.get(p).copied(),
                Some(ends2[p]),
                "{what}: kafkit started partition {p} at rdkafka's commit"
            );
        }
    }
    let by_k = k2.committed(&all);
    for p in &all {
        assert_eq!(
            by_k.get(p).copied().flatten(),
            Some(ends2[p]),
            "{what}: partition {p}"
        );
    }
}

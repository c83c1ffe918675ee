//! Consumer groups against the simulated cluster: several `ConsumerCore`s in one
//! `Simulation`, each polled by the test as an application would (take_records is the poll),
//! with listener callbacks run by the test (`pending_rebalance` / `complete_rebalance`).
//!
//! Data is produced straight into the cluster model on connections of the test's own.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::config::{AssignmentStrategy, AutoOffsetReset, ConsumerConfig};
use kafkit_core::consumer::group::Offsets;
use kafkit_core::consumer::{
    ConsumerCore, ConsumerEvent, ConsumerRecord, MemberState, OffsetAndMetadata, OpId,
    RebalanceKind, RebalanceOutcome, TopicPartition,
};
use kafkit_core::network::NetOptions;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, CreateTopicsRequest, Message, ProduceRequest,
    RequestBody, RequestHeader,
};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, LinkConfig, Simulation};

const TOPIC: &str = "events";
const GROUP: &str = "g";

fn frame(body: &RequestBody, version: i16) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test-producer".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

/// What the test's "application" does with each client.
#[derive(Default)]
struct App {
    /// Whether the application polls this client (a stalled one does not).
    polling: bool,
    records: Vec<ConsumerRecord>,
    calls: Vec<(RebalanceKind, BTreeSet<TopicPartition>)>,
    /// Commit the consumed positions inside on_partitions_revoked.
    commit_on_revoke: bool,
    events: Vec<ConsumerEvent>,
    errors: Vec<String>,
}

struct Harness {
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    apps: Vec<App>,
    next_conn: u64,
    produced: BTreeMap<i32, i64>,
    partitions: i32,
}

fn consumer_config(tweak: &dyn Fn(&mut ConsumerConfig)) -> ConsumerConfig {
    let mut cc = ConsumerConfig::default();
    cc.group_id = Some(GROUP.into());
    cc.auto_offset_reset = AutoOffsetReset::Earliest;
    cc.fetch_max_wait_ms = 100;
    cc.common.retry_backoff_ms = 50;
    cc.session_timeout_ms = 10_000;
    cc.heartbeat_interval_ms = 1_000;
    cc.max_poll_interval_ms = 20_000;
    cc.enable_auto_commit = false;
    cc.partition_assignment_strategy = vec![AssignmentStrategy::Range];
    tweak(&mut cc);
    cc
}

fn core(index: usize, cc: ConsumerConfig) -> ConsumerCore {
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.seed = 11 + index as u64;
    opts.retry_backoff = Duration::from_millis(50);
    let mut c = ConsumerCore::new(cc, opts);
    c.set_rebalance_callbacks(true);
    c
}

impl Harness {
    fn new(
        brokers: usize,
        partitions: i32,
        clients: usize,
        tweak: impl Fn(&mut ConsumerConfig),
    ) -> Self {
        let start = Instant::now();
        let config = ClusterConfig {
            brokers,
            replication_factor: brokers as i16,
            seed: 3,
            group_initial_rebalance_delay_ms: 300,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let sim = Simulation::new(core(0, consumer_config(&tweak)), 7, start)
            .with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            })
            .with_max_steps(5_000_000);
        let mut h = Harness {
            sim,
            cluster,
            apps: vec![App::default()],
            next_conn: 0,
            produced: BTreeMap::new(),
            partitions,
        };
        for i in 1..clients {
            h.sim.add_client(core(i, consumer_config(&tweak)));
            h.apps.push(App::default());
        }
        serve_cluster(&mut h.sim, &h.cluster);
        h.call(
            0,
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: TOPIC.into(),
                    num_partitions: partitions,
                    replication_factor: brokers as i16,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            5,
        );
        h
    }

    fn add_client(&mut self, tweak: impl Fn(&mut ConsumerConfig)) -> usize {
        let i = self
            .sim
            .add_client(core(self.apps.len(), consumer_config(&tweak)));
        self.apps.push(App::default());
        i
    }

    fn call<R: kafkit_core::protocol::Request>(
        &mut self,
        broker: i32,
        body: R,
        version: i16,
    ) -> R::Response {
        let body: RequestBody = body.into();
        self.next_conn += 1;
        let conn = u64::MAX - self.next_conn;
        let api = R::API_KEY;
        let now = self.sim.now();
        let mut c = self.cluster.borrow_mut();
        assert!(c.connection_opened(broker, conn, "/test-producer"));
        let reply = c.handle_frame(broker, conn, frame(&body, version), now);
        c.connection_closed(broker, conn);
        assert_eq!(reply.frames.len(), 1, "{api:?} answered at once");
        decode_response_frame(api, version, reply.frames[0].slice(4..))
            .unwrap()
            .1
            .into_response::<R>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Produces `n` records to every partition.
    fn produce_all(&mut self, n: usize) {
        for p in 0..self.partitions {
            let leader = self.cluster.borrow().partition(TOPIC, p).unwrap().leader;
            let mut b = RecordBatchBuilder::new(Compression::None);
            for i in 0..n {
                b.append(1_000 + i as i64, None, Some(b"v"), &[]).unwrap();
            }
            let body = ProduceRequest {
                acks: -1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: TOPIC.into(),
                    partition_data: vec![PartitionProduceData {
                        index: p,
                        records: Some(b.finish().unwrap()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r = self.call(leader, body, 8);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
            *self.produced.entry(p).or_default() += n as i64;
        }
    }

    fn subscribe(&mut self, i: usize) {
        let now = self.sim.now();
        self.sim.client(i).subscribe([TOPIC], now).unwrap();
        self.apps[i].polling = true;
    }

    /// One round of every polling application: run a pending listener callback, else poll.
    fn apps_step(&mut self) {
        let now = self.sim.now();
        for i in 0..self.apps.len() {
            let events = self.sim.take_client_events(i);
            self.apps[i].events.extend(events);
            if !self.apps[i].polling || self.sim.client(i).is_closed() {
                continue;
            }
            let core = self.sim.client(i);
            if let Some(call) = core.pending_rebalance().cloned() {
                let mut outcome = RebalanceOutcome::default();
                if call.kind == RebalanceKind::Revoked && self.apps[i].commit_on_revoke {
                    outcome.commit = call
                        .positions
                        .iter()
                        .filter(|(tp, _)| call.partitions.contains(*tp))
                        .map(|(tp, o)| (tp.clone(), o.clone()))
                        .collect();
                }
                self.apps[i]
                    .calls
                    .push((call.kind, call.partitions.clone()));
                core.complete_rebalance(call.seq, outcome, now);
                continue;
            }
            loop {
                match self.sim.client(i).take_records(500, now) {
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => self.apps[i].records.extend(r),
                    Err(e) => {
                        self.apps[i].errors.push(e.to_string());
                        break;
                    }
                }
            }
        }
    }

    /// Steps the simulation, with the applications polling, until `done` holds; fails after
    /// `within` of virtual time.
    fn run_until(
        &mut self,
        within: Duration,
        what: &str,
        mut done: impl FnMut(&mut Harness) -> bool,
    ) {
        let deadline = self.sim.now() + within;
        loop {
            self.sim.drain();
            self.apps_step();
            self.sim.drain();
            if done(self) {
                return;
            }
            assert!(
                self.sim.now() <= deadline,
                "{what}: not done within {within:?}; states {:?}",
                self.describe()
            );
            assert!(self.sim.step(), "{what}: nothing left to happen");
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.sim.now() + d;
        self.run_until(d + Duration::from_secs(1), "run_for", |h| {
            h.sim.now() >= until
        });
    }

    fn describe(&mut self) -> Vec<(Option<MemberState>, i32, usize)> {
        (0..self.apps.len())
            .map(|i| {
                let c = self.sim.client(i);
                (
                    c.group_state(),
                    c.group_metadata().map_or(-1, |m| m.generation_id),
                    c.assignment().len(),
                )
            })
            .collect()
    }

    /// Whether every client in `members` is stable in one generation, their assignments are
    /// disjoint and cover every partition, and each has its positions.
    fn balanced(&mut self, members: &[usize]) -> bool {
        let mut all = BTreeSet::new();
        let mut gens = BTreeSet::new();
        for &i in members {
            let c = self.sim.client(i);
            if c.group_state() != Some(MemberState::Stable) || c.pending_rebalance().is_some() {
                return false;
            }
            gens.insert(c.group_metadata().unwrap().generation_id);
            for tp in c.assignment() {
                if !all.insert(tp) {
                    return false;
                }
            }
        }
        let snapshot = self.cluster.borrow().groups().group(GROUP);
        let members_in_group = snapshot.map_or(0, |g| g.members.len());
        gens.len() == 1
            && all.len() == self.partitions as usize
            && members_in_group == members.len()
    }

    fn assignment(&mut self, i: usize) -> BTreeSet<TopicPartition> {
        self.sim.client(i).assignment()
    }

    fn generation(&mut self, i: usize) -> i32 {
        self.sim.client(i).group_metadata().unwrap().generation_id
    }

    fn consumed(&self) -> usize {
        self.apps.iter().map(|a| a.records.len()).sum()
    }

    fn committed_in_cluster(&self, p: i32) -> Option<i64> {
        self.cluster
            .borrow()
            .groups()
            .committed_offset(GROUP, TOPIC, p)
            .map(|c| c.offset)
    }
}

/// No (partition, offset) was handed out twice, across every client.
fn assert_no_duplicates(h: &Harness) {
    let mut seen = BTreeSet::new();
    for a in &h.apps {
        for r in &a.records {
            assert!(
                seen.insert((r.partition, r.offset)),
                "partition {} offset {} consumed twice",
                r.partition,
                r.offset
            );
        }
    }
}

const LONG: Duration = Duration::from_secs(120);

#[test]
fn three_members_split_the_partitions_without_overlap_and_read_everything_once() {
    let mut h = Harness::new(3, 6, 3, |_| {});
    h.produce_all(20);
    for i in 0..3 {
        h.subscribe(i);
    }
    h.run_until(LONG, "three members balanced", |h| h.balanced(&[0, 1, 2]));
    for i in 0..3 {
        assert_eq!(h.assignment(i).len(), 2, "range gives each member two");
    }
    let leaders = (0..3)
        .filter(|&i| h.sim.client(i).is_group_leader())
        .count();
    assert_eq!(leaders, 1, "one leader");
    h.run_until(LONG, "everything consumed", |h| h.consumed() == 120);
    assert_no_duplicates(&h);
    // Each member got exactly the records of its own partitions.
    for i in 0..3 {
        let mine = h.assignment(i);
        assert!(h.apps[i]
            .records
            .iter()
            .all(|r| mine.contains(&tp(r.partition))));
        let assigned: Vec<_> = h.apps[i]
            .calls
            .iter()
            .filter(|(k, _)| *k == RebalanceKind::Assigned)
            .collect();
        assert!(!assigned.is_empty(), "on_partitions_assigned ran");
    }
}

#[test]
fn a_member_that_leaves_hands_its_partitions_to_the_others() {
    let mut h = Harness::new(1, 6, 3, |_| {});
    for i in 0..3 {
        h.subscribe(i);
    }
    h.run_until(LONG, "three balanced", |h| h.balanced(&[0, 1, 2]));
    let gen = h.generation(0);
    let now = h.sim.now();
    h.sim.client(2).close(Duration::from_secs(30), now);
    h.run_until(LONG, "two balanced after a leave", |h| {
        h.sim.client(2).is_closed() && h.balanced(&[0, 1])
    });
    assert!(h.generation(0) > gen);
    assert_eq!(h.assignment(0).len() + h.assignment(1).len(), 6);
    // The leaving member revoked its partitions before leaving.
    let revoked: Vec<_> = h.apps[2]
        .calls
        .iter()
        .filter(|(k, _)| *k == RebalanceKind::Revoked)
        .collect();
    assert_eq!(revoked.last().unwrap().1.len(), 2);
    // Fast: LeaveGroup, not the session timeout (10 s).
    let took = h.sim.now() - now;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_member_that_stops_polling_is_replaced_and_rejoins_on_its_next_poll() {
    let mut h = Harness::new(1, 4, 2, |_| {});
    h.produce_all(5);
    h.subscribe(0);
    h.subscribe(1);
    h.run_until(LONG, "two balanced", |h| h.balanced(&[0, 1]));
    h.run_until(LONG, "all consumed", |h| h.consumed() == 20);
    let stalled_at = h.sim.now();
    h.apps[1].polling = false;
    h.run_until(LONG, "member 0 takes everything", |h| h.balanced(&[0]));
    let waited = h.sim.now() - stalled_at;
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(30),
        "left after max_poll_interval_ms, not the session timeout: {waited:?}"
    );
    assert_eq!(h.sim.client(1).group_state(), Some(MemberState::Unjoined));
    // More data while member 1 is out: member 0 reads it all.
    h.produce_all(5);
    // (Without commits, member 0 starts member 1's old partitions from the reset policy.)
    h.run_until(LONG, "member 0 reads the new data", |h| all_consumed(h));
    h.apps[1].polling = true;
    h.run_until(LONG, "member 1 rejoins", |h| h.balanced(&[0, 1]));
    let lost: Vec<_> = h.apps[1]
        .calls
        .iter()
        .filter(|(k, _)| *k == RebalanceKind::Lost)
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "the stalled member lost its partitions: {:?}",
        h.apps[1].calls
    );
    assert!(h.apps.iter().all(|a| a.errors.is_empty()));
}

#[test]
fn the_group_survives_its_coordinator_crashing() {
    let mut h = Harness::new(3, 6, 2, |_| {});
    h.produce_all(10);
    h.subscribe(0);
    h.subscribe(1);
    h.run_until(LONG, "two balanced", |h| h.balanced(&[0, 1]));
    h.run_until(LONG, "consumed", |h| h.consumed() == 60);
    let coordinator = h.cluster.borrow().coordinator_for(GROUP);
    let now = h.sim.now();
    h.cluster.borrow_mut().crash_broker(coordinator, now);
    let moved_to = h.cluster.borrow().coordinator_for(GROUP);
    assert_ne!(moved_to, coordinator);
    h.produce_all(10);
    h.run_until(LONG, "consumed after the crash", |h| h.consumed() == 120);
    // Heartbeats reach the new coordinator: the group stays healthy for a while.
    h.run_for(Duration::from_secs(30));
    assert!(h.balanced(&[0, 1]), "{:?}", h.describe());
    assert!(h.apps.iter().all(|a| a.errors.is_empty()));
    // Commits go to the new coordinator.
    let now = h.sim.now();
    let id = OpId(1);
    h.sim
        .client(0)
        .commit_sync(id, None, Duration::from_secs(10), now);
    h.run_until(LONG, "commit", |h| {
        h.apps[0].events.iter().any(
            |e| matches!(e, ConsumerEvent::Commit { op, result: Ok(()), .. } if *op == Some(id)),
        )
    });
    let mine = h.assignment(0);
    for t in mine {
        assert_eq!(h.committed_in_cluster(t.partition), Some(20));
    }
    assert_no_duplicates(&h);
}

#[test]
fn a_static_member_restarting_within_the_session_timeout_causes_no_rebalance() {
    let statik = |i: usize| {
        move |c: &mut ConsumerConfig| c.group_instance_id = Some(format!("instance-{i}"))
    };
    let mut h = Harness::new(1, 4, 1, statik(0));
    h.add_client(statik(1));
    h.subscribe(0);
    h.subscribe(1);
    h.run_until(LONG, "two static members balanced", |h| h.balanced(&[0, 1]));
    let gen = h.generation(0);
    let before = h.assignment(1);
    // "Restart" member 1: it closes (static: no LeaveGroup) and a new process with the same
    // instance id joins.
    let now = h.sim.now();
    h.sim.client(1).close(Duration::from_secs(5), now);
    h.run_until(LONG, "closed", |h| h.sim.client(1).is_closed());
    assert_eq!(
        h.cluster
            .borrow()
            .groups()
            .group(GROUP)
            .unwrap()
            .members
            .len(),
        2,
        "a static member does not leave"
    );
    h.run_for(Duration::from_secs(3));
    let j = h.add_client(statik(1));
    h.subscribe(j);
    h.run_until(LONG, "restarted member assigned", |h| {
        h.sim.client(j).group_state() == Some(MemberState::Stable)
            && !h.sim.client(j).assignment().is_empty()
    });
    assert_eq!(h.generation(j), gen, "same generation: no rebalance");
    assert_eq!(h.generation(0), gen);
    assert_eq!(h.assignment(j), before, "the same partitions back");
    h.run_for(Duration::from_secs(15));
    assert_eq!(h.generation(0), gen, "still no rebalance");
    let revoked_0 = h.apps[0]
        .calls
        .iter()
        .filter(|(k, _)| *k != RebalanceKind::Assigned)
        .count();
    assert_eq!(revoked_0, 0, "member 0 never lost or revoked anything");
}

#[test]
fn cooperative_sticky_revokes_only_the_partitions_that_move() {
    let coop = |c: &mut ConsumerConfig| {
        c.partition_assignment_strategy = vec![AssignmentStrategy::CooperativeSticky]
    };
    let mut h = Harness::new(1, 6, 2, coop);
    h.produce_all(10);
    h.subscribe(0);
    h.subscribe(1);
    h.run_until(LONG, "two balanced", |h| h.balanced(&[0, 1]));
    h.run_until(LONG, "consumed", |h| h.consumed() == 60);
    let before: Vec<BTreeSet<TopicPartition>> = (0..2).map(|i| h.assignment(i)).collect();
    let calls_before: Vec<usize> = h.apps.iter().map(|a| a.calls.len()).collect();
    let j = h.add_client(coop);
    h.subscribe(j);
    h.run_until(LONG, "three balanced", |h| h.balanced(&[0, 1, j]));
    for i in 0..2 {
        let after = h.assignment(i);
        assert!(
            after.is_subset(&before[i]),
            "old members only give partitions up"
        );
        let revoked: BTreeSet<TopicPartition> = h.apps[i].calls[calls_before[i]..]
            .iter()
            .filter(|(k, _)| *k == RebalanceKind::Revoked)
            .flat_map(|(_, p)| p.iter().cloned())
            .collect();
        let moved: BTreeSet<TopicPartition> = before[i].difference(&after).cloned().collect();
        assert_eq!(
            revoked, moved,
            "member {i}: only the moved partitions were revoked"
        );
        assert!(
            h.apps[i].calls[calls_before[i]..]
                .iter()
                .all(|(k, _)| *k != RebalanceKind::Lost),
            "nothing lost"
        );
    }
    assert_eq!(h.assignment(j).len(), 2);
    // Kept partitions never stopped: no duplicate records, and new data flows to all.
    h.produce_all(10);
    h.run_until(LONG, "new data consumed", |h| all_consumed(h));
}

/// Whether every produced record was consumed by some member.
fn all_consumed(h: &Harness) -> bool {
    let got: BTreeSet<(i32, i64)> = h
        .apps
        .iter()
        .flat_map(|a| a.records.iter().map(|r| (r.partition, r.offset)))
        .collect();
    h.produced
        .iter()
        .all(|(p, n)| (0..*n).all(|o| got.contains(&(*p, o))))
}

#[test]
fn commits_and_committed_offsets_round_trip_through_the_coordinator() {
    let mut h = Harness::new(1, 2, 1, |_| {});
    h.produce_all(10);
    h.subscribe(0);
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    h.run_until(LONG, "consumed", |h| h.consumed() == 20);
    let now = h.sim.now();
    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [
        (tp(0), OffsetAndMetadata::new(7).with_metadata("seven")),
        (tp(1), OffsetAndMetadata::new(3)),
    ]
    .into_iter()
    .collect();
    let id = OpId(1);
    h.sim
        .client(0)
        .commit_sync(id, Some(offsets.clone()), Duration::from_secs(10), now);
    h.run_until(LONG, "commit done", |h| {
        h.apps[0]
            .events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Commit { op, .. } if *op == Some(id)))
    });
    let result = h.apps[0].events.iter().find_map(|e| match e {
        ConsumerEvent::Commit {
            op,
            result,
            offsets: o,
        } if *op == Some(id) => Some((result.clone(), o.clone())),
        _ => None,
    });
    assert_eq!(result, Some((Ok(()), offsets.clone())));
    assert_eq!(h.committed_in_cluster(0), Some(7));
    let now = h.sim.now();
    // Ops are the application's: the same one again comes back again.
    let q = id;
    h.sim.client(0).committed(
        q,
        [tp(0), tp(1), TopicPartition::new("other", 0)].into(),
        Duration::from_secs(10),
        now,
    );
    h.run_until(LONG, "committed answered", |h| {
        h.apps[0]
            .events
            .iter()
            .any(|e| matches!(e, ConsumerEvent::Committed { op, .. } if *op == q))
    });
    let got = h.apps[0]
        .events
        .iter()
        .find_map(|e| match e {
            ConsumerEvent::Committed { op, result } if *op == q => Some(result.clone()),
            _ => None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(got[&tp(0)].as_ref().unwrap().metadata, "seven");
    assert_eq!(got[&tp(0)].as_ref().unwrap().offset, 7);
    assert_eq!(got[&tp(1)].as_ref().unwrap().offset, 3);
    assert_eq!(got[&TopicPartition::new("other", 0)], None);

    // An async commit of the consumed positions; a second member then starts from them.
    let now = h.sim.now();
    let a = OpId(2);
    h.sim.client(0).commit_async(a, None, now);
    h.run_until(LONG, "async commit", |h| {
        h.apps[0].events.iter().any(
            |e| matches!(e, ConsumerEvent::Commit { op, result: Ok(()), .. } if *op == Some(a)),
        )
    });
    assert_eq!(h.committed_in_cluster(0), Some(10));
    assert_eq!(h.committed_in_cluster(1), Some(10));
}

#[test]
fn new_members_start_from_committed_offsets_and_auto_commit_runs_on_close() {
    let auto = |c: &mut ConsumerConfig| {
        c.enable_auto_commit = true;
        c.auto_commit_interval_ms = 600_000; // only the commit on close counts here
    };
    let mut h = Harness::new(1, 3, 1, auto);
    h.produce_all(10);
    h.subscribe(0);
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    h.run_until(LONG, "consumed", |h| h.consumed() == 30);
    assert_eq!(h.committed_in_cluster(0), None, "no periodic commit yet");
    let now = h.sim.now();
    h.sim.client(0).close(Duration::from_secs(10), now);
    h.run_until(LONG, "closed", |h| h.sim.client(0).is_closed());
    for p in 0..3 {
        assert_eq!(h.committed_in_cluster(p), Some(10), "auto-commit on close");
    }
    // The core reports its own commit without an op, then Closed, once.
    h.apps_step();
    let events = &h.apps[0].events;
    let own: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ConsumerEvent::Commit {
                op: None,
                offsets,
                result: Ok(()),
            } => Some(offsets.len()),
            _ => None,
        })
        .collect();
    assert_eq!(own, vec![3], "one auto-commit of the three partitions");
    let closed = events
        .iter()
        .filter(|e| matches!(e, ConsumerEvent::Closed))
        .count();
    assert_eq!(closed, 1, "Closed once");
    assert!(matches!(events.last(), Some(ConsumerEvent::Closed)));
    assert!(
        h.cluster
            .borrow()
            .groups()
            .group(GROUP)
            .unwrap()
            .members
            .is_empty(),
        "left the group"
    );
    // A new member resumes at the committed offsets: nothing is read twice.
    h.produce_all(5);
    let j = h.add_client(auto);
    h.subscribe(j);
    h.run_until(LONG, "new member reads the rest", |h| h.consumed() == 45);
    assert_no_duplicates(&h);
    assert!(h.apps[j].records.iter().all(|r| r.offset >= 10));
}

#[test]
fn a_commit_inside_on_partitions_revoked_lands_before_the_partitions_move() {
    let mut h = Harness::new(1, 4, 1, |_| {});
    h.apps[0].commit_on_revoke = true;
    h.produce_all(10);
    h.subscribe(0);
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    h.run_until(LONG, "consumed", |h| h.consumed() == 40);
    assert_eq!(h.committed_in_cluster(0), None);
    // A second member: eager rebalance, member 0 revokes everything and commits in the
    // callback; member 1 starts from those commits.
    let j = h.add_client(|_| {});
    h.subscribe(j);
    h.run_until(LONG, "two balanced", |h| h.balanced(&[0, j]));
    for p in 0..4 {
        assert_eq!(
            h.committed_in_cluster(p),
            Some(10),
            "committed in the callback"
        );
    }
    let revoked = h.apps[0]
        .calls
        .iter()
        .filter(|(k, p)| *k == RebalanceKind::Revoked && p.len() == 4)
        .count();
    assert_eq!(
        revoked, 1,
        "eager: everything revoked once: {:?}",
        h.apps[0].calls
    );
    h.produce_all(5);
    h.run_until(LONG, "new data", |h| h.consumed() == 60);
    assert_no_duplicates(&h);
    assert!(h.apps[j].records.iter().all(|r| r.offset >= 10));
}

#[test]
fn pattern_subscriptions_pick_up_new_topics() {
    let mut h = Harness::new(1, 2, 1, |c| c.common.metadata_max_age_ms = 5_000);
    let now = h.sim.now();
    h.sim.client(0).subscribe_pattern("ev.*", now).unwrap();
    h.apps[0].polling = true;
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    assert_eq!(h.sim.client(0).subscription(), [TOPIC.to_string()].into());
    h.call(
        0,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "evolved".into(),
                num_partitions: 3,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        },
        5,
    );
    h.run_until(LONG, "new topic assigned", |h| {
        h.sim.client(0).assignment().len() == 5
    });
    assert!(h.sim.client(0).subscription().contains("evolved"));
}

/// B2 of notes/group-bugs.md, the simple case: the only member (eager, commits in
/// on_partitions_revoked) is reading with records buffered when a second member joins. Once
/// its revocation callback ran, no poll returns records of the revoked partitions and its
/// assignment is empty until the new generation; the listener's commit is the last one of
/// the old generation and the new owners start from it.
#[test]
fn after_on_partitions_revoked_the_partitions_yield_nothing_until_the_next_generation() {
    let mut h = Harness::new(1, 4, 1, |_| {});
    h.produce_all(2_000);
    h.subscribe(0);
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    let old = h.generation(0);
    // From here the test polls member 0 itself, a few records at a time, so that it always
    // has data buffered.
    h.apps[0].polling = false;
    let j = h.add_client(|_| {});
    h.subscribe(j);
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    let mut revoked: Option<Offsets> = None;
    let deadline = h.sim.now() + LONG;
    loop {
        h.sim.drain();
        h.apps_step();
        let now = h.sim.now();
        let c = h.sim.client(0);
        if let Some(call) = c.pending_rebalance().cloned() {
            let mut outcome = RebalanceOutcome::default();
            if call.kind == RebalanceKind::Revoked {
                assert_eq!(call.group.generation_id, old);
                assert_eq!(call.partitions.len(), 4, "eager: everything");
                for (tp, o) in &call.positions {
                    assert_eq!(Some(&o.offset), read.get(&tp.partition), "{tp}");
                }
                outcome.commit = call.positions.clone();
                revoked = Some(call.positions.clone());
            }
            c.complete_rebalance(call.seq, outcome, now);
            if call.kind == RebalanceKind::Revoked {
                assert!(
                    c.assignment().is_empty(),
                    "revoked at once, before the listener's commit lands"
                );
            }
        } else {
            let records = c.take_records(5, now).unwrap();
            let new_generation = c.group_state() == Some(MemberState::Stable)
                && c.group_metadata().unwrap().generation_id > old;
            if let (Some(_), false) = (&revoked, new_generation) {
                assert!(
                    records.is_empty(),
                    "records after on_partitions_revoked: {:?}",
                    records
                        .iter()
                        .map(|r| (r.partition, r.offset))
                        .collect::<Vec<_>>()
                );
                assert!(c.assignment().is_empty(), "{:?}", c.assignment());
            }
            for r in records.iter() {
                let next = read.entry(r.partition).or_default();
                if let Some(committed) = &revoked {
                    // The new generation starts from the listener's commit.
                    let from = committed.get(&tp(r.partition)).map_or(0, |o| o.offset);
                    assert!(r.offset >= from, "{} {} < {from}", r.partition, r.offset);
                }
                *next = r.offset + 1;
            }
        }
        h.sim.drain();
        if revoked.is_some() && h.balanced(&[0, j]) {
            break;
        }
        assert!(
            h.sim.now() <= deadline,
            "not rebalanced: {:?}",
            h.describe()
        );
        assert!(h.sim.step(), "nothing left to happen");
    }
    let committed = revoked.unwrap();
    assert_eq!(committed.len(), 4);
    let buffered_behind = committed.values().any(|o| o.offset < 2_000);
    assert!(
        buffered_behind,
        "member 0 was still reading when revoked: {committed:?}"
    );
    for (tp, o) in &committed {
        assert_eq!(
            h.committed_in_cluster(tp.partition),
            Some(o.offset),
            "the listener's commit is the last one of generation {old}"
        );
    }
}

#[test]
fn rebalance_callbacks_and_a_finished_unsubscribe_are_reported_once_each() {
    let mut h = Harness::new(1, 2, 1, |_| {});
    h.subscribe(0);
    h.run_until(LONG, "joined", |h| h.balanced(&[0]));
    h.run_for(Duration::from_secs(2));
    let pending = |h: &Harness| {
        h.apps[0]
            .events
            .iter()
            .filter(|e| matches!(e, ConsumerEvent::RebalancePending))
            .count()
    };
    // One event per callback the application ran (the assignment; eager: no revocation of
    // nothing).
    assert!(!h.apps[0].calls.is_empty());
    assert_eq!(pending(&h), h.apps[0].calls.len(), "{:?}", h.apps[0].calls);
    let settled_before = h.apps[0]
        .events
        .iter()
        .filter(|e| matches!(e, ConsumerEvent::GroupSettled))
        .count();

    let now = h.sim.now();
    h.sim.client(0).unsubscribe(now);
    assert!(!h.sim.client(0).group_settled(), "the revocation waits");
    h.run_until(LONG, "unsubscribed", |h| h.sim.client(0).group_settled());
    h.run_for(Duration::from_secs(1));
    let settled = h.apps[0]
        .events
        .iter()
        .filter(|e| matches!(e, ConsumerEvent::GroupSettled))
        .count();
    assert_eq!(settled, settled_before + 1, "GroupSettled once");
    assert_eq!(pending(&h), h.apps[0].calls.len(), "the revocation too");
    assert_eq!(
        h.apps[0].calls.last().map(|c| c.0),
        Some(RebalanceKind::Revoked)
    );
}

//! Consume-transform-produce in a group, across rebalances and member crashes: members are
//! each a group consumer (read_committed, no auto-commit) and a transactional producer of
//! their own. A member takes the records it polled from input topic `ctp-in`, writes one
//! output per input to `ctp-out` in a transaction and adds the consumer's positions to it
//! with the consumer's group metadata (KIP-447), then commits. Members crash (everything
//! closed hard, no LeaveGroup: the session timeout removes them) and new ones join, so
//! partitions move between members while transactions are open: a member that lost its
//! partitions finds out when the group refuses its offsets (an abortable error), aborts, and
//! goes on with what it still owns, from its last committed position.
//!
//! Invariant (checked through a read_committed consumer): every input's output is in the
//! committed data exactly once, nothing else is, and the group's committed offsets are the
//! input log ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::compression::Compression;
use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::{
    ConsumerCore, ConsumerEvent, GroupMetadata, OffsetAndMetadata, TopicPartition,
};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output};
use kafkit_core::producer::{ProduceError, ProducerCore, ProducerEvent, ProducerRecord};
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{ProduceRequest, RequestBody, ResponseBody};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_core::OpId;

/// A consumer or a producer: the simulation runs one client type, and a member is one of
/// each.
pub enum Client {
    Consumer(Box<ConsumerCore>),
    Producer(Box<ProducerCore>),
}

pub enum ClientEvent {
    Consumer(#[allow(dead_code)] ConsumerEvent),
    Producer(ProducerEvent),
}

impl Client {
    fn consumer(&mut self) -> &mut ConsumerCore {
        match self {
            Client::Consumer(c) => c,
            Client::Producer(_) => panic!("not a consumer"),
        }
    }
    fn producer(&mut self) -> &mut ProducerCore {
        match self {
            Client::Producer(p) => p,
            Client::Consumer(_) => panic!("not a producer"),
        }
    }
}

impl ClientCore for Client {
    type Event = ClientEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        match self {
            Client::Consumer(c) => c.handle_connected(conn, now),
            Client::Producer(p) => p.handle_connected(conn, now),
        }
    }
    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        match self {
            Client::Consumer(c) => c.handle_data(conn, data, now),
            Client::Producer(p) => p.handle_data(conn, data, now),
        }
    }
    fn handle_bytes(&mut self, conn: ConnId, data: Bytes, now: Instant) {
        match self {
            Client::Consumer(c) => c.handle_bytes(conn, data, now),
            Client::Producer(p) => p.handle_bytes(conn, data, now),
        }
    }
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        match self {
            Client::Consumer(c) => c.handle_closed(conn, reason, now),
            Client::Producer(p) => p.handle_closed(conn, reason, now),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Client::Consumer(c) => c.handle_timeout(now),
            Client::Producer(p) => p.handle_timeout(now),
        }
    }
    fn poll_output(&mut self) -> Option<Output<ClientEvent>> {
        Some(match self {
            Client::Consumer(c) => match c.poll_output()?.for_driver() {
                Ok(o) => o,
                Err(e) => Output::Event(ClientEvent::Consumer(e)),
            },
            Client::Producer(p) => match p.poll_output()?.for_driver() {
                Ok(o) => o,
                Err(e) => Output::Event(ClientEvent::Producer(e)),
            },
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Client::Consumer(c) => c.poll_timeout(),
            Client::Producer(p) => p.poll_timeout(),
        }
    }
}

use super::{
    call, seeds, Cluster, ClusterConfig, IsolationLevel, LinkConfig, ProducerConfig, Rc, RefCell,
    Rng, Ticker,
};
use kafkit_sim::{consumer_core, producer_core, serve_cluster};
type Sim = kafkit_sim::Simulation<Client>;

const IN: &str = "ctp-in";
const OUT: &str = "ctp-out";
const GROUP: &str = "ctp";
const IN_PARTITIONS: i32 = 6;
const OUT_PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 40;
const TICK: Duration = Duration::from_millis(50);
const FAULTS_FROM: Duration = Duration::from_millis(500);
const FAULTS_UNTIL: Duration = Duration::from_secs(8);
const COMPLETE_BY: Duration = Duration::from_secs(120);
const MEMBERS: usize = 3;
const MAX_POLL_INTERVAL_MS: u64 = 2_000;
/// 1 in this many transactions stalls past max_poll_interval_ms.
const STALL_ODDS: u64 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// `init_transactions` in progress.
    Initializing,
    /// Polling; no transaction open.
    Polling,
    /// A transaction is open with outputs sent; the member adds the offsets (with the group
    /// metadata of the poll that returned the inputs) at `until`, not polling meanwhile.
    Processing {
        until: Instant,
        group: GroupMetadata,
    },
    /// `send_offsets_to_transaction` in progress.
    Offsets,
    /// `commit_transaction` in progress.
    Committing,
    /// `abort_transaction` in progress.
    Aborting,
    Dead,
}

struct Member {
    consumer: usize,
    producer: usize,
    phase: Phase,
    op: u64,
    /// The open transaction's inputs: partition -> (first offset, next offset).
    txn: BTreeMap<TopicPartition, (i64, i64)>,
    /// The generation that handed out the open transaction's inputs.
    txn_generation: i32,
}

#[derive(Debug, Default)]
pub struct Report {
    pub commits: u64,
    pub aborts: u64,
    pub crashes: u64,
    pub members: u64,
    pub fenced_offsets: u64,
    pub stalls: u64,
    pub aborted_records: u64,
}

struct Scenario {
    sim: Sim,
    cluster: Rc<RefCell<Cluster>>,
    ticker: Rc<std::cell::Cell<Option<Instant>>>,
    rng: Rng,
    start: Instant,
    members: Vec<Member>,
    next_op: u64,
    /// A member to crash at an instant of the current tick.
    crash_at: Option<(Instant, usize)>,
    report: Report,
    trace: Vec<String>,
}

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig::builder()
        .set("group_id", GROUP)
        .set("isolation_level", "read_committed")
        .set("enable_auto_commit", "false")
        .set("auto_offset_reset", "earliest")
        .set("session_timeout_ms", "1500")
        .set("heartbeat_interval_ms", "300")
        .set("max_poll_interval_ms", &MAX_POLL_INTERVAL_MS.to_string())
        .set("request_timeout_ms", "5000")
        .set("max_poll_records", "8")
        .set("retry_backoff_ms", "20")
        .set("reconnect_backoff_ms", "20")
        .set("reconnect_backoff_max_ms", "500")
        .build()
        .expect("a valid consumer config")
}

impl Scenario {
    fn new(seed: u64) -> Scenario {
        let start = Instant::now();
        let mut rng = Rng::new(seed ^ 0xc7f0_0001);
        let config = ClusterConfig {
            brokers: 3,
            replication_factor: 3,
            auto_create_topics: false,
            seed,
            group_min_session_timeout_ms: 500,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        super::create_topics(
            &mut cluster.borrow_mut(),
            &[(IN, IN_PARTITIONS), (OUT, OUT_PARTITIONS)],
            start,
        );
        for p in 0..IN_PARTITIONS {
            let mut b = RecordBatchBuilder::new(Compression::None);
            for i in 0..PER_PARTITION {
                let v = format!("{p}-{i}");
                b.append(1_000 + i as i64, None, Some(v.as_bytes()), &[])
                    .expect("append");
            }
            let leader = cluster.borrow().partition(IN, p).expect("partition").leader;
            let body = RequestBody::Produce(ProduceRequest {
                acks: -1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: IN.into(),
                    partition_data: vec![PartitionProduceData {
                        index: p,
                        records: Some(b.finish().expect("batch")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            });
            let ResponseBody::Produce(r) = call(&mut cluster.borrow_mut(), leader, body, 8, start)
            else {
                panic!("not a Produce response")
            };
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
        let first = consumer_core(&consumer_config(), &cluster.borrow(), seed).expect("consumer");
        let jitter = Duration::from_micros(rng.below(2_000));
        let mut sim = Sim::new(Client::Consumer(Box::new(first)), seed, start)
            .with_links(LinkConfig {
                latency: Duration::from_micros(300),
                jitter,
            })
            .with_max_steps(3_000_000);
        serve_cluster(&mut sim, &cluster);
        let ticker = Rc::new(std::cell::Cell::new(None));
        sim.add_server("ticker:1", Ticker(ticker.clone()));
        let mut s = Scenario {
            sim,
            cluster,
            ticker,
            rng,
            start,
            members: Vec::new(),
            next_op: 1,
            crash_at: None,
            report: Report::default(),
            trace: Vec::new(),
        };
        s.add_member(Some(0));
        for _ in 1..MEMBERS {
            s.add_member(None);
        }
        s
    }

    fn elapsed(&self) -> Duration {
        self.sim.now() - self.start
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 60 {
            self.trace.remove(0);
        }
        let at = self.elapsed();
        self.trace.push(format!("{at:?}: {what}"));
    }

    fn op(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op
    }

    fn add_member(&mut self, consumer: Option<usize>) {
        let k = self.members.len();
        let seed = self.sim.seed() ^ ((k as u64 + 1) << 40);
        let now = self.sim.now();
        let consumer = match consumer {
            Some(c) => c,
            None => {
                let c = consumer_core(&consumer_config(), &self.cluster.borrow(), seed)
                    .expect("consumer");
                self.sim.add_client(Client::Consumer(Box::new(c)))
            }
        };
        self.sim
            .client(consumer)
            .consumer()
            .subscribe([IN], now)
            .expect("subscribe");
        let config = ProducerConfig::builder()
            .set("transactional_id", &format!("ctp-{k}"))
            .set("transaction_timeout_ms", "10000")
            .set("linger_ms", &self.rng.below(10).to_string())
            .set("request_timeout_ms", "2000")
            .set("retry_backoff_ms", "20")
            .set("reconnect_backoff_ms", "20")
            .set("reconnect_backoff_max_ms", "500")
            .build()
            .expect("a valid producer config");
        let p = producer_core(&config, &self.cluster.borrow(), seed ^ 1, now).expect("producer");
        let producer = self.sim.add_client(Client::Producer(Box::new(p)));
        let op = self.op();
        self.sim
            .client(producer)
            .producer()
            .init_transactions(OpId(op), now);
        self.report.members += 1;
        self.note(format!("member {k} starts"));
        self.members.push(Member {
            consumer,
            producer,
            phase: Phase::Initializing,
            op,
            txn: BTreeMap::new(),
            txn_generation: -1,
        });
    }

    fn crash(&mut self, k: usize) {
        let m = &mut self.members[k];
        m.phase = Phase::Dead;
        let (c, p) = (m.consumer, m.producer);
        self.sim.client(c).consumer().abort();
        self.sim.client(p).producer().abort();
        self.sim.take_client_events(c);
        self.sim.take_client_events(p);
        self.note(format!("member {k} crashed"));
    }

    fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|k| self.members[*k].phase != Phase::Dead)
            .collect()
    }

    fn faults(&mut self) {
        if !(FAULTS_FROM..FAULTS_UNTIL).contains(&self.elapsed()) {
            return;
        }
        let live = self.live();
        if live.len() > 1 && self.crash_at.is_none() && self.rng.below(30) == 0 {
            // At a random instant of the coming tick, so that transactions are caught at
            // every stage.
            let k = live[self.rng.below(live.len() as u64) as usize];
            let at =
                self.sim.now() + Duration::from_micros(self.rng.below(TICK.as_micros() as u64));
            self.crash_at = Some((at, k));
        }
        if self.live().len() < MEMBERS && self.rng.below(10) == 0 {
            self.add_member(None);
        }
    }

    fn drive(&mut self) -> Result<(), String> {
        for k in 0..self.members.len() {
            if self.members[k].phase == Phase::Dead {
                continue;
            }
            let (c, p) = (self.members[k].consumer, self.members[k].producer);
            self.sim.take_client_events(c);
            for event in self.sim.take_client_events(p) {
                match event {
                    ClientEvent::Producer(ProducerEvent::Delivered(d)) => {
                        self.sim.client(p).producer().recycle_deliveries(d)
                    }
                    ClientEvent::Producer(ProducerEvent::Transaction { op, result })
                        if op.0 == self.members[k].op =>
                    {
                        self.completed(k, result)?;
                    }
                    _ => {}
                }
            }
            if self.members[k].phase == Phase::Dead {
                continue;
            }
            self.step(k)?;
        }
        Ok(())
    }

    fn completed(&mut self, k: usize, result: Result<(), ProduceError>) -> Result<(), String> {
        let phase = self.members[k].phase.clone();
        self.note(format!("member {k}: {phase:?} -> {result:?}"));
        let (c, p) = (self.members[k].consumer, self.members[k].producer);
        let now = self.sim.now();
        match (phase, result) {
            (Phase::Initializing, Ok(())) => self.members[k].phase = Phase::Polling,
            (Phase::Offsets, Ok(())) => {
                let op = self.op();
                self.members[k].op = op;
                self.members[k].phase = Phase::Committing;
                self.sim
                    .client(p)
                    .producer()
                    .commit_transaction(OpId(op), now);
            }
            (Phase::Committing, Ok(())) => {
                self.report.commits += 1;
                self.members[k].txn.clear();
                self.members[k].phase = Phase::Polling;
            }
            (Phase::Aborting, Ok(())) => {
                self.report.aborts += 1;
                // Read the aborted inputs again where the member kept them all along (the
                // generation is the one that handed them out). After a rebalance the
                // positions were set from the committed offsets, which are right as they
                // are: another member may have processed these inputs since (seeking back
                // there would process them twice).
                let consumer = self.sim.client(c).consumer();
                let assigned = consumer.assignment();
                let same = consumer
                    .group_metadata()
                    .is_some_and(|g| g.generation_id == self.members[k].txn_generation);
                let txn = std::mem::take(&mut self.members[k].txn);
                for (tp, (first, _)) in txn {
                    if same && assigned.contains(&tp) {
                        self.sim
                            .client(c)
                            .consumer()
                            .seek(&tp, first, now)
                            .map_err(|e| format!("member {k}: seek {tp:?}: {e}"))?;
                    }
                }
                self.members[k].phase = Phase::Polling;
            }
            (Phase::Offsets | Phase::Committing, Err(ProduceError::TxnAbortable(_))) => {
                self.report.fenced_offsets += 1;
                let op = self.op();
                self.members[k].op = op;
                self.members[k].phase = Phase::Aborting;
                self.sim
                    .client(p)
                    .producer()
                    .abort_transaction(OpId(op), now);
            }
            (phase, Err(e)) => {
                return Err(format!("member {k}: {phase:?} failed: {e}"));
            }
            (phase, Ok(())) => return Err(format!("member {k}: a call completed in {phase:?}")),
        }
        Ok(())
    }

    fn step(&mut self, k: usize) -> Result<(), String> {
        let now = self.sim.now();
        let (c, p) = (self.members[k].consumer, self.members[k].producer);
        if let Phase::Processing { until, group } = &self.members[k].phase {
            if now < *until {
                return Ok(());
            }
            let group = group.clone();
            let offsets = self.members[k]
                .txn
                .iter()
                .map(|(tp, (_, next))| (tp.clone(), OffsetAndMetadata::new(*next)))
                .collect();
            let op = self.op();
            self.members[k].op = op;
            self.members[k].phase = Phase::Offsets;
            self.sim.client(p).producer().send_offsets_to_transaction(
                OpId(op),
                offsets,
                group,
                now,
            );
            return Ok(());
        }
        if self.members[k].phase != Phase::Polling {
            // A poll that takes nothing keeps the member in the group.
            let _ = self.sim.client(c).consumer().take_records(0, now);
            return Ok(());
        }
        let records = match self.sim.client(c).consumer().take_records(8, now) {
            Ok(r) => r,
            Err(e) => {
                self.note(format!("member {k}: poll: {e}"));
                return Ok(());
            }
        };
        if records.is_empty() {
            return Ok(());
        }
        self.sim
            .client(p)
            .producer()
            .begin_transaction()
            .map_err(|e| format!("member {k}: begin: {e}"))?;
        let mut txn: BTreeMap<TopicPartition, (i64, i64)> = BTreeMap::new();
        for r in records.iter() {
            let value = format!(
                "out-{}",
                String::from_utf8_lossy(r.value.as_deref().unwrap_or(b""))
            );
            let tp = TopicPartition::new(IN, r.partition);
            let e = txn.entry(tp).or_insert((r.offset, r.offset));
            e.1 = r.offset + 1;
            let record = ProducerRecord::new(OUT).key(value.clone()).value(value);
            if let Err(e) = self.sim.client(p).producer().send(None, record, now) {
                return Err(format!("member {k}: send: {e}"));
            }
        }
        // The metadata of the generation that handed these records out (Java's
        // `groupMetadata()` read right after the poll): a member removed meanwhile is
        // refused its offsets.
        let group = self
            .sim
            .client(c)
            .consumer()
            .group_metadata()
            .expect("a group consumer");
        self.note(format!(
            "member {k} (gen {} {}) processes {:?}",
            group.generation_id,
            group.member_id,
            txn.iter()
                .map(|(tp, r)| (tp.partition, r.0, r.1))
                .collect::<Vec<_>>()
        ));
        self.members[k].txn = txn;
        self.members[k].txn_generation = group.generation_id;
        // Now and then the member stalls with the transaction open, past
        // max_poll_interval_ms: the group removes it and gives its partitions away.
        let faults = (FAULTS_FROM..FAULTS_UNTIL).contains(&self.elapsed());
        let until = if faults && self.rng.below(STALL_ODDS) == 0 {
            self.report.stalls += 1;
            self.note(format!("member {k} stalls"));
            now + Duration::from_millis(MAX_POLL_INTERVAL_MS + 500 + self.rng.below(1_000))
        } else {
            now + TICK * self.rng.below(2) as u32
        };
        self.members[k].phase = Phase::Processing { until, group };
        Ok(())
    }

    fn committed_total(&self) -> i64 {
        let cluster = self.cluster.borrow();
        (0..IN_PARTITIONS)
            .map(|p| {
                cluster
                    .groups()
                    .committed_offset(GROUP, IN, p)
                    .map_or(0, |c| c.offset)
            })
            .sum()
    }

    fn run(&mut self) -> Result<(), String> {
        let total = (IN_PARTITIONS as usize * PER_PARTITION) as i64;
        loop {
            self.faults();
            self.drive()?;
            if self.elapsed() >= FAULTS_UNTIL && self.committed_total() == total {
                return Ok(());
            }
            if self.elapsed() >= COMPLETE_BY {
                return Err(format!(
                    "not done by {COMPLETE_BY:?}: {} of {total} inputs committed",
                    self.committed_total()
                ));
            }
            let until = self.sim.now() + TICK;
            if let Some((at, k)) = self.crash_at.take() {
                self.advance(at)?;
                if self.members[k].phase != Phase::Dead {
                    self.crash(k);
                    self.report.crashes += 1;
                }
            }
            self.advance(until)?;
        }
    }

    fn advance(&mut self, until: Instant) -> Result<(), String> {
        self.ticker.set(Some(until));
        self.sim
            .run_until(|s| s.now() >= until)
            .map(|_| ())
            .map_err(|e| format!("{e}"))
    }

    fn check(&mut self) -> Result<(), String> {
        let ends: Vec<i64> = {
            let cluster = self.cluster.borrow();
            (0..OUT_PARTITIONS)
                .map(|p| {
                    cluster
                        .partition(OUT, p)
                        .expect("partition")
                        .log_end_offset()
                })
                .collect()
        };
        let now = self.sim.now();
        let committed = super::read_all(
            &self.cluster,
            OUT,
            &ends,
            IsolationLevel::ReadCommitted,
            self.sim.seed(),
            now,
        )?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for v in &committed {
            *counts.entry(v.clone()).or_default() += 1;
        }
        for p in 0..IN_PARTITIONS {
            for i in 0..PER_PARTITION {
                match counts.remove(&format!("out-{p}-{i}")) {
                    Some(1) => {}
                    Some(n) => return Err(format!("out-{p}-{i} is committed {n} times")),
                    None => return Err(format!("out-{p}-{i} is not in the committed data")),
                }
            }
        }
        if let Some((v, n)) = counts.into_iter().next() {
            return Err(format!(
                "read_committed returned {v:?} ({n} times), no input's output"
            ));
        }
        let all = super::read_all(
            &self.cluster,
            OUT,
            &ends,
            IsolationLevel::ReadUncommitted,
            self.sim.seed(),
            now,
        )?;
        self.report.aborted_records += (all.len() - committed.len()) as u64;
        Ok(())
    }
}

pub fn run_seeds() {
    let wall = Instant::now();
    let mut totals = Report::default();
    let mut failures = Vec::new();
    let range = seeds();
    let count = range.end - range.start;
    for seed in range {
        let mut s = Scenario::new(seed);
        let result = s.run().and_then(|()| s.check());
        match result {
            Ok(()) => {
                totals.commits += s.report.commits;
                totals.aborts += s.report.aborts;
                totals.crashes += s.report.crashes;
                totals.members += s.report.members;
                totals.fenced_offsets += s.report.fenced_offsets;
                totals.stalls += s.report.stalls;
                totals.aborted_records += s.report.aborted_records;
            }
            Err(e) => failures.push(format!(
                "ConsumeTransformProduce seed {seed}: {e}\nlast steps:\n  {}",
                s.trace.join("\n  ")
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "consume-transform-produce: {} of {count} seeds failed; replay one with \
         KAFKIT_SIM_SEED_START=<seed> KAFKIT_SIM_SEEDS=1:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        totals.commits > count * 10
            && totals.crashes > count
            && totals.stalls > count / 2
            && totals.fenced_offsets > count / 2
            && totals.aborted_records > count,
        "{totals:?}"
    );
    eprintln!(
        "ConsumeTransformProduce: {count} seeds, {totals:?}, {:?} of wall time",
        wall.elapsed()
    );
}

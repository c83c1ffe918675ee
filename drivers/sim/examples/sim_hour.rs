//! A simulated hour of a 3-broker cluster with a 10-member consumer group and steady traffic
//! (issue 25's target: in ≤ 5 s of wall time, release build).
//!
//! ```sh
//! cargo run --release -p kafkit-sim --example sim_hour                     # one hour, classic
//! cargo run --release -p kafkit-sim --example sim_hour -- --protocol consumer   # KIP-848
//! cargo run --release -p kafkit-sim --example sim_hour -- --minutes 5 --rate 2000 --seed 7
//! cargo test -p kafkit-sim --example sim_hour       # the same checks over simulated minutes
//! ```
//!
//! The workload, one [`Simulation`] on virtual time:
//! - the simulated cluster: 3 brokers, one topic of 30 partitions replicated 3 times,
//!   `group.initial.rebalance.delay.ms` at Kafka's default (3 s, so members starting together
//!   join one generation), 1 MiB retained per partition (a bounded log: the records of an
//!   hour would otherwise stay in memory);
//! - one producer at Java's defaults (acks=all, idempotent, linger 5 ms, 16 KiB batches, the
//!   built-in partitioner, which spreads records without keys over the partitions a batch at
//!   a time), sending 100-byte values without keys at a steady rate: the application sends
//!   `rate / 100` records every 10 ms of virtual time (1,000 records/s by default, 3.6 M an
//!   hour);
//! - 10 members of one group (the classic protocol with the default assignors, range then
//!   cooperative-sticky, as Java; or KIP-848's consumer protocol with the broker's default
//!   assignor), at Java's defaults (auto-commit every 5 s, heartbeats every 3 s). Each member's
//!   application polls as soon as the member reports records or a rebalance, and at least
//!   once a second (a `poll(1 s)` loop);
//! - links of 1 ms with up to 1 ms of seeded jitter.
//!
//! The members join first (the warm-up, not counted in the hour), then the producer runs for
//! the simulated duration, then the run goes on until every record acknowledged is consumed.
//! Checks, which fail the run: every partition's records are consumed exactly once and in
//! order (offsets 0, 1, 2, ... with none skipped or repeated); records acknowledged =
//! records consumed = what the logs hold; every member heartbeat at least once per 2
//! heartbeat intervals; no JoinGroup (or, with KIP-848, no epoch change) after the warm-up:
//! the only rebalance was the join.
//!
//! It prints simulated time, wall time, CPU time (this thread's, from
//! `/proc/thread-self/schedstat` where there is one) and the simulation's steps (events
//! processed: deliveries, client deadlines and server deadlines).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::config::{ConsumerConfig, GroupProtocol, ProducerConfig};
use kafkit_core::consumer::{ConsumerCore, ConsumerEvent, MemberState};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output};
use kafkit_core::producer::{ProducerCore, ProducerEvent, ProducerRecord, SendStatus};
use kafkit_core::protocol::ApiKey;
use kafkit_core::OpId;
use kafkit_sim::{
    consumer_core, producer_core, serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig,
    Simulation,
};

const TOPIC: &str = "steady";
const GROUP: &str = "steady-readers";
/// The producer application's pace: it sends a tick's worth of records every tick.
const TICK: Duration = Duration::from_millis(10);
/// A member's application polls at least this often (a `poll(1 s)` loop).
const POLL_AT_LEAST: Duration = Duration::from_secs(1);
/// The most records one poll returns (Java's `max.poll.records` default).
const MAX_POLL_RECORDS: usize = 500;
/// Virtual time the members get to join, and the run to drain after production stops.
const WARM_UP_LIMIT: Duration = Duration::from_secs(60);
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// What one run is.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    /// Virtual time the producer runs.
    pub duration: Duration,
    /// Records per second of virtual time (a multiple of 100: the application sends
    /// `rate / 100` records per 10 ms tick).
    pub rate: u32,
    pub members: usize,
    pub partitions: i32,
    pub value_size: usize,
    /// KIP-848's consumer protocol instead of the classic one.
    pub consumer_protocol: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            seed: 42,
            duration: Duration::from_secs(3600),
            rate: 1_000,
            members: 10,
            partitions: 30,
            value_size: 100,
            consumer_protocol: false,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Virtual time from the start to the end of the drain (warm-up and drain included).
    pub simulated: Duration,
    /// Virtual time of the warm-up (the members joining).
    pub warm_up: Duration,
    pub wall: Duration,
    /// CPU time of this thread, if the platform reports it.
    pub cpu: Option<Duration>,
    /// Simulation steps (deliveries and deadlines handled).
    pub steps: u64,
    pub produced: u64,
    pub consumed: u64,
    /// Heartbeat (classic) or ConsumerGroupHeartbeat (KIP-848) requests the cluster got.
    pub heartbeats: u64,
    /// The fewest heartbeats of one member (classic: the member's own count).
    pub min_member_heartbeats: Option<u64>,
    /// Requests the cluster got, per API, over the whole run.
    pub requests: BTreeMap<ApiKey, u64>,
    /// The generation (classic) or member epoch (KIP-848) after the warm-up, unchanged since.
    pub generation: i32,
}

/// A member or the producer: a simulation runs one client type.
enum Client {
    Producer(Box<ProducerCore>),
    Consumer(Box<ConsumerCore>),
}

enum Event {
    Producer(ProducerEvent),
    Consumer(ConsumerEvent),
}

impl Client {
    fn producer(&mut self) -> &mut ProducerCore {
        match self {
            Client::Producer(p) => p,
            Client::Consumer(_) => unreachable!("client 0 is the producer"),
        }
    }
    fn consumer(&mut self) -> &mut ConsumerCore {
        match self {
            Client::Consumer(c) => c,
            Client::Producer(_) => unreachable!("clients 1.. are members"),
        }
    }
}

impl ClientCore for Client {
    type Event = Event;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        match self {
            Client::Producer(p) => p.handle_connected(conn, now),
            Client::Consumer(c) => c.handle_connected(conn, now),
        }
    }
    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        match self {
            Client::Producer(p) => p.handle_data(conn, data, now),
            Client::Consumer(c) => c.handle_data(conn, data, now),
        }
    }
    fn handle_bytes(&mut self, conn: ConnId, data: Bytes, now: Instant) {
        match self {
            Client::Producer(p) => p.handle_bytes(conn, data, now),
            Client::Consumer(c) => c.handle_bytes(conn, data, now),
        }
    }
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        match self {
            Client::Producer(p) => p.handle_closed(conn, reason, now),
            Client::Consumer(c) => c.handle_closed(conn, reason, now),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Client::Producer(p) => p.handle_timeout(now),
            Client::Consumer(c) => c.handle_timeout(now),
        }
    }
    fn poll_output(&mut self) -> Option<Output<Event>> {
        Some(match self {
            Client::Producer(p) => match p.poll_output()?.for_driver() {
                Ok(o) => o,
                Err(e) => Output::Event(Event::Producer(e)),
            },
            Client::Consumer(c) => match c.poll_output()?.for_driver() {
                Ok(o) => o,
                Err(e) => Output::Event(Event::Consumer(e)),
            },
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Client::Producer(p) => p.poll_timeout(),
            Client::Consumer(c) => c.poll_timeout(),
        }
    }
}

type Sim = Simulation<Client>;

/// The application side of one member.
#[derive(Default)]
struct Member {
    /// The member reported records or a rebalance: poll now.
    woken: bool,
    last_poll: Option<Instant>,
}

/// Requests the cluster got, per API (counted by pass-through hooks).
type Counts = Rc<RefCell<BTreeMap<ApiKey, u64>>>;

struct Run {
    w: Workload,
    sim: Sim,
    cluster: Rc<RefCell<Cluster>>,
    members: Vec<Member>,
    counts: Counts,
    /// Per partition: the next offset a poll must return.
    next_offset: Vec<i64>,
    produced: u64,
    consumed: u64,
    value: Bytes,
}

fn fail(w: &Workload, what: impl std::fmt::Display) -> String {
    format!("seed {}: {what}", w.seed)
}

impl Run {
    fn new(w: Workload) -> Result<Run, String> {
        let start = Instant::now();
        let config = ClusterConfig {
            brokers: 3,
            replication_factor: 3,
            default_partitions: w.partitions,
            retention_bytes: 1 << 20,
            group_initial_rebalance_delay_ms: 3_000,
            seed: w.seed,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let counts: Counts = Rc::default();
        for api in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::Metadata,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
            ApiKey::ConsumerGroupHeartbeat,
        ] {
            let counts = counts.clone();
            cluster.borrow_mut().set_hook(
                api,
                Box::new(move |_, _| {
                    *counts.borrow_mut().entry(api).or_default() += 1;
                    HookAction::Pass
                }),
            );
        }
        let producer = producer_core(&ProducerConfig::default(), &cluster.borrow(), w.seed, start)
            .map_err(|e| fail(&w, format!("producer: {e}")))?;
        let mut sim = Simulation::new(Client::Producer(Box::new(producer)), w.seed, start)
            .with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::from_millis(1),
            })
            .with_max_steps(u64::MAX);
        serve_cluster(&mut sim, &cluster);
        let mut cc = ConsumerConfig::default();
        cc.group_id = Some(GROUP.to_owned());
        if w.consumer_protocol {
            cc.group_protocol = GroupProtocol::Consumer;
        }
        for i in 0..w.members {
            cc.common.client_id = format!("member-{i}");
            let core = consumer_core(&cc, &cluster.borrow(), w.seed + 1 + i as u64)
                .map_err(|e| fail(&w, format!("member {i}: {e}")))?;
            sim.add_client(Client::Consumer(Box::new(core)));
        }
        let value = Bytes::from(
            (0..w.value_size)
                .map(|i| b'a' + (i % 26) as u8)
                .collect::<Vec<u8>>(),
        );
        Ok(Run {
            members: (0..w.members).map(|_| Member::default()).collect(),
            next_offset: vec![0; w.partitions as usize],
            w,
            sim,
            cluster,
            counts,
            produced: 0,
            consumed: 0,
            value,
        })
    }

    /// Creates the topic through the producer (auto-creation on its Metadata request).
    fn create_topic(&mut self) -> Result<(), String> {
        let now = self.sim.now();
        self.sim
            .client(0)
            .producer()
            .partitions_for(OpId(u64::MAX), TOPIC, now);
        let deadline = now + WARM_UP_LIMIT;
        let mut found = None;
        self.sim
            .run_until_deadline(deadline, |s| {
                for e in s.take_client_events(0) {
                    if let Event::Producer(ProducerEvent::Partitions { result, .. }) = e {
                        found = Some(result.map(|p| p.len()));
                    }
                }
                found.is_some()
            })
            .map_err(|e| fail(&self.w, e))?;
        match found {
            Some(Ok(n)) if n == self.w.partitions as usize => Ok(()),
            other => Err(fail(&self.w, format!("topic not created: {other:?}"))),
        }
    }

    /// Moves client events into the application's state.
    fn collect(&mut self) -> Result<(), String> {
        for e in self.sim.take_client_events(0) {
            match e {
                Event::Producer(ProducerEvent::Delivered(d)) => {
                    let mut failed = None;
                    d.for_each(|op, r| {
                        if let Err(e) = r {
                            failed.get_or_insert((op, e));
                        }
                    });
                    if let Some((op, e)) = failed {
                        return Err(fail(&self.w, format!("record {op:?} failed: {e}")));
                    }
                    self.produced += d.len() as u64;
                    self.sim.client(0).producer().recycle_deliveries(d);
                }
                Event::Producer(other) => {
                    return Err(fail(&self.w, format!("producer: {other:?}")));
                }
                Event::Consumer(_) => unreachable!("client 0 is the producer"),
            }
        }
        for i in 0..self.members.len() {
            for e in self.sim.take_client_events(i + 1) {
                match e {
                    Event::Consumer(
                        ConsumerEvent::RecordsReady | ConsumerEvent::RebalancePending,
                    ) => {
                        self.members[i].woken = true;
                    }
                    Event::Consumer(ConsumerEvent::Commit { result: Err(e), .. }) => {
                        return Err(fail(&self.w, format!("member {i}: commit failed: {e}")));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Polls the members that were woken or have not polled for a second.
    fn poll_members(&mut self) -> Result<(), String> {
        let now = self.sim.now();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            let due = m.last_poll.is_none_or(|t| now >= t + POLL_AT_LEAST);
            if !m.woken && !due {
                continue;
            }
            m.woken = false;
            m.last_poll = Some(now);
            loop {
                let records = self
                    .sim
                    .client(i + 1)
                    .consumer()
                    .take_records(MAX_POLL_RECORDS, now)
                    .map_err(|e| fail(&self.w, format!("member {i}: poll: {e}")))?;
                if records.count() == 0 {
                    break;
                }
                for r in records.iter() {
                    let next = &mut self.next_offset[r.partition as usize];
                    if r.offset != *next {
                        return Err(fail(
                            &self.w,
                            format!(
                                "member {i} got offset {} of partition {}, expected {next}",
                                r.offset, r.partition
                            ),
                        ));
                    }
                    *next += 1;
                }
                self.consumed += records.count() as u64;
            }
        }
        Ok(())
    }

    /// Runs until `deadline` of virtual time, the members' applications polling as they are
    /// woken, and the producer's sending `per_tick` records every tick (none with 0).
    fn run_to(&mut self, deadline: Instant, per_tick: u32) -> Result<(), String> {
        let mut next_tick = self.sim.now();
        loop {
            let now = self.sim.now();
            if now >= next_tick && per_tick > 0 {
                for _ in 0..per_tick {
                    let record = ProducerRecord::new(TOPIC).value(self.value.clone());
                    let op = OpId(self.produced);
                    match self.sim.client(0).producer().send(Some(op), record, now) {
                        Ok(SendStatus::Accepted) => {}
                        other => return Err(fail(&self.w, format!("send: {other:?}"))),
                    }
                }
                next_tick = now + TICK;
            }
            self.collect()?;
            self.poll_members()?;
            if now >= deadline {
                return Ok(());
            }
            // The next wake: a tick, a member's poll timeout, or a member's event.
            let oldest_poll = self.members.iter().filter_map(|m| m.last_poll).min();
            let mut wake = oldest_poll.map_or(deadline, |t| (t + POLL_AT_LEAST).min(deadline));
            if per_tick > 0 {
                wake = wake.min(next_tick);
            }
            let members = self.members.len();
            // Only members' events end the wait early; the producer's wait for the next tick.
            self.sim
                .run_until_deadline(wake, |s| (1..=members).any(|i| s.has_client_events(i)))
                .map_err(|e| fail(&self.w, e))?;
        }
    }

    /// Every member stable in one generation, the assignments a partitioning of the topic.
    fn settled(&mut self) -> Option<i32> {
        let mut generations = BTreeSet::new();
        let mut owned = BTreeSet::new();
        for i in 0..self.members.len() {
            let c = self.sim.client(i + 1).consumer();
            if c.group_state() != Some(MemberState::Stable) || !c.group_settled() {
                return None;
            }
            generations.insert(c.group_metadata()?.generation_id);
            for tp in c.assignment() {
                if !owned.insert(tp.partition) {
                    return None;
                }
            }
        }
        let classic_one_generation = self.w.consumer_protocol || generations.len() == 1;
        (classic_one_generation && owned.len() == self.w.partitions as usize)
            .then(|| *generations.iter().max().expect("members"))
    }

    fn generations(&mut self) -> Vec<i32> {
        (0..self.members.len())
            .map(|i| {
                let c = self.sim.client(i + 1).consumer();
                c.group_metadata().map_or(-1, |m| m.generation_id)
            })
            .collect()
    }

    fn run(mut self) -> Result<Report, String> {
        let wall_start = Instant::now();
        let cpu_start = thread_cpu();
        let start = self.sim.now();
        self.create_topic()?;
        let now = self.sim.now();
        for i in 0..self.members.len() {
            self.sim
                .client(i + 1)
                .consumer()
                .subscribe([TOPIC], now)
                .map_err(|e| fail(&self.w, e))?;
        }
        // Warm-up: the members join, one second at a time.
        let generation = loop {
            if self.sim.now() - start > WARM_UP_LIMIT {
                return Err(fail(&self.w, "the group did not settle in the warm-up"));
            }
            let next = self.sim.now() + POLL_AT_LEAST;
            self.run_to(next, 0)?;
            if let Some(g) = self.settled() {
                break g;
            }
        };
        let warm_up = self.sim.now() - start;
        let joins_after_warm_up = self.count(ApiKey::JoinGroup);
        let generations = self.generations();
        // The hour: steady production.
        let per_tick = self.w.rate / 100;
        let until = self.sim.now() + self.w.duration;
        self.run_to(until, per_tick)?;
        // Drain: the producer's last batches, the members' last fetches.
        let drain_until = self.sim.now() + DRAIN_LIMIT;
        let sent = u64::from(per_tick) * (self.w.duration.as_millis() / TICK.as_millis()) as u64;
        while self.produced < sent || self.consumed < self.produced {
            if self.sim.now() >= drain_until {
                return Err(fail(
                    &self.w,
                    format!(
                        "{} of {sent} records acknowledged, {} consumed, after the drain",
                        self.produced, self.consumed
                    ),
                ));
            }
            let next = self.sim.now() + POLL_AT_LEAST;
            self.run_to(next, 0)?;
        }
        let wall = wall_start.elapsed();
        let cpu = thread_cpu().zip(cpu_start).map(|(end, start)| end - start);

        // The checks.
        let in_logs: i64 = {
            let cluster = self.cluster.borrow();
            (0..self.w.partitions)
                .map(|p| {
                    cluster
                        .partition(TOPIC, p)
                        .map_or(0, |l| l.log_end_offset())
                })
                .sum()
        };
        if self.produced != sent || self.consumed != sent || in_logs != sent as i64 {
            return Err(fail(
                &self.w,
                format!(
                    "{sent} sent, {} acknowledged, {} consumed, {in_logs} in the logs",
                    self.produced, self.consumed
                ),
            ));
        }
        if self.count(ApiKey::JoinGroup) != joins_after_warm_up {
            return Err(fail(&self.w, "a JoinGroup after the warm-up: a rebalance"));
        }
        let generations_now = self.generations();
        if generations_now != generations {
            return Err(fail(
                &self.w,
                format!("generations moved from {generations:?} to {generations_now:?}"),
            ));
        }
        let simulated = self.sim.now() - start;
        let heartbeats = self.count(ApiKey::Heartbeat) + self.count(ApiKey::ConsumerGroupHeartbeat);
        let interval = if self.w.consumer_protocol {
            Duration::from_millis(
                self.cluster
                    .borrow()
                    .config()
                    .group_consumer_heartbeat_interval_ms as u64,
            )
        } else {
            Duration::from_millis(u64::from(ConsumerConfig::default().heartbeat_interval_ms))
        };
        let expected_each = (simulated - warm_up).as_millis() / (2 * interval.as_millis());
        let min_member_heartbeats = if self.w.consumer_protocol {
            None
        } else {
            let now = self.sim.now();
            (0..self.members.len())
                .map(|i| {
                    let m = self.sim.client(i + 1).consumer().metrics(now);
                    m.heartbeat_total as u64
                })
                .min()
        };
        let each_ok = min_member_heartbeats.is_none_or(|n| u128::from(n) >= expected_each);
        let total_ok = u128::from(heartbeats) >= expected_each * self.members.len() as u128;
        if !each_ok || !total_ok {
            return Err(fail(
                &self.w,
                format!(
                    "too few heartbeats: {heartbeats} in all, fewest of a member \
                     {min_member_heartbeats:?}, expected at least {expected_each} each"
                ),
            ));
        }
        Ok(Report {
            simulated,
            warm_up,
            wall,
            cpu,
            steps: self.sim.steps(),
            produced: self.produced,
            consumed: self.consumed,
            heartbeats,
            min_member_heartbeats,
            requests: self.counts.borrow().clone(),
            generation,
        })
    }

    fn count(&self, api: ApiKey) -> u64 {
        self.counts.borrow().get(&api).copied().unwrap_or(0)
    }
}

/// CPU time of this thread (the whole run is on it), where Linux reports it.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `w` once, checking everything the module docs list.
pub fn run(w: Workload) -> Result<Report, String> {
    Run::new(w)?.run()
}

fn parse_args() -> Result<Workload, String> {
    let mut w = Workload::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--seed" => w.seed = number(value()?)?,
            "--minutes" => w.duration = Duration::from_secs(60 * number(value()?)?),
            "--seconds" => w.duration = Duration::from_secs(number(value()?)?),
            "--rate" => {
                w.rate = u32::try_from(number(value()?)?).map_err(|e| e.to_string())?;
                if w.rate == 0 || w.rate % 100 != 0 {
                    return Err("--rate must be a positive multiple of 100".into());
                }
            }
            "--members" => w.members = number(value()?)?.clamp(1, 1_000) as usize,
            "--partitions" => w.partitions = number(value()?)?.clamp(1, 10_000) as i32,
            "--protocol" => {
                w.consumer_protocol = match value()?.as_str() {
                    "classic" => false,
                    "consumer" => true,
                    other => return Err(format!("--protocol classic|consumer, not {other}")),
                }
            }
            "-h" | "--help" => {
                return Err("usage: sim_hour [--minutes N | --seconds N] [--rate R] \
                            [--members M] [--partitions P] [--protocol classic|consumer] \
                            [--seed S]"
                    .into())
            }
            other => return Err(format!("unknown argument {other} (--help)")),
        }
    }
    Ok(w)
}

fn main() {
    let w = match parse_args() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "workload: {} s at {} records/s of {} B, {} members ({}), {} partitions, seed {}",
        w.duration.as_secs(),
        w.rate,
        w.value_size,
        w.members,
        if w.consumer_protocol {
            "KIP-848"
        } else {
            "classic"
        },
        w.partitions,
        w.seed
    );
    let r = match run(w) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
    };
    let per = |n: u64| n.to_string();
    println!(
        "simulated {:.1} s (warm-up {:.1} s), wall {:.3} s, cpu {}, steps {}, {:.0} steps/s",
        r.simulated.as_secs_f64(),
        r.warm_up.as_secs_f64(),
        r.wall.as_secs_f64(),
        r.cpu
            .map_or("n/a".into(), |c| format!("{:.3} s", c.as_secs_f64())),
        r.steps,
        r.steps as f64 / r.wall.as_secs_f64()
    );
    println!(
        "records: {} produced and acknowledged, {} consumed, exactly once and in order",
        r.produced, r.consumed
    );
    println!(
        "group: generation {} throughout, {} heartbeats (fewest of a member: {})",
        r.generation,
        r.heartbeats,
        r.min_member_heartbeats.map_or("n/a".into(), per)
    );
    let requests: Vec<String> = r
        .requests
        .iter()
        .map(|(api, n)| format!("{api:?} {n}"))
        .collect();
    println!("requests: {}", requests.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(consumer_protocol: bool) -> Report {
        let w = Workload {
            duration: Duration::from_secs(90),
            consumer_protocol,
            ..Workload::default()
        };
        let r = run(w).unwrap_or_else(|e| panic!("{e}"));
        // `run` checked the invariants; these say the run was the one described.
        assert_eq!(r.produced, 90_000);
        assert!(r.heartbeats >= 10 * 90 / 10, "{r:?}");
        assert!(r.steps > r.produced / 100, "{r:?}");
        r
    }

    #[test]
    fn classic_group_consumes_every_record_once_without_rebalancing() {
        let r = short(false);
        assert!(r.min_member_heartbeats.is_some_and(|n| n >= 15), "{r:?}");
    }

    #[test]
    fn consumer_protocol_group_consumes_every_record_once_without_rebalancing() {
        short(true);
    }
}

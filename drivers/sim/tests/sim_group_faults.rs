//! Seeded fault scenarios for consumer groups: several `ConsumerCore`s subscribed to one topic
//! in one group on the simulated 3-broker cluster, polled by the test as applications would
//! (`take_records` is the poll; rebalance listener callbacks are run by the test through
//! `pending_rebalance` / `complete_rebalance`), while members join, leave (LeaveGroup), crash
//! (connections dropped, no LeaveGroup: the session timeout removes them) and stall past
//! `max_poll_interval_ms`; while the group coordinator's broker crashes (the group moves to
//! another broker) and restarts, the network to a broker is split and healed, and connections
//! are reset. A producer appends records straight into the cluster model (Produce frames on
//! connections of the test's own) throughout the fault window.
//!
//! Scenarios run with eager assignors (`range`, `sticky`) and with `cooperative-sticky`
//! (KIP-429), each over `KAFKIT_SIM_SEEDS` seeds (default 200) starting at
//! `KAFKIT_SIM_SEED_START` (default 0). A failure names its scenario and seed and shows the
//! end of the run's trace; that seed replays the run exactly:
//!
//! ```sh
//! # the CI size (200 seeds per scenario)
//! cargo test -p kafkit-sim --test sim_group_faults
//! # 10,000 seeds per scenario
//! KAFKIT_SIM_SEEDS=10000 cargo test --release -p kafkit-sim --test sim_group_faults
//! # replay one seed of one scenario, with its whole trace
//! KAFKIT_SIM_SEED_START=4242 KAFKIT_SIM_SEEDS=1 KAFKIT_SIM_TRACE=1 \
//!     cargo test -p kafkit-sim --test sim_group_faults cooperative_membership -- --nocapture
//! ```
//!
//! Invariants, checked after every simulation step:
//! - no partition is owned by two members in one generation (a member owns its
//!   `assignment()` while it is `Stable` in generation `group_metadata().generation_id`;
//!   recorded over the whole run);
//! - no partition is owned by two members at once among the members the coordinator still
//!   counts in the group (across generations: a member the coordinator removed, and which has
//!   not found out yet, is a zombie and not counted). With cooperative-sticky this is KIP-429's
//!   promise; with eager assignors it holds because members revoke everything before
//!   rejoining;
//! - a poll returns records only of partitions the member owns at that moment, and none of a
//!   partition given to on_partitions_revoked/lost (until it is assigned again);
//! - committed offsets (as the cluster's coordinator stores them) never move backwards;
//!
//! and at the end of every run:
//! - once the faults are over, the group settles within [`SETTLE_WITHIN`] of virtual time:
//!   every live member stable in one generation, callbacks done, the coordinator's member list
//!   exactly the live members, and their assignments disjoint and covering every partition;
//! - every record produced was returned by some member's poll at least once;
//! - a member asked to leave closes within its close timeout;
//! - the run stays within its step bound (no livelock).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::config::{AssignmentStrategy, AutoOffsetReset, ConsumerConfig};
use kafkit_core::consumer::{
    ConsumerCore, ConsumerError, ConsumerEvent, MemberState, OpId, RebalanceKind, RebalanceOutcome,
    TopicPartition,
};
use kafkit_core::network::{ClientCore, Rng};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, ApiKey, CreateTopicsRequest, Message,
    ProduceRequest, RequestBody, RequestHeader,
};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_sim::{
    consumer_core, serve_cluster, Cluster, ClusterConfig, Endpoint, HookAction, LinkConfig,
    Simulation,
};

const TOPIC: &str = "events";
const GROUP: &str = "g";
const PARTITIONS: i32 = 6;
const BROKERS: usize = 3;
/// Members at the start.
const INITIAL_MEMBERS: usize = 3;
/// At most this many members are ever started in a run (joins stop there).
const MAX_MEMBERS: usize = 6;
/// At most this many live members at once (joins wait below it).
const MAX_LIVE: usize = 4;
/// The applications poll, commit and the producer appends once per tick.
const TICK: Duration = Duration::from_millis(200);
/// Faults start in [FAULTS_FROM, FAULTS_UNTIL); every fault is undone by FAULTS_UNTIL, except
/// that a stall started before it runs its course. Production stops at FAULTS_UNTIL.
const FAULTS_FROM: Duration = Duration::from_secs(2);
const FAULTS_UNTIL: Duration = Duration::from_secs(30);
/// After the last fault ends, the group must settle and every record be consumed within this
/// much virtual time.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// How long the group must stay settled to count as settled (longer than the session
/// timeout: a member whose heartbeats do not get through is expired within it).
const SETTLED_FOR: Duration = Duration::from_secs(8);
const SESSION_TIMEOUT_MS: u32 = 6_000;
const HEARTBEAT_INTERVAL_MS: u32 = 1_000;
const MAX_POLL_INTERVAL_MS: u32 = 8_000;
/// Longer than the rebalance timeout (max_poll_interval_ms), so that a JoinGroup parked for a
/// whole rebalance is not timed out (see the group contract's known gaps).
const REQUEST_TIMEOUT_MS: u32 = 10_000;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Steps one run may take (a livelock fails the run, naming its seed).
const MAX_STEPS: u64 = 2_000_000;
/// Steps at one virtual instant that mean time stands still (a deadline that stays due).
const STUCK_STEPS: u64 = 10_000;
/// Trace lines shown with a failure.
const TRACE_TAIL: usize = 60;

fn seeds() -> std::ops::Range<u64> {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let start = var("KAFKIT_SIM_SEED_START", 0);
    start..start + var("KAFKIT_SIM_SEEDS", 200)
}

/// Which faults a scenario draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Faults {
    /// Members join, leave, crash and stall.
    Membership,
    /// The coordinator's broker crashes and restarts, the network to a broker (the
    /// coordinator's or another) is split and healed, connections to the coordinator are
    /// reset; and now and then a member crashes or joins.
    Brokers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Join,
    Leave,
    Crash,
    Stall,
    CoordinatorCrash,
    PartitionCoordinator,
    PartitionOther,
    DropCoordinatorConnections,
}

impl Faults {
    fn menu(self) -> &'static [Fault] {
        match self {
            Faults::Membership => &[Fault::Join, Fault::Leave, Fault::Crash, Fault::Stall],
            Faults::Brokers => &[
                Fault::CoordinatorCrash,
                Fault::CoordinatorCrash,
                Fault::PartitionCoordinator,
                Fault::PartitionCoordinator,
                Fault::PartitionOther,
                Fault::DropCoordinatorConnections,
                Fault::Crash,
                Fault::Join,
            ],
        }
    }
}

/// Something a fault left to undo.
#[derive(Debug, Clone)]
enum Undo {
    Restart(i32),
    Heal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Polling,
    /// The application stops polling until then (since the start).
    Stalled(Duration),
    /// `close` was called then.
    Leaving(Duration),
    Left,
    Crashed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commits {
    /// enable_auto_commit, every second.
    Auto,
    /// commit_async of the consumed positions every second, and commit_sync of the revoked
    /// partitions' positions in on_partitions_revoked.
    Manual,
}

struct App {
    life: Life,
    commits: Commits,
    next_commit: Duration,
    /// What the member looked like at the last check, for the trace.
    last_seen: Option<(Option<MemberState>, i32, BTreeSet<TopicPartition>)>,
    polled: u64,
    /// Partitions given to on_partitions_revoked/lost and not assigned again since: a poll
    /// must not return their records.
    revoked: BTreeSet<TopicPartition>,
}

impl App {
    fn live(&self) -> bool {
        matches!(self.life, Life::Polling | Life::Stalled(_))
    }
}

/// A server that listens nowhere and only wakes the simulation at the next tick, so that a
/// step never jumps past it.
struct Ticker(Rc<Cell<Option<Instant>>>);

impl Endpoint for Ticker {
    fn accept(&mut self, _: u64, _: Instant) -> bool {
        false
    }
    fn receive(&mut self, _: u64, _: &[u8], _: Instant) -> Vec<u8> {
        Vec::new()
    }
    fn closed(&mut self, _: u64) {}
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.get()
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.0.get().is_some_and(|t| t <= now) {
            self.0.set(None);
        }
    }
}

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
        .expect("header encodes");
    body.encode(&mut buf, version).expect("body encodes");
    buf.freeze()
}

/// What one run did, for the totals a scenario prints.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    faults: u64,
    generations: i64,
    records: u64,
    polled: u64,
    poll_errors: u64,
    settled_after: Duration,
    steps: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.faults += o.faults;
        self.generations += o.generations;
        self.records += o.records;
        self.polled += o.polled;
        self.poll_errors += o.poll_errors;
        self.settled_after = self.settled_after.max(o.settled_after);
        self.steps += o.steps;
    }
}

struct Scenario {
    name: &'static str,
    faults: Faults,
    strategy: AssignmentStrategy,
    seed: u64,
    rng: Rng,
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    ticker: Rc<Cell<Option<Instant>>>,
    next_tick: Duration,
    apps: Vec<App>,
    next_conn: u64,
    /// Records appended per partition (offsets 0..n).
    produced: BTreeMap<i32, i64>,
    /// Every (partition, offset) some poll returned.
    consumed: BTreeSet<(i32, i64)>,
    /// Who owned a partition in a generation: (generation, partition) -> member.
    owners: BTreeMap<(i32, i32), usize>,
    /// The last committed offset seen per partition.
    committed: BTreeMap<i32, i64>,
    /// Faults still to undo, with when.
    undo: Vec<(Duration, Undo)>,
    next_fault: Duration,
    /// When the last fault ended (undone, or a stall ran out); settling is timed from there.
    quiet_from: Duration,
    trace: Vec<String>,
    stats: Stats,
    steps: u64,
    last_now: Option<Instant>,
    same_instant: u64,
    /// OffsetCommit requests as the cluster saw them (client, generation, member, offsets),
    /// moved into the trace after every step.
    commit_requests: Rc<RefCell<Vec<String>>>,
}

impl Scenario {
    fn new(name: &'static str, faults: Faults, strategy: AssignmentStrategy, seed: u64) -> Self {
        let start = Instant::now();
        let mut rng = Rng::new(seed ^ 0x6772_6f75_7073);
        let config = ClusterConfig {
            brokers: BROKERS,
            replication_factor: BROKERS as i16,
            seed,
            group_initial_rebalance_delay_ms: 300,
            group_min_session_timeout_ms: 1_000,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let jitter = Duration::from_micros(rng.next_u64() % 3_000);
        let ticker = Rc::new(Cell::new(None));
        let first = Self::member_core(&cluster, strategy, seed, 0, Commits::Auto);
        let mut sim = Simulation::new(first, seed, start).with_links(LinkConfig {
            latency: Duration::from_millis(1),
            jitter,
        });
        // Odd seeds also time the members out at random (the contract says that is safe).
        if seed % 2 == 1 {
            sim = sim.with_spurious_timeouts();
        }
        serve_cluster(&mut sim, &cluster);
        sim.add_server("ticker:1", Ticker(ticker.clone()));
        let mut s = Scenario {
            name,
            faults,
            strategy,
            seed,
            rng,
            sim,
            cluster,
            ticker,
            next_tick: Duration::ZERO,
            apps: Vec::new(),
            next_conn: 0,
            produced: BTreeMap::new(),
            consumed: BTreeSet::new(),
            owners: BTreeMap::new(),
            committed: BTreeMap::new(),
            undo: Vec::new(),
            next_fault: FAULTS_FROM,
            quiet_from: FAULTS_UNTIL,
            trace: Vec::new(),
            stats: Stats::default(),
            steps: 0,
            last_now: None,
            same_instant: 0,
            commit_requests: Rc::new(RefCell::new(Vec::new())),
        };
        let seen = s.commit_requests.clone();
        s.cluster.borrow_mut().set_hook(
            ApiKey::OffsetCommit,
            Box::new(move |header, body| {
                if let RequestBody::OffsetCommit(r) = body {
                    let offsets: Vec<(i32, i64)> = r
                        .topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| (p.partition_index, p.committed_offset))
                        })
                        .collect();
                    seen.borrow_mut().push(format!(
                        "OffsetCommit v{} from {:?} (correlation {}): generation {} member {} \
                         offsets {offsets:?}",
                        header.request_api_version,
                        header.client_id,
                        header.correlation_id,
                        r.generation_id_or_member_epoch,
                        r.member_id
                    ));
                }
                HookAction::Pass
            }),
        );
        let r = s.call(
            0,
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: TOPIC.into(),
                    num_partitions: PARTITIONS,
                    replication_factor: BROKERS as i16,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            5,
        );
        assert_eq!(r.topics[0].error_code, 0, "topic created");
        // Member 0 was created with the simulation; the first commit mode is drawn here.
        let commits = s.draw_commits();
        if commits != Commits::Auto {
            *s.sim.client(0) = Self::member_core(&s.cluster, strategy, seed, 0, commits);
        }
        s.start_app(0, commits);
        for _ in 1..INITIAL_MEMBERS {
            s.join();
        }
        s
    }

    fn draw_commits(&mut self) -> Commits {
        if self.rng.next_u64().is_multiple_of(2) {
            Commits::Auto
        } else {
            Commits::Manual
        }
    }

    fn member_core(
        cluster: &Rc<RefCell<Cluster>>,
        strategy: AssignmentStrategy,
        seed: u64,
        index: usize,
        commits: Commits,
    ) -> ConsumerCore {
        let mut cc = ConsumerConfig::default();
        cc.common.client_id = format!("member-{index}");
        cc.common.request_timeout_ms = REQUEST_TIMEOUT_MS;
        cc.common.retry_backoff_ms = 100;
        cc.common.reconnect_backoff_ms = 100;
        cc.common.reconnect_backoff_max_ms = 1_000;
        cc.group_id = Some(GROUP.into());
        cc.auto_offset_reset = AutoOffsetReset::Earliest;
        cc.fetch_max_wait_ms = 500;
        cc.session_timeout_ms = SESSION_TIMEOUT_MS;
        cc.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
        cc.max_poll_interval_ms = MAX_POLL_INTERVAL_MS;
        cc.enable_auto_commit = commits == Commits::Auto;
        cc.auto_commit_interval_ms = 1_000;
        cc.partition_assignment_strategy = vec![strategy];
        let mut core = consumer_core(
            &cc,
            &cluster.borrow(),
            seed.wrapping_mul(1_000).wrapping_add(index as u64),
        )
        .expect("a valid consumer config");
        core.set_rebalance_callbacks(true);
        core
    }

    fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    fn log(&mut self, line: String) {
        let at = self.elapsed();
        self.trace.push(format!(
            "{:>6}.{:03} {line}",
            at.as_secs(),
            at.subsec_millis()
        ));
    }

    fn fail(&self, what: String) -> String {
        let tail = if std::env::var_os("KAFKIT_SIM_TRACE").is_some() {
            0
        } else {
            self.trace.len().saturating_sub(TRACE_TAIL)
        };
        format!(
            "{} seed {}: {what}\n  trace (from line {tail}):\n    {}",
            self.name,
            self.seed,
            self.trace[tail..].join("\n    ")
        )
    }

    fn call<R: kafkit_core::protocol::Request>(
        &mut self,
        broker: i32,
        body: R,
        version: i16,
    ) -> R::Response {
        let body = body.into();
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
            .expect("response decodes")
            .1
            .into_response::<R>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Appends `n` records to partition `p` through its leader.
    fn produce(&mut self, p: i32, n: usize) -> Result<(), String> {
        let leader = self
            .cluster
            .borrow()
            .partition(TOPIC, p)
            .expect("partition")
            .leader;
        let mut b = RecordBatchBuilder::new(Compression::None);
        let next = self.produced.get(&p).copied().unwrap_or(0);
        for i in 0..n {
            let value = format!("{p}-{}", next + i as i64);
            b.append(1_000 + i as i64, None, Some(value.as_bytes()), &[])
                .expect("append");
        }
        let body = ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: p,
                    records: Some(b.finish().expect("batch")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = self.call(leader, body, 8);
        let pr = &r.responses[0].partition_responses[0];
        if pr.error_code != 0 || pr.base_offset != next {
            return Err(self.fail(format!(
                "produce to partition {p} (leader {leader}): error {} base offset {} (expected {next})",
                pr.error_code, pr.base_offset
            )));
        }
        self.produced.insert(p, next + n as i64);
        Ok(())
    }

    fn start_app(&mut self, i: usize, commits: Commits) {
        let now = self.sim.now();
        self.sim
            .client(i)
            .subscribe([TOPIC], now)
            .expect("subscribe");
        self.apps.push(App {
            life: Life::Polling,
            commits,
            next_commit: self.elapsed() + Duration::from_secs(1),
            last_seen: None,
            polled: 0,
            revoked: BTreeSet::new(),
        });
        self.log(format!("member {i} starts ({commits:?} commits)"));
    }

    fn join(&mut self) {
        let i = self.apps.len();
        let commits = self.draw_commits();
        let core = Self::member_core(&self.cluster, self.strategy, self.seed, i, commits);
        let j = self.sim.add_client(core);
        assert_eq!(i, j);
        self.start_app(i, commits);
    }

    fn live(&self) -> Vec<usize> {
        (0..self.apps.len())
            .filter(|&i| self.apps[i].live())
            .collect()
    }

    fn broker_addr(&self, id: i32) -> String {
        let c = self.cluster.borrow();
        let b = &c.brokers()[id as usize];
        format!("{}:{}", b.host, b.port)
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    /// Draws and applies the next fault; returns whether one applied.
    fn fault(&mut self) -> bool {
        let menu = self.faults.menu();
        let fault = menu[self.pick(menu.len())];
        let now_d = self.elapsed();
        let now = self.sim.now();
        let live = self.live();
        let crashed = self.undo.iter().any(|(_, u)| matches!(u, Undo::Restart(_)));
        let split = self.undo.iter().any(|(_, u)| matches!(u, Undo::Heal(_)));
        // A fault undone by this long from now, but never past FAULTS_UNTIL.
        let lasting = |s: &mut Self, min_ms: u64, max_ms: u64| {
            let d = Duration::from_millis(min_ms + s.rng.next_u64() % (max_ms - min_ms));
            (now_d + d).min(FAULTS_UNTIL)
        };
        match fault {
            Fault::Join => {
                if self.apps.len() >= MAX_MEMBERS || live.len() >= MAX_LIVE {
                    return false;
                }
                self.join();
            }
            Fault::Leave | Fault::Crash | Fault::Stall => {
                let polling: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|&i| self.apps[i].life == Life::Polling)
                    .collect();
                if live.len() < 2 || polling.is_empty() {
                    return false;
                }
                let i = polling[self.pick(polling.len())];
                match fault {
                    Fault::Leave => {
                        self.log(format!("member {i} leaves (close)"));
                        self.apps[i].life = Life::Leaving(now_d);
                        self.sim.client(i).close(CLOSE_TIMEOUT, now);
                    }
                    Fault::Crash => {
                        self.log(format!("member {i} crashes (abort: no LeaveGroup)"));
                        self.apps[i].life = Life::Crashed;
                        self.sim.client(i).abort();
                    }
                    _ => {
                        let extra = 500 + self.rng.next_u64() % 4_000;
                        let until =
                            now_d + Duration::from_millis(u64::from(MAX_POLL_INTERVAL_MS) + extra);
                        self.log(format!("member {i} stalls until {until:?}"));
                        self.apps[i].life = Life::Stalled(until);
                        self.quiet_from = self.quiet_from.max(until);
                    }
                }
            }
            Fault::CoordinatorCrash => {
                if crashed {
                    return false;
                }
                let id = self.cluster.borrow().coordinator_for(GROUP);
                let until = lasting(self, 2_000, 10_000);
                self.cluster.borrow_mut().crash_broker(id, now);
                let moved = self.cluster.borrow().coordinator_for(GROUP);
                self.log(format!(
                    "coordinator broker {id} crashes until {until:?}; group moves to {moved}"
                ));
                self.undo.push((until, Undo::Restart(id)));
            }
            Fault::PartitionCoordinator | Fault::PartitionOther => {
                if split {
                    return false;
                }
                let coordinator = self.cluster.borrow().coordinator_for(GROUP);
                let id = if fault == Fault::PartitionCoordinator {
                    coordinator
                } else {
                    let others: Vec<i32> =
                        (0..BROKERS as i32).filter(|&b| b != coordinator).collect();
                    others[self.pick(others.len())]
                };
                let addr = self.broker_addr(id);
                let until = lasting(self, 1_000, 12_000);
                self.log(format!(
                    "network to broker {id} ({addr}, coordinator {coordinator}) split until {until:?}"
                ));
                self.sim.partition(&addr);
                self.undo.push((until, Undo::Heal(addr)));
            }
            Fault::DropCoordinatorConnections => {
                let id = self.cluster.borrow().coordinator_for(GROUP);
                let addr = self.broker_addr(id);
                self.log(format!("connections to coordinator {id} reset"));
                self.sim.drop_connections(&addr);
            }
        }
        self.stats.faults += 1;
        true
    }

    fn undo_due(&mut self, all: bool) {
        let now_d = self.elapsed();
        let now = self.sim.now();
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.undo)
            .into_iter()
            .partition(|(at, _)| all || *at <= now_d);
        self.undo = rest;
        for (_, u) in due {
            match u {
                Undo::Restart(id) => {
                    self.log(format!("broker {id} restarts"));
                    self.cluster.borrow_mut().restart_broker(id, now);
                }
                Undo::Heal(addr) => {
                    self.log(format!("network to {addr} healed"));
                    self.sim.heal(&addr);
                }
            }
        }
    }

    /// One tick: faults, the producer, and every application's poll.
    fn tick(&mut self) -> Result<(), String> {
        let now_d = self.elapsed();
        if now_d < FAULTS_UNTIL {
            self.undo_due(false);
            if now_d >= self.next_fault {
                self.fault();
                self.next_fault =
                    now_d + Duration::from_millis(1_500 + self.rng.next_u64() % 3_000);
            }
            if self.rng.next_u64().is_multiple_of(2) {
                let p = self.pick(PARTITIONS as usize) as i32;
                let n = 1 + self.pick(3);
                self.produce(p, n)?;
            }
        } else {
            self.undo_due(true);
        }
        self.apps_step()
    }

    fn apps_step(&mut self) -> Result<(), String> {
        let now = self.sim.now();
        let now_d = self.elapsed();
        for i in 0..self.apps.len() {
            let events = self.sim.take_client_events(i);
            for e in events {
                if let ConsumerEvent::Commit {
                    result: Err(err), ..
                } = e
                {
                    self.log(format!("member {i} commit failed: {err}"));
                }
            }
            match self.apps[i].life {
                Life::Left | Life::Crashed => continue,
                Life::Stalled(until) if now_d < until => continue,
                Life::Stalled(_) => {
                    self.log(format!("member {i} polls again"));
                    self.apps[i].life = Life::Polling;
                }
                Life::Leaving(since) => {
                    if self.sim.client(i).is_closed() {
                        self.log(format!("member {i} closed"));
                        self.apps[i].life = Life::Left;
                        continue;
                    }
                    if now_d > since + CLOSE_TIMEOUT + Duration::from_secs(1) {
                        return Err(
                            self.fail(format!("member {i} did not close within {CLOSE_TIMEOUT:?}"))
                        );
                    }
                    // Closing runs the revocation callbacks, which the application completes.
                    self.callbacks(i, now);
                    continue;
                }
                Life::Polling => {}
            }
            if self.callbacks(i, now) {
                continue;
            }
            loop {
                let result = self.sim.client(i).take_records(500, now);
                self.apps[i].polled += 1;
                match result {
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => {
                        let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
                        for rec in r.iter() {
                            let e = ranges
                                .entry(rec.partition)
                                .or_insert((rec.offset, rec.offset));
                            e.1 = rec.offset;
                        }
                        self.log(format!("member {i} polled {ranges:?}"));
                        let owned = self.sim.client(i).assignment();
                        for rec in r {
                            if self.apps[i].revoked.contains(&rec.topic_partition()) {
                                return Err(self.fail(format!(
                                    "member {i} polled offset {} of partition {} after it ran \
                                     on_partitions_revoked/lost for it",
                                    rec.offset, rec.partition
                                )));
                            }
                            if !owned.contains(&rec.topic_partition()) {
                                return Err(self.fail(format!(
                                    "member {i} polled offset {} of partition {} it does not own \
                                     (owns {owned:?})",
                                    rec.offset, rec.partition
                                )));
                            }
                            let expected = format!("{}-{}", rec.partition, rec.offset);
                            if rec.value.as_deref() != Some(expected.as_bytes()) {
                                return Err(self.fail(format!(
                                    "member {i}: partition {} offset {} holds {:?}, not {expected}",
                                    rec.partition, rec.offset, rec.value
                                )));
                            }
                            self.consumed.insert((rec.partition, rec.offset));
                            self.stats.records += 1;
                        }
                    }
                    // A commit the listener asked for fails when the member lost its
                    // generation meanwhile (Java's commitSync throws inside the callback;
                    // kafkit reports it from the next poll). The application goes on.
                    Err(
                        e @ (ConsumerError::Group { .. }
                        | ConsumerError::Timeout { .. }
                        | ConsumerError::Network(_)),
                    ) => {
                        self.log(format!("member {i}: poll: {e}"));
                        self.stats.poll_errors += 1;
                        break;
                    }
                    Err(e) => {
                        return Err(self.fail(format!("member {i}: poll failed: {e}")));
                    }
                }
            }
            if self.apps[i].commits == Commits::Manual && now_d >= self.apps[i].next_commit {
                self.apps[i].next_commit = now_d + Duration::from_secs(1);
                let positions: Vec<(i32, i64)> = self
                    .sim
                    .client(i)
                    .consumed_offsets()
                    .iter()
                    .map(|(t, o)| (t.partition, o.offset))
                    .collect();
                self.log(format!("member {i} commit_async {positions:?}"));
                self.sim.client(i).commit_async(OpId(0), None, now);
            }
        }
        Ok(())
    }

    /// Runs member `i`'s pending listener callbacks; returns whether there was one.
    fn callbacks(&mut self, i: usize, now: Instant) -> bool {
        let mut ran = false;
        for _ in 0..4 {
            let Some(call) = self.sim.client(i).pending_rebalance().cloned() else {
                break;
            };
            let mut outcome = RebalanceOutcome::default();
            if call.kind == RebalanceKind::Revoked && self.apps[i].commits == Commits::Manual {
                outcome.commit = call
                    .positions
                    .iter()
                    .filter(|(tp, _)| call.partitions.contains(*tp))
                    .map(|(tp, o)| (tp.clone(), o.clone()))
                    .collect();
            }
            let parts: Vec<i32> = call.partitions.iter().map(|t| t.partition).collect();
            self.log(format!(
                "member {i} gen {} {:?} {parts:?}{}",
                call.group.generation_id,
                call.kind,
                if outcome.commit.is_empty() {
                    String::new()
                } else {
                    format!(
                        " committing {:?}",
                        outcome
                            .commit
                            .iter()
                            .map(|(t, o)| (t.partition, o.offset))
                            .collect::<Vec<_>>()
                    )
                }
            ));
            match call.kind {
                RebalanceKind::Assigned => {
                    for t in &call.partitions {
                        self.apps[i].revoked.remove(t);
                    }
                }
                _ => self.apps[i].revoked.extend(call.partitions.iter().cloned()),
            }
            self.sim
                .client(i)
                .complete_rebalance(call.seq, outcome, now);
            ran = true;
        }
        ran
    }

    /// The invariants that hold at every step.
    fn check(&mut self) -> Result<(), String> {
        let requests = std::mem::take(&mut *self.commit_requests.borrow_mut());
        for r in requests {
            self.log(r);
        }
        let snapshot = self.cluster.borrow().groups().group(GROUP);
        let in_group: BTreeSet<String> = snapshot
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.member_id.clone()))
            .collect();
        let mut at_once: BTreeMap<i32, usize> = BTreeMap::new();
        for i in 0..self.apps.len() {
            let c = self.sim.client(i);
            if c.is_closed() {
                continue;
            }
            let state = c.group_state();
            let md = c.group_metadata().expect("a group member");
            let owned = c.assignment();
            let seen = (state, md.generation_id, owned.clone());
            if self.apps[i].last_seen.as_ref() != Some(&seen) {
                let parts: Vec<i32> = owned.iter().map(|t| t.partition).collect();
                self.log(format!(
                    "member {i} {state:?} gen {} id {} owns {parts:?}",
                    md.generation_id, md.member_id
                ));
                self.apps[i].last_seen = Some(seen);
            }
            if state == Some(MemberState::Stable) && md.generation_id >= 0 {
                for t in &owned {
                    let prev = *self
                        .owners
                        .entry((md.generation_id, t.partition))
                        .or_insert(i);
                    if prev != i {
                        return Err(self.fail(format!(
                            "partition {} owned by members {prev} and {i} in generation {}",
                            t.partition, md.generation_id
                        )));
                    }
                }
            }
            if in_group.contains(&md.member_id) {
                for t in &owned {
                    if let Some(other) = at_once.insert(t.partition, i) {
                        return Err(self.fail(format!(
                            "partition {} owned by members {other} and {i} at once, both in \
                             the group",
                            t.partition
                        )));
                    }
                }
            }
        }
        for p in 0..PARTITIONS {
            let now = self
                .cluster
                .borrow()
                .groups()
                .committed_offset(GROUP, TOPIC, p)
                .map(|c| c.offset);
            if let Some(offset) = now {
                let before = self.committed.insert(p, offset);
                if let Some(b) = before {
                    if offset < b {
                        return Err(self.fail(format!(
                            "committed offset of partition {p} moved back from {b} to {offset}"
                        )));
                    }
                    if offset != b {
                        self.log(format!("partition {p} committed {offset}"));
                    }
                } else {
                    self.log(format!("partition {p} committed {offset}"));
                }
            }
        }
        Ok(())
    }

    /// Whether the group has settled: live members stable in one generation, the
    /// coordinator's member list exactly them, their assignments a partitioning of the topic.
    fn settled(&mut self) -> bool {
        let live = self.live();
        if live.is_empty() || live.iter().any(|&i| self.apps[i].life != Life::Polling) {
            return false;
        }
        if self.apps.iter().any(|a| matches!(a.life, Life::Leaving(_))) {
            return false;
        }
        let mut ids = BTreeSet::new();
        let mut gens = BTreeSet::new();
        let mut all = BTreeSet::new();
        for &i in &live {
            let c = self.sim.client(i);
            if c.group_state() != Some(MemberState::Stable)
                || c.pending_rebalance().is_some()
                || !c.group_settled()
            {
                return false;
            }
            let md = c.group_metadata().expect("member");
            ids.insert(md.member_id);
            gens.insert(md.generation_id);
            for t in c.assignment() {
                if !all.insert(t) {
                    return false;
                }
            }
        }
        let Some(g) = self.cluster.borrow().groups().group(GROUP) else {
            return false;
        };
        let group_ids: BTreeSet<String> = g.members.iter().map(|m| m.member_id.clone()).collect();
        gens.len() == 1
            && gens.contains(&g.generation_id)
            && group_ids == ids
            && all.len() == PARTITIONS as usize
    }

    fn all_consumed(&self) -> bool {
        self.produced
            .iter()
            .all(|(p, n)| (0..*n).all(|o| self.consumed.contains(&(*p, o))))
    }

    fn missing(&self) -> Vec<(i32, i64)> {
        self.produced
            .iter()
            .flat_map(|(p, n)| (0..*n).map(move |o| (*p, o)))
            .filter(|k| !self.consumed.contains(k))
            .take(10)
            .collect()
    }

    fn step(&mut self) -> Result<(), String> {
        if self.elapsed() >= self.next_tick {
            self.tick()?;
            self.next_tick += TICK;
            self.ticker
                .set(Some(self.sim.now() + (self.next_tick - self.elapsed())));
        }
        self.sim.drain();
        self.check()?;
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.fail(format!("more than {MAX_STEPS} steps (livelock?)")));
        }
        let now = self.sim.now();
        if self.last_now == Some(now) {
            self.same_instant += 1;
            if self.same_instant > STUCK_STEPS {
                let due: Vec<String> = (0..self.apps.len())
                    .filter_map(|i| {
                        let c = self.sim.client(i);
                        c.poll_timeout().filter(|t| *t <= now).map(|t| {
                            format!(
                                "member {i}: deadline {:?} ago, closed {}, {:?}, settled {}, \
                                 callback pending {:?}",
                                now - t,
                                c.is_closed(),
                                c.group_state(),
                                c.group_settled(),
                                c.pending_rebalance().map(|r| (r.kind, r.partitions.len()))
                            )
                        })
                    })
                    .collect();
                return Err(self.fail(format!(
                    "time stands still: {STUCK_STEPS} steps at one instant; deadlines that \
                     are due and stay due: {due:?}"
                )));
            }
        } else {
            self.last_now = Some(now);
            self.same_instant = 0;
        }
        if !self.sim.step() {
            return Err(self.fail("nothing left to happen".into()));
        }
        self.check()
    }

    fn run(mut self) -> Result<(Stats, Vec<String>), String> {
        while self.elapsed() < self.quiet_from.max(FAULTS_UNTIL) {
            self.step()?;
        }
        self.undo_due(true);
        let quiet = self.elapsed();
        self.log("faults over".into());
        // Settled for a while: a member cut off until the end may look stable at first, then
        // find out (through a request timeout) that it lost its session.
        let mut settled_since = None;
        loop {
            if self.settled() {
                let since = *settled_since.get_or_insert(self.elapsed());
                if self.elapsed() >= since + SETTLED_FOR {
                    break;
                }
            } else {
                settled_since = None;
            }
            if self.elapsed() > quiet + SETTLE_WITHIN {
                let states: Vec<_> = (0..self.apps.len())
                    .map(|i| (i, self.apps[i].life, self.apps[i].last_seen.clone()))
                    .collect();
                let g = self.cluster.borrow().groups().group(GROUP);
                return Err(self.fail(format!(
                    "the group did not settle within {SETTLE_WITHIN:?} after the faults ended; \
                     members {states:?}; coordinator's view {g:?}"
                )));
            }
            self.step()?;
        }
        self.stats.settled_after = settled_since.expect("settled") - quiet;
        self.log("settled".into());
        while !self.all_consumed() {
            if self.elapsed() > quiet + SETTLE_WITHIN {
                return Err(self.fail(format!(
                    "records never consumed, e.g. (partition, offset) {:?}",
                    self.missing()
                )));
            }
            self.step()?;
        }
        // Settled and caught up: still settled a few heartbeats later.
        let until = self.elapsed() + Duration::from_secs(3);
        while self.elapsed() < until {
            self.step()?;
        }
        if !self.settled() {
            return Err(self.fail("the group did not stay settled".into()));
        }
        self.stats.generations = self
            .cluster
            .borrow()
            .groups()
            .group(GROUP)
            .map_or(0, |g| i64::from(g.generation_id));
        self.stats.polled = self.apps.iter().map(|a| a.polled).sum();
        self.stats.steps = self.steps;
        Ok((self.stats, self.trace))
    }
}

fn run_one(
    name: &'static str,
    faults: Faults,
    strategy: AssignmentStrategy,
    seed: u64,
) -> Result<(Stats, Vec<String>), String> {
    match catch_unwind(AssertUnwindSafe(|| {
        Scenario::new(name, faults, strategy, seed).run()
    })) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("{name} seed {seed}: panicked: {msg}"))
        }
    }
}

fn run_seeds(name: &'static str, faults: Faults, strategy: AssignmentStrategy) {
    let range = seeds();
    let count = range.end - range.start;
    let mut totals = Stats::default();
    let mut failures = Vec::new();
    let print = std::env::var_os("KAFKIT_SIM_TRACE").is_some();
    for seed in range {
        match run_one(name, faults, strategy, seed) {
            Ok((s, trace)) => {
                if print {
                    eprintln!("{name} seed {seed}:\n    {}", trace.join("\n    "));
                }
                totals += s;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {count} seeds failed; replay one with KAFKIT_SIM_SEED_START=<seed> \
         KAFKIT_SIM_SEEDS=1 (KAFKIT_SIM_TRACE=1 for the whole trace):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The runs did what they are for: faults happened, the group rebalanced, data flowed.
    if count > 0 {
        assert!(totals.faults >= count, "{name}: {totals:?}");
        assert!(totals.generations >= 2 * count as i64, "{name}: {totals:?}");
        assert!(totals.records > 0, "{name}: {totals:?}");
    }
    eprintln!("{name}: {count} seeds, {totals:?}");
}

#[test]
fn eager_range_membership() {
    run_seeds(
        "eager_range_membership",
        Faults::Membership,
        AssignmentStrategy::Range,
    );
}

#[test]
fn eager_sticky_broker_faults() {
    run_seeds(
        "eager_sticky_broker_faults",
        Faults::Brokers,
        AssignmentStrategy::Sticky,
    );
}

#[test]
fn cooperative_membership() {
    run_seeds(
        "cooperative_membership",
        Faults::Membership,
        AssignmentStrategy::CooperativeSticky,
    );
}

#[test]
fn cooperative_broker_faults() {
    run_seeds(
        "cooperative_broker_faults",
        Faults::Brokers,
        AssignmentStrategy::CooperativeSticky,
    );
}

/// The same seed gives the same run, trace line for trace line (member states, assignments,
/// callbacks, commits, faults, all at the same virtual instants).
#[test]
fn a_seed_replays_exactly() {
    for (faults, strategy) in [
        (Faults::Membership, AssignmentStrategy::CooperativeSticky),
        (Faults::Brokers, AssignmentStrategy::Range),
    ] {
        for seed in [3, 17] {
            let a = run_one("replay", faults, strategy, seed).map(|(_, t)| t);
            let b = run_one("replay", faults, strategy, seed).map(|(_, t)| t);
            assert!(a.is_ok(), "{a:?}");
            assert_eq!(a, b, "{faults:?} {strategy:?} seed {seed}");
        }
    }
}

/// Seeds beyond the default 200 that once failed in the 10,000-seed run (2026-11-24), each
/// of them on every run:
/// - a crashed (closed) member's network layer kept reporting a metadata retry deadline that
///   nothing acted on after close, so time stood still (cooperative 659, 827, 830; eager
///   sticky seeds of the same kind);
/// - a member cut off from the coordinator for longer than its session kept its partitions
///   until it reached the coordinator again, while the group had already given them to
///   another member (cooperative 738, 1443, 2968, 3215).
#[test]
fn seeds_found_by_the_long_run() {
    let cases: [(&'static str, AssignmentStrategy, &[u64]); 2] = [
        (
            "cooperative_broker_faults",
            AssignmentStrategy::CooperativeSticky,
            &[659, 738, 827, 830, 1443, 2968, 3215],
        ),
        (
            "eager_sticky_broker_faults",
            AssignmentStrategy::Sticky,
            &[827, 862, 972, 1016, 1134],
        ),
    ];
    let mut failures = Vec::new();
    for (name, strategy, seeds) in cases {
        for &seed in seeds {
            if let Err(e) = run_one(name, Faults::Brokers, strategy, seed) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

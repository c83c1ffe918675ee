//! One seeded run: the cluster, the members, the fault schedule and the run loop.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::compression::Compression;
use kafkit_core::consumer::ConsumerCore;
use kafkit_core::network::{ClientCore, Rng};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, ApiKey, CreateTopicsRequest, ProduceRequest, RequestBody,
};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig, Simulation};

use super::*;

pub struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) faults: Faults,
    pub(crate) protocol: Protocol,
    pub(crate) seed: u64,
    pub(crate) rng: Rng,
    pub(crate) sim: Simulation<ConsumerCore>,
    pub(crate) cluster: Rc<RefCell<Cluster>>,
    ticker: Rc<Cell<Option<Instant>>>,
    next_tick: Duration,
    pub(crate) apps: Vec<App>,
    next_conn: u64,
    /// Records appended per partition (offsets 0..n).
    pub(crate) produced: BTreeMap<i32, i64>,
    /// Every (partition, offset) some poll returned.
    pub(crate) consumed: BTreeSet<(i32, i64)>,
    /// Classic: who owned a partition in a generation: (generation, partition) -> member.
    pub(crate) owners: BTreeMap<(i32, i32), usize>,
    /// The last committed offset seen per partition.
    pub(crate) committed: BTreeMap<i32, i64>,
    /// Faults still to undo, with when.
    undo: Vec<(Duration, Undo)>,
    next_fault: Duration,
    /// When the last fault ended (undone, or a stall ran out); settling is timed from there.
    quiet_from: Duration,
    pub(crate) trace: Vec<String>,
    pub(crate) stats: Stats,
    steps: u64,
    last_now: Option<Instant>,
    same_instant: u64,
    /// OffsetCommit requests as the cluster saw them (client, generation, member, offsets),
    /// moved into the trace after every step.
    pub(crate) commit_requests: Rc<RefCell<Vec<String>>>,
}

impl Scenario {
    pub fn new(name: &'static str, faults: Faults, protocol: Protocol, seed: u64) -> Self {
        let start = Instant::now();
        let mut rng = Rng::new(seed ^ 0x6772_6f75_7073);
        let config = ClusterConfig {
            brokers: BROKERS,
            replication_factor: BROKERS as i16,
            seed,
            group_initial_rebalance_delay_ms: 300,
            group_min_session_timeout_ms: 1_000,
            // The consumer protocol's session and heartbeat interval are the broker's.
            group_consumer_session_timeout_ms: SESSION_TIMEOUT_MS as i32,
            group_consumer_heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS as i32,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let jitter = Duration::from_micros(rng.next_u64() % 3_000);
        let ticker = Rc::new(Cell::new(None));
        let first = Self::member_core(&cluster, protocol, seed, 0, Commits::Auto, None);
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
            protocol,
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
        // Member 0 was created with the simulation; the first commit mode (and, with the
        // consumer protocol, whether it is static) is drawn here.
        let commits = s.draw_commits();
        let instance = s.draw_instance(0);
        if commits != Commits::Auto || instance.is_some() {
            *s.sim.client(0) =
                Self::member_core(&s.cluster, protocol, seed, 0, commits, instance.clone());
        }
        s.start_app(0, commits, instance);
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

    /// With the consumer protocol, one member in three is static (`group_instance_id`).
    /// Classic runs draw nothing here, so their seeds replay the runs they always did.
    fn draw_instance(&mut self, i: usize) -> Option<String> {
        if !self.protocol.is_consumer() || !self.rng.next_u64().is_multiple_of(3) {
            return None;
        }
        Some(format!("instance-{i}"))
    }

    fn member_core(
        cluster: &Rc<RefCell<Cluster>>,
        protocol: Protocol,
        seed: u64,
        index: usize,
        commits: Commits,
        instance: Option<String>,
    ) -> ConsumerCore {
        let cc = match protocol {
            Protocol::Classic(strategy) => classic::member_config(strategy),
            Protocol::Consumer { assignor, .. } => consumer::member_config(assignor, instance),
        };
        let mut cc = cc;
        cc.common.client_id = format!("member-{index}");
        cc.common.request_timeout_ms = REQUEST_TIMEOUT_MS;
        cc.common.retry_backoff_ms = 100;
        cc.common.reconnect_backoff_ms = 100;
        cc.common.reconnect_backoff_max_ms = 1_000;
        cc.group_id = Some(GROUP.into());
        cc.auto_offset_reset = kafkit_core::config::AutoOffsetReset::Earliest;
        cc.fetch_max_wait_ms = 500;
        cc.max_poll_interval_ms = MAX_POLL_INTERVAL_MS;
        cc.enable_auto_commit = commits == Commits::Auto;
        cc.auto_commit_interval_ms = 1_000;
        let mut core = kafkit_sim::consumer_core(
            &cc,
            &cluster.borrow(),
            seed.wrapping_mul(1_000).wrapping_add(index as u64),
        )
        .expect("a valid consumer config");
        core.set_rebalance_callbacks(true);
        core
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    pub(crate) fn log(&mut self, line: String) {
        let at = self.elapsed();
        self.trace.push(format!(
            "{:>6}.{:03} {line}",
            at.as_secs(),
            at.subsec_millis()
        ));
    }

    pub(crate) fn fail(&self, what: String) -> String {
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

    fn start_app(&mut self, i: usize, commits: Commits, instance: Option<String>) {
        let now = self.sim.now();
        let c = self.sim.client(i);
        match self.protocol {
            Protocol::Consumer { regex: true, .. } => {
                c.subscribe_pattern(consumer::PATTERN, now)
                    .expect("subscribe_pattern");
            }
            _ => c.subscribe([TOPIC], now).expect("subscribe"),
        }
        self.log(format!(
            "member {i} starts ({commits:?} commits{})",
            instance
                .as_deref()
                .map_or(String::new(), |s| format!(", static {s}"))
        ));
        self.apps.push(App {
            life: Life::Polling,
            commits,
            instance,
            replaced: false,
            next_commit: self.elapsed() + Duration::from_secs(1),
            last_seen: None,
            polled: 0,
            revoked: BTreeSet::new(),
        });
    }

    fn join(&mut self) {
        let i = self.apps.len();
        let commits = self.draw_commits();
        let instance = match self.restartable() {
            // A static member comes back: its instance id, a new member id.
            Some(old) if self.rng.next_u64().is_multiple_of(2) => {
                self.apps[old].replaced = true;
                self.apps[old].instance.clone()
            }
            _ => self.draw_instance(i),
        };
        let core = Self::member_core(
            &self.cluster,
            self.protocol,
            self.seed,
            i,
            commits,
            instance.clone(),
        );
        let j = self.sim.add_client(core);
        assert_eq!(i, j);
        self.start_app(i, commits, instance);
    }

    /// A static member that is gone and whose instance id may come back (consumer protocol
    /// only): it left (the coordinator keeps its assignment for it until the session ends),
    /// or it crashed and the coordinator no longer counts it (before that, the instance id
    /// is not released: UNRELEASED_INSTANCE_ID, fatal, as in Java).
    fn restartable(&self) -> Option<usize> {
        if !self.protocol.is_consumer() {
            return None;
        }
        let c = self.cluster.borrow();
        let g = c.consumer_groups().group(GROUP);
        (0..self.apps.len()).find(|&i| {
            let a = &self.apps[i];
            let Some(instance) = a.instance.as_deref() else {
                return false;
            };
            let held = g.is_some_and(|g| {
                g.members
                    .values()
                    .any(|m| m.instance_id.as_deref() == Some(instance) && m.member_epoch != -2)
            });
            !a.replaced
                && match a.life {
                    Life::Left => !held,
                    Life::Crashed => !held,
                    _ => false,
                }
        })
    }

    pub(crate) fn live(&self) -> Vec<usize> {
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
                        self.log(format!("member {i} crashes (abort: no leave)"));
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

    /// Whether the group has settled (see the module docs).
    fn settled(&mut self) -> bool {
        let live = self.live();
        if live.is_empty() || live.iter().any(|&i| self.apps[i].life != Life::Polling) {
            return false;
        }
        if self.apps.iter().any(|a| matches!(a.life, Life::Leaving(_))) {
            return false;
        }
        match self.protocol {
            Protocol::Classic(_) => self.classic_settled(&live),
            Protocol::Consumer { .. } => self.consumer_settled(&live),
        }
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

    /// The coordinator's view of the group, for a failure report.
    fn coordinator_view(&self) -> String {
        let c = self.cluster.borrow();
        match self.protocol {
            Protocol::Classic(_) => format!("{:?}", c.groups().group(GROUP)),
            Protocol::Consumer { .. } => format!("{:?}", c.consumer_groups().group(GROUP)),
        }
    }

    pub fn run(mut self) -> Result<(Stats, Vec<String>), String> {
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
                let view = self.coordinator_view();
                return Err(self.fail(format!(
                    "the group did not settle within {SETTLE_WITHIN:?} after the faults ended; \
                     members {states:?}; coordinator's view {view}"
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
        let c = self.cluster.borrow();
        self.stats.generations = match self.protocol {
            Protocol::Classic(_) => c
                .groups()
                .group(GROUP)
                .map_or(0, |g| i64::from(g.generation_id)),
            Protocol::Consumer { .. } => c
                .consumer_groups()
                .group(GROUP)
                .map_or(0, |g| i64::from(g.group_epoch)),
        };
        drop(c);
        self.stats.polled = self.apps.iter().map(|a| a.polled).sum();
        self.stats.steps = self.steps;
        Ok((self.stats, self.trace))
    }
}

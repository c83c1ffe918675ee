//! Seeded fault scenarios for transactions: kafkit's transactional producer (the very
//! `ProducerCore` the drivers run) against the simulated cluster's transaction coordinator,
//! doing what an exactly-once application does. An input is a numbered sequence of records
//! `0..INPUTS` (as read from partition 0 of topic `in`); the application turns each input `n`
//! into one output record `out-n` on topic `out` (3 partitions, replication factor 3), in
//! transactions of a few inputs each, and adds the input position reached to each
//! transaction (`send_offsets_to_transaction` for group `g`), so the committed offset says
//! exactly which inputs have committed outputs. An instance that starts (the first, or one
//! replacing a crashed or fenced one) runs `init_transactions` and resumes at the committed
//! offset, as a consumer would.
//!
//! Scenarios:
//! - **producer crashes**: the instance is killed mid-transaction (hard close: nothing more
//!   is sent, not even an abort), and a new instance with the same transactional id takes
//!   over: its `init_transactions` fences the old epoch and aborts the open transaction;
//! - **zombies**: a second instance starts while the first still runs (a paused process
//!   waking up, a network split healing): both work on the same inputs, the older one must
//!   be fenced and none of its records may show as committed;
//! - **transaction timeouts**: the instance stalls with a transaction open for longer than
//!   `transaction_timeout_ms`; the coordinator aborts the transaction (bumping the epoch), and
//!   the stalled instance's next call fails;
//! - **coordinator moves**: the broker coordinating the transactional id crashes (and
//!   restarts later) while transactions run, so in-flight AddPartitionsToTxn, TxnOffsetCommit
//!   and EndTxn calls meet a dead coordinator and the next coordinator finishes them;
//! - **mixed**: all of the above.
//!
//! Every scenario runs under transaction protocol v1 (KIP-98); the mixed one also under v2
//! (KIP-890 part 2: the cluster finalizes `transaction.version` 2, partitions and groups
//! join transactions implicitly, every EndTxn bumps the epoch), and each run checks that
//! the producers spoke the protocol it is about (`sim_txn_faults/v2.rs`).
//!
//! In every scenario the application also aborts one transaction in ten itself (as on a
//! processing error) and processes its inputs again.
//!
//! Each scenario runs over `KAFKIT_SIM_SEEDS` seeds (default 200) starting at
//! `KAFKIT_SIM_SEED_START` (default 0); a failure names its scenario and seed, and that seed
//! replays the run exactly:
//!
//! ```sh
//! KAFKIT_SIM_SEEDS=10000 cargo test --release -p kafkit-sim --test sim_txn_faults
//! KAFKIT_SIM_SEED_START=4242 KAFKIT_SIM_SEEDS=1 cargo test -p kafkit-sim --test sim_txn_faults
//! ```
//!
//! The six scenarios at 200 seeds take about 7 s of wall time in a debug build on two cores;
//! 10,000 seeds of each in release took 358 s (December 2026), every seed passing.
//!
//! Invariants, checked at the end of every run (faults healed, every input committed):
//! - every input's output appears exactly once in committed data: a `read_committed`
//!   consumer reading `out` from the beginning gets `out-0 .. out-{INPUTS-1}`, each once;
//! - read_committed never returns aborted data: that consumer gets nothing else (no output
//!   of an aborted, fenced or timed-out transaction, and no control record);
//! - nothing committed is lost: every commit an instance saw succeed is covered by the
//!   final committed offset, and the group's committed offset is exactly `INPUTS`;
//! - the consumer stops at the last stable offset, which is the log end once every
//!   transaction completed (no transaction is left open);
//! - the run stays within its step bound (no livelock).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::config::{IsolationLevel, ProducerConfig};
use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::network::Rng;
use kafkit_core::producer::{ProduceError, ProducerCore, ProducerEvent, ProducerRecord};
use kafkit_core::OpId;
#[path = "sim_txn_faults/ctp.rs"]
mod ctp;
#[path = "sim_txn_faults/support.rs"]
mod support;
#[path = "sim_txn_faults/v2.rs"]
mod v2;
use support::{call, create_topics, read_all};

use kafkit_sim::{
    producer_core, serve_cluster, Cluster, ClusterConfig, Endpoint, LinkConfig, Simulation,
};

const TXN_ID: &str = "app";
const GROUP: &str = "g";
const INPUT: &str = "in";
const OUTPUT: &str = "out";
const OUT_PARTITIONS: i32 = 3;
const BROKERS: usize = 3;
/// Inputs to process in every run.
const INPUTS: u64 = 120;
/// The test looks at the instances every tick.
const TICK: Duration = Duration::from_millis(20);
/// Faults happen in [FAULTS_FROM, FAULTS_UNTIL); everything is healed at FAULTS_UNTIL.
const FAULTS_FROM: Duration = Duration::from_millis(200);
const FAULTS_UNTIL: Duration = Duration::from_secs(4);
/// Every input must be committed by then (virtual time).
const COMPLETE_BY: Duration = Duration::from_secs(90);
/// 1 in this many transactions is aborted by the application (in every scenario).
const APP_ABORT_ODDS: u64 = 10;
/// The producer's transaction timeout where transactions are meant to time out (the
/// stalls last longer), and where they are not (longer than any coordinator outage plus the
/// transaction around it, so that a timeout never ends a transaction a move delayed).
const SHORT_TXN_TIMEOUT_MS: u64 = 600;
const LONG_TXN_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ProducerCrashes,
    Zombies,
    TransactionTimeouts,
    CoordinatorMoves,
    Mixed,
}

impl Fault {
    fn crashes(self) -> bool {
        matches!(self, Fault::ProducerCrashes | Fault::Mixed)
    }
    fn zombies(self) -> bool {
        matches!(self, Fault::Zombies | Fault::Mixed)
    }
    fn stalls(self) -> bool {
        matches!(self, Fault::TransactionTimeouts | Fault::Mixed)
    }
    fn coordinator_moves(self) -> bool {
        matches!(self, Fault::CoordinatorMoves | Fault::Mixed)
    }
    fn txn_timeout_ms(self) -> u64 {
        if self.stalls() {
            SHORT_TXN_TIMEOUT_MS
        } else {
            LONG_TXN_TIMEOUT_MS
        }
    }
}

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

/// A server that listens nowhere and only wakes the simulation at a given instant, so that
/// `run_until` stops at a tick boundary (and not at the next far-away event).
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

/// Where an application instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `init_transactions` is in progress.
    Initializing,
    /// Initialized, no transaction open.
    Ready,
    /// A transaction is open with the outputs of inputs `from..to` sent; the offsets are
    /// added once `stall_until` has passed.
    Sending {
        from: u64,
        to: u64,
        stall_until: Instant,
    },
    /// `send_offsets_to_transaction` for input position `to` is in progress.
    Offsets { to: u64 },
    /// `commit_transaction` is in progress; `to` is the input position it commits.
    Committing { to: u64 },
    /// `abort_transaction` is in progress.
    Aborting,
    /// Crashed, fenced, or failed fatally: never driven again.
    Dead,
}

/// One instance of the application: a producer (a client of the simulation) and where it is.
#[derive(Debug)]
struct Instance {
    client: usize,
    phase: Phase,
    /// The next input to process.
    next: u64,
    /// The first input of the open transaction.
    txn_from: u64,
    /// The op of the transactional call in progress.
    op: u64,
}

#[derive(Debug, Default, Clone)]
struct Report {
    transactions: u64,
    commits: u64,
    aborts: u64,
    instances: u64,
    crashes: u64,
    zombies: u64,
    stalls: u64,
    coordinator_crashes: u64,
    /// Coordinator crashes while the newest instance's commit was in flight.
    crashes_mid_commit: u64,
    /// Instances ended by a fatal error (fenced or epoch bumped by a timeout).
    fenced: u64,
    /// Records in `out`'s logs that read_committed skips (aborted data).
    aborted_records: u64,
    /// The transactional requests the producers sent, by version.
    versions: v2::Versions,
}

struct Scenario {
    kind: Fault,
    sim: Simulation<ProducerCore>,
    cluster: Rc<RefCell<Cluster>>,
    ticker: Rc<Cell<Option<Instant>>>,
    config: ProducerConfig,
    rng: Rng,
    start: Instant,
    instances: Vec<Instance>,
    next_op: u64,
    /// The highest input position a commit was seen to succeed for.
    committed_seen: u64,
    /// A crashed coordinator broker and when it restarts.
    down: Option<(i32, Instant)>,
    report: Report,
    /// The last transactional calls and their results, for the failure message.
    trace: Vec<String>,
    /// What the producers sent (recorded by cluster hooks).
    versions: Rc<RefCell<v2::Versions>>,
}

impl Scenario {
    /// A run of `kind` for `seed`, under transaction protocol v2 if `v2`.
    fn new(seed: u64, kind: Fault, v2: bool) -> Scenario {
        let start = Instant::now();
        let mut rng = Rng::new(seed ^ 0x7a5c_0de5);
        let cluster_config = ClusterConfig {
            brokers: BROKERS,
            replication_factor: BROKERS as i16,
            auto_create_topics: false,
            seed,
            replication_delay: Duration::from_millis(rng.below(3)),
            transaction_version: if v2 { 2 } else { 0 },
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(cluster_config, start)));
        let versions = v2::record_versions(&mut cluster.borrow_mut());
        create_topics(
            &mut cluster.borrow_mut(),
            &[(INPUT, 1), (OUTPUT, OUT_PARTITIONS)],
            start,
        );
        let config = ProducerConfig::builder()
            .set("transactional_id", TXN_ID)
            .set("transaction_timeout_ms", &kind.txn_timeout_ms().to_string())
            .set("linger_ms", &rng.below(10).to_string())
            .set(
                "max_in_flight_requests_per_connection",
                &(1 + rng.below(5)).to_string(),
            )
            .set("request_timeout_ms", "2000")
            .set("delivery_timeout_ms", "120000")
            .set("max_block_ms", "60000")
            .set("retry_backoff_ms", "20")
            .set("retry_backoff_max_ms", "500")
            .set("reconnect_backoff_ms", "20")
            .set("reconnect_backoff_max_ms", "500")
            .build()
            .expect("a valid producer config");
        let core = producer_core(&config, &cluster.borrow(), seed, start).expect("producer");
        let jitter = Duration::from_micros(rng.below(2_000));
        let mut sim = Simulation::new(core, seed, start)
            .with_links(LinkConfig {
                latency: Duration::from_micros(300),
                jitter,
            })
            .with_max_steps(3_000_000);
        serve_cluster(&mut sim, &cluster);
        let ticker = Rc::new(Cell::new(None));
        sim.add_server("ticker:1", Ticker(ticker.clone()));
        let mut s = Scenario {
            kind,
            sim,
            cluster,
            ticker,
            config,
            rng,
            start,
            instances: Vec::new(),
            next_op: 1,
            committed_seen: 0,
            down: None,
            report: Report::default(),
            trace: Vec::new(),
            versions,
        };
        s.start_instance(Some(0));
        s
    }

    fn elapsed(&self) -> Duration {
        self.sim.now() - self.start
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 40 {
            self.trace.remove(0);
        }
        let at = self.elapsed();
        self.trace.push(format!("{at:?}: {what}"));
    }

    /// Starts an instance on client `client` (a new client if `None`): `init_transactions`.
    fn start_instance(&mut self, client: Option<usize>) {
        let client = match client {
            Some(c) => c,
            None => {
                let seed = self.sim.seed() ^ (self.instances.len() as u64 + 1) << 32;
                let now = self.sim.now();
                let core = producer_core(&self.config, &self.cluster.borrow(), seed, now)
                    .expect("producer");
                self.sim.add_client(core)
            }
        };
        let op = self.op();
        let now = self.sim.now();
        self.sim.client(client).init_transactions(OpId(op), now);
        self.report.instances += 1;
        self.note(format!("instance on client {client}: init_transactions"));
        self.instances.push(Instance {
            client,
            phase: Phase::Initializing,
            next: 0,
            txn_from: 0,
            op,
        });
    }

    fn op(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op
    }

    /// Whether every transaction of `out` is complete: a commit returns once the
    /// coordinator logged its decision (as in Kafka), and the markers then still have to be
    /// written and replicated before the last stable offset passes them.
    fn stable(&self) -> bool {
        let cluster = self.cluster.borrow();
        (0..OUT_PARTITIONS).all(|p| {
            cluster
                .partition(OUTPUT, p)
                .is_some_and(|log| log.last_stable_offset() == log.log_end_offset())
        })
    }

    /// The offset group `g` committed for the input, 0 if none.
    fn committed_offset(&self) -> u64 {
        self.cluster
            .borrow()
            .groups()
            .committed_offset(GROUP, INPUT, 0)
            .map_or(0, |c| c.offset as u64)
    }

    /// Kills instance `i` as a crash does: the process is gone, its connections close,
    /// nothing more is sent.
    fn crash(&mut self, i: usize) {
        let client = self.instances[i].client;
        self.instances[i].phase = Phase::Dead;
        self.sim.client(client).abort();
        // The events of the dead client are nobody's.
        self.sim.take_client_events(client);
        self.note(format!("instance {i} crashed"));
    }

    /// The newest instance: the one that keeps the work going.
    fn newest(&self) -> usize {
        self.instances.len() - 1
    }

    /// Draws this tick's faults.
    fn faults(&mut self) {
        let t = self.elapsed();
        let now = self.sim.now();
        if let Some((id, until)) = self.down {
            if now >= until || t >= FAULTS_UNTIL {
                self.cluster.borrow_mut().restart_broker(id, now);
                self.down = None;
                self.note(format!("broker {id} restarted"));
            }
        }
        if !(FAULTS_FROM..FAULTS_UNTIL).contains(&t) {
            return;
        }
        let newest = self.newest();
        let busy = !matches!(
            self.instances[newest].phase,
            Phase::Dead | Phase::Initializing
        );
        // About one fault of each kind a second.
        if self.kind.crashes() && busy && self.rng.below(50) == 0 {
            self.crash(newest);
            self.report.crashes += 1;
            self.start_instance(None);
        }
        let newest = self.newest();
        let busy = !matches!(
            self.instances[newest].phase,
            Phase::Dead | Phase::Initializing
        );
        if self.kind.zombies() && busy && self.rng.below(50) == 0 {
            // The old instance keeps running: it is the zombie.
            self.report.zombies += 1;
            self.note(format!("instance {newest} becomes a zombie"));
            self.start_instance(None);
        }
        if self.kind.coordinator_moves() && self.down.is_none() && self.rng.below(40) == 0 {
            let id = self.cluster.borrow().coordinator_for(TXN_ID);
            if id >= 0 {
                self.cluster.borrow_mut().crash_broker(id, now);
                let back = now + Duration::from_millis(200 + self.rng.below(1_500));
                self.down = Some((id, back));
                self.report.coordinator_crashes += 1;
                if matches!(self.instances[newest].phase, Phase::Committing { .. }) {
                    self.report.crashes_mid_commit += 1;
                }
                self.note(format!("coordinator broker {id} crashed"));
            }
        }
    }

    /// Drives every live instance one step, as its application would.
    fn drive(&mut self) -> Result<(), String> {
        for i in 0..self.instances.len() {
            let client = self.instances[i].client;
            if self.instances[i].phase == Phase::Dead {
                continue;
            }
            for event in self.sim.take_client_events(client) {
                match event {
                    ProducerEvent::Delivered(d) => self.sim.client(client).recycle_deliveries(d),
                    ProducerEvent::Transaction { op, result } if op.0 == self.instances[i].op => {
                        self.completed(i, result)?;
                    }
                    _ => {}
                }
            }
            self.step(i)?;
        }
        Ok(())
    }

    /// Instance `i`'s transactional call finished with `result`.
    fn completed(&mut self, i: usize, result: Result<(), ProduceError>) -> Result<(), String> {
        let phase = self.instances[i].phase;
        self.note(format!("instance {i}: {phase:?} -> {result:?}"));
        match (phase, result) {
            (Phase::Initializing, Ok(())) => {
                // A consumer resumes at the committed offset; init_transactions returns once
                // the previous instance's transaction is complete, so it is stable.
                self.instances[i].next = self.committed_offset();
                self.instances[i].phase = Phase::Ready;
            }
            (Phase::Initializing, Err(ProduceError::MaxBlockTimeout { .. })) => {
                // Java's advice: call again, the initialization continues.
                let op = self.op();
                self.instances[i].op = op;
                let (client, now) = (self.instances[i].client, self.sim.now());
                self.sim.client(client).init_transactions(OpId(op), now);
            }
            (Phase::Offsets { to }, Ok(())) => {
                let op = self.op();
                let (client, now) = (self.instances[i].client, self.sim.now());
                self.instances[i].op = op;
                self.instances[i].phase = Phase::Committing { to };
                self.sim.client(client).commit_transaction(OpId(op), now);
            }
            (Phase::Committing { to }, Ok(())) => {
                self.report.commits += 1;
                if to <= self.committed_seen && to != 0 {
                    return Err(format!(
                        "instance {i} committed inputs up to {to}, but a commit up to {} had \
                         already succeeded: outputs were committed twice",
                        self.committed_seen
                    ));
                }
                self.committed_seen = to;
                self.instances[i].next = to;
                self.instances[i].phase = Phase::Ready;
            }
            (Phase::Aborting, Ok(())) => {
                self.report.aborts += 1;
                // The inputs of the aborted transaction are processed again.
                self.instances[i].next = self.instances[i].txn_from;
                self.instances[i].phase = Phase::Ready;
            }
            (
                Phase::Offsets { .. } | Phase::Committing { .. },
                Err(ProduceError::TxnAbortable(_)),
            ) => {
                self.abort(i);
            }
            (_, Err(e)) => {
                // Fatal for this instance (fenced, epoch bumped by a timeout, ...): it
                // closes, and if it was the newest a new instance takes over.
                self.report.fenced += 1;
                let client = self.instances[i].client;
                self.instances[i].phase = Phase::Dead;
                self.sim.client(client).abort();
                self.sim.take_client_events(client);
                self.note(format!("instance {i} ends: {e}"));
                if i == self.newest() {
                    self.start_instance(None);
                }
            }
            (phase, Ok(())) => {
                return Err(format!("instance {i}: a call completed in phase {phase:?}"));
            }
        }
        Ok(())
    }

    fn abort(&mut self, i: usize) {
        let op = self.op();
        let (client, now) = (self.instances[i].client, self.sim.now());
        self.instances[i].op = op;
        self.instances[i].phase = Phase::Aborting;
        self.sim.client(client).abort_transaction(OpId(op), now);
    }

    /// Moves instance `i` on if it is not waiting for a call.
    fn step(&mut self, i: usize) -> Result<(), String> {
        let now = self.sim.now();
        let client = self.instances[i].client;
        match self.instances[i].phase {
            Phase::Ready if self.instances[i].next < INPUTS => {
                let from = self.instances[i].next;
                let to = (from + 1 + self.rng.below(6)).min(INPUTS);
                if let Err(e) = self.sim.client(client).begin_transaction() {
                    return self.completed(i, Err(e));
                }
                self.report.transactions += 1;
                self.instances[i].txn_from = from;
                for n in from..to {
                    let record = ProducerRecord::new(OUTPUT)
                        .key(format!("k{n}"))
                        .value(format!("out-{n}"));
                    if let Err(e) = self.sim.client(client).send(None, record, now) {
                        // A fenced producer refuses sends: the error ends the transaction.
                        return match e {
                            ProduceError::TxnAbortable(_) => {
                                self.abort(i);
                                Ok(())
                            }
                            e => self.completed(i, Err(e)),
                        };
                    }
                }
                let stall = if self.kind.stalls()
                    && (FAULTS_FROM..FAULTS_UNTIL).contains(&self.elapsed())
                    && self.rng.below(15) == 0
                {
                    self.report.stalls += 1;
                    self.note(format!("instance {i} stalls"));
                    Duration::from_millis(SHORT_TXN_TIMEOUT_MS + 200 + self.rng.below(800))
                } else {
                    TICK * self.rng.below(3) as u32
                };
                self.instances[i].phase = Phase::Sending {
                    from,
                    to,
                    stall_until: now + stall,
                };
            }
            Phase::Sending {
                from,
                to,
                stall_until,
            } if now >= stall_until => {
                if self.rng.below(APP_ABORT_ODDS) == 0 {
                    // The application gives up on these inputs (a processing error, say):
                    // it aborts, and processes them again.
                    self.note(format!("instance {i} aborts inputs {from}..{to}"));
                    self.abort(i);
                    return Ok(());
                }
                let op = self.op();
                self.instances[i].op = op;
                self.instances[i].phase = Phase::Offsets { to };
                let offsets = BTreeMap::from([(
                    TopicPartition::new(INPUT, 0),
                    OffsetAndMetadata::new(to as i64),
                )]);
                let group = GroupMetadata {
                    group_id: GROUP.into(),
                    generation_id: -1,
                    member_id: String::new(),
                    group_instance_id: None,
                };
                self.sim
                    .client(client)
                    .send_offsets_to_transaction(OpId(op), offsets, group, now);
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs the simulation to `until`.
    fn advance(&mut self, until: Instant) -> Result<(), String> {
        self.ticker.set(Some(until));
        self.sim
            .run_until(|s| s.now() >= until)
            .map_err(|e| format!("{e}"))?;
        Ok(())
    }

    fn run(mut self) -> Result<Report, String> {
        let seed = self.sim.seed();
        let kind = self.kind;
        match self.run_inner() {
            Ok(()) => {}
            Err(e) => {
                return Err(format!(
                    "{kind:?} seed {seed}: {e}\nlast steps:\n  {}",
                    self.trace.join("\n  ")
                ))
            }
        }
        self.check()
            .map_err(|e| format!("{kind:?} seed {seed}: {e}"))
    }

    fn run_inner(&mut self) -> Result<(), String> {
        loop {
            self.faults();
            self.drive()?;
            let newest = &self.instances[self.newest()];
            if self.elapsed() >= FAULTS_UNTIL
                && newest.phase == Phase::Ready
                && newest.next == INPUTS
                && self.stable()
            {
                return Ok(());
            }
            if self.elapsed() >= COMPLETE_BY {
                return Err(format!(
                    "not done by {COMPLETE_BY:?}: the newest instance is {newest:?}, \
                     the committed offset {}",
                    self.committed_offset()
                ));
            }
            let until = self.sim.now() + TICK;
            self.advance(until)?;
        }
    }

    /// The invariants, read through a read_committed consumer.
    fn check(mut self) -> Result<Report, String> {
        let committed = self.committed_offset();
        if committed != INPUTS {
            return Err(format!(
                "the committed input offset is {committed}, not {INPUTS}"
            ));
        }
        if self.committed_seen > committed {
            return Err(format!(
                "a commit up to {} succeeded but the committed offset is {committed}",
                self.committed_seen
            ));
        }
        // Every transaction complete: the last stable offset is the log end everywhere.
        let mut ends = Vec::new();
        {
            let cluster = self.cluster.borrow();
            for p in 0..OUT_PARTITIONS {
                let log = cluster
                    .partition(OUTPUT, p)
                    .ok_or_else(|| format!("{OUTPUT}-{p} does not exist"))?;
                if log.last_stable_offset() != log.log_end_offset() {
                    return Err(format!(
                        "{OUTPUT}-{p}: last stable offset {} below the log end {} after \
                         every transaction completed (high watermark {}, coordinator: {:?})",
                        log.last_stable_offset(),
                        log.log_end_offset(),
                        log.high_watermark(),
                        cluster.transactions().get(TXN_ID),
                    ));
                }
                ends.push(log.log_end_offset());
            }
        }
        let now = self.sim.now();
        let seed = self.sim.seed();
        let seen = read_all(
            &self.cluster,
            OUTPUT,
            &ends,
            IsolationLevel::ReadCommitted,
            seed,
            now,
        )?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for v in &seen {
            *counts.entry(v.clone()).or_default() += 1;
        }
        for n in 0..INPUTS {
            match counts.remove(&format!("out-{n}")) {
                Some(1) => {}
                Some(k) => return Err(format!("out-{n} is committed {k} times")),
                None => return Err(format!("out-{n} is not in the committed data")),
            }
        }
        if let Some((v, k)) = counts.into_iter().next() {
            return Err(format!(
                "read_committed returned {v:?} ({k} times), which no input produced"
            ));
        }
        let all = read_all(
            &self.cluster,
            OUTPUT,
            &ends,
            IsolationLevel::ReadUncommitted,
            seed,
            now,
        )?;
        self.report.aborted_records = (all.len() - seen.len()) as u64;
        self.report.versions = self.versions.borrow().clone();
        Ok(self.report)
    }
}

fn run_seeds(kind: Fault, v2: bool) {
    let wall = Instant::now();
    let mut totals = Report::default();
    let mut failures = Vec::new();
    let range = seeds();
    let count = range.end - range.start;
    for seed in range {
        match Scenario::new(seed, kind, v2).run() {
            Ok(r) => {
                totals.transactions += r.transactions;
                totals.commits += r.commits;
                totals.aborts += r.aborts;
                totals.instances += r.instances;
                totals.crashes += r.crashes;
                totals.zombies += r.zombies;
                totals.stalls += r.stalls;
                totals.coordinator_crashes += r.coordinator_crashes;
                totals.crashes_mid_commit += r.crashes_mid_commit;
                totals.fenced += r.fenced;
                totals.aborted_records += r.aborted_records;
                totals.versions.add(&r.versions);
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{kind:?} (protocol v2: {v2}): {} of {count} seeds failed; replay one with \
         KAFKIT_SIM_SEED_START=<seed> KAFKIT_SIM_SEEDS=1:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if let Err(e) = totals.versions.check(v2) {
        panic!("{kind:?}: {e}");
    }
    // The scenario did what it says.
    assert!(
        totals.commits > count * 10 && totals.aborts > count && totals.aborted_records > count,
        "{kind:?}: {totals:?}"
    );
    match kind {
        Fault::ProducerCrashes => assert!(
            totals.crashes > count && totals.aborted_records > count,
            "{totals:?}"
        ),
        Fault::Zombies => assert!(
            totals.zombies > count && totals.fenced > count,
            "{totals:?}"
        ),
        Fault::TransactionTimeouts => assert!(
            totals.stalls > count && totals.fenced > count / 2,
            "{totals:?}"
        ),
        // A move delays transactions but fences nobody: every in-flight call completes at
        // the next coordinator.
        Fault::CoordinatorMoves => assert!(
            totals.coordinator_crashes > count
                && totals.crashes_mid_commit > count / 20
                && totals.fenced == 0,
            "{totals:?}"
        ),
        Fault::Mixed => assert!(
            totals.crashes > count && totals.zombies > count && totals.coordinator_crashes > count,
            "{totals:?}"
        ),
    }
    eprintln!(
        "{kind:?} (protocol v2: {v2}): {count} seeds, {totals:?}, {:?} of wall time",
        wall.elapsed()
    );
}

#[test]
fn producer_crashes() {
    run_seeds(Fault::ProducerCrashes, false);
}

#[test]
fn zombie_fencing() {
    run_seeds(Fault::Zombies, false);
}

#[test]
fn transaction_timeouts() {
    run_seeds(Fault::TransactionTimeouts, false);
}

#[test]
fn coordinator_moves() {
    run_seeds(Fault::CoordinatorMoves, false);
}

#[test]
fn mixed_faults() {
    run_seeds(Fault::Mixed, false);
}

#[test]
fn mixed_faults_protocol_v2() {
    run_seeds(Fault::Mixed, true);
}

#[test]
fn consume_transform_produce_across_rebalances_and_crashes() {
    ctp::run_seeds();
}

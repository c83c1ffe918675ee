//! The seeded producer fault harness shared by `sim_producer_faults.rs` (an idempotent
//! producer on the model's own release) and `sim_producer_faults_legacy.rs` (a producer without
//! idempotence on clusters configured as 0.9 and 0.10.0): the scenario loop, the fault kinds,
//! the traffic, and the invariants checked against the partition logs once the faults ended
//! (see [`Scenario::check`]). Each test binary uses part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::config::ProducerConfig;
use kafkit_core::network::{NetOptions, Rng};
use kafkit_core::producer::{
    ProduceError, ProducerCore, ProducerEvent, ProducerRecord, RecordMetadata,
};
use kafkit_core::protocol::produce::response::{
    LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafkit_core::protocol::{ApiKey, ErrorCode, ProduceResponse, RequestBody, ResponseBody};
use kafkit_core::records::{DecodeOptions, RecordSet};
use kafkit_core::OpId;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, Endpoint, HookAction, LinkConfig};

pub type Simulation = kafkit_sim::Simulation<ProducerCore>;

pub const TOPIC: &str = "orders";
pub const PARTITIONS: i32 = 4;
pub const BROKERS: usize = 3;
/// The application sends a few records every tick.
pub const TICK: Duration = Duration::from_millis(20);
/// Faults happen in [FAULTS_FROM, FAULTS_UNTIL); everything is healed at FAULTS_UNTIL.
pub const FAULTS_FROM: Duration = Duration::from_millis(300);
pub const FAULTS_UNTIL: Duration = Duration::from_secs(4);
/// Sending stops here; then the producer is flushed.
pub const SEND_UNTIL: Duration = Duration::from_millis(4_500);
/// Everything must have completed by then (virtual time).
pub const COMPLETE_BY: Duration = Duration::from_secs(90);
/// Wall-clock milliseconds at the simulation's start (CreateTime of unstamped records).
pub const WALL_START_MS: i64 = 1_750_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// crash_broker / restart_broker, with a replication delay so that leaders lose what
    /// their followers had not copied yet.
    BrokerCrashes,
    /// move_leader to another in-sync replica.
    LeaderMoves,
    /// TCP resets of every connection to a broker, at random instants; and resets that take
    /// a Produce request down with them before the broker reads it.
    DroppedConnections,
    /// Produce answered with a retriable error instead of being appended.
    InjectedErrors,
    /// Produce appended, but its answer lost with the connection: the retry is a duplicate.
    LostResponses,
    /// All of the above at once.
    Mixed,
}

pub fn seeds() -> std::ops::Range<u64> {
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

/// What the Produce hook does, decided from its own seeded generator (the order of requests
/// is deterministic, so are its choices).
struct HookState {
    rng: Rng,
    /// Injecting now (inside the fault window of a scenario that injects).
    active: bool,
    /// 1 in `error_odds` requests is answered with a retriable error.
    error_odds: u64,
    /// 1 in `lose_odds` requests is appended, then its answer is lost.
    lose_odds: u64,
    /// 1 in `reset_odds` requests is lost in a connection reset before the broker reads it.
    reset_odds: u64,
    /// The loop must reset every connection now (before the answer to the request just seen
    /// arrives).
    reset_now: bool,
    injected_errors: u64,
    lost_responses: u64,
    lost_requests: u64,
}

/// Retriable errors a broker answers Produce with (Java's producer retries every one).
const RETRIABLE: [ErrorCode; 6] = [
    ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ErrorCode::REQUEST_TIMED_OUT,
    ErrorCode::NOT_ENOUGH_REPLICAS,
    ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ErrorCode::LEADER_NOT_AVAILABLE,
    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
];

/// A Produce response failing every partition of `body` with `code`.
fn error_response(body: &RequestBody, code: ErrorCode) -> HookAction {
    let RequestBody::Produce(req) = body else {
        return HookAction::Pass;
    };
    HookAction::Respond(ResponseBody::Produce(ProduceResponse {
        responses: req
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|p| PartitionProduceResponse {
                        index: p.index,
                        error_code: code.code(),
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        error_message: Some(format!("injected {code}")),
                        current_leader: LeaderIdAndEpoch {
                            leader_id: -1,
                            leader_epoch: -1,
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }))
}

/// The cluster and producer a scenario runs: the release the cluster imitates and whether the
/// producer is idempotent (what each one guarantees differs: see [`Scenario::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// The release profile (`ClusterConfig::release`), `None` for the model's own (4.0).
    pub release: Option<&'static str>,
    /// `enable_idempotence`; without it the records also carry no headers (before 0.11 they
    /// cannot).
    pub idempotent: bool,
}

impl Setup {
    /// Kafka 4.0 with an idempotent producer.
    pub const IDEMPOTENT: Setup = Setup {
        release: None,
        idempotent: true,
    };

    /// `release` with a producer without idempotence (the only kind before 0.11).
    pub const fn legacy(release: &'static str) -> Setup {
        Setup {
            release: Some(release),
            idempotent: false,
        }
    }
}

/// One record the application sent.
#[derive(Debug)]
pub struct Sent {
    /// Sent at (virtual, since the start).
    at: Duration,
    /// The partition asked for, if any.
    partition: Option<i32>,
    key: Option<Bytes>,
    value: Bytes,
    /// The explicit timestamp, if any.
    timestamp: Option<i64>,
}

/// Every outcome the core reported, by record (each record's op is its number).
pub type Results = Arc<Mutex<BTreeMap<u64, Vec<Result<RecordMetadata, ProduceError>>>>>;

pub struct Scenario {
    kind: Fault,
    setup: Setup,
    pub sim: Simulation,
    /// The final flush's answer.
    flushed: Option<Result<(), ProduceError>>,
    cluster: Rc<RefCell<Cluster>>,
    hook: Rc<RefCell<HookState>>,
    ticker: Rc<Cell<Option<Instant>>>,
    rng: Rng,
    start: Instant,
    sent: Vec<Sent>,
    pub results: Results,
    /// Broker down: (id, restart at).
    down: Option<(i32, Duration)>,
    /// A dropped-connections fault due: (at, broker).
    drop_at: Option<(Instant, i32)>,
    faults: u64,
}

/// The network options `config` describes, as a driver would build them (no TLS or SASL in
/// the simulation).
fn net_options(config: &ProducerConfig, seed: u64) -> NetOptions {
    let c = &config.common;
    let mut opts = NetOptions::new(vec![
        ("broker-0".into(), 9092),
        ("broker-1".into(), 9093),
        ("broker-2".into(), 9094),
    ]);
    let ms = Duration::from_millis;
    opts.conn.client_id = Some(c.client_id.clone());
    opts.conn.request_timeout = ms(c.request_timeout_ms as u64);
    opts.conn.setup_timeout = ms(c.socket_connection_setup_timeout_ms);
    opts.conn.max_in_flight = c.max_in_flight_requests_per_connection.max(1) as usize;
    opts.reconnect_backoff = ms(c.reconnect_backoff_ms);
    opts.reconnect_backoff_max = ms(c.reconnect_backoff_max_ms);
    opts.retry_backoff = ms(c.retry_backoff_ms);
    opts.metadata_max_age = ms(c.metadata_max_age_ms);
    opts.seed = seed;
    opts
}

impl Scenario {
    pub fn new(seed: u64, kind: Fault, setup: Setup) -> Self {
        let start = Instant::now();
        let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
        let replication_delay = match kind {
            Fault::BrokerCrashes | Fault::Mixed => Duration::from_micros(rng.below(3_000)),
            _ => Duration::ZERO,
        };
        let base = match setup.release {
            Some(name) => ClusterConfig::release(name).expect("a known release"),
            None => ClusterConfig::default(),
        };
        let cluster_config = ClusterConfig {
            brokers: BROKERS,
            replication_factor: 3,
            default_partitions: PARTITIONS,
            seed,
            replication_delay,
            start_time_ms: WALL_START_MS,
            ..base
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(cluster_config, start)));

        let in_flight = 1 + rng.below(5);
        let linger = rng.below(11);
        let batch_size = 256 + rng.below(4096);
        let config = ProducerConfig::builder()
            .set("bootstrap_servers", "broker-0:9092,broker-1:9093")
            .set("acks", "all")
            .set("enable_idempotence", &setup.idempotent.to_string())
            .set(
                "max_in_flight_requests_per_connection",
                &in_flight.to_string(),
            )
            .set("linger_ms", &linger.to_string())
            .set("batch_size", &batch_size.to_string())
            .set("request_timeout_ms", "3000")
            .set("delivery_timeout_ms", "120000")
            .set("retry_backoff_ms", "50")
            .set("retry_backoff_max_ms", "1000")
            .set("reconnect_backoff_ms", "50")
            .set("reconnect_backoff_max_ms", "1000")
            .set("random_seed", &seed.to_string())
            .build()
            .expect("a valid producer config");
        let net = net_options(&config, seed);
        let mut core = ProducerCore::new(config, net).expect("producer core");
        core.handle_wall_clock(start, WALL_START_MS);

        let jitter = Duration::from_micros(rng.below(2_000));
        let mut sim = Simulation::new(core, seed, start)
            .with_links(LinkConfig {
                latency: Duration::from_micros(300),
                jitter,
            })
            .with_max_steps(2_000_000);
        serve_cluster(&mut sim, &cluster);
        let ticker = Rc::new(Cell::new(None));
        sim.add_server("ticker:1", Ticker(ticker.clone()));

        let hook = Rc::new(RefCell::new(HookState {
            rng: Rng::new(seed ^ 0x00ff_00ff_00ff),
            active: false,
            error_odds: 4 + rng.below(8),
            lose_odds: 4 + rng.below(8),
            reset_odds: 6 + rng.below(10),
            reset_now: false,
            injected_errors: 0,
            lost_responses: 0,
            lost_requests: 0,
        }));
        let (inject, lose, reset) = match kind {
            Fault::InjectedErrors => (true, false, false),
            Fault::LostResponses => (false, true, false),
            Fault::DroppedConnections => (false, false, true),
            Fault::Mixed => (true, true, true),
            _ => (false, false, false),
        };
        if inject || lose || reset {
            let h = hook.clone();
            cluster.borrow_mut().set_hook(
                ApiKey::Produce,
                Box::new(move |_, body| {
                    let mut guard = h.borrow_mut();
                    let h = &mut *guard;
                    if !h.active {
                        return HookAction::Pass;
                    }
                    if inject && h.rng.below(h.error_odds) == 0 {
                        let code = RETRIABLE[h.rng.below(RETRIABLE.len() as u64) as usize];
                        h.injected_errors += 1;
                        return error_response(body, code);
                    }
                    if h.reset_now {
                        return HookAction::Pass;
                    }
                    if reset && h.rng.below(h.reset_odds) == 0 {
                        // The request dies with its connection, unread.
                        h.reset_now = true;
                        h.lost_requests += 1;
                        return HookAction::Drop;
                    }
                    if lose && h.rng.below(h.lose_odds) == 0 {
                        // Appended; its answer dies with the connection.
                        h.reset_now = true;
                        h.lost_responses += 1;
                    }
                    HookAction::Pass
                }),
            );
        }
        Scenario {
            kind,
            setup,
            sim,
            flushed: None,
            cluster,
            hook,
            ticker,
            rng,
            start,
            sent: Vec::new(),
            results: Arc::default(),
            down: None,
            drop_at: None,
            faults: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.sim.now() - self.start
    }

    /// Takes in what the core reported: every report of a record is kept, so a record
    /// reported twice shows.
    fn pump(&mut self) {
        for event in self.sim.take_events() {
            match event {
                ProducerEvent::Delivered(d) => {
                    let mut results = self.results.lock().unwrap();
                    for (op, r) in &d {
                        results.entry(op.0).or_default().push(r);
                    }
                    self.sim.core().recycle_deliveries(d);
                }
                ProducerEvent::Admitted { op, result: Err(e) } => {
                    let mut results = self.results.lock().unwrap();
                    results.entry(op.0).or_default().push(Err(e));
                }
                ProducerEvent::Flushed { result, .. } => self.flushed = Some(result),
                _ => {}
            }
        }
    }

    /// Runs the simulation to `until`: resets every connection when the hook asks (so that
    /// the request or answer it marked is lost), and one broker's connections at the instant
    /// a dropped-connections fault chose.
    pub fn advance(&mut self, until: Instant) -> Result<(), String> {
        loop {
            let stop = match self.drop_at {
                Some((at, _)) if at < until => at,
                _ => until,
            };
            self.ticker.set(Some(stop));
            let hook = self.hook.clone();
            self.sim
                .run_until(|s| s.now() >= stop || hook.borrow().reset_now)
                .map_err(|e| format!("{e}"))?;
            self.pump();
            if std::mem::take(&mut self.hook.borrow_mut().reset_now) {
                // The hook does not know which broker it ran on: reset them all.
                for b in 0..BROKERS {
                    self.sim.drop_connections(&broker_addr(b as i32));
                }
                self.pump();
                continue;
            }
            if let Some((at, broker)) = self.drop_at {
                if self.sim.now() >= at {
                    self.drop_at = None;
                    self.sim.drop_connections(&broker_addr(broker));
                    self.pump();
                    continue;
                }
            }
            if self.sim.now() >= until {
                return Ok(());
            }
        }
    }

    /// One tick of steady traffic: 0 to 4 records, keyed, keyless or to a chosen partition.
    pub fn traffic(&mut self) {
        let now = self.sim.now();
        for _ in 0..self.rng.below(5) {
            let n = self.sent.len() as u64;
            let mut record = ProducerRecord::new(TOPIC);
            let mut partition = None;
            let mut key = None;
            match self.rng.below(4) {
                0 | 1 => key = Some(Bytes::from(format!("key-{}", self.rng.below(40)))),
                2 => partition = Some(self.rng.below(PARTITIONS as u64) as i32),
                _ => {}
            }
            // The value names the record; padding varies batch fill.
            let pad = self.rng.below(300) as usize;
            let value = Bytes::from(format!("record {n} {}", "x".repeat(pad)));
            let timestamp = (self.rng.below(3) == 0).then(|| 1_600_000_000_000 + n as i64);
            if let Some(p) = partition {
                record = record.partition(p);
            }
            if let Some(k) = &key {
                record = record.key(k.clone());
            }
            record = record.value(value.clone());
            if self.setup.idempotent {
                record = record.header("n", n.to_string());
            }
            if let Some(ts) = timestamp {
                record = record.timestamp(ts);
            }
            if let Err(e) = self.sim.core().send(Some(OpId(n)), record, now) {
                self.results
                    .lock()
                    .unwrap()
                    .entry(n)
                    .or_default()
                    .push(Err(e));
            }
            self.sent.push(Sent {
                at: now - self.start,
                partition,
                key,
                value,
                timestamp,
            });
        }
    }

    /// Maybe injects a fault; heals what is due.
    pub fn faults(&mut self) {
        let t = self.elapsed();
        let now = self.sim.now();
        let in_window = (FAULTS_FROM..FAULTS_UNTIL).contains(&t);
        self.hook.borrow_mut().active = in_window;
        if let Some((id, at)) = self.down {
            if t >= at || t >= FAULTS_UNTIL {
                self.cluster.borrow_mut().restart_broker(id, now);
                self.down = None;
            }
        }
        // About one fault every 200 ms of the fault window.
        if !in_window || self.rng.below(10) != 0 {
            return;
        }
        let kind = match self.kind {
            Fault::Mixed => [
                Fault::BrokerCrashes,
                Fault::LeaderMoves,
                Fault::DroppedConnections,
            ][self.rng.below(3) as usize],
            k => k,
        };
        let broker = self.rng.below(BROKERS as u64) as i32;
        match kind {
            Fault::BrokerCrashes if self.down.is_none() => {
                let restart = t + Duration::from_millis(100 + self.rng.below(1_500));
                self.cluster.borrow_mut().crash_broker(broker, now);
                self.down = Some((broker, restart));
                self.faults += 1;
            }
            Fault::LeaderMoves => {
                let partition = self.rng.below(PARTITIONS as u64) as i32;
                // Only to an in-sync replica: a move to a lagging one is an unclean election,
                // which may lose acknowledged data by design.
                let in_sync = self
                    .cluster
                    .borrow()
                    .partition(TOPIC, partition)
                    .is_some_and(|p| p.isr.contains(&broker) && p.leader != broker);
                if in_sync
                    && self
                        .cluster
                        .borrow_mut()
                        .move_leader(TOPIC, partition, broker, now)
                        .is_ok()
                {
                    self.faults += 1;
                }
            }
            Fault::DroppedConnections if self.drop_at.is_none() => {
                // At a random instant of the coming tick, when requests may be in flight.
                let at = now + Duration::from_micros(self.rng.below(TICK.as_micros() as u64));
                self.drop_at = Some((at, broker));
                self.faults += 1;
            }
            _ => {}
        }
    }

    pub fn run(mut self) -> Result<Report, String> {
        let seed = self.sim.seed();
        let kind = self.kind;
        let release = self.setup.release.unwrap_or("4");
        let fail = |what: String| format!("{kind:?} on {release} seed {seed}: {what}");
        while self.elapsed() < SEND_UNTIL {
            self.faults();
            self.traffic();
            let until = self.sim.now() + TICK;
            self.advance(until).map_err(fail)?;
        }
        self.hook.borrow_mut().active = false;
        if let Some((id, _)) = self.down.take() {
            let now = self.sim.now();
            self.cluster.borrow_mut().restart_broker(id, now);
        }
        // Flush, and wait (virtually) until every record completed.
        let now = self.sim.now();
        self.sim.core().flush(OpId(0), None, now);
        self.pump();
        let total = self.sent.len();
        while self.elapsed() < COMPLETE_BY {
            if self.results.lock().unwrap().len() == total && self.flushed.is_some() {
                break;
            }
            let until = self.sim.now() + Duration::from_millis(250);
            self.advance(until).map_err(fail)?;
        }
        let results = std::mem::take(&mut *self.results.lock().unwrap());
        if results.len() != total {
            let missing: Vec<u64> = (0..total as u64)
                .filter(|n| !results.contains_key(n))
                .take(10)
                .collect();
            return Err(fail(format!(
                "{} of {total} sends never completed by {COMPLETE_BY:?} (pending_records {}), \
                 e.g. records {missing:?}",
                total - results.len(),
                self.sim.core().pending_records(),
            )));
        }
        match self.flushed.take() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(fail(format!("flush failed: {e}"))),
            None => return Err(fail("flush never completed".into())),
        }
        let now = self.sim.now();
        let retries = self
            .sim
            .core()
            .metrics(now)
            .to_map()
            .get("record-retry-total")
            .copied()
            .unwrap_or_default() as u64;
        let mut report = self.check(results).map_err(fail)?;
        report.retries = retries;
        Ok(report)
    }

    /// The invariants, against the partition logs: every send completes once and succeeds,
    /// its metadata names the record the log holds there, nothing acknowledged is lost and
    /// nothing unacknowledged is in a log, nothing acknowledged is above the high watermark;
    /// with idempotence also no record twice and each partition in send order.
    fn check(
        &self,
        results: BTreeMap<u64, Vec<Result<RecordMetadata, ProduceError>>>,
    ) -> Result<Report, String> {
        let mut report = Report {
            records: self.sent.len() as u64,
            faults: self.faults,
            injected_errors: self.hook.borrow().injected_errors,
            lost_responses: self.hook.borrow().lost_responses,
            lost_requests: self.hook.borrow().lost_requests,
            ..Report::default()
        };
        // Every send completed exactly once, with success.
        let mut acked: BTreeMap<u64, (RecordMetadata, i64)> = BTreeMap::new();
        for (n, rs) in results {
            let sent = &self.sent[n as usize];
            if rs.len() != 1 {
                return Err(format!("record {n} completed {} times: {rs:?}", rs.len()));
            }
            match rs.into_iter().next().expect("one result") {
                Ok(md) => {
                    if &*md.topic != TOPIC {
                        return Err(format!("record {n}: metadata names topic {}", md.topic));
                    }
                    if sent.partition.is_some_and(|p| p != md.partition) {
                        return Err(format!(
                            "record {n} was sent to partition {:?} but reported in {}",
                            sent.partition, md.partition
                        ));
                    }
                    // An explicit timestamp, or the producer's wall clock at the send.
                    let ts = sent
                        .timestamp
                        .unwrap_or(WALL_START_MS + sent.at.as_millis() as i64);
                    if md.timestamp != ts {
                        return Err(format!(
                            "record {n} has timestamp {ts} (explicit: {:?}), metadata says {}",
                            sent.timestamp, md.timestamp
                        ));
                    }
                    acked.insert(n, (md, ts));
                }
                Err(e) => {
                    return Err(format!(
                        "record {n} (sent at {:?}) failed although retries and a 120 s delivery \
                         timeout should ride out {:?} of faults: {e}",
                        sent.at, FAULTS_UNTIL
                    ))
                }
            }
        }
        // The logs: decode every record (record batches, or message sets before 0.11).
        let cluster = self.cluster.borrow();
        let opts = DecodeOptions {
            check_crcs: true,
            max_decompressed_size: 64 << 20,
            ..DecodeOptions::default()
        };
        let idempotent = self.setup.idempotent;
        // The producer writes the release's own format (message sets before 0.11).
        let format = self.setup.release.map_or(2, |r| {
            ClusterConfig::release(r)
                .expect("a known release")
                .message_format
        });
        let mut in_log: BTreeMap<(i32, i64), u64> = BTreeMap::new();
        for partition in 0..PARTITIONS {
            let log = cluster
                .partition(TOPIC, partition)
                .ok_or_else(|| format!("partition {partition} missing"))?;
            let hw = log.high_watermark();
            let mut last: Option<u64> = None;
            for stored in log.batches() {
                if idempotent && (stored.producer_id < 0 || stored.base_sequence < 0) {
                    return Err(format!(
                        "{TOPIC}-{partition}@{}: a batch without idempotence (producer id {}, \
                         sequence {})",
                        stored.base_offset, stored.producer_id, stored.base_sequence
                    ));
                }
                for batch in RecordSet::new(stored.data.clone(), opts) {
                    let batch = batch
                        .map_err(|e| format!("{TOPIC}-{partition}: undecodable batch: {e}"))?;
                    if batch.magic() != format {
                        return Err(format!(
                            "{TOPIC}-{partition}@{}: magic {} written to a cluster of format {format}",
                            batch.base_offset(),
                            batch.magic()
                        ));
                    }
                    // Magic 0 message sets (before 0.10) have no timestamps.
                    let stamped = batch.magic() >= 1;
                    for r in batch.records() {
                        let r = r.map_err(|e| format!("{TOPIC}-{partition}: bad record: {e}"))?;
                        let value = r.value.clone().unwrap_or_default();
                        let n = record_number(&value).ok_or_else(|| {
                            format!("{TOPIC}-{partition}@{}: foreign value {value:?}", r.offset)
                        })?;
                        let sent = self
                            .sent
                            .get(n as usize)
                            .ok_or_else(|| format!("record {n} in the log was never sent"))?;
                        if r.value.as_ref() != Some(&sent.value)
                            || r.key != sent.key
                            || (stamped && acked.get(&n).is_some_and(|(_, ts)| r.timestamp != *ts))
                        {
                            return Err(format!(
                                "{TOPIC}-{partition}@{}: record {n} is stored with other bytes",
                                r.offset
                            ));
                        }
                        // Without idempotence a retry after a lost answer writes a record
                        // again, and with several requests in flight a retried one may land
                        // after a later one (as in Java): only an idempotent producer
                        // promises each record once and in order.
                        if let (Some(prev), true) = (last, idempotent) {
                            if n == prev {
                                return Err(format!(
                                    "{TOPIC}-{partition}: record {n} duplicated (at offset {})",
                                    r.offset
                                ));
                            }
                            if n < prev {
                                return Err(format!(
                                    "{TOPIC}-{partition}: record {n} stored after record {prev} \
                                     (offset {}): send order broken",
                                    r.offset
                                ));
                            }
                        }
                        last = Some(n);
                        if r.offset >= hw {
                            return Err(format!(
                                "{TOPIC}-{partition}@{}: record {n} above the high watermark \
                                 {hw} after recovery",
                                r.offset
                            ));
                        }
                        if let Some(prev) = in_log.insert((partition, r.offset), n) {
                            return Err(format!(
                                "{TOPIC}-{partition}@{}: two records ({prev}, {n}) at one offset",
                                r.offset
                            ));
                        }
                    }
                }
            }
        }
        let mut where_in_log: BTreeMap<u64, Vec<(i32, i64)>> = BTreeMap::new();
        for (&at, &n) in &in_log {
            let copies = where_in_log.entry(n).or_default();
            copies.push(at);
            if idempotent && copies.len() > 1 {
                return Err(format!(
                    "record {n} is in the log twice: {TOPIC}-{}@{} and {TOPIC}-{}@{}",
                    copies[0].0, copies[0].1, at.0, at.1
                ));
            }
        }
        report.duplicates = where_in_log.values().map(|c| c.len() as u64 - 1).sum();
        // Every acknowledged record is where its metadata says (and, with idempotence,
        // nowhere else); nothing unacknowledged is there.
        for (n, (md, _)) in &acked {
            match where_in_log.get(n) {
                Some(copies) if copies.contains(&(md.partition, md.offset)) => {}
                Some(copies) => {
                    return Err(format!(
                        "record {n} acknowledged at {TOPIC}-{}@{} but stored at {copies:?}",
                        md.partition, md.offset
                    ))
                }
                None => {
                    return Err(format!(
                        "record {n} acknowledged at {TOPIC}-{}@{} is not in the log (lost)",
                        md.partition, md.offset
                    ))
                }
            }
        }
        if let Some(n) = where_in_log.keys().find(|n| !acked.contains_key(n)) {
            return Err(format!("record {n} is in the log but was not acknowledged"));
        }
        report.batches = (0..PARTITIONS)
            .filter_map(|p| cluster.partition(TOPIC, p))
            .map(|l| l.batch_count() as u64)
            .sum();
        Ok(report)
    }
}

pub fn broker_addr(id: i32) -> String {
    format!("broker-{id}:{}", 9092 + id)
}

/// `n` of a value `record {n} xxx...`.
pub fn record_number(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value).ok()?;
    s.strip_prefix("record ")?.split(' ').next()?.parse().ok()
}

#[derive(Debug, Default)]
pub struct Report {
    records: u64,
    batches: u64,
    faults: u64,
    injected_errors: u64,
    lost_responses: u64,
    lost_requests: u64,
    /// Records the producer sent again (metric `record-retry-total`).
    retries: u64,
    /// Second copies of records in the logs (only without idempotence).
    duplicates: u64,
}

pub fn run_seeds(kind: Fault, setup: Setup) {
    let wall = Instant::now();
    let mut totals = Report::default();
    let mut failures = Vec::new();
    let range = seeds();
    let count = range.end - range.start;
    for seed in range {
        match Scenario::new(seed, kind, setup).run() {
            Ok(r) => {
                totals.records += r.records;
                totals.batches += r.batches;
                totals.faults += r.faults;
                totals.injected_errors += r.injected_errors;
                totals.lost_responses += r.lost_responses;
                totals.lost_requests += r.lost_requests;
                totals.retries += r.retries;
                totals.duplicates += r.duplicates;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{kind:?} ({setup:?}): {} of {count} seeds failed; replay one with \
         KAFKIT_SIM_SEED_START=<seed> \
         KAFKIT_SIM_SEEDS=1:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The scenario did what it says: traffic flowed, faults happened and made the producer
    // retry.
    assert!(totals.records > count * 100, "{kind:?}: {totals:?}");
    assert!(totals.retries > count, "{kind:?}: {totals:?}");
    match kind {
        Fault::InjectedErrors => assert!(totals.injected_errors > count, "{totals:?}"),
        Fault::LostResponses => assert!(totals.lost_responses > count, "{totals:?}"),
        Fault::DroppedConnections => assert!(
            totals.faults > count * 2 && totals.lost_requests > count,
            "{totals:?}"
        ),
        Fault::Mixed => assert!(
            totals.faults > count && totals.injected_errors > count,
            "{totals:?}"
        ),
        _ => assert!(totals.faults > count * 2, "{kind:?}: {totals:?}"),
    }
    eprintln!(
        "{kind:?} ({setup:?}): {count} seeds, {totals:?}, {:?} of wall time",
        wall.elapsed()
    );
}

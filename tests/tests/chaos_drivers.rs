//! The chaos scenarios ([`kafkit_tests::chaos_scenarios`]) on every driver — tokio, smol,
//! async-std and blocking — over real sockets through the seeded chaos proxy
//! ([`kafkit_tests::chaos`]).
//!
//! By default each test starts its own 3-broker development broker advertising the proxy's
//! ports. With `KAFKIT_CHAOS_UPSTREAM=host:port` and `KAFKIT_CHAOS_LISTEN=host:port` the
//! scenarios run instead against an external single-broker cluster (tansu in `.ci/peers`)
//! listening on UPSTREAM and advertising LISTEN, where the proxy listens; those tests then run
//! one at a time. `KAFKIT_CHAOS_PEER=tansu` names that broker's known deviations from Kafka
//! ([`Deviations::tansu`]: end offsets short of the records served, acknowledgements without
//! an offset), which the scenarios then allow for; any other external broker is held to
//! Kafka's behaviour.
//!
//! Knobs: `KAFKIT_CHAOS_SEED` (replay a run; by default a fresh seed, printed),
//! `KAFKIT_CHAOS_RECORDS` (records per scenario, default 1,500; more makes a longer run).
//! Each scenario prints one line of figures (cuts, records, lost, duplicated) on stderr: run
//! with `-- --nocapture` to see them.
//!
//! A transactional scenario (tokio and blocking drivers, development broker with
//! `transaction.version` 2, so kafkit speaks KIP-890's protocol v2) commits transactions of
//! a few records while the proxy cuts connections, aborting one in seven on purpose and any
//! transaction whose commit fails abortably (then sending its records again in the next);
//! a read_committed consumer afterwards must see every committed record exactly once and no
//! record of an aborted transaction. It prints cuts, records, committed and aborted
//! transactions.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_core::admin::NewTopic;
use kafkit_core::config::{AdminConfig, ConsumerConfig, IsolationLevel, ProducerConfig};
use kafkit_core::consumer::{ConsumerError, ConsumerRecords, TopicPartition};
use kafkit_core::driver::{ConsumerHandle, DeliveryFuture, ProducerHandle};
use kafkit_core::producer::{ProduceError, ProducerRecord, RecordMetadata};
use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};
use kafkit_tests::chaos::{ChaosProxy, Faults};
use kafkit_tests::chaos_scenarios::{
    self as scenarios, ChaosConsumer, ChaosDriver, ChaosEnv, ChaosProducer, Deviations,
    ScenarioReport,
};

// ---- the drivers ----

/// How an async driver's futures are run from a test thread.
trait BlockOn: Clone + Send + Sync + 'static {
    fn block_on<F: Future>(&self, f: F) -> F::Output;
}

#[derive(Clone)]
struct TokioRt(Arc<tokio::runtime::Runtime>);

impl BlockOn for TokioRt {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
}

#[derive(Clone)]
struct SmolRt;

impl BlockOn for SmolRt {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        smol::block_on(f)
    }
}

#[derive(Clone)]
struct Executor;

impl BlockOn for Executor {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        futures_executor::block_on(f)
    }
}

struct AsyncProducer<B>(ProducerHandle, B);

impl<B: BlockOn> ChaosProducer for AsyncProducer<B> {
    fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        self.1.block_on(self.0.enqueue(record))
    }
    fn wait(&self, delivery: DeliveryFuture) -> Result<RecordMetadata, ProduceError> {
        self.1.block_on(delivery)
    }
    fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.1.block_on(self.0.flush(Some(timeout)))
    }
    fn close(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.1.block_on(self.0.close(Some(timeout)))
    }
}

struct AsyncConsumer<B>(ConsumerHandle, B);

impl<B: BlockOn> ChaosConsumer for AsyncConsumer<B> {
    fn assign(&self, partitions: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        self.1.block_on(self.0.assign(partitions))
    }
    fn subscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        self.1.block_on(self.0.subscribe([topic]))
    }
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, ConsumerError> {
        self.1.block_on(self.0.poll(timeout))
    }
    fn commit(&self) -> Result<(), ConsumerError> {
        self.1.block_on(self.0.commit(None))
    }
    fn position(&self, partition: TopicPartition) -> Result<i64, ConsumerError> {
        self.1.block_on(self.0.position(partition))
    }
    fn end_offsets(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.1.block_on(self.0.end_offsets(partitions))
    }
    fn close(&self) -> Result<(), ConsumerError> {
        self.1.block_on(self.0.close())
    }
}

struct Tokio(TokioRt);

impl ChaosDriver for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn producer(&self, config: &ProducerConfig) -> Box<dyn ChaosProducer> {
        let _guard = self.0 .0.enter();
        let p = kafkit_tokio::producer(config).expect("a tokio producer");
        Box::new(AsyncProducer(p, self.0.clone()))
    }
    fn consumer(&self, config: &ConsumerConfig) -> Box<dyn ChaosConsumer> {
        let _guard = self.0 .0.enter();
        let c = kafkit_tokio::consumer(config).expect("a tokio consumer");
        Box::new(AsyncConsumer(c, self.0.clone()))
    }
}

fn tokio_driver() -> Tokio {
    Tokio(TokioRt(Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    )))
}

struct Smol;

impl ChaosDriver for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }
    fn producer(&self, config: &ProducerConfig) -> Box<dyn ChaosProducer> {
        let p = kafkit_smol::producer(config).expect("a smol producer");
        Box::new(AsyncProducer(p, SmolRt))
    }
    fn consumer(&self, config: &ConsumerConfig) -> Box<dyn ChaosConsumer> {
        let c = kafkit_smol::consumer(config).expect("a smol consumer");
        Box::new(AsyncConsumer(c, SmolRt))
    }
}

struct AsyncStd;

impl ChaosDriver for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }
    fn producer(&self, config: &ProducerConfig) -> Box<dyn ChaosProducer> {
        let p = kafkit_async_std::producer(config).expect("an async-std producer");
        Box::new(AsyncProducer(p, Executor))
    }
    fn consumer(&self, config: &ConsumerConfig) -> Box<dyn ChaosConsumer> {
        let c = kafkit_async_std::consumer(config).expect("an async-std consumer");
        Box::new(AsyncConsumer(c, Executor))
    }
}

struct Blocking;

struct BlockingProducer(kafkit_blocking::Producer);

impl ChaosProducer for BlockingProducer {
    fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        self.0.enqueue(record)
    }
    fn wait(&self, delivery: DeliveryFuture) -> Result<RecordMetadata, ProduceError> {
        futures_executor::block_on(delivery)
    }
    fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.0.flush(Some(timeout))
    }
    fn close(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.0.close(Some(timeout))
    }
}

struct BlockingConsumer(kafkit_blocking::Consumer);

impl ChaosConsumer for BlockingConsumer {
    fn assign(&self, partitions: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        self.0.assign(partitions)
    }
    fn subscribe(&self, topic: &str) -> Result<(), ConsumerError> {
        self.0.subscribe([topic])
    }
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, ConsumerError> {
        self.0.poll(timeout)
    }
    fn commit(&self) -> Result<(), ConsumerError> {
        self.0.commit(None)
    }
    fn position(&self, partition: TopicPartition) -> Result<i64, ConsumerError> {
        self.0.position(&partition)
    }
    fn end_offsets(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.0.end_offsets(&partitions)
    }
    fn close(&self) -> Result<(), ConsumerError> {
        self.0.close()
    }
}

impl ChaosDriver for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn producer(&self, config: &ProducerConfig) -> Box<dyn ChaosProducer> {
        let p = kafkit_blocking::Producer::start(config).expect("a blocking producer");
        Box::new(BlockingProducer(p))
    }
    fn consumer(&self, config: &ConsumerConfig) -> Box<dyn ChaosConsumer> {
        let c = kafkit_blocking::Consumer::start(config).expect("a blocking consumer");
        Box::new(BlockingConsumer(c))
    }
}

// ---- the brokers behind the proxy ----

/// The development broker (or nothing, for an external cluster) and the proxy in front.
struct Setup {
    proxy: ChaosProxy,
    _broker: Option<DevBroker>,
    label: &'static str,
    deviations: Deviations,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn seed() -> u64 {
    match env_var("KAFKIT_CHAOS_SEED") {
        Some(s) => s.parse().expect("KAFKIT_CHAOS_SEED is a u64"),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

fn records() -> usize {
    env_var("KAFKIT_CHAOS_RECORDS").map_or(1_500, |s| {
        s.parse().expect("KAFKIT_CHAOS_RECORDS is a count")
    })
}

fn setup() -> Setup {
    setup_with(0)
}

/// [`setup`] with the development broker's `transaction.version` at `level`.
fn setup_with(transaction_version: i16) -> Setup {
    let seed = seed();
    if let Some(upstream) = env_var("KAFKIT_CHAOS_UPSTREAM") {
        let listen = env_var("KAFKIT_CHAOS_LISTEN")
            .expect("KAFKIT_CHAOS_LISTEN: the address the external broker advertises");
        let upstream = std::net::ToSocketAddrs::to_socket_addrs(&upstream)
            .expect("KAFKIT_CHAOS_UPSTREAM resolves")
            .next()
            .expect("KAFKIT_CHAOS_UPSTREAM has an address");
        let bound = ChaosProxy::bind_at(&listen)
            .unwrap_or_else(|e| panic!("binding the proxy on {listen}: {e}"));
        return Setup {
            proxy: bound.start(vec![upstream], Faults::none(), seed),
            _broker: None,
            label: "external",
            deviations: peer_deviations(),
        };
    }
    let bound = ChaosProxy::bind(3).expect("binding the proxy's listeners");
    let mut config = DevBrokerConfig::new(3).advertise(bound.advertised());
    // A killed member must leave the group in seconds, not the broker's default 6 s minimum.
    config.cluster.group_min_session_timeout_ms = 1_000;
    config.cluster.transaction_version = transaction_version;
    let broker = DevBroker::start(config).expect("starting the development broker");
    let proxy = bound.start(broker.addresses().to_vec(), Faults::none(), seed);
    Setup {
        proxy,
        _broker: Some(broker),
        label: "dev-broker",
        deviations: Deviations::default(),
    }
}

/// The external broker's known deviations, named by `KAFKIT_CHAOS_PEER` (`tansu`); none when
/// unset, so that any other cluster is held to Kafka's behaviour.
fn peer_deviations() -> Deviations {
    match env_var("KAFKIT_CHAOS_PEER").as_deref() {
        None => Deviations::default(),
        Some("tansu") => Deviations::tansu(),
        Some(other) => panic!("KAFKIT_CHAOS_PEER: unknown peer {other:?} (known: tansu)"),
    }
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let config = AdminConfig::builder()
        .set("bootstrap_servers", bootstrap)
        .build()
        .expect("an admin config");
    let admin = kafkit_blocking::Admin::start(&config).expect("an admin client");
    let results = admin
        .create_topics(vec![NewTopic::new(topic, partitions, 1)], false)
        .unwrap_or_else(|e| panic!("creating {topic}: {e}"));
    for (t, r) in results {
        r.unwrap_or_else(|e| panic!("creating {t}: {e}"));
    }
}

/// Runs `scenario` against a fresh setup with the rough faults, on a thread of its own so
/// that a hung call fails the test (naming the seed) instead of hanging it.
fn run(
    driver: impl ChaosDriver + Send + 'static,
    scenario: fn(&dyn ChaosDriver, &ChaosEnv<'_>) -> ScenarioReport,
) {
    // An external cluster's proxy listens on the one port the broker advertises: one test
    // at a time there.
    static EXTERNAL: Mutex<()> = Mutex::new(());
    let _external = env_var("KAFKIT_CHAOS_UPSTREAM")
        .map(|_| EXTERNAL.lock().unwrap_or_else(|e| e.into_inner()));
    let setup = setup();
    let seed = setup.proxy.seed();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bootstrap = setup.proxy.bootstrap();
        let create =
            move |topic: &str, partitions: i32| create_topic(&bootstrap, topic, partitions);
        let report = scenario(
            &driver,
            &ChaosEnv {
                proxy: &setup.proxy,
                faults: Faults::rough(),
                create_topic: &create,
                records: records(),
                label: setup.label,
                deviations: setup.deviations,
            },
        );
        // The proxy's port is free again before the next test may take it.
        drop(setup);
        let _ = tx.send(report);
    });
    // Generous: the scenario's own phases give up after 90 s each.
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(report) => report.assert_ok(),
        Err(e) => panic!("the scenario did not finish (seed {seed}): {e}"),
    }
}

macro_rules! chaos_tests {
    ($module:ident, $driver:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn idempotent_produce() {
                run($driver, scenarios::idempotent_produce);
            }

            #[test]
            fn consume_to_end() {
                run($driver, scenarios::consume_to_end);
            }

            #[test]
            fn group_with_member_killed() {
                run($driver, scenarios::group_with_member_killed);
            }
        }
    };
}

chaos_tests!(on_tokio, tokio_driver());
chaos_tests!(on_smol, Smol);
chaos_tests!(on_async_std, AsyncStd);
chaos_tests!(on_blocking, Blocking);

// ---- transactions through the proxy ----

/// A transactional producer of one driver, called from a test thread.
trait TxnProducer: Send {
    fn init(&self) -> Result<(), ProduceError>;
    fn begin(&self) -> Result<(), ProduceError>;
    fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError>;
    fn commit(&self) -> Result<(), ProduceError>;
    fn abort(&self) -> Result<(), ProduceError>;
    fn close(&self, timeout: Duration) -> Result<(), ProduceError>;
}

impl TxnProducer for AsyncProducer<TokioRt> {
    fn init(&self) -> Result<(), ProduceError> {
        self.1.block_on(self.0.init_transactions())
    }
    fn begin(&self) -> Result<(), ProduceError> {
        self.1.block_on(self.0.begin_transaction())
    }
    fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        self.1.block_on(self.0.enqueue(record))
    }
    fn commit(&self) -> Result<(), ProduceError> {
        self.1.block_on(self.0.commit_transaction())
    }
    fn abort(&self) -> Result<(), ProduceError> {
        self.1.block_on(self.0.abort_transaction())
    }
    fn close(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.1.block_on(self.0.close(Some(timeout)))
    }
}

impl TxnProducer for BlockingProducer {
    fn init(&self) -> Result<(), ProduceError> {
        self.0.init_transactions()
    }
    fn begin(&self) -> Result<(), ProduceError> {
        self.0.begin_transaction()
    }
    fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        self.0.enqueue(record)
    }
    fn commit(&self) -> Result<(), ProduceError> {
        self.0.commit_transaction()
    }
    fn abort(&self) -> Result<(), ProduceError> {
        self.0.abort_transaction()
    }
    fn close(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.0.close(Some(timeout))
    }
}

/// Records per transaction, and one transaction in this many is aborted on purpose.
const TXN_RECORDS: usize = 20;
const APP_ABORT_EVERY: usize = 7;

/// The transactional scenario (see the module docs) on `driver`; `producer` makes its
/// transactional producer.
fn transactional_scenario(
    driver: &dyn ChaosDriver,
    producer: &dyn Fn(&ProducerConfig) -> Box<dyn TxnProducer>,
) {
    if env_var("KAFKIT_CHAOS_UPSTREAM").is_some() {
        // The external peer's transaction support is not what this scenario is about. Asked
        // before binding: the external broker's one proxy port is taken by the other tests.
        eprintln!(
            "chaos transactional/{}: skipped on an external cluster",
            driver.name()
        );
        return;
    }
    let setup = setup_with(2);
    let seed = setup.proxy.seed();
    let bootstrap = setup.proxy.bootstrap();
    let topic = kafkit_tests::cluster::unique_topic(driver.name(), "chaos-txn");
    create_topic(&bootstrap, &topic, 3);
    let config = {
        let mut c = scenarios::producer_config(&bootstrap);
        c.set("transactional_id", &format!("{topic}-txn"))
            .expect("transactional_id");
        c.set("transaction_timeout_ms", "60000").expect("timeout");
        c.set("max_block_ms", "30000").expect("max_block_ms");
        c
    };
    let before = setup.proxy.figures();
    setup.proxy.set_faults(Faults::rough());
    let p = producer(&config);
    let mut failures: Vec<String> = Vec::new();
    let mut init = p.init();
    for _ in 0..5 {
        match init {
            Err(ProduceError::MaxBlockTimeout { .. }) => init = p.init(),
            _ => break,
        }
    }
    if let Err(e) = init {
        panic!("init_transactions (seed {seed}): {e}");
    }
    // value -> committed?
    let mut written: BTreeMap<String, bool> = BTreeMap::new();
    let (mut committed, mut aborted) = (0usize, 0usize);
    let total = records();
    let mut next = 0usize;
    let mut attempt = 0usize;
    let started = std::time::Instant::now();
    while next < total && failures.is_empty() {
        attempt += 1;
        if started.elapsed() > Duration::from_secs(180) {
            failures.push(format!("not done after 180 s: {next} of {total} committed"));
            break;
        }
        if let Err(e) = p.begin() {
            failures.push(format!("begin_transaction: {e}"));
            break;
        }
        let end = (next + TXN_RECORDS).min(total);
        let mut values = Vec::new();
        let mut send_failed = None;
        for i in next..end {
            let value = format!("{i}:{attempt}");
            let record = ProducerRecord::new(topic.as_str())
                .key(format!("k{i}"))
                .value(value.clone());
            match p.enqueue(record) {
                Ok(_) => values.push(value),
                Err(e) => {
                    send_failed = Some(e);
                    break;
                }
            }
        }
        let on_purpose = attempt.is_multiple_of(APP_ABORT_EVERY);
        let outcome = match send_failed {
            Some(e) => Err(e),
            None if on_purpose => Err(ProduceError::TxnAborted),
            None => p.commit(),
        };
        match outcome {
            Ok(()) => {
                committed += 1;
                written.extend(values.into_iter().map(|v| (v, true)));
                next = end;
            }
            Err(ProduceError::Fatal(e)) => {
                failures.push(format!("the producer failed fatally: {e}"));
                break;
            }
            Err(e) => {
                // An abortable error (or the application's choice): abort, send again.
                if !on_purpose {
                    eprintln!("  transaction {attempt} aborted after: {e}");
                }
                if let Err(e) = p.abort() {
                    failures.push(format!("abort_transaction: {e}"));
                    break;
                }
                aborted += 1;
                written.extend(values.into_iter().map(|v| (v, false)));
            }
        }
    }
    let _ = p.close(Duration::from_secs(30));
    let after = setup.proxy.figures();
    setup.proxy.set_faults(Faults::none());

    // Read back with the faults off.
    let mut cc = scenarios::consumer_config(&bootstrap, None);
    cc.isolation_level = IsolationLevel::ReadCommitted;
    let consumer = driver.consumer(&cc);
    consumer
        .assign(
            (0..3)
                .map(|p| TopicPartition::new(topic.as_str(), p))
                .collect(),
        )
        .expect("assign");
    let want = written.values().filter(|c| **c).count();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut got = 0;
    let mut quiet_since = std::time::Instant::now();
    let read_start = std::time::Instant::now();
    while read_start.elapsed() < Duration::from_secs(90) {
        let records = consumer
            .poll(Duration::from_millis(200))
            .expect("a read_committed poll");
        for r in records.iter() {
            let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            *seen.entry(v).or_default() += 1;
            got += 1;
            quiet_since = std::time::Instant::now();
        }
        // Past the expected count, a quiet second shows nothing more is coming.
        if got >= want && quiet_since.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let _ = consumer.close();
    for (v, committed) in &written {
        match (seen.remove(v).unwrap_or(0), committed) {
            (1, true) | (0, false) => {}
            (n, true) => failures.push(format!("committed record {v} read {n} times")),
            (n, false) => failures.push(format!("aborted record {v} read {n} times")),
        }
    }
    for (v, n) in seen {
        failures.push(format!("read {v:?} ({n} times), which was never written"));
    }
    eprintln!(
        "chaos transactional/{} {total} records, {want} committed records in {committed} \
         transactions, {aborted} aborted ({} records), {} cuts ({} resets) over {} \
         connections, {} responses dropped, {:.1}s, seed {seed}",
        driver.name(),
        written.values().filter(|c| !**c).count(),
        after.cuts - before.cuts,
        after.resets - before.resets,
        after.connections - before.connections,
        after.dropped - before.dropped,
        started.elapsed().as_secs_f64(),
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {}",
        failures[..failures.len().min(10)].join("\n")
    );
    assert!(committed > 0 && aborted > 0, "both outcomes happened");
    assert!(after.cuts > before.cuts, "the proxy cut connections");
}

#[test]
fn transactional_produce_on_tokio() {
    let driver = tokio_driver();
    let rt = driver.0.clone();
    transactional_scenario(&driver, &move |c| {
        let _guard = rt.0.enter();
        let p = kafkit_tokio::producer(c).expect("a tokio producer");
        Box::new(AsyncProducer(p, rt.clone()))
    });
}

#[test]
fn transactional_produce_on_blocking() {
    transactional_scenario(&Blocking, &|c| {
        let p = kafkit_blocking::Producer::start(c).expect("a blocking producer");
        Box::new(BlockingProducer(p))
    });
}

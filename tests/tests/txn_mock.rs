//! kafkit's transactional producer (issue 19) against librdkafka's mock cluster, which has a
//! transaction coordinator (InitProducerId with transactional ids, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn), or against a real cluster when
//! `KAFKA_BOOTSTRAP` is set.
//!
//! What the mock cannot show (librdkafka 2.12, `rdkafka_mock_handlers.c`; see
//! `consumer_transactions.rs`): its EndTxn writes no transaction markers and its Fetch
//! reports `LastStableOffset = HighWatermark` with no aborted transactions, so on the mock an
//! aborted transaction's records are visible to read_committed consumers too, and a
//! TxnOffsetCommit is visible before the EndTxn. Those expectations are checked exactly on a
//! real cluster; on the mock the tests check that kafkit's read_committed consumer returns
//! what librdkafka's own returns, and what the mock does show (the records committed, the
//! producer's calls and their errors, fencing, the committed offsets after the commit).

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use harness::{consumer_config, partitions, rdkafka_config, Cluster, Driver};
use kafkit_core::config::ProducerConfig;
use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::driver::ProducerHandle;
use kafkit_core::producer::{ProduceError, ProducerRecord, TxnState};
use kafkit_tests::cluster::unique_topic;

const PARTS: i32 = 2;
const READ_WITHIN: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(800);

fn producer_config(bootstrap: &str, transactional_id: &str) -> ProducerConfig {
    ProducerConfig::builder()
        .set("bootstrap_servers", bootstrap)
        .set("client_id", "kafkit-txn-interop")
        .set("transactional_id", transactional_id)
        .set("linger_ms", "5")
        .set("max_block_ms", "30000")
        .build()
        .expect("a valid transactional producer config")
}

/// A kafkit transactional producer on one of the drivers, behind one synchronous face.
enum Producer {
    Async(ProducerHandle),
    Blocking(kafkit_blocking::Producer),
}

struct Txn<'a> {
    driver: &'a Driver,
    producer: Producer,
}

impl<'a> Txn<'a> {
    fn start(driver: &'a Driver, config: &ProducerConfig) -> Txn<'a> {
        let producer = match &driver.0 {
            harness::Runtime::Tokio(rt) => {
                let _guard = rt.enter();
                Producer::Async(kafkit_tokio::producer(config).expect("tokio producer"))
            }
            harness::Runtime::Smol => {
                Producer::Async(kafkit_smol::producer(config).expect("smol producer"))
            }
            harness::Runtime::Blocking => Producer::Blocking(
                kafkit_blocking::Producer::start(config).expect("blocking producer"),
            ),
        };
        Txn { driver, producer }
    }

    fn handle(&self) -> &ProducerHandle {
        match &self.producer {
            Producer::Async(h) => h,
            Producer::Blocking(p) => p.handle(),
        }
    }

    fn init(&self) -> Result<(), ProduceError> {
        match &self.producer {
            Producer::Async(h) => self.driver.block_on(h.init_transactions()),
            Producer::Blocking(p) => p.init_transactions(),
        }
    }

    fn begin(&self) -> Result<(), ProduceError> {
        match &self.producer {
            Producer::Async(h) => self.driver.block_on(h.begin_transaction()),
            Producer::Blocking(p) => p.begin_transaction(),
        }
    }

    fn commit(&self) -> Result<(), ProduceError> {
        match &self.producer {
            Producer::Async(h) => self.driver.block_on(h.commit_transaction()),
            Producer::Blocking(p) => p.commit_transaction(),
        }
    }

    fn abort(&self) -> Result<(), ProduceError> {
        match &self.producer {
            Producer::Async(h) => self.driver.block_on(h.abort_transaction()),
            Producer::Blocking(p) => p.abort_transaction(),
        }
    }

    fn send_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: GroupMetadata,
    ) -> Result<(), ProduceError> {
        match &self.producer {
            Producer::Async(h) => self
                .driver
                .block_on(h.send_offsets_to_transaction(offsets, group)),
            Producer::Blocking(p) => p.send_offsets_to_transaction(offsets, group),
        }
    }

    /// Sends `values` to `topic` (record `i` to partition `i % PARTS`) and waits for every
    /// outcome.
    fn send_all(&self, topic: &str, values: &[String]) -> Vec<Result<i64, ProduceError>> {
        self.driver.block_on(async {
            let mut pending = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let r = ProducerRecord::new(topic)
                    .partition(i as i32 % PARTS)
                    .value(v.clone());
                pending.push(self.handle().enqueue(r).await);
            }
            let mut out = Vec::new();
            for p in pending {
                out.push(match p {
                    Ok(d) => d.await.map(|m| m.offset),
                    Err(e) => Err(e),
                });
            }
            out
        })
    }

    fn close(&self) {
        let _ = self
            .driver
            .block_on(self.handle().close(Some(Duration::from_secs(10))));
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Every value a read_committed kafkit consumer on `driver` reads from `topic`, sorted.
fn kafkit_read_committed(
    driver: &Driver,
    bootstrap: &str,
    topic: &str,
    count: usize,
) -> Vec<String> {
    let config = consumer_config(bootstrap, &[("isolation_level", "read_committed")]);
    let consumer = driver.start(&config);
    consumer.assign(partitions(topic, PARTS)).expect("assign");
    let got = consumer.read_exactly(count, READ_WITHIN, QUIET);
    consumer.close().expect("close");
    let mut v: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    v.sort();
    v
}

/// Every value librdkafka's read_committed consumer reads from `topic` until nothing more
/// comes, sorted.
fn rdkafka_read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", "txn-mock-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + READ_WITHIN;
    let mut quiet_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                quiet_since = std::time::Instant::now();
            }
            Some(Err(e)) => panic!("rdkafka consumer: {e}"),
            None if quiet_since.elapsed() > Duration::from_secs(3) => break,
            None => {}
        }
    }
    got.sort();
    got
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn committed_transaction_is_read_exactly(driver: Driver) {
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "txn-commit");
    cluster.create_topic(&topic, PARTS);
    let p = Txn::start(
        &driver,
        &producer_config(&bootstrap, &format!("{topic}-tx")),
    );
    p.init().expect("init_transactions");
    let mut expected = Vec::new();
    for round in 0..2 {
        p.begin().expect("begin_transaction");
        let vals = values(&format!("commit{round}"), 10);
        for r in p.send_all(&topic, &vals) {
            r.expect("a record of the transaction delivered");
        }
        p.commit().expect("commit_transaction");
        expected.extend(vals);
    }
    // A transaction whose records are still buffered when commit is called: the commit
    // sends them first.
    p.begin().expect("begin_transaction");
    let vals = values("buffered", 7);
    let deliveries: Vec<_> = driver.block_on(async {
        let mut d = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            let r = ProducerRecord::new(topic.as_str())
                .partition(i as i32 % PARTS)
                .value(v.clone());
            d.push(p.handle().enqueue(r).await.expect("enqueued"));
        }
        d
    });
    p.commit().expect("commit_transaction flushes first");
    for mut d in deliveries {
        assert!(
            d.try_result().is_some_and(|r| r.is_ok()),
            "a record of a committed transaction was not delivered before the commit returned"
        );
    }
    expected.extend(vals);
    p.close();
    let expected = sorted(expected);
    assert_eq!(
        kafkit_read_committed(&driver, &bootstrap, &topic, expected.len()),
        expected
    );
    assert_eq!(rdkafka_read_committed(&bootstrap, &topic), expected);
}

#[test]
fn committed_transactions_are_read_exactly_tokio() {
    committed_transaction_is_read_exactly(Driver::tokio());
}

#[test]
fn committed_transactions_are_read_exactly_blocking() {
    committed_transaction_is_read_exactly(Driver::blocking());
}

#[test]
fn committed_transactions_are_read_exactly_smol() {
    committed_transaction_is_read_exactly(Driver::smol());
}

#[test]
fn an_aborted_transaction_is_not_read_committed() {
    let driver = Driver::tokio();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "txn-abort");
    cluster.create_topic(&topic, PARTS);
    let p = Txn::start(
        &driver,
        &producer_config(&bootstrap, &format!("{topic}-tx")),
    );
    p.init().expect("init_transactions");

    p.begin().expect("begin");
    let aborted = values("aborted", 8);
    for r in p.send_all(&topic, &aborted) {
        r.expect("written before the abort");
    }
    p.abort().expect("abort_transaction");

    // Records still buffered when the abort comes are not sent: they fail with TxnAborted
    // (or were sent just before; either way read_committed never shows them).
    p.begin().expect("begin after an abort");
    let mut unsent = driver
        .block_on(async {
            let r = ProducerRecord::new(topic.as_str())
                .partition(0)
                .value("never");
            // Kept, not awaited: the abort below must find it still buffered.
            Some(p.handle().enqueue(r).await.expect("enqueued"))
        })
        .expect("a delivery");
    p.abort().expect("abort_transaction");
    match unsent.try_result() {
        Some(Err(ProduceError::TxnAborted)) | Some(Ok(_)) => {}
        other => panic!("a record of an aborted transaction reported {other:?}"),
    }

    p.begin().expect("begin after aborts");
    let committed = values("committed", 6);
    for r in p.send_all(&topic, &committed) {
        r.expect("delivered");
    }
    p.commit().expect("commit");
    p.close();

    let rdkafka = rdkafka_read_committed(&bootstrap, &topic);
    if cluster.is_mock() {
        // The mock writes no abort markers: both clients must agree on what it serves.
        assert!(rdkafka.len() >= committed.len() + aborted.len());
        assert_eq!(
            kafkit_read_committed(&driver, &bootstrap, &topic, rdkafka.len()),
            rdkafka
        );
    } else {
        let expected = sorted(committed);
        assert_eq!(rdkafka, expected);
        assert_eq!(
            kafkit_read_committed(&driver, &bootstrap, &topic, expected.len()),
            expected
        );
    }
}

#[test]
fn a_second_instance_fences_the_first() {
    let driver = Driver::tokio();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "txn-fence");
    cluster.create_topic(&topic, PARTS);
    let config = producer_config(&bootstrap, &format!("{topic}-tx"));
    let zombie = Txn::start(&driver, &config);
    zombie.init().expect("init_transactions");
    zombie.begin().expect("begin");
    for r in zombie.send_all(&topic, &values("zombie", 2)) {
        r.expect("delivered");
    }

    let fresh = Txn::start(&driver, &config);
    fresh
        .init()
        .expect("the second instance initializes, fencing the first");
    if let Cluster::Mock(mock) = &cluster {
        // librdkafka 2.12's mock hands a second instance a new producer id instead of
        // bumping the epoch of the first, so it fences nobody: its coordinator answers the
        // zombie's EndTxn as a real one would after the fencing.
        mock.request_errors(
            RDKafkaApiKey::EndTxn,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
        );
    }

    let e = zombie
        .commit()
        .expect_err("the fenced instance cannot commit");
    assert!(matches!(e, ProduceError::Fatal(_)), "{e:?}");
    assert!(
        e.to_string().contains("PRODUCER_FENCED")
            || e.to_string().contains("INVALID_PRODUCER_EPOCH"),
        "{e}"
    );
    // Fatal: an abort is refused, and so is everything else.
    assert_eq!(zombie.abort().expect_err("abort after a fatal error"), e);
    assert_eq!(zombie.begin().expect_err("begin after a fatal error"), e);
    assert!(zombie.send_all(&topic, &values("late", 1))[0].is_err());
    zombie.close();

    fresh.begin().expect("begin");
    for r in fresh.send_all(&topic, &values("fresh", 3)) {
        r.expect("delivered");
    }
    fresh.commit().expect("the new instance commits");
    fresh.close();
}

#[test]
fn offsets_sent_to_a_transaction_are_committed_with_it() {
    let driver = Driver::tokio();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "txn-offsets");
    cluster.create_topic(&topic, PARTS);
    let group_id = format!("{topic}-group");
    let p = Txn::start(
        &driver,
        &producer_config(&bootstrap, &format!("{topic}-tx")),
    );
    p.init().expect("init_transactions");
    p.begin().expect("begin");
    for r in p.send_all(&topic, &values("out", 4)) {
        r.expect("delivered");
    }
    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [
        (
            TopicPartition::new(topic.as_str(), 0),
            OffsetAndMetadata::new(17),
        ),
        (
            TopicPartition::new(topic.as_str(), 1),
            OffsetAndMetadata::new(23),
        ),
    ]
    .into_iter()
    .collect();
    // A group nobody joined: generation -1 and no member id, which brokers accept
    // (KIP-447's checks apply to members of a generation).
    let group = GroupMetadata {
        group_id: group_id.clone(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
    p.send_offsets(offsets, group.clone())
        .expect("send_offsets_to_transaction");
    let committed = |group_id: &str| -> BTreeMap<i32, i64> {
        let c: BaseConsumer = rdkafka_config(&bootstrap)
            .set("group.id", group_id)
            .set("isolation.level", "read_committed")
            .create()
            .expect("rdkafka consumer");
        let mut tpl = TopicPartitionList::new();
        for part in 0..PARTS {
            tpl.add_partition(&topic, part);
        }
        let got = c
            .committed_offsets(tpl, Duration::from_secs(20))
            .expect("committed offsets");
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    };
    // librdkafka 2.12's mock acknowledges AddOffsetsToTxn and TxnOffsetCommit but stores
    // nothing, so the offsets are checked on a real cluster only.
    if !cluster.is_mock() {
        assert!(
            committed(&group_id).is_empty(),
            "offsets visible before the commit"
        );
    }
    p.commit().expect("commit");
    if !cluster.is_mock() {
        assert_eq!(committed(&group_id), BTreeMap::from([(0, 17), (1, 23)]));
    }

    // Offsets of an aborted transaction are never committed.
    p.begin().expect("begin");
    let later: BTreeMap<TopicPartition, OffsetAndMetadata> = [(
        TopicPartition::new(topic.as_str(), 0),
        OffsetAndMetadata::new(99),
    )]
    .into_iter()
    .collect();
    p.send_offsets(later, group).expect("send_offsets");
    p.abort().expect("abort");
    if !cluster.is_mock() {
        assert_eq!(committed(&group_id), BTreeMap::from([(0, 17), (1, 23)]));
    }
    p.close();
}

#[test]
fn calls_in_the_wrong_state_are_refused_with_the_state() {
    let driver = Driver::tokio();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "txn-states");
    cluster.create_topic(&topic, PARTS);
    let p = Txn::start(
        &driver,
        &producer_config(&bootstrap, &format!("{topic}-tx")),
    );

    let state_of = |e: ProduceError| match e {
        ProduceError::TxnState { state, call } => (call, state),
        e => panic!("expected a state error, got {e:?}"),
    };
    assert_eq!(
        state_of(p.begin().unwrap_err()),
        ("begin_transaction", TxnState::Uninitialized)
    );
    assert_eq!(
        state_of(
            p.send_all(&topic, &values("early", 1))
                .remove(0)
                .unwrap_err()
        ),
        ("send", TxnState::Uninitialized)
    );
    p.init().expect("init_transactions");
    assert_eq!(
        state_of(p.init().unwrap_err()),
        ("init_transactions", TxnState::Ready)
    );
    assert_eq!(
        state_of(p.commit().unwrap_err()),
        ("commit_transaction", TxnState::Ready)
    );
    let e = p.abort().unwrap_err();
    assert!(e.to_string().contains("READY"), "{e}");
    assert_eq!(
        state_of(
            p.send_all(&topic, &values("outside", 1))
                .remove(0)
                .unwrap_err()
        ),
        ("send", TxnState::Ready)
    );
    p.begin().expect("begin");
    assert_eq!(
        state_of(p.begin().unwrap_err()),
        ("begin_transaction", TxnState::InTransaction)
    );
    p.commit().expect("an empty transaction commits");
    p.close();

    // A producer without transactional_id has no transactions.
    let plain = ProducerConfig::builder()
        .set("bootstrap_servers", bootstrap.as_str())
        .build()
        .expect("config");
    let q = Txn::start(&driver, &plain);
    assert!(matches!(q.init(), Err(ProduceError::InvalidConfig(_))));
    q.close();
}

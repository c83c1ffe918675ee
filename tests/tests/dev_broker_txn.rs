//! librdkafka's transactional producer against kafkit's development broker (3 brokers, the
//! simulated cluster's transaction coordinator on real sockets):
//! - commits and aborts, interleaved with non-transactional records: `read_committed`
//!   consumers, librdkafka's and kafkit's (tokio driver), read exactly the non-transactional
//!   and committed records, `read_uncommitted` ones every record;
//! - a zombie: a second producer with the same `transactional.id` fences the first, whose
//!   commit then fails, and whose open transaction is aborted;
//! - `send_offsets_to_transaction`: the group's offsets become visible with the commit only;
//! - transaction protocol v2 (KIP-890) on: the broker finalizes `transaction.version` 2.
//!   librdkafka 2.12 does not speak v2 (it sends AddPartitionsToTxn v0 and TxnOffsetCommit
//!   up to v3, and reads no finalized features), so it keeps protocol v1 and must work as
//!   before (its produces are verified against the partitions it registered); kafkit's
//!   producer switches to v2, and every transaction it ends moves its epoch on.
//!
//! Set `CONSUMER_RDKAFKA_DEBUG=eos,protocol` (any librdkafka `debug` value) for librdkafka's log.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use harness::{
    consumer_config, partitions, rdkafka_config, rdkafka_send, record, Cluster, Driver, Sent,
};
use kafkit_core::config::ProducerConfig;
use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::producer::ProducerRecord;
use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};
use kafkit_tests::cluster::unique_topic;

const PARTS: i32 = 2;
const BASE_TS: i64 = 1_720_000_000_000;
const WITHIN: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(800);

/// (offset, key, value, headers, timestamp) as a consumer saw a record.
type Seen = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

fn seen_of_sent(s: &Sent) -> Seen {
    (
        s.offset,
        s.key.clone(),
        s.value.clone(),
        s.headers.clone(),
        s.timestamp,
    )
}

fn txn_producer(bootstrap: &str, id: &str) -> FutureProducer {
    rdkafka_config(bootstrap)
        .set("transactional.id", id)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "30000")
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("transactional producer")
}

/// Reads `topic` from the beginning with librdkafka at `isolation` until it goes quiet.
fn rdkafka_read(bootstrap: &str, topic: &str, isolation: &str) -> BTreeMap<i32, Vec<Seen>> {
    let consumer: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", format!("{topic}-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    let mut idle = 0;
    let deadline = std::time::Instant::now() + WITHIN;
    while idle < 15 && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                idle = 0;
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.entry(m.partition()).or_default().push((
                    m.offset(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().map(<[u8]>::to_vec),
                    headers,
                    m.timestamp().to_millis().unwrap_or(-1),
                ));
            }
            Some(Err(e)) => panic!("rdkafka consumer on {topic}: {e}"),
            None => idle += 1,
        }
    }
    out
}

/// Reads `count` records of `topic` with kafkit's consumer (tokio driver) at `isolation`.
fn kafkit_read(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    count: usize,
) -> BTreeMap<i32, Vec<Seen>> {
    let driver = Driver::tokio();
    let consumer = driver.start(&consumer_config(
        bootstrap,
        &[("isolation_level", isolation)],
    ));
    consumer.assign(partitions(topic, PARTS)).expect("assign");
    let got = consumer.read_exactly(count, WITHIN, QUIET);
    consumer.close().expect("close");
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    for r in &got {
        out.entry(r.partition).or_default().push((
            r.offset,
            r.key.as_ref().map(|k| k.to_vec()),
            r.value.as_ref().map(|v| v.to_vec()),
            harness::headers_of(r),
            r.timestamp,
        ));
    }
    out
}

fn by_partition<'a>(records: impl Iterator<Item = &'a Sent>) -> BTreeMap<i32, Vec<Seen>> {
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    for s in records {
        out.entry(s.partition).or_default().push(seen_of_sent(s));
    }
    for v in out.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    out
}

/// A development broker (3 brokers) finalizing `transaction.version` 2.
fn dev_v2() -> DevBroker {
    let mut config = DevBrokerConfig::new(3);
    config.cluster.transaction_version = 2;
    DevBroker::start(config).expect("development broker")
}

#[test]
fn read_committed_consumers_see_exactly_the_committed_records() {
    commits_and_aborts_are_read_exactly(Cluster::dev());
}

#[test]
fn librdkafka_keeps_protocol_v1_on_a_broker_with_transaction_version_2() {
    commits_and_aborts_are_read_exactly(Cluster::Dev(dev_v2()));
}

fn commits_and_aborts_are_read_exactly(cluster: Cluster) {
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("dev-txn", "commit-abort");
    cluster.create_topic(&topic, PARTS);
    let txn = txn_producer(&bootstrap, &format!("{topic}-txn"));
    let plain: FutureProducer = rdkafka_config(&bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    txn.init_transactions(WITHIN).expect("init_transactions");
    let mut i = 0;
    let mut next = |n: usize| -> Vec<Sent> {
        let v = (i..i + n).map(|j| record(j, PARTS, BASE_TS)).collect();
        i += n;
        v
    };
    let mut all: Vec<(Sent, bool)> = Vec::new();
    for k in 0..6 {
        let mut before = next(1 + k % 2);
        rdkafka_send(&plain, &topic, &mut before);
        all.extend(before.into_iter().map(|s| (s, true)));
        let commit = k % 3 != 1;
        txn.begin_transaction().expect("begin_transaction");
        let mut inside = next(3 + k % 3);
        rdkafka_send(&txn, &topic, &mut inside);
        if k == 2 {
            // A non-transactional write while the transaction is open.
            let mut during = next(2);
            rdkafka_send(&plain, &topic, &mut during);
            all.extend(during.into_iter().map(|s| (s, true)));
        }
        txn.flush(WITHIN).expect("flush");
        if commit {
            txn.commit_transaction(WITHIN).expect("commit_transaction");
        } else {
            txn.abort_transaction(WITHIN).expect("abort_transaction");
        }
        all.extend(inside.into_iter().map(|s| (s, commit)));
    }
    let committed = by_partition(all.iter().filter(|(_, c)| *c).map(|(s, _)| s));
    let everything = by_partition(all.iter().map(|(s, _)| s));
    let committed_count: usize = committed.values().map(Vec::len).sum();
    assert!(committed_count < all.len(), "some records were aborted");

    assert_eq!(
        rdkafka_read(&bootstrap, &topic, "read_committed"),
        committed,
        "librdkafka read_committed"
    );
    assert_eq!(
        rdkafka_read(&bootstrap, &topic, "read_uncommitted"),
        everything,
        "librdkafka read_uncommitted"
    );
    assert_eq!(
        kafkit_read(&bootstrap, &topic, "read_committed", committed_count),
        committed,
        "kafkit read_committed"
    );
    assert_eq!(
        kafkit_read(&bootstrap, &topic, "read_uncommitted", all.len()),
        everything,
        "kafkit read_uncommitted"
    );
}

#[test]
fn a_zombie_producer_is_fenced_and_its_transaction_aborted() {
    let cluster = Cluster::dev();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("dev-txn", "zombie");
    cluster.create_topic(&topic, PARTS);
    let id = format!("{topic}-txn");
    let zombie = txn_producer(&bootstrap, &id);
    zombie.init_transactions(WITHIN).expect("zombie init");
    zombie.begin_transaction().expect("zombie begin");
    let mut lost: Vec<Sent> = (0..4).map(|j| record(j, PARTS, BASE_TS)).collect();
    rdkafka_send(&zombie, &topic, &mut lost);

    let fresh = txn_producer(&bootstrap, &id);
    fresh
        .init_transactions(WITHIN)
        .expect("init fences the zombie");
    fresh.begin_transaction().expect("begin");
    let mut kept: Vec<Sent> = (4..9).map(|j| record(j, PARTS, BASE_TS)).collect();
    rdkafka_send(&fresh, &topic, &mut kept);

    let err = zombie
        .commit_transaction(WITHIN)
        .expect_err("the zombie's commit must fail");
    match &err {
        KafkaError::Transaction(e) => assert!(
            e.is_fatal() || e.txn_requires_abort(),
            "fencing is not retriable: {err}"
        ),
        other => panic!("unexpected error {other}"),
    }
    fresh.commit_transaction(WITHIN).expect("commit");

    let want = by_partition(kept.iter());
    let count = kept.len();
    assert_eq!(rdkafka_read(&bootstrap, &topic, "read_committed"), want);
    assert_eq!(
        kafkit_read(&bootstrap, &topic, "read_committed", count),
        want
    );
}

#[test]
fn offsets_sent_to_a_transaction_are_visible_after_commit_only() {
    let cluster = Cluster::dev();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("dev-txn", "offsets");
    cluster.create_topic(&topic, PARTS);
    let group = format!("{topic}-group");
    let input: BaseConsumer = rdkafka_config(&bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let committed = |what: &str| -> Offset {
        // read_uncommitted: librdkafka's read_committed consumers ask for stable offsets
        // (OffsetFetch `require_stable`) and retry while one is pending.
        let checker: BaseConsumer = rdkafka_config(&bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("checker");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, 0);
        let got = checker.committed_offsets(tpl, WITHIN).expect(what);
        got.find_partition(&topic, 0).expect("partition").offset()
    };
    let txn = txn_producer(&bootstrap, &format!("{topic}-txn"));
    txn.init_transactions(WITHIN).expect("init_transactions");

    txn.begin_transaction().expect("begin");
    let mut out: Vec<Sent> = (0..3).map(|j| record(j, PARTS, BASE_TS)).collect();
    rdkafka_send(&txn, &topic, &mut out);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(42))
        .expect("offset");
    txn.send_offsets_to_transaction(
        &offsets,
        &input.group_metadata().expect("group metadata"),
        WITHIN,
    )
    .expect("send_offsets_to_transaction");
    assert_eq!(
        committed("before commit"),
        Offset::Invalid,
        "not visible before commit"
    );
    txn.commit_transaction(WITHIN).expect("commit");
    assert_eq!(committed("after commit"), Offset::Offset(42));

    // An aborted transaction's offsets never land.
    txn.begin_transaction().expect("begin");
    let mut more: Vec<Sent> = (3..5).map(|j| record(j, PARTS, BASE_TS)).collect();
    rdkafka_send(&txn, &topic, &mut more);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(99))
        .expect("offset");
    txn.send_offsets_to_transaction(
        &offsets,
        &input.group_metadata().expect("group metadata"),
        WITHIN,
    )
    .expect("send_offsets_to_transaction");
    txn.abort_transaction(WITHIN).expect("abort");
    assert_eq!(committed("after abort"), Offset::Offset(42));
}

#[test]
fn kafkit_speaks_protocol_v2_when_the_broker_finalizes_it() {
    let broker = dev_v2();
    let bootstrap = broker.bootstrap();
    let cluster = Cluster::Dev(broker);
    let topic = unique_topic("dev-txn", "v2");
    cluster.create_topic(&topic, PARTS);
    let id = format!("{topic}-txn");
    let group = format!("{topic}-group");
    let config = ProducerConfig::builder()
        .set("bootstrap_servers", &bootstrap)
        .set("transactional_id", &id)
        .set("linger_ms", "5")
        .set("max_block_ms", "30000")
        .build()
        .expect("config");
    let producer = kafkit_blocking::Producer::start(&config).expect("producer");
    producer.init_transactions().expect("init_transactions");
    let Cluster::Dev(broker) = &cluster else {
        unreachable!("a development broker")
    };
    let coordinator = |broker: &DevBroker| {
        let id = id.clone();
        broker
            .with_cluster(move |c| {
                c.transactions()
                    .get(&id)
                    .map(|t| (t.producer_id, t.producer_epoch))
            })
            .flatten()
            .expect("the coordinator knows the id")
    };
    let (pid, first_epoch) = coordinator(broker);
    let mut committed: Vec<Sent> = Vec::new();
    let rounds = 5;
    for k in 0..rounds {
        producer.begin_transaction().expect("begin_transaction");
        let mut sent = Vec::new();
        for j in 0..4 {
            let n = k * 4 + j;
            let mut s = record(n, PARTS, BASE_TS);
            let mut r = ProducerRecord::new(topic.as_str()).partition(s.partition);
            if let Some(key) = &s.key {
                r = r.key(key.clone());
            }
            if let Some(value) = &s.value {
                r = r.value(value.clone());
            }
            for (name, value) in &s.headers {
                r = match value {
                    Some(v) => r.header(name.as_str(), v.clone()),
                    None => r.null_header(name.as_str()),
                };
            }
            let meta = producer
                .send(r.timestamp(s.timestamp))
                .expect("a record of the transaction");
            s.offset = meta.offset;
            sent.push(s);
        }
        let offsets = BTreeMap::from([(
            TopicPartition::new(topic.as_str(), 0),
            OffsetAndMetadata::new(k as i64 + 1),
        )]);
        let metadata = GroupMetadata {
            group_id: group.clone(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        };
        producer
            .send_offsets_to_transaction(offsets, metadata)
            .expect("send_offsets_to_transaction");
        if k % 2 == 0 {
            producer.commit_transaction().expect("commit_transaction");
            committed.extend(sent);
        } else {
            producer.abort_transaction().expect("abort_transaction");
        }
    }
    // Every EndTxn v5 bumped the epoch (v1 keeps one epoch for every transaction).
    assert_eq!(
        coordinator(broker),
        (pid, first_epoch + rounds as i16),
        "one epoch per transaction"
    );
    producer.close(Some(WITHIN)).expect("close");
    let want = by_partition(committed.iter());
    let count = committed.len();
    assert_eq!(rdkafka_read(&bootstrap, &topic, "read_committed"), want);
    assert_eq!(
        kafkit_read(&bootstrap, &topic, "read_committed", count),
        want
    );
    // The last committed transaction's offsets (round 4 committed position 5).
    let checker: BaseConsumer = rdkafka_config(&bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("checker");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let got = checker.committed_offsets(tpl, WITHIN).expect("committed");
    assert_eq!(
        got.find_partition(&topic, 0).expect("partition").offset(),
        Offset::Offset(rounds as i64)
    );
}

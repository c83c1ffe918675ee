//! kafkit's producer against a broker nobody here wrote: librdkafka's mock cluster (or the
//! cluster `KAFKA_BOOTSTRAP` names), read back by librdkafka's consumer.
//!
//! Every test runs through several drivers (tokio, smol, blocking):
//! - what kafkit produces with every codec (keys, null keys, empty and null values, headers with
//!   null values, explicit and producer-stamped timestamps) an rdkafka consumer reads byte for
//!   byte, per partition in send order, at the offsets kafkit reported;
//! - keyed records land in the partitions librdkafka's `murmur2_random` partitioner picks;
//! - acks=0, 1 and all all deliver;
//! - a record for a partition the topic lacks fails with `UnknownPartition`;
//! - a record larger than `max_request_size` fails alone, its neighbours are delivered.
//!
//! Set `PRODUCER_RDKAFKA_DEBUG=protocol,msg` (any librdkafka `debug` value) for librdkafka's
//! log on stderr.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use kafkit_blocking::Wait;
use kafkit_core::config::ProducerConfig;
use kafkit_core::driver::ProducerHandle;
use kafkit_core::producer::{ProduceError, ProducerRecord, RecordMetadata};
use kafkit_core::records::TimestampType;
use kafkit_tests::cluster::{external_bootstrap, unique_topic};

// ---- the cluster ----

/// librdkafka's mock cluster (3 brokers), or the external cluster `KAFKA_BOOTSTRAP` names.
enum Cluster {
    Mock(MockCluster<'static, DefaultProducerContext>),
    External(String),
}

impl Cluster {
    fn new() -> Cluster {
        match external_bootstrap() {
            Some(b) => Cluster::External(b),
            None => Cluster::Mock(MockCluster::new(3).expect("librdkafka's mock cluster")),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::External(b) => b.clone(),
        }
    }

    /// Creates `topic` (the mock's control API, or CreateTopics through librdkafka's admin
    /// client on an external cluster).
    fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Cluster::Mock(m) => m
                .create_topic(topic, partitions, 3)
                .unwrap_or_else(|e| panic!("mock cluster: create_topic({topic}): {e}")),
            Cluster::External(b) => {
                let admin: AdminClient<DefaultClientContext> =
                    rdkafka_config(b).create().expect("admin client");
                let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let replication = 1.max(3.min(broker_count(b)));
                let results = futures_executor::block_on(admin.create_topics(
                    &[NewTopic::new(
                        topic,
                        partitions,
                        TopicReplication::Fixed(replication),
                    )],
                    &opts,
                ))
                .expect("CreateTopics");
                for r in results {
                    r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
                }
            }
        }
    }
}

fn broker_count(bootstrap: &str) -> i32 {
    let consumer: BaseConsumer = rdkafka_config(bootstrap).create().expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata of the external cluster");
    md.brokers().len() as i32
}

fn rdkafka_debug() -> Option<String> {
    std::env::var("PRODUCER_RDKAFKA_DEBUG")
        .ok()
        .filter(|s| !s.is_empty())
}

fn rdkafka_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    if let Some(d) = rdkafka_debug() {
        c.set("debug", &d);
    }
    c
}

// ---- the drivers ----

/// What a test needs of a kafkit producer, whichever driver runs it.
trait TestProducer {
    /// Sends every record without waiting in between, then waits for every outcome (in the
    /// records' order). A send refused at once counts as that record's outcome.
    fn send_all(&self, records: Vec<ProducerRecord>) -> Vec<Result<RecordMetadata, ProduceError>>;
    /// Closes the producer, delivering what is buffered.
    fn close(&self);
    /// The producer's metrics by kafka-python name.
    fn metrics(&self) -> BTreeMap<String, f64>;
}

trait Driver {
    fn name(&self) -> &'static str;
    fn start(&self, config: ProducerConfig) -> Box<dyn TestProducer + '_>;
}

/// An async driver: its handle, awaited by the runtime's `block_on`.
trait AsyncRuntime {
    fn name(&self) -> &'static str;
    fn start(&self, config: &ProducerConfig) -> ProducerHandle;
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
}

struct AsyncProducer<'a, R> {
    rt: &'a R,
    handle: ProducerHandle,
}

impl<R: AsyncRuntime> TestProducer for AsyncProducer<'_, R> {
    fn send_all(&self, records: Vec<ProducerRecord>) -> Vec<Result<RecordMetadata, ProduceError>> {
        self.rt.block_on(async {
            let mut pending = Vec::with_capacity(records.len());
            for r in records {
                pending.push(self.handle.enqueue(r).await);
            }
            let mut out = Vec::with_capacity(pending.len());
            for p in pending {
                out.push(match p {
                    Ok(delivery) => delivery.await,
                    Err(e) => Err(e),
                });
            }
            out
        })
    }

    fn close(&self) {
        self.rt
            .block_on(self.handle.close(Some(Duration::from_secs(30))))
            .expect("close");
    }

    fn metrics(&self) -> BTreeMap<String, f64> {
        self.rt
            .block_on(self.handle.metrics())
            .expect("metrics")
            .to_map()
    }
}

struct Async<R>(R);

impl<R: AsyncRuntime> Driver for Async<R> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn start(&self, config: ProducerConfig) -> Box<dyn TestProducer + '_> {
        Box::new(AsyncProducer {
            rt: &self.0,
            handle: self.0.start(&config),
        })
    }
}

struct Tokio(tokio::runtime::Runtime);

impl AsyncRuntime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn start(&self, config: &ProducerConfig) -> ProducerHandle {
        let _guard = self.0.enter();
        kafkit_tokio::producer(config).expect("tokio producer")
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

fn tokio_driver() -> Async<Tokio> {
    Async(Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    ))
}

struct Smol;

impl AsyncRuntime for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }
    fn start(&self, config: &ProducerConfig) -> ProducerHandle {
        kafkit_smol::producer(config).expect("smol producer")
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(fut)
    }
}

fn smol_driver() -> Async<Smol> {
    Async(Smol)
}

struct Blocking;

struct BlockingProducer(kafkit_blocking::Producer);

impl TestProducer for BlockingProducer {
    fn send_all(&self, records: Vec<ProducerRecord>) -> Vec<Result<RecordMetadata, ProduceError>> {
        let pending: Vec<_> = records.into_iter().map(|r| self.0.enqueue(r)).collect();
        pending
            .into_iter()
            .map(|p| p.and_then(|delivery| delivery.wait()))
            .collect()
    }

    fn close(&self) {
        self.0.close(Some(Duration::from_secs(30))).expect("close");
    }

    fn metrics(&self) -> BTreeMap<String, f64> {
        self.0.metrics().expect("metrics").to_map()
    }
}

impl Driver for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn start(&self, config: ProducerConfig) -> Box<dyn TestProducer + '_> {
        Box::new(BlockingProducer(
            kafkit_blocking::Producer::start(&config).expect("blocking producer"),
        ))
    }
}

fn blocking_driver() -> Blocking {
    Blocking
}

// ---- records ----

/// One record as produced: what the consumer must read byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    /// The explicit timestamp, or `None` for the producer's clock.
    timestamp: Option<i64>,
}

/// Record `i` of a test: keys and null keys, empty and null values, binary bytes, headers
/// (some null), explicit timestamps and producer-stamped ones.
fn rec(i: usize) -> Rec {
    let value = match i % 29 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            format!("value {i} ")
                .repeat(1 + i % 23)
                .into_bytes()
                .into_iter()
                .chain((0..(i % 9) as u8).map(|b| b.wrapping_mul(71) ^ 0x80))
                .collect(),
        ),
    };
    let key = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(format!("key-{}", i % 97).into_bytes()),
    };
    let mut headers = vec![("i".to_owned(), Some(i.to_string().into_bytes()))];
    if i.is_multiple_of(3) {
        headers.push(("bin".to_owned(), Some(vec![0, 0xff, 7, (i % 256) as u8])));
    }
    if i.is_multiple_of(5) {
        headers.push(("null".to_owned(), None));
        headers.push(("i".to_owned(), Some(b"repeated name".to_vec())));
    }
    let timestamp = (i % 4 != 3).then(|| 1_700_000_000_000 + i as i64 * 1_000);
    Rec {
        key,
        value,
        headers,
        timestamp,
    }
}

fn to_record(topic: &str, r: &Rec) -> ProducerRecord {
    let mut pr = ProducerRecord::new(topic);
    if let Some(k) = &r.key {
        pr = pr.key(Bytes::from(k.clone()));
    }
    if let Some(v) = &r.value {
        pr = pr.value(Bytes::from(v.clone()));
    }
    for (name, value) in &r.headers {
        pr = match value {
            Some(v) => pr.header(name.clone(), Bytes::from(v.clone())),
            None => pr.null_header(name.clone()),
        };
    }
    if let Some(ts) = r.timestamp {
        pr = pr.timestamp(ts);
    }
    pr
}

/// What the consumer read: the record, its offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
    create_time: bool,
}

fn read(m: &BorrowedMessage<'_>) -> Read {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Read {
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: m.timestamp().to_millis(),
        create_time: matches!(m.timestamp(), rdkafka::Timestamp::CreateTime(_)),
    }
}

fn assignment(topic: &str, partitions: i32) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    tpl
}

/// Reads `count` records of `topic` from the beginning of every partition with a
/// `BaseConsumer`: partition → records in offset order.
fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> BTreeMap<i32, Vec<Read>> {
    let consumer: BaseConsumer = rdkafka_config(bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    consumer
        .assign(&assignment(topic, partitions))
        .expect("assign");
    let mut got: BTreeMap<i32, Vec<Read>> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while n < count {
        assert!(
            Instant::now() < deadline,
            "rdkafka read {n} of {count} records of {topic} in 30 s"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                got.entry(m.partition()).or_default().push(read(&m));
                n += 1;
            }
            Some(Err(e)) => panic!("rdkafka consumer error on {topic}: {e}"),
            None => {}
        }
    }
    // Nothing more than what was sent.
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
        panic!(
            "{topic}: an unexpected extra record at partition {} offset {}: {:?}",
            m.partition(),
            m.offset(),
            read(&m)
        );
    }
    got
}

/// The same through a `StreamConsumer` (librdkafka's async API).
fn consume_stream(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> BTreeMap<i32, Vec<Read>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let consumer: StreamConsumer = rdkafka_config(bootstrap)
        .set("group.id", format!("{topic}-stream"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka stream consumer");
    consumer
        .assign(&assignment(topic, partitions))
        .expect("assign");
    rt.block_on(async {
        let mut got: BTreeMap<i32, Vec<Read>> = BTreeMap::new();
        for n in 0..count {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("stream consumer stalled after {n} of {count}"))
                .expect("stream consumer error");
            got.entry(m.partition()).or_default().push(read(&m));
        }
        got
    })
}

/// Checks that what was read is exactly what was sent: per partition, the records kafkit
/// reported there, in send order, byte for byte, at the offsets and with the timestamps kafkit
/// reported (offsets unknown for acks=0).
fn check_read_back(
    what: &str,
    sent: &[(Rec, RecordMetadata)],
    got: &BTreeMap<i32, Vec<Read>>,
    offsets_known: bool,
    since_ms: i64,
) {
    let mut by_partition: BTreeMap<i32, Vec<&(Rec, RecordMetadata)>> = BTreeMap::new();
    for s in sent {
        by_partition.entry(s.1.partition).or_default().push(s);
    }
    let empty = Vec::new();
    for (p, want) in &by_partition {
        let have = got.get(p).unwrap_or(&empty);
        assert_eq!(
            have.len(),
            want.len(),
            "{what}: partition {p}: read {} records, sent {}",
            have.len(),
            want.len()
        );
        for (i, ((r, md), g)) in want.iter().zip(have).enumerate() {
            let at = format!(
                "{what}: partition {p}, record {i} of the partition (offset {})",
                g.offset
            );
            assert_eq!(g.key, r.key, "{at}: key");
            assert_eq!(g.value, r.value, "{at}: value");
            assert_eq!(g.headers, r.headers, "{at}: headers");
            // The stored record keeps its CreateTime: the explicit one, or the producer's
            // clock during the test.
            assert!(g.create_time, "{at}: timestamp type is not CreateTime");
            let stored = g.timestamp.expect("a timestamp");
            match r.timestamp {
                Some(ts) => assert_eq!(stored, ts, "{at}: explicit timestamp"),
                None => assert!(
                    (since_ms..=wall_ms()).contains(&stored),
                    "{at}: producer-stamped CreateTime {stored} outside the test's run \
                     ({since_ms}..)"
                ),
            }
            // The metadata reports that CreateTime, unless the broker answered with a
            // LogAppendTime (librdkafka's mock cluster answers 1234 for every append; Java
            // reports the broker's time then, and so does kafkit).
            match md.timestamp_type {
                TimestampType::CreateTime => {
                    assert_eq!(md.timestamp, stored, "{at}: timestamp vs metadata")
                }
                TimestampType::LogAppendTime => {}
            }
            if offsets_known {
                assert_eq!(g.offset, md.offset, "{at}: offset vs metadata");
            } else {
                assert_eq!(md.offset, -1, "{at}: acks=0 offset");
            }
            if i > 0 {
                assert!(g.offset > have[i - 1].offset, "{at}: offsets out of order");
            }
        }
    }
    for p in got.keys() {
        assert!(
            by_partition.contains_key(p),
            "{what}: records read from partition {p}, where kafkit reported none"
        );
    }
}

/// Milliseconds since the Unix epoch now.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn producer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ProducerConfig {
    let mut b = ProducerConfig::builder()
        .set("bootstrap_servers", bootstrap)
        .set("client_id", "kafkit-producer-rdkafka")
        .set("max_block_ms", "20000")
        .set("delivery_timeout_ms", "60000");
    for (k, v) in extra {
        b = b.set(k, v);
    }
    b.build().expect("a valid producer config")
}

/// Sends `records`, all expected to succeed; returns them with their metadata.
fn send_ok(p: &dyn TestProducer, topic: &str, records: Vec<Rec>) -> Vec<(Rec, RecordMetadata)> {
    let results = p.send_all(records.iter().map(|r| to_record(topic, r)).collect());
    assert_eq!(results.len(), records.len());
    records
        .into_iter()
        .zip(results)
        .enumerate()
        .map(|(i, (r, res))| {
            let md = res.unwrap_or_else(|e| panic!("{topic}: record {i} failed: {e}"));
            assert_eq!(&*md.topic, topic);
            assert_eq!(
                md.serialized_key_size,
                r.key.as_ref().map_or(-1, |k| k.len() as i32),
                "record {i}: key size"
            );
            assert_eq!(
                md.serialized_value_size,
                r.value.as_ref().map_or(-1, |v| v.len() as i32),
                "record {i}: value size"
            );
            (r, md)
        })
        .collect()
}

// ---- the scenarios ----

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// 300 records per codec, each codec through its own producer into one 3-partition topic,
/// read back by a `BaseConsumer` and a `StreamConsumer`.
fn every_codec_reads_back_byte_for_byte(driver: &dyn Driver) {
    let since = wall_ms();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "codecs");
    cluster.create_topic(&topic, 3);
    let mut sent = Vec::new();
    for (c, codec) in CODECS.iter().enumerate() {
        let p = driver.start(producer_config(
            &bootstrap,
            &[
                ("compression_type", codec),
                ("linger_ms", "5"),
                ("batch_size", "8192"),
            ],
        ));
        let records: Vec<Rec> = (c * 300..(c + 1) * 300).map(rec).collect();
        sent.extend(send_ok(p.as_ref(), &topic, records));
        // The codec was used (the values are repetitive text): kafkit's own account, as the
        // mock keeps its stored batches to itself.
        let ratio = p.metrics()["compression-rate-avg"];
        if *codec == "none" {
            assert!(
                (ratio - 1.0).abs() < 1e-9,
                "{codec}: compression-rate-avg {ratio}"
            );
        } else {
            assert!(
                ratio > 0.0 && ratio < 0.8,
                "{codec}: compression-rate-avg {ratio}"
            );
        }
        p.close();
    }
    let got = consume(&bootstrap, &topic, 3, sent.len());
    check_read_back(
        &format!("{} codecs", driver.name()),
        &sent,
        &got,
        true,
        since,
    );
    let got = consume_stream(&bootstrap, &topic, 3, sent.len());
    check_read_back(
        &format!("{} codecs (stream)", driver.name()),
        &sent,
        &got,
        true,
        since,
    );
    // The records did spread: keyed ones over every partition.
    assert_eq!(got.len(), 3, "every partition got records");
}

/// Keyed records land where librdkafka's `murmur2_random` (Java's partitioner) puts them.
fn keyed_records_land_where_librdkafka_puts_them(driver: &dyn Driver) {
    const PARTITIONS: i32 = 7;
    let since = wall_ms();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let ours = unique_topic(driver.name(), "keys-kafkit");
    let theirs = unique_topic(driver.name(), "keys-rdkafka");
    cluster.create_topic(&ours, PARTITIONS);
    cluster.create_topic(&theirs, PARTITIONS);
    let keys: Vec<Vec<u8>> = (0..300)
        .map(|i| match i % 3 {
            0 => format!("user-{i}").into_bytes(),
            1 => (0..(i % 40) as u8)
                .map(|b| b.wrapping_mul(i as u8) ^ 0x5a)
                .collect(),
            _ => format!("{i:x}").repeat(i % 9 + 1).into_bytes(),
        })
        .collect();

    let p = driver.start(producer_config(&bootstrap, &[]));
    let records: Vec<Rec> = keys
        .iter()
        .map(|k| Rec {
            key: Some(k.clone()),
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect();
    let sent = send_ok(p.as_ref(), &ours, records);
    p.close();

    let producer: BaseProducer = rdkafka_config(&bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "1")
        .create()
        .expect("rdkafka producer");
    for k in &keys {
        producer
            .send(BaseRecord::to(&theirs).key(k.as_slice()).payload("v"))
            .unwrap_or_else(|(e, _)| panic!("rdkafka enqueue: {e}"));
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("rdkafka flush");
    let got = consume(&bootstrap, &theirs, PARTITIONS, keys.len());
    let mut rdkafka_partition: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    for (p, reads) in &got {
        for r in reads {
            let k = r.key.clone().expect("keyed");
            if let Some(other) = rdkafka_partition.insert(k.clone(), *p) {
                assert_eq!(other, *p, "librdkafka put key {k:?} in two partitions");
            }
        }
    }
    let mut used = std::collections::BTreeSet::new();
    for (r, md) in &sent {
        let k = r.key.as_ref().expect("keyed");
        assert_eq!(
            Some(&md.partition),
            rdkafka_partition.get(k),
            "{}: key {k:?}",
            driver.name()
        );
        used.insert(md.partition);
    }
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "the keys spread over every partition"
    );
    // And kafkit's records are where kafkit said.
    let got = consume(&bootstrap, &ours, PARTITIONS, sent.len());
    check_read_back(&format!("{} keys", driver.name()), &sent, &got, true, since);
}

/// acks=0, 1 and all each deliver every record.
fn every_acks_setting_delivers(driver: &dyn Driver) {
    let since = wall_ms();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = unique_topic(driver.name(), &format!("acks{acks}"));
        cluster.create_topic(&topic, 3);
        let p = driver.start(producer_config(
            &bootstrap,
            &[("acks", acks), ("linger_ms", "2")],
        ));
        let sent = send_ok(p.as_ref(), &topic, (0..200).map(rec).collect());
        p.close();
        let got = consume(&bootstrap, &topic, 3, sent.len());
        check_read_back(
            &format!("{} acks={acks}", driver.name()),
            &sent,
            &got,
            acks != "0",
            since,
        );
    }
}

/// A record for partition 5 of a 3-partition topic fails with UnknownPartition; the others
/// are delivered.
fn unknown_partition_is_refused(driver: &dyn Driver) {
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "unknown-partition");
    cluster.create_topic(&topic, 3);
    let p = driver.start(producer_config(&bootstrap, &[]));
    let records = vec![
        ProducerRecord::new(topic.as_str())
            .partition(0)
            .value("before"),
        ProducerRecord::new(topic.as_str())
            .partition(5)
            .value("nowhere"),
        ProducerRecord::new(topic.as_str())
            .partition(2)
            .value("after"),
    ];
    let results = p.send_all(records);
    p.close();
    match &results[1] {
        Err(ProduceError::UnknownPartition {
            topic: t,
            partition,
            partitions,
        }) => {
            assert_eq!(t, &topic);
            assert_eq!(*partition, 5);
            assert_eq!(*partitions, 3);
            let text = results[1].as_ref().unwrap_err().to_string();
            assert!(text.contains(&topic) && text.contains('5'), "{text}");
        }
        other => panic!("{}: partition 5 of 3: {other:?}", driver.name()),
    }
    let before = results[0].as_ref().expect("partition 0 delivered");
    let after = results[2].as_ref().expect("partition 2 delivered");
    assert_eq!((before.partition, after.partition), (0, 2));
    let got = consume(&bootstrap, &topic, 3, 2);
    assert_eq!(got[&0][0].value.as_deref(), Some(&b"before"[..]));
    assert_eq!(got[&2][0].value.as_deref(), Some(&b"after"[..]));
}

/// With max_request_size 20000, a 50000-byte record fails with RecordTooLarge naming the
/// setting; the records around it (same partition) are delivered, in order.
fn oversized_record_fails_alone(driver: &dyn Driver) {
    let since = wall_ms();
    let cluster = Cluster::new();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(driver.name(), "too-large");
    cluster.create_topic(&topic, 1);
    let p = driver.start(producer_config(
        &bootstrap,
        &[("max_request_size", "20000"), ("linger_ms", "20")],
    ));
    let big = 7;
    let records: Vec<Rec> = (0..15)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(if i == big {
                vec![b'x'; 50_000]
            } else {
                format!("small {i}").into_bytes()
            }),
            headers: Vec::new(),
            timestamp: Some(1_700_000_000_000 + i as i64),
        })
        .collect();
    let results = p.send_all(records.iter().map(|r| to_record(&topic, r)).collect());
    p.close();
    let mut sent = Vec::new();
    for (i, (r, res)) in records.into_iter().zip(results).enumerate() {
        if i == big {
            match res {
                Err(ProduceError::RecordTooLarge { size, max, setting }) => {
                    assert!(size > 50_000, "size {size}");
                    assert_eq!(max, 20_000);
                    assert_eq!(setting, "max_request_size");
                }
                other => panic!("{}: the 50000-byte record: {other:?}", driver.name()),
            }
        } else {
            let md = res.unwrap_or_else(|e| panic!("{}: neighbour {i} failed: {e}", driver.name()));
            sent.push((r, md));
        }
    }
    let got = consume(&bootstrap, &topic, 1, sent.len());
    check_read_back(
        &format!("{} too large", driver.name()),
        &sent,
        &got,
        true,
        since,
    );
}

macro_rules! producer_tests {
    ($module:ident, $driver:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn every_codec_reads_back_byte_for_byte() {
                super::every_codec_reads_back_byte_for_byte(&$driver);
            }

            #[test]
            fn keyed_records_land_where_librdkafka_puts_them() {
                super::keyed_records_land_where_librdkafka_puts_them(&$driver);
            }

            #[test]
            fn every_acks_setting_delivers() {
                super::every_acks_setting_delivers(&$driver);
            }

            #[test]
            fn unknown_partition_is_refused() {
                super::unknown_partition_is_refused(&$driver);
            }

            #[test]
            fn oversized_record_fails_alone() {
                super::oversized_record_fails_alone(&$driver);
            }
        }
    };
}

producer_tests!(with_tokio, tokio_driver());
producer_tests!(with_smol, smol_driver());
producer_tests!(with_blocking, blocking_driver());

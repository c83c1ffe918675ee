//! What the consumer interop suites (`tests/tests/consumer_rdkafka.rs`,
//! `consumer_transactions.rs`) share: the cluster (librdkafka's mock cluster, or the external
//! one `KAFKA_BOOTSTRAP` names), kafkit consumers on every driver behind one synchronous face,
//! and the records an rdkafka producer writes.
//!
//! Not part of the library: it links `rdkafka` and the drivers, which are dev-dependencies of
//! this crate, so each suite compiles it with `#[path = "../src/consumer_harness.rs"] mod
//! harness;`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header as RdHeader, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use bytes::Bytes;
use kafkit_core::config::{CommonConfig, ConsumerConfig};
use kafkit_core::consumer::{
    ConsumerError, ConsumerRecord, ConsumerRecords, OffsetAndTimestamp, TopicPartition,
};
use kafkit_core::driver::ConsumerHandle;
use kafkit_core::network::Target;
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::{FetchRequest, RequestBody, ResponseBody};
use kafkit_core::records::BatchHeader;
use kafkit_core::records::TimestampType;
use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};
use kafkit_tests::cluster::external_bootstrap;

// ---- the cluster ----

/// librdkafka's mock cluster (3 brokers), or the external cluster `KAFKA_BOOTSTRAP` names; or
/// kafkit's development broker, for what the mock cannot show (it answers ListOffsets by
/// timestamp with -1 always and has no DeleteRecords).
pub enum Cluster {
    Mock(MockCluster<'static, DefaultProducerContext>),
    External(String),
    Dev(DevBroker),
}

impl Cluster {
    pub fn new() -> Cluster {
        match external_bootstrap() {
            Some(b) => Cluster::External(b),
            None => Cluster::Mock(MockCluster::new(3).expect("librdkafka's mock cluster")),
        }
    }

    /// The development broker (3 brokers), whatever `KAFKA_BOOTSTRAP` says.
    pub fn dev() -> Cluster {
        Cluster::Dev(DevBroker::start(DevBrokerConfig::new(3)).expect("development broker"))
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::External(b) => b.clone(),
            Cluster::Dev(d) => d.bootstrap(),
        }
    }

    /// What the tests name this cluster in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Cluster::Mock(_) => "mock",
            Cluster::External(_) => "external",
            Cluster::Dev(_) => "dev-broker",
        }
    }

    /// Moves the log start offset of `topic`/`partition` to `offset` (DeleteRecords through
    /// librdkafka's admin client); `false` on the mock cluster, which has no DeleteRecords.
    pub fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> bool {
        if self.is_mock() {
            return false;
        }
        let admin: AdminClient<DefaultClientContext> = rdkafka_config(&self.bootstrap())
            .create()
            .expect("admin client");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .expect("add partition");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let result = futures_executor::block_on(admin.delete_records(&tpl, &opts))
            .unwrap_or_else(|e| panic!("DeleteRecords {topic}-{partition}@{offset}: {e}"));
        for e in result.elements() {
            if let Err(err) = e.error() {
                panic!("DeleteRecords {topic}-{partition}@{offset}: {err}");
            }
        }
        true
    }

    pub fn is_mock(&self) -> bool {
        matches!(self, Cluster::Mock(_))
    }

    /// Creates `topic` (the mock's control API, or CreateTopics through librdkafka's admin
    /// client on an external cluster, replication 3 where the cluster has 3 brokers).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Cluster::Mock(m) => m
                .create_topic(topic, partitions, 3)
                .unwrap_or_else(|e| panic!("mock cluster: create_topic({topic}): {e}")),
            Cluster::External(_) | Cluster::Dev(_) => {
                let b = &self.bootstrap();
                let admin: AdminClient<DefaultClientContext> =
                    rdkafka_config(b).create().expect("admin client");
                let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let replication = match self {
                    Cluster::Dev(_) => 3,
                    _ => 1.max(3.min(broker_count(b))),
                };
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
                // Let every broker learn of the new topic.
                std::thread::sleep(Duration::from_millis(500));
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

/// librdkafka's client config: the bootstrap list, IPv4, and `CONSUMER_RDKAFKA_DEBUG` (any
/// librdkafka `debug` value) for its log on stderr.
pub fn rdkafka_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    if let Some(d) = std::env::var("CONSUMER_RDKAFKA_DEBUG")
        .ok()
        .filter(|s| !s.is_empty())
    {
        c.set("debug", &d);
    }
    c
}

// ---- records an rdkafka producer writes ----

/// One record as an rdkafka producer sent it, with where it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// Record `i` of a test, for `partitions` partitions: keys and null keys, empty and null
/// values, binary bytes, headers (some with null values, a repeated name, none at all) and an
/// explicit, increasing timestamp (`base_ts + 10 * i`).
pub fn record(i: usize, partitions: i32, base_ts: i64) -> Sent {
    let value = match i % 13 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            format!("value {i} ")
                .repeat(1 + i % 17)
                .into_bytes()
                .into_iter()
                .chain((0..(i % 11) as u8).map(|b| b.wrapping_mul(97) ^ 0xa5))
                .collect(),
        ),
    };
    let key = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some((0..(i % 50) as u8).map(|b| b ^ 0xff).collect()),
        _ => Some(format!("key-{}", i % 41).into_bytes()),
    };
    let mut headers = Vec::new();
    if !i.is_multiple_of(4) {
        headers.push(("i".to_owned(), Some(i.to_string().into_bytes())));
    }
    if i.is_multiple_of(3) {
        headers.push(("bin".to_owned(), Some(vec![0, 0xff, 7, (i % 256) as u8])));
        headers.push(("empty".to_owned(), Some(Vec::new())));
    }
    if i.is_multiple_of(5) {
        headers.push(("null".to_owned(), None));
        headers.push(("i".to_owned(), Some(b"repeated name".to_vec())));
    }
    Sent {
        partition: (i % partitions as usize) as i32,
        offset: -1,
        key,
        value,
        headers,
        timestamp: base_ts + 10 * i as i64,
    }
}

/// Sends `records` with `producer` (each to its partition, with its timestamp), waits for every
/// delivery and fills in the offsets librdkafka reports.
pub fn rdkafka_send(producer: &FutureProducer, topic: &str, records: &mut [Sent]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut futures = Vec::with_capacity(records.len());
        for r in records.iter() {
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .partition(r.partition)
                .timestamp(r.timestamp);
            if let Some(k) = &r.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                fr = fr.payload(v.as_slice());
            }
            if !r.headers.is_empty() {
                let mut h = OwnedHeaders::new();
                for (name, value) in &r.headers {
                    h = h.insert(RdHeader {
                        key: name,
                        value: value.as_deref(),
                    });
                }
                fr = fr.headers(h);
            }
            let f = producer
                .send_result(fr)
                .unwrap_or_else(|(e, _)| panic!("rdkafka enqueue: {e}"));
            futures.push(f);
        }
        for (r, f) in records.iter_mut().zip(futures) {
            let d = f
                .await
                .expect("delivery future")
                .unwrap_or_else(|(e, _)| panic!("rdkafka delivery on {topic}: {e}"));
            assert_eq!(d.partition, r.partition);
            r.offset = d.offset;
        }
    });
}

/// An rdkafka producer with `codec` and small batches of several records each.
pub fn rdkafka_producer(bootstrap: &str, codec: &str) -> FutureProducer {
    rdkafka_config(bootstrap)
        .set("compression.type", codec)
        .set("linger.ms", "20")
        .set("batch.num.messages", "37")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("rdkafka producer")
}

/// Checks every field of what kafkit read against what was sent: per partition the same
/// records, in offset order, at the reported offsets, byte for byte, with their CreateTime
/// timestamps and serialized sizes.
pub fn check_records(what: &str, topic: &str, sent: &[Sent], got: &[ConsumerRecord]) {
    let mut want: BTreeMap<i32, Vec<&Sent>> = BTreeMap::new();
    for s in sent {
        want.entry(s.partition).or_default().push(s);
    }
    for list in want.values_mut() {
        list.sort_by_key(|s| s.offset);
    }
    let mut have: BTreeMap<i32, Vec<&ConsumerRecord>> = BTreeMap::new();
    for r in got {
        have.entry(r.partition).or_default().push(r);
    }
    assert_eq!(
        have.keys().collect::<BTreeSet<_>>(),
        want.keys().collect::<BTreeSet<_>>(),
        "{what}: partitions read"
    );
    for (p, want) in &want {
        let have = &have[p];
        let offsets = |v: &[&ConsumerRecord]| v.iter().map(|r| r.offset).collect::<Vec<_>>();
        assert_eq!(
            have.len(),
            want.len(),
            "{what}: partition {p}: read {} records, sent {}; read offsets {:?}",
            have.len(),
            want.len(),
            offsets(have)
        );
        for (s, r) in want.iter().zip(have) {
            let at = format!("{what}: partition {p} offset {}", s.offset);
            assert_eq!(&*r.topic, topic, "{at}: topic");
            assert_eq!(r.partition, *p, "{at}: partition");
            assert_eq!(r.offset, s.offset, "{at}: offset (order)");
            assert_eq!(r.key.as_deref(), s.key.as_deref(), "{at}: key");
            assert_eq!(r.value.as_deref(), s.value.as_deref(), "{at}: value");
            assert_eq!(headers_of(r), s.headers, "{at}: headers");
            assert_eq!(r.timestamp, s.timestamp, "{at}: timestamp");
            assert_eq!(
                r.timestamp_type,
                Some(TimestampType::CreateTime),
                "{at}: timestamp type"
            );
            assert_eq!(
                r.serialized_key_size,
                s.key.as_ref().map_or(-1, |k| k.len() as i32),
                "{at}: serialized key size"
            );
            assert_eq!(
                r.serialized_value_size,
                s.value.as_ref().map_or(-1, |v| v.len() as i32),
                "{at}: serialized value size"
            );
        }
    }
}

/// A record's headers as `(name, value)` pairs, in order.
pub fn headers_of(r: &ConsumerRecord) -> Vec<(String, Option<Vec<u8>>)> {
    r.headers
        .iter()
        .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
        .collect()
}

/// Every record batch of `topic`/`partition` below `end`, exactly as the broker holds it
/// (fetched raw with kafkit's low-level client, Fetch v12).
pub fn raw_batches(bootstrap: &str, topic: &str, partition: i32, end: i64) -> Vec<Bytes> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = CommonConfig::default();
    config
        .set("bootstrap_servers", bootstrap)
        .expect("bootstrap_servers");
    let client = {
        let _guard = rt.enter();
        kafkit_tokio::low_level_client(&config).expect("low-level client")
    };
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        let body = RequestBody::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    current_leader_epoch: -1,
                    fetch_offset: offset,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let target = Target::Leader {
            topic: topic.into(),
            partition,
        };
        let resp = rt
            .block_on(client.send(target, body, Some(12)))
            .expect("raw fetch");
        let ResponseBody::Fetch(f) = resp.body else {
            panic!("not a fetch response")
        };
        let p = &f.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "raw fetch at {offset}");
        let mut data = p.records.clone().unwrap_or_default();
        while data.len() >= 61 {
            let h = BatchHeader::parse(&data).expect("batch header");
            let len = h.batch_length as usize + 12;
            let batch = data.split_to(len);
            if h.base_offset + i64::from(h.last_offset_delta) >= offset {
                offset = h.base_offset + i64::from(h.last_offset_delta) + 1;
                out.push(batch);
            }
        }
    }
    out
}

// ---- kafkit consumers on every driver ----

/// The runtime a kafkit consumer runs on.
pub enum Runtime {
    Tokio(tokio::runtime::Runtime),
    Smol,
    Blocking,
}

/// A kafkit driver, as the suites use it.
pub struct Driver(pub Runtime);

impl Driver {
    pub fn tokio() -> Driver {
        Driver(Runtime::Tokio(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime"),
        ))
    }

    pub fn smol() -> Driver {
        Driver(Runtime::Smol)
    }

    pub fn blocking() -> Driver {
        Driver(Runtime::Blocking)
    }

    pub fn name(&self) -> &'static str {
        match self.0 {
            Runtime::Tokio(_) => "tokio",
            Runtime::Smol => "smol",
            Runtime::Blocking => "blocking",
        }
    }

    /// Starts a consumer with `config` through the driver's own start function.
    pub fn start(&self, config: &ConsumerConfig) -> Consumer<'_> {
        let inner = match &self.0 {
            Runtime::Tokio(rt) => {
                let _guard = rt.enter();
                Inner::Handle(kafkit_tokio::consumer(config).expect("tokio consumer"))
            }
            Runtime::Smol => Inner::Handle(kafkit_smol::consumer(config).expect("smol consumer")),
            Runtime::Blocking => Inner::Blocking(
                kafkit_blocking::Consumer::start(config).expect("blocking consumer"),
            ),
        };
        Consumer {
            driver: self,
            inner,
        }
    }

    /// Runs `fut` to completion on this driver's runtime (the blocking driver's own
    /// `block_on` for its handle).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.0 {
            Runtime::Tokio(rt) => rt.block_on(fut),
            Runtime::Smol => smol::block_on(fut),
            Runtime::Blocking => futures_executor::block_on(fut),
        }
    }
}

enum Inner {
    Handle(ConsumerHandle),
    Blocking(kafkit_blocking::Consumer),
}

/// A kafkit consumer behind one synchronous face: the async drivers' handle awaited by the
/// runtime's `block_on`, the blocking driver's `Consumer` called directly.
pub struct Consumer<'a> {
    driver: &'a Driver,
    inner: Inner,
}

type R<T> = Result<T, ConsumerError>;

macro_rules! both {
    ($self:ident, $h:ident => $async:expr, $b:ident => $blocking:expr) => {
        match &$self.inner {
            Inner::Handle($h) => $self.driver.block_on($async),
            Inner::Blocking($b) => $blocking,
        }
    };
}

impl Consumer<'_> {
    pub fn driver(&self) -> &str {
        self.driver.name()
    }

    pub fn assign(&self, tps: Vec<TopicPartition>) -> R<()> {
        both!(self, h => h.assign(tps), b => b.assign(tps))
    }
    pub fn poll(&self, timeout: Duration) -> R<ConsumerRecords> {
        both!(self, h => h.poll(timeout), b => b.poll(timeout))
    }
    pub fn seek(&self, tp: TopicPartition, offset: i64) -> R<()> {
        both!(self, h => h.seek(tp, offset), b => b.seek(&tp, offset))
    }
    pub fn seek_to_beginning(&self, tps: Vec<TopicPartition>) -> R<()> {
        both!(self, h => h.seek_to_beginning(tps), b => b.seek_to_beginning(&tps))
    }
    pub fn seek_to_end(&self, tps: Vec<TopicPartition>) -> R<()> {
        both!(self, h => h.seek_to_end(tps), b => b.seek_to_end(&tps))
    }
    pub fn position(&self, tp: TopicPartition) -> R<i64> {
        both!(self, h => h.position(tp), b => b.position(&tp))
    }
    pub fn pause(&self, tps: Vec<TopicPartition>) -> R<()> {
        both!(self, h => h.pause(tps), b => b.pause(&tps))
    }
    pub fn resume(&self, tps: Vec<TopicPartition>) -> R<()> {
        both!(self, h => h.resume(tps), b => b.resume(&tps))
    }
    pub fn paused(&self) -> R<BTreeSet<TopicPartition>> {
        both!(self, h => h.paused(), b => b.paused())
    }
    pub fn beginning_offsets(&self, tps: Vec<TopicPartition>) -> R<BTreeMap<TopicPartition, i64>> {
        both!(self, h => h.beginning_offsets(tps), b => b.beginning_offsets(&tps))
    }
    pub fn end_offsets(&self, tps: Vec<TopicPartition>) -> R<BTreeMap<TopicPartition, i64>> {
        both!(self, h => h.end_offsets(tps), b => b.end_offsets(&tps))
    }
    pub fn offsets_for_times(
        &self,
        query: BTreeMap<TopicPartition, i64>,
    ) -> R<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        both!(self, h => h.offsets_for_times(query), b => b.offsets_for_times(query))
    }
    pub fn close(&self) -> R<()> {
        both!(self, h => h.close(), b => b.close())
    }

    /// Polls until `count` records came (failing past `within`), then checks that nothing more
    /// comes within `quiet`.
    pub fn read_exactly(
        &self,
        count: usize,
        within: Duration,
        quiet: Duration,
    ) -> Vec<ConsumerRecord> {
        let got = self.read(count, within);
        let extra = self.poll(quiet).expect("poll");
        assert!(
            extra.is_empty(),
            "{}: {} unexpected extra records, first {:?}",
            self.driver(),
            extra.count(),
            extra.iter().next()
        );
        got
    }

    /// Polls until `count` records came; fails past `within`.
    pub fn read(&self, count: usize, within: Duration) -> Vec<ConsumerRecord> {
        let deadline = Instant::now() + within;
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: read {} of {count} records in {within:?}",
                self.driver(),
                got.len()
            );
            let batch = self
                .poll(left.min(Duration::from_millis(500)))
                .unwrap_or_else(|e| panic!("{}: poll: {e}", self.driver()));
            got.extend(batch);
        }
        assert_eq!(
            got.len(),
            count,
            "{}: more records than expected",
            self.driver()
        );
        got
    }
}

/// A consumer config for `bootstrap` with `extra` options (kafka-python names).
pub fn consumer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut b = ConsumerConfig::builder()
        .set("bootstrap_servers", bootstrap)
        .set("client_id", "kafkit-consumer-interop")
        .set("auto_offset_reset", "earliest")
        .set("fetch_max_wait_ms", "100")
        .set("default_api_timeout_ms", "20000");
    for (k, v) in extra {
        b = b.set(k, v);
    }
    b.build().expect("a valid consumer config")
}

/// `topic`'s partitions `0..n`.
pub fn partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

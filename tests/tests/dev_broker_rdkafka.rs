//! librdkafka against kafkit's development broker (the simulated cluster on real sockets):
//! byte-exact round trips through every codec, and a consumer group splitting a topic.
//!
//! Set `DEV_BROKER_RDKAFKA_DEBUG=protocol,cgrp` (any librdkafka `debug` value) to print
//! librdkafka's debug log on stderr.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};

/// Prints librdkafka's log when `DEV_BROKER_RDKAFKA_DEBUG` is set (the `log` crate has no
/// logger in tests).
#[derive(Clone)]
struct Log(&'static str);

impl ClientContext for Log {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if debug().is_some() || (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() % 100_000)
                .unwrap_or(0);
            eprintln!("{ms:>5} [{} {level:?} {fac}] {log_message}", self.0);
        }
    }
}

impl ConsumerContext for Log {}

impl rdkafka::producer::ProducerContext for Log {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Keeps librdkafka's log lines (for asserting on an expected error).
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<String>>>);

impl ClientContext for Recording {
    fn log(&self, _: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.lock().unwrap().push(format!("{fac}: {log_message}"));
    }
}

impl ConsumerContext for Recording {}

fn debug() -> Option<String> {
    std::env::var("DEV_BROKER_RDKAFKA_DEBUG")
        .ok()
        .filter(|s| !s.is_empty())
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "5000")
        .set("broker.address.family", "v4");
    if let Some(d) = debug() {
        c.set("debug", &d);
    }
    c
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<Log> = config(bootstrap)
        .create_with_context(Log("admin"))
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    let results = futures_executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &opts,
    ))
    .expect("CreateTopics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// One record as produced: what the consumer must see byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn record(i: usize) -> Rec {
    // Compressible values of varied sizes, some empty or null, and binary bytes.
    let value = match i % 50 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            format!("value {i} ")
                .repeat(1 + i % 40)
                .into_bytes()
                .into_iter()
                .chain((0..(i % 7) as u8).map(|b| b.wrapping_mul(37)))
                .collect(),
        ),
    };
    let key = if i.is_multiple_of(33) {
        None
    } else {
        Some(format!("key-{i}").into_bytes())
    };
    let mut headers = vec![("seq".to_owned(), Some(i.to_string().into_bytes()))];
    if i.is_multiple_of(3) {
        headers.push(("bin".to_owned(), Some(vec![0, 1, 2, 0xff, (i % 256) as u8])));
    }
    if i.is_multiple_of(10) {
        headers.push(("null".to_owned(), None));
    }
    Rec {
        key,
        value,
        headers,
        timestamp: 1_700_000_000_000 + i as i64,
    }
}

fn owned_headers(r: &Rec) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    for (k, v) in &r.headers {
        h = h.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    h
}

fn received(m: &BorrowedMessage<'_>) -> Rec {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Rec {
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: m.timestamp().to_millis().unwrap_or(-1),
    }
}

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// The compression codec (attributes & 7) of every batch stored for `topic`.
fn stored_codecs(broker: &DevBroker, topic: &str) -> BTreeSet<u8> {
    let topic = topic.to_owned();
    broker
        .with_cluster(move |c| {
            let t = c.topic(&topic).expect("topic exists");
            t.partitions
                .iter()
                .flat_map(|p| p.batches().map(|b| b.data[22] & 7).collect::<Vec<_>>())
                .collect()
        })
        .expect("cluster thread alive")
}

#[test]
fn rdkafka_round_trips_1000_records_through_every_codec() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "rdkafka-codecs";
    create_topic(&bootstrap, topic, 3);
    let started = Instant::now();

    // 200 records per codec, each codec through its own FutureProducer.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sent: BTreeMap<(i32, i64), Rec> = BTreeMap::new();
    for (c, codec) in CODECS.iter().enumerate() {
        let producer: FutureProducer<Log> = config(&bootstrap)
            .set("compression.type", *codec)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .create_with_context(Log("producer"))
            .expect("producer");
        let records: Vec<Rec> = (c * 200..(c + 1) * 200).map(record).collect();
        // Enqueue all 200 at once (`send_result`), then await the delivery reports.
        let futures: Vec<_> = records
            .iter()
            .map(|r| {
                let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                    .timestamp(r.timestamp)
                    .headers(owned_headers(r));
                if let Some(k) = &r.key {
                    fr = fr.key(k.as_slice());
                }
                if let Some(v) = &r.value {
                    fr = fr.payload(v.as_slice());
                }
                producer
                    .send_result(fr)
                    .unwrap_or_else(|(e, _)| panic!("{codec}: enqueue failed: {e}"))
            })
            .collect();
        let deliveries = rt.block_on(async {
            let mut out = Vec::new();
            for f in futures {
                let d = tokio::time::timeout(Duration::from_secs(15), f)
                    .await
                    .unwrap_or_else(|_| panic!("{codec}: no delivery report"))
                    .expect("delivery report");
                out.push(d);
            }
            out
        });
        for (r, d) in records.into_iter().zip(deliveries) {
            let delivery = d.unwrap_or_else(|(e, _)| panic!("{codec}: delivery failed: {e}"));
            assert!(
                sent.insert((delivery.partition, delivery.offset), r)
                    .is_none(),
                "{codec}: offset handed out twice"
            );
        }
    }
    assert_eq!(sent.len(), 1000);
    assert_eq!(
        stored_codecs(&broker, topic),
        (0u8..=4).collect::<BTreeSet<_>>(),
        "batches of every codec are stored as produced"
    );

    // Read everything back from the beginning of each partition.
    let consumer: BaseConsumer<Log> = config(&bootstrap)
        .set("group.id", "rdkafka-codecs-reader")
        .set("enable.auto.commit", "false")
        .create_with_context(Log("consumer"))
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<(i32, i64), Rec> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < sent.len() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let prev = got.insert((m.partition(), m.offset()), received(&m));
                assert!(prev.is_none(), "offset {} read twice", m.offset());
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    assert_eq!(got.len(), sent.len(), "every record read back");
    for (at, want) in &sent {
        assert_eq!(got.get(at), Some(want), "record at {at:?}");
    }
    eprintln!(
        "rdkafka round trip: {} records, codecs {CODECS:?}, 3 brokers, {:?}",
        got.len(),
        started.elapsed()
    );

    // The same records through a StreamConsumer (the async API).
    let _runtime = rt.enter();
    let stream: StreamConsumer<Log> = config(&bootstrap)
        .set("group.id", "rdkafka-codecs-stream")
        .set("enable.auto.commit", "false")
        .create_with_context(Log("stream"))
        .expect("stream consumer");
    stream.assign(&tpl).expect("assign");
    let count = rt.block_on(async {
        let mut n = 0;
        while n < sent.len() {
            let m = tokio::time::timeout(Duration::from_secs(10), stream.recv())
                .await
                .expect("stream consumer stalled")
                .expect("stream consumer error");
            let want = &sent[&(m.partition(), m.offset())];
            assert_eq!(&received(&m), want);
            n += 1;
        }
        n
    });
    assert_eq!(count, 1000);
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

/// What one group member saw.
#[derive(Default)]
struct MemberState {
    assignment: BTreeSet<i32>,
    records: Vec<(i32, i64, Vec<u8>)>,
}

/// A librdkafka group member polling on its own thread.
struct Member {
    state: Arc<Mutex<MemberState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &'static str, i: usize) -> Member {
        let state: Arc<Mutex<MemberState>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<Log> = config(bootstrap)
            .set("group.id", group)
            .set("client.id", format!("member-{i}"))
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "100")
            .set("max.poll.interval.ms", "10000")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "100")
            .create_with_context(Log("member"))
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let polled = consumer.poll(Duration::from_millis(50));
                    let assignment: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    let mut m = state.lock().unwrap();
                    m.assignment = assignment;
                    match polled {
                        Some(Ok(msg)) => m.records.push((
                            msg.partition(),
                            msg.offset(),
                            msg.payload().unwrap_or_default().to_vec(),
                        )),
                        Some(Err(e)) => eprintln!("member {i}: {e}"),
                        None => {}
                    }
                }
                // Dropping the consumer commits and leaves the group (LeaveGroup).
                drop(consumer);
            })
        };
        Member {
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.state.lock().unwrap().assignment.clone()
    }

    fn count(&self) -> usize {
        self.state.lock().unwrap().records.len()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `members` own disjoint sets of `per_member` partitions covering `0..total`.
fn settle(members: &[&Member], per_member: usize, total: i32) -> Vec<BTreeSet<i32>> {
    let started = Instant::now();
    loop {
        let a: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assignment()).collect();
        let all: BTreeSet<i32> = a.iter().flatten().copied().collect();
        let sum: usize = a.iter().map(BTreeSet::len).sum();
        if sum == total as usize
            && all == (0..total).collect()
            && a.iter().all(|s| s.len() == per_member)
        {
            return a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the group did not settle: {a:?} after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Produces `range` as "group record {i}" to partition `i % partitions`; returns payload →
/// partition.
fn produce_numbered(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
) -> HashMap<Vec<u8>, i32> {
    let producer: BaseProducer<Log> = config(bootstrap)
        .set("linger.ms", "1")
        .create_with_context(Log("producer"))
        .expect("producer");
    let mut expected = HashMap::new();
    for i in range {
        let partition = (i % partitions as usize) as i32;
        let payload = format!("group record {i}").into_bytes();
        expected.insert(payload.clone(), partition);
        let mut rec = BaseRecord::<'_, (), [u8]>::to(topic)
            .partition(partition)
            .payload(&payload);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    expected
}

/// Waits until `members` consumed `n` records between them (then a little longer, to catch
/// duplicates).
fn wait_consumed(members: &[&Member], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while members.iter().map(|m| m.count()).sum::<usize>() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn rdkafka_group_of_three_splits_six_partitions_then_two_take_over() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "rdkafka-group";
    create_topic(&bootstrap, topic, 6);

    let mut members: Vec<Member> = (0..3)
        .map(|i| Member::start(&bootstrap, "rdkafka-group", topic, i))
        .collect();
    let started = Instant::now();
    let first = settle(&members.iter().collect::<Vec<_>>(), 2, 6);
    let settled = started.elapsed();

    // 600 records, 100 per partition: each consumed once, by the member owning it.
    let mut expected = produce_numbered(&bootstrap, topic, 6, 0..600);
    wait_consumed(&members.iter().collect::<Vec<_>>(), 600);
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for (p, _, payload) in &m.state.lock().unwrap().records {
            assert!(
                first[i].contains(p),
                "member {i} read partition {p}, assigned {:?}",
                first[i]
            );
            assert_eq!(expected.get(payload), Some(p), "payload on its partition");
            *seen.entry(payload.clone()).or_default() += 1;
        }
    }
    let dups = seen.values().filter(|n| **n > 1).count();
    assert_eq!(dups, 0, "records consumed more than once");
    assert_eq!(seen.len(), 600, "every record consumed");

    // Member 2 leaves (committing its offsets); the other two split its partitions and go on
    // from the committed offsets: nothing read twice, nothing missed.
    let mut leaver = members.pop().expect("three members");
    leaver.stop();
    let rest: Vec<&Member> = members.iter().collect();
    let second = settle(&rest, 3, 6);
    let before: Vec<usize> = rest.iter().map(|m| m.count()).collect();
    expected.extend(produce_numbered(&bootstrap, topic, 6, 600..900));
    wait_consumed(&rest, 600 + 300 - leaver.count());
    let mut seen_after: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, m) in rest.iter().enumerate() {
        for (p, _, payload) in &m.state.lock().unwrap().records[before[i]..] {
            assert!(second[i].contains(p), "member {i} read partition {p}");
            *seen_after.entry(payload.clone()).or_default() += 1;
        }
    }
    let new: BTreeSet<String> = seen_after
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let old_again: Vec<&String> = new
        .iter()
        .filter(|k| {
            k.rsplit(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < 600)
        })
        .collect();
    assert!(
        old_again.is_empty(),
        "after the rebalance, {} records were read again (committed offsets not honoured), \
         e.g. {:?}",
        old_again.len(),
        old_again.first()
    );
    assert_eq!(seen_after.len(), 300, "every new record consumed");
    assert!(seen_after.values().all(|n| *n == 1), "no duplicates");
    eprintln!(
        "rdkafka group: 3 members settled on {first:?} in {settled:?}, 600 records consumed \
         once each; after one left, 2 members on {second:?} consumed 300 more once each"
    );
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

#[test]
fn rdkafka_sasl_plain_idempotent_producer_and_committed_offsets() {
    let broker =
        DevBroker::start(DevBrokerConfig::new(3).sasl_user("PLAIN", "alice", "alice-secret"))
            .expect("dev broker");
    let bootstrap = broker.bootstrap();
    let sasl = |password: &str| {
        let mut c = config(&bootstrap);
        c.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", "alice")
            .set("sasl.password", password);
        c
    };

    // A wrong password: metadata fails (librdkafka reports the authentication failure). The log
    // line reaches the context only when the client's queue is served, and on a loaded machine
    // the handshake can end after a short metadata call has timed out: ask and poll again until
    // the log shows it or 30 s have passed.
    let log = Recording::default();
    let bad: BaseConsumer<Recording> = sasl("wrong")
        .set("group.id", "never")
        .create_with_context(log.clone())
        .expect("consumer");
    let auth_failed = |lines: &[String]| {
        lines.iter().any(|l| {
            l.contains(
                "SASL authentication error: Authentication failed: Invalid username or password",
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        bad.fetch_metadata(None, Duration::from_secs(1))
            .expect_err("metadata with a wrong password");
        // Serves librdkafka's queue, where rust-rdkafka delivers log lines.
        let _ = bad.poll(Duration::from_millis(100));
        if auth_failed(&log.0.lock().unwrap()) || Instant::now() >= deadline {
            break;
        }
    }
    drop(bad);
    let lines = log.0.lock().unwrap();
    assert!(
        auth_failed(&lines),
        "librdkafka saw no authentication error in 30 s: {lines:?}"
    );
    drop(lines);

    // An idempotent producer (InitProducerId, sequence numbers, acks=all).
    let topic = "rdkafka-idempotent";
    let producer: BaseProducer<Log> = sasl("alice-secret")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create_with_context(Log("producer"))
        .expect("producer");
    for i in 0..300 {
        let payload = format!("idempotent {i}");
        let key = format!("k{}", i % 7);
        let mut rec = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("idempotent flush");
    assert!(producer.client().fatal_error().is_none());
    let pids = broker
        .with_cluster(move |c| {
            let t = c.topic(topic).expect("auto-created");
            t.partitions
                .iter()
                .flat_map(|p| p.batches().map(|b| b.producer_id).collect::<Vec<_>>())
                .collect::<BTreeSet<i64>>()
        })
        .unwrap();
    assert_eq!(pids.len(), 1, "one producer id: {pids:?}");
    assert!(pids.iter().all(|p| *p >= 0), "{pids:?}");

    // Consume with manual commits; committed() reads them back (OffsetCommit/OffsetFetch).
    let consumer: BaseConsumer<Log> = sasl("alice-secret")
        .set("group.id", "rdkafka-commits")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(Log("consumer"))
        .expect("consumer");
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("metadata");
    let partitions = meta.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while n < 300 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            next.insert(m.partition(), m.offset() + 1);
            n += 1;
        }
    }
    assert_eq!(n, 300);
    let mut commit = TopicPartitionList::new();
    for (p, o) in &next {
        commit
            .add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer
        .commit(&commit, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let committed = consumer
        .committed_offsets(commit.clone(), Duration::from_secs(5))
        .expect("committed");
    for e in committed.elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(next[&e.partition()]),
            "partition {}",
            e.partition()
        );
    }
    for (p, o) in &next {
        let (lo, hi) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(5))
            .expect("watermarks");
        assert_eq!((lo, hi), (0, *o), "watermarks of partition {p}");
    }
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

#[test]
fn rdkafka_admin_topics_partitions_configs_and_groups() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let admin: AdminClient<Log> = config(&bootstrap)
        .create_with_context(Log("admin"))
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    use futures_executor::block_on as block;

    create_topic(&bootstrap, "admin-a", 2);
    // Creating it again: TOPIC_ALREADY_EXISTS.
    let again = block(admin.create_topics(
        &[NewTopic::new("admin-a", 2, TopicReplication::Fixed(1))],
        &opts,
    ))
    .expect("CreateTopics");
    assert!(
        matches!(
            &again[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))
        ),
        "{again:?}"
    );
    // More partitions.
    let grown =
        block(admin.create_partitions(&[rdkafka::admin::NewPartitions::new("admin-a", 5)], &opts))
            .expect("CreatePartitions");
    assert!(grown[0].is_ok(), "{grown:?}");
    let probe: BaseConsumer<Log> = config(&bootstrap)
        .create_with_context(Log("probe"))
        .unwrap();
    let meta = probe
        .fetch_metadata(Some("admin-a"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(meta.topics()[0].partitions().len(), 5);

    // Topic configs: set one, read it back.
    let set = block(
        admin.alter_configs(
            &[
                rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(
                    "admin-a",
                ))
                .set("retention.ms", "12345"),
            ],
            &opts,
        ),
    )
    .expect("AlterConfigs");
    assert!(set[0].is_ok(), "{set:?}");
    let described = block(admin.describe_configs(
        &[rdkafka::admin::ResourceSpecifier::Topic("admin-a")],
        &opts,
    ))
    .expect("DescribeConfigs");
    let resource = described[0].as_ref().expect("topic configs");
    assert_eq!(
        resource
            .get("retention.ms")
            .and_then(|e| e.value.as_deref()),
        Some("12345")
    );

    // Delete it.
    let deleted = block(admin.delete_topics(&["admin-a"], &opts)).expect("DeleteTopics");
    assert!(deleted[0].is_ok(), "{deleted:?}");
    let gone = broker
        .with_cluster(|c| c.topic("admin-a").is_none())
        .unwrap();
    assert!(gone, "topic deleted in the cluster");

    // Groups: a member joins; the group is listed and described.
    create_topic(&bootstrap, "admin-g", 2);
    let member = Member::start(&bootstrap, "admin-group", "admin-g", 0);
    settle(&[&member], 2, 2);
    let groups = probe
        .fetch_group_list(Some("admin-group"), Duration::from_secs(5))
        .expect("groups");
    let g = &groups.groups()[0];
    assert_eq!(g.name(), "admin-group");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.members().len(), 1);
    assert_eq!(g.members()[0].client_id(), "member-0");
    drop(member);
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

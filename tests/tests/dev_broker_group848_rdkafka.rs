//! librdkafka consumers with `group.protocol=consumer` (KIP-848) against kafkit's development
//! broker: three members split a six-partition topic disjointly and read every record once;
//! one leaves and the other two take its partitions over from the committed offsets. A
//! `--nocapture` run also prints how long a three-member group takes to become stable with
//! the classic and with the consumer protocol.
//!
//! Set `DEV_BROKER_RDKAFKA_DEBUG=cgrp` (any librdkafka `debug` value) to print librdkafka's
//! debug log on stderr.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};

#[derive(Clone)]
struct Log(&'static str);

impl ClientContext for Log {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if debug().is_some() || (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("[{} {level:?} {fac}] {log_message}", self.0);
        }
    }
}

impl ConsumerContext for Log {}

impl rdkafka::producer::ProducerContext for Log {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

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

#[derive(Default)]
struct Seen {
    assignment: BTreeSet<i32>,
    records: Vec<(i32, Vec<u8>)>,
}

/// A librdkafka group member polling on its own thread.
struct Member {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Classic,
    Consumer,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, i: usize, protocol: Protocol) -> Member {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut c = config(bootstrap);
        c.set("group.id", group)
            .set("client.id", format!("member-{i}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "100");
        match protocol {
            // Session and heartbeat are the broker's business under KIP-848.
            Protocol::Consumer => c.set("group.protocol", "consumer"),
            Protocol::Classic => c.set("group.protocol", "classic"),
        };
        let consumer: BaseConsumer<Log> = c.create_with_context(Log("member")).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let polled = consumer.poll(Duration::from_millis(50));
                    let assignment: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    let mut s = seen.lock().unwrap();
                    s.assignment = assignment;
                    match polled {
                        Some(Ok(msg)) => s
                            .records
                            .push((msg.partition(), msg.payload().unwrap_or_default().to_vec())),
                        Some(Err(e)) => eprintln!("member {i}: {e}"),
                        None => {}
                    }
                }
                // Dropping the consumer commits and leaves the group (a heartbeat with epoch
                // -1).
                drop(consumer);
            })
        };
        Member {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.seen.lock().unwrap().assignment.clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().records.len()
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
fn settle(
    members: &[&Member],
    per_member: usize,
    total: i32,
    limit: Duration,
) -> Vec<BTreeSet<i32>> {
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
            started.elapsed() < limit,
            "the group did not settle: {a:?} after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn produce(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) -> HashMap<Vec<u8>, i32> {
    let producer: BaseProducer<Log> = config(bootstrap)
        .set("linger.ms", "1")
        .create_with_context(Log("producer"))
        .expect("producer");
    let mut expected = HashMap::new();
    for i in range {
        let partition = (i % 6) as i32;
        let payload = format!("kip848 record {i}").into_bytes();
        expected.insert(payload.clone(), partition);
        producer
            .send(
                BaseRecord::<'_, (), [u8]>::to(topic)
                    .partition(partition)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    expected
}

fn wait_consumed(members: &[&Member], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while members.iter().map(|m| m.count()).sum::<usize>() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A little longer, to catch duplicates.
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn rdkafka_consumer_protocol_group_splits_six_partitions_then_two_take_over() {
    let mut cfg = DevBrokerConfig::new(3);
    // A short heartbeat interval keeps the test quick (Kafka's default is 5 s).
    cfg.cluster.group_consumer_heartbeat_interval_ms = 250;
    let broker = DevBroker::start(cfg).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "kip848-group";
    create_topic(&bootstrap, topic, 6);
    let mut members: Vec<Member> = (0..3)
        .map(|i| Member::start(&bootstrap, "kip848", topic, i, Protocol::Consumer))
        .collect();
    let first = settle(
        &members.iter().collect::<Vec<_>>(),
        2,
        6,
        Duration::from_secs(30),
    );

    let expected = produce(&bootstrap, topic, 0..600);
    wait_consumed(&members.iter().collect::<Vec<_>>(), 600);
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for (p, payload) in &m.seen.lock().unwrap().records {
            assert!(
                first[i].contains(p),
                "member {i} read partition {p}, assigned {:?}",
                first[i]
            );
            assert_eq!(expected.get(payload), Some(p));
            *seen.entry(payload.clone()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 600, "every record consumed");
    assert!(seen.values().all(|n| *n == 1), "no record consumed twice");
    let group = broker
        .with_cluster(|c| {
            let g = c
                .consumer_groups()
                .group("kip848")
                .expect("a consumer group");
            (g.state().name(), g.members.len())
        })
        .expect("cluster");
    assert_eq!(group, ("Stable", 3));

    // Member 2 leaves; the other two split its partitions and go on from the committed
    // offsets: nothing read twice, nothing missed.
    let mut leaver = members.pop().expect("three members");
    leaver.stop();
    let rest: Vec<&Member> = members.iter().collect();
    let second = settle(&rest, 3, 6, Duration::from_secs(30));
    let before: Vec<usize> = rest.iter().map(|m| m.count()).collect();
    produce(&bootstrap, topic, 600..900);
    wait_consumed(&rest, 600 + 300 - leaver.count());
    let mut after: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, m) in rest.iter().enumerate() {
        for (p, payload) in &m.seen.lock().unwrap().records[before[i]..] {
            assert!(second[i].contains(p), "member {i} read partition {p}");
            *after.entry(payload.clone()).or_default() += 1;
        }
    }
    let reread = after
        .keys()
        .filter_map(|k| {
            String::from_utf8_lossy(k)
                .rsplit(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .filter(|n| *n < 600)
        .count();
    assert_eq!(reread, 0, "records read again after the member left");
    assert_eq!(after.len(), 300, "every new record consumed");
    assert!(after.values().all(|n| *n == 1), "no duplicates");
    let members_left = broker
        .with_cluster(|c| c.consumer_groups().group("kip848").map(|g| g.members.len()))
        .flatten();
    assert_eq!(members_left, Some(2));
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

/// The time from starting three members to a stable split, per protocol, with the clients'
/// and broker's default timings. Printed, not asserted (run with `--nocapture`).
#[test]
fn rdkafka_three_member_group_stabilization_time_classic_vs_consumer() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let mut report = Vec::new();
    for (i, protocol) in [Protocol::Classic, Protocol::Consumer]
        .into_iter()
        .enumerate()
    {
        let topic = format!("kip848-timing-{i}");
        create_topic(&bootstrap, &topic, 6);
        let group = format!("timing-{protocol:?}");
        let started = Instant::now();
        let members: Vec<Member> = (0..3)
            .map(|k| Member::start(&bootstrap, &group, &topic, k, protocol))
            .collect();
        settle(
            &members.iter().collect::<Vec<_>>(),
            2,
            6,
            Duration::from_secs(120),
        );
        report.push((protocol, started.elapsed()));
    }
    for (protocol, took) in &report {
        eprintln!("3-member group stable with the {protocol:?} protocol in {took:?} (defaults)");
    }
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

//! librdkafka against the development broker under rebalances and faults: a cooperative
//! group growing, static membership across a restart, and an idempotent producer riding
//! through a leader crash.
//!
//! Set `DEV_BROKER_RDKAFKA_DEBUG=protocol,cgrp` to print librdkafka's debug log on stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

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

/// Delivery failures of every producer in this suite.
static DELIVERY_FAILURES: AtomicUsize = AtomicUsize::new(0);

impl rdkafka::producer::ProducerContext for Log {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            eprintln!("[{}] delivery failed: {e}", self.0);
            DELIVERY_FAILURES.fetch_add(1, Ordering::SeqCst);
        }
    }
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
        .set("broker.address.family", "v4")
        .set("topic.metadata.refresh.interval.ms", "500")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200")
        .set("retry.backoff.ms", "20");
    if let Some(d) = debug() {
        c.set("debug", &d);
    }
    c
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32, replication: i32) {
    let admin: AdminClient<Log> = config(bootstrap)
        .create_with_context(Log("admin"))
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
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

/// A group member polling on its own thread, recording its assignment and what it read.
struct Member {
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    /// Every distinct assignment in turn.
    history: Arc<Mutex<Vec<BTreeSet<i32>>>>,
    records: Arc<Mutex<Vec<(i32, i64, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, topic: &'static str, extra: &[(&str, &str)]) -> Member {
        let mut c = config(bootstrap);
        c.set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "100")
            .set("max.poll.interval.ms", "10000")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "100");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        let consumer: BaseConsumer<Log> = c.create_with_context(Log("member")).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let assignment: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let records: Arc<Mutex<Vec<(i32, i64, String)>>> = Arc::default();
        let history: Arc<Mutex<Vec<BTreeSet<i32>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (assignment, records, stop) = (assignment.clone(), records.clone(), stop.clone());
            let history = history.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let polled = consumer.poll(Duration::from_millis(50));
                    let now: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    let mut h = history.lock().unwrap();
                    if h.last() != Some(&now) {
                        h.push(now.clone());
                    }
                    drop(h);
                    *assignment.lock().unwrap() = now;
                    match polled {
                        Some(Ok(m)) => records.lock().unwrap().push((
                            m.partition(),
                            m.offset(),
                            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                        )),
                        Some(Err(e)) => eprintln!("member: {e}"),
                        None => {}
                    }
                }
                drop(consumer);
            })
        };
        Member {
            assignment,
            history,
            records,
            stop,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
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

fn settle(members: &[&Member], total: i32, within: Duration) -> Vec<BTreeSet<i32>> {
    let started = Instant::now();
    let per = total as usize / members.len();
    loop {
        let a: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assignment()).collect();
        let all: BTreeSet<i32> = a.iter().flatten().copied().collect();
        if a.iter().map(BTreeSet::len).sum::<usize>() == total as usize
            && all == (0..total).collect()
            && a.iter().all(|s| s.len() == per)
        {
            return a;
        }
        assert!(
            started.elapsed() < within,
            "the group did not settle: {a:?} after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn produce(bootstrap: &str, topic: &str, partitions: i32, range: std::ops::Range<usize>) {
    let producer: BaseProducer<Log> = config(bootstrap)
        .set("linger.ms", "1")
        .create_with_context(Log("producer"))
        .expect("producer");
    for i in range {
        let payload = format!("r{i}");
        let mut rec = BaseRecord::<'_, (), str>::to(topic)
            .partition((i % partitions as usize) as i32)
            .payload(&payload);
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
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn consumed(members: &[&Member]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for m in members {
        for (_, _, p) in m.records.lock().unwrap().iter() {
            *seen.entry(p.clone()).or_default() += 1;
        }
    }
    seen
}

fn wait_for(members: &[&Member], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumed(members).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn rdkafka_cooperative_sticky_group_grows_from_two_to_three() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "coop";
    create_topic(&bootstrap, topic, 6, 1);
    let extra = [
        ("group.id", "coop-group"),
        ("partition.assignment.strategy", "cooperative-sticky"),
    ];
    let a = Member::start(&bootstrap, topic, &extra);
    let b = Member::start(&bootstrap, topic, &extra);
    let two = settle(&[&a, &b], 6, Duration::from_secs(20));
    produce(&bootstrap, topic, 6, 0..300);
    wait_for(&[&a, &b], 300);
    let c = Member::start(&bootstrap, topic, &extra);
    let three = settle(&[&a, &b, &c], 6, Duration::from_secs(20));
    // Sticky: the first two kept partitions they had.
    assert!(three[0].is_subset(&two[0]), "{two:?} -> {three:?}");
    assert!(three[1].is_subset(&two[1]), "{two:?} -> {three:?}");
    produce(&bootstrap, topic, 6, 300..600);
    wait_for(&[&a, &b, &c], 600);
    let seen = consumed(&[&a, &b, &c]);
    assert_eq!(seen.len(), 600, "every record consumed");
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

#[test]
fn rdkafka_static_member_restarts_without_a_rebalance() {
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "static";
    create_topic(&bootstrap, topic, 4, 1);
    let one = [("group.id", "static-group"), ("group.instance.id", "one")];
    let two = [("group.id", "static-group"), ("group.instance.id", "two")];
    let a = Member::start(&bootstrap, topic, &one);
    let mut b = Member::start(&bootstrap, topic, &two);
    let before = settle(&[&a, &b], 4, Duration::from_secs(20));
    // A static member closing does not leave the group; back within the session timeout,
    // it gets its partitions back and the other member keeps its own throughout.
    let seen_by_a = a.history.lock().unwrap().len();
    b.stop();
    let b = Member::start(&bootstrap, topic, &two);
    let after = settle(&[&a, &b], 4, Duration::from_secs(20));
    assert_eq!(before, after);
    assert_eq!(
        a.history.lock().unwrap().len(),
        seen_by_a,
        "member one's assignment changed while two restarted: {:?}",
        a.history.lock().unwrap()
    );
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

#[test]
fn rdkafka_idempotent_producer_rides_through_a_leader_crash() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("dev broker");
    let bootstrap = broker.bootstrap();
    let topic = "failover";
    create_topic(&bootstrap, topic, 1, 3);
    let leader = broker
        .with_cluster(|c| c.partition("failover", 0).map(|p| p.leader))
        .unwrap()
        .expect("partition 0");
    let producer: BaseProducer<Log> = config(&bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "20000")
        .create_with_context(Log("producer"))
        .expect("producer");
    let started = Instant::now();
    for i in 0..2000 {
        if i == 1000 {
            broker
                .with_cluster(move |c| c.crash_broker(leader, Instant::now()))
                .unwrap();
        }
        let payload = format!("f{i}");
        let mut rec = BaseRecord::<'_, (), str>::to(topic)
            .partition(0)
            .payload(&payload);
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
    producer.flush(Duration::from_secs(20)).expect("flush");
    assert!(
        producer.client().fatal_error().is_none(),
        "{:?}",
        producer.client().fatal_error()
    );
    assert_eq!(DELIVERY_FAILURES.load(Ordering::SeqCst), 0);
    let new_leader = broker
        .with_cluster(|c| c.partition("failover", 0).map(|p| p.leader))
        .unwrap()
        .unwrap();
    assert_ne!(new_leader, leader);
    // Everything is there once, in order.
    let consumer: BaseConsumer<Log> = config(&bootstrap)
        .set("group.id", "failover-reader")
        .create_with_context(Log("consumer"))
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 2000 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    let want: Vec<String> = (0..2000).map(|i| format!("f{i}")).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "records lost, duplicated or reordered");
    eprintln!(
        "rdkafka failover: 2000 idempotent records through a crash of leader {leader} (now \
         {new_leader}) in {:?}",
        started.elapsed()
    );
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

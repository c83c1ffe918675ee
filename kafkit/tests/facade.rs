//! A program needs only `kafkit`: create a topic, produce a few records and read them back in
//! a consumer group, on tokio (the default runtime, through the prelude) and on the blocking
//! driver. Against the development broker started in-process (the `sim` feature), or the
//! cluster `KAFKA_BOOTSTRAP` names.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kafkit::prelude::*;
use kafkit::sim::{DevBroker, DevBrokerConfig};

const RECORDS: usize = 5;

/// The cluster in `KAFKA_BOOTSTRAP`, or a development broker of one broker on a free port
/// (kept running while the returned guard lives).
fn cluster() -> (String, Option<DevBroker>) {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => (b, None),
        _ => {
            let broker = DevBroker::start(DevBrokerConfig::new(1).port(0)).expect("dev broker");
            (broker.bootstrap(), Some(broker))
        }
    }
}

/// Milliseconds since the epoch: the wall clock records are stamped with.
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// A topic name no earlier run used, for shared external clusters.
fn fresh_topic(prefix: &str) -> String {
    format!("{prefix}-{}", wall_ms())
}

fn record(topic: &str, i: usize) -> ProducerRecord {
    ProducerRecord::new(topic)
        .key(format!("key-{i}"))
        .value(format!("value-{i}"))
        .header("via", "kafkit facade")
}

fn producer_config(bootstrap: &str) -> ProducerConfig {
    ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .acks(Acks::All)
        .linger_ms(0)
        .compression_type(CompressionType::Lz4)
        .build()
        .expect("producer config")
}

fn consumer_config(bootstrap: &str, group: &str) -> ConsumerConfig {
    ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .build()
        .expect("consumer config")
}

fn admin_config(bootstrap: &str) -> AdminConfig {
    AdminConfig::builder()
        .bootstrap_servers(bootstrap)
        .build()
        .expect("admin config")
}

/// Checks what was read back: every record once, in order, as written, stamped with the
/// wall clock of the run.
fn check(topic: &str, read: &[ConsumerRecord], started_ms: i64) {
    assert_eq!(read.len(), RECORDS, "{read:?}");
    for (i, r) in read.iter().enumerate() {
        assert_eq!(&*r.topic, topic);
        assert_eq!(r.offset, i as i64, "in order, from the start");
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        let header = r.headers.get("via").expect("header kept");
        assert_eq!(header.as_deref(), Some(&b"kafkit facade"[..]));
        assert!(
            r.timestamp >= started_ms - 1_000 && r.timestamp <= wall_ms() + 1_000,
            "stamped with the wall clock: {} vs {started_ms}",
            r.timestamp
        );
    }
}

#[test]
fn tokio_programs_need_only_the_prelude() {
    let (bootstrap, _broker) = cluster();
    let topic = fresh_topic("facade-tokio");
    let started_ms = wall_ms();
    let rt = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let read = rt.block_on(async {
        let admin = admin(&admin_config(&bootstrap)).expect("admin");
        let created = admin
            .create_topics(vec![NewTopic::new(topic.as_str(), 1, 1)], false)
            .await
            .expect("create_topics ran");
        created[&topic].clone().expect("topic created");

        let producer = producer(&producer_config(&bootstrap)).expect("producer");
        for i in 0..RECORDS {
            let written: RecordMetadata = producer
                .send(record(&topic, i))
                .await
                .expect("record acknowledged");
            assert_eq!(written.offset, i as i64);
        }
        producer.close(None).await.expect("producer closed");

        let consumer = consumer(&consumer_config(
            &bootstrap,
            &fresh_topic("facade-tokio-group"),
        ))
        .expect("consumer");
        consumer
            .subscribe([topic.as_str()])
            .await
            .expect("subscribed");
        let mut read = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while read.len() < RECORDS && Instant::now() < deadline {
            let records = consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll");
            read.extend(records);
        }
        consumer.commit(None).await.expect("offsets committed");
        consumer.close().await.expect("consumer closed");
        read
    });
    check(&topic, &read, started_ms);
}

#[test]
fn blocking_programs_need_only_kafkit() {
    use kafkit::blocking::{Admin, Consumer, Producer, Wait};

    let (bootstrap, _broker) = cluster();
    let topic = fresh_topic("facade-blocking");
    let started_ms = wall_ms();
    let admin = Admin::start(&admin_config(&bootstrap)).expect("admin");
    let created = admin
        .create_topics(vec![NewTopic::new(topic.as_str(), 1, 1)], false)
        .expect("create_topics ran");
    created[&topic].clone().expect("topic created");

    let producer = Producer::start(&producer_config(&bootstrap)).expect("producer");
    let deliveries: Vec<_> = (0..RECORDS)
        .map(|i| {
            producer
                .enqueue(record(&topic, i))
                .expect("record buffered")
        })
        .collect();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let written = delivery.wait().expect("record acknowledged");
        assert_eq!(written.offset, i as i64);
    }
    producer.close(None).expect("producer closed");

    let group = fresh_topic("facade-blocking-group");
    let consumer = Consumer::start(&consumer_config(&bootstrap, &group)).expect("consumer");
    consumer.subscribe([topic.as_str()]).expect("subscribed");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < RECORDS && Instant::now() < deadline {
        read.extend(consumer.poll(Duration::from_millis(500)).expect("poll"));
    }
    consumer.commit(None).expect("offsets committed");
    consumer.close().expect("consumer closed");
    check(&topic, &read, started_ms);

    // The group's committed offset is where it stopped reading.
    let committed = admin
        .list_consumer_group_offsets(&group, None)
        .expect("group offsets");
    let tp = TopicPartition::new(topic.as_str(), 0);
    assert_eq!(committed.get(&tp).map(|o| o.offset), Some(RECORDS as i64));
}

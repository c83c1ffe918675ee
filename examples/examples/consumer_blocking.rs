//! The consumer without an async runtime (kafkit-blocking):
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example consumer_blocking
//! KAFKA_BOOTSTRAP=kafka:9092 cargo run --release -p kafkit-examples --example consumer_blocking
//! ```
//!
//! Starts kafkit's development broker (3 in-memory brokers on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, writes keyed records with headers with kafkit's
//! blocking producer, then assigns every partition of the topic to a consumer (manual
//! assignment, no group) and iterates over the records (`for record in &consumer`, which ends
//! once `consumer_timeout_ms` passes without a record, as kafka-python's iterator does). It
//! prints the records and the positions, checks that every partition was read to its end,
//! then looks up an offset by timestamp, seeks there and reads the rest again with typed
//! (deserialized) keys and values.

use std::collections::BTreeMap;

use kafkit::blocking::{Consumer, Producer};
use kafkit::prelude::*;
use kafkit::serializer::StringDeserializer;
use kafkit::sim::{DevBroker, DevBrokerConfig};

const TOPIC: &str = "consumer-blocking";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, _broker) = cluster()?;

    // Some records to read: five users' clicks, keyed by user (one user, one partition).
    // Record 10's timestamp is kept for the lookup by time below.
    let producer = Producer::start(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .build()?,
    )?;
    let mut tenth = None;
    for i in 0..20 {
        let record = ProducerRecord::new(TOPIC)
            .key(format!("user-{}", i % 5))
            .value(format!("click {i}"))
            .header("source", "consumer_blocking");
        let metadata = producer.send(record)?;
        if i == 10 {
            tenth = Some(metadata);
        }
    }
    producer.close(None)?;
    let tenth = tenth.expect("record 10 was written");
    println!("wrote 20 records to {TOPIC}");

    // A consumer without a group: it reads the partitions it is given, from the beginning
    // (auto_offset_reset=earliest), and its iterator ends after a second without records.
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .consumer_timeout_ms(1000)
        .build()?;
    let consumer = Consumer::start(&config)?;
    let partitions: Vec<TopicPartition> = consumer
        .partitions_for_topic(TOPIC)?
        .ok_or("the topic does not exist")?
        .iter()
        .map(|p| TopicPartition::new(TOPIC, p.partition))
        .collect();
    consumer.assign(partitions.clone())?;

    let mut read = 0;
    for record in &consumer {
        println!("{}", show(&record?));
        read += 1;
    }
    println!("read {read} records, then nothing for a second");

    let ends: BTreeMap<TopicPartition, i64> = consumer.end_offsets(&partitions)?;
    for tp in &partitions {
        let position = consumer.position(tp)?;
        println!(
            "{tp}: position {position}, end offset {}, high watermark {:?}",
            ends[tp],
            consumer.highwater(tp)?
        );
        assert_eq!(position, ends[tp], "{tp} was read to its end");
    }

    // The offset of the first record at or after record 10's timestamp, in its partition:
    // seek there and read the rest of that partition again, keys and values as strings.
    let partition = TopicPartition::new(TOPIC, tenth.partition);
    let found =
        consumer.offsets_for_times(BTreeMap::from([(partition.clone(), tenth.timestamp)]))?;
    let offset = found[&partition]
        .as_ref()
        .ok_or("no record at or after that time")?
        .offset;
    println!(
        "{partition}: first offset at or after timestamp {} is {offset}",
        tenth.timestamp
    );
    consumer.assign([partition.clone()])?;
    consumer.seek(&partition, offset)?;
    let typed = consumer
        .clone()
        .with_deserializers::<String, String>(StringDeserializer, StringDeserializer);
    for record in &typed {
        let record = record?;
        println!(
            "  again: {}-{}@{} {} -> {}",
            record.topic, record.partition, record.offset, record.key, record.value
        );
    }
    consumer.close()?;
    Ok(())
}

/// A record on one line: where it is, when it was written, key, value and headers.
fn show(r: &ConsumerRecord) -> String {
    let text =
        |b: Option<&[u8]>| b.map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|h| format!("{}={}", h.key, text(h.value.as_deref())))
        .collect();
    format!(
        "{}-{}@{} timestamp {} key {} value {} headers [{}]",
        r.topic,
        r.partition,
        r.offset,
        r.timestamp,
        text(r.key.as_deref()),
        text(r.value.as_deref()),
        headers.join(",")
    )
}

/// The cluster in KAFKA_BOOTSTRAP, or a development broker of 3 brokers on free ports (kept
/// running while the returned guard lives).
fn cluster() -> Result<(String, Option<DevBroker>), Box<dyn std::error::Error>> {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => {
            println!("cluster: {b} (from KAFKA_BOOTSTRAP)");
            Ok((b, None))
        }
        _ => {
            let broker = DevBroker::start(DevBrokerConfig::new(3).port(0))?;
            let b = broker.bootstrap();
            println!("cluster: kafkit's development broker, 3 brokers at {b}");
            Ok((b, Some(broker)))
        }
    }
}

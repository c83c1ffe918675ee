//! Producing and consuming without an async runtime: the blocking driver.
//!
//! ```sh
//! cargo run -p kafkit-examples --example blocking                # the development broker
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run -p kafkit-examples --example blocking
//! cargo test -p kafkit-examples --example blocking               # what CI runs
//! ```
//!
//! Shows: `kafkit::blocking`'s `Producer` (`send` returns once the record is acknowledged)
//! and `Consumer` on plain threads; a consumer without a group that is assigned every
//! partition of a topic (manual assignment) and iterates over the records (`for record in
//! &consumer`, which ends once `consumer_timeout_ms` passes without one, as kafka-python's
//! iterator does); positions, end offsets and high watermarks; looking an offset up by
//! timestamp, seeking there and reading again with typed (deserialized) keys and values.

use std::collections::BTreeMap;

use kafkit::blocking::{Consumer, Producer};
use kafkit::prelude::*;
use kafkit::serializer::StringDeserializer;
use kafkit_examples::{cluster, unique, Error};

fn main() -> Result<(), Error> {
    let cluster = cluster()?;
    let read = run(cluster.bootstrap(), &unique("blocking"))?;
    println!("read {read} records in all");
    Ok(())
}

/// Writes 20 records to `topic`, reads them, then reads one partition again from record 10's
/// timestamp on; returns how many records were read in all.
fn run(bootstrap: &str, topic: &str) -> Result<usize, Error> {
    // Some records to read: five users' clicks, keyed by user (one user, one partition).
    // Record 10's timestamp is kept for the lookup by time below.
    let producer = Producer::start(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    let mut tenth = None;
    for i in 0..20 {
        let record = ProducerRecord::new(topic)
            .key(format!("user-{}", i % 5))
            .value(format!("click {i}"))
            .header("source", "example");
        let metadata = producer.send(record)?;
        if i == 10 {
            tenth = Some(metadata);
        }
    }
    producer.close(None)?;
    let tenth = tenth.expect("record 10 was written");
    println!("wrote 20 records to {topic}");

    // A consumer without a group: it reads the partitions it is given, from the beginning
    // (auto_offset_reset=earliest), and its iterator ends after a second without records.
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .consumer_timeout_ms(1000)
        .build()?;
    let consumer = Consumer::start(&config)?;
    let partitions: Vec<TopicPartition> = consumer
        .partitions_for_topic(topic)?
        .ok_or("the topic does not exist")?
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
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
        if position != ends[tp] {
            return Err(format!("{tp}: position {position}, end offset {}", ends[tp]).into());
        }
    }

    // The offset of the first record at or after record 10's timestamp, in its partition:
    // seek there and read the rest of that partition again, keys and values as strings.
    let partition = TopicPartition::new(topic, tenth.partition);
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
        read += 1;
    }
    consumer.close()?;
    Ok(read)
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

#[test]
fn reads_everything_then_again_from_a_timestamp() {
    let cluster = cluster().unwrap();
    let read = run(cluster.bootstrap(), &unique("blocking-test")).unwrap();
    // 20 records, then again from record 10 on in its partition: at least records 10 and 15
    // (both user-0's; earlier ones too if they share record 10's millisecond).
    assert!(read >= 22, "read {read}");
}

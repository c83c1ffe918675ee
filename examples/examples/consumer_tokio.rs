//! The consumer on tokio:
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example consumer_tokio
//! KAFKA_BOOTSTRAP=kafka:9092 cargo run --release -p kafkit-examples --example consumer_tokio
//! ```
//!
//! Starts kafkit's development broker (3 in-memory brokers on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, writes keyed records with headers with kafkit's
//! producer, then assigns every partition of the topic to a consumer (manual assignment, no
//! group), reads the records from its stream (`recv()`) until each partition reaches the end offset
//! it had when reading started, and prints the records, the positions and the high
//! watermarks.

use std::collections::BTreeMap;

use kafkit::prelude::*;
use kafkit::sim::{DevBroker, DevBrokerConfig};

const TOPIC: &str = "consumer-tokio";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, _broker) = cluster()?;

    // Some records to read: five users' clicks, keyed by user (one user, one partition).
    let producer = producer(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .build()?,
    )?;
    for i in 0..20 {
        let record = ProducerRecord::new(TOPIC)
            .key(format!("user-{}", i % 5))
            .value(format!("click {i}"))
            .header("source", "consumer_tokio");
        // Fire and forget: `close` below delivers whatever is still buffered.
        producer.send_and_forget(record).await?;
    }
    producer.close(None).await?;
    println!("wrote 20 records to {TOPIC}");

    // A consumer without a group: it reads the partitions it is given. New partitions start
    // at auto_offset_reset (earliest here; the default is latest).
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let consumer = consumer(&config)?;
    let partitions: Vec<TopicPartition> = consumer
        .partitions_for_topic(TOPIC)
        .await?
        .ok_or("the topic does not exist")?
        .iter()
        .map(|p| TopicPartition::new(TOPIC, p.partition))
        .collect();
    consumer.assign(partitions.clone()).await?;

    // Read to the end: the end offsets of now are where this run stops. The stream itself
    // never ends (it waits for more records) until the consumer is closed.
    let beginnings = consumer.beginning_offsets(partitions.clone()).await?;
    let mut ends = consumer.end_offsets(partitions.clone()).await?;
    ends.retain(|tp, end| *end > beginnings[tp]);
    let mut records = consumer.stream();
    let mut read = 0;
    while !ends.is_empty() {
        let record = records.recv().await.ok_or("the consumer closed")??;
        println!("{}", show(&record));
        read += 1;
        reached(&mut ends, &record);
    }
    println!("read {read} records");

    for tp in &partitions {
        println!(
            "{tp}: position {}, high watermark {:?}",
            consumer.position(tp.clone()).await?,
            consumer.highwater(tp.clone()).await?
        );
    }
    consumer.close().await?;
    Ok(())
}

/// Forgets the partition of `record` once it reached its end offset.
fn reached(ends: &mut BTreeMap<TopicPartition, i64>, record: &ConsumerRecord) {
    let tp = record.topic_partition();
    if ends.get(&tp).is_some_and(|end| record.offset + 1 >= *end) {
        ends.remove(&tp);
    }
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

//! The producer for async-std programs (kafkit-async-std is kafkit-smol under the name
//! async-std users look for: async-std is discontinued in favour of smol):
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example producer_async_std
//! KAFKA_BOOTSTRAP=kafka:9092 cargo run --release -p kafkit-examples --example producer_async_std
//! ```
//!
//! Starts kafkit's development broker (3 in-memory brokers on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, then sends keyed records (one key, one partition, in
//! order) and unkeyed ones (sticky batches) with headers, awaits their delivery reports,
//! flushes, prints the producer's metrics and closes it.

use kafkit::prelude::*;
use kafkit::sim::{DevBroker, DevBrokerConfig};

const TOPIC: &str = "producer-async-std";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The producer's loop runs on smol's executor threads, so any executor can await its
    // futures: here futures' own `block_on`, in an async-std program `#[async_std::main]`.
    futures_executor::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, _broker) = cluster()?;
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .compression_type(CompressionType::Lz4)
        .linger_ms(5)
        .build()?;
    let producer = kafkit::async_std::producer(&config)?;

    // Keyed records: every record of one user lands in that user's partition, in order.
    // `enqueue` returns once the record is buffered (Java's `send(r)`); the delivery future
    // resolves once the brokers acknowledged it (acks=all, idempotent: the defaults).
    // `send(r).await` would wait for each acknowledgement in turn (Java's `send(r).get()`).
    let mut deliveries = Vec::new();
    for i in 0..9 {
        let record = ProducerRecord::new(TOPIC)
            .key(format!("user-{}", i % 3))
            .value(format!("click {i}"))
            .header("source", "producer_async_std")
            .header("trace-id", format!("{i:08x}"));
        deliveries.push(producer.enqueue(record).await?);
    }
    for delivery in deliveries {
        let m = delivery.await?;
        println!(
            "{}-{}@{} ({} B key, {} B value, timestamp {})",
            m.topic,
            m.partition,
            m.offset,
            m.serialized_key_size,
            m.serialized_value_size,
            m.timestamp
        );
    }

    // Unkeyed records: the sticky partitioner fills one batch at a time. Outcomes arrive in a
    // callback (run on the producer's task: keep it short).
    for i in 0..10_000 {
        let record = ProducerRecord::new(TOPIC)
            .value(format!("event {i}"))
            .header("source", "producer_async_std");
        producer
            .send_with_callback(record, |result| {
                if let Err(e) = result {
                    eprintln!("not delivered: {e}");
                }
            })
            .await?;
    }
    producer.flush(None).await?;
    println!("flushed 10,000 unkeyed records");

    let metrics = producer.metrics().await?.to_map();
    for name in METRICS {
        if let Some(v) = metrics.get(*name) {
            println!("{name:>26} {v:.2}");
        }
    }
    producer.close(None).await?;
    Ok(())
}

/// The metrics worth a look (kafka-python's names).
const METRICS: &[&str] = &[
    "record-send-rate",
    "byte-rate",
    "batch-size-avg",
    "compression-rate-avg",
    "records-per-request-avg",
    "request-latency-avg",
    "request-latency-max",
    "record-retry-rate",
    "record-error-rate",
    "buffer-available-bytes",
];

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

//! The producer without an async runtime (kafkit-blocking):
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example producer_blocking
//! KAFKA_BOOTSTRAP=kafka:9092 cargo run --release -p kafkit-examples --example producer_blocking
//! ```
//!
//! Starts kafkit's development broker (3 in-memory brokers on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, then sends keyed records (one key, one partition, in
//! order) and unkeyed ones (sticky batches) with headers, waits for their delivery reports,
//! sends typed records through serializers, flushes, prints the producer's metrics and closes
//! it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kafkit::blocking::{Producer, Wait};
use kafkit::prelude::*;
use kafkit::serializer::{LongSerializer, StringSerializer};
use kafkit::sim::{DevBroker, DevBrokerConfig};

const TOPIC: &str = "producer-blocking";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, _broker) = cluster()?;
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .compression_type(CompressionType::Zstd)
        .linger_ms(5)
        .build()?;
    // A loop thread of its own; `Producer` is Clone + Send + Sync.
    let producer = Producer::start(&config)?;
    println!(
        "{TOPIC} has {} partitions",
        producer.partitions_for(TOPIC)?.len()
    );

    // Keyed records: `enqueue` returns once the record is buffered (Java's `send(r)`; it
    // blocks only while buffer memory is full, up to max_block_ms); `wait` blocks until the
    // brokers acknowledged it. `send` does both at once (Java's `send(r).get()`).
    let deliveries = (0..9)
        .map(|i| {
            producer.enqueue(
                ProducerRecord::new(TOPIC)
                    .key(format!("user-{}", i % 3))
                    .value(format!("click {i}"))
                    .header("source", "producer_blocking"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for delivery in deliveries {
        let m = delivery.wait()?;
        println!(
            "{}-{}@{} timestamp {}",
            m.topic, m.partition, m.offset, m.timestamp
        );
    }

    // Unkeyed records from four threads at once, outcomes counted in callbacks (which run on
    // the producer's loop thread: keep them short, never block in them).
    let delivered = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (producer, delivered) = (producer.clone(), delivered.clone());
            scope.spawn(move || {
                for i in 0..2_500 {
                    let delivered = delivered.clone();
                    let record = ProducerRecord::new(TOPIC)
                        .value(format!("thread {t} event {i}"))
                        .header("source", "producer_blocking");
                    producer
                        .send_with_callback(record, move |result| match result {
                            Ok(_) => {
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => eprintln!("not delivered: {e}"),
                        })
                        .expect("buffered");
                }
            });
        }
    });
    producer.flush(None)?;
    println!(
        "flushed: {} of 10,000 unkeyed records delivered",
        delivered.load(Ordering::Relaxed)
    );

    // Typed keys and values through serializers (Java's StringSerializer and LongSerializer).
    let balances = producer
        .clone()
        .with_serializers::<str, i64>(StringSerializer, LongSerializer);
    let m = balances.send("balances", Some("alice"), Some(&42))?;
    println!("typed record at {}-{}@{}", m.topic, m.partition, m.offset);

    let metrics = producer.metrics()?.to_map();
    for name in METRICS {
        if let Some(v) = metrics.get(*name) {
            println!("{name:>26} {v:.2}");
        }
    }
    producer.close(None)?;
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

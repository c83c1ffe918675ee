//! Producing on tokio: keyed and unkeyed records, three ways to learn their fate.
//!
//! ```sh
//! cargo run -p kafkit-examples --example produce                 # the development broker
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run -p kafkit-examples --example produce
//! cargo test -p kafkit-examples --example produce                # what CI runs
//! ```
//!
//! Shows: configuring a producer with typed setters (compression, linger, idempotence and
//! acks=all are the defaults); records with keys and headers; `send(..).await` (wait for each
//! acknowledgement, Java's `send(r).get()`), `enqueue(..)` (buffer now, await the delivery
//! later, Java's `send(r)` and its `Future`) and `send_with_callback` (a callback on the
//! producer's task); `flush`, the producer's metrics, and a graceful `close`.

use kafkit::prelude::*;
use kafkit_examples::{cluster, unique, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cluster = cluster()?;
    let topic = unique("produce");
    let last = run(cluster.bootstrap(), &topic, 10_000).await?;
    println!(
        "the last record went to {}-{}@{}",
        last.topic, last.partition, last.offset
    );
    Ok(())
}

/// Sends 10 keyed records and then `unkeyed` unkeyed ones to `topic` (created on first use,
/// as brokers do by default); returns the metadata of the last keyed one.
async fn run(bootstrap: &str, topic: &str, unkeyed: usize) -> Result<RecordMetadata, Error> {
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .client_id("example-produce")
        .compression_type(CompressionType::Lz4)
        .linger_ms(5)
        .build()?;
    let producer = producer(&config)?;

    // One record, waited for: returns once the brokers acknowledged it.
    let first = producer
        .send(
            ProducerRecord::new(topic)
                .key("user-0")
                .value("signed up")
                .header("source", "example"),
        )
        .await?;
    println!(
        "{}-{}@{}: signed up",
        first.topic, first.partition, first.offset
    );

    // Keyed records: one key, one partition, in order. `enqueue` returns once the record is
    // buffered; its delivery future resolves with the acknowledgement, so many records are in
    // flight at once.
    let mut deliveries = Vec::new();
    for i in 1..10 {
        let record = ProducerRecord::new(topic)
            .key(format!("user-{}", i % 3))
            .value(format!("click {i}"))
            .header("trace-id", format!("{i:08x}"));
        deliveries.push(producer.enqueue(record).await?);
    }
    let mut last = first;
    for delivery in deliveries {
        let m = delivery.await?;
        println!(
            "{}-{}@{} at {}",
            m.topic, m.partition, m.offset, m.timestamp
        );
        last = m;
    }

    // Unkeyed records: the sticky partitioner fills one batch at a time. Outcomes arrive in a
    // callback, run on the producer's task: keep it short.
    for i in 0..unkeyed {
        let record = ProducerRecord::new(topic).value(format!("event {i}"));
        producer
            .send_with_callback(record, |result| {
                if let Err(e) = result {
                    eprintln!("not delivered: {e}");
                }
            })
            .await?;
    }
    // Waits for every record sent so far, including those behind the callbacks.
    producer.flush(None).await?;
    println!("flushed {unkeyed} unkeyed records");

    let metrics = producer.metrics().await?.to_map();
    for name in ["record-send-rate", "batch-size-avg", "compression-rate-avg"] {
        if let Some(v) = metrics.get(name) {
            println!("{name:>22} {v:.2}");
        }
    }
    // Sends what is still buffered, then stops (Java's `close()`).
    producer.close(None).await?;
    Ok(last)
}

#[tokio::test]
async fn produces_in_key_order() {
    let cluster = cluster().unwrap();
    let topic = unique("produce-test");
    let last = run(cluster.bootstrap(), &topic, 500).await.unwrap();
    // user-0's records (offsets 0.. of its partition): "signed up", clicks 3, 6 and 9.
    assert_eq!(&*last.topic, topic.as_str());
    assert_eq!(last.offset, 3, "click 9 is user-0's fourth record");
}

//! The producer in kafkit's deterministic simulation:
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example producer_sim
//! SEED=7 cargo run --release -p kafkit-examples --example producer_sim
//! ```
//!
//! No sockets and no real time: the very producer core the drivers run sends to an in-memory
//! 3-broker cluster over simulated links on a virtual clock, every random choice drawn from
//! one seed, so a run replays exactly. It sends keyed and unkeyed records with headers, crashes
//! a partition leader half-way (the producer finds the new leader and retries; idempotence
//! keeps each record exactly once), flushes, prints metrics and closes, then reads the
//! partition logs back from the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit::core::records::{DecodeOptions, RecordBatch};
use kafkit::prelude::*;
use kafkit::sim::{ClusterConfig, ProducerSim};

const TOPIC: &str = "producer-sim";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let cluster = ClusterConfig {
        brokers: 3,
        replication_factor: 3,
        default_partitions: 3,
        ..ClusterConfig::default()
    };
    let config = ProducerConfig::builder()
        .compression_type(CompressionType::Snappy)
        .linger_ms(5)
        .request_timeout_ms(2000)
        .build()?;
    let mut p = ProducerSim::new(cluster, &config, seed)?;
    println!("seed {seed}: 3 simulated brokers, topic {TOPIC} with 3 partitions");

    // 1,000 records, one every millisecond of virtual time: a third keyed, the rest unkeyed.
    let mut deliveries: Vec<DeliveryFuture> = Vec::new();
    for i in 0..1_000 {
        let mut record = ProducerRecord::new(TOPIC)
            .value(format!("event {i}"))
            .header("source", "producer_sim");
        if i % 3 == 0 {
            record = record.key(format!("user-{}", i % 7));
        }
        deliveries.push(p.send(record));
        p.run_for(Duration::from_millis(1))?;
        if i == 500 {
            // Crash the leader of partition 0 (a replica takes over), restart it a second later.
            let leader = p
                .cluster()
                .borrow()
                .partition(TOPIC, 0)
                .map(|log| log.leader);
            if let Some(leader) = leader {
                let now = p.sim().now();
                p.cluster().borrow_mut().crash_broker(leader, now);
                println!("t={:?}: broker {leader} crashed", p.sim().elapsed());
                p.run_for(Duration::from_secs(1))?;
                let now = p.sim().now();
                p.cluster().borrow_mut().restart_broker(leader, now);
                println!("t={:?}: broker {leader} restarted", p.sim().elapsed());
            }
        }
    }
    p.flush(None)??;
    println!("t={:?}: flushed", p.sim().elapsed());

    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for mut d in deliveries {
        let m = d.try_result().expect("flush completed every record")?;
        *per_partition.entry(m.partition).or_default() += 1;
    }
    println!("delivered per partition: {per_partition:?}");

    // Rates are per second of virtual time.
    let metrics = p.metrics().to_map();
    for name in [
        "record-send-rate",
        "batch-size-avg",
        "records-per-request-avg",
        "record-retry-rate",
    ] {
        if let Some(v) = metrics.get(name) {
            println!("{name:>26} {v:.2}");
        }
    }
    p.close(None)??;

    // What the cluster holds: every record exactly once.
    let cluster = p.cluster().borrow();
    let mut stored = 0;
    for partition in 0..3 {
        let log = cluster.partition(TOPIC, partition).expect("partition");
        for batch in log.batches() {
            let batch = RecordBatch::decode(batch.data.clone(), &DecodeOptions::default())?;
            stored += batch.decode_records()?.len();
        }
    }
    println!("the cluster's logs hold {stored} records");
    assert_eq!(stored, 1_000, "nothing lost, nothing duplicated");
    Ok(())
}

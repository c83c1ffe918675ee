//! The consumer in kafkit's deterministic simulation:
//!
//! ```sh
//! cargo run --release -p kafkit-examples --example consumer_sim
//! SEED=7 cargo run --release -p kafkit-examples --example consumer_sim
//! ```
//!
//! No sockets and no real time: kafkit's producer writes keyed records with headers to an
//! in-memory 3-broker cluster over simulated links on a virtual clock; then the very consumer
//! core the drivers run takes over the same cluster, is assigned every partition and polls
//! them to their ends while the leader of partition 0 crashes (a replica takes over; the
//! consumer finds the new leader and goes on from its position). Every random choice comes from one
//! seed, so a run replays exactly. It prints a sample of the records and the positions, and
//! checks that each record was read exactly once, in offset order.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit::prelude::*;
use kafkit::sim::{ClusterConfig, ConsumerSim, ProducerSim};

const TOPIC: &str = "consumer-sim";
const RECORDS: usize = 3_000;

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

    // Write the records with kafkit's producer, in the simulation.
    let mut p = ProducerSim::new(cluster, &ProducerConfig::default(), seed)?;
    for i in 0..RECORDS {
        // Fire and forget: the flush below waits for every record.
        drop(
            p.send(
                ProducerRecord::new(TOPIC)
                    .partition((i % 3) as i32)
                    .key(format!("user-{}", i % 7))
                    .value(format!("event {i}"))
                    .header("source", "consumer_sim"),
            ),
        );
    }
    p.flush(None)??;
    p.close(None)??;
    println!(
        "seed {seed}: wrote {RECORDS} records to {TOPIC} (3 partitions) in {:?} of virtual time",
        p.sim().elapsed()
    );

    // The consumer takes over the producer's cluster, from where the producer's clock stopped.
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_poll_records(100)
        .max_partition_fetch_bytes(4096)
        .build()?;
    let now = p.sim().now();
    let mut c = ConsumerSim::on_cluster(p.cluster().clone(), &config, seed, now)?;
    let partitions: Vec<TopicPartition> = (0..3).map(|i| TopicPartition::new(TOPIC, i)).collect();
    c.assign(partitions.clone());
    let ends = c.end_offsets(&partitions)??;
    for (tp, end) in &ends {
        println!("{tp}: end offset {end}");
    }

    // Poll until every partition is at its end, crashing partition 0's leader a third of the
    // way in (a replica takes over; the consumer finds it and goes on from its position).
    let mut next: BTreeMap<TopicPartition, i64> =
        partitions.iter().map(|tp| (tp.clone(), 0)).collect();
    let mut read = 0;
    let mut crashed = false;
    while partitions.iter().any(|tp| next[tp] < ends[tp]) {
        let records = c.poll(Duration::from_secs(1))??;
        for record in records.iter() {
            let expected = next.get_mut(&record.topic_partition()).expect("assigned");
            assert_eq!(
                record.offset, *expected,
                "offset order, nothing skipped or repeated"
            );
            *expected += 1;
            if read % 500 == 0 {
                println!(
                    "t={:?} {}-{}@{} key {:?} value {:?}",
                    c.sim().elapsed(),
                    record.topic,
                    record.partition,
                    record.offset,
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()),
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()),
                );
            }
            read += 1;
        }
        if !crashed && read >= RECORDS / 3 {
            let leader = c
                .cluster()
                .borrow()
                .partition(TOPIC, 0)
                .map(|log| log.leader);
            if let Some(leader) = leader {
                let now = c.sim().now();
                c.cluster().borrow_mut().crash_broker(leader, now);
                println!(
                    "t={:?}: broker {leader} (leader of {TOPIC}-0) crashed",
                    c.sim().elapsed()
                );
            }
            crashed = true;
        }
    }
    println!("t={:?}: read {read} records", c.sim().elapsed());
    assert_eq!(read, RECORDS, "every record exactly once");

    for tp in &partitions {
        println!(
            "{tp}: position {}, high watermark {:?}",
            c.position(tp)??,
            c.highwater(tp)?
        );
    }
    let stats = c.core().stats();
    println!(
        "fetch responses {}, full fetches {}, incremental fetches {}",
        stats.fetch_responses, stats.full_fetches, stats.incremental_fetches
    );
    c.close();
    Ok(())
}

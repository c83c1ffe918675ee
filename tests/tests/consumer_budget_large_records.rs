//! Issue 24 item 1 on a real driver: records about as large as the memory budget
//! (`fetch_buffer_bytes`), on partitions led by different brokers. The issue measured 1 MB
//! records with a 1 MiB budget reading 697 of 2,000 and then hanging, and a 2 MiB budget
//! taking 88 s for what takes 0.8 s without one. A budget must slow a consumer down, never
//! wedge it: here the tokio consumer reads every record, in order, with budgets of 1 and
//! 2 MiB, against a 3-broker development broker whose three partitions have three different
//! leaders.
//!
//! No timing is asserted: a generous bound per test only turns a hang into a failure.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use harness::{consumer_config, partitions, rdkafka_config, Cluster, Driver};
use kafkit_core::config::CommonConfig;
use kafkit_tests::cluster::unique_topic;

/// "1 MB records", as in the issue (below the broker's default max.message.bytes).
const VALUE: usize = 1_000_000;
const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 25;
/// Only a hang trips it.
const HANG: Duration = Duration::from_secs(300);

/// The byte `i`'s value is filled with.
fn fill(partition: i32, i: usize) -> u8 {
    (partition as usize * 31 + i) as u8
}

/// Writes `PER_PARTITION` records of `VALUE` bytes to each partition, one per batch.
fn produce(cluster: &Cluster, topic: &str) {
    let producer: FutureProducer = rdkafka_config(&cluster.bootstrap())
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("message.max.bytes", (VALUE + 64 * 1024).to_string())
        .set("message.timeout.ms", "60000")
        .create()
        .expect("rdkafka producer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for i in 0..PER_PARTITION {
            let mut futures = Vec::new();
            for p in 0..PARTITIONS {
                let value = vec![fill(p, i); VALUE];
                let key = i.to_string();
                let f = producer
                    .send_result(
                        FutureRecord::to(topic)
                            .partition(p)
                            .key(&key)
                            .payload(&value),
                    )
                    .unwrap_or_else(|(e, _)| panic!("rdkafka enqueue: {e}"));
                futures.push(f);
            }
            for f in futures {
                f.await
                    .expect("delivery")
                    .unwrap_or_else(|(e, _)| panic!("rdkafka delivery: {e}"));
            }
        }
    });
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// The leaders of the topic's partitions, as kafkit's metadata names them.
fn leaders(bootstrap: &str, topic: &str) -> BTreeSet<i32> {
    let mut common = CommonConfig::default();
    common.bootstrap_servers = bootstrap.split(',').map(str::to_owned).collect();
    let client = kafkit_blocking::LowLevelClient::start(&common).expect("client");
    let view = client
        .metadata(Some(vec![topic.to_owned()]))
        .expect("metadata");
    (0..PARTITIONS)
        .map(|p| view.leader_for(topic, p).expect("a leader"))
        .collect()
}

fn reads_everything(budget: usize) {
    let cluster = Cluster::dev();
    let topic = unique_topic("tokio", "consumer-large-records");
    cluster.create_topic(&topic, PARTITIONS);
    assert_eq!(
        leaders(&cluster.bootstrap(), &topic).len(),
        PARTITIONS as usize,
        "each partition led by a different broker"
    );
    produce(&cluster, &topic);
    let driver = Driver::tokio();
    let config = consumer_config(
        &cluster.bootstrap(),
        &[("fetch_buffer_bytes", &budget.to_string())],
    );
    let consumer = driver.start(&config);
    consumer
        .assign(partitions(&topic, PARTITIONS))
        .expect("assign");
    let started = Instant::now();
    let mut next = [0usize; PARTITIONS as usize];
    let total = PARTITIONS as usize * PER_PARTITION;
    while next.iter().sum::<usize>() < total {
        assert!(
            started.elapsed() < HANG,
            "budget {budget}: read {next:?} of {PER_PARTITION} per partition, then nothing \
             more for {HANG:?}: the consumer is wedged"
        );
        let records = consumer.poll(Duration::from_secs(1)).expect("poll");
        for r in records {
            let p = r.partition as usize;
            let i = next[p];
            assert_eq!(r.offset, i as i64, "partition {p}: in order, no gaps");
            assert_eq!(r.key.as_deref(), Some(i.to_string().as_bytes()));
            let v = r.value.as_ref().expect("a value");
            assert_eq!(v.len(), VALUE, "partition {p} offset {i}");
            assert!(
                v.iter().all(|&b| b == fill(r.partition, i)),
                "partition {p} offset {i}: value bytes"
            );
            next[p] += 1;
        }
    }
    eprintln!(
        "budget {budget}: read {total} records of {VALUE} bytes from {PARTITIONS} partitions \
         in {:?}",
        started.elapsed()
    );
}

#[test]
fn one_mib_budget_reads_every_1_mb_record_across_three_leaders() {
    reads_everything(1 << 20);
}

#[test]
fn two_mib_budget_reads_every_1_mb_record_across_three_leaders() {
    reads_everything(2 << 20);
}

//! The `metrics` feature: a consumer's snapshot published through the `metrics` crate
//! reaches its recorder with the same names, labels and values as the snapshot.

#![cfg(all(feature = "metrics", feature = "sim"))]

use std::time::Duration;

use kafkit::sim::{ClusterConfig, ConsumerSim, ProducerSim};
use kafkit_core::config::{ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::TopicPartition;
use kafkit_core::producer::ProducerRecord;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

#[test]
fn published_values_match_the_snapshot() {
    let mut p = ProducerSim::new(ClusterConfig::default(), &ProducerConfig::default(), 3).unwrap();
    // The deliveries are checked by the flush below; their futures are not needed.
    for i in 0..50 {
        drop(
            p.send(
                ProducerRecord::new("published")
                    .partition(0)
                    .value(format!("{i:010}")),
            ),
        );
    }
    p.flush(None).unwrap().expect("flushed");
    let config = ConsumerConfig::builder()
        .set("auto_offset_reset", "earliest")
        .set("client_id", "published-test")
        .build()
        .unwrap();
    let now = p.sim().now();
    let mut c = ConsumerSim::on_cluster(p.cluster().clone(), &config, 3, now).unwrap();
    let tp = TopicPartition::new("published", 0);
    c.assign([tp.clone()]);
    let mut got = 0;
    while got < 50 {
        got += c.poll(Duration::from_secs(1)).unwrap().unwrap().count();
    }
    let snapshot = c.metrics();
    assert_eq!(snapshot.records_consumed_total, 50.0);

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || snapshot.publish());
    let published = snapshotter.snapshot().into_vec();
    let find = |kind: MetricKind, name: &str, labels: &[(&str, &str)]| {
        published
            .iter()
            .find(|(k, _, _, _)| {
                k.kind() == kind
                    && k.key().name() == name
                    && labels.iter().all(|(lk, lv)| {
                        k.key().labels().any(|l| l.key() == *lk && l.value() == *lv)
                    })
            })
            .map(|(_, _, _, v)| v)
            .unwrap_or_else(|| panic!("{name} {labels:?} not published"))
    };
    let client = ("client_id", "published-test");
    assert_eq!(
        find(
            MetricKind::Counter,
            "kafka_consumer_fetch_manager_records_consumed_total",
            &[client]
        ),
        &DebugValue::Counter(50)
    );
    assert_eq!(
        find(
            MetricKind::Counter,
            "kafka_consumer_fetch_manager_bytes_consumed_total",
            &[client, ("topic", "published")]
        ),
        &DebugValue::Counter(500)
    );
    let lag = snapshot.partitions[&tp].lag.expect("known");
    assert_eq!(lag, 0);
    match find(
        MetricKind::Gauge,
        "kafka_consumer_fetch_manager_records_lag",
        &[client, ("topic", "published"), ("partition", "0")],
    ) {
        DebugValue::Gauge(v) => assert_eq!(v.into_inner(), lag as f64),
        other => panic!("{other:?}"),
    }
    match find(
        MetricKind::Gauge,
        "kafka_consumer_coordinator_assigned_partitions",
        &[client],
    ) {
        DebugValue::Gauge(v) => assert_eq!(v.into_inner(), 1.0),
        other => panic!("{other:?}"),
    }
    let created = snapshot.network.connection_creation_total as u64;
    assert!(created >= 1);
    assert_eq!(
        find(
            MetricKind::Counter,
            "kafka_consumer_connection_creation_total",
            &[client]
        ),
        &DebugValue::Counter(created)
    );
}

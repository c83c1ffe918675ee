//! The wall-clock check every driver runs: a record sent without a timestamp carries the real
//! time. Read back, its CreateTime (stamped by the handle's wall clock; the core is fed the
//! same clock at start) must be within a minute of the system clock, never 0 (1970). It is
//! read back rather than taken from the acknowledgement because librdkafka's mock cluster
//! answers Produce with a LogAppendTime.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_core::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::{ConsumerRecord, TopicPartition};
use kafkit_core::driver::{ConsumerHandle, ProducerHandle};
use kafkit_core::producer::ProducerRecord;
use kafkit_core::records::TimestampType;

use crate::cluster::{unique_topic, TestCluster};

/// One driver's case: a fresh one-partition topic and the configs to reach it, on a cluster
/// it keeps running.
pub struct WallClockCase {
    /// The cluster (librdkafka's mock lives as long as this).
    pub cluster: TestCluster,
    /// The topic (created on the mock cluster; auto-created elsewhere).
    pub topic: String,
    /// The producer's configuration.
    pub producer: ProducerConfig,
    /// The consumer's configuration (from the earliest offset).
    pub consumer: ConsumerConfig,
}

impl WallClockCase {
    /// The case of `driver` on `cluster`.
    pub fn new(cluster: TestCluster, driver: &str) -> Self {
        let topic = unique_topic(driver, "wall_clock");
        if let Some(mock) = cluster.mock() {
            mock.create_topic(&topic, 1, 1);
        }
        let producer = ProducerConfig::builder()
            .bootstrap_servers(cluster.bootstrap())
            .build()
            .expect("a producer config");
        let consumer = ConsumerConfig::builder()
            .bootstrap_servers(cluster.bootstrap())
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .build()
            .expect("a consumer config");
        WallClockCase {
            cluster,
            topic,
            producer,
            consumer,
        }
    }

    /// Sends one record without a timestamp through `producer` (waiting for its
    /// acknowledgement), closes it, and reads the record back with `consumer`.
    pub async fn round_trip(
        &self,
        producer: ProducerHandle,
        consumer: ConsumerHandle,
    ) -> Result<ConsumerRecord, Box<dyn std::error::Error>> {
        producer
            .send(ProducerRecord::new(self.topic.as_str()).value("now"))
            .await?;
        producer.close(None).await?;
        consumer
            .assign(vec![TopicPartition::new(self.topic.as_str(), 0)])
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let stored = loop {
            let polled = consumer.poll(Duration::from_millis(500)).await?;
            if let Some(r) = polled.into_iter().next() {
                break r;
            }
            if Instant::now() > deadline {
                return Err("the record was not read back within 30 s".into());
            }
        };
        consumer.close().await?;
        Ok(stored)
    }
}

/// Asserts that `stored` carries a CreateTime within a minute of the system clock.
pub fn assert_real_time(stored: &ConsumerRecord) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    assert_eq!(stored.timestamp_type, Some(TimestampType::CreateTime));
    assert!(
        (stored.timestamp - now).abs() < 60_000,
        "CreateTime {} is not within a minute of now ({now})",
        stored.timestamp
    );
}

//! The driver scenarios through kafkit-async-std (kafkit-smol under async-std's name), against
//! librdkafka's mock cluster (or the cluster `KAFKA_BOOTSTRAP` names). The test thread blocks
//! with `futures-executor`, not smol, to show the handle's futures need no particular
//! executor.

use std::future::Future;

use kafkit_core::config::CommonConfig;
use kafkit_core::driver::LowLevelHandle;
use kafkit_core::network::SetupError;
use kafkit_tests::drivers::{AsyncDriver, AsyncRuntime};

struct AsyncStd;

impl AsyncRuntime for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }

    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        kafkit_async_std::low_level_client(config)
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        futures_executor::block_on(fut)
    }
}

kafkit_tests::driver_tests!(AsyncDriver(AsyncStd));

/// A record sent without a timestamp carries the real time: read back, its CreateTime
/// (stamped by the handle's wall clock; the core is fed the same clock at start) is within a
/// minute of the system clock, never 0 (1970).
#[test]
fn records_without_a_timestamp_carry_the_wall_clock() {
    use kafkit_core::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
    use kafkit_core::consumer::TopicPartition;
    use kafkit_core::producer::ProducerRecord;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    let cluster = test_cluster();
    let topic = kafkit_tests::cluster::unique_topic("async-std", "wall_clock");
    if let Some(mock) = cluster.mock() {
        mock.create_topic(&topic, 1, 1);
    }
    let producer_config = ProducerConfig::builder()
        .bootstrap_servers(cluster.bootstrap())
        .build()
        .expect("a producer config");
    let mut consumer_config = ConsumerConfig::builder()
        .bootstrap_servers(cluster.bootstrap())
        .build()
        .expect("a consumer config");
    consumer_config.auto_offset_reset = AutoOffsetReset::Earliest;
    let record = ProducerRecord::new(topic.as_str()).value("now");
    let partition = TopicPartition::new(topic.as_str(), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = futures_executor::block_on(async {
        let producer = kafkit_async_std::producer(&producer_config)?;
        producer.send(record).await?;
        producer.close(None).await?;
        let consumer = kafkit_async_std::consumer(&consumer_config)?;
        consumer.assign(vec![partition]).await?;
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
        Ok::<_, Box<dyn std::error::Error>>(stored)
    })
    .expect("produced and read back");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    assert_eq!(
        stored.timestamp_type,
        Some(kafkit_core::records::TimestampType::CreateTime)
    );
    assert!(
        (stored.timestamp - now).abs() < 60_000,
        "CreateTime {} is not within a minute of now ({now})",
        stored.timestamp
    );
}

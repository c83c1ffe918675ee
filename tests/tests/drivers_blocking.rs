//! The driver scenarios through kafkit-blocking's synchronous API, against librdkafka's mock
//! cluster (or the cluster `KAFKA_BOOTSTRAP` names).

use std::sync::Arc;

use kafkit_blocking::LowLevelClient;
use kafkit_core::config::CommonConfig;
use kafkit_core::network::{ClusterView, NetError, Response, SetupError, Target};
use kafkit_core::protocol::RequestBody;
use kafkit_tests::drivers::{Driver, VersionCheck};

struct Blocking;

impl Driver for Blocking {
    type Client = LowLevelClient;

    fn name(&self) -> &'static str {
        "blocking"
    }

    fn start(&self, config: &CommonConfig) -> Result<LowLevelClient, SetupError> {
        LowLevelClient::start(config)
    }

    fn check_version(&self, client: &LowLevelClient) -> Result<VersionCheck, NetError> {
        client.check_version()
    }

    fn metadata(
        &self,
        client: &LowLevelClient,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, NetError> {
        client.metadata(topics)
    }

    fn send(
        &self,
        client: &LowLevelClient,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
    ) -> Result<Response, NetError> {
        client.send(target, body, max_version)
    }
}

kafkit_tests::driver_tests!(Blocking);

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
    let topic = kafkit_tests::cluster::unique_topic("blocking", "wall_clock");
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
    let producer = kafkit_blocking::Producer::start(&producer_config).expect("a producer");
    producer.send(record).expect("delivered");
    producer.close(None).expect("closed");
    let consumer = kafkit_blocking::Consumer::start(&consumer_config).expect("a consumer");
    consumer.assign([partition]).expect("assigned");
    let stored = loop {
        let polled = consumer.poll(Duration::from_millis(500)).expect("polled");
        if let Some(r) = polled.into_iter().next() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the record was not read back within 30 s"
        );
    };
    consumer.close().expect("closed");
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

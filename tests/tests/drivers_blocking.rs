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
    use kafkit_tests::wall_clock::{assert_real_time, WallClockCase};

    let case = WallClockCase::new(test_cluster(), "blocking");
    let producer = kafkit_blocking::Producer::start(&case.producer).expect("a producer");
    let consumer = kafkit_blocking::Consumer::start(&case.consumer).expect("a consumer");
    // The blocking clients' handles, driven as the blocking driver drives them.
    let stored = futures_executor::block_on(
        case.round_trip(producer.handle().clone(), consumer.handle().clone()),
    )
    .expect("produced and read back");
    assert_real_time(&stored);
}

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

//! The cluster a test runs against: librdkafka's mock cluster (through the `rdkafka` crate,
//! which only the test targets link; see [`crate::driver_tests!`]) or an external cluster
//! named by the `KAFKA_BOOTSTRAP` environment variable.

use std::sync::atomic::{AtomicU32, Ordering};

/// How many brokers the mock cluster has.
pub const MOCK_BROKERS: usize = 3;

/// The environment variable naming an external cluster (`host:port[,host:port...]`).
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";

/// What the scenarios need of a mock cluster; implemented over `rdkafka`'s `MockCluster` by
/// [`crate::driver_tests!`].
pub trait MockControl {
    /// `host:port,host:port,...` of every broker.
    fn bootstrap_servers(&self) -> String;
    /// Creates a topic (the mock has no CreateTopics API).
    fn create_topic(&self, topic: &str, partitions: i32, replication: i32);
    /// Makes `broker` the leader of the partition.
    fn set_leader(&self, topic: &str, partition: i32, broker: i32);
    /// Closes the broker's connections and refuses new ones (leaders do not move).
    fn broker_down(&self, id: i32);
    /// Lets the broker accept connections again, on the same port.
    fn broker_up(&self, id: i32);
    /// Delays every broker's responses by `rtt` (zero: answer at once).
    fn set_round_trip_time(&self, rtt: std::time::Duration);
}

/// The cluster under test.
pub enum TestCluster {
    /// A mock cluster owned by this test; dropped (and stopped) with it.
    Mock(Box<dyn MockControl>),
    /// An external cluster, shared with whatever else uses it.
    External(String),
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestCluster::Mock(m) => write!(f, "mock cluster at {}", m.bootstrap_servers()),
            TestCluster::External(b) => write!(f, "external cluster at {b}"),
        }
    }
}

impl TestCluster {
    /// The external cluster `KAFKA_BOOTSTRAP` names, or else a mock made by `mock`.
    pub fn from_env(mock: impl FnOnce() -> Box<dyn MockControl>) -> TestCluster {
        match external_bootstrap() {
            Some(bootstrap) => TestCluster::External(bootstrap),
            None => TestCluster::Mock(mock()),
        }
    }

    /// The bootstrap list to configure clients with.
    pub fn bootstrap(&self) -> String {
        match self {
            TestCluster::Mock(m) => m.bootstrap_servers(),
            TestCluster::External(b) => b.clone(),
        }
    }

    /// The bootstrap list as `host:port` entries.
    pub fn bootstrap_addresses(&self) -> Vec<String> {
        self.bootstrap()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The mock's controls, if this is a mock cluster.
    pub fn mock(&self) -> Option<&dyn MockControl> {
        match self {
            TestCluster::Mock(m) => Some(m.as_ref()),
            TestCluster::External(_) => None,
        }
    }

    /// The mock's controls, or `None` after printing why `scenario` is skipped.
    pub fn mock_or_skip(&self, scenario: &str) -> Option<&dyn MockControl> {
        let mock = self.mock();
        if mock.is_none() {
            eprintln!(
                "skipping {scenario}: {self:?} cannot take brokers down and up \
                 (only librdkafka's mock cluster can; unset {BOOTSTRAP_ENV} to run it)"
            );
        }
        mock
    }
}

/// `KAFKA_BOOTSTRAP`, if set and not blank.
pub fn external_bootstrap() -> Option<String> {
    std::env::var(BOOTSTRAP_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A topic name no other test (of this or another run against a shared external cluster) uses.
pub fn unique_topic(driver: &str, scenario: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "kafkit-{driver}-{scenario}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

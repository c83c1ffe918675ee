//! Shared helpers for kafkit integration tests.
//!
//! The driver suites (`tests/tests/drivers_*.rs`) run one set of scenarios
//! ([`scenarios`]) through every runtime driver's API against a broker nobody here wrote:
//! librdkafka's mock cluster, or an external cluster when `KAFKA_BOOTSTRAP` is set
//! ([`cluster`]). Each scenario is written once, over the [`drivers::Driver`] trait; each suite
//! implements that trait for its driver and expands [`driver_tests!`] to get one `#[test]` per
//! scenario.

pub mod chaos;
pub mod chaos_scenarios;
pub mod cluster;
pub mod drivers;
pub mod fake_broker;
pub mod scenarios;
pub mod wall_clock;

/// Expands to one `#[test]` per driver scenario for `$driver` (an expression of a type that
/// implements [`drivers::Driver`]).
///
/// The expansion also defines the mock cluster the tests run against, through the `rdkafka`
/// crate: the crate that expands this macro must have `rdkafka` as a (dev-)dependency, as
/// `kafkit-tests`' own test targets do. The library itself never links librdkafka.
#[macro_export]
macro_rules! driver_tests {
    ($driver:expr) => {
        /// librdkafka's mock cluster, as the scenarios control it.
        struct RdkafkaMock(
            ::rdkafka::mocking::MockCluster<'static, ::rdkafka::producer::DefaultProducerContext>,
        );

        impl $crate::cluster::MockControl for RdkafkaMock {
            fn bootstrap_servers(&self) -> String {
                self.0.bootstrap_servers()
            }
            fn create_topic(&self, topic: &str, partitions: i32, replication: i32) {
                self.0
                    .create_topic(topic, partitions, replication)
                    .unwrap_or_else(|e| panic!("mock cluster: create_topic({topic}): {e}"));
            }
            fn set_leader(&self, topic: &str, partition: i32, broker: i32) {
                self.0
                    .partition_leader(topic, partition, Some(broker))
                    .unwrap_or_else(|e| {
                        panic!(
                            "mock cluster: partition_leader({topic}, {partition}, {broker}): {e}"
                        )
                    });
            }
            fn broker_down(&self, id: i32) {
                self.0
                    .broker_down(id)
                    .unwrap_or_else(|e| panic!("mock cluster: broker_down({id}): {e}"));
            }
            fn broker_up(&self, id: i32) {
                self.0
                    .broker_up(id)
                    .unwrap_or_else(|e| panic!("mock cluster: broker_up({id}): {e}"));
            }
            fn set_round_trip_time(&self, rtt: ::std::time::Duration) {
                // -1: every broker.
                self.0.broker_round_trip_time(-1, rtt).unwrap_or_else(|e| {
                    panic!("mock cluster: broker_round_trip_time({rtt:?}): {e}")
                });
            }
        }

        /// A fresh 3-broker mock cluster, or the external one named by `KAFKA_BOOTSTRAP`.
        fn test_cluster() -> $crate::cluster::TestCluster {
            $crate::cluster::TestCluster::from_env(|| {
                let mock =
                    ::rdkafka::mocking::MockCluster::new($crate::cluster::MOCK_BROKERS as i32)
                        .expect("starting librdkafka's mock cluster");
                Box::new(RdkafkaMock(mock))
            })
        }

        #[test]
        fn connect_and_negotiate() {
            $crate::scenarios::connect_and_negotiate(&$driver, &test_cluster());
        }

        #[test]
        fn metadata_of_three_brokers() {
            $crate::scenarios::metadata_of_three_brokers(&$driver, &test_cluster());
        }

        #[test]
        fn rides_through_broker_down_and_up() {
            $crate::scenarios::rides_through_broker_down_and_up(&$driver, &test_cluster());
        }

        #[test]
        fn closed_port_fails_within_request_timeout() {
            $crate::scenarios::closed_port_fails_within_request_timeout(&$driver);
        }

        #[test]
        fn all_brokers_down_fails_within_request_timeout() {
            $crate::scenarios::all_brokers_down_fails_within_request_timeout(
                &$driver,
                &test_cluster(),
            );
        }

        #[test]
        fn slow_broker_fails_within_request_timeout() {
            $crate::scenarios::slow_broker_fails_within_request_timeout(&$driver, &test_cluster());
        }

        #[test]
        fn dropping_the_client_closes_its_connections() {
            $crate::scenarios::dropping_the_client_closes_its_connections(&$driver);
        }

        #[test]
        fn raw_requests_are_decoded() {
            $crate::scenarios::raw_requests_are_decoded(&$driver, &test_cluster());
        }
    };
}

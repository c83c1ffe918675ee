//! The driver scenarios through kafkit-tokio, against librdkafka's mock cluster (or the
//! cluster `KAFKA_BOOTSTRAP` names).

use std::future::Future;

use kafkit_core::config::CommonConfig;
use kafkit_core::driver::LowLevelHandle;
use kafkit_core::network::SetupError;
use kafkit_tests::drivers::{AsyncDriver, AsyncRuntime};

/// A multi-threaded tokio runtime per test: the client's loop and connection tasks run on its
/// workers while the test thread blocks on the handle's futures.
struct Tokio(tokio::runtime::Runtime);

impl Tokio {
    fn new() -> AsyncDriver<Tokio> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        AsyncDriver(Tokio(rt))
    }
}

impl AsyncRuntime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        // `low_level_client` spawns its loop on the current runtime.
        let _guard = self.0.enter();
        kafkit_tokio::low_level_client(config)
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

kafkit_tests::driver_tests!(Tokio::new());

/// A record sent without a timestamp carries the real time: read back, its CreateTime
/// (stamped by the handle's wall clock; the core is fed the same clock at start) is within a
/// minute of the system clock, never 0 (1970).
#[test]
fn records_without_a_timestamp_carry_the_wall_clock() {
    use kafkit_tests::wall_clock::{assert_real_time, WallClockCase};

    let case = WallClockCase::new(test_cluster(), "tokio");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let stored = rt
        .block_on(async {
            let producer = kafkit_tokio::producer(&case.producer)?;
            let consumer = kafkit_tokio::consumer(&case.consumer)?;
            case.round_trip(producer, consumer).await
        })
        .expect("produced and read back");
    assert_real_time(&stored);
}

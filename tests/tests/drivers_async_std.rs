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
    use kafkit_tests::wall_clock::{assert_real_time, WallClockCase};

    let case = WallClockCase::new(test_cluster(), "async_std");
    let stored = futures_executor::block_on(async {
        let producer = kafkit_async_std::producer(&case.producer)?;
        let consumer = kafkit_async_std::consumer(&case.consumer)?;
        case.round_trip(producer, consumer).await
    })
    .expect("produced and read back");
    assert_real_time(&stored);
}

//! The driver scenarios through kafkit-smol, against librdkafka's mock cluster (or the
//! cluster `KAFKA_BOOTSTRAP` names).

use std::future::Future;

use kafkit_core::config::CommonConfig;
use kafkit_core::driver::LowLevelHandle;
use kafkit_core::network::SetupError;
use kafkit_tests::drivers::{AsyncDriver, AsyncRuntime};

/// smol: the client's loop runs on smol's global executor; the test thread blocks with
/// `smol::block_on`.
struct Smol;

impl AsyncRuntime for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        kafkit_smol::low_level_client(config)
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(fut)
    }
}

kafkit_tests::driver_tests!(AsyncDriver(Smol));

/// A record sent without a timestamp carries the real time: read back, its CreateTime
/// (stamped by the handle's wall clock; the core is fed the same clock at start) is within a
/// minute of the system clock, never 0 (1970).
#[test]
fn records_without_a_timestamp_carry_the_wall_clock() {
    use kafkit_tests::wall_clock::{assert_real_time, WallClockCase};

    let case = WallClockCase::new(test_cluster(), "smol");
    let stored = smol::block_on(async {
        let producer = kafkit_smol::producer(&case.producer)?;
        let consumer = kafkit_smol::consumer(&case.consumer)?;
        case.round_trip(producer, consumer).await
    })
    .expect("produced and read back");
    assert_real_time(&stored);
}

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

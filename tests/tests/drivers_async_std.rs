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

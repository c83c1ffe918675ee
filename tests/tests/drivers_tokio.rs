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

//! # kafkit-smol
//!
//! Runs kafkit's sans-IO client cores on smol (or any async-io based executor): one task runs
//! the generic event loop ([`run`]), one task per broker connection moves bytes. Every protocol
//! decision is made in `kafkit-core`; this crate resolves names, opens sockets (TCP_NODELAY,
//! configured buffer sizes), keeps time and wakes the core when it asks. `kafkit-async-std` is
//! this crate under another name.
//!
//! ```no_run
//! smol::block_on(async {
//!     let config = kafkit_core::config::CommonConfig::default();
//!     let client = kafkit_smol::low_level_client(&config).unwrap();
//!     let (node, version, _) = client.check_version().await.unwrap();
//!     println!("node {node} runs Kafka {version}");
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod consumer;
mod event_loop;
mod producer;

pub use admin::admin;
pub use consumer::consumer;
pub use event_loop::run;
pub use kafkit_core::driver::AdminHandle;
pub use kafkit_core::driver::LowLevelHandle;
pub use kafkit_core::driver::SocketOptions;
pub use kafkit_core::driver::{ConsumerHandle, RecordCursor, RecordStream, TypedConsumer};
pub use kafkit_core::driver::{ProducerHandle, TypedProducerHandle};
pub use producer::{producer, StartError};

use kafkit_core::config::CommonConfig;
use kafkit_core::driver::{command_queue, LowLevelHandler};
use kafkit_core::network::{LowLevelClient, NetOptions, SetupError};

pub use kafkit_os::driver_env;

/// Starts a [`LowLevelClient`] on a detached smol task and returns its handle. The loop needs
/// an executor polling it: smol's global executor, or any `block_on` around the caller.
pub fn low_level_client(config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
    let opts = NetOptions::from_config(config, &driver_env())?;
    let socket = SocketOptions::from_config(config);
    let (tx, rx) = command_queue();
    smol::spawn(run(
        LowLevelClient::new(opts),
        LowLevelHandler::default(),
        rx,
        socket,
        kafkit_core::driver::OpenWriters::new(),
    ))
    .detach();
    Ok(LowLevelHandle::new(tx))
}

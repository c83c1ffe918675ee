//! # kafkit-blocking
//!
//! Runs kafkit's sans-IO client cores with std sockets and threads, for programs without an
//! async runtime. Each client gets one loop thread (the generic event loop, [`run`]) and two
//! threads per broker connection (a blocking reader and a blocking writer). Calls on the
//! handles block the calling thread until the loop answers.
//!
//! ```no_run
//! let config = kafkit_core::config::CommonConfig::default();
//! let client = kafkit_blocking::LowLevelClient::start(&config).unwrap();
//! let (node, version, _) = client.check_version().unwrap();
//! println!("node {node} runs Kafka {version}");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod consumer;
mod event_loop;
mod producer;

use std::sync::Arc;

pub use admin::Admin;
pub use consumer::{Consumer, RecordIter, TypedConsumer, TypedRecordIter, TypedResult};
use event_loop::spawn_loop;
pub use event_loop::{run, Blocking};
pub use kafkit_core::driver::SocketOptions;
pub use producer::{Producer, StartError, TypedProducer, Wait};

use futures_executor::block_on;
use kafkit_core::config::CommonConfig;
use kafkit_core::driver::{LowLevelHandle, LowLevelHandler, OpenWriters};
use kafkit_core::network::{
    ApiVersionTable, BrokerVersion, ClusterView, CoordinatorKind, NetError, NetOptions, Response,
    SetupError, Target,
};
use kafkit_core::protocol::RequestBody;

pub use kafkit_os::driver_env;

/// A low-level client (send any request to a chosen broker) on its own loop thread. Cheap to
/// clone; the thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct LowLevelClient {
    handle: LowLevelHandle,
}

impl std::fmt::Debug for LowLevelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LowLevelClient").finish_non_exhaustive()
    }
}

impl LowLevelClient {
    /// Starts the client's loop thread.
    pub fn start(config: &CommonConfig) -> Result<Self, SetupError> {
        let opts = NetOptions::from_config(config, &driver_env())?;
        let socket = SocketOptions::from_config(config);
        let tx = spawn_loop(
            "kafkit-client",
            kafkit_core::network::LowLevelClient::new(opts),
            LowLevelHandler::default(),
            socket,
            OpenWriters::new(),
        );
        Ok(LowLevelClient {
            handle: LowLevelHandle::new(tx),
        })
    }

    /// Sends `body` to `target` and blocks until the decoded response (or an error naming the
    /// broker) arrives.
    pub fn send(
        &self,
        target: Target,
        body: impl Into<RequestBody>,
        max_version: Option<i16>,
    ) -> Result<Response, NetError> {
        block_on(self.handle.send(target, body, max_version))
    }

    /// Forgets the cached coordinator of `key`; the next request to it looks it up again.
    pub fn invalidate_coordinator(
        &self,
        kind: CoordinatorKind,
        key: impl Into<String>,
    ) -> Result<(), NetError> {
        block_on(self.handle.invalidate_coordinator(kind, key))
    }

    /// The least loaded broker's node id, version guess and API table.
    pub fn check_version(&self) -> Result<(i32, BrokerVersion, Arc<ApiVersionTable>), NetError> {
        block_on(self.handle.check_version())
    }

    /// Fetches metadata (all topics when `topics` is `None`).
    pub fn metadata(&self, topics: Option<Vec<String>>) -> Result<Arc<ClusterView>, NetError> {
        block_on(self.handle.metadata(topics))
    }
}

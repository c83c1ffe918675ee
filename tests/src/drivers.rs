//! One synchronous face over every driver's client API, so that each scenario is written once.
//!
//! The blocking driver's client is synchronous already; the async drivers' [`LowLevelHandle`]
//! is driven through [`AsyncDriver`] by the runtime's own `block_on`, so what a scenario
//! exercises is exactly what an application calls.

use std::future::Future;
use std::sync::Arc;

use kafkit_core::config::CommonConfig;
use kafkit_core::driver::LowLevelHandle;
use kafkit_core::network::{
    ApiVersionTable, BrokerVersion, ClusterView, NetError, NodeId, Response, SetupError, Target,
};
use kafkit_core::protocol::RequestBody;

/// What `check_version` answers: the node asked, its version guess and its API table.
pub type VersionCheck = (NodeId, BrokerVersion, Arc<ApiVersionTable>);

/// A driver, as the scenarios use it: start a low-level client and call it, blocking.
pub trait Driver {
    /// The driver's client.
    type Client;

    /// A short name for messages and topic names.
    fn name(&self) -> &'static str;

    /// Starts a client with `config`.
    fn start(&self, config: &CommonConfig) -> Result<Self::Client, SetupError>;

    /// The client's `check_version`.
    fn check_version(&self, client: &Self::Client) -> Result<VersionCheck, NetError>;

    /// The client's `metadata` (all topics when `topics` is `None`).
    fn metadata(
        &self,
        client: &Self::Client,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, NetError>;

    /// The client's `send`.
    fn send(
        &self,
        client: &Self::Client,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
    ) -> Result<Response, NetError>;
}

/// An async runtime whose driver hands out [`LowLevelHandle`]s.
pub trait AsyncRuntime {
    /// A short name for messages and topic names.
    fn name(&self) -> &'static str;

    /// Starts a client (inside the runtime's context where the driver needs one).
    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError>;

    /// Runs `fut` to completion on this runtime, blocking the caller.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
}

/// The [`Driver`] of an [`AsyncRuntime`]: every call is the handle's future, run by the
/// runtime's `block_on`.
#[derive(Debug)]
pub struct AsyncDriver<R>(pub R);

impl<R: AsyncRuntime> Driver for AsyncDriver<R> {
    type Client = LowLevelHandle;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        self.0.start(config)
    }

    fn check_version(&self, client: &LowLevelHandle) -> Result<VersionCheck, NetError> {
        self.0.block_on(client.check_version())
    }

    fn metadata(
        &self,
        client: &LowLevelHandle,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, NetError> {
        self.0.block_on(client.metadata(topics))
    }

    fn send(
        &self,
        client: &LowLevelHandle,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
    ) -> Result<Response, NetError> {
        self.0.block_on(client.send(target, body, max_version))
    }
}

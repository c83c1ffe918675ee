//! # kafkit-sim
//!
//! Deterministic simulation for kafkit: the very client cores the real drivers run, driven on
//! a virtual clock over in-memory links, with every random choice drawn from one seed. A run
//! replays exactly from its seed.
//!
//! Today this crate holds the simulation loop and network ([`Simulation`], [`Endpoint`]):
//! servers are anything implementing [`Endpoint`] registered at a `host:port`; links deliver
//! bytes after a configurable latency; a connection to an address nobody listens on is
//! refused. The in-memory Kafka cluster model plugs in as such endpoints.
//!
//! [`cluster`] is that model: a [`Cluster`] of brokers with topics, partition logs,
//! replication, fetch sessions, SASL and a group coordinator, answering real request frames
//! through kafkit's generated codec, with fault hooks (crashes, leader moves, per-API request
//! hooks). [`serve_cluster`] registers each of its brokers in a [`Simulation`].
//!
//! [`ProducerSim`] runs kafkit's producer against that cluster on virtual time;
//! [`producer_core`] builds a producer core for simulations set up by hand. [`ConsumerSim`] and
//! [`consumer_core`] do the same for the consumer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
pub mod cluster;
mod consumer;
pub mod dev_broker;
mod producer;
mod simulation;

pub use admin::{admin_core, AdminSim};
pub use cluster::{serve_cluster, Cluster, ClusterConfig, ClusterEndpoint, HookAction};
pub use consumer::{consumer_core, ConsumerSim};
pub use dev_broker::{DevBroker, DevBrokerConfig, DevBrokerError};
pub use producer::{producer_core, ProducerSim};
pub use simulation::{Endpoint, EndpointOutput, LinkConfig, SimError, Simulation};

use std::sync::Arc;

use kafkit_core::network::{DriverEnv, SeededEntropy};

/// The environment a simulation gives a core: "entropy" drawn from `seed`
/// ([`SeededEntropy`]: a seeded run replays exactly, SCRAM nonces included — never use it
/// outside simulations), the ring crypto provider with no system root certificates, and
/// file reading for certificate files.
pub fn sim_env(seed: u64) -> DriverEnv {
    DriverEnv::new(Arc::new(SeededEntropy::new(seed)))
        .with_tls(Arc::new(rustls::crypto::ring::default_provider()), Vec::new)
        .with_file_reader(|path| std::fs::read(path))
}

//! # kafkit
//!
//! A pure-Rust Kafka client: producer, consumer (with consumer groups), admin and low-level
//! clients, over a sans-IO core that any event loop can drive. This crate is the one
//! dependency a program needs: it re-exports the configs, records and errors, and the runtime
//! driver chosen by features:
//!
//! | feature     | module                 | clients run on                                   |
//! |-------------|------------------------|--------------------------------------------------|
//! | `tokio`     | [`tokio`] (+ [`prelude`]) | the current tokio runtime (default feature)   |
//! | `smol`      | `smol`                 | smol's executor threads                          |
//! | `async-std` | `async_std`            | the same, under the name async-std users look for |
//! | `blocking`  | `blocking`             | a loop thread each; calls block the caller       |
//! | `sim`       | `sim`                  | virtual time (the simulation), and the development broker |
//!
//! Any combination of features may be enabled. Embedders who drive the cores from their own
//! loop use [`core`] (the `kafkit-core` crate): the cores, the network layer and its driving
//! contract.
//!
//! # Example
//!
//! With tokio (the default feature) as the runtime, everything comes from one `use`:
//!
//! ```no_run
//! use kafkit::prelude::*;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = ProducerConfig::builder()
//!         .bootstrap_servers("localhost:9092")
//!         .acks(Acks::All)
//!         .linger_ms(5)
//!         .compression_type(CompressionType::Zstd)
//!         .build()?;
//!     let producer = producer(&config)?;
//!     // `send` resolves once the brokers acknowledged the record (Java's `send(r).get()`);
//!     // `enqueue` is the two-stage form (Java's `send(r)`): it returns once the record is
//!     // buffered, with a future of the acknowledgement.
//!     let written: RecordMetadata = producer
//!         .send(ProducerRecord::new("orders").key("user-1").value("one pizza"))
//!         .await?;
//!     println!("written at {}-{}@{}", written.topic, written.partition, written.offset);
//!     producer.close(None).await?;
//!
//!     let config = ConsumerConfig::builder()
//!         .bootstrap_servers("localhost:9092")
//!         .group_id("kitchen")
//!         .auto_offset_reset(AutoOffsetReset::Earliest)
//!         .build()?;
//!     let consumer = consumer(&config)?;
//!     consumer.subscribe(["orders"]).await?;
//!     for record in consumer.poll(Duration::from_secs(1)).await? {
//!         println!("{}@{}: {:?}", record.partition, record.offset, record.value);
//!     }
//!     consumer.close().await?;
//!     Ok(())
//! }
//! ```
//!
//! Without an async runtime (feature `blocking`), the same with
//! `kafkit::blocking::{Producer, Consumer, Admin}`, whose calls block the calling thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The sans-IO core (`kafkit-core`): the producer, consumer, admin and low-level cores, the
/// network layer and its driving contract, the protocol and record formats. For programs
/// that drive the cores from their own event loop, and for everything this crate does not
/// re-export at its root.
pub use kafkit_core as core;

pub use kafkit_core::OpId;

pub use kafkit_core::config::{
    Acks, AdminConfig, AdminConfigBuilder, AssignmentStrategy, AutoOffsetReset, CommonConfig,
    CompressionType, ConfigError, ConsumerConfig, ConsumerConfigBuilder, GroupProtocol,
    IsolationLevel, Partitioner, ProducerConfig, ProducerConfigBuilder, SaslMechanism, Secret,
    SecurityProtocol,
};

pub use kafkit_core::producer::{
    DeliveryFuture, ProduceError, ProducerRecord, RecordMetadata, TxnState,
};

/// Serializers and deserializers for typed keys and values (Java's `StringSerializer`,
/// `LongSerializer`, ...), for `with_serializers` and `with_deserializers`.
pub use kafkit_core::producer::serializer;
pub use kafkit_core::producer::{DeserializeError, Deserializer, SerializeError, Serializer};

pub use kafkit_core::consumer::{
    ConsumerError, ConsumerRecord, ConsumerRecords, GroupMetadata, OffsetAndMetadata,
    OffsetAndTimestamp, RebalanceContext, RebalanceListener, TopicPartition, TypedRecord,
};

pub use kafkit_core::records::{Header, Headers, TimestampType};

pub use kafkit_core::admin::{
    AdminError, AlterConfigOp, ConfigResource, ConfigResourceType, ListTransactionsOptions,
    NewPartitions, NewTopic, TransactionState,
};

pub use kafkit_core::network::{NetError, SetupError};

/// Metrics snapshots of every client (`metrics()` on the handles) and their exporters.
pub mod metrics {
    pub use kafkit_core::admin::{AdminMetrics, CallMetrics};
    pub use kafkit_core::consumer::{ConsumerMetrics, PartitionLag, TopicMetrics};
    #[cfg(feature = "metrics")]
    pub use kafkit_core::network::metrics::publish;
    pub use kafkit_core::network::metrics::{
        to_prometheus, ApiMetrics, Client, MetricKind, MetricSample, NetworkMetrics, NodeMetrics,
    };
    pub use kafkit_core::producer::ProducerMetrics;
}

/// The handles the async drivers hand out (the same types on tokio, smol and async-std).
pub use kafkit_core::driver::{AdminHandle, ConsumerHandle, LowLevelHandle, ProducerHandle};

/// The tokio driver (feature `tokio`, on by default): [`producer`](kafkit_tokio::producer),
/// [`consumer`](kafkit_tokio::consumer), [`admin`](kafkit_tokio::admin) and
/// [`low_level_client`](kafkit_tokio::low_level_client) start a client on the current tokio
/// runtime and return its handle.
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use kafkit_tokio::*;
}

/// The smol driver (feature `smol`): `producer`, `consumer`, `admin` and `low_level_client`
/// start a client on smol's executor threads and return its handle.
#[cfg(feature = "smol")]
pub mod smol {
    pub use kafkit_smol::*;
}

/// The async-std driver (feature `async-std`): the smol driver under the name async-std users
/// look for; its clients work from async-std tasks.
#[cfg(feature = "async-std")]
pub mod async_std {
    pub use kafkit_async_std::*;
}

/// The blocking driver (feature `blocking`): `Producer`, `Consumer`, `Admin` and
/// `LowLevelClient` each run on a loop thread of their own; their calls block the caller.
#[cfg(feature = "blocking")]
pub mod blocking {
    pub use kafkit_blocking::*;
}

/// The simulation (feature `sim`): the cores on virtual time against a simulated cluster
/// (`ProducerSim`, `ConsumerSim`, `AdminSim`, `Simulation`), and the development broker
/// (`DevBroker`), that cluster on real sockets for tests and local runs.
#[cfg(feature = "sim")]
pub mod sim {
    pub use kafkit_sim::*;
}

/// Everything a program on the default runtime needs, in one `use kafkit::prelude::*;`: the
/// configs and their enums, records, errors, admin inputs, [`OpId`], `Duration`, and with the
/// `tokio` feature the tokio driver's entry points (`producer`, `consumer`, `admin`,
/// `low_level_client`) and its `StartError`.
pub mod prelude {
    pub use std::time::Duration;

    pub use crate::{
        Acks, AdminConfig, AdminError, AdminHandle, AlterConfigOp, AssignmentStrategy,
        AutoOffsetReset, CommonConfig, CompressionType, ConfigError, ConfigResource,
        ConfigResourceType, ConsumerConfig, ConsumerError, ConsumerHandle, ConsumerRecord,
        ConsumerRecords, DeliveryFuture, Header, Headers, IsolationLevel, LowLevelHandle, NetError,
        NewPartitions, NewTopic, OffsetAndMetadata, OffsetAndTimestamp, OpId, Partitioner,
        ProduceError, ProducerConfig, ProducerHandle, ProducerRecord, RebalanceContext,
        RebalanceListener, RecordMetadata, SaslMechanism, SecurityProtocol, SetupError,
        TimestampType, TopicPartition,
    };

    #[cfg(feature = "tokio")]
    pub use kafkit_tokio::{admin, consumer, low_level_client, producer, StartError};
}

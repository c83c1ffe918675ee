//! The producer: application records in, acknowledged offsets out.
//!
//! # Pieces
//! - [`ProducerRecord`] / [`RecordMetadata`]: what goes in and what a delivered record
//!   reports.
//! - [`ProducerCore`]: the sans-IO producer, a [`ClientCore`](crate::network::ClientCore)
//!   that every driver (and the simulation) runs. It owns the network layer, the record
//!   accumulator (per-partition batches, `batch_size`, `linger_ms`, compression per batch),
//!   the sender (one Produce request per broker carrying every ready partition it leads,
//!   retries with `retry_backoff_ms` until `delivery_timeout_ms`), and the idempotent
//!   producer's state (producer id, epoch, per-partition sequences, KIP-360 epoch bumps).
//! - [`ProducerShared`]: the buffer-memory account (`buffer_memory`) handles reserve from
//!   without locks before queueing a record.
//! - [`Delivery`] / [`DeliveryFuture`]: how a record's outcome reaches the application.
//! - [`ProducerMetrics`]: kafka-python's producer metrics.
//! - [`partitioner`], [`murmur2`](mod@murmur2), [`serializer`]: partition choice (Java's
//!   built-in sticky/keyed partitioner, round-robin, or your own [`Partitioner`]), Kafka's
//!   key hash, and key/value serializers.
//!
//! # Contracts
//! - Every accepted record is completed exactly once: with its [`RecordMetadata`] only after
//!   the broker acknowledged it (`acks=0`: once the request was written, offset -1), or with
//!   a [`ProduceError`] that says what failed and where. Nothing acknowledged is reported
//!   failed and nothing failed is reported acknowledged.
//! - Completions run on the driver's loop thread, inside the core's inputs.
//! - Memory: a record holds its upper-bound size from `buffer_memory` from acceptance until
//!   its batch completes. When memory is short, senders wait in FIFO order up to
//!   `max_block_ms` ([`ProduceError::MaxBlockTimeout`]); a record larger than
//!   `buffer_memory` or `max_request_size` fails at once ([`ProduceError::RecordTooLarge`]).
//! - Metadata: records for a topic the producer has no metadata for wait in the core, in
//!   order, up to `max_block_ms`, then fail with [`ProduceError::UnknownTopic`] (metadata
//!   said the topic does not exist) or [`ProduceError::MaxBlockTimeout`].
//! - Ordering: per partition, records are sent in order. With idempotence (on by default, as
//!   in Java 3.x) order and exactly-once writes hold across retries with up to 5 requests in
//!   flight; without it, retries may reorder unless `max_in_flight_requests_per_connection`
//!   is 1.
//! - Partitioning: an explicit partition is used as is (an unknown one fails with
//!   [`ProduceError::UnknownPartition`]); otherwise the [`Partitioner`] is called per its
//!   documented contract, including [`Partitioner::on_new_batch`] (KIP-480) whenever the
//!   record would open a new batch.
//! - Transactions are not supported yet: a configuration with `transactional_id` is refused
//!   by [`ProducerCore::new`]. The idempotence state (`idempotence.rs`) is the seam a
//!   transaction manager will extend.

pub mod murmur2;
pub mod partitioner;
pub mod serializer;

mod accumulator;
mod batch;
mod core;
#[cfg(test)]
mod core_tests;
mod deliveries;
mod error;
mod fasthash;
mod idempotence;
mod metrics;
mod record;
mod shared;

pub use self::core::{ProducerCore, ProducerEvent};
/// How a driver hands a record's outcome to the application (futures and callbacks live in
/// the driver layer; re-exported here, where applications import them).
pub use crate::driver::{Delivery, DeliveryFuture};
pub use deliveries::{Deliveries, DeliveriesIter, DeliveryResult, SendStatus};
pub use error::ProduceError;
pub use metrics::ProducerMetrics;
pub use murmur2::{murmur2, to_positive};
pub use partitioner::{
    partition_for_key, DefaultPartitioner, Partitioner, RoundRobinPartitioner, UNKNOWN_PARTITION,
};
pub(crate) use record::RecordBody;
pub use record::{ProducerRecord, RecordMetadata};
pub use serializer::{DeserializeError, Deserializer, SerializeError, Serializer};
pub use shared::ProducerShared;

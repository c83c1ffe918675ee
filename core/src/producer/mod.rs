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
//! - [`ProducerEvent`] / [`Deliveries`]: everything the core reports, drained from
//!   `poll_output`: records' outcomes (one [`Deliveries`] report per Produce response),
//!   admission after memory backpressure, flushes, partition lookups, fatal errors, closed.
//! - [`ProducerShared`]: the buffer-memory account (`buffer_memory`) handles reserve from
//!   without locks before queueing a record. It is the one piece of state the core shares
//!   with other threads, and says why in its docs.
//! - [`Delivery`] / [`DeliveryFuture`]: how a driver hands a record's outcome to the
//!   application (they live in [`crate::driver`], which maps the core's ids to them, and are
//!   re-exported here).
//! - [`ProducerMetrics`]: kafka-python's producer metrics.
//! - [`partitioner`], [`murmur2`](mod@murmur2), [`serializer`]: partition choice (Java's
//!   built-in sticky/keyed partitioner, round-robin, or your own [`Partitioner`]), Kafka's
//!   key hash, and key/value serializers.
//!
//! # Contracts
//! - Ids in, events out: every application command carries an [`OpId`](crate::OpId) of
//!   the caller's choosing ([`ProducerCore::send`] takes `Option<OpId>`: `None` is fire and
//!   forget) and its result comes out of
//!   [`ClientCore::poll_output`](crate::network::ClientCore::poll_output) as a
//!   [`ProducerEvent`] naming that id. The core holds no channel, callback, lock or waker;
//!   a single-threaded embedder needs no `Send` bounds, shared pointers or locks to use it.
//! - Every accepted record with an op is reported exactly once, in a
//!   [`ProducerEvent::Delivered`] report: with its [`RecordMetadata`] only after the broker
//!   acknowledged it (`acks=0`: once the request was written, offset -1), or with a
//!   [`ProduceError`] that says what failed and where. Nothing acknowledged is reported
//!   failed and nothing failed is reported acknowledged. A record refused at once is refused
//!   by `send`'s return value instead; one that waited for memory and was refused is
//!   reported by [`ProducerEvent::Admitted`] with the error. Records without an op are
//!   counted in the metrics and never reported.
//! - Reports are batched per Produce response (one event per response, or per sweep of
//!   expired or failed records) and cost nothing per record beyond a small entry; hand them
//!   back with [`ProducerCore::recycle_deliveries`] to reuse their memory.
//! - Closing: [`ProducerCore::close`] is graceful (delivers what is buffered within its
//!   timeout, then fails the rest with [`ProduceError::Closed`]), [`ProducerCore::abort`]
//!   is hard (fails everything at once); both close the connections and report
//!   [`ProducerEvent::Closed`] once.
//! - Wall clock: an input ([`ProducerCore::handle_wall_clock`]). A record without a
//!   timestamp is stamped from it when sent; before it was ever fed, such a record is
//!   refused with [`ProduceError::NoWallClock`] rather than stamped CreateTime 0 (1970).
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
//! - Transactions (with `transactional_id`, KIP-98 and KIP-447, Java's semantics):
//!   [`ProducerCore::init_transactions`] once, then per transaction
//!   [`ProducerCore::begin_transaction`], records, optionally
//!   [`ProducerCore::send_offsets_to_transaction`] (a consumer group's offsets, committed
//!   with the transaction), and [`ProducerCore::commit_transaction`] or
//!   [`ProducerCore::abort_transaction`]; each call's result is a
//!   [`ProducerEvent::Transaction`] naming its op. A record sent outside an open
//!   transaction is refused ([`ProduceError::TxnState`]), as is a call in the wrong state.
//!   Errors are classified as in Java: an abortable error
//!   ([`ProduceError::TxnAbortable`]: a record or partition of this transaction failed, the
//!   group fenced the member) fails `commit` and every later send until
//!   `abort_transaction`; a fatal one (fenced by a newer producer with the same id,
//!   PRODUCER_FENCED or INVALID_PRODUCER_EPOCH; not authorized) fails everything for good
//!   ([`ProduceError::Fatal`], also for a later abort). Only the transaction protocol v1 is
//!   spoken (every partition is added with AddPartitionsToTxn; KIP-890's protocol v2 is
//!   not). The state machine is in `txn/`, the requests in `core/txn.rs`.

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
mod txn;

pub use self::core::{ProducerCore, ProducerEvent};
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
pub use txn::TxnState;

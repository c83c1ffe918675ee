//! The producer: pieces of the client that turn application records into partitioned bytes.
//!
//! What exists so far:
//! - [`partitioner`]: the [`Partitioner`] trait with Java's built-in keyed/sticky
//!   [`DefaultPartitioner`] and the [`RoundRobinPartitioner`].
//! - [`murmur2`](mod@murmur2): Kafka's key hash, bit-compatible with the Java client.
//! - [`serializer`]: the [`Serializer`] and [`Deserializer`] traits with Java-compatible
//!   implementations for bytes, strings and numbers (and JSON behind the `json` feature).

pub mod murmur2;
pub mod partitioner;
pub mod serializer;

pub use murmur2::{murmur2, to_positive};
pub use partitioner::{
    partition_for_key, DefaultPartitioner, Partitioner, RoundRobinPartitioner, UNKNOWN_PARTITION,
};
pub use serializer::{DeserializeError, Deserializer, SerializeError, Serializer};

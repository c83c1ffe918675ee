//! [`ConsumerError`]: what a consumer call or a poll can fail with.

use std::time::Duration;

use super::record::TopicPartition;
use crate::network::NetError;
use crate::producer::serializer::DeserializeError;
use crate::protocol::ErrorCode;

/// Why a consumer call failed, or what went wrong with one partition.
///
/// The partition errors (`OffsetOutOfRange`, `NoOffset`, `Partition`, `Corrupt`,
/// `RecordTooLarge`) stop fetching for their partition until the application seeks it; a poll
/// reports each once, when it has no records of other partitions to return.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The fetch position is outside the log and `auto_offset_reset` is `none`.
    #[error("offset {offset} of {partition} is out of range and auto_offset_reset is none")]
    OffsetOutOfRange {
        /// The partition.
        partition: TopicPartition,
        /// The position that was out of range.
        offset: i64,
    },
    /// The partition has no position and `auto_offset_reset` is `none` (Java's
    /// `NoOffsetForPartitionException`).
    #[error("{partition} has no position and auto_offset_reset is none")]
    NoOffset {
        /// The partition.
        partition: TopicPartition,
    },
    /// The call named a partition that is not assigned to this consumer.
    #[error("{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The partition.
        partition: TopicPartition,
    },
    /// The broker answered with an error no retry fixes (authorization, ...).
    #[error("{partition}: {}", .error.name())]
    Partition {
        /// The partition.
        partition: TopicPartition,
        /// The broker's error.
        error: ErrorCode,
    },
    /// Fetched data failed its checksum or could not be decoded.
    #[error("corrupt data in {partition} at offset {offset}: {detail}")]
    Corrupt {
        /// The partition.
        partition: TopicPartition,
        /// The position being read.
        offset: i64,
        /// What was wrong.
        detail: String,
    },
    /// A broker without KIP-74 returned only part of a batch larger than
    /// `max_partition_fetch_bytes`: raise it to read on.
    #[error("a record batch of {partition} at offset {offset} exceeds max_partition_fetch_bytes")]
    RecordTooLarge {
        /// The partition.
        partition: TopicPartition,
        /// The position being read.
        offset: i64,
    },
    /// A key or value deserializer failed.
    #[error("cannot deserialize the record at {partition} offset {offset}: {error}")]
    Deserialize {
        /// The partition.
        partition: TopicPartition,
        /// The record's offset.
        offset: i64,
        /// The deserializer's error.
        error: DeserializeError,
    },
    /// A request failed for good (its retries and timeouts are the network layer's).
    #[error(transparent)]
    Network(#[from] NetError),
    /// The call did not complete in time.
    #[error("{operation} did not complete within {}ms", .after.as_millis())]
    Timeout {
        /// The call.
        operation: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The topic does not exist (or is not visible to this client).
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The consumer is closed.
    #[error("the consumer is closed")]
    Closed,
    /// The group coordinator refused a group call: a commit of a generation that rebalanced
    /// since (`ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`, `REBALANCE_IN_PROGRESS`), a fenced
    /// static member (`FENCED_INSTANCE_ID`, fatal), an unauthorized or invalid group, ...
    #[error("group {}: {detail}", .error.name())]
    Group {
        /// The coordinator's error.
        error: ErrorCode,
        /// What was refused.
        detail: String,
    },
    /// The call does not fit the consumer's state (subscribe after assign, commit without a
    /// group, an invalid pattern, ...; Java's `IllegalStateException`).
    #[error("{detail}")]
    IllegalState {
        /// What was wrong.
        detail: String,
    },
}

impl ConsumerError {
    /// The partition the error is about, if it is about one.
    pub fn partition(&self) -> Option<&TopicPartition> {
        match self {
            ConsumerError::OffsetOutOfRange { partition, .. }
            | ConsumerError::NoOffset { partition }
            | ConsumerError::NotAssigned { partition }
            | ConsumerError::Partition { partition, .. }
            | ConsumerError::Corrupt { partition, .. }
            | ConsumerError::RecordTooLarge { partition, .. }
            | ConsumerError::Deserialize { partition, .. } => Some(partition),
            _ => None,
        }
    }
}

//! [`ProduceError`]: why a record was not delivered (or a producer call failed).

use std::time::Duration;

use crate::network::NetError;
use crate::protocol::ErrorCode;

use super::serializer::SerializeError;

/// Why a record was not delivered, or why a producer call failed. Every message says what
/// failed and where (topic, partition, broker, setting).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The record alone is larger than a limit; nothing was sent.
    #[error("the record is {size} bytes when serialized, larger than {setting} ({max})")]
    RecordTooLarge {
        /// Estimated size of the record in a batch of its own.
        size: usize,
        /// The limit.
        max: usize,
        /// `"max_request_size"` or `"buffer_memory"`.
        setting: &'static str,
    },
    /// `max_block_ms` passed while waiting for metadata or buffer memory.
    #[error("{what} not available after {}ms (max_block_ms)", after.as_millis())]
    MaxBlockTimeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The topic does not exist (metadata said so until `max_block_ms` passed).
    #[error("topic {topic:?} does not exist (or is not visible to this client)")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The record names a partition the topic does not have.
    #[error("partition {partition} of topic {topic:?} does not exist (the topic has {partitions} partitions)")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },
    /// `delivery_timeout_ms` passed before the broker acknowledged the record.
    #[error("record for {topic}-{partition} not delivered within {}ms (delivery_timeout_ms){}", after.as_millis(), last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The delivery timeout.
        after: Duration,
        /// The last error seen while trying, if any.
        last_error: Option<String>,
    },
    /// The broker refused the record with an error no retry fixes.
    #[error("{broker} refused the record for {topic}-{partition}: {code}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// The topic.
        topic: String,
        /// The partition (-1 when the error concerns the whole topic).
        partition: i32,
        /// The broker that answered.
        broker: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// A network failure no retry could fix (the error names the broker).
    #[error(transparent)]
    Network(NetError),
    /// The key or value serializer failed (typed API only).
    #[error(transparent)]
    Serialize(SerializeError),
    /// The record has no timestamp and the producer was never told the wall clock, so it
    /// cannot stamp one (it refuses rather than write CreateTime 0, i.e. 1970, which
    /// time-based retention deletes at once).
    #[error("the record has no timestamp and the producer has no wall clock: feed ProducerCore::handle_wall_clock (the drivers do) or set the record's timestamp")]
    NoWallClock,
    /// The producer is closed; the record was not sent.
    #[error("the producer is closed; the record was not sent")]
    Closed,
    /// The producer hit an error it cannot recover from (fenced, or its idempotence state is
    /// lost); every later send fails with it.
    #[error("the producer failed and cannot continue: {0}")]
    Fatal(String),
    /// `flush` (or `close`) did not finish in time.
    #[error("flush did not complete within {}ms: {pending} records still pending", after.as_millis())]
    FlushTimeout {
        /// The timeout.
        after: Duration,
        /// Records not yet completed.
        pending: usize,
    },
    /// A transactional call (or a send) came in a state that does not allow it.
    #[error("cannot {call} while the transactional producer is in state {state}")]
    TxnState {
        /// The call refused (`"send"` for a record).
        call: &'static str,
        /// The state it came in.
        state: crate::producer::TxnState,
    },
    /// A transactional call came while another one is still in progress.
    #[error("cannot {call} while {pending} is still in progress (retry that call first)")]
    TxnPending {
        /// The call refused.
        call: &'static str,
        /// The call in progress.
        pending: &'static str,
    },
    /// The current transaction hit an error: it cannot commit and must be aborted
    /// (`abort_transaction`), after which the producer can start a new one.
    #[error("the transaction cannot commit and must be aborted: {0}")]
    TxnAbortable(String),
    /// The record belonged to a transaction that was aborted before it was sent.
    #[error("the record's transaction was aborted before the record was sent")]
    TxnAborted,
    /// A call's argument is not usable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The configuration is not usable.
    #[error("invalid producer configuration: {0}")]
    InvalidConfig(String),
    /// A batch could not be encoded (a compression failure).
    #[error("cannot encode a record batch for {topic}-{partition}: {detail}")]
    Encode {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// What went wrong.
        detail: String,
    },
}

impl From<NetError> for ProduceError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Closed => ProduceError::Closed,
            e => ProduceError::Network(e),
        }
    }
}

impl From<SerializeError> for ProduceError {
    fn from(e: SerializeError) -> Self {
        ProduceError::Serialize(e)
    }
}

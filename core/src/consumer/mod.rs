//! The consumer: fetching records of manually assigned partitions, sans-IO.
//!
//! [`ConsumerCore`] owns a [`NetworkClient`](crate::network::NetworkClient) and implements
//! [`ClientCore`](crate::network::ClientCore); drivers run it like any core, and applications
//! use it through [`ConsumerHandle`](crate::driver::ConsumerHandle) (or call it directly, as
//! the simulation tests do).
//!
//! # Pieces
//! - `record`: [`ConsumerRecord`], [`ConsumerRecords`] (what a poll returns, by
//!   partition), [`TypedRecord`] and [`TopicPartition`].
//! - `subscription_state`: the assignment and each partition's position, watermarks, pause
//!   flag, pending reset, preferred read replica and sticky error.
//! - `fetcher` and `fetch_session`: one Fetch per broker, sized by the memory budget, with
//!   KIP-227 incremental sessions.
//! - `buffer`: fetched data kept as raw bytes and decoded one batch at a time as records
//!   are taken, with read_committed filtering and memory accounting.
//! - `offsets`: ListOffsets for resets and the application's offset lookups.
//! - [`assignor`]: the group partition assignors (range, roundrobin, sticky,
//!   cooperative-sticky) and the consumer protocol subscription/assignment codec.
//! - [`group`]: the classic group protocol (join, sync, heartbeats, leave), committed
//!   offsets, subscriptions by topic list or pattern, and rebalance listeners.
//!
//! # Contract
//! - `take_records(max, now)` never waits; a poll with a timeout is a
//!   [`wait`](ConsumerCore::wait) for [`WaitFor::Records`] with a deadline on `now`, answered
//!   by [`ConsumerEvent::Wake`]. The core enforces every deadline itself.
//! - Records of a partition come in offset order, each exactly once per position: the
//!   position moves past a record when it is handed out, and only a seek (or an offset reset
//!   after OFFSET_OUT_OF_RANGE) moves it otherwise. Data fetched for an older position is
//!   dropped.
//! - Memory: fetched data held (raw, decompressed batch being read, and reserved for fetches
//!   in flight) stays under `fetch_buffer_bytes`, except that a single batch larger than the
//!   budget is still read (the broker returns at least one batch, KIP-74). A slow application
//!   stops fetching rather than growing memory.
//! - Errors: retriable partition errors (leader moves, fenced or unknown leader epochs) are
//!   handled inside with a metadata refresh and `retry_backoff_ms`; the rest become a
//!   [`ConsumerError`] for the partition, returned once by `take_records`, and the partition
//!   stays stopped until sought.
//! - Determinism: partitions, brokers and requests are kept in ordered maps; nothing reads a
//!   clock or draws randomness.

pub mod assignor;
mod buffer;
mod core;
mod error;
mod events;
mod fetch_session;
mod fetcher;
pub mod group;
mod offsets;
mod record;
mod subscription_state;

pub use self::core::{ConsumerCore, OpId};
pub use error::ConsumerError;
pub use events::{ConsumerEvent, OffsetsResult};
pub use fetcher::FetchStats;
pub use group::{
    GroupMetadata, MemberState, OffsetAndMetadata, RebalanceCall, RebalanceContext, RebalanceKind,
    RebalanceListener, RebalanceOutcome,
};
pub use record::{
    ConsumerRecord, ConsumerRecords, OffsetAndTimestamp, TopicPartition, TypedRecord,
};

//! The consumer: fetching records of assigned partitions, alone or as a group member, sans-IO.
//!
//! [`ConsumerCore`] owns a [`NetworkClient`](crate::network::NetworkClient) and implements
//! [`ClientCore`](crate::network::ClientCore); drivers run it like any core, and applications
//! use it through [`ConsumerHandle`](crate::driver::ConsumerHandle) (or call it directly from
//! a loop of their own, as the simulation tests do).
//!
//! # Pieces
//! - `events`: [`ConsumerEvent`], and the bookkeeping that reports each change once.
//! - `record`: [`ConsumerRecord`], [`ConsumerRecords`] (what a poll returns, by
//!   partition), [`TypedRecord`] and [`TopicPartition`].
//! - `subscription_state`: the assignment and each partition's position, watermarks, pause
//!   flag, pending reset, preferred read replica and sticky error.
//! - `fetcher` and `fetch_session`: one Fetch per broker, sized by the memory budget, with
//!   KIP-227 incremental sessions.
//! - `buffer`: fetched data kept as raw bytes and decoded one batch at a time as records
//!   are taken, with read_committed filtering and memory accounting.
//! - `metrics`: [`ConsumerMetrics`] (Java's consumer metric names) and [`PartitionLag`].
//! - `offsets`: ListOffsets for resets and the application's offset lookups.
//! - [`assignor`]: the group partition assignors (range, roundrobin, sticky,
//!   cooperative-sticky) and the consumer protocol subscription/assignment codec.
//! - [`group`]: the classic group protocol (join, sync, heartbeats, leave), committed
//!   offsets, subscriptions by topic list or pattern, and rebalance listeners.
//!
//! # Contract
//! - Ids in, events out. Commands with a result take an [`OpId`] the application chooses
//!   ([`commit_sync`](ConsumerCore::commit_sync), [`commit_async`](ConsumerCore::commit_async),
//!   [`committed`](ConsumerCore::committed), [`list_offsets`](ConsumerCore::list_offsets),
//!   [`fetch_metadata`](ConsumerCore::fetch_metadata)); the result is a [`ConsumerEvent`]
//!   carrying it, drained from `poll_output` like every output. The core never interprets an
//!   op, so repeated ones come back repeated. Commits the core makes on its own (auto-commit,
//!   the listener's commit) are reported too, without an op.
//! - Nothing waits inside the core, and it keeps no deadline of the application's.
//!   `take_records(max, now)` returns at once; the core reports the changes a waiting
//!   application needs, once each: [`ConsumerEvent::RecordsReady`] (take_records has
//!   something again), [`ConsumerEvent::PositionsChanged`] (a reset or committed-offset lookup
//!   ended), [`ConsumerEvent::RebalancePending`] (a listener callback waits),
//!   [`ConsumerEvent::GroupSettled`] (the group's steps are done) and
//!   [`ConsumerEvent::Closed`]. A poll with a timeout is `take_records`, then waiting for
//!   `RecordsReady` or its own deadline, then `take_records` again; while it waits the
//!   application says so with [`set_poll_waiting`](ConsumerCore::set_poll_waiting) (a group
//!   member counts as polling meanwhile, as in Java's long poll). The drivers'
//!   [`ConsumerHandler`](crate::driver::ConsumerHandler) does exactly this, with its deadlines
//!   in the loop's `poll_timeout`/`handle_timeout` hooks. No channel, callback or lock is
//!   kept here: an async commit's callback is the handler's business.
//! - Two ways to stop: [`close(timeout, now)`](ConsumerCore::close) is graceful (a group member
//!   commits, runs its revocation callbacks and leaves the group, then `Closed`), and
//!   [`abort()`](ConsumerCore::abort) stops at once.
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
mod metrics;
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
pub use metrics::{ConsumerMetrics, PartitionLag, TopicMetrics};
pub use record::{
    ConsumerRecord, ConsumerRecords, OffsetAndTimestamp, TopicPartition, TypedRecord,
};

//! Consumer groups: the classic group protocol (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup) and KIP-848's consumer protocol (ConsumerGroupHeartbeat, with
//! `group_protocol = consumer`: see `member::consumer_protocol`), committed offsets and
//! rebalance listeners, sans-IO. The list below is the classic protocol's.
//!
//! The member's state machine ([`member`]) lives beside the fetcher inside
//! [`ConsumerCore`](crate::consumer::ConsumerCore), which exposes it through `subscribe`,
//! `subscribe_pattern`, `unsubscribe`, `commit_sync`, `commit_async`, `committed` (results as
//! events with the caller's op), `pending_rebalance` / `complete_rebalance` (announced by
//! `ConsumerEvent::RebalancePending`), `close` and `group_metadata`. Java's `KafkaConsumer`
//! (`AbstractCoordinator`, `ConsumerCoordinator`) is the reference for every behaviour:
//!
//! - FindCoordinator through the network layer's `Target::Coordinator` routing; on
//!   `NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`, a disconnect or a session without a
//!   successful heartbeat the coordinator is looked up again.
//! - JoinGroup with the `MEMBER_ID_REQUIRED` round trip (KIP-394), the session timeout and
//!   `max_poll_interval_ms` as rebalance timeout, static membership (KIP-345,
//!   `group_instance_id`) and the rack in the subscription (v3). The leader fetches metadata for
//!   every member's topics, runs the assignor the coordinator chose and sends SyncGroup; a
//!   restarted static leader told to skip the assignment (KIP-814) does not.
//! - Heartbeats every `heartbeat_interval_ms` from the JoinGroup answer on; `REBALANCE_IN_PROGRESS`
//!   rejoins, `ILLEGAL_GENERATION` / `UNKNOWN_MEMBER_ID` lose the partitions and rejoin with a
//!   new member id, `FENCED_INSTANCE_ID` is fatal (every later poll returns it).
//! - Eager rebalancing revokes everything before JoinGroup; cooperative (KIP-429, when every
//!   configured assignor supports it) keeps its partitions, revokes only those assigned away
//!   after SyncGroup and then rejoins at once.
//! - A member that does not poll within `max_poll_interval_ms` leaves the group (LeaveGroup
//!   for dynamic members) and rejoins on its next poll, after `on_partitions_lost`.
//! - Commits: auto-commit every `auto_commit_interval_ms`, before a revocation and on close;
//!   sync commits retry retriable errors until their timeout; async ones do not retry.
//!   Newly assigned partitions start from their committed offsets (OffsetFetch with
//!   `require_stable`), else from `auto_offset_reset`.
//! - A pattern subscription is matched against full metadata every `metadata_max_age_ms`;
//!   new matches rejoin. Internal topics are left out with `exclude_internal_topics`.
//!
//! The member joins only once the application has polled since it subscribed, as Java
//! joins inside `poll`; from then on joins, heartbeats and commits proceed in the background
//! until a listener callback needs the application ([`listener`]).

pub mod listener;
pub(crate) mod member;
pub(crate) mod subscription;

pub use listener::{
    run_listener, GroupMetadata, RebalanceCall, RebalanceContext, RebalanceKind, RebalanceListener,
    RebalanceOutcome,
};
pub use member::offset_commit::{default_offset_commit_callback, OffsetAndMetadata, Offsets};
pub use member::offset_fetch::CommittedResult;
pub use member::MemberState;

//! The harness of the seeded consumer group fault scenarios (`sim_group_faults`, the classic
//! protocol, and `sim_group848_faults`, KIP-848's consumer protocol): several `ConsumerCore`s
//! subscribed to one topic in one group on the simulated 3-broker cluster, polled by the test
//! as applications would (`take_records` is the poll; rebalance listener callbacks are run by
//! the test through `pending_rebalance` / `complete_rebalance`), while members join, leave
//! (LeaveGroup, or the leave heartbeat), crash (connections dropped, nothing sent: the session
//! timeout removes them) and stall past `max_poll_interval_ms`; while the group coordinator's
//! broker crashes (the group moves to another broker) and restarts, the network to a broker is
//! split and healed, and connections are reset. A producer appends records straight into the
//! cluster model (Produce frames on connections of the test's own) throughout the fault
//! window.
//!
//! Each scenario runs over `KAFKIT_SIM_SEEDS` seeds (default 200) starting at
//! `KAFKIT_SIM_SEED_START` (default 0). A failure names its scenario and seed and shows the
//! end of the run's trace (`KAFKIT_SIM_TRACE=1`: all of it, and the traces of passing seeds);
//! that seed replays the run exactly.
//!
//! Invariants, checked after every simulation step:
//! - no partition is owned by two members at once among the members the coordinator still
//!   counts in the group (a member the coordinator removed, and which has not found out yet,
//!   is a zombie and not counted). Classic: a member owns its `assignment()`; with eager
//!   assignors this holds because members revoke everything before rejoining, with
//!   cooperative-sticky it is KIP-429's promise; besides, no partition is owned by two members
//!   in one generation (a member owns its `assignment()` while it is `Stable` in generation
//!   `group_metadata().generation_id`; recorded over the whole run). Consumer protocol: a
//!   member owns its `assignment()` at its member epoch, which must be part of what the
//!   coordinator has it owning (assigned or pending revocation) whenever the coordinator
//!   counts it at that epoch, and the coordinator itself never has a partition owned twice;
//! - a poll returns records only of partitions the member owns at that moment, and none of a
//!   partition given to on_partitions_revoked/lost (until it is assigned again);
//! - committed offsets (as the cluster's coordinator stores them) never move backwards;
//!
//! and at the end of every run:
//! - once the faults are over, the group settles within [`SETTLE_WITHIN`] of virtual time:
//!   every live member stable (classic: in one generation; consumer protocol: at the
//!   coordinator's assignment epoch with its target assignment), callbacks done, the
//!   coordinator's member list exactly the live members, and their assignments disjoint and
//!   covering every partition;
//! - every record produced was returned by some member's poll at least once;
//! - a member asked to leave closes within its close timeout;
//! - the run stays within its step bound (no livelock).
#![allow(dead_code)]

mod apps;
mod classic;
mod consumer;
mod scenario;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::config::AssignmentStrategy;
use kafkit_core::consumer::{MemberState, TopicPartition};
use kafkit_core::protocol::{request_header_version, Message, RequestBody, RequestHeader};
use kafkit_sim::Endpoint;

pub use scenario::Scenario;

pub const TOPIC: &str = "events";
pub const GROUP: &str = "g";
pub const PARTITIONS: i32 = 6;
pub const BROKERS: usize = 3;
/// Members at the start.
pub const INITIAL_MEMBERS: usize = 3;
/// At most this many members are ever started in a run (joins stop there).
pub const MAX_MEMBERS: usize = 6;
/// At most this many live members at once (joins wait below it).
pub const MAX_LIVE: usize = 4;
/// The applications poll, commit and the producer appends once per tick.
pub const TICK: Duration = Duration::from_millis(200);
/// Faults start in [FAULTS_FROM, FAULTS_UNTIL); every fault is undone by FAULTS_UNTIL, except
/// that a stall started before it runs its course. Production stops at FAULTS_UNTIL.
pub const FAULTS_FROM: Duration = Duration::from_secs(2);
pub const FAULTS_UNTIL: Duration = Duration::from_secs(30);
/// After the last fault ends, the group must settle and every record be consumed within this
/// much virtual time.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// How long the group must stay settled to count as settled (longer than the session
/// timeout: a member whose heartbeats do not get through is expired within it).
pub const SETTLED_FOR: Duration = Duration::from_secs(8);
/// The session timeout: the classic members' `session_timeout_ms`, the consumer protocol's
/// broker-side `group.consumer.session.timeout.ms`.
pub const SESSION_TIMEOUT_MS: u32 = 6_000;
/// The heartbeat interval, set the same two ways.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1_000;
pub const MAX_POLL_INTERVAL_MS: u32 = 8_000;
/// Longer than the rebalance timeout (max_poll_interval_ms), so that a JoinGroup parked for a
/// whole rebalance is not timed out (see the group contract's known gaps).
pub const REQUEST_TIMEOUT_MS: u32 = 10_000;
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Steps one run may take (a livelock fails the run, naming its seed).
pub const MAX_STEPS: u64 = 2_000_000;
/// Steps at one virtual instant that mean time stands still (a deadline that stays due).
pub const STUCK_STEPS: u64 = 10_000;
/// Trace lines shown with a failure.
pub const TRACE_TAIL: usize = 60;

pub fn seeds() -> std::ops::Range<u64> {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let start = var("KAFKIT_SIM_SEED_START", 0);
    start..start + var("KAFKIT_SIM_SEEDS", 200)
}

/// The group protocol a scenario's members speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// JoinGroup/SyncGroup with this client-side assignor.
    Classic(AssignmentStrategy),
    /// KIP-848's ConsumerGroupHeartbeat.
    Consumer {
        /// `group_remote_assignor` (`uniform` or `range`).
        assignor: &'static str,
        /// Subscribe by regular expression rather than by topic name.
        regex: bool,
    },
}

impl Protocol {
    pub fn is_consumer(self) -> bool {
        matches!(self, Protocol::Consumer { .. })
    }
}

/// Which faults a scenario draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faults {
    /// Members join, leave, crash and stall.
    Membership,
    /// The coordinator's broker crashes and restarts, the network to a broker (the
    /// coordinator's or another) is split and healed, connections to the coordinator are
    /// reset; and now and then a member crashes or joins.
    Brokers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Join,
    Leave,
    Crash,
    Stall,
    CoordinatorCrash,
    PartitionCoordinator,
    PartitionOther,
    DropCoordinatorConnections,
}

impl Faults {
    fn menu(self) -> &'static [Fault] {
        match self {
            Faults::Membership => &[Fault::Join, Fault::Leave, Fault::Crash, Fault::Stall],
            Faults::Brokers => &[
                Fault::CoordinatorCrash,
                Fault::CoordinatorCrash,
                Fault::PartitionCoordinator,
                Fault::PartitionCoordinator,
                Fault::PartitionOther,
                Fault::DropCoordinatorConnections,
                Fault::Crash,
                Fault::Join,
            ],
        }
    }
}

/// Something a fault left to undo.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    Restart(i32),
    Heal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Polling,
    /// The application stops polling until then (since the start).
    Stalled(Duration),
    /// `close` was called then.
    Leaving(Duration),
    Left,
    Crashed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// enable_auto_commit, every second.
    Auto,
    /// commit_async of the consumed positions every second, and commit_sync of the revoked
    /// partitions' positions in on_partitions_revoked.
    Manual,
}

pub(crate) struct App {
    life: Life,
    commits: Commits,
    /// The static member's `group_instance_id`, if it is one.
    instance: Option<String>,
    /// Whether a later member took over this one's instance id (a static member restarted).
    replaced: bool,
    next_commit: Duration,
    /// What the member looked like at the last check, for the trace.
    last_seen: Option<(Option<MemberState>, i32, BTreeSet<TopicPartition>)>,
    polled: u64,
    /// Partitions given to on_partitions_revoked/lost and not assigned again since: a poll
    /// must not return their records.
    revoked: BTreeSet<TopicPartition>,
}

impl App {
    fn live(&self) -> bool {
        matches!(self.life, Life::Polling | Life::Stalled(_))
    }
}

/// A server that listens nowhere and only wakes the simulation at the next tick, so that a
/// step never jumps past it.
struct Ticker(Rc<Cell<Option<Instant>>>);

impl Endpoint for Ticker {
    fn accept(&mut self, _: u64, _: Instant) -> bool {
        false
    }
    fn receive(&mut self, _: u64, _: &[u8], _: Instant) -> Vec<u8> {
        Vec::new()
    }
    fn closed(&mut self, _: u64) {}
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.get()
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.0.get().is_some_and(|t| t <= now) {
            self.0.set(None);
        }
    }
}

fn frame(body: &RequestBody, version: i16) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test-producer".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .expect("header encodes");
    body.encode(&mut buf, version).expect("body encodes");
    buf.freeze()
}

/// What one run did, for the totals a scenario prints.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub faults: u64,
    /// Generations (classic) or group epochs (consumer protocol) at the end.
    pub generations: i64,
    pub records: u64,
    pub polled: u64,
    pub poll_errors: u64,
    pub settled_after: Duration,
    pub steps: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.faults += o.faults;
        self.generations += o.generations;
        self.records += o.records;
        self.polled += o.polled;
        self.poll_errors += o.poll_errors;
        self.settled_after = self.settled_after.max(o.settled_after);
        self.steps += o.steps;
    }
}

/// Runs one seed of a scenario: its stats and trace, or what failed (a panic included).
pub fn run_one(
    name: &'static str,
    faults: Faults,
    protocol: Protocol,
    seed: u64,
) -> Result<(Stats, Vec<String>), String> {
    match catch_unwind(AssertUnwindSafe(|| {
        Scenario::new(name, faults, protocol, seed).run()
    })) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("{name} seed {seed}: panicked: {msg}"))
        }
    }
}

/// Runs a scenario over the seeds of [`seeds`], failing with every failed seed's report.
pub fn run_seeds(name: &'static str, faults: Faults, protocol: Protocol) {
    let range = seeds();
    let count = range.end - range.start;
    let mut totals = Stats::default();
    let mut failures = Vec::new();
    let print = std::env::var_os("KAFKIT_SIM_TRACE").is_some();
    for seed in range {
        match run_one(name, faults, protocol, seed) {
            Ok((s, trace)) => {
                if print {
                    eprintln!("{name} seed {seed}:\n    {}", trace.join("\n    "));
                }
                totals += s;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {count} seeds failed; replay one with KAFKIT_SIM_SEED_START=<seed> \
         KAFKIT_SIM_SEEDS=1 (KAFKIT_SIM_TRACE=1 for the whole trace):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The runs did what they are for: faults happened, the group rebalanced, data flowed.
    if count > 0 {
        assert!(totals.faults >= count, "{name}: {totals:?}");
        assert!(totals.generations >= 2 * count as i64, "{name}: {totals:?}");
        assert!(totals.records > 0, "{name}: {totals:?}");
    }
    eprintln!("{name}: {count} seeds, {totals:?}");
}

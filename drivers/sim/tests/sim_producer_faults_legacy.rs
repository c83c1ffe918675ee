//! The seeded producer fault scenarios of `sim_producer_faults.rs` on clusters configured as
//! Kafka 0.9 and 0.10.0 (`ClusterConfig::release`: Produce v1 with magic 0 message sets, and
//! Produce v2 with magic 1), with the only producer those releases have: without idempotence,
//! `acks=all`, retrying for 120 s. Broker crashes and restarts (with a replication delay),
//! leader moves to in-sync replicas, dropped connections (requests lost unread), and all of
//! them at once with injected retriable errors and lost answers.
//!
//! Invariants (the harness, `producer_faults/mod.rs`, checks them against the partition
//! logs): every send completes once and succeeds; nothing acknowledged is lost, and each
//! acknowledged record is at the partition and offset its metadata names, with its key, value
//! and (magic 1) timestamp; nothing unacknowledged is in a log; nothing acknowledged is above
//! the high watermark. Without idempotence a record may be in a log twice (a retry after a
//! lost answer) or out of send order (a retry behind a later request): Java promises neither,
//! and neither is checked.
//!
//! Seeds as in `sim_producer_faults.rs`:
//!
//! ```sh
//! KAFKIT_SIM_SEEDS=10000 cargo test --release -p kafkit-sim --test sim_producer_faults_legacy
//! KAFKIT_SIM_SEED_START=4242 KAFKIT_SIM_SEEDS=1 cargo test -p kafkit-sim --test sim_producer_faults_legacy
//! ```

use producer_faults::{run_seeds, Fault, Setup};

mod producer_faults;

const KAFKA_0_9: Setup = Setup::legacy("0.9");
const KAFKA_0_10_0: Setup = Setup::legacy("0.10.0");

#[test]
fn kafka_0_9_broker_crashes() {
    run_seeds(Fault::BrokerCrashes, KAFKA_0_9);
}

#[test]
fn kafka_0_9_leader_moves() {
    run_seeds(Fault::LeaderMoves, KAFKA_0_9);
}

#[test]
fn kafka_0_9_dropped_connections() {
    run_seeds(Fault::DroppedConnections, KAFKA_0_9);
}

#[test]
fn kafka_0_9_mixed_faults() {
    run_seeds(Fault::Mixed, KAFKA_0_9);
}

#[test]
fn kafka_0_10_0_broker_crashes() {
    run_seeds(Fault::BrokerCrashes, KAFKA_0_10_0);
}

#[test]
fn kafka_0_10_0_leader_moves() {
    run_seeds(Fault::LeaderMoves, KAFKA_0_10_0);
}

#[test]
fn kafka_0_10_0_dropped_connections() {
    run_seeds(Fault::DroppedConnections, KAFKA_0_10_0);
}

#[test]
fn kafka_0_10_0_mixed_faults() {
    run_seeds(Fault::Mixed, KAFKA_0_10_0);
}

//! Seeded fault scenarios for the producer against the simulated cluster: broker crashes and
//! restarts, leader moves, dropped connections, injected retriable errors and lost responses
//! (the request was appended, its answer never arrives, so the retry is a duplicate), all under
//! steady produce with `acks=all`, idempotence, several partitions and up to 5 requests in
//! flight. Produce requests are lost with a reset connection both before the broker reads them
//! and after it appended them (the answer is lost), so retries meet both an empty log and a
//! duplicate.
//!
//! Each scenario runs over `KAFKIT_SIM_SEEDS` seeds (default 200) starting at
//! `KAFKIT_SIM_SEED_START` (default 0); a failure names its seed, and that seed replays the run
//! exactly:
//!
//! ```sh
//! KAFKIT_SIM_SEEDS=10000 cargo test --release -p kafkit-sim --test sim_producer_faults
//! KAFKIT_SIM_SEED_START=4242 KAFKIT_SIM_SEEDS=1 cargo test -p kafkit-sim --test sim_producer_faults
//! ```
//!
//! Each run is 4.5 s of virtual time (faults from 0.3 s to 4 s, about 450 records, then a flush);
//! the six scenarios at 200 seeds take about 90 s of CPU in a debug build (about 45 s of wall
//! time on two idle cores).
//!
//! Invariants checked in every run, once the faults have ended and the producer is flushed:
//! - every send completes, exactly once (its callback runs once);
//! - every result tells the truth: with idempotence and a delivery timeout longer than the
//!   faults, every record succeeds, and its metadata (partition, offset, timestamp) names the
//!   very record the log holds there;
//! - nothing is lost and nothing is duplicated: each partition's log holds exactly the records
//!   acknowledged for it, each once;
//! - per-partition order is kept: a partition's log holds its records in send order;
//! - every acknowledged record is below the high watermark (acks=all);
//! - the run never exceeds its step bound (no livelock).
//!
//! The harness is `producer_faults/mod.rs`, shared with `sim_producer_faults_legacy.rs` (the
//! same scenarios on 0.9 and 0.10.0 without idempotence).

use std::time::Duration;

use producer_faults::{run_seeds, Fault, Scenario, Setup, TICK};

mod producer_faults;

#[test]
fn broker_crashes() {
    run_seeds(Fault::BrokerCrashes, Setup::IDEMPOTENT);
}

#[test]
fn leader_moves() {
    run_seeds(Fault::LeaderMoves, Setup::IDEMPOTENT);
}

#[test]
fn dropped_connections() {
    run_seeds(Fault::DroppedConnections, Setup::IDEMPOTENT);
}

#[test]
fn injected_retriable_errors() {
    run_seeds(Fault::InjectedErrors, Setup::IDEMPOTENT);
}

#[test]
fn lost_responses_are_deduplicated() {
    run_seeds(Fault::LostResponses, Setup::IDEMPOTENT);
}

#[test]
fn mixed_faults() {
    run_seeds(Fault::Mixed, Setup::IDEMPOTENT);
}

/// Every fault kind replays exactly from its seed: the same records complete at the same
/// partitions and offsets.
#[test]
fn a_seed_replays_exactly() {
    let trace = |seed, kind| {
        let mut s = Scenario::new(seed, kind, Setup::IDEMPOTENT);
        while s.elapsed() < Duration::from_secs(3) {
            s.faults();
            s.traffic();
            let until = s.sim.now() + TICK;
            s.advance(until).unwrap();
        }
        let results = s.results.lock().unwrap();
        results
            .iter()
            .map(|(n, r)| {
                let r: Vec<_> = r
                    .iter()
                    .map(|r| r.as_ref().map(|m| (m.partition, m.offset)).ok())
                    .collect();
                (*n, r)
            })
            .collect::<Vec<_>>()
    };
    let mut diverged = Vec::new();
    for kind in [
        Fault::BrokerCrashes,
        Fault::LeaderMoves,
        Fault::DroppedConnections,
        Fault::InjectedErrors,
        Fault::LostResponses,
        Fault::Mixed,
    ] {
        for seed in [1, 2, 3] {
            let first = trace(seed, kind);
            assert!(!first.is_empty(), "{kind:?} seed {seed}: nothing completed");
            let second = trace(seed, kind);
            if first != second {
                let at = first
                    .iter()
                    .zip(&second)
                    .position(|(a, b)| a != b)
                    .unwrap_or(first.len().min(second.len()));
                diverged.push(format!(
                    "{kind:?} seed {seed}: first difference at completion {at}: {:?} vs {:?}",
                    first.get(at),
                    second.get(at)
                ));
            }
        }
    }
    assert!(
        diverged.is_empty(),
        "runs diverged:\n{}",
        diverged.join("\n")
    );
}

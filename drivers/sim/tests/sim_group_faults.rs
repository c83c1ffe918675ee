//! Seeded fault scenarios for classic consumer groups (JoinGroup/SyncGroup): the harness,
//! the fault schedule and the invariants checked after every step are in
//! [`sim_group_support`] (shared with `sim_group848_faults`, KIP-848's consumer protocol).
//!
//! Scenarios run with eager assignors (`range`, `sticky`) and with `cooperative-sticky`
//! (KIP-429), each over `KAFKIT_SIM_SEEDS` seeds (default 200) starting at
//! `KAFKIT_SIM_SEED_START` (default 0). A failure names its scenario and seed and shows the
//! end of the run's trace; that seed replays the run exactly:
//!
//! ```sh
//! # the CI size (200 seeds per scenario)
//! cargo test -p kafkit-sim --test sim_group_faults
//! # 10,000 seeds per scenario
//! KAFKIT_SIM_SEEDS=10000 cargo test --release -p kafkit-sim --test sim_group_faults
//! # replay one seed of one scenario, with its whole trace
//! KAFKIT_SIM_SEED_START=4242 KAFKIT_SIM_SEEDS=1 KAFKIT_SIM_TRACE=1 \
//!     cargo test -p kafkit-sim --test sim_group_faults cooperative_membership -- --nocapture
//! ```

mod sim_group_support;

use kafkit_core::config::AssignmentStrategy;
use sim_group_support::{run_one, run_seeds, Faults, Protocol};

#[test]
fn eager_range_membership() {
    run_seeds(
        "eager_range_membership",
        Faults::Membership,
        Protocol::Classic(AssignmentStrategy::Range),
    );
}

#[test]
fn eager_sticky_broker_faults() {
    run_seeds(
        "eager_sticky_broker_faults",
        Faults::Brokers,
        Protocol::Classic(AssignmentStrategy::Sticky),
    );
}

#[test]
fn cooperative_membership() {
    run_seeds(
        "cooperative_membership",
        Faults::Membership,
        Protocol::Classic(AssignmentStrategy::CooperativeSticky),
    );
}

#[test]
fn cooperative_broker_faults() {
    run_seeds(
        "cooperative_broker_faults",
        Faults::Brokers,
        Protocol::Classic(AssignmentStrategy::CooperativeSticky),
    );
}

/// The same seed gives the same run, trace line for trace line (member states, assignments,
/// callbacks, commits, faults, all at the same virtual instants).
#[test]
fn a_seed_replays_exactly() {
    for (faults, strategy) in [
        (Faults::Membership, AssignmentStrategy::CooperativeSticky),
        (Faults::Brokers, AssignmentStrategy::Range),
    ] {
        for seed in [3, 17] {
            let a = run_one("replay", faults, Protocol::Classic(strategy), seed).map(|(_, t)| t);
            let b = run_one("replay", faults, Protocol::Classic(strategy), seed).map(|(_, t)| t);
            assert!(a.is_ok(), "{a:?}");
            assert_eq!(a, b, "{faults:?} {strategy:?} seed {seed}");
        }
    }
}

/// Seeds beyond the default 200 that once failed in the 10,000-seed run (2026-11-24), each
/// of them on every run:
/// - a crashed (closed) member's network layer kept reporting a metadata retry deadline that
///   nothing acted on after close, so time stood still (cooperative 659, 827, 830; eager
///   sticky seeds of the same kind);
/// - a member cut off from the coordinator for longer than its session kept its partitions
///   until it reached the coordinator again, while the group had already given them to
///   another member (cooperative 738, 1443, 2968, 3215).
#[test]
fn seeds_found_by_the_long_run() {
    let cases: [(&'static str, AssignmentStrategy, &[u64]); 2] = [
        (
            "cooperative_broker_faults",
            AssignmentStrategy::CooperativeSticky,
            &[659, 738, 827, 830, 1443, 2968, 3215],
        ),
        (
            "eager_sticky_broker_faults",
            AssignmentStrategy::Sticky,
            &[827, 862, 972, 1016, 1134],
        ),
    ];
    let mut failures = Vec::new();
    for (name, strategy, seeds) in cases {
        for &seed in seeds {
            if let Err(e) = run_one(name, Faults::Brokers, Protocol::Classic(strategy), seed) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

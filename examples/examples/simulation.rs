//! A seeded simulation test of a consumer group, to copy into your own tests.
//!
//! ```sh
//! cargo run -p kafkit-examples --example simulation              # seed 42
//! SEED=7 cargo run -p kafkit-examples --example simulation       # another run, replayable
//! cargo test -p kafkit-examples --example simulation             # what CI runs (3 seeds)
//! ```
//!
//! Shows: testing consumer code against kafkit's simulated cluster, with no sockets and no
//! real time. A 3-broker in-memory cluster (every partition replicated three times) gets 3,000
//! records from kafkit's producer; then three group members (the very `ConsumerCore` the
//! drivers run) share its six partitions in one `Simulation` on a virtual clock. The test is
//! the application: it polls each member (`take_records`), runs its rebalance listener (the
//! same `RebalanceListener` a tokio program passes to `subscribe_with_listener`; this one
//! commits on revoke) and commits after each batch. Midway a third member joins (a rebalance)
//! and a partition leader's broker crashes (the consumers move to the new leaders). At the
//! end it checks that every record was consumed exactly once. Every random choice, the
//! network's jitter included, comes from the seed: a failing seed replays exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafkit::core::consumer::group::run_listener;
use kafkit::core::consumer::{ConsumerCore, ConsumerEvent};
use kafkit::prelude::*;
use kafkit::sim::{consumer_core, serve_cluster, ClusterConfig, ProducerSim, Simulation};
use kafkit_examples::Error;

const TOPIC: &str = "orders";
const GROUP: &str = "order-processors";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 3_000;
/// Virtual time after which the run counts as stuck.
const GIVE_UP: Duration = Duration::from_secs(300);
/// How often the application polls each member, in virtual time, and the most records a poll
/// returns: an application that takes its time, so that the faults find work in progress.
const POLL_EVERY: Duration = Duration::from_millis(20);
const MAX_POLL_RECORDS: u32 = 10;

fn main() -> Result<(), Error> {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let report = run(seed)?;
    for (member, n) in report.per_member.iter().enumerate() {
        println!("member {member}: {n} records");
    }
    println!(
        "seed {seed}: {RECORDS} records consumed exactly once by {} members in {:?} of virtual time",
        report.per_member.len(),
        report.took
    );
    Ok(())
}

/// What the listener does, as in a real program: commit what was consumed before partitions
/// go (so the next owner starts right after it), and say what changed.
struct CommitOnRevoke {
    member: usize,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        ctx.commit_sync(None);
        println!(
            "  member {} revoked {:?}, committed",
            self.member,
            numbers(partitions)
        );
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        println!(
            "  member {} generation {} assigned {:?}",
            self.member,
            ctx.group_metadata().generation_id,
            numbers(partitions)
        );
    }
}

/// `orders-0, orders-2` as `[0, 2]`.
fn numbers(partitions: &BTreeSet<TopicPartition>) -> Vec<i32> {
    partitions.iter().map(|tp| tp.partition).collect()
}

/// The application side of one member.
struct Member {
    listener: CommitOnRevoke,
    consumed: usize,
    joined: bool,
}

struct Report {
    per_member: Vec<usize>,
    took: Duration,
}

/// One seeded run; `Err` says what went wrong and names the seed.
fn run(seed: u64) -> Result<Report, Error> {
    let fail = |what: String| -> Error { format!("seed {seed}: {what}").into() };

    // 1. The records, written by kafkit's producer in a simulation of its own.
    let cluster = ClusterConfig {
        brokers: 3,
        replication_factor: 3,
        default_partitions: PARTITIONS,
        ..ClusterConfig::default()
    };
    let mut producer = ProducerSim::new(cluster, &ProducerConfig::default(), seed)?;
    for i in 0..RECORDS {
        let record = ProducerRecord::new(TOPIC)
            .key(format!("customer-{}", i % 50))
            .value(format!("order {i}"));
        // The flush below waits for every record.
        drop(producer.send(record));
    }
    producer.flush(None)??;
    producer.close(None)??;

    // 2. The group: three members in one simulation on the producer's cluster, starting
    //    where the producer's clock stopped.
    let config = ConsumerConfig::builder()
        .group_id(GROUP)
        .enable_auto_commit(false)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_poll_records(MAX_POLL_RECORDS)
        // Members learn of a rebalance from a heartbeat: sooner than the default 3 s.
        .heartbeat_interval_ms(500)
        .build()?;
    let cluster = producer.cluster().clone();
    let start = producer.sim().now();
    let member_core = |i: usize| -> Result<ConsumerCore, Error> {
        let mut core = consumer_core(&config, &cluster.borrow(), seed + i as u64)?;
        // Listener callbacks are the application's to run (`pending_rebalance`).
        core.set_rebalance_callbacks(true);
        Ok(core)
    };
    let mut sim = Simulation::new(member_core(0)?, seed, start).with_max_steps(10_000_000);
    serve_cluster(&mut sim, &cluster);
    sim.add_client(member_core(1)?);
    sim.add_client(member_core(2)?);
    let mut members: Vec<Member> = (0..3)
        .map(|i| Member {
            listener: CommitOnRevoke { member: i },
            consumed: 0,
            joined: false,
        })
        .collect();

    // 3. Members 0 and 1 subscribe (joining happens in their polls). The application loop:
    //    poll every member, run its callbacks, commit; a new member and a crash midway.
    for (i, member) in members.iter_mut().enumerate().take(2) {
        let now = sim.now();
        sim.client(i).subscribe([TOPIC], now)?;
        member.joined = true;
    }
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut crashed = None;
    let elapsed = |sim: &Simulation<ConsumerCore>| sim.now() - start;
    while seen.len() < RECORDS || !members[2].joined {
        if elapsed(&sim) > GIVE_UP {
            return Err(fail(format!(
                "{} of {RECORDS} records consumed after {GIVE_UP:?}",
                seen.len()
            )));
        }
        // Member 2 joins once a quarter of the records are consumed: a rebalance.
        if !members[2].joined && seen.len() >= RECORDS / 4 {
            let now = sim.now();
            sim.client(2).subscribe([TOPIC], now)?;
            members[2].joined = true;
            println!("t={:?}: member 2 joins", elapsed(&sim));
        }
        for (i, member) in members.iter_mut().enumerate() {
            if member.joined {
                poll(&mut sim, i, member, &mut seen).map_err(|e| fail(e.to_string()))?;
            }
        }
        // Halfway, a broker that leads partitions (but does not coordinate the group) crashes.
        if crashed.is_none() && seen.len() >= RECORDS / 2 {
            let coordinator = cluster.borrow().coordinator_for(GROUP);
            let victim = (0..3).find(|b| *b != coordinator).expect("three brokers");
            let now = sim.now();
            cluster.borrow_mut().crash_broker(victim, now);
            println!("t={:?}: broker {victim} crashes", elapsed(&sim));
            crashed = Some(victim);
        }
        let wake = sim.now() + POLL_EVERY;
        sim.run_until_deadline(wake, |_| false)?;
    }

    // 4. Everyone leaves: closing runs the revocation callbacks, which the application runs.
    for i in 0..members.len() {
        let now = sim.now();
        sim.client(i).close(Duration::from_secs(10), now);
    }
    while (0..members.len()).any(|i| !sim.client(i).is_closed()) {
        if elapsed(&sim) > GIVE_UP {
            return Err(fail("the members did not close".into()));
        }
        for (i, m) in members.iter_mut().enumerate() {
            run_callbacks(&mut sim, i, m);
        }
        let wake = sim.now() + POLL_EVERY;
        sim.run_until_deadline(wake, |_| false)?;
    }

    // 5. The checks: every record once, nothing else.
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        return Err(fail(format!("consumed more than once: {twice:?}")));
    }
    if seen.len() != RECORDS {
        return Err(fail(format!("consumed {} of {RECORDS}", seen.len())));
    }
    Ok(Report {
        per_member: members.iter().map(|m| m.consumed).collect(),
        took: elapsed(&sim),
    })
}

/// One poll of member `i` as an application makes it: callbacks first, then records, then an
/// asynchronous commit of what was consumed.
fn poll(
    sim: &mut Simulation<ConsumerCore>,
    i: usize,
    member: &mut Member,
    seen: &mut BTreeMap<(i32, i64), usize>,
) -> Result<(), ConsumerError> {
    for event in sim.take_client_events(i) {
        if let ConsumerEvent::Commit { result: Err(e), .. } = event {
            // A commit racing a rebalance is refused; the commit on revoke covers it.
            println!("  member {i}: commit refused ({e})");
        }
    }
    if run_callbacks(sim, i, member) {
        return Ok(());
    }
    let now = sim.now();
    let records = match sim.client(i).take_records(MAX_POLL_RECORDS as usize, now) {
        Ok(records) => records,
        // The group moved on without this member's commit: the next poll rejoins.
        Err(ConsumerError::Group { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    if records.is_empty() {
        return Ok(());
    }
    for r in records.iter() {
        *seen.entry((r.partition, r.offset)).or_default() += 1;
        member.consumed += 1;
    }
    sim.client(i).commit_async(OpId(0), None, now);
    Ok(())
}

/// Runs member `i`'s pending listener callbacks; returns whether there was one.
fn run_callbacks(sim: &mut Simulation<ConsumerCore>, i: usize, member: &mut Member) -> bool {
    let mut ran = false;
    // A callback completed can make the next one due at once (revoked, then lost or assigned),
    // but never endlessly.
    for _ in 0..4 {
        let Some(call) = sim.client(i).pending_rebalance().cloned() else {
            break;
        };
        let outcome = run_listener(&mut member.listener, &call);
        let now = sim.now();
        sim.client(i).complete_rebalance(call.seq, outcome, now);
        ran = true;
    }
    ran
}

#[test]
fn every_record_once_through_a_rebalance_and_a_crash() {
    for seed in [1, 2, 3] {
        let report = run(seed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.per_member.iter().sum::<usize>(),
            RECORDS,
            "seed {seed}"
        );
        assert!(
            report.per_member[2] > 0,
            "seed {seed}: the joining member got work"
        );
    }
}

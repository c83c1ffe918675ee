//! A consumer group on Kafka 4.0's consumer group protocol (KIP-848), on tokio.
//!
//! ```sh
//! cargo run -p kafkit-examples --example consume_group_848     # the development broker
//! cargo run -p kafkit-examples --example consume_group_848 -- --group-protocol classic
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run -p kafkit-examples --example consume_group_848
//! cargo test -p kafkit-examples --example consume_group_848    # what CI runs
//! ```
//!
//! Shows: `group_protocol(GroupProtocol::Consumer)` (`group.protocol=consumer`) with the
//! coordinator's `uniform` assignor; three members that start together and split a
//! 6-partition topic without a stop-the-world rebalance; `group_state()` and `assignment()`
//! to see when every member is `Stable`; a member that closes (its leave heartbeat hands its
//! partitions to the others at once); auto-commit, which with this protocol also commits the
//! partitions a member is about to give up. It checks that the members' assignments end
//! disjoint and complete and that every record is consumed, and prints how long the group
//! took to become stable (`--group-protocol classic` runs the same with JoinGroup/SyncGroup,
//! to compare). Against a real cluster the broker must run Kafka 4.0 or later.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafkit::core::consumer::MemberState;
use kafkit::prelude::*;
use kafkit::GroupProtocol;
use kafkit_examples::{cluster, unique, Error};

const PARTITIONS: i32 = 6;
const RECORDS: usize = 600;
const MEMBERS: usize = 3;
/// A bound on each wait, so that a broken cluster fails the example instead of hanging it.
const GIVE_UP: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let protocol = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => GroupProtocol::Consumer,
        [flag, p] if flag == "--group-protocol" => match p.as_str() {
            "consumer" => GroupProtocol::Consumer,
            "classic" => GroupProtocol::Classic,
            other => {
                return Err(format!("--group-protocol: classic or consumer, not {other}").into())
            }
        },
        other => {
            return Err(format!("usage: [--group-protocol classic|consumer], not {other:?}").into())
        }
    };
    let cluster = cluster()?;
    let report = run(cluster.bootstrap(), &unique("group-848"), protocol).await?;
    println!(
        "{MEMBERS} members ({protocol:?} protocol) stable after {} ms: {:?}",
        report.stable_after.as_millis(),
        report.split
    );
    println!(
        "after one left, the other two stable {} ms later: {:?}",
        report.after_leave.as_millis(),
        report.split_after_leave
    );
    println!("{} records consumed", report.consumed);
    Ok(())
}

/// What a member's task publishes about it.
#[derive(Debug, Default, Clone)]
struct View {
    assignment: BTreeSet<i32>,
    stable: bool,
}

#[derive(Default)]
struct Shared {
    views: [Mutex<View>; MEMBERS],
    stop: [AtomicBool; MEMBERS],
    /// (partition, offset) of every record any member consumed.
    consumed: Mutex<BTreeSet<(i32, i64)>>,
}

struct Report {
    stable_after: Duration,
    split: Vec<BTreeSet<i32>>,
    after_leave: Duration,
    split_after_leave: Vec<BTreeSet<i32>>,
    consumed: usize,
}

async fn run(bootstrap: &str, topic: &str, protocol: GroupProtocol) -> Result<Report, Error> {
    let admin = admin(
        &AdminConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    admin
        .create_topics(vec![NewTopic::new(topic, PARTITIONS, 1)], false)
        .await?[topic]
        .clone()?;
    drop(admin);
    let producer = producer(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    for i in 0..RECORDS {
        let record = ProducerRecord::new(topic)
            .partition((i % PARTITIONS as usize) as i32)
            .value(format!("event {i}"));
        producer.send_and_forget(record).await?;
    }
    producer.close(None).await?;

    let group = unique("group-848");
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let members: Vec<_> = (0..MEMBERS)
        .map(|n| {
            let config = ConsumerConfig::builder()
                .bootstrap_servers(bootstrap)
                .client_id(format!("member-{n}"))
                .group_id(group.as_str())
                .group_protocol(protocol)
                .auto_offset_reset(AutoOffsetReset::Earliest);
            let config = match protocol {
                // The coordinator assigns; `uniform` is also the broker's default.
                GroupProtocol::Consumer => config.group_remote_assignor("uniform"),
                _ => config,
            };
            let config = config.build();
            tokio::spawn(member(n, config, topic.to_owned(), shared.clone()))
        })
        .collect();

    let split = wait_split(&shared, &[0, 1, 2], "three members").await?;
    let stable_after = started.elapsed();

    // The last member leaves: close sends the leave heartbeat (epoch -1), and the coordinator
    // hands its partitions to the other two without waiting for a session timeout.
    let left = Instant::now();
    shared.stop[2].store(true, Ordering::Relaxed);
    let split_after_leave = wait_split(&shared, &[0, 1], "two members").await?;
    let after_leave = left.elapsed();

    let waiting = Instant::now();
    while shared.consumed.lock().expect("lock").len() < RECORDS {
        if waiting.elapsed() > GIVE_UP {
            return Err("not every record was consumed".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for stop in &shared.stop {
        stop.store(true, Ordering::Relaxed);
    }
    for m in members {
        m.await??;
    }
    let consumed = shared.consumed.lock().expect("lock").len();
    Ok(Report {
        stable_after,
        split,
        after_leave,
        split_after_leave,
        consumed,
    })
}

/// Waits until the members `which` are all stable and their assignments split the topic
/// evenly (disjoint, complete, sizes within one): a member that just joined is `Stable` with
/// nothing while the others still own the partitions it is to get. Returns the split.
async fn wait_split(
    shared: &Shared,
    which: &[usize],
    what: &str,
) -> Result<Vec<BTreeSet<i32>>, Error> {
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let t0 = Instant::now();
    loop {
        let views: Vec<View> = which
            .iter()
            .map(|&n| shared.views[n].lock().expect("lock").clone())
            .collect();
        let total: usize = views.iter().map(|v| v.assignment.len()).sum();
        let union: BTreeSet<i32> = views.iter().flat_map(|v| v.assignment.clone()).collect();
        let sizes = views.iter().map(|v| v.assignment.len());
        let balanced = sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0) <= 1;
        if views.iter().all(|v| v.stable) && total == union.len() && union == all && balanced {
            return Ok(views.into_iter().map(|v| v.assignment).collect());
        }
        if t0.elapsed() > GIVE_UP {
            return Err(format!("{what}: no stable split within {GIVE_UP:?}: {views:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One member: subscribe, poll, publish its assignment and state, close when told.
async fn member(
    n: usize,
    config: Result<ConsumerConfig, ConfigError>,
    topic: String,
    shared: Arc<Shared>,
) -> Result<(), Error> {
    let consumer = consumer(&config?)?;
    consumer.subscribe([topic]).await?;
    while !shared.stop[n].load(Ordering::Relaxed) {
        // Short polls, so that the published state is never far behind the member's.
        let records = consumer.poll(Duration::from_millis(10)).await?;
        {
            let mut consumed = shared.consumed.lock().expect("lock");
            consumed.extend(records.iter().map(|r| (r.partition, r.offset)));
        }
        let assignment = consumer.assignment().await?;
        let stable = consumer.group_state().await? == Some(MemberState::Stable);
        *shared.views[n].lock().expect("lock") = View {
            assignment: assignment.iter().map(|tp| tp.partition).collect(),
            stable,
        };
    }
    // Leaves the group (after the revocation and its auto-commit).
    consumer.close().await?;
    shared.views[n].lock().expect("lock").stable = false;
    Ok(())
}

#[tokio::test]
async fn three_members_split_the_topic_and_two_take_over_when_one_leaves() {
    let cluster = cluster().unwrap();
    for protocol in [GroupProtocol::Consumer, GroupProtocol::Classic] {
        let report = run(cluster.bootstrap(), &unique("group-848-test"), protocol)
            .await
            .unwrap();
        assert_eq!(report.split.len(), MEMBERS);
        assert!(
            report.split.iter().all(|s| s.len() == 2),
            "{protocol:?}: an even split of 6 partitions: {:?}",
            report.split
        );
        assert_eq!(report.split_after_leave.len(), 2);
        assert_eq!(report.consumed, RECORDS, "{protocol:?}");
    }
}

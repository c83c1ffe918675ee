//! Consuming in a group on tokio, with a rebalance listener that commits on revoke.
//!
//! ```sh
//! cargo run -p kafkit-examples --example consume_group          # the development broker
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run -p kafkit-examples --example consume_group
//! cargo test -p kafkit-examples --example consume_group         # what CI runs
//! ```
//!
//! Shows: creating a topic with the admin client; a consumer in a group (`group_id`,
//! `subscribe_with_listener`) with auto-commit off; a `RebalanceListener` that commits the
//! consumed positions in `on_partitions_revoked` (Java's `commitSync()` there), so the member
//! that gets a partition next starts right after the last record processed; a second member
//! joining mid-way (the rebalance the listener is for); committing after processing; and
//! closing (leaving the group). It checks that every record was processed exactly once
//! across the two members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafkit::prelude::*;
use kafkit_examples::{cluster, unique, Error};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 400;
/// A bound on the whole run, so that a broken cluster fails the example instead of hanging it.
const GIVE_UP: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cluster = cluster()?;
    let report = run(cluster.bootstrap(), &unique("consume-group")).await?;
    for (member, n) in &report.per_member {
        println!("member {member} processed {n} records");
    }
    println!(
        "{} records, each processed once; {} rebalances seen",
        report.processed.len(),
        report.revocations
    );
    Ok(())
}

/// Commits what this member processed of the partitions it is about to lose, and logs the
/// partitions it gets.
struct CommitOnRevoke {
    member: usize,
    shared: Arc<Shared>,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        // `None`: the consumed positions of every assigned partition, i.e. the offset after
        // the last record each poll returned. The commit runs before the rebalance goes on.
        ctx.commit_sync(None);
        *self.shared.revocations.lock().expect("lock") += 1;
        println!(
            "member {}: revoked {}, committed",
            self.member,
            show(partitions)
        );
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        if self.member == 2 && !ctx.assignment().is_empty() {
            self.shared.second_assigned.store(true, Ordering::Relaxed);
        }
        println!(
            "member {}: generation {}, assigned {} (now owns {})",
            self.member,
            ctx.group_metadata().generation_id,
            show(partitions),
            show(ctx.assignment())
        );
    }
}

struct Report {
    /// (partition, offset) of every record processed.
    processed: BTreeSet<(i32, i64)>,
    per_member: BTreeMap<usize, usize>,
    revocations: usize,
}

/// What the members share: the records processed, and how the group got on.
#[derive(Default)]
struct Shared {
    processed: Mutex<BTreeSet<(i32, i64)>>,
    duplicates: Mutex<Vec<(i32, i64)>>,
    revocations: Mutex<usize>,
    /// Whether the second member got partitions (so the group did rebalance).
    second_assigned: AtomicBool,
}

impl Shared {
    /// Every record processed, and the rebalance this example is about happened.
    fn done(&self) -> bool {
        self.processed.lock().expect("lock").len() >= RECORDS
            && self.second_assigned.load(Ordering::Relaxed)
    }
}

async fn run(bootstrap: &str, topic: &str) -> Result<Report, Error> {
    let admin = admin(
        &AdminConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    let created = admin
        .create_topics(vec![NewTopic::new(topic, PARTITIONS, 1)], false)
        .await?;
    created[topic].clone()?;
    // The admin client stops once its last handle is dropped.
    drop(admin);

    let producer = producer(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    for i in 0..RECORDS {
        let record = ProducerRecord::new(topic)
            .key(format!("user-{}", i % 10))
            .value(format!("event {i}"));
        producer.send_and_forget(record).await?;
    }
    producer.close(None).await?;
    println!("wrote {RECORDS} records to {topic} ({PARTITIONS} partitions)");

    let group = unique("example-group");
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let spawn = |n: usize| {
        let args = (bootstrap.to_owned(), topic.to_owned(), group.clone());
        tokio::spawn(member(n, args, shared.clone(), started))
    };
    let first = spawn(1);
    // The second member joins once the first has processed some records: the group
    // rebalances, the first member's listener commits, and the partitions are shared out.
    while shared.processed.lock().expect("lock").len() < RECORDS / 4
        && started.elapsed() < GIVE_UP
        && !first.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = spawn(2);
    let mut per_member = BTreeMap::new();
    per_member.insert(1, first.await??);
    per_member.insert(2, second.await??);

    let duplicates = shared.duplicates.lock().expect("lock").clone();
    let processed = std::mem::take(&mut *shared.processed.lock().expect("lock"));
    if !duplicates.is_empty() {
        return Err(format!("records processed twice (partition, offset): {duplicates:?}").into());
    }
    if processed.len() != RECORDS {
        return Err(format!("processed {} of {RECORDS} records", processed.len()).into());
    }
    let revocations = *shared.revocations.lock().expect("lock");
    Ok(Report {
        processed,
        per_member,
        revocations,
    })
}

/// One member: subscribe, poll, process, commit, until the group processed every record.
async fn member(
    n: usize,
    (bootstrap, topic, group): (String, String, String),
    shared: Arc<Shared>,
    started: Instant,
) -> Result<usize, Error> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .client_id(format!("example-member-{n}"))
        .group_id(group)
        .enable_auto_commit(false)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_poll_records(50)
        .build()?;
    let consumer = consumer(&config)?;
    let listener = CommitOnRevoke {
        member: n,
        shared: shared.clone(),
    };
    consumer.subscribe_with_listener([topic], listener).await?;
    let mut mine = 0;
    while !shared.done() {
        if started.elapsed() > GIVE_UP {
            consumer.close().await?;
            return Err(format!("member {n}: not done after {GIVE_UP:?}").into());
        }
        // Rebalance callbacks run inside this call.
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            continue;
        }
        {
            let mut processed = shared.processed.lock().expect("lock");
            for r in records.iter() {
                if !processed.insert((r.partition, r.offset)) {
                    shared
                        .duplicates
                        .lock()
                        .expect("lock")
                        .push((r.partition, r.offset));
                }
                mine += 1;
            }
        }
        // The work each batch stands for.
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Processed: commit the positions (Java's `commitSync()` after the work). During a
        // rebalance the coordinator refuses (REBALANCE_IN_PROGRESS); the listener's commit on
        // revoke covers those records, so the member goes on.
        if let Err(e) = consumer.commit(None).await {
            println!("member {n}: commit refused ({e}); the commit on revoke covers it");
        }
    }
    // Leaves the group at once, so the other member need not wait for a session timeout.
    consumer.close().await?;
    Ok(mine)
}

fn show(partitions: &BTreeSet<TopicPartition>) -> String {
    let list: Vec<String> = partitions
        .iter()
        .map(|tp| tp.partition.to_string())
        .collect();
    format!("[{}]", list.join(","))
}

#[tokio::test]
async fn every_record_once_across_a_rebalance() {
    let cluster = cluster().unwrap();
    let report = run(cluster.bootstrap(), &unique("consume-group-test"))
        .await
        .unwrap();
    assert_eq!(report.processed.len(), RECORDS);
    assert_eq!(report.per_member.values().sum::<usize>(), RECORDS);
    assert!(
        report.revocations >= 1,
        "the second member's join revoked partitions"
    );
}

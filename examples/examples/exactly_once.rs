//! Exactly-once consume-transform-produce on tokio:
//!
//! ```sh
//! cargo run -p kafkit-examples --example exactly_once          # starts the development broker
//! KAFKA_BOOTSTRAP=kafka:9092 cargo run -p kafkit-examples --example exactly_once
//! ```
//!
//! Starts kafkit's development broker (3 in-memory brokers on localhost) unless
//! `KAFKA_BOOTSTRAP` names a cluster, and writes 300 input records (orders in cents) to a new
//! input topic. Then two workers, each a group consumer (read_committed, no auto-commit) and
//! a transactional producer of its own, turn every order into one output record (the amount
//! in euros) in transactions: a worker polls, begins a transaction, sends the outputs, adds
//! its consumer's positions to the transaction with the consumer's group metadata
//! (`send_offsets_to_transaction`, KIP-447) and commits. Outputs and input offsets commit
//! together, or not at all.
//!
//! The second worker joins once the first has committed a transaction, so the group
//! rebalances during the run (on the development broker the first worker is often done
//! before the rebalance completes; on a slower cluster partitions change hands mid-run).
//! A worker whose transaction fails (the group fenced
//! it because its partitions moved, say) aborts and rewinds to the group's committed offsets:
//! the aborted outputs are never visible to a read_committed consumer, and whoever owns the
//! inputs now processes them again. At the end a read_committed consumer reads the output
//! topic and checks that every input has exactly one output.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafkit::prelude::*;
use kafkit_examples::{cluster, Error};

const INPUTS: usize = 300;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cluster = cluster()?;
    let bootstrap = cluster.bootstrap().to_owned();
    // Names of this run's own, so that a rerun against a real cluster starts afresh.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let outputs = run_pipeline(&bootstrap, &format!("eos-{run}")).await?;
    println!("every one of the {outputs} inputs has exactly one committed output");
    Ok(())
}

/// The whole example on topics and a group named after `prefix`; returns the number of
/// outputs checked.
async fn run_pipeline(bootstrap: &str, prefix: &str) -> Result<usize, Error> {
    let input = format!("{prefix}-orders");
    let output = format!("{prefix}-euros");
    let group = format!("{prefix}-workers");

    // The input: orders keyed by customer, amounts in cents.
    let producer = producer(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()?,
    )?;
    for i in 0..INPUTS {
        let record = ProducerRecord::new(input.as_str())
            .key(format!("customer-{}", i % 7))
            .value(format!("order-{i}:{}", 100 + i * 37));
        producer.send_and_forget(record).await?;
    }
    producer.close(None).await?;
    println!("wrote {INPUTS} orders to {input}");

    let done = Arc::new(AtomicBool::new(false));
    // Transactions committed by any worker.
    let progress = Arc::new(AtomicUsize::new(0));
    let first = tokio::spawn(worker(
        1,
        bootstrap.to_owned(),
        input.clone(),
        output.clone(),
        group.clone(),
        done.clone(),
        progress.clone(),
    ));
    // The second worker joins once the first has committed a transaction: the group
    // rebalances while the first works.
    while progress.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = tokio::spawn(worker(
        2,
        bootstrap.to_owned(),
        input.clone(),
        output.clone(),
        group.clone(),
        done.clone(),
        progress.clone(),
    ));

    // Done once the group's committed offsets cover every input.
    let watcher = consumer(
        &ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .group_id(group.as_str())
            .build()?,
    )?;
    let partitions = partitions(&watcher, &input).await?;
    let ends = watcher.end_offsets(partitions.clone()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let committed = watcher.committed(partitions.clone()).await?;
        let covered = committed
            .iter()
            .all(|(tp, c)| c.as_ref().map_or(0, |c| c.offset) >= ends[tp]);
        if covered {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("not every input was committed within 60 s: {committed:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.close().await?;
    done.store(true, Ordering::Relaxed);
    let (a, b) = (first.await??, second.await??);
    println!("worker 1 committed {a} transactions, worker 2 committed {b}");

    check_outputs(bootstrap, &output).await
}

/// One worker: a group consumer and a transactional producer, until `done`. Returns the
/// number of transactions it committed.
async fn worker(
    n: usize,
    bootstrap: String,
    input: String,
    output: String,
    group: String,
    done: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
) -> Result<usize, Error> {
    let consumer = consumer(
        &ConsumerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .group_id(group.as_str())
            .enable_auto_commit(false)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            // Only committed inputs (the input here is not transactional, but a pipeline's
            // input often is another pipeline's output).
            .isolation_level(IsolationLevel::ReadCommitted)
            .max_poll_records(10)
            .build()?,
    )?;
    consumer.subscribe([input.as_str()]).await?;
    // One transactional id per worker: a restarted worker with the same id fences its
    // earlier incarnation and aborts what that left open.
    let producer = producer(
        &ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .transactional_id(format!("{group}-worker-{n}"))
            .build()?,
    )?;
    producer.init_transactions().await?;

    let mut committed = 0;
    while !done.load(Ordering::Relaxed) {
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            continue;
        }
        // The group metadata of the poll that returned these records: if the group moves
        // their partitions elsewhere before the commit, it refuses this worker's offsets.
        let metadata = consumer
            .group_metadata()
            .await?
            .ok_or("a group consumer has group metadata")?;
        producer.begin_transaction().await?;
        let mut offsets = BTreeMap::new();
        for r in records.iter() {
            let euros = transform(r.value.as_deref().unwrap_or_default())?;
            let mut out = ProducerRecord::new(output.as_str()).value(euros);
            if let Some(key) = &r.key {
                out = out.key(key.clone());
            }
            producer.send_and_forget(out).await?;
            offsets.insert(r.topic_partition(), OffsetAndMetadata::new(r.offset + 1));
        }
        let result = match producer
            .send_offsets_to_transaction(offsets, metadata)
            .await
        {
            Ok(()) => producer.commit_transaction().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                committed += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            Err(e @ ProduceError::Fatal(_)) => return Err(e.into()),
            Err(e) => {
                println!("worker {n}: the transaction failed ({e}); aborting it");
                producer.abort_transaction().await?;
                rewind(&consumer).await?;
            }
        }
    }
    producer.close(None).await?;
    consumer.close().await?;
    Ok(committed)
}

/// `order-N:CENTS` into `order-N:EUROS.CC EUR`.
fn transform(value: &[u8]) -> Result<String, Error> {
    let text = std::str::from_utf8(value)?;
    let (order, cents) = text.split_once(':').ok_or("an order is order-N:CENTS")?;
    let cents: u64 = cents.parse()?;
    Ok(format!("{order}:{}.{:02} EUR", cents / 100, cents % 100))
}

/// After an abort: every assigned partition goes back to the group's committed offset, so the
/// aborted inputs are read again.
async fn rewind(consumer: &ConsumerHandle) -> Result<(), Error> {
    let assigned: Vec<TopicPartition> = consumer.assignment().await?.into_iter().collect();
    for (tp, offset) in consumer.committed(assigned).await? {
        match offset {
            Some(o) => consumer.seek(tp, o.offset).await?,
            None => consumer.seek_to_beginning(vec![tp]).await?,
        }
    }
    Ok(())
}

/// Reads the output topic with read_committed up to its end and checks that each order has
/// exactly one output; returns how many there are.
async fn check_outputs(bootstrap: &str, output: &str) -> Result<usize, Error> {
    let reader = consumer(
        &ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted)
            .build()?,
    )?;
    let partitions = partitions(&reader, output).await?;
    reader.assign(partitions.clone()).await?;
    // With read_committed the end offsets are the last stable offsets.
    let mut ends = reader.end_offsets(partitions.clone()).await?;
    let beginnings = reader.beginning_offsets(partitions).await?;
    ends.retain(|tp, end| *end > beginnings[tp]);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        for r in reader.poll(Duration::from_millis(200)).await?.iter() {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
            let order = value.split_once(':').map_or(&*value, |(o, _)| o);
            *seen.entry(order.to_owned()).or_default() += 1;
        }
        // By position, not by the last record's offset: each transaction ends with a commit
        // marker, which takes an offset and is never returned.
        for (tp, end) in ends.clone() {
            if reader.position(tp.clone()).await? >= end {
                ends.remove(&tp);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the outputs were not all read within 60 s: {ends:?}").into());
        }
    }
    reader.close().await?;
    let expected: BTreeSet<String> = (0..INPUTS).map(|i| format!("order-{i}")).collect();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        return Err(format!("outputs committed more than once: {twice:?}").into());
    }
    let found: BTreeSet<String> = seen.into_keys().collect();
    if found != expected {
        let missing: Vec<_> = expected.difference(&found).take(5).collect();
        let extra: Vec<_> = found.difference(&expected).take(5).collect();
        return Err(format!("missing outputs {missing:?}, unexpected {extra:?}").into());
    }
    Ok(found.len())
}

/// Every partition of `topic`.
async fn partitions(consumer: &ConsumerHandle, topic: &str) -> Result<Vec<TopicPartition>, Error> {
    Ok(consumer
        .partitions_for_topic(topic)
        .await?
        .ok_or_else(|| format!("topic {topic} does not exist"))?
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect())
}

/// Runs the example against the development broker (or KAFKA_BOOTSTRAP) as part of
/// `cargo test`: every input gets exactly one committed output across the rebalance.
#[test]
fn every_input_has_exactly_one_committed_output() {
    let cluster = cluster().unwrap();
    let bootstrap = cluster.bootstrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let prefix = format!("eos-test-{}", std::process::id());
    let outputs = runtime.block_on(run_pipeline(&bootstrap, &prefix)).unwrap();
    assert_eq!(outputs, INPUTS);
}

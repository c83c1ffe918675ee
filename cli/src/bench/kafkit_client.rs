//! The kafkit side of a worker: the tokio driver's producer and consumer.
//!
//! Throughput runs send from a task on the runtime, as fast as `send_with_callback` accepts
//! records (it waits only when `buffer_memory` is full), then flush. Offered-rate runs send from
//! a plain thread on a fixed schedule (the same pacing code as the rdkafka side), so tokio's
//! millisecond timer does not add to the measured latency. Transactional runs
//! (`--transactional`) send from the task too, committing every `--txn-records` records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::config::{ConfigError, ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::TopicPartition;
use kafkit_core::driver::{ConsumerHandle, ProducerHandle};
use kafkit_core::producer::{ProduceError, ProducerRecord, RecordMetadata};

use super::args::{BenchOpts, Client, Runtime, WorkerArgs, Workload};
use super::report::{Deliveries, Measured, Received};
use super::{pace, payloads, stamp, Phase, PhaseSpan};
use crate::args::GlobalArgs;
use crate::config;
use crate::error::CliError;

/// Runs the worker's workload.
pub fn run(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    let rt = match args.opts.kafkit_runtime {
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread(),
        Runtime::Current => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()?;
    let handle = rt.handle().clone();
    rt.block_on(async move {
        match args.workload {
            Workload::Produce => produce(global, args, handle).await,
            Workload::Consume => consume(global, args).await,
            Workload::E2e => e2e(global, args, handle).await,
        }
    })
}

/// Applies -b, -F and -X, in that order, through a configuration's setter (every kafkit
/// client configuration the benchmark builds starts so).
pub(super) fn apply_global(
    global: &GlobalArgs,
    mut set: impl FnMut(&str, &str) -> Result<(), ConfigError>,
) -> Result<(), CliError> {
    set("bootstrap_servers", &global.bootstrap)?;
    for (name, value) in config::file_options(global)? {
        set(&name, &value).map_err(config::with_hint)?;
    }
    for (name, value) in &global.options {
        set(name, value).map_err(config::with_hint)?;
    }
    Ok(())
}

/// The producer configuration: -b, -F, -X, then the benchmark's settings (with `--defaults
/// own`, only those that define the workload, and an explicit linger or batch size).
pub fn producer_config(global: &GlobalArgs, opts: &BenchOpts) -> Result<ProducerConfig, CliError> {
    let mut c = ProducerConfig::default();
    if !opts.own_defaults() {
        same_sockets_as_librdkafka(|k, v| c.set(k, v))?;
    }
    apply_global(global, |k, v| c.set(k, v))?;
    c.set("acks", opts.acks())?;
    c.set("enable_idempotence", &opts.idempotence().to_string())?;
    if let Some(ms) = opts.linger_ms() {
        c.set("linger_ms", &ms.to_string())?;
    }
    if let Some(bytes) = opts.batch_size() {
        c.set("batch_size", &bytes.to_string())?;
    }
    c.set("compression_type", &opts.compression)?;
    if !opts.own_defaults() {
        c.set("max_in_flight_requests_per_connection", "5")?;
        c.set("buffer_memory", "33554432")?;
    }
    if opts.transactional {
        c.set("transactional_id", &transactional_id(Client::Kafkit))?;
    }
    c.validate()?;
    Ok(c)
}

/// The transactional id of a benchmark's producer: one per run and client, so a run never
/// fences another.
pub(super) fn transactional_id(client: Client) -> String {
    format!("kafkit-bench-{}-{}", std::process::id(), client.name())
}

/// Socket buffers left to the OS, as librdkafka leaves them (`socket.*.buffer.bytes=0`), so
/// both clients read and write alike; `-X` still overrides. kafkit's defaults are Java's
/// fixed sizes (64 KiB to receive for a consumer), which turn off Linux's buffer autotuning:
/// measured on 10 KB records, about ten times as many reads and 1.5–3 µs more CPU per record
/// (see BENCHMARKS.md).
fn same_sockets_as_librdkafka(
    mut set: impl FnMut(&str, &str) -> Result<(), ConfigError>,
) -> Result<(), CliError> {
    set("send_buffer_bytes", "-1")?;
    set("receive_buffer_bytes", "-1")?;
    Ok(())
}

/// The consumer configuration: no group, nothing committed, every partition from the start
/// (with `--defaults own`, fetch sizes and waits and socket buffers at kafkit's defaults).
fn consumer_config(global: &GlobalArgs, opts: &BenchOpts) -> Result<ConsumerConfig, CliError> {
    let mut c = ConsumerConfig::default();
    if !opts.own_defaults() {
        same_sockets_as_librdkafka(|k, v| c.set(k, v))?;
    }
    apply_global(global, |k, v| c.set(k, v))?;
    c.set("auto_offset_reset", "earliest")?;
    c.set("enable_auto_commit", "false")?;
    if !opts.own_defaults() {
        c.set("fetch_min_bytes", "1")?;
        c.set("fetch_max_wait_ms", "500")?;
    }
    c.validate()?;
    Ok(c)
}

fn failed(what: &str) -> impl Fn(String) -> CliError + '_ {
    move |e| CliError::Failed(format!("kafkit {what}: {e}"))
}

/// Delivery outcomes, counted from the producer's callbacks. A worker runs one workload, so
/// the throughput run counts into a `static` and its callback ([`outcome`]) captures nothing:
/// zero-sized, boxed without an allocation, as a careful application would write it.
static ACKS: Deliveries = Deliveries::new();

fn outcome(result: Result<RecordMetadata, ProduceError>) {
    match result {
        Ok(_) => ACKS.delivered(),
        Err(e) => ACKS.failed(e),
    }
}

/// Starts the producer and sends one record (awaited), so that metadata, the connection and
/// (with idempotence) the producer id are in place before the measured phase.
async fn warm_producer(global: &GlobalArgs, args: &WorkerArgs) -> Result<ProducerHandle, CliError> {
    let config = producer_config(global, &args.opts)?;
    let producer =
        kafkit_tokio::producer(&config).map_err(|e| failed("producer")(e.to_string()))?;
    let transactional = args.opts.transactional;
    if transactional {
        // The producer id and the transaction coordinator come before the measured phase
        // too, with one whole transaction.
        producer
            .init_transactions()
            .await
            .map_err(|e| failed("init_transactions")(e.to_string()))?;
        producer
            .begin_transaction()
            .await
            .map_err(|e| failed("begin_transaction")(e.to_string()))?;
    }
    let warm =
        ProducerRecord::new(args.topic.as_str())
            .value(Bytes::from(vec![0u8; args.opts.size as usize]));
    producer
        .enqueue(warm)
        .await
        .map_err(|e| failed("warm-up send")(e.to_string()))?
        .await
        .map_err(|e| failed("warm-up send")(e.to_string()))?;
    if transactional {
        producer
            .commit_transaction()
            .await
            .map_err(|e| failed("warm-up commit")(e.to_string()))?;
    }
    Ok(producer)
}

async fn produce(
    global: &GlobalArgs,
    args: &WorkerArgs,
    handle: tokio::runtime::Handle,
) -> Result<Measured, CliError> {
    let opts = &args.opts;
    let n = opts.records_for(Workload::Produce);
    let rate = opts.rate_for(Workload::Produce);
    let producer = warm_producer(global, args).await?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let pool = payloads(opts.size as usize);

    let phase = Phase::start();
    match (rate, opts.txn_records()) {
        (None, Some(per_txn)) => {
            let mut i = 0;
            while i < n {
                producer
                    .begin_transaction()
                    .await
                    .map_err(|e| failed("begin_transaction")(e.to_string()))?;
                let end = (i + per_txn).min(n);
                for j in i..end {
                    let record = ProducerRecord::new(topic.clone())
                        .value(pool[(j as usize) % pool.len()].clone());
                    producer
                        .send_with_callback(record, outcome)
                        .await
                        .map_err(|e| failed("send")(e.to_string()))?;
                }
                // The commit delivers every record of the transaction first.
                producer
                    .commit_transaction()
                    .await
                    .map_err(|e| failed("commit_transaction")(e.to_string()))?;
                i = end;
            }
        }
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "--transactional measures throughput: it takes no --rate".into(),
            ))
        }
        (None, None) => {
            for i in 0..n {
                let record = ProducerRecord::new(topic.clone())
                    .value(pool[(i as usize) % pool.len()].clone());
                producer
                    .send_with_callback(record, outcome)
                    .await
                    .map_err(|e| failed("send")(e.to_string()))?;
            }
        }
        (Some(rate), None) => {
            let sender = producer.clone();
            let topic = topic.clone();
            let t0 = phase.started;
            tokio::task::spawn_blocking(move || {
                for i in 0..n {
                    let scheduled = pace(t0, i, rate);
                    let record = ProducerRecord::new(topic.clone())
                        .value(pool[(i as usize) % pool.len()].clone());
                    handle
                        .block_on(sender.send_with_callback(record, move |r| {
                            ACKS.latency(scheduled.elapsed().as_nanos() as u64);
                            outcome(r)
                        }))
                        .map_err(|e| failed("send")(e.to_string()))?;
                }
                Ok::<(), CliError>(())
            })
            .await
            .map_err(|e| failed("sender thread")(e.to_string()))??;
        }
    }
    let span = end_producing(&producer, phase).await?;
    Ok(Measured::produced(
        Client::Kafkit,
        span,
        &ACKS,
        opts.size,
        rate.is_some(),
    ))
}

/// Waits for every record to be acknowledged (`flush`), ends the measured phase (its wall and
/// CPU time), then closes the producer.
async fn end_producing(producer: &ProducerHandle, phase: Phase) -> Result<PhaseSpan, CliError> {
    producer
        .flush(None)
        .await
        .map_err(|e| failed("flush")(e.to_string()))?;
    let span = phase.end();
    let _ = producer.close(Some(Duration::from_secs(10))).await;
    Ok(span)
}

/// A consumer assigned every partition of `topic`, its metadata fetched.
async fn start_consumer(
    global: &GlobalArgs,
    opts: &BenchOpts,
    topic: &str,
) -> Result<(ConsumerHandle, Vec<TopicPartition>), CliError> {
    let consumer = kafkit_tokio::consumer(&consumer_config(global, opts)?)
        .map_err(|e| failed("consumer")(e.to_string()))?;
    let partitions = consumer
        .partitions_for_topic(topic)
        .await
        .map_err(|e| failed("metadata")(e.to_string()))?
        .ok_or_else(|| CliError::Failed(format!("kafkit consumer: no topic {topic}")))?;
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect();
    Ok((consumer, tps))
}

async fn consume(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    let n = args.opts.records_for(Workload::Consume);
    let (consumer, tps) = start_consumer(global, &args.opts, &args.topic).await?;

    let phase = Phase::start();
    consumer
        .assign(tps)
        .await
        .map_err(|e| failed("assign")(e.to_string()))?;
    let mut rx = Received::new();
    while rx.records < n {
        let batch = consumer
            .poll(Duration::from_millis(500))
            .await
            .map_err(|e| failed("poll")(e.to_string()))?;
        if batch.is_empty() {
            rx.check_stall("kafkit consumer", n)?;
            continue;
        }
        rx.progress(Instant::now());
        for r in batch.iter() {
            rx.record(r.value.as_ref().map_or(0, |v| v.len() as u64));
        }
    }
    let span = phase.end();
    let _ = consumer.close().await;
    Ok(Measured::new(
        Client::Kafkit,
        Workload::Consume,
        span,
        rx.records,
        rx.bytes,
        0,
        None,
    ))
}

async fn e2e(
    global: &GlobalArgs,
    args: &WorkerArgs,
    handle: tokio::runtime::Handle,
) -> Result<Measured, CliError> {
    let opts = &args.opts;
    let n = opts.records_for(Workload::E2e);
    let rate = opts.rate_for(Workload::E2e).unwrap_or(10_000);
    let size = opts.size as usize;
    let producer = warm_producer(global, args).await?;
    let (consumer, tps) = start_consumer(global, &args.opts, &args.topic).await?;
    consumer
        .assign(tps)
        .await
        .map_err(|e| failed("assign")(e.to_string()))?;
    let topic: Arc<str> = Arc::from(args.topic.as_str());
    let template = payloads(size)[0].clone();

    let phase = Phase::start();
    let t0 = phase.started;
    let sender = producer.clone();
    let send_thread = tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let scheduled = pace(t0, i, rate);
            let mut value = BytesMut::from(&template[..]);
            stamp(&mut value, t0, scheduled);
            let record = ProducerRecord::new(topic.clone()).value(value.freeze());
            handle
                .block_on(sender.send_with_callback(record, outcome))
                .map_err(|e| failed("send")(e.to_string()))?;
        }
        Ok::<(), CliError>(())
    });
    let mut rx = Received::new();
    while rx.records < n {
        let batch = consumer
            .poll(Duration::from_millis(100))
            .await
            .map_err(|e| failed("poll")(e.to_string()))?;
        let now = Instant::now();
        if batch.is_empty() {
            rx.check_stall("kafkit e2e", n)?;
            continue;
        }
        rx.progress(now);
        for r in batch.iter() {
            if let Some(v) = &r.value {
                rx.stamped(v, t0, now);
            }
        }
    }
    send_thread
        .await
        .map_err(|e| failed("sender thread")(e.to_string()))??;
    let span = end_producing(&producer, phase).await?;
    let _ = consumer.close().await;
    Ok(Measured::new(
        Client::Kafkit,
        Workload::E2e,
        span,
        rx.records,
        rx.bytes,
        ACKS.errors(Client::Kafkit),
        Some(rx.latency),
    ))
}

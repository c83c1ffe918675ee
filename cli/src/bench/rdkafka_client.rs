//! The rust-rdkafka side of a worker (feature `rdkafka`): `ThreadedProducer` (librdkafka's
//! threads plus one thread that serves delivery reports) and `BaseConsumer`.
//!
//! Throughput runs send as fast as librdkafka's queue takes records; when it is full
//! (`QueueFull`), the sender waits in `poll` for delivery reports to free room, then retries.
//! Offered-rate runs pace sends with the same code as the kafkit side.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::args::{BenchOpts, Client, WorkerArgs, Workload};
use super::report::{Deliveries, Measured, Received};
use super::{pace, payloads, stamp, Phase};
use crate::args::GlobalArgs;
use crate::error::CliError;

/// How long a transactional call may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

fn failed(what: &str) -> impl Fn(KafkaError) -> CliError + '_ {
    move |e| CliError::Failed(format!("rdkafka {what}: {e}"))
}

/// -b and -X (Java names, or kafka-python names with `_` for `.`), as librdkafka takes them.
/// The consumer checks every batch's CRC-32C as kafkit (and Java) do by default; librdkafka's
/// own default is not to (`-X check.crcs=false` restores it; `--defaults own` leaves it).
fn base_config(global: &GlobalArgs, opts: &BenchOpts) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &global.bootstrap);
    if !opts.own_defaults() {
        c.set("check.crcs", "true");
    }
    for (k, v) in &global.options {
        c.set(k.replace('_', "."), v);
    }
    c
}

/// The producer configuration: with `--defaults own`, librdkafka's own batch size (1,000,000),
/// linger, in-flight limit and queue bounds (1 GiB or 100,000 records) unless given.
fn producer_config(global: &GlobalArgs, opts: &BenchOpts) -> ClientConfig {
    let mut c = base_config(global, opts);
    c.set("acks", opts.acks())
        .set("enable.idempotence", opts.idempotence().to_string())
        .set("compression.codec", &opts.compression);
    if let Some(ms) = opts.linger_ms() {
        c.set("linger.ms", ms.to_string());
    }
    if let Some(bytes) = opts.batch_size() {
        c.set("batch.size", bytes.to_string());
    }
    if !opts.own_defaults() {
        c.set("max.in.flight.requests.per.connection", "5")
            // kafkit's buffer_memory (32 MiB) as the bound, not a record count.
            .set("queue.buffering.max.kbytes", "32768")
            .set("queue.buffering.max.messages", "10000000");
    }
    if opts.transactional {
        c.set(
            "transactional.id",
            super::kafkit_client::transactional_id(Client::Rdkafka),
        );
    }
    c
}

/// The producer's context: delivery reports counted, with (offered-rate runs) latencies.
struct Context {
    origin: Instant,
    measure: bool,
    deliveries: Deliveries,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    /// The scheduled send time, in nanoseconds after `origin`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, scheduled: usize) {
        match result {
            Ok(_) => {
                self.deliveries.delivered();
                if self.measure {
                    let now = self.origin.elapsed().as_nanos() as u64;
                    self.deliveries
                        .latency(now.saturating_sub(scheduled as u64));
                }
            }
            Err((e, _)) => self.deliveries.failed(e),
        }
    }
}

type Prod = ThreadedProducer<Context>;

/// Starts the producer and delivers one record, so that metadata, the connection and (with
/// idempotence) the producer id are in place before the measured phase.
fn warm_producer(global: &GlobalArgs, args: &WorkerArgs, measure: bool) -> Result<Prod, CliError> {
    let context = Context {
        origin: Instant::now(),
        measure,
        deliveries: Deliveries::new(),
    };
    let producer: Prod = producer_config(global, &args.opts)
        .create_with_context(context)
        .map_err(failed("producer"))?;
    let transactional = args.opts.transactional;
    if transactional {
        producer
            .init_transactions(TXN_TIMEOUT)
            .map_err(failed("init_transactions"))?;
        producer
            .begin_transaction()
            .map_err(failed("begin_transaction"))?;
    }
    let warm = vec![0u8; args.opts.size as usize];
    send(&producer, &args.topic, &warm, 0)?;
    producer
        .flush(Duration::from_secs(30))
        .map_err(failed("warm-up send"))?;
    if transactional {
        producer
            .commit_transaction(TXN_TIMEOUT)
            .map_err(failed("warm-up commit"))?;
    }
    let deliveries = &producer.context().deliveries;
    if let Some(e) = deliveries.take_error() {
        return Err(CliError::Failed(format!("rdkafka warm-up send: {e}")));
    }
    deliveries.reset();
    Ok(producer)
}

/// Sends one record, waiting in `poll` while librdkafka's queue is full.
fn send(producer: &Prod, topic: &str, value: &[u8], opaque: usize) -> Result<(), CliError> {
    let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, opaque).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(failed("send")(e)),
        }
    }
}

/// Runs the worker's workload.
pub fn run(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    match args.workload {
        Workload::Produce => produce(global, args),
        Workload::Consume => consume(global, args),
        Workload::E2e => e2e(global, args),
    }
}

fn finish_producer(producer: &Prod) -> Result<(), CliError> {
    producer
        .flush(Duration::from_secs(300))
        .map_err(failed("flush"))
}

fn produce(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    let opts = &args.opts;
    let n = opts.records_for(Workload::Produce);
    let rate = opts.rate_for(Workload::Produce);
    let producer = warm_producer(global, args, rate.is_some())?;
    let pool = payloads(opts.size as usize);
    let origin = producer.context().origin;

    let phase = Phase::start();
    if let Some(per_txn) = opts.txn_records() {
        if rate.is_some() {
            return Err(CliError::Usage(
                "--transactional measures throughput: it takes no --rate".into(),
            ));
        }
        let mut i = 0;
        while i < n {
            producer
                .begin_transaction()
                .map_err(failed("begin_transaction"))?;
            let end = (i + per_txn).min(n);
            for j in i..end {
                send(&producer, &args.topic, &pool[(j as usize) % pool.len()], 0)?;
            }
            // librdkafka's commit flushes the transaction's records first.
            producer
                .commit_transaction(TXN_TIMEOUT)
                .map_err(failed("commit_transaction"))?;
            i = end;
        }
    } else {
        for i in 0..n {
            let value = &pool[(i as usize) % pool.len()];
            let opaque = match rate {
                None => 0,
                Some(rate) => pace(phase.started, i, rate)
                    .duration_since(origin)
                    .as_nanos() as usize,
            };
            send(&producer, &args.topic, value, opaque)?;
        }
    }
    finish_producer(&producer)?;
    let span = phase.end();
    Ok(Measured::produced(
        Client::Rdkafka,
        span,
        &producer.context().deliveries,
        opts.size,
        rate.is_some(),
    ))
}

/// A consumer (no group membership, nothing committed) and every partition of `topic`.
fn start_consumer(
    global: &GlobalArgs,
    opts: &BenchOpts,
    topic: &str,
) -> Result<(BaseConsumer, TopicPartitionList), CliError> {
    let mut config = base_config(global, opts);
    config
        .set("group.id", format!("kafkit-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    if !opts.own_defaults() {
        config
            .set("fetch.min.bytes", "1")
            .set("fetch.wait.max.ms", "500");
    }
    let consumer: BaseConsumer = config.create().map_err(failed("consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(failed("metadata"))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(failed("assign"))?;
        }
    }
    if tpl.count() == 0 {
        return Err(CliError::Failed(format!(
            "rdkafka: topic {topic} has no partitions"
        )));
    }
    Ok((consumer, tpl))
}

fn consume(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    let n = args.opts.records_for(Workload::Consume);
    let (consumer, tpl) = start_consumer(global, &args.opts, &args.topic)?;

    let phase = Phase::start();
    consumer.assign(&tpl).map_err(failed("assign"))?;
    let mut rx = Received::new();
    while rx.records < n {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                rx.record(m.payload_len() as u64);
                rx.progress(Instant::now());
            }
            Some(Err(e)) => return Err(failed("poll")(e)),
            None => rx.check_stall("rdkafka consumer", n)?,
        }
    }
    let span = phase.end();
    Ok(Measured::new(
        Client::Rdkafka,
        Workload::Consume,
        span,
        rx.records,
        rx.bytes,
        0,
        None,
    ))
}

fn e2e(global: &GlobalArgs, args: &WorkerArgs) -> Result<Measured, CliError> {
    let opts = &args.opts;
    let n = opts.records_for(Workload::E2e);
    let rate = opts.rate_for(Workload::E2e).unwrap_or(10_000);
    let producer = warm_producer(global, args, false)?;
    let (consumer, tpl) = start_consumer(global, &args.opts, &args.topic)?;
    consumer.assign(&tpl).map_err(failed("assign"))?;
    let template = payloads(opts.size as usize)[0].to_vec();

    let phase = Phase::start();
    let t0 = phase.started;
    let rx = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut value = template.clone();
            for i in 0..n {
                let scheduled = pace(t0, i, rate);
                stamp(&mut value, t0, scheduled);
                send(&producer, &args.topic, &value, 0)?;
            }
            Ok::<(), CliError>(())
        });
        let mut rx = Received::new();
        while rx.records < n {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let now = Instant::now();
                    rx.progress(now);
                    if let Some(v) = m.payload() {
                        rx.stamped(v, t0, now);
                    }
                }
                Some(Err(e)) => return Err(failed("poll")(e)),
                None => rx.check_stall("rdkafka e2e", n)?,
            }
        }
        sender
            .join()
            .map_err(|_| CliError::Failed("rdkafka sender thread panicked".into()))??;
        Ok(rx)
    })?;
    finish_producer(&producer)?;
    let span = phase.end();
    let deliveries = &producer.context().deliveries;
    Ok(Measured::new(
        Client::Rdkafka,
        Workload::E2e,
        span,
        rx.records,
        rx.bytes,
        deliveries.errors(Client::Rdkafka),
        Some(rx.latency),
    ))
}

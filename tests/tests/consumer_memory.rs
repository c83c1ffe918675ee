//! The consumer's memory budget (`fetch_buffer_bytes`) over real sockets, with batches that
//! are tiny on the wire and huge once decompressed: librdkafka's producer writes 1 MiB values
//! of a repeated 16-byte pattern, four to a batch, compressed with zstd (partition 0) and lz4
//! (partition 1) — 96 MiB of records in about a hundred kilobytes of batches. A slow
//! application (two records per poll, then 15 ms of "work") reads everything with a budget of
//! 12 MiB, three times the largest decompressed batch.
//!
//! Measured and checked while reading everything:
//! - the core's own accounting: `stats().peak_buffered_bytes` stays within the budget;
//! - the real heap: a counting global allocator (this binary's) sees the heap grow, over what
//!   it was before the consumer started, by at most the documented bound: the budget, plus
//!   the decompressed batches the records the application holds keep alive (here one poll's
//!   two records, so at most two batches), plus a fixed allowance for the runtime,
//!   connections and their read buffers. Without the budget the consumer would decompress
//!   whatever it fetched: far more than that.
//!
//! Measured (debug build, `cargo test -p kafkit-tests --test consumer_memory -- --nocapture`,
//! 2026-12-08): core peak equal to the budget each time (data held plus what is reserved for
//! the fetch in flight); heap peak over the baseline 8.6, 12.0 or 15.8 MiB with a budget of
//! 8 MiB (bound 18), 16.1 MiB with 16 MiB (bound 26), 15.9 MiB on the mock with 12 MiB (bound
//! 22) — for 96 MiB of records read.
//!
//! librdkafka allocates with C's `malloc`, outside Rust's global allocator, so its producer
//! (and the mock cluster's log) do not count. The development broker's log (compressed, small)
//! is in this process and is in the baseline. Runs against the development broker (which puts
//! many batches in one fetch response, unlike the mock, which returns one per fetch) and
//! against the mock cluster or `KAFKA_BOOTSTRAP`'s cluster. The tests run one at a time (the
//! allocator counts every thread). `-- --nocapture` prints the measured peaks.

#[path = "../src/consumer_harness.rs"]
mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use harness::{consumer_config, partitions, rdkafka_config, Cluster};
use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::{ConsumerCore, FetchStats};
use kafkit_core::driver::{command_queue, CommandSender, ConsumerHandle, ConsumerHandler};
use kafkit_core::driver::{OpenWriters, SocketOptions};
use kafkit_tests::cluster::unique_topic;

// ---- a counting allocator ----

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size > layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time: the heap counts are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const MIB: usize = 1 << 20;
const VALUE: usize = MIB;
const PER_BATCH: usize = 4;
const PER_PARTITION: usize = 48;
/// The largest decompressed batch: four 1 MiB values.
const LARGEST_BATCH: usize = PER_BATCH * VALUE;
/// The records the application holds at once: one poll's (`max_poll_records` 2). Each is a
/// zero-copy slice of its decompressed batch, so each can keep a whole batch alive after the
/// consumer stopped counting it: two records from two batches pin two batches. (Whether they
/// do at the peak depends on thread timing: peaks measured with a budget of 8 MiB fall in
/// three steps about a batch apart, 8.6, 12.0 and 15.8 MiB, as none, one or two pinned
/// batches would give; inferred from the sizes, not traced.)
const HELD_BATCHES: usize = 2;
/// What neither the budget nor the held records cover, a fixed overhead: the runtime and its
/// threads, connections and their read buffers, metadata (about 0.6 MiB measured here).
const FIXED_OVERHEAD: usize = 2 * MIB;

/// The documented bound on the consumer's heap (`consumer/buffer.rs`, "Heap bound"): the
/// budget, plus what one batch larger than the budget adds beyond it, plus what the records
/// the application holds keep alive, plus a fixed overhead.
fn heap_bound(budget: u64) -> usize {
    budget as usize
        + LARGEST_BATCH.saturating_sub(budget as usize)
        + HELD_BATCHES * LARGEST_BATCH
        + FIXED_OVERHEAD
}

/// The 16 bytes value `i` repeats.
fn pattern(i: usize) -> [u8; 16] {
    let mut p = *b"value-000000-xyz";
    p[6..12].copy_from_slice(format!("{:06}", i % 1_000_000).as_bytes());
    p
}

/// Writes `PER_PARTITION` records of 1 MiB on each partition (zstd on 0, lz4 on 1), four to a
/// batch.
fn produce(cluster: &Cluster, topic: &str) {
    for (partition, codec) in [(0, "zstd"), (1, "lz4")] {
        let producer: FutureProducer = rdkafka_config(&cluster.bootstrap())
            .set("compression.type", codec)
            .set("linger.ms", "100")
            .set("batch.num.messages", PER_BATCH.to_string())
            .set("batch.size", (PER_BATCH * (VALUE + 1024)).to_string())
            .set(
                "message.max.bytes",
                (PER_BATCH * (VALUE + 4096)).to_string(),
            )
            .set("message.timeout.ms", "60000")
            .create()
            .expect("rdkafka producer");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for chunk in 0..PER_PARTITION / PER_BATCH {
                let mut futures = Vec::new();
                for j in 0..PER_BATCH {
                    let i = chunk * PER_BATCH + j;
                    let value: Vec<u8> = pattern(i).repeat(VALUE / 16);
                    let key = i.to_string();
                    let f = producer
                        .send_result(
                            FutureRecord::to(topic)
                                .partition(partition)
                                .key(&key)
                                .payload(&value),
                        )
                        .unwrap_or_else(|(e, _)| panic!("rdkafka enqueue: {e}"));
                    futures.push(f);
                }
                for f in futures {
                    f.await
                        .expect("delivery")
                        .unwrap_or_else(|(e, _)| panic!("rdkafka delivery: {e}"));
                }
            }
        });
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
}

/// A consumer on tokio, started as the driver's `consumer` does, keeping the command queue
/// for the core's statistics.
struct Measured {
    rt: tokio::runtime::Runtime,
    handle: ConsumerHandle,
    cmds: CommandSender<ConsumerCore, ConsumerHandler>,
}

impl Measured {
    fn start(rt: tokio::runtime::Runtime, config: &ConsumerConfig) -> Measured {
        let core = ConsumerCore::from_config(config.clone(), &kafkit_tokio::driver_env())
            .expect("consumer core");
        let (cmds, rx) = command_queue::<ConsumerCore, ConsumerHandler>();
        let writers = OpenWriters::new();
        let cmds = cmds.with_writers(writers.clone());
        {
            let _guard = rt.enter();
            tokio::spawn(kafkit_tokio::run(
                core,
                ConsumerHandler::default(),
                rx,
                SocketOptions::from_config(&config.common),
                writers,
            ));
        }
        let handle = ConsumerHandle::new(cmds.clone(), config);
        Measured { rt, handle, cmds }
    }

    fn stats(&self) -> (FetchStats, u64) {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .run(move |core, _, _| {
                let _ = tx.send((core.stats().clone(), core.buffered_bytes()));
            })
            .expect("loop running");
        rx.recv().expect("stats")
    }
}

fn budget_holds(cluster: Cluster, budget: u64) {
    let _serial = serial();
    let topic = unique_topic("tokio", "consumer-memory");
    cluster.create_topic(&topic, 2);
    produce(&cluster, &topic);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = consumer_config(
        &cluster.bootstrap(),
        &[
            ("fetch_buffer_bytes", &budget.to_string()),
            ("max_poll_records", "2"),
            ("max_partition_fetch_bytes", &(8 * MIB).to_string()),
            ("fetch_max_bytes", &(32 * MIB).to_string()),
        ],
    );

    let baseline = CURRENT.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    let started = Instant::now();
    let consumer = Measured::start(rt, &config);
    consumer
        .rt
        .block_on(consumer.handle.assign(partitions(&topic, 2)))
        .expect("assign");
    let mut next = [0usize; 2];
    let mut max_buffered_seen = 0;
    while next.iter().sum::<usize>() < 2 * PER_PARTITION {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{}: read {next:?} of {PER_PARTITION} per partition in 120 s",
            cluster.kind()
        );
        let records = consumer
            .rt
            .block_on(consumer.handle.poll(Duration::from_secs(5)))
            .expect("poll");
        assert!(records.count() <= 2);
        for r in records {
            let p = r.partition as usize;
            assert_eq!(r.offset, next[p] as i64, "partition {p}: in order");
            let i = next[p];
            assert_eq!(r.key.as_deref(), Some(i.to_string().as_bytes()));
            let v = r.value.as_ref().expect("a value");
            assert_eq!(v.len(), VALUE, "partition {p} offset {i}");
            let pat = pattern(i);
            assert!(
                v.chunks(16).all(|c| c == pat),
                "partition {p} offset {i}: value bytes"
            );
            next[p] += 1;
        }
        // The application's work on them.
        std::thread::sleep(Duration::from_millis(15));
        let (_, buffered) = consumer.stats();
        max_buffered_seen = max_buffered_seen.max(buffered);
    }
    let (stats, _) = consumer.stats();
    let heap_peak = PEAK.load(Ordering::SeqCst) - baseline;
    let total = 2 * PER_PARTITION * VALUE;
    eprintln!(
        "{}: read {} MiB of records with a budget of {} MiB: core peak_buffered_bytes {} \
         ({:.2} MiB), largest buffered seen between polls {:.2} MiB, heap peak over baseline \
         {} ({:.2} MiB, bound {:.2} MiB); {stats:?}",
        cluster.kind(),
        total / MIB,
        budget / MIB as u64,
        stats.peak_buffered_bytes,
        stats.peak_buffered_bytes as f64 / MIB as f64,
        max_buffered_seen as f64 / MIB as f64,
        heap_peak,
        heap_peak as f64 / MIB as f64,
        heap_bound(budget) as f64 / MIB as f64,
    );
    assert!(
        stats.peak_buffered_bytes <= budget,
        "{}: core accounting peaked at {} over the budget {budget}",
        cluster.kind(),
        stats.peak_buffered_bytes
    );
    assert!(
        stats.peak_buffered_bytes >= (PER_BATCH * VALUE) as u64,
        "{}: the peak ({}) is at least one decompressed batch: the accounting counts \
         decompressed data",
        cluster.kind(),
        stats.peak_buffered_bytes
    );
    assert!(
        heap_peak <= heap_bound(budget),
        "{}: the heap grew by {heap_peak} bytes, over the documented bound {} (budget \
         {budget} + {} of a batch beyond it + {} kept alive by held records + \
         {FIXED_OVERHEAD} fixed)",
        cluster.kind(),
        heap_bound(budget),
        LARGEST_BATCH.saturating_sub(budget as usize),
        HELD_BATCHES * LARGEST_BATCH,
    );
    consumer
        .rt
        .block_on(consumer.handle.close())
        .expect("close");
}

#[test]
fn budget_of_8_mib_holds_on_the_dev_broker() {
    budget_holds(Cluster::dev(), 8 * MIB as u64);
}

#[test]
fn budget_of_16_mib_holds_on_the_dev_broker() {
    budget_holds(Cluster::dev(), 16 * MIB as u64);
}

#[test]
fn budget_of_12_mib_holds_on_the_mock_or_a_real_cluster() {
    budget_holds(Cluster::new(), 12 * MIB as u64);
}

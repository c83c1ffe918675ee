//! The producer's memory bound and back-pressure over real sockets, with the broker slow or
//! gone: kafkit's development broker swallowing every Produce request (metadata still
//! answered), or a black-hole TCP listener that accepts and never answers.
//!
//! - accounted buffer memory stays within `buffer_memory` (metrics `buffer-available-bytes`,
//!   `buffer-total-bytes`), and a counting allocator sees the heap grow by a small multiple of
//!   it while the application offers 64 times as much;
//! - sends fail after `max_block_ms` with `MaxBlockTimeout` (buffer memory, or metadata of a
//!   cluster that never answers);
//! - queued records fail after `delivery_timeout_ms` with `DeliveryTimeout` naming their
//!   topic-partition, and give their memory back;
//! - `close(timeout)` fails what remains with `Closed` and returns: no hang.
//!
//! The tests run one at a time (the allocator counts every thread of the process).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafkit_blocking::Wait;
use kafkit_core::config::ProducerConfig;
use kafkit_core::driver::ProducerHandle;
use kafkit_core::producer::{DeliveryFuture, ProduceError, ProducerRecord, ProducerShared};
use kafkit_core::protocol::ApiKey;
use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};
use kafkit_sim::HookAction;

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

// ---- brokers that do not answer ----

/// The development broker with every Produce request swallowed (no append, no answer; the
/// connection stays open): metadata works, deliveries never complete.
fn swallowing_broker(partitions: i32) -> DevBroker {
    let broker =
        DevBroker::start(DevBrokerConfig::new(1).partitions(partitions)).expect("dev broker");
    broker
        .with_cluster(|c| {
            c.set_hook(ApiKey::Produce, Box::new(|_, _| HookAction::Drop));
        })
        .expect("cluster thread");
    broker
}

/// A TCP listener that accepts connections and reads whatever comes, never answering.
struct BlackHole {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut readers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            let stop = stop.clone();
                            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                            readers.push(std::thread::spawn(move || {
                                let mut buf = [0u8; 4096];
                                while !stop.load(Ordering::SeqCst) {
                                    match s.read(&mut buf) {
                                        Ok(0) => break,
                                        Ok(_) => {}
                                        Err(e)
                                            if e.kind() == std::io::ErrorKind::WouldBlock
                                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                                        Err(_) => break,
                                    }
                                }
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                for r in readers {
                    let _ = r.join();
                }
            })
        };
        BlackHole {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- helpers ----

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ProducerConfig {
    let mut b = ProducerConfig::builder()
        .set("bootstrap_servers", bootstrap)
        .set("client_id", "kafkit-producer-memory");
    for (k, v) in extra {
        b = b.set(k, v);
    }
    b.build().expect("a valid producer config")
}

fn start_tokio(rt: &tokio::runtime::Runtime, config: &ProducerConfig) -> ProducerHandle {
    let _guard = rt.enter();
    kafkit_tokio::producer(config).expect("tokio producer")
}

/// Runs `f` on another thread and fails the test if it does not finish within `limit`
/// (a hang must fail, not block the suite).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?} (hang)"))
}

fn metric(rt: &tokio::runtime::Runtime, handle: &ProducerHandle, name: &str) -> f64 {
    let m = rt.block_on(handle.metrics()).expect("metrics").to_map();
    *m.get(name)
        .unwrap_or_else(|| panic!("no metric {name:?} among {:?}", m.keys()))
}

fn block_on_tokio<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

fn is_max_block(e: &ProduceError) -> bool {
    matches!(e, ProduceError::MaxBlockTimeout { .. })
}

// ---- the tests ----

/// With Produce swallowed, the application offers 64 MiB to a producer with 1 MiB of
/// buffer memory (try_send, never waiting): what is accepted stays within buffer_memory, the
/// metrics say so, the heap grows by a small multiple of buffer_memory, a waiting send fails
/// after max_block_ms with MaxBlockTimeout, and close fails the accepted records with Closed.
#[test]
fn buffer_memory_bounds_what_the_producer_holds() {
    let _serial = serial();
    const BUFFER: u64 = 1 << 20;
    const OFFERED: usize = 64 << 20;
    const VALUE: usize = 2048;
    let broker = swallowing_broker(3);
    let topic = "memory-bound";
    let rt = tokio_runtime();
    let buffer = BUFFER.to_string();
    let handle = start_tokio(
        &rt,
        &config(
            &broker.bootstrap(),
            &[
                ("buffer_memory", &buffer),
                ("batch_size", "16384"),
                ("max_request_size", "65536"),
                ("linger_ms", "0"),
                ("max_block_ms", "300"),
                ("request_timeout_ms", "60000"),
                ("delivery_timeout_ms", "120000"),
            ],
        ),
    );
    // Metadata first (answered), so that memory is what the sends wait for.
    let partitions = rt
        .block_on(handle.partitions_for(topic))
        .expect("partitions_for");
    assert_eq!(partitions.len(), 3);
    assert_eq!(metric(&rt, &handle, "buffer-total-bytes"), BUFFER as f64);
    assert_eq!(
        metric(&rt, &handle, "buffer-available-bytes"),
        BUFFER as f64
    );

    let baseline = CURRENT.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    let mut accepted: Vec<DeliveryFuture> = Vec::new();
    let mut accepted_bytes = 0u64;
    let mut refused = 0usize;
    for i in 0..OFFERED / VALUE {
        let record = ProducerRecord::new(topic)
            .key(format!("key-{i}"))
            .value(vec![(i % 251) as u8; VALUE]);
        let size = ProducerShared::record_size(&record) as u64;
        match handle.try_send(record) {
            Ok(d) => {
                accepted.push(d);
                accepted_bytes += size;
            }
            Err(e) if is_max_block(&e) => refused += 1,
            Err(e) => panic!("try_send of record {i}: unexpected {e}"),
        }
        assert!(
            accepted_bytes <= BUFFER,
            "record {i}: {accepted_bytes} bytes accepted, above buffer_memory {BUFFER}"
        );
    }
    let available = metric(&rt, &handle, "buffer-available-bytes");
    let grown = PEAK.load(Ordering::SeqCst).saturating_sub(baseline);
    eprintln!(
        "offered {OFFERED} bytes: accepted {} records ({accepted_bytes} bytes), refused \
         {refused}; buffer-available-bytes {available}; peak heap growth {grown} bytes",
        accepted.len()
    );
    assert!(!accepted.is_empty() && refused > 0);
    assert!(
        accepted_bytes >= BUFFER / 2,
        "the buffer was used: {accepted_bytes} of {BUFFER}"
    );
    assert!(
        (0.0..=(BUFFER - accepted_bytes) as f64).contains(&available),
        "buffer-available-bytes {available} with {accepted_bytes} of {BUFFER} accepted"
    );
    // Accepted records, their batches, the requests in flight and socket buffers (the broker
    // in this process reads them too): a few copies of buffer_memory, never the 64 MiB
    // offered.
    let bound = 8 * BUFFER as usize + (4 << 20);
    assert!(
        grown <= bound,
        "heap grew by {grown} bytes while {OFFERED} were offered to a {BUFFER}-byte buffer \
         (bound {bound})"
    );

    // A waiting send: fails after max_block_ms, with MaxBlockTimeout.
    let started = Instant::now();
    let waited = rt.block_on(handle.enqueue(ProducerRecord::new(topic).value(vec![1u8; VALUE])));
    let took = started.elapsed();
    match waited {
        Err(ref e @ ProduceError::MaxBlockTimeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(300), "{e}");
            assert!(e.to_string().contains("max_block_ms"), "{e}");
            assert!(took >= Duration::from_millis(300), "failed after {took:?}");
        }
        Err(e) => panic!("a send into a full buffer: {e}"),
        Ok(_) => panic!("a send into a full buffer was accepted"),
    }

    // close: whatever was accepted fails with Closed; close itself returns.
    let closing = handle.clone();
    let rt = Arc::new(rt);
    let rt2 = rt.clone();
    let _ = within(Duration::from_secs(30), "close(1s)", move || {
        rt2.block_on(closing.close(Some(Duration::from_secs(1))))
    });
    let results = block_on_tokio(&rt, async {
        let mut out = Vec::new();
        for d in accepted {
            out.push(d.await);
        }
        out
    });
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, Err(ProduceError::Closed)),
            "accepted record {i} after close: {r:?}"
        );
    }
    assert!(matches!(
        handle.try_send(ProducerRecord::new(topic).value("late")),
        Err(ProduceError::Closed)
    ));
    assert_eq!(broker.model_failures(), Vec::<String>::new());
}

/// With Produce swallowed, records fail after delivery_timeout_ms with DeliveryTimeout naming
/// their topic-partition, and their buffer memory comes back.
#[test]
fn queued_records_fail_after_delivery_timeout() {
    let _serial = serial();
    let broker = swallowing_broker(4);
    let topic = "memory-delivery-timeout";
    let rt = tokio_runtime();
    let handle = start_tokio(
        &rt,
        &config(
            &broker.bootstrap(),
            &[
                ("linger_ms", "0"),
                ("request_timeout_ms", "1000"),
                ("delivery_timeout_ms", "2000"),
                ("retry_backoff_ms", "100"),
            ],
        ),
    );
    rt.block_on(handle.partitions_for(topic))
        .expect("partitions_for");
    let started = Instant::now();
    let results = rt.block_on(async {
        let mut pending = Vec::new();
        for i in 0..40 {
            let r = ProducerRecord::new(topic)
                .partition(i % 4)
                .value(format!("record {i}"));
            pending.push((i % 4, handle.enqueue(r).await.expect("accepted")));
        }
        let mut out = Vec::new();
        for (p, d) in pending {
            out.push((p, d.await));
        }
        out
    });
    let took = started.elapsed();
    for (p, r) in &results {
        match r {
            Err(
                e @ ProduceError::DeliveryTimeout {
                    topic: t,
                    partition,
                    after,
                    ..
                },
            ) => {
                assert_eq!(t, topic);
                assert_eq!(partition, p);
                assert_eq!(*after, Duration::from_millis(2000));
                let text = e.to_string();
                assert!(text.contains(&format!("{topic}-{p}")), "{text}");
            }
            other => panic!("record for partition {p}: {other:?}"),
        }
    }
    assert!(
        took >= Duration::from_millis(2000),
        "all failed after {took:?}"
    );
    // Their memory is free again.
    let total = metric(&rt, &handle, "buffer-total-bytes");
    assert_eq!(metric(&rt, &handle, "buffer-available-bytes"), total);
    let handle2 = handle.clone();
    let rt = Arc::new(rt);
    let rt2 = rt.clone();
    within(Duration::from_secs(30), "close", move || {
        rt2.block_on(handle2.close(Some(Duration::from_secs(1))))
    })
    .expect("close of an idle producer");
}

/// close(timeout) with records stuck (Produce swallowed): every pending record fails with
/// Closed, close returns, later sends fail with Closed; through the tokio and the blocking
/// driver.
#[test]
fn close_fails_what_remains_without_hanging() {
    let _serial = serial();
    let broker = swallowing_broker(2);
    let extra = [
        ("linger_ms", "0"),
        ("request_timeout_ms", "60000"),
        ("delivery_timeout_ms", "120000"),
    ];

    // tokio
    let rt = Arc::new(tokio_runtime());
    let handle = start_tokio(&rt, &config(&broker.bootstrap(), &extra));
    let pending = rt.block_on(async {
        let mut pending = Vec::new();
        for i in 0..50 {
            let r = ProducerRecord::new("memory-close").value(format!("record {i}"));
            pending.push(handle.enqueue(r).await.expect("accepted"));
        }
        pending
    });
    let (h, rt2) = (handle.clone(), rt.clone());
    let closed = within(Duration::from_secs(30), "tokio close(500ms)", move || {
        rt2.block_on(h.close(Some(Duration::from_millis(500))))
    });
    eprintln!("tokio close with 50 records stuck: {closed:?}");
    let rt2 = rt.clone();
    let results = within(
        Duration::from_secs(30),
        "deliveries after close",
        move || {
            rt2.block_on(async {
                let mut out = Vec::new();
                for d in pending {
                    out.push(d.await);
                }
                out
            })
        },
    );
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, Err(ProduceError::Closed)),
            "tokio record {i}: {r:?}"
        );
    }
    assert!(matches!(
        rt.block_on(handle.enqueue(ProducerRecord::new("memory-close").value("late"))),
        Err(ProduceError::Closed)
    ));

    // blocking
    let producer = kafkit_blocking::Producer::start(&config(&broker.bootstrap(), &extra))
        .expect("blocking producer");
    let pending: Vec<DeliveryFuture> = (0..50)
        .map(|i| {
            producer
                .enqueue(ProducerRecord::new("memory-close").value(format!("record {i}")))
                .expect("accepted")
        })
        .collect();
    let p = producer.clone();
    let closed = within(
        Duration::from_secs(30),
        "blocking close(500ms)",
        move || p.close(Some(Duration::from_millis(500))),
    );
    eprintln!("blocking close with 50 records stuck: {closed:?}");
    let results = within(
        Duration::from_secs(30),
        "blocking deliveries after close",
        move || pending.into_iter().map(Wait::wait).collect::<Vec<_>>(),
    );
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, Err(ProduceError::Closed)),
            "blocking record {i}: {r:?}"
        );
    }
    assert!(matches!(
        producer.enqueue(ProducerRecord::new("memory-close").value("late")),
        Err(ProduceError::Closed)
    ));
}

/// A cluster that accepts connections and never answers: a send fails after max_block_ms
/// (metadata never comes) with MaxBlockTimeout, and close returns.
#[test]
fn black_hole_cluster_fails_sends_after_max_block() {
    let _serial = serial();
    let hole = BlackHole::start();
    let extra = [
        ("max_block_ms", "500"),
        ("request_timeout_ms", "2000"),
        ("delivery_timeout_ms", "5000"),
    ];

    let rt = Arc::new(tokio_runtime());
    let handle = start_tokio(&rt, &config(&hole.addr, &extra));
    let started = Instant::now();
    let r = rt.block_on(async {
        handle
            .send(ProducerRecord::new("nowhere").value("v"))
            .await
            .map(|_| ())
    });
    let took = started.elapsed();
    match r {
        Err(ref e @ ProduceError::MaxBlockTimeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(500), "{e}");
            assert!(took >= Duration::from_millis(500), "failed after {took:?}");
        }
        other => panic!("tokio: send to a black hole: {other:?}"),
    }
    let (h, rt2) = (handle.clone(), rt.clone());
    let _ = within(Duration::from_secs(30), "tokio close", move || {
        rt2.block_on(h.close(Some(Duration::from_millis(500))))
    });

    let producer =
        kafkit_blocking::Producer::start(&config(&hole.addr, &extra)).expect("blocking producer");
    let started = Instant::now();
    let r = producer
        .send(ProducerRecord::new("nowhere").value("v"))
        .map(|_| ());
    let took = started.elapsed();
    match r {
        Err(ref e @ ProduceError::MaxBlockTimeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(500), "{e}");
            assert!(took >= Duration::from_millis(500), "failed after {took:?}");
        }
        other => panic!("blocking: send to a black hole: {other:?}"),
    }
    let p = producer.clone();
    let _ = within(Duration::from_secs(30), "blocking close", move || {
        p.close(Some(Duration::from_millis(500)))
    });
}

// ---- the same on virtual time: the simulated cluster swallowing Produce ----

type Outcomes =
    Arc<Mutex<Vec<Option<Result<kafkit_core::producer::RecordMetadata, ProduceError>>>>>;

/// A producer on the simulated cluster (3 brokers, 4 partitions) whose brokers swallow every
/// Produce request.
fn swallowing_sim(extra: &[(&str, &str)], seed: u64) -> kafkit_sim::ProducerSim {
    let cluster = kafkit_sim::ClusterConfig {
        default_partitions: 4,
        ..kafkit_sim::ClusterConfig::default()
    };
    let p = kafkit_sim::ProducerSim::new(cluster, &config("broker-0:9092", extra), seed)
        .expect("simulated producer");
    p.cluster()
        .borrow_mut()
        .set_hook(ApiKey::Produce, Box::new(|_, _| HookAction::Drop));
    p
}

fn sim_send(p: &mut kafkit_sim::ProducerSim, outcomes: &Outcomes, record: ProducerRecord) {
    let i = {
        let mut o = outcomes.lock().unwrap();
        o.push(None);
        o.len() - 1
    };
    let outcomes = outcomes.clone();
    p.send_with_callback(record, move |r| {
        let prev = outcomes.lock().unwrap()[i].replace(r);
        assert!(prev.is_none(), "record {i} completed twice");
    });
}

fn sim_metric(p: &mut kafkit_sim::ProducerSim, name: &str) -> f64 {
    let m = p.metrics().to_map();
    *m.get(name)
        .unwrap_or_else(|| panic!("no metric {name:?} among {:?}", m.keys()))
}

/// Virtual time, stuck brokers: 1000 records of ~500 bytes offered at once to a 64 KiB
/// buffer. What is admitted fits the buffer (metrics agree); the rest waits exactly
/// max_block_ms and fails with MaxBlockTimeout; the admitted records fail with
/// DeliveryTimeout naming their topic-partition once delivery_timeout_ms passes (not before),
/// and give their memory back.
#[test]
fn sim_buffer_memory_max_block_and_delivery_timeout() {
    let _serial = serial();
    const BUFFER: u64 = 64 * 1024;
    let mut p = swallowing_sim(
        &[
            ("buffer_memory", "65536"),
            ("max_block_ms", "1000"),
            ("linger_ms", "0"),
            ("batch_size", "4096"),
            ("request_timeout_ms", "5000"),
            ("delivery_timeout_ms", "30000"),
        ],
        11,
    );
    p.partitions_for("stuck")
        .expect("simulation")
        .expect("partitions");
    let start = p.sim().elapsed();
    let outcomes: Outcomes = Arc::default();
    let mut sizes = Vec::new();
    for i in 0..1000 {
        let r = ProducerRecord::new("stuck")
            .partition(i % 4)
            .value(vec![b'v'; 480 + (i as usize % 40)]);
        sizes.push(ProducerShared::record_size(&r) as u64);
        sim_send(&mut p, &outcomes, r);
    }
    p.run_for(Duration::from_millis(500)).expect("simulation");
    let available = sim_metric(&mut p, "buffer-available-bytes");
    let waiting = sim_metric(&mut p, "waiting-threads");
    assert_eq!(sim_metric(&mut p, "buffer-total-bytes"), BUFFER as f64);
    {
        let o = outcomes.lock().unwrap();
        assert!(
            o.iter().all(Option::is_none),
            "nothing completes before max_block_ms"
        );
    }
    // The first records in the buffer, in order; the rest waiting.
    let admitted = 1000 - waiting as usize;
    let admitted_bytes: u64 = sizes[..admitted].iter().sum();
    eprintln!(
        "admitted {admitted} records ({admitted_bytes} bytes), {waiting} waiting, \
         buffer-available-bytes {available}"
    );
    assert!(admitted > 0 && admitted < 1000, "admitted {admitted}");
    assert!(admitted_bytes <= BUFFER, "{admitted_bytes} bytes admitted");
    assert!(
        admitted_bytes + sizes[admitted] > BUFFER,
        "the next record would not have fitted"
    );
    assert_eq!(available, (BUFFER - admitted_bytes) as f64);

    // Just before max_block_ms: still nothing; just after: every waiter failed.
    let now = p.sim().elapsed() - start;
    p.run_for(Duration::from_millis(999) - now)
        .expect("simulation");
    assert!(outcomes.lock().unwrap().iter().all(Option::is_none));
    p.run_for(Duration::from_millis(2)).expect("simulation");
    {
        let o = outcomes.lock().unwrap();
        for (i, r) in o.iter().enumerate() {
            if i < admitted {
                assert!(r.is_none(), "admitted record {i} completed early: {r:?}");
            } else {
                match r {
                    Some(Err(ProduceError::MaxBlockTimeout { after, .. })) => {
                        assert_eq!(*after, Duration::from_millis(1000))
                    }
                    other => panic!("waiting record {i} after max_block_ms: {other:?}"),
                }
            }
        }
    }
    assert_eq!(sim_metric(&mut p, "waiting-threads"), 0.0);

    // delivery_timeout_ms: nothing fails before it, everything by one request timeout after.
    let now = p.sim().elapsed() - start;
    p.run_for(Duration::from_millis(29_990) - now)
        .expect("simulation");
    assert!(outcomes.lock().unwrap()[..admitted]
        .iter()
        .all(Option::is_none));
    p.run_for(Duration::from_millis(5_020)).expect("simulation");
    let o = outcomes.lock().unwrap();
    for (i, r) in o[..admitted].iter().enumerate() {
        match r {
            Some(Err(
                e @ ProduceError::DeliveryTimeout {
                    topic,
                    partition,
                    after,
                    ..
                },
            )) => {
                assert_eq!(topic, "stuck");
                assert_eq!(*partition, i as i32 % 4, "record {i}");
                assert_eq!(*after, Duration::from_millis(30_000));
                assert!(e.to_string().contains(&format!("stuck-{}", i % 4)), "{e}");
            }
            other => panic!("admitted record {i} after delivery_timeout_ms: {other:?}"),
        }
    }
    drop(o);
    assert_eq!(sim_metric(&mut p, "buffer-available-bytes"), BUFFER as f64);
}

/// Virtual time, stuck brokers: close(2 s) with records in flight, in batches and waiting
/// for memory: waiters fail with Closed at once, the rest when the timeout passes; close
/// reports the timeout; later sends fail with Closed.
#[test]
fn sim_close_fails_what_remains() {
    let _serial = serial();
    let mut p = swallowing_sim(
        &[
            ("buffer_memory", "16384"),
            ("max_block_ms", "60000"),
            ("linger_ms", "0"),
            ("batch_size", "2048"),
            ("request_timeout_ms", "30000"),
        ],
        12,
    );
    p.partitions_for("stuck")
        .expect("simulation")
        .expect("partitions");
    let outcomes: Outcomes = Arc::default();
    for i in 0..200 {
        sim_send(
            &mut p,
            &outcomes,
            ProducerRecord::new("stuck").value(format!("record {i} {}", "x".repeat(200))),
        );
    }
    p.run_for(Duration::from_millis(100)).expect("simulation");
    assert!(sim_metric(&mut p, "waiting-threads") > 0.0);
    let before = p.sim().elapsed();
    let closed = p.close(Some(Duration::from_secs(2))).expect("simulation");
    let took = p.sim().elapsed() - before;
    eprintln!("close(2s) with 200 records stuck: {closed:?} after {took:?} of virtual time");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "close(2s) returned after {took:?}"
    );
    assert!(
        matches!(closed, Err(ProduceError::FlushTimeout { .. })),
        "close with records stuck: {closed:?}"
    );
    for (i, r) in outcomes.lock().unwrap().iter().enumerate() {
        assert!(
            matches!(r, Some(Err(ProduceError::Closed))),
            "record {i} after close: {r:?}"
        );
    }
    let late: Outcomes = Arc::default();
    sim_send(&mut p, &late, ProducerRecord::new("stuck").value("late"));
    p.run_for(Duration::from_millis(10)).expect("simulation");
    assert!(matches!(
        late.lock().unwrap()[0],
        Some(Err(ProduceError::Closed))
    ));
}

//! The producer in the simulation: the very [`ProducerCore`] the drivers run, against the
//! simulated cluster on virtual time.
//!
//! [`producer_core`] builds a core for a simulated cluster (its brokers as bootstrap, a seed,
//! the cluster's wall clock for CreateTime), for simulations set up by hand.
//! [`ProducerSim`] is the whole set-up in one value: a cluster, a simulation, and a producer
//! whose calls run the simulation until they complete, with the same [`ProducerHandler`] the
//! drivers' loops use.
//!
//! ```
//! use kafkit_core::config::ProducerConfig;
//! use kafkit_core::producer::ProducerRecord;
//! use kafkit_sim::{ClusterConfig, ProducerSim};
//!
//! let mut p = ProducerSim::new(ClusterConfig::default(), &ProducerConfig::default(), 42)?;
//! let mut delivery = p.send(ProducerRecord::new("orders").key("o-1").value("42 EUR"));
//! p.flush(None)?.expect("flushed");
//! let metadata = delivery.try_result().expect("completed").expect("delivered");
//! assert_eq!(metadata.offset, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use kafkit_core::config::ProducerConfig;
use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::driver::{Handler, ProducerHandler};
use kafkit_core::network::{NetOptions, PartitionInfo};
use kafkit_core::producer::{
    Delivery, DeliveryFuture, ProduceError, ProducerCore, ProducerMetrics, ProducerRecord,
    RecordMetadata,
};
use kafkit_core::OpId;

use crate::{serve_cluster, Cluster, ClusterConfig, SimError, Simulation};

/// A [`ProducerCore`] for the simulated `cluster`: `config` with the cluster's brokers as
/// bootstrap servers (whatever `bootstrap_servers` says), every random choice from `seed`,
/// and CreateTime taken from the cluster's wall clock ([`Cluster::wall_ms`]) as virtual time
/// passes from `now`. TLS and SASL options apply as in a driver (the ring provider, no system
/// root certificates).
pub fn producer_core(
    config: &ProducerConfig,
    cluster: &Cluster,
    seed: u64,
    now: Instant,
) -> Result<ProducerCore, ProduceError> {
    let env = crate::sim_env(seed);
    let mut opts = NetOptions::from_config(&config.common, &env)
        .map_err(|e| ProduceError::InvalidConfig(e.to_string()))?;
    opts.bootstrap = cluster
        .brokers()
        .iter()
        .map(|b| (b.host.clone(), b.port as u16))
        .collect();
    opts.seed = seed;
    let mut core = ProducerCore::new(config.clone(), opts)?;
    // The virtual wall clock: the cluster's, which moves with virtual time.
    core.handle_wall_clock(now, cluster.wall_ms(now));
    Ok(core)
}

/// Where a completion lands in a simulation, which never awaits futures: the receiving end
/// is read with `try_recv` once the simulation ran far enough.
type Slot<T> = oneshot::Receiver<Result<T, ProduceError>>;

/// A simulated cluster with one producer on it, on virtual time.
///
/// The calls that wait in a real driver ([`ProducerSim::flush`], [`ProducerSim::close`],
/// [`ProducerSim::partitions_for`]) run the simulation until they complete; sends queue the
/// record at the current virtual time and return at once. Everything replays from the seed.
pub struct ProducerSim {
    sim: Simulation<ProducerCore>,
    handler: ProducerHandler,
    cluster: Rc<RefCell<Cluster>>,
}

impl std::fmt::Debug for ProducerSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSim")
            .field("seed", &self.sim.seed())
            .field("elapsed", &self.sim.elapsed())
            .finish_non_exhaustive()
    }
}

impl ProducerSim {
    /// A cluster as `cluster` describes (its own seed replaced by `seed`) and a producer as
    /// `producer` describes (see [`producer_core`]), with default links.
    pub fn new(
        mut cluster: ClusterConfig,
        producer: &ProducerConfig,
        seed: u64,
    ) -> Result<ProducerSim, ProduceError> {
        let start = Instant::now();
        cluster.seed = seed;
        let cluster = Rc::new(RefCell::new(Cluster::new(cluster, start)));
        let core = producer_core(producer, &cluster.borrow(), seed, start)?;
        let mut sim = Simulation::new(core, seed, start);
        serve_cluster(&mut sim, &cluster);
        Ok(ProducerSim {
            sim,
            handler: ProducerHandler::default(),
            cluster,
        })
    }

    /// The simulation, for faults (`drop_connections`, `partition`, ...), link settings and
    /// virtual time.
    pub fn sim(&mut self) -> &mut Simulation<ProducerCore> {
        &mut self.sim
    }

    /// The cluster, for faults (crashes, leader moves, hooks) and for reading partition logs.
    pub fn cluster(&self) -> &Rc<RefCell<Cluster>> {
        &self.cluster
    }

    /// The producer core itself.
    pub fn core(&mut self) -> &mut ProducerCore {
        self.sim.core()
    }

    /// Queues `record` now; the future resolves as the simulation runs (read it with
    /// [`DeliveryFuture::try_result`]). Unlike a driver's `enqueue`, this never waits for buffer
    /// memory: a record that does not fit waits inside the core, up to `max_block_ms` of
    /// virtual time, and fails there.
    pub fn send(&mut self, record: ProducerRecord) -> DeliveryFuture {
        let (delivery, future) = DeliveryFuture::new();
        self.send_with(record, delivery);
        future
    }

    /// Queues `record` now; `callback` gets its outcome as the simulation runs.
    pub fn send_with_callback(
        &mut self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata, ProduceError>) + Send + 'static,
    ) {
        self.send_with(record, Delivery::Callback(Box::new(callback)));
    }

    /// Queues `record` now with any [`Delivery`] (through the producer's handler, as a
    /// driver's loop does).
    pub fn send_with(&mut self, record: ProducerRecord, delivery: Delivery) {
        let now = self.sim.now();
        self.handler
            .send(self.sim.core(), record, delivery, None, now);
        self.sim.drain();
        self.pump();
    }

    /// Flushes (see the drivers' `flush`) and runs until the flush completes.
    pub fn flush(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Result<(), ProduceError>, SimError> {
        let (tx, rx) = oneshot::channel();
        let now = self.sim.now();
        self.handler.flush(self.sim.core(), timeout, now, tx);
        self.wait(rx)
    }

    /// Closes the producer (see the drivers' `close`) and runs until the close completes.
    pub fn close(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Result<(), ProduceError>, SimError> {
        let (tx, rx) = oneshot::channel();
        let now = self.sim.now();
        self.handler.close(self.sim.core(), timeout, now, tx);
        self.wait(rx)
    }

    /// The partitions of `topic`, fetching its metadata in the simulation if needed.
    pub fn partitions_for(
        &mut self,
        topic: &str,
    ) -> Result<Result<Vec<PartitionInfo>, ProduceError>, SimError> {
        let (tx, rx) = oneshot::channel();
        let now = self.sim.now();
        self.handler.partitions_for(self.sim.core(), topic, now, tx);
        self.wait(rx)
    }

    /// Runs a transactional call (see the drivers' `init_transactions`, ...) until it
    /// completes.
    fn transaction(
        &mut self,
        call: impl FnOnce(&mut ProducerCore, OpId, Instant),
    ) -> Result<Result<(), ProduceError>, SimError> {
        let (tx, rx) = oneshot::channel();
        let now = self.sim.now();
        self.handler
            .transaction(self.sim.core(), tx, |core, op| call(core, op, now));
        self.wait(rx)
    }

    /// Initializes the transactional producer and runs until that completes.
    pub fn init_transactions(&mut self) -> Result<Result<(), ProduceError>, SimError> {
        self.transaction(|core, op, now| core.init_transactions(op, now))
    }

    /// Opens a transaction.
    pub fn begin_transaction(&mut self) -> Result<(), ProduceError> {
        self.sim.core().begin_transaction()
    }

    /// Adds a group's offsets to the open transaction and runs until that completes.
    pub fn send_offsets_to_transaction(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: GroupMetadata,
    ) -> Result<Result<(), ProduceError>, SimError> {
        self.transaction(|core, op, now| core.send_offsets_to_transaction(op, offsets, group, now))
    }

    /// Commits the open transaction and runs until that completes.
    pub fn commit_transaction(&mut self) -> Result<Result<(), ProduceError>, SimError> {
        self.transaction(|core, op, now| core.commit_transaction(op, now))
    }

    /// Aborts the open transaction and runs until that completes.
    pub fn abort_transaction(&mut self) -> Result<Result<(), ProduceError>, SimError> {
        self.transaction(|core, op, now| core.abort_transaction(op, now))
    }

    /// The producer's metrics at the current virtual time.
    pub fn metrics(&mut self) -> ProducerMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }

    /// Runs for `duration` of virtual time, handing the core's events to the producer's
    /// handler as a driver's loop does.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        self.sim.run_for(duration)?;
        self.pump();
        Ok(())
    }

    /// Steps until `done` holds (see [`Simulation::run_until`]: an error naming the seed past
    /// the step bound, `false` if nothing is left to happen first), handing the core's events
    /// to the producer's handler as a driver's loop does.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&mut Simulation<ProducerCore>) -> bool,
    ) -> Result<bool, SimError> {
        let handler = &mut self.handler;
        self.sim.run_until(|s| {
            pump(s, handler);
            done(s)
        })
    }

    /// Runs until `slot` is filled.
    fn wait<T>(&mut self, mut slot: Slot<T>) -> Result<Result<T, ProduceError>, SimError> {
        let mut answer = None;
        // Answered before the simulation ran (the call completed at once)?
        self.pump();
        if let Ok(Some(r)) = slot.try_recv() {
            return Ok(r);
        }
        let filled = |_: &mut Simulation<ProducerCore>| {
            if let Ok(Some(r)) = slot.try_recv() {
                answer = Some(r);
            }
            answer.is_some()
        };
        if !self.run_until(filled)? {
            // Every producer call completes by a deadline the core keeps: an idle simulation
            // with a call still open is a bug in the core.
            panic!(
                "simulation (seed {}) went idle before the producer answered",
                self.sim.seed()
            );
        }
        Ok(answer.expect("filled"))
    }

    /// Hands the core's events to the handler.
    fn pump(&mut self) {
        pump(&mut self.sim, &mut self.handler);
    }
}

/// Hands the producer's events to `handler`, as a driver's loop does.
fn pump(sim: &mut Simulation<ProducerCore>, handler: &mut ProducerHandler) {
    // What a call just queued in the core reaches the simulation first.
    sim.drain();
    let now = sim.now();
    for event in sim.take_events() {
        handler.on_event(sim.core(), event, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends keyed and unkeyed records over a few hundred virtual milliseconds and returns
    /// every outcome in send order.
    fn run(seed: u64) -> Vec<Result<RecordMetadata, ProduceError>> {
        let cluster = ClusterConfig {
            start_time_ms: 1_600_000_000_000,
            ..ClusterConfig::default()
        };
        let config = ProducerConfig::builder()
            .set("linger_ms", "2")
            .build()
            .expect("config");
        let mut p = ProducerSim::new(cluster, &config, seed).expect("producer");
        let mut deliveries = Vec::new();
        for i in 0..200u32 {
            let mut record = ProducerRecord::new("t").value(i.to_string());
            if i % 2 == 0 {
                record = record.key(format!("k{}", i % 5));
            }
            deliveries.push(p.send(record));
            p.run_for(Duration::from_millis(1)).expect("ran");
        }
        p.flush(None).expect("ran").expect("flushed");
        p.close(None).expect("ran").expect("closed");
        deliveries
            .into_iter()
            .map(|mut d| d.try_result().expect("completed"))
            .collect()
    }

    #[test]
    fn runs_replay_from_the_seed_with_virtual_create_times() {
        let first = run(7);
        assert_eq!(first, run(7), "the same seed, the same outcomes");
        let mut offsets = std::collections::BTreeMap::new();
        for (i, r) in first.iter().enumerate() {
            let m = r.as_ref().expect("delivered");
            // CreateTime is the cluster's wall clock at the virtual send time.
            let sent_at = 1_600_000_000_000 + i as i64;
            assert!(
                (sent_at..sent_at + 2).contains(&m.timestamp),
                "record {i}: {m:?}"
            );
            // Offsets count up per partition in send order.
            let next = offsets.entry(m.partition).or_insert(0);
            assert_eq!(m.offset, *next, "record {i}: {m:?}");
            *next += 1;
        }
        assert_eq!(offsets.len(), 3, "records spread over every partition");
    }

    /// With `linger_ms = 0` a record handed over by a handle's fast path is sent on the
    /// spot: the core must not leave it to a timer at `now` (a driver's timer may round up,
    /// tokio's to the next millisecond).
    #[test]
    fn linger_zero_sends_reserved_records_without_a_timer() {
        let config = ProducerConfig::builder()
            .set("linger_ms", "0")
            .build()
            .expect("config");
        let mut p = ProducerSim::new(ClusterConfig::default(), &config, 3).expect("producer");
        p.partitions_for("t").expect("ran").expect("created");
        // Warm up: the leader's connection is open once one record was delivered.
        drop(p.send(ProducerRecord::new("t").partition(0).value("warm")));
        p.flush(None).expect("ran").expect("flushed");

        use kafkit_core::network::{ClientCore, Output};
        let now = p.sim.now();
        let core = p.sim.core();
        while core.poll_output().is_some() {}
        let shared = core.shared();
        let records: Vec<_> = (0..3)
            .map(|i| {
                let record = ProducerRecord::new("t").partition(0).value(format!("v{i}"));
                let size = shared.check_record(&record).expect("fits");
                assert!(shared.try_reserve(size));
                (None, record, size)
            })
            .collect();
        core.send_reserved_all(records, now);
        let mut transmits = 0;
        while let Some(o) = core.poll_output() {
            transmits += usize::from(matches!(o, Output::Transmit { .. }));
        }
        assert_eq!(transmits, 1, "one Produce with the three records, at once");
        assert!(
            core.poll_timeout().is_none_or(|t| t > now),
            "nothing left for a timer at now"
        );
    }

    #[test]
    fn partitions_for_and_metrics() {
        let config = ProducerConfig::default();
        let mut p = ProducerSim::new(ClusterConfig::default(), &config, 1).expect("producer");
        let partitions = p
            .partitions_for("auto")
            .expect("ran")
            .expect("auto-created");
        assert_eq!(partitions.len(), 3);
        drop(p.send(ProducerRecord::new("auto").value("v")));
        p.flush(Some(Duration::from_secs(5)))
            .expect("ran")
            .expect("flushed");
        assert_eq!(p.metrics().record_send_total, 1.0);
    }
}

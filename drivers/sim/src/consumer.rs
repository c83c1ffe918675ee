//! The consumer in the simulation: the very [`ConsumerCore`] the drivers run, against the
//! simulated cluster on virtual time.
//!
//! [`consumer_core`] builds a core for a simulated cluster (its brokers as bootstrap, a seed),
//! for simulations set up by hand. [`ConsumerSim`] is the whole set-up in one value: a
//! cluster, a simulation, and a consumer whose calls run the simulation until they complete,
//! answering them from the core's events as the drivers' `ConsumerHandler` does (and keeping
//! their deadlines, which the core does not keep, in virtual time). A
//! [`ConsumerSim`] can also take over the cluster of a [`ProducerSim`](crate::ProducerSim)
//! that wrote the records first ([`ConsumerSim::on_cluster`]).
//!
//! ```
//! use std::time::Duration;
//! use kafkit_core::config::{ConsumerConfig, ProducerConfig};
//! use kafkit_core::consumer::TopicPartition;
//! use kafkit_core::producer::ProducerRecord;
//! use kafkit_sim::{ClusterConfig, ConsumerSim, ProducerSim};
//!
//! // Write three records with the producer ...
//! let mut p = ProducerSim::new(ClusterConfig::default(), &ProducerConfig::default(), 42)?;
//! for i in 0..3 {
//!     p.send(ProducerRecord::new("orders").partition(0).value(format!("order {i}")));
//! }
//! p.flush(None)?.expect("flushed");
//! p.close(None)?.expect("closed");
//!
//! // ... and read them back on the same cluster, from where the producer's clock stopped.
//! let config = ConsumerConfig::builder().set("auto_offset_reset", "earliest").build()?;
//! let now = p.sim().now();
//! let mut c = ConsumerSim::on_cluster(p.cluster().clone(), &config, 42, now)?;
//! let orders0 = TopicPartition::new("orders", 0);
//! c.assign([orders0.clone()]);
//! let records = c.poll(Duration::from_secs(1))?.expect("records");
//! assert_eq!(records.count(), 3);
//! assert_eq!(c.position(&orders0)?.expect("a position"), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::{
    ConsumerCore, ConsumerError, ConsumerEvent, ConsumerMetrics, ConsumerRecords,
    OffsetAndTimestamp, OffsetsResult, OpId, PartitionLag, TopicPartition,
};
use kafkit_core::network::{ClusterView, NetOptions, PartitionInfo, SetupError};

use crate::{serve_cluster, Cluster, ClusterConfig, SimError, Simulation};

/// A [`ConsumerCore`] for the simulated `cluster`: `config` (validated) with the cluster's
/// brokers as bootstrap servers (whatever `bootstrap_servers` says) and every random choice
/// from `seed`. TLS and SASL options apply as in a driver (the ring provider, no system root
/// certificates).
pub fn consumer_core(
    config: &ConsumerConfig,
    cluster: &Cluster,
    seed: u64,
) -> Result<ConsumerCore, SetupError> {
    config.validate()?;
    let env = crate::sim_env(seed);
    let mut opts = NetOptions::from_config(&config.common, &env)?;
    opts.bootstrap = cluster
        .brokers()
        .iter()
        .map(|b| (b.host.clone(), b.port as u16))
        .collect();
    opts.seed = seed;
    Ok(ConsumerCore::new(config.clone(), opts))
}

/// A simulated cluster with one consumer on it, on virtual time.
///
/// The calls that wait in a real driver ([`ConsumerSim::poll`], [`ConsumerSim::position`],
/// the offset and metadata lookups) run the simulation until they complete or their deadline
/// passes in virtual time; they return `Err(SimError)` only if the simulation runs past its
/// step bound. The others act at the current virtual time and return at once.
/// Everything replays from the seed.
pub struct ConsumerSim {
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    max_poll_records: usize,
    api_timeout: Duration,
    /// The last op given to the core.
    last_op: u64,
}

impl std::fmt::Debug for ConsumerSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSim")
            .field("seed", &self.sim.seed())
            .field("elapsed", &self.sim.elapsed())
            .finish_non_exhaustive()
    }
}

/// Whether any of `events` is one of the changes `wanted` names.
fn any_of(events: Vec<ConsumerEvent>, wanted: fn(&ConsumerEvent) -> bool) -> bool {
    events.iter().any(wanted)
}

impl ConsumerSim {
    /// A cluster as `cluster` describes (its own seed replaced by `seed`) and a consumer as
    /// `consumer` describes (see [`consumer_core`]), with default links.
    pub fn new(
        mut cluster: ClusterConfig,
        consumer: &ConsumerConfig,
        seed: u64,
    ) -> Result<ConsumerSim, SetupError> {
        let start = Instant::now();
        cluster.seed = seed;
        let cluster = Rc::new(RefCell::new(Cluster::new(cluster, start)));
        ConsumerSim::on_cluster(cluster, consumer, seed, start)
    }

    /// A consumer as `consumer` describes on an existing cluster (one a
    /// [`ProducerSim`](crate::ProducerSim) wrote to, say), in a new simulation starting at
    /// `start`, with default links.
    ///
    /// The cluster sees time only as its callers pass it: `start` must not be earlier than
    /// the last instant the cluster was given (the other simulation's
    /// [`Simulation::now`]), and the other simulation should not run any more.
    pub fn on_cluster(
        cluster: Rc<RefCell<Cluster>>,
        consumer: &ConsumerConfig,
        seed: u64,
        start: Instant,
    ) -> Result<ConsumerSim, SetupError> {
        let core = consumer_core(consumer, &cluster.borrow(), seed)?;
        let mut sim = Simulation::new(core, seed, start);
        serve_cluster(&mut sim, &cluster);
        Ok(ConsumerSim {
            sim,
            cluster,
            max_poll_records: consumer.max_poll_records.max(1) as usize,
            api_timeout: Duration::from_millis(u64::from(consumer.default_api_timeout_ms)),
            last_op: 0,
        })
    }

    /// The simulation, for faults (`drop_connections`, `partition`, ...), link settings and
    /// virtual time.
    pub fn sim(&mut self) -> &mut Simulation<ConsumerCore> {
        &mut self.sim
    }

    /// The cluster, for faults (crashes, leader moves, hooks) and for writing or reading
    /// partition logs.
    pub fn cluster(&self) -> &Rc<RefCell<Cluster>> {
        &self.cluster
    }

    /// The consumer core itself.
    pub fn core(&mut self) -> &mut ConsumerCore {
        self.sim.core()
    }

    /// Replaces the assignment now (see [`ConsumerCore::assign`]).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let now = self.sim.now();
        self.sim.core().assign(partitions, now);
        self.sim.drain();
    }

    /// The consumer's metrics at the current virtual time.
    pub fn metrics(&mut self) -> ConsumerMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }

    /// Every assigned partition's position, high watermark and lag.
    pub fn lag(&mut self) -> BTreeMap<TopicPartition, PartitionLag> {
        self.sim.core().lag()
    }

    /// The assigned partitions.
    pub fn assignment(&mut self) -> BTreeSet<TopicPartition> {
        self.sim.core().assignment()
    }

    /// Up to `max_poll_records` records, running the simulation for at most `timeout` of
    /// virtual time until some come (see the drivers' `poll`); empty when none came in time.
    pub fn poll(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<ConsumerRecords, ConsumerError>, SimError> {
        let now = self.sim.now();
        let max = self.max_poll_records;
        match self.sim.core().take_records(max, now) {
            Ok(records) if records.is_empty() && !timeout.is_zero() => {}
            done => return Ok(done),
        }
        // As a driver's poll: wait for RecordsReady (or the end) until the deadline, then
        // take again. Events from before the wait are stale: take_records armed a new one.
        self.sim.take_events();
        self.sim.core().set_poll_waiting(true);
        let waited = self.sim.run_until_deadline(now + timeout, |s| {
            any_of(s.take_events(), |e| {
                matches!(e, ConsumerEvent::RecordsReady | ConsumerEvent::Closed)
            })
        });
        self.sim.core().set_poll_waiting(false);
        waited?;
        let now = self.sim.now();
        Ok(self.sim.core().take_records(max, now))
    }

    /// Sets the next offset to read of an assigned partition.
    pub fn seek(&mut self, partition: &TopicPartition, offset: i64) -> Result<(), ConsumerError> {
        let now = self.sim.now();
        let r = self.sim.core().seek(partition, offset, now);
        self.sim.drain();
        r
    }

    /// Moves the partitions (every assigned one when empty) to their earliest offsets.
    pub fn seek_to_beginning(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        let now = self.sim.now();
        let r = self.sim.core().seek_to_beginning(partitions, now);
        self.sim.drain();
        r
    }

    /// Moves the partitions (every assigned one when empty) to their ends.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        let now = self.sim.now();
        let r = self.sim.core().seek_to_end(partitions, now);
        self.sim.drain();
        r
    }

    /// The offset of the next record the partition will return, running the simulation (up
    /// to `default_api_timeout_ms` of virtual time) while an offset reset is in progress.
    pub fn position(
        &mut self,
        partition: &TopicPartition,
    ) -> Result<Result<i64, ConsumerError>, SimError> {
        let deadline = self.sim.now() + self.api_timeout;
        loop {
            match self.sim.core().position(partition) {
                Ok(Some(p)) => return Ok(Ok(p)),
                Err(e) => return Ok(Err(e)),
                Ok(None) => {}
            }
            let now = self.sim.now();
            if now >= deadline {
                return Ok(Err(ConsumerError::Timeout {
                    operation: "position",
                    after: self.api_timeout,
                }));
            }
            if self.sim.core().is_closed() {
                return Ok(Err(ConsumerError::Closed));
            }
            self.sim.take_events();
            self.sim.run_until_deadline(deadline, |s| {
                any_of(s.take_events(), |e| {
                    matches!(e, ConsumerEvent::PositionsChanged | ConsumerEvent::Closed)
                })
            })?;
        }
    }

    /// The partition's high watermark as of its last fetch (`None` before one).
    pub fn highwater(&mut self, partition: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        self.sim.core().highwater(partition)
    }

    /// Stops fetching the partitions.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        let r = self.sim.core().pause(partitions);
        self.sim.drain();
        r
    }

    /// Fetches the partitions again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        let now = self.sim.now();
        let r = self.sim.core().resume(partitions, now);
        self.sim.drain();
        r
    }

    /// The paused partitions.
    pub fn paused(&mut self) -> BTreeSet<TopicPartition> {
        self.sim.core().paused()
    }

    /// ListOffsets for `query` (timestamp, or -2 earliest, -1 latest, per partition), run to
    /// completion.
    fn list_offsets(
        &mut self,
        query: BTreeMap<TopicPartition, i64>,
    ) -> Result<OffsetsResult, SimError> {
        let now = self.sim.now();
        let timeout = self.api_timeout;
        let op = self.op();
        self.sim.core().list_offsets(op, query, timeout, now);
        match self.wait_for(op)? {
            ConsumerEvent::Offsets { result, .. } => Ok(result),
            _ => unreachable!("an operation id is answered by its own kind of event"),
        }
    }

    fn list_at(
        &mut self,
        partitions: &[TopicPartition],
        timestamp: i64,
    ) -> Result<Result<BTreeMap<TopicPartition, i64>, ConsumerError>, SimError> {
        let query = partitions
            .iter()
            .map(|tp| (tp.clone(), timestamp))
            .collect();
        Ok(self.list_offsets(query)?.map(|found| {
            found
                .into_iter()
                .map(|(tp, o)| (tp, o.map_or(-1, |o| o.offset)))
                .collect()
        }))
    }

    /// The earliest offset of each partition (assigned or not).
    pub fn beginning_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Result<BTreeMap<TopicPartition, i64>, ConsumerError>, SimError> {
        self.list_at(partitions, -2)
    }

    /// The end offset of each partition (assigned or not).
    pub fn end_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Result<BTreeMap<TopicPartition, i64>, ConsumerError>, SimError> {
        self.list_at(partitions, -1)
    }

    /// For each partition, the earliest offset whose timestamp is at or after the one given,
    /// or `None` when no record is that recent.
    pub fn offsets_for_times(
        &mut self,
        query: BTreeMap<TopicPartition, i64>,
    ) -> Result<Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumerError>, SimError>
    {
        self.list_offsets(query)
    }

    /// Metadata (every topic when `topics` is `None`), run to completion.
    fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<Result<Arc<ClusterView>, ConsumerError>, SimError> {
        let now = self.sim.now();
        let op = self.op();
        self.sim.core().fetch_metadata(op, topics, now);
        match self.wait_for(op)? {
            ConsumerEvent::Metadata { result, .. } => Ok(result),
            _ => unreachable!("an operation id is answered by its own kind of event"),
        }
    }

    /// The partitions of `topic`, or `None` if it does not exist.
    pub fn partitions_for_topic(
        &mut self,
        topic: &str,
    ) -> Result<Result<Option<Vec<PartitionInfo>>, ConsumerError>, SimError> {
        Ok(self.metadata(Some(vec![topic.to_owned()]))?.map(|view| {
            view.topics
                .get(topic)
                .filter(|t| t.error.is_ok())
                .map(|t| t.partitions.clone())
        }))
    }

    /// The names of every topic the cluster shows this client.
    pub fn topics(&mut self) -> Result<Result<BTreeSet<String>, ConsumerError>, SimError> {
        Ok(self.metadata(None)?.map(|view| {
            view.topics
                .values()
                .filter(|t| t.error.is_ok())
                .map(|t| t.name.clone())
                .collect()
        }))
    }

    /// Closes the consumer now ([`ConsumerCore::abort`]: this consumer is in no group):
    /// connections close, buffered records are dropped and later polls fail with
    /// [`ConsumerError::Closed`].
    pub fn close(&mut self) {
        self.sim.core().abort();
        self.sim.drain();
    }

    /// Runs for `duration` of virtual time (the consumer keeps fetching for its assignment).
    /// Events nobody waits for are dropped.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        self.sim.run_for(duration)?;
        self.sim.take_events();
        Ok(())
    }

    /// Steps until `done` holds (see [`Simulation::run_until`]: an error naming the seed past
    /// the step bound, `false` if nothing is left to happen first).
    pub fn run_until(
        &mut self,
        done: impl FnMut(&mut Simulation<ConsumerCore>) -> bool,
    ) -> Result<bool, SimError> {
        self.sim.run_until(done)
    }

    fn op(&mut self) -> OpId {
        self.last_op += 1;
        OpId(self.last_op)
    }

    /// Runs until the core reports the result of `awaited`, and returns it. Every other event
    /// is stale (an operation or wait whose caller already returned) and dropped.
    fn wait_for(&mut self, awaited: OpId) -> Result<ConsumerEvent, SimError> {
        let mut found = None;
        let done = |s: &mut Simulation<ConsumerCore>| {
            for event in s.take_events() {
                let op = match &event {
                    ConsumerEvent::Offsets { op, .. } | ConsumerEvent::Metadata { op, .. } => *op,
                    // Kinds no call here waits for by op.
                    _ => continue,
                };
                if op == awaited {
                    found = Some(event);
                }
            }
            found.is_some()
        };
        if !self.sim.run_until(done)? {
            // Every consumer call completes by a deadline the core keeps: an idle simulation
            // with a call still open is a bug in the core.
            panic!(
                "simulation (seed {}) went idle before the consumer answered",
                self.sim.seed()
            );
        }
        Ok(found.expect("found"))
    }
}

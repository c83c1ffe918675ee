//! The producer for programs without an async runtime: [`Producer`] runs a [`ProducerCore`] on
//! its own loop thread; its calls block the calling thread until the loop answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_executor::block_on;
use kafkit_core::config::ProducerConfig;
use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::driver::{
    MillisecondClock, OpenWriters, ProducerHandle, ProducerHandler, TypedProducerHandle, WallClock,
};
use kafkit_core::network::{NetOptions, PartitionInfo, SetupError};
use kafkit_core::producer::{
    DeliveryFuture, ProduceError, ProducerCore, ProducerMetrics, ProducerRecord, RecordMetadata,
    Serializer,
};

use crate::event_loop::spawn_loop;
use crate::{driver_env, SocketOptions};

/// Why a client could not be started.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The network could not be set up from the common options: a bad `bootstrap_servers`
    /// entry, unreadable TLS files, missing SASL credentials, an invalid option.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The producer refused its configuration ([`ProduceError::InvalidConfig`]).
    #[error(transparent)]
    Producer(#[from] ProduceError),
}

/// The wall clock record timestamps (CreateTime) are read from: the system time in
/// milliseconds since the Unix epoch, like Java's `System.currentTimeMillis()`, through one
/// [`MillisecondClock`] per sending thread (one monotonic reading per record).
fn system_wall_clock() -> WallClock {
    thread_local! {
        static CLOCK: MillisecondClock = const { MillisecondClock::new() };
    }
    Arc::new(|| CLOCK.with(|c| c.read(Instant::now(), SystemTime::now)))
}

/// Blocking waits on a [`DeliveryFuture`] (or any future), for code without an async runtime.
///
/// ```no_run
/// use kafkit_blocking::{Producer, Wait};
/// use kafkit_core::config::ProducerConfig;
/// use kafkit_core::producer::ProducerRecord;
///
/// let producer = Producer::start(&ProducerConfig::default())?;
/// let delivery = producer.enqueue(ProducerRecord::new("orders").value("42 EUR"))?;
/// let metadata = delivery.wait()?;
/// println!("offset {}", metadata.offset);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Wait: std::future::Future + Sized {
    /// Blocks the calling thread until the future resolves. Do not call it from a delivery
    /// callback: callbacks run on the producer's loop thread, which would then wait on itself.
    fn wait(self) -> Self::Output {
        block_on(self)
    }
}

impl Wait for DeliveryFuture {}

/// A Kafka producer on its own loop thread (kafka-python's `KafkaProducer`, Java's
/// `KafkaProducer`). Cheap to clone and usable from any thread; the loop thread stops when the
/// last clone is dropped, failing what is still buffered with [`ProduceError::Closed`]: call
/// [`Producer::close`] (or [`Producer::flush`]) first to deliver it.
///
/// [`Producer::send`] blocks until one record is acknowledged (Java's `send(r).get()`);
/// [`Producer::enqueue`] returns once the record is buffered (Java's `send(r)`), so many can
/// be in flight at once:
///
/// ```no_run
/// use kafkit_blocking::{Producer, Wait};
/// use kafkit_core::config::ProducerConfig;
/// use kafkit_core::producer::ProducerRecord;
///
/// let config = ProducerConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let producer = Producer::start(&config)?;
/// // Fire many, then wait for them all.
/// let deliveries: Vec<_> = (0..100)
///     .map(|i| producer.enqueue(ProducerRecord::new("events").key(format!("k{i}")).value("v")))
///     .collect::<Result<_, _>>()?;
/// producer.flush(None)?;
/// for d in deliveries {
///     let m = d.wait()?;
///     println!("{}-{}@{}", m.topic, m.partition, m.offset);
/// }
/// producer.close(None)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: ProducerHandle,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Starts the producer's loop thread. Connections open as records are sent.
    pub fn start(config: &ProducerConfig) -> Result<Self, StartError> {
        let opts = NetOptions::from_config(&config.common, &driver_env())?;
        let socket = SocketOptions::from_config(&config.common);
        let mut core = ProducerCore::new(config.clone(), opts)?;
        // Handles stamp their records on the sending thread; the core's own clock serves
        // records stamped in the loop (a core-level send without a timestamp).
        let wall_clock = system_wall_clock();
        core.handle_wall_clock(Instant::now(), wall_clock());
        let shared = core.shared();
        let writers = OpenWriters::new();
        let tx = spawn_loop(
            "kafkit-producer",
            core,
            ProducerHandler::default(),
            socket,
            writers.clone(),
        )
        .with_writers(writers);
        Ok(Producer {
            handle: ProducerHandle::new(tx, shared, wall_clock),
        })
    }

    /// Sends `record` and blocks until the brokers acknowledged it (with the configured
    /// `acks`), returning its [`RecordMetadata`], or why it was not delivered: Java's
    /// `producer.send(record).get()`.
    ///
    /// One record at a time is slow (each waits at least one round trip, and `linger_ms`);
    /// to keep many in flight, [`Producer::enqueue`] them and wait on the returned
    /// [`DeliveryFuture`]s later, or use [`Producer::send_with_callback`].
    #[doc(alias = "get")]
    pub fn send(&self, record: ProducerRecord) -> Result<RecordMetadata, ProduceError> {
        block_on(self.handle.send(record))
    }

    /// Queues `record` and returns the future of its outcome (wait on it with [`Wait::wait`],
    /// or `.await` it): the two-stage form of [`Producer::send`], Java's
    /// `producer.send(record)` (which returns a `Future`) and rdkafka's `produce`. Returns
    /// once the record is in the producer's buffer: at once while
    /// buffer memory is free, otherwise after blocking for room, up to `max_block_ms`
    /// ([`ProduceError::MaxBlockTimeout`]). Errors found before queueing (a record above
    /// `max_request_size`, a closed producer) come back here.
    #[doc(alias = "produce")]
    pub fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        block_on(self.handle.enqueue(record))
    }

    /// Queues `record` like [`Producer::enqueue`]; `callback` gets its outcome (Java's
    /// `producer.send(record, callback)`). Callbacks run on
    /// the producer's loop thread: keep them short and never call a blocking method of the
    /// producer (or [`Wait::wait`]) from one.
    pub fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata, ProduceError>) + Send + 'static,
    ) -> Result<(), ProduceError> {
        block_on(self.handle.send_with_callback(record, callback))
    }

    /// Queues `record` like [`Producer::enqueue`] without ever blocking: fails at once if
    /// buffer memory is exhausted.
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        self.handle.try_send(record)
    }

    /// Sends everything buffered now (ignoring `linger_ms`) and blocks until each of those
    /// records is delivered or failed, or `timeout` passes ([`ProduceError::FlushTimeout`]).
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), ProduceError> {
        block_on(self.handle.flush(timeout))
    }

    /// Delivers what is buffered (within `timeout`; `None` waits as long as delivery takes),
    /// fails the rest with [`ProduceError::Closed`] and refuses later sends. Every clone is
    /// closed. Returns once everything is written to the sockets (acks=0 records included),
    /// so the program may exit right after.
    pub fn close(&self, timeout: Option<Duration>) -> Result<(), ProduceError> {
        block_on(self.handle.close(timeout))
    }

    /// The partitions of `topic` (fetching its metadata if needed, up to `max_block_ms`).
    pub fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, ProduceError> {
        block_on(self.handle.partitions_for(topic))
    }

    /// The producer's metrics now (kafka-python's names through
    /// [`ProducerMetrics::to_map`]).
    pub fn metrics(&self) -> Result<ProducerMetrics, ProduceError> {
        block_on(self.handle.metrics())
    }

    /// Initializes the transactional producer (needs `transactional_id`), fencing earlier
    /// instances with the same id. See [`ProducerHandle::init_transactions`].
    pub fn init_transactions(&self) -> Result<(), ProduceError> {
        block_on(self.handle.init_transactions())
    }

    /// Opens a transaction. See [`ProducerHandle::begin_transaction`].
    pub fn begin_transaction(&self) -> Result<(), ProduceError> {
        block_on(self.handle.begin_transaction())
    }

    /// Adds a consumer group's offsets to the open transaction. See
    /// [`ProducerHandle::send_offsets_to_transaction`].
    pub fn send_offsets_to_transaction(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: GroupMetadata,
    ) -> Result<(), ProduceError> {
        block_on(self.handle.send_offsets_to_transaction(offsets, group))
    }

    /// Delivers the transaction's records and commits it. See
    /// [`ProducerHandle::commit_transaction`].
    pub fn commit_transaction(&self) -> Result<(), ProduceError> {
        block_on(self.handle.commit_transaction())
    }

    /// Aborts the open transaction. See [`ProducerHandle::abort_transaction`].
    pub fn abort_transaction(&self) -> Result<(), ProduceError> {
        block_on(self.handle.abort_transaction())
    }

    /// The async handle on the same producer, for code that mixes blocking and async calls.
    pub fn handle(&self) -> &ProducerHandle {
        &self.handle
    }

    /// A producer of typed keys and values: `key` and `value` serialize them to bytes.
    ///
    /// ```no_run
    /// use kafkit_blocking::Producer;
    /// use kafkit_core::config::ProducerConfig;
    /// use kafkit_core::producer::serializer::{LongSerializer, StringSerializer};
    ///
    /// let producer = Producer::start(&ProducerConfig::default())?
    ///     .with_serializers::<str, i64>(StringSerializer, LongSerializer);
    /// let written = producer.send("balances", Some("alice"), Some(&42))?;
    /// println!("offset {}", written.offset);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_serializers<K: ?Sized, V: ?Sized>(
        self,
        key: impl Serializer<K> + Send + Sync + 'static,
        value: impl Serializer<V> + Send + Sync + 'static,
    ) -> TypedProducer<K, V> {
        TypedProducer {
            typed: self.handle.clone().with_serializers(key, value),
            producer: self,
        }
    }
}

/// A [`Producer`] of typed keys and values, serialized by the serializers given to
/// [`Producer::with_serializers`]. Cheap to clone.
pub struct TypedProducer<K: ?Sized, V: ?Sized> {
    typed: TypedProducerHandle<K, V>,
    producer: Producer,
}

impl<K: ?Sized, V: ?Sized> Clone for TypedProducer<K, V> {
    fn clone(&self) -> Self {
        TypedProducer {
            typed: self.typed.clone(),
            producer: self.producer.clone(),
        }
    }
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for TypedProducer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer").finish_non_exhaustive()
    }
}

impl<K: ?Sized, V: ?Sized> TypedProducer<K, V> {
    /// Serializes `key` and `value`, sends them to `topic` and blocks until the brokers
    /// acknowledged them, as [`Producer::send`] does (Java's
    /// `producer.send(new ProducerRecord<>(topic, key, value)).get()`). Serialization errors
    /// are [`ProduceError::Serialize`].
    #[doc(alias = "get")]
    pub fn send(
        &self,
        topic: &str,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<RecordMetadata, ProduceError> {
        block_on(self.typed.send(topic, key, value))
    }

    /// Serializes `key` and `value` and queues them for `topic`, returning the future of
    /// their outcome, as [`Producer::enqueue`] does (Java's
    /// `producer.send(new ProducerRecord<>(topic, key, value))`).
    #[doc(alias = "produce")]
    pub fn enqueue(
        &self,
        topic: &str,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        block_on(self.typed.enqueue(topic, key, value))
    }

    /// Like [`TypedProducer::send`], with the partition, headers and timestamp of `record`
    /// (whose own key and value are replaced by the serialized `key` and `value`).
    pub fn send_record(
        &self,
        record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<RecordMetadata, ProduceError> {
        block_on(self.typed.send_record(record, key, value))
    }

    /// Like [`TypedProducer::enqueue`], with the partition, headers and timestamp of
    /// `record` (whose own key and value are replaced by the serialized `key` and `value`).
    pub fn enqueue_record(
        &self,
        record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        block_on(self.typed.enqueue_record(record, key, value))
    }

    /// The untyped producer underneath, for [`Producer::flush`], [`Producer::close`],
    /// [`Producer::metrics`] and records already in bytes.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The async handle on the same producer.
    pub fn handle(&self) -> &TypedProducerHandle<K, V> {
        &self.typed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn producers_are_send_sync_and_clone() {
        assert_send_sync_clone::<Producer>();
        assert_send_sync_clone::<TypedProducer<str, [u8]>>();
    }

    #[test]
    fn start_errors_say_which_part_refused() {
        let mut config = ProducerConfig::default();
        config.common.bootstrap_servers = vec!["no-port".into()];
        let err = Producer::start(&config).unwrap_err();
        assert!(
            matches!(err, StartError::Setup(SetupError::Config(_))),
            "{err:?}"
        );
        assert!(err.to_string().contains("no-port"), "{err}");

        let mut config = ProducerConfig::default();
        // Transactions need idempotence: the producer core refuses this pair.
        config.transactional_id = Some("tx".into());
        config.enable_idempotence = Some(false);
        let err = Producer::start(&config).unwrap_err();
        assert!(
            matches!(err, StartError::Producer(ProduceError::InvalidConfig(_))),
            "{err:?}"
        );
    }

    #[test]
    fn a_dropped_producer_fails_what_it_buffered() {
        // Nothing listens on port 1: the record stays buffered until the last handle is gone.
        let config = ProducerConfig::builder()
            .bootstrap_servers("127.0.0.1:1")
            .build()
            .expect("config");
        let producer = Producer::start(&config).expect("started");
        let delivery = producer
            .enqueue(ProducerRecord::new("t").partition(0).value("v"))
            .expect("buffered");
        let clone = producer.clone();
        drop(producer);
        drop(clone);
        assert!(matches!(delivery.wait(), Err(ProduceError::Closed)));
    }
}

//! The producer on tokio: [`producer`] starts a [`ProducerCore`] on the generic event loop and
//! hands out its [`ProducerHandle`].

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use kafkit_core::config::ProducerConfig;
use kafkit_core::driver::{
    command_queue, MillisecondClock, OpenWriters, ProducerHandle, ProducerHandler, WallClock,
};
use kafkit_core::network::{NetOptions, SetupError};
use kafkit_core::producer::{ProduceError, ProducerCore};

use crate::{driver_env, run, SocketOptions};

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
pub(crate) fn system_wall_clock() -> WallClock {
    thread_local! {
        static CLOCK: MillisecondClock = const { MillisecondClock::new() };
    }
    Arc::new(|| CLOCK.with(|c| c.read(Instant::now(), SystemTime::now)))
}

/// Starts a producer on the current tokio runtime and returns its handle. Must be called from
/// within a runtime.
///
/// The handle is cheap to clone. The producer's task stops when the last clone is dropped;
/// call [`ProducerHandle::close`] (or [`ProducerHandle::flush`]) first to deliver what is
/// still buffered.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kafkit_core::config::ProducerConfig;
/// use kafkit_core::producer::ProducerRecord;
///
/// let config = ProducerConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let producer = kafkit_tokio::producer(&config)?;
/// // `send` waits for the acknowledgement (Java's `send(r).get()`)...
/// let metadata = producer
///     .send(ProducerRecord::new("orders").key("order-1").value("42 EUR"))
///     .await?;
/// println!("written at {}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
/// // ...`enqueue` returns once the record is buffered (Java's `send(r)`), with the future
/// // of its acknowledgement, so many records can be in flight.
/// let mut deliveries = Vec::new();
/// for i in 0..100 {
///     deliveries.push(producer.enqueue(ProducerRecord::new("orders").value(format!("{i}"))).await?);
/// }
/// for delivery in deliveries {
///     delivery.await?;
/// }
/// producer.close(None).await?;
/// # Ok(()) }
/// ```
pub fn producer(config: &ProducerConfig) -> Result<ProducerHandle, StartError> {
    let opts = NetOptions::from_config(&config.common, &driver_env())?;
    let socket = SocketOptions::from_config(&config.common);
    let mut core = ProducerCore::new(config.clone(), opts)?;
    // Handles stamp their records on the sending thread; the core's own clock serves
    // records stamped in the loop (a core-level send without a timestamp).
    let wall_clock = system_wall_clock();
    core.handle_wall_clock(Instant::now(), wall_clock());
    let shared = core.shared();
    let (tx, rx) = command_queue();
    let writers = OpenWriters::new();
    let tx = tx.with_writers(writers.clone());
    tokio::spawn(run(core, ProducerHandler::default(), rx, socket, writers));
    Ok(ProducerHandle::new(tx, shared, wall_clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_errors_say_which_part_refused() {
        let mut config = ProducerConfig::default();
        config.common.bootstrap_servers = vec!["no-port".into()];
        let err = producer(&config).unwrap_err();
        assert!(
            matches!(err, StartError::Setup(SetupError::Config(_))),
            "{err:?}"
        );

        let mut config = ProducerConfig::default();
        // Transactions need idempotence: the producer core refuses this pair.
        config.transactional_id = Some("tx".into());
        config.enable_idempotence = Some(false);
        let err = producer(&config).unwrap_err();
        assert!(
            matches!(err, StartError::Producer(ProduceError::InvalidConfig(_))),
            "{err:?}"
        );
    }

    #[test]
    fn the_wall_clock_is_the_system_time() {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((system_wall_clock()() - now).abs() < 10_000);
    }
}

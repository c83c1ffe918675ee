//! The producer on smol: [`producer`] starts a [`ProducerCore`] on the generic event loop and
//! hands out its [`ProducerHandle`].

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_core::config::ProducerConfig;
use kafkit_core::driver::{command_queue, ProducerHandle, ProducerHandler, WallClock};
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
/// milliseconds since the Unix epoch, like Java's `System.currentTimeMillis()`.
///
/// It is read once per record sent, so it is kept cheap: each thread remembers the millisecond
/// it last read and the monotonic instant at which that millisecond ends, and while the
/// monotonic clock is before that instant answers from it (one clock read and a comparison
/// instead of reading and converting the system time). The end is computed from a monotonic
/// reading taken just before the system time, so it errs early: a record never gets a
/// millisecond that has already ended. A new millisecond reads the system time again, so a
/// step of the system clock shows within a millisecond.
pub(crate) fn system_wall_clock() -> WallClock {
    Arc::new(|| {
        thread_local! {
            /// The instant the millisecond last read on this thread ends, and that millisecond.
            static LAST: Cell<Option<(Instant, i64)>> = const { Cell::new(None) };
        }
        let now = Instant::now();
        LAST.with(|last| match last.get() {
            Some((ends, ms)) if now < ends => ms,
            _ => {
                let Ok(d) = SystemTime::now().duration_since(UNIX_EPOCH) else {
                    return 0;
                };
                let ms = (d.as_secs() as i64).saturating_mul(1000) + i64::from(d.subsec_millis());
                let left = 1_000_000 - d.subsec_nanos() % 1_000_000;
                last.set(Some((now + Duration::from_nanos(left.into()), ms)));
                ms
            }
        })
    })
}

/// Starts a producer on a detached smol task and returns its handle. The loop needs an
/// executor polling it: smol's global executor, or any `block_on` around the caller.
///
/// The handle is cheap to clone. The producer's task stops when the last clone is dropped;
/// call [`ProducerHandle::close`] (or [`ProducerHandle::flush`]) first to deliver what is
/// still buffered.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> { smol::block_on(async {
/// use kafkit_core::config::ProducerConfig;
/// use kafkit_core::producer::ProducerRecord;
///
/// let config = ProducerConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let producer = kafkit_smol::producer(&config)?;
/// let delivery = producer
///     .send(ProducerRecord::new("orders").key("order-1").value("42 EUR"))
///     .await?;
/// let metadata = delivery.await?;
/// println!("written at {}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
/// producer.close(None).await?;
/// # Ok(()) }) }
/// ```
pub fn producer(config: &ProducerConfig) -> Result<ProducerHandle, StartError> {
    let opts = NetOptions::from_config(&config.common, &driver_env())?;
    let socket = SocketOptions::from_config(&config.common);
    let core = ProducerCore::new(config.clone(), opts)?;
    let shared = core.shared();
    let (tx, rx) = command_queue();
    smol::spawn(run(core, ProducerHandler::default(), rx, socket)).detach();
    Ok(ProducerHandle::new(tx, shared, system_wall_clock()))
}

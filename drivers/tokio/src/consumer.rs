//! The consumer on tokio: [`consumer`] starts a [`ConsumerCore`] on the generic event loop and
//! hands out its [`ConsumerHandle`].

use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::ConsumerCore;
use kafkit_core::driver::{command_queue, ConsumerHandle, ConsumerHandler, OpenWriters};
use kafkit_core::network::SetupError;

use crate::{driver_env, run, SocketOptions, StartError};

/// Starts a consumer on the current tokio runtime and returns its handle; it reads partitions
/// the application assigns, or joins a group on `subscribe` (with a `group_id`). Must be
/// called from within a runtime. Connections open once partitions are assigned (or a group
/// is joined) or offsets and metadata are asked for.
///
/// The handle is cheap to clone. The consumer's task stops when the last clone (and every
/// stream and cursor made from it) is dropped, or at [`ConsumerHandle::close`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kafkit_core::config::ConsumerConfig;
/// use kafkit_core::consumer::TopicPartition;
///
/// let config = ConsumerConfig::builder()
///     .bootstrap_servers("localhost:9092")
///     .set("auto_offset_reset", "earliest")
///     .build()?;
/// let consumer = kafkit_tokio::consumer(&config)?;
/// consumer.assign(vec![TopicPartition::new("orders", 0)]).await?;
/// let mut records = consumer.stream();
/// while let Some(record) = records.recv().await {
///     let record = record?;
///     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// # Ok(()) }
/// ```
pub fn consumer(config: &ConsumerConfig) -> Result<ConsumerHandle, StartError> {
    config.validate().map_err(SetupError::from)?;
    let socket = SocketOptions::from_config(&config.common);
    let core = ConsumerCore::from_config(config.clone(), &driver_env())?;
    let (tx, rx) = command_queue();
    let writers = OpenWriters::new();
    let tx = tx.with_writers(writers.clone());
    tokio::spawn(run(core, ConsumerHandler::default(), rx, socket, writers));
    Ok(ConsumerHandle::new(tx, config))
}

//! # kafkit-async-std
//!
//! async-std is discontinued upstream in favour of smol, and both run on the same async-io
//! reactor. This crate is therefore `kafkit-smol` under the name async-std users look for: the
//! same event loop, the same handles. Clients started here run on smol's executor threads, so
//! they work from async-std tasks and from any other async-io based executor alike.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use kafkit_smol::{admin, AdminHandle};
pub use kafkit_smol::{
    consumer, driver_env, low_level_client, producer, run, ConsumerHandle, LowLevelHandle,
    ProducerHandle, RecordCursor, RecordStream, SocketOptions, StartError, TypedConsumer,
    TypedProducerHandle,
};

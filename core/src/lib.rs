//! # kafkit-core
//!
//! The sans-IO heart of kafkit, a Kafka client in pure Rust. This crate never opens a socket,
//! reads a clock, spawns a thread or draws a random number of its own: it is fed bytes,
//! timestamps and entropy and answers with bytes to send and events. The drivers
//! (`kafkit-tokio`, `kafkit-smol`, `kafkit-async-std` and `kafkit-blocking` on real sockets,
//! `kafkit-sim` on a simulated cluster and virtual time) wire it to I/O; applications usually
//! reach it through the `kafkit` facade crate.
//!
//! The modules:
//! - [`codec`]: wire primitives with bounds-checked, non-panicking decoding.
//! - [`protocol`]: every Kafka request and response, generated from Kafka's own message
//!   definitions by `kafkit-codegen`, with request and response headers, [`protocol::ApiKey`]
//!   and [`protocol::ErrorCode`].
//! - [`records`]: record batches (magic 2) and legacy message sets (magic 0 and 1).
//! - [`compression`]: gzip, snappy, lz4 and zstd with capped decompression.
//! - [`sasl`]: PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER as pure state machines.
//! - [`config`]: typed configuration with kafka-python and Java option names.
//! - [`network`]: the sans-IO network layer (connections, version negotiation, TLS, SASL,
//!   metadata, routing, backoff) and the driving contract every driver follows.
//! - [`driver`]: the layer between the cores and applications' handles (commands in, events
//!   turned into futures and callbacks) and the one event loop every socket driver runs,
//!   generic over a small [`driver::Runtime`] trait.
//! - [`consumer`]: the consumer core: fetcher, fetch sessions, the memory-bounded buffer,
//!   positions, offset lookups, and the group member (the classic group protocol, committed
//!   offsets, rebalance listeners) with its assignors.
//! - [`producer`]: the producer core: accumulator, sender, idempotence, partitioners
//!   (Java-compatible murmur2, sticky and round robin) and key/value serializers.
//! - [`admin`]: the admin core: topics, partitions, configs, consumer groups, ACLs, records
//!   (DeleteRecords), log dirs and the cluster description, each call routed and retried
//!   until its deadline.
//!
//! Every core takes application commands named by an [`OpId`] and reports their outcomes
//! as events drained from `poll_output`; see [`network`] for the whole driving contract, and
//! `examples/examples/embed_mio.rs` for a core driven from a hand-written loop.
// No unsafe code, with one exception: `records::crc32c`, the CRC-32C of record batches, uses
// x86_64 SIMD intrinsics (carry-less multiply folding), measured at about twice the speed of
// the `crc32c` crate (see BENCHMARKS.md). Only that module allows `unsafe`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod codec;
pub mod compression;
pub mod config;
pub mod consumer;
mod deadline;
pub mod driver;
mod lifecycle;
pub mod network;
mod op;
pub mod producer;
pub mod protocol;
pub mod records;
pub mod sasl;

pub use op::OpId;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

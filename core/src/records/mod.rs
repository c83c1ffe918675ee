//! Record batches (magic 2) and legacy message sets (magic 0 and 1).
//!
//! What a Produce request carries and a Fetch response returns in its `records` field is a
//! *record set*: batches laid end to end. Every batch of every magic starts with
//! `baseOffset: int64, length: int32` and has its magic byte at offset 16, so a set can hold
//! batches of mixed formats and is read one batch at a time with [`RecordSet`].
//!
//! # Pieces
//! - [`RecordBatchBuilder`] writes a magic 2 batch the way a producer fills one: records are
//!   appended one at a time straight into the batch buffer, and the 61-byte header and the
//!   CRC are filled in by [`RecordBatchBuilder::finish`] (compressing the records section first
//!   when a codec is chosen). There is no per-record allocation.
//! - [`RecordBatch`] is a decoded magic 2 batch: its [`BatchHeader`] plus the records section
//!   (decompressed if needed), whose records [`RecordBatch::records`] decodes lazily. Keys,
//!   values and header sections are [`bytes::Bytes`] slices of the input (uncompressed) or of
//!   the one decompressed buffer, never copies, and a record's [`Headers`] are only parsed
//!   when looked at. [`RecordBatch::record_refs`] yields [`RecordRef`]s that borrow from the
//!   batch instead, which avoids even the per-record reference counting.
//! - [`LegacyBatch`] is one top-level message of magic 0 or 1; a compressed wrapper's inner
//!   messages are decoded into the same [`Record`] type with absolute offsets.
//!   [`LegacyMessageSetBuilder`] writes such sets for old brokers.
//! - [`ControlRecord`] is a transaction marker (or another control record) read from a
//!   control batch.
//!
//! # Example
//! ```
//! use kafkit_core::compression::Compression;
//! use kafkit_core::records::{DecodeOptions, Header, RecordBatchBuilder, RecordSet};
//!
//! // Producer side: append as records arrive, finish when the batch is sent.
//! let mut builder = RecordBatchBuilder::new(Compression::Lz4).producer(1000, 0, 0);
//! builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[Header::new("h", "v")])?;
//! builder.append(1_700_000_000_001, None, None, &[])?; // null key, tombstone
//! let batch = builder.finish()?;
//!
//! // Consumer side: read every batch of a fetched record set.
//! for batch in RecordSet::new(batch, DecodeOptions::default()) {
//!     let batch = batch?;
//!     for record in batch.records() {
//!         let record = record?;
//!         println!("{} {:?}", record.offset, record.value);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decoding contract
//! - Nothing here panics or allocates more than the input justifies, whatever the bytes:
//!   every length is checked against the remaining input, and decompression is capped by
//!   [`DecodeOptions::max_decompressed_size`].
//! - A single-batch decoder ([`RecordBatch::decode`], [`LegacyBatch::decode`]) is strict: its
//!   input must be exactly one complete batch, and anything short of that is an error.
//! - A set reader ([`RecordSet`]) treats a truncated *final* batch as the broker cutting the
//!   response at its byte limit: iteration ends without an error and
//!   [`RecordSet::partial_tail`] tells how many bytes were left. Anything else that is wrong
//!   (a bad CRC, an unknown magic or codec, a length below the minimum) is an error, after
//!   which the iterator ends.
//! - CRCs (CRC-32C for magic 2, CRC-32 for magic 0/1) are checked unless
//!   [`DecodeOptions::check_crcs`] is off.
//!
//! # Encoding contract
//! Builders write the exact bytes Kafka's Java client writes for the same input (same
//! base-timestamp choice, same compression framing), and fail with an
//! [`EncodeError`](crate::codec::EncodeError) only for values the wire cannot carry (a field
//! longer than `i32::MAX`, offset deltas that do not increase).

mod batch;
mod control;
pub mod crc32c;
mod header;
mod legacy;
mod legacy_encode;
mod record;
mod set;
mod wire;

pub use batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, Attributes, BatchHeader,
    RecordBatch, RecordBatchBuilder, RecordIter, RecordRefIter,
};
pub use control::{ControlRecord, ControlRecordType};
pub use header::{Header, HeaderIter, Headers};
pub use legacy::LegacyBatch;
pub use legacy_encode::{check_no_headers, LegacyMessageSetBuilder};
pub use record::{Record, RecordRef};
pub use set::{Batch, BatchRecords, RecordSet};

/// Magic byte of the original message format (Kafka 0.8-0.9).
pub const MAGIC_V0: i8 = 0;
/// Magic byte of the message format with timestamps (Kafka 0.10).
pub const MAGIC_V1: i8 = 1;
/// Magic byte of record batches (Kafka 0.11 and later).
pub const MAGIC_V2: i8 = 2;

/// Bytes before a batch's or message's length field ends: `baseOffset` and `length`.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a magic 2 batch header (everything before the first record).
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// "No timestamp" (magic 0 messages, empty batches).
pub const NO_TIMESTAMP: i64 = -1;
/// "No producer id" (non-idempotent producers).
pub const NO_PRODUCER_ID: i64 = -1;
/// "No producer epoch".
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// "No sequence number".
pub const NO_SEQUENCE: i32 = -1;
/// "No partition leader epoch" (what producers write; the broker fills it in).
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Which clock a batch's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer (attribute bit 3 clear).
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (attribute bit 3 set); every record's
    /// timestamp is then the batch's `maxTimestamp`.
    LogAppendTime,
}

/// Knobs of the decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's (and legacy message's) CRC. On by default; turning it off is what
    /// Kafka's `check.crcs=false` does.
    pub check_crcs: bool,
    /// Most bytes one compressed batch or wrapper message may decompress to; beyond it
    /// decoding fails with [`DecodeError::DecompressionLimit`](crate::codec::DecodeError).
    pub max_decompressed_size: usize,
    /// Leave out the inner messages of a legacy (magic 0/1) wrapper that are themselves
    /// compressed, which kafka-python's producer up to 1.2.4 wrote, instead of handing each
    /// out as one record whose value is still compressed (kafka-python's
    /// `skip_double_compressed_messages`). Off by default, as there.
    pub skip_double_compressed: bool,
}

impl DecodeOptions {
    /// The default cap on one batch's decompressed size: 128 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 128 << 20;
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            check_crcs: true,
            max_decompressed_size: Self::DEFAULT_MAX_DECOMPRESSED_SIZE,
            skip_double_compressed: false,
        }
    }
}

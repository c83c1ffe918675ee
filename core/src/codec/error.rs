use thiserror::Error;

/// Why bytes could not be decoded. Decoders return this instead of panicking, whatever the
/// input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a value was complete.
    #[error("input truncated: needed {needed} bytes, {remaining} remain")]
    Truncated {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative where null is not allowed, or below -1.
    #[error("invalid length {0}")]
    NegativeLength(i64),
    /// A length prefix claimed more than the remaining input can hold.
    #[error("length {len} exceeds the {remaining} bytes remaining")]
    LengthExceedsInput {
        /// The claimed length (elements or bytes).
        len: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A null appeared where the field is not nullable in this version.
    #[error("null value for non-nullable field {0}")]
    UnexpectedNull(&'static str),
    /// A string was not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A varint ran past its maximum width.
    #[error("varint too long")]
    VarintOverflow,
    /// The version is not one this message has.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// An API key this build does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// Bytes were left over after a value that must fill its input exactly.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A record batch or message failed its checksum.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The checksum in the input.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// Decompressed data would exceed the caller's limit.
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    DecompressionLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// A compressed payload could not be decompressed.
    #[error("{codec} decompression failed: {reason}")]
    Decompression {
        /// The codec's name.
        codec: &'static str,
        /// What the decompressor said.
        reason: String,
    },
    /// A value is structurally impossible (an unknown magic byte, a bad attribute, ...).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is not one this message has.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A non-ignorable field holds a non-default value in a version that lacks the field.
    #[error("{message}.{field} is not in version {version} and cannot be dropped")]
    FieldNotInVersion {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A field holds null in a version where it is not nullable.
    #[error("{message}.{field} is null, which version {version} cannot carry")]
    NullNotAllowed {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A string, byte field or array is too long for its length prefix.
    #[error("{what} of length {len} is too long for the wire (max {max})")]
    TooLong {
        /// What was being written.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most the prefix can carry.
        max: usize,
    },
    /// A value is not representable (for example an unknown compression codec).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was being encoded.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

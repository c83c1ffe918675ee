//! Serializers and deserializers: application values to and from record key/value bytes.
//!
//! A [`Serializer<T>`] turns a `&T` into `Some(bytes)` or `None` (a Kafka null); a
//! [`Deserializer<T>`] does the inverse from `Option<&[u8]>`. The provided implementations
//! produce the same bytes as the Java client's serializers of the same name:
//!
//! | kafkit | Rust type | Java |
//! |---|---|---|
//! | [`BytesSerializer`] / [`BytesDeserializer`] | `[u8]`, `Vec<u8>`, [`Bytes`] | `ByteArraySerializer` |
//! | [`StringSerializer`] / [`StringDeserializer`] | `str`, `String` (UTF-8) | `StringSerializer` |
//! | [`ShortSerializer`] … [`DoubleSerializer`] | `i16`, `i32`, `i64`, `f32`, `f64` (big-endian) | `ShortSerializer` … `DoubleSerializer` |
//! | [`Nullable`] | `Option<T>`: `None` is a null | (Java's `null`) |
//! | `JsonSerializer` / `JsonDeserializer` (feature `json`) | any serde type | — |
//!
//! The non-`Option` deserializers reject a null with [`DeserializeError::Null`]; wrap them in
//! [`Nullable`] to accept nulls as `None`. Deserializers never panic on any input.

use bytes::Bytes;

/// Why a value could not be serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializeError {
    /// The JSON serializer failed (message from `serde_json`).
    #[error("JSON serialization failed: {0}")]
    Json(String),
    /// A user-defined serializer failed.
    #[error("serialization failed: {0}")]
    Custom(String),
}

/// Why bytes could not be deserialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeserializeError {
    /// The record's key or value was null but the target type cannot represent null
    /// (use [`Nullable`]).
    #[error("null where a value was required")]
    Null,
    /// A fixed-width type received the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength {
        /// The width of the type.
        expected: usize,
        /// The number of bytes received.
        actual: usize,
    },
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8: {0}")]
    InvalidUtf8(#[from] std::str::Utf8Error),
    /// The JSON deserializer failed (message from `serde_json`).
    #[error("JSON deserialization failed: {0}")]
    Json(String),
    /// A user-defined deserializer failed.
    #[error("deserialization failed: {0}")]
    Custom(String),
}

/// Turns a `T` into the bytes of a record key or value.
pub trait Serializer<T: ?Sized> {
    /// The bytes for `value` destined for `topic`, or `None` for a Kafka null.
    /// Implementations must not panic; failures are reported as [`SerializeError`].
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Bytes>, SerializeError>;
}

/// Turns the bytes of a record key or value back into a `T`.
pub trait Deserializer<T> {
    /// The value for `data` (`None` is a Kafka null) read from `topic`.
    /// Implementations must not panic on any input; bad input is a [`DeserializeError`].
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, DeserializeError>;
}

fn non_null(data: Option<&[u8]>) -> Result<&[u8], DeserializeError> {
    data.ok_or(DeserializeError::Null)
}

/// Raw bytes, passed through unchanged (Java's `ByteArraySerializer`/`BytesSerializer`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesSerializer;

impl Serializer<[u8]> for BytesSerializer {
    fn serialize(&self, _topic: &str, value: &[u8]) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::copy_from_slice(value)))
    }
}

impl Serializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::copy_from_slice(value)))
    }
}

impl<'a> Serializer<&'a [u8]> for BytesSerializer {
    fn serialize(&self, _topic: &str, value: &&'a [u8]) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::copy_from_slice(value)))
    }
}

impl Serializer<Bytes> for BytesSerializer {
    /// Cheap: clones the reference-counted handle, no copy.
    fn serialize(&self, _topic: &str, value: &Bytes) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(value.clone()))
    }
}

/// Raw bytes, copied out unchanged (Java's `ByteArrayDeserializer`). Rejects null.
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesDeserializer;

impl Deserializer<Vec<u8>> for BytesDeserializer {
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<Vec<u8>, DeserializeError> {
        Ok(non_null(data)?.to_vec())
    }
}

impl Deserializer<Bytes> for BytesDeserializer {
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<Bytes, DeserializeError> {
        Ok(Bytes::copy_from_slice(non_null(data)?))
    }
}

/// Strings as UTF-8 bytes (Java's `StringSerializer` with its default UTF-8 encoding).
#[derive(Debug, Default, Clone, Copy)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, value: &str) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }
}

impl Serializer<String> for StringSerializer {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Option<Bytes>, SerializeError> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }
}

/// UTF-8 bytes to a `String` (Java's `StringDeserializer`). Rejects invalid UTF-8 (Java would
/// substitute U+FFFD) and null.
#[derive(Debug, Default, Clone, Copy)]
pub struct StringDeserializer;

impl Deserializer<String> for StringDeserializer {
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<String, DeserializeError> {
        Ok(std::str::from_utf8(non_null(data)?)?.to_owned())
    }
}

macro_rules! big_endian {
    ($(($ty:ty, $ser:ident, $de:ident, $java:literal)),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($ty), "` as ", stringify!($ty), "'s fixed-width big-endian bytes (Java's `", $java, "Serializer`).")]
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $ser;

        impl Serializer<$ty> for $ser {
            fn serialize(&self, _topic: &str, value: &$ty) -> Result<Option<Bytes>, SerializeError> {
                Ok(Some(Bytes::copy_from_slice(&value.to_be_bytes())))
            }
        }

        #[doc = concat!("Exactly ", stringify!($ty), "'s width of big-endian bytes to `", stringify!($ty), "` (Java's `", $java, "Deserializer`). Any other length is [`DeserializeError::WrongLength`]; null is [`DeserializeError::Null`].")]
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $de;

        impl Deserializer<$ty> for $de {
            fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<$ty, DeserializeError> {
                let data = non_null(data)?;
                let bytes = data.try_into().map_err(|_| DeserializeError::WrongLength {
                    expected: std::mem::size_of::<$ty>(),
                    actual: data.len(),
                })?;
                Ok(<$ty>::from_be_bytes(bytes))
            }
        }
    )*};
}

big_endian!(
    (i16, ShortSerializer, ShortDeserializer, "Short"),
    (i32, IntegerSerializer, IntegerDeserializer, "Integer"),
    (i64, LongSerializer, LongDeserializer, "Long"),
    (f32, FloatSerializer, FloatDeserializer, "Float"),
    (f64, DoubleSerializer, DoubleDeserializer, "Double"),
);

/// Adapts a serializer or deserializer of `T` to `Option<T>`: `None` is a Kafka null both ways,
/// `Some` is delegated to the inner one.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nullable<S>(pub S);

impl<T, S: Serializer<T>> Serializer<Option<T>> for Nullable<S> {
    fn serialize(&self, topic: &str, value: &Option<T>) -> Result<Option<Bytes>, SerializeError> {
        match value {
            None => Ok(None),
            Some(v) => self.0.serialize(topic, v),
        }
    }
}

impl<T, D: Deserializer<T>> Deserializer<Option<T>> for Nullable<D> {
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Option<T>, DeserializeError> {
        match data {
            None => Ok(None),
            Some(_) => self.0.deserialize(topic, data).map(Some),
        }
    }
}

#[cfg(feature = "json")]
pub use json::{JsonDeserializer, JsonSerializer};

#[cfg(feature = "json")]
mod json {
    use super::*;

    /// Any `serde::Serialize` value as compact JSON (UTF-8) via `serde_json` (feature `json`).
    #[derive(Debug, Default, Clone, Copy)]
    pub struct JsonSerializer;

    impl<T: serde::Serialize + ?Sized> Serializer<T> for JsonSerializer {
        fn serialize(&self, _topic: &str, value: &T) -> Result<Option<Bytes>, SerializeError> {
            serde_json::to_vec(value)
                .map(|v| Some(Bytes::from(v)))
                .map_err(|e| SerializeError::Json(e.to_string()))
        }
    }

    /// JSON bytes to any `serde::de::DeserializeOwned` value via `serde_json` (feature `json`).
    /// Rejects null and malformed JSON.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct JsonDeserializer;

    impl<T: serde::de::DeserializeOwned> Deserializer<T> for JsonDeserializer {
        fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<T, DeserializeError> {
            serde_json::from_slice(non_null(data)?)
                .map_err(|e| DeserializeError::Json(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_is_java_big_endian() {
        let b = IntegerSerializer
            .serialize("t", &0x0102_0304)
            .unwrap()
            .unwrap();
        assert_eq!(&b[..], &[1, 2, 3, 4]);
        let b = LongSerializer.serialize("t", &-2).unwrap().unwrap();
        assert_eq!(&b[..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    }

    #[test]
    fn wrong_length_and_null_rejected() {
        assert_eq!(
            IntegerDeserializer.deserialize("t", Some(&[1, 2, 3])),
            Err(DeserializeError::WrongLength {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            LongDeserializer.deserialize("t", None),
            Err(DeserializeError::Null)
        );
    }

    #[test]
    fn nullable_round_trip() {
        let s = Nullable(StringSerializer);
        assert_eq!(s.serialize("t", &None::<String>).unwrap(), None);
        let d = Nullable(StringDeserializer);
        let v: Option<String> = d.deserialize("t", None).unwrap();
        assert_eq!(v, None);
    }
}

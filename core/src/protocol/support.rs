//! Small helpers the generated code calls, kept out of it so each array is one line there.

use bytes::BufMut;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};

/// Arrays are pre-allocated up to this many elements; longer ones grow as they are read. The
/// count itself has been checked against the remaining input already, this only bounds how much
/// memory a short input can make us reserve for large element types.
const MAX_PREALLOC: usize = 1024;

/// Reads a non-nullable array whose elements take at least `min_elem_size` bytes each.
#[inline]
pub(crate) fn read_array<T>(
    r: &mut Reader,
    compact: bool,
    min_elem_size: usize,
    mut elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = r.read_array_len(compact, min_elem_size)?;
    let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
    for _ in 0..n {
        v.push(elem(r)?);
    }
    Ok(v)
}

/// Reads an array a response declares non-nullable, taking a null as empty: some brokers
/// send null for an empty array (tansu's OffsetFetch v7 answer does), and librdkafka reads it
/// as empty too. The null is logged at debug level with the field's name.
#[inline]
pub(crate) fn read_response_array<T>(
    r: &mut Reader,
    compact: bool,
    min_elem_size: usize,
    elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    field: &'static str,
) -> Result<Vec<T>, DecodeError> {
    match read_nullable_array(r, compact, min_elem_size, elem)? {
        Some(v) => Ok(v),
        None => {
            tracing::debug!(
                field,
                "null for a non-nullable array in a response, read as empty"
            );
            Ok(Vec::new())
        }
    }
}

/// Reads a nullable array (`None` for null).
#[inline]
pub(crate) fn read_nullable_array<T>(
    r: &mut Reader,
    compact: bool,
    min_elem_size: usize,
    mut elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(n) = r.read_nullable_array_len(compact, min_elem_size)? else {
        return Ok(None);
    };
    let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
    for _ in 0..n {
        v.push(elem(r)?);
    }
    Ok(Some(v))
}

/// Writes an array: its length, then each element.
#[inline]
pub(crate) fn write_array<B: BufMut + ?Sized, T>(
    buf: &mut B,
    items: &[T],
    compact: bool,
    mut elem: impl FnMut(&mut B, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    buf.put_array_len(Some(items.len()), compact)?;
    for item in items {
        elem(buf, item)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_response_array_is_empty_and_a_request_array_is_refused() {
        for compact in [false, true] {
            let null: &[u8] = if compact {
                &[0]
            } else {
                &[0xff, 0xff, 0xff, 0xff]
            };
            let mut r = Reader::new(bytes::Bytes::from_static(null));
            let v = read_response_array(&mut r, compact, 4, Reader::read_i32, "Topics").unwrap();
            assert!(v.is_empty());
            let mut r = Reader::new(bytes::Bytes::from_static(null));
            assert!(read_array(&mut r, compact, 4, Reader::read_i32).is_err());
        }
        let mut r = Reader::new(bytes::Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 7]));
        let v = read_response_array(&mut r, false, 4, Reader::read_i32, "Topics").unwrap();
        assert_eq!(v, [7]);
    }
}

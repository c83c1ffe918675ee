use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use super::*;

fn reader(bytes: &[u8]) -> Reader {
    Reader::new(bytes.to_vec())
}

#[test]
fn varints_match_kafka_examples() {
    // From the Kafka protocol guide's zigzag table: 0->0, -1->1, 1->2, -2->3, 2147483647 ->
    // 4294967294, -2147483648 -> 4294967295.
    for (v, z) in [
        (0i32, 0u32),
        (-1, 1),
        (1, 2),
        (-2, 3),
        (i32::MAX, u32::MAX - 1),
        (i32::MIN, u32::MAX),
    ] {
        let mut b = BytesMut::new();
        b.put_varint(v);
        let mut u = BytesMut::new();
        u.put_unsigned_varint(z);
        assert_eq!(b, u, "zigzag of {v}");
        assert_eq!(reader(&b).read_varint().unwrap(), v);
        assert_eq!(b.len(), varint_size(v));
    }
    // 300 as unsigned LEB128 is ac 02.
    let mut b = BytesMut::new();
    b.put_unsigned_varint(300);
    assert_eq!(&b[..], &[0xac, 0x02]);
}

#[test]
fn overlong_varints_are_errors() {
    assert_eq!(
        reader(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).read_unsigned_varint(),
        Err(DecodeError::VarintOverflow)
    );
    assert_eq!(
        reader(&[0xff, 0xff, 0xff, 0xff, 0x1f]).read_unsigned_varint(),
        Err(DecodeError::VarintOverflow)
    );
    assert!(matches!(
        reader(&[0x80, 0x80]).read_unsigned_varint(),
        Err(DecodeError::Truncated { .. })
    ));
    assert_eq!(
        reader(&[0xff; 11]).read_unsigned_varlong(),
        Err(DecodeError::VarintOverflow)
    );
}

#[test]
fn huge_length_prefix_is_an_error_not_an_allocation() {
    // A 2^31-1 byte string claimed by a 10-byte input.
    let mut input = vec![0x7f, 0xff, 0xff, 0xff];
    input.extend_from_slice(&[0u8; 6]);
    assert!(matches!(
        reader(&input).read_bytes(false),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
    assert!(matches!(
        reader(&input).read_array_len(false, 4),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
    // Compact: varint 0xffffffff.
    let compact = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
    assert!(matches!(
        reader(&compact).read_nullable_string(true),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
    // Zero-size elements still count one byte each.
    assert!(matches!(
        reader(&[0, 0, 0, 100, 1]).read_array_len(false, 0),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
}

#[test]
fn negative_lengths_and_nulls() {
    assert_eq!(reader(&[0xff, 0xff]).read_nullable_string(false), Ok(None));
    assert_eq!(
        reader(&[0xff, 0xfe]).read_nullable_string(false),
        Err(DecodeError::NegativeLength(-2))
    );
    assert_eq!(
        reader(&[0xff, 0xff]).read_string(false),
        Err(DecodeError::UnexpectedNull("string"))
    );
    assert_eq!(reader(&[0]).read_nullable_bytes(true), Ok(None));
    assert_eq!(
        reader(&[0x80, 0, 0, 0]).read_nullable_bytes(false),
        Err(DecodeError::NegativeLength(i32::MIN as i64))
    );
}

#[test]
fn invalid_utf8_is_an_error() {
    assert_eq!(
        reader(&[0, 2, 0xc3, 0x28]).read_string(false),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn truncated_fixed_width_reads() {
    assert!(matches!(
        reader(&[1, 2, 3]).read_i32(),
        Err(DecodeError::Truncated {
            needed: 4,
            remaining: 3
        })
    ));
    assert!(matches!(
        reader(&[0; 15]).read_uuid(),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn tagged_fields_keep_unknown_and_reject_disorder() {
    let mut b = BytesMut::new();
    b.put_tagged_fields(
        &[(0, vec![7]), (5, vec![])],
        &[RawTaggedField {
            tag: 3,
            data: bytes::Bytes::from_static(b"xy"),
        }],
    );
    // count 3; tag 0 size 1 [7]; tag 3 size 2 "xy"; tag 5 size 0.
    assert_eq!(&b[..], &[3, 0, 1, 7, 3, 2, b'x', b'y', 5, 0]);
    let mut seen = vec![];
    let unknown = reader(&b)
        .read_tagged_fields(|tag, r| {
            if tag == 0 {
                seen.push(r.read_i8()?);
                Ok(true)
            } else {
                Ok(false)
            }
        })
        .unwrap();
    assert_eq!(seen, vec![7]);
    assert_eq!(
        unknown.iter().map(|f| f.tag).collect::<Vec<_>>(),
        vec![3, 5]
    );
    assert!(reader(&[2, 5, 0, 3, 0])
        .read_tagged_fields(|_, _| Ok(false))
        .is_err());
    // A known field that leaves bytes unread is an error.
    assert!(reader(&[1, 0, 2, 1, 1])
        .read_tagged_fields(|_, r| {
            r.read_i8()?;
            Ok(true)
        })
        .is_err());
}

#[test]
fn too_long_string_is_encode_error() {
    let s = "x".repeat(i16::MAX as usize + 1);
    assert!(matches!(
        BytesMut::new().put_string(&s, false),
        Err(EncodeError::TooLong { .. })
    ));
    assert!(BytesMut::new().put_string(&s, true).is_ok());
}

proptest! {
    #[test]
    fn primitives_round_trip(
        a in any::<i32>(), b in any::<i64>(), c in any::<u32>(), d in any::<u64>(),
        s in ".{0,40}", ob in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        compact in any::<bool>(), f in any::<f64>(), u in any::<[u8; 16]>(),
    ) {
        let mut w = BytesMut::new();
        w.put_varint(a);
        w.put_varlong(b);
        w.put_unsigned_varint(c);
        w.put_unsigned_varlong(d);
        w.put_string(&s, compact).unwrap();
        w.put_nullable_byte_field(ob.as_deref(), compact).unwrap();
        w.put_f64(f);
        w.put_uuid(&Uuid(u));
        prop_assert_eq!(varint_size(a) + varlong_size(b) + unsigned_varint_size(c), {
            let mut t = BytesMut::new(); t.put_varint(a); t.put_varlong(b); t.put_unsigned_varint(c); t.len()
        });
        let mut r = Reader::new(w.freeze());
        prop_assert_eq!(r.read_varint().unwrap(), a);
        prop_assert_eq!(r.read_varlong().unwrap(), b);
        prop_assert_eq!(r.read_unsigned_varint().unwrap(), c);
        prop_assert_eq!(r.read_unsigned_varlong().unwrap(), d);
        prop_assert_eq!(r.read_string(compact).unwrap(), s);
        prop_assert_eq!(r.read_nullable_bytes(compact).unwrap().map(|b| b.to_vec()), ob);
        prop_assert_eq!(r.read_f64().unwrap().to_bits(), f.to_bits());
        prop_assert_eq!(r.read_uuid().unwrap(), Uuid(u));
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), compact in any::<bool>()) {
        let mut r = Reader::new(data);
        let _ = r.read_nullable_string(compact);
        let _ = r.read_nullable_bytes(compact);
        let _ = r.read_array_len(compact, 2);
        let _ = r.read_tagged_fields(|_, _| Ok(false));
        let _ = r.read_varlong();
    }
}

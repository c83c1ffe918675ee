//! Producer partitioners and serializers: Java-compatible murmur2, keyed/sticky/round-robin
//! partitioning, and serializer/deserializer round trips.

use bytes::Bytes;
use kafkit_core::network::Rng;
use kafkit_core::producer::serializer::{
    BytesDeserializer, BytesSerializer, DoubleDeserializer, DoubleSerializer, FloatDeserializer,
    FloatSerializer, IntegerDeserializer, IntegerSerializer, LongDeserializer, LongSerializer,
    Nullable, ShortDeserializer, ShortSerializer, StringDeserializer, StringSerializer,
};
use kafkit_core::producer::{
    murmur2, partition_for_key, to_positive, DefaultPartitioner, DeserializeError, Deserializer,
    Partitioner, RoundRobinPartitioner, Serializer, UNKNOWN_PARTITION,
};

#[test]
fn murmur2_matches_java_utils_test() {
    // From Kafka's UtilsTest.testMurmur2.
    let cases: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        (b"abc", 479470107),
    ];
    for (key, want) in cases {
        assert_eq!(
            murmur2(key),
            *want,
            "key {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn murmur2_edge_inputs() {
    // Empty key: h = seed ^ 0, final mixes only (checked with an independent reference model).
    assert_eq!(murmur2(b""), 275646681);
    // Bytes >= 0x80 must be treated as unsigned (Java's `& 0xff`), in the tail...
    assert_eq!(murmur2(&[0xff, 0x80, 0x7f]), 968261134);
    // ...and in 4-byte blocks.
    let long: Vec<u8> = (0..=255u8).cycle().take(768).collect();
    assert_eq!(murmur2(&long), -334405466);
}

#[test]
fn keyed_partition_is_stable_and_matches_formula() {
    let mut rng = Rng::new(42);
    let mut p = DefaultPartitioner::new();
    for n in [1, 2, 3, 7, 10, 16, 100, 1000] {
        for i in 0..500u32 {
            let key = format!("key-{i}");
            let want = to_positive(murmur2(key.as_bytes())) % n;
            assert_eq!(partition_for_key(key.as_bytes(), n), want);
            // Keyed records ignore availability and rng state, and are stable.
            for available in [&[][..], &[0][..]] {
                let got = p.partition("t", Some(key.as_bytes()), None, n, available, &mut rng);
                assert_eq!(got, want, "key {key} n {n}");
            }
            p.on_new_batch("t", want);
            assert_eq!(
                p.partition("t", Some(key.as_bytes()), None, n, &[], &mut rng),
                want
            );
        }
    }
}

#[test]
fn java_known_partitions() {
    // to_positive(-790332482) = 1357151166; 1357151166 % 4 = 2.
    assert_eq!(partition_for_key(b"foobar", 4), 2);
    assert_eq!(partition_for_key(b"abc", 10), 479470107 % 10);
    assert_eq!(partition_for_key(b"abc", 0), UNKNOWN_PARTITION);
}

#[test]
fn ignore_keys_uses_sticky() {
    let mut rng = Rng::new(3);
    let mut p = DefaultPartitioner::new().ignore_keys(true);
    let first = p.partition("t", Some(b"a"), None, 50, &[], &mut rng);
    for i in 0..100u32 {
        let key = i.to_string();
        assert_eq!(
            p.partition("t", Some(key.as_bytes()), None, 50, &[], &mut rng),
            first
        );
    }
}

#[test]
fn sticky_stays_until_new_batch_then_moves() {
    let available = [1, 3, 5, 7];
    let mut rng = Rng::new(9);
    let mut p = DefaultPartitioner::new();
    let mut current = p.partition("t", None, None, 8, &available, &mut rng);
    assert!(available.contains(&current));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        for _ in 0..10 {
            assert_eq!(
                p.partition("t", None, None, 8, &available, &mut rng),
                current
            );
        }
        // A new batch on some other partition does not move the sticky choice.
        p.on_new_batch("t", (current + 1) % 8);
        assert_eq!(
            p.partition("t", None, None, 8, &available, &mut rng),
            current
        );
        p.on_new_batch("t", current);
        let next = p.partition("t", None, None, 8, &available, &mut rng);
        assert_ne!(next, current);
        assert!(available.contains(&next), "{next} not available");
        seen.insert(next);
        current = next;
    }
    // Uniform among available: all of them get picked over 200 moves.
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), available.to_vec());
}

#[test]
fn sticky_is_per_topic() {
    let mut rng = Rng::new(11);
    let mut p = DefaultPartitioner::new();
    let a = p.partition("a", None, None, 100, &[], &mut rng);
    let b = p.partition("b", None, None, 100, &[], &mut rng);
    p.on_new_batch("a", a);
    let a2 = p.partition("a", None, None, 100, &[], &mut rng);
    assert_ne!(a, a2);
    assert_eq!(p.partition("b", None, None, 100, &[], &mut rng), b);
    assert_eq!(p.sticky_partition("b"), Some(b));
}

#[test]
fn sticky_single_available_and_fallback_to_all() {
    let mut rng = Rng::new(5);
    let mut p = DefaultPartitioner::new();
    // One available partition: always that one, even after a new batch.
    for _ in 0..20 {
        let got = p.partition("t", None, None, 6, &[4], &mut rng);
        assert_eq!(got, 4);
        p.on_new_batch("t", got);
    }
    // No available partitions: any of 0..n, still never the previous one.
    let mut prev = p.partition("u", None, None, 3, &[], &mut rng);
    for _ in 0..100 {
        assert!((0..3).contains(&prev));
        p.on_new_batch("u", prev);
        let next = p.partition("u", None, None, 3, &[], &mut rng);
        assert_ne!(next, prev);
        prev = next;
    }
    // A single partition in total.
    let mut q = DefaultPartitioner::new();
    for _ in 0..10 {
        assert_eq!(q.partition("v", None, None, 1, &[], &mut rng), 0);
        q.on_new_batch("v", 0);
    }
}

#[test]
fn sticky_is_deterministic_for_a_seed() {
    fn run(seed: u64) -> Vec<i32> {
        let mut rng = Rng::new(seed);
        let mut p = DefaultPartitioner::new();
        let mut out = Vec::new();
        for i in 0..300 {
            let available: Vec<i32> = if i % 3 == 0 {
                vec![]
            } else {
                vec![0, 2, 4, 6, 9]
            };
            let got = p.partition("t", None, None, 12, &available, &mut rng);
            out.push(got);
            if i % 4 == 0 {
                p.on_new_batch("t", got);
            }
        }
        out
    }
    assert_eq!(run(1234), run(1234));
    assert_ne!(run(1234), run(4321));
}

#[test]
fn round_robin_cycles_available_then_all() {
    let mut rng = Rng::new(0);
    let mut p = RoundRobinPartitioner::new();
    let available = [2, 5, 9];
    let got: Vec<i32> = (0..9)
        .map(|_| p.partition("t", Some(b"k"), None, 10, &available, &mut rng))
        .collect();
    assert_eq!(got, vec![2, 5, 9, 2, 5, 9, 2, 5, 9]);
    // on_new_batch does not double count.
    p.on_new_batch("t", 9);
    assert_eq!(p.partition("t", None, None, 10, &available, &mut rng), 2);
    // Another topic has its own counter; with none available it cycles all partitions.
    let got: Vec<i32> = (0..8)
        .map(|_| p.partition("u", None, None, 4, &[], &mut rng))
        .collect();
    assert_eq!(got, vec![0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn partitioner_is_object_safe() {
    let mut parts: Vec<Box<dyn Partitioner>> = vec![
        Box::new(DefaultPartitioner::new()),
        Box::new(RoundRobinPartitioner::new()),
    ];
    let mut rng = Rng::new(1);
    for p in &mut parts {
        let got = p.partition("t", None, None, 4, &[], &mut rng);
        assert!((0..4).contains(&got));
    }
}

fn round_trip<T, S, D>(ser: &S, de: &D, v: &T) -> T
where
    S: Serializer<T>,
    D: Deserializer<T>,
{
    let bytes = ser.serialize("t", v).unwrap();
    de.deserialize("t", bytes.as_deref()).unwrap()
}

#[test]
fn serializers_round_trip() {
    for s in ["", "hello", "ünïcødé ✓ 🚀"] {
        assert_eq!(
            round_trip(&StringSerializer, &StringDeserializer, &s.to_owned()),
            s
        );
        assert_eq!(
            &StringSerializer.serialize("t", s).unwrap().unwrap()[..],
            s.as_bytes()
        );
    }
    let raw = vec![0u8, 1, 255, 128];
    assert_eq!(round_trip(&BytesSerializer, &BytesDeserializer, &raw), raw);
    let b = Bytes::from_static(b"xyz");
    assert_eq!(round_trip(&BytesSerializer, &BytesDeserializer, &b), b);
    let slice: &[u8] = b"abc";
    assert_eq!(
        BytesSerializer.serialize("t", &slice).unwrap().unwrap(),
        Bytes::from_static(b"abc")
    );
    assert_eq!(
        BytesSerializer.serialize("t", slice).unwrap().unwrap(),
        Bytes::from_static(b"abc")
    );
    for v in [i16::MIN, -1, 0, 1, i16::MAX] {
        assert_eq!(round_trip(&ShortSerializer, &ShortDeserializer, &v), v);
    }
    for v in [i32::MIN, -1, 0, 1, 0x1234_5678, i32::MAX] {
        assert_eq!(round_trip(&IntegerSerializer, &IntegerDeserializer, &v), v);
    }
    for v in [i64::MIN, -1, 0, 1, i64::MAX] {
        assert_eq!(round_trip(&LongSerializer, &LongDeserializer, &v), v);
    }
    for v in [0.0f32, -1.5, f32::MAX] {
        assert_eq!(round_trip(&FloatSerializer, &FloatDeserializer, &v), v);
    }
    for v in [0.0f64, -1.5, f64::MIN_POSITIVE] {
        assert_eq!(round_trip(&DoubleSerializer, &DoubleDeserializer, &v), v);
    }
    // Java's LongSerializer is big-endian.
    assert_eq!(
        &LongSerializer.serialize("t", &1).unwrap().unwrap()[..],
        &[0, 0, 0, 0, 0, 0, 0, 1]
    );
    // Option: None is null, Some delegates.
    let ser = Nullable(IntegerSerializer);
    let de = Nullable(IntegerDeserializer);
    assert_eq!(ser.serialize("t", &None).unwrap(), None);
    assert_eq!(round_trip(&ser, &de, &Some(7)), Some(7));
    assert_eq!(round_trip(&ser, &de, &None), None);
}

#[test]
fn deserializers_reject_bad_input() {
    assert!(matches!(
        StringDeserializer.deserialize("t", Some(&[0xff, 0xfe])),
        Err(DeserializeError::InvalidUtf8(_))
    ));
    assert_eq!(
        StringDeserializer.deserialize("t", None),
        Err(DeserializeError::Null)
    );
    let r: Result<Vec<u8>, _> = BytesDeserializer.deserialize("t", None);
    assert_eq!(r, Err(DeserializeError::Null));
    for len in [0usize, 1, 3, 5, 9] {
        let data = vec![0u8; len];
        if len != 4 {
            assert_eq!(
                IntegerDeserializer.deserialize("t", Some(&data)),
                Err(DeserializeError::WrongLength {
                    expected: 4,
                    actual: len
                })
            );
        }
        if len != 8 {
            assert!(matches!(
                LongDeserializer.deserialize("t", Some(&data)),
                Err(DeserializeError::WrongLength { expected: 8, .. })
            ));
            assert!(DoubleDeserializer.deserialize("t", Some(&data)).is_err());
        }
        assert!(ShortDeserializer.deserialize("t", Some(&data)).is_err());
    }
    // Nullable still rejects a wrong length inside Some.
    assert!(Nullable(IntegerDeserializer)
        .deserialize("t", Some(&[1, 2]))
        .is_err());
}

#[cfg(feature = "json")]
#[test]
fn json_round_trip_and_rejects_garbage() {
    use kafkit_core::producer::serializer::{JsonDeserializer, JsonSerializer};
    let v = serde_json::json!({"a": 1, "b": [true, null, "x"]});
    let bytes = JsonSerializer.serialize("t", &v).unwrap().unwrap();
    let back: serde_json::Value = JsonDeserializer.deserialize("t", Some(&bytes)).unwrap();
    assert_eq!(back, v);
    let bad: Result<serde_json::Value, _> = JsonDeserializer.deserialize("t", Some(b"{nope"));
    assert!(matches!(bad, Err(DeserializeError::Json(_))));
    let null: Result<serde_json::Value, _> = JsonDeserializer.deserialize("t", None);
    assert_eq!(null, Err(DeserializeError::Null));
}

//! Every message, every version: random value -> encode -> decode -> equal -> same bytes.
//! Needs the `fuzzing` feature: `cargo test -p kafkit-core --features fuzzing`.
#![cfg(feature = "fuzzing")]

use kafkit_core::protocol::testing::roundtrip_all;
use proptest::prelude::*;

/// (message, version) pairs in the definitions; `protocol_spec_coverage` checks this against
/// the JSON files themselves.
fn expected_pairs() -> usize {
    kafkit_core::protocol::ALL_MESSAGES
        .iter()
        .map(|(_, lo, hi)| (hi - lo + 1) as usize)
        .sum()
}

#[test]
fn roundtrip_fixed_seeds() {
    for seed in 0..64 {
        match roundtrip_all(seed) {
            Ok(n) => assert_eq!(n, expected_pairs()),
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn roundtrip_random_seeds(seed in any::<u64>()) {
        let n = roundtrip_all(seed).map_err(TestCaseError::fail)?;
        prop_assert_eq!(n, expected_pairs());
    }
}

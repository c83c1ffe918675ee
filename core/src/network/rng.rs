//! The core's seeded generator, for everything a run should replay: reconnect jitter, the
//! sticky partitioner's choices, the node a request goes to first.
//!
//! The core never draws entropy of its own, so that a run replays exactly from its seed (see
//! `random_seed` in the configuration). Drivers pick a seed from their [`Entropy`] source
//! when the user sets none; the simulation passes its scenario seed. Not for anything an
//! attacker must not predict: SCRAM nonces come from the driver's [`Entropy`] source instead.
//!
//! [`Entropy`]: super::Entropy

use std::time::Duration;

/// SplitMix64 feeding xoshiro256**: fast, tiny, and good enough for jitter and sticky partition
/// choice.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence follows from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform value in `0..n` (`n` > 0), without modulo bias worth caring about.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `d` scaled by a uniform factor in `[1 - frac, 1 + frac]`, as Kafka's exponential backoff
    /// applies its ±20% jitter.
    pub fn jitter(&mut self, d: Duration, frac: f64) -> Duration {
        let factor = 1.0 - frac + 2.0 * frac * self.next_f64();
        d.mul_f64(factor.max(0.0))
    }

    /// `len` printable ASCII characters without ',' (suitable for SCRAM nonces).
    pub fn nonce(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut r = Rng::new(1);
        let base = Duration::from_millis(1000);
        for _ in 0..1000 {
            let j = r.jitter(base, 0.2);
            assert!(
                j >= Duration::from_millis(800) && j <= Duration::from_millis(1200),
                "{j:?}"
            );
        }
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
        }
        assert!(!r.nonce(24).contains(','));
    }
}

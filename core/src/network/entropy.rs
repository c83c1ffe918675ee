//! [`Entropy`]: where the core's security-relevant randomness comes from.
//!
//! The core draws two kinds of randomness. Jitter, the sticky partitioner's choices and
//! similar draws come from the seeded [`Rng`](super::Rng), so that a run replays from its
//! seed. Anything an attacker must not predict (today the client nonce of every SCRAM
//! exchange) comes from an [`Entropy`] source the driver provides in
//! [`NetOptions::entropy`](super::NetOptions::entropy): the operating system's randomness in
//! the socket drivers, a [`SeededEntropy`] only in simulations and tests, where replaying a
//! run matters more than secrecy. The core never reads the OS's randomness itself.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of unpredictable bytes, provided by the driver.
pub trait Entropy: Send + Sync {
    /// Fills `dest` with random bytes. Must not block for long; the OS's randomness
    /// (`getrandom`) qualifies once the system has booted.
    fn fill(&self, dest: &mut [u8]);
}

/// Deterministic "entropy" for simulations and tests: the same seed gives the same bytes, so
/// a seeded run replays exactly. Never use it where secrecy matters.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
}

impl SeededEntropy {
    /// A source whose bytes follow from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededEntropy {
            state: AtomicU64::new(seed),
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            // SplitMix64: one step per 8 bytes, lock-free.
            let mut z = self
                .state
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_entropy_replays_from_its_seed_and_moves_on() {
        let (a, b) = (SeededEntropy::new(3), SeededEntropy::new(3));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        let mut z = [0u8; 13];
        a.fill(&mut z);
        assert_ne!(x, z, "a second draw differs");
        let mut other = [0u8; 13];
        SeededEntropy::new(4).fill(&mut other);
        assert_ne!(x, other);
    }
}

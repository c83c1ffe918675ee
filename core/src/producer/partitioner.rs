//! Partitioners: which partition of a topic a record goes to.
//!
//! A [`Partitioner`] is owned by the producer and called from one place only, the record
//! accumulator, so it takes `&mut self` and needs no locking. Randomness comes from the
//! caller's seeded [`Rng`], keeping the core deterministic.
//!
//! ## Calling contract (for the record accumulator)
//! 1. For each record whose application did not name a partition, the accumulator calls
//!    [`Partitioner::partition`] with the topic's current partition count and the ids of the
//!    partitions whose leader is known (`available`, ascending or in metadata order; it may be
//!    empty). The returned id is used as is.
//! 2. When appending that record has to *open a new batch* on the returned partition because the
//!    previous batch for it was full, closed or sent (KIP-480's `abortOnNewBatch` case), the
//!    accumulator calls [`Partitioner::on_new_batch`] with that partition and then calls
//!    [`Partitioner::partition`] again for the same record, appending it to whatever partition
//!    the second call returns. This is how the sticky partitioner moves on.

use super::fasthash::FastMap;

use super::murmur2::{murmur2, to_positive};
use crate::network::Rng;

/// The partition id returned when a topic has no partitions to choose from
/// (`num_partitions < 1` and no available partitions), as Java's `RecordMetadata.UNKNOWN_PARTITION`.
pub const UNKNOWN_PARTITION: i32 = -1;

/// Chooses a partition for a record. See the [module docs](self) for when each method is called.
pub trait Partitioner {
    /// The partition for one record of `topic`.
    ///
    /// `num_partitions` is the topic's partition count (partitions `0..num_partitions`);
    /// `available` lists the partitions whose leader is currently known (a subset of those, possibly
    /// empty). Implementations must return a partition in `0..num_partitions` or one of
    /// `available`, or [`UNKNOWN_PARTITION`] when both are empty; they must never panic.
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        num_partitions: i32,
        available: &[i32],
        rng: &mut Rng,
    ) -> i32;

    /// KIP-480 hook: the accumulator is about to open a new batch on `prev_partition` of `topic`
    /// (the previous batch there was full, closed or sent). Called before the record is
    /// re-partitioned with [`Partitioner::partition`]. The default does nothing.
    fn on_new_batch(&mut self, topic: &str, prev_partition: i32) {
        let _ = (topic, prev_partition);
    }
}

/// The partition for `key` by Kafka's rule: `to_positive(murmur2(key)) % num_partitions`,
/// over *all* partitions (not only available ones), so a key always maps to the same partition
/// while the partition count is unchanged. Returns [`UNKNOWN_PARTITION`] if `num_partitions < 1`.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    if num_partitions < 1 {
        return UNKNOWN_PARTITION;
    }
    to_positive(murmur2(key)) % num_partitions
}

/// Picks uniformly among `available`, or among `0..num_partitions` if `available` is empty,
/// avoiding `exclude` whenever another candidate exists.
fn pick_random(num_partitions: i32, available: &[i32], exclude: Option<i32>, rng: &mut Rng) -> i32 {
    if !available.is_empty() {
        let others = match exclude {
            Some(old) => available.iter().filter(|&&p| p != old).count(),
            None => available.len(),
        };
        if others == 0 {
            return available[0];
        }
        let n = rng.below(others as u64) as usize;
        return *available
            .iter()
            .filter(|&&p| Some(p) != exclude)
            .nth(n)
            .unwrap_or(&available[0]);
    }
    if num_partitions < 1 {
        return UNKNOWN_PARTITION;
    }
    match exclude {
        Some(old) if num_partitions > 1 && (0..num_partitions).contains(&old) => {
            // Uniform over the num_partitions - 1 others.
            let r = rng.below((num_partitions - 1) as u64) as i32;
            if r >= old {
                r + 1
            } else {
                r
            }
        }
        _ => rng.below(num_partitions as u64) as i32,
    }
}

/// `a == b`, compared a word at a time inline: topic names are short, and this runs per
/// record (a `memcmp` call cost more than the comparison).
fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().expect("8 bytes"));
    for (x, y) in (&mut ca).zip(&mut cb) {
        if word(x) != word(y) {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .fold(true, |same, (x, y)| same & (x == y))
}

/// What the sticky cache knows about one topic.
#[derive(Debug, Clone, Copy)]
struct Sticky {
    partition: i32,
    /// Set by `on_new_batch`: choose a new partition (other than `partition`) on the next call.
    stale: bool,
}

/// Java 3.x's built-in partitioning (the `DefaultPartitioner`/`BuiltInPartitioner` behaviour).
///
/// * Keyed records (unless [`DefaultPartitioner::ignore_keys`]) go to
///   [`partition_for_key`]: `to_positive(murmur2(key)) % num_partitions`.
/// * Records without a key use the sticky partitioner (KIP-480, KIP-794): every record of a
///   topic goes to one partition until [`Partitioner::on_new_batch`] reports that partition's
///   batch was closed; the next call then picks another partition at random, uniformly among
///   `available` if it is non-empty, else among all partitions, and never the previous one
///   when there is another candidate. A sticky choice is also re-made if it falls outside the
///   topic's current partitions.
///
/// Simplification: KIP-794's adaptive choice weighted by each broker's queue size is not
/// implemented; the choice is uniform among available partitions. Java also switches after
/// `batch.size` bytes rather than on the new-batch signal; here the accumulator's
/// `on_new_batch` call is the only trigger.
#[derive(Debug, Default, Clone)]
pub struct DefaultPartitioner {
    ignore_keys: bool,
    sticky: FastMap<String, Sticky>,
    /// The topic partitioned last and its entry, kept here instead of in `sticky` while it is
    /// the last one: a run of records for one topic compares the name once per record rather
    /// than hashing it and comparing it in the map.
    last: Option<(String, Sticky)>,
}

impl DefaultPartitioner {
    /// A partitioner that hashes keys (`partitioner.ignore.keys=false`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A partitioner that ignores keys when `ignore` is true (`partitioner.ignore.keys`), so
    /// every record uses the sticky choice.
    pub fn ignore_keys(mut self, ignore: bool) -> Self {
        self.ignore_keys = ignore;
        self
    }

    /// The sticky partition currently cached for `topic`, if any (for diagnostics and tests).
    pub fn sticky_partition(&self, topic: &str) -> Option<i32> {
        match &self.last {
            Some((t, s)) if same_str(t, topic) => Some(s.partition),
            _ => self.sticky.get(topic).map(|s| s.partition),
        }
    }

    /// The sticky entry of `topic`, made the `last` one (moving the previous last back into
    /// the map).
    fn entry(&mut self, topic: &str) -> Option<&mut Sticky> {
        if !self.last.as_ref().is_some_and(|(t, _)| same_str(t, topic)) {
            let found = self.sticky.remove_entry(topic)?;
            if let Some((t, s)) = self.last.replace(found) {
                self.sticky.insert(t, s);
            }
        }
        self.last.as_mut().map(|(_, s)| s)
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        num_partitions: i32,
        available: &[i32],
        rng: &mut Rng,
    ) -> i32 {
        if let (Some(key), false) = (key, self.ignore_keys) {
            let p = partition_for_key(key, num_partitions);
            if p != UNKNOWN_PARTITION || available.is_empty() {
                return p;
            }
            // Topic with an unknown count but known leaders: fall through to sticky.
        }
        let valid = |p: i32| (0..num_partitions).contains(&p) || available.contains(&p);
        match self.entry(topic).copied() {
            Some(s) if !s.stale && valid(s.partition) => s.partition,
            cached => {
                let exclude = cached.map(|s| s.partition);
                let p = pick_random(num_partitions, available, exclude, rng);
                if p == UNKNOWN_PARTITION {
                    return p;
                }
                let sticky = Sticky {
                    partition: p,
                    stale: false,
                };
                match self.entry(topic) {
                    Some(s) => *s = sticky,
                    None => {
                        if let Some((t, s)) = self.last.replace((topic.to_owned(), sticky)) {
                            self.sticky.insert(t, s);
                        }
                    }
                }
                p
            }
        }
    }

    /// Marks the topic's sticky partition stale if it is `prev_partition` (as Java's
    /// `StickyPartitionCache.nextPartition` only moves on when the cached partition is the one
    /// whose batch closed); a stale report for another partition is ignored.
    fn on_new_batch(&mut self, topic: &str, prev_partition: i32) {
        if let Some(s) = self.entry(topic) {
            if s.partition == prev_partition {
                s.stale = true;
            }
        }
    }
}

/// Java's `RoundRobinPartitioner`: ignores keys and cycles a per-topic counter over the
/// available partitions, or over all partitions when none is available.
///
/// The `n`-th record of a topic (counting from 0) goes to `available[n % available.len()]`
/// (Java's `toPositive(counter) % size`, with the counter wrapping like a Java `int`).
///
/// Java's version double-counts when the accumulator re-partitions after `onNewBatch`
/// (KAFKA-9965), so it can skip partitions; this one does not reproduce that quirk: the
/// re-partitioned record simply takes the next slot and [`Partitioner::on_new_batch`] is a no-op.
#[derive(Debug, Default, Clone)]
pub struct RoundRobinPartitioner {
    counters: FastMap<String, i32>,
}

impl RoundRobinPartitioner {
    /// A partitioner with all counters at zero.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        num_partitions: i32,
        available: &[i32],
        _rng: &mut Rng,
    ) -> i32 {
        let counter = self.counters.entry(topic.to_owned()).or_insert(0);
        let next = *counter;
        *counter = counter.wrapping_add(1);
        if !available.is_empty() {
            available[(to_positive(next) as usize) % available.len()]
        } else if num_partitions >= 1 {
            to_positive(next) % num_partitions
        } else {
            UNKNOWN_PARTITION
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_uses_murmur2() {
        let mut p = DefaultPartitioner::new();
        let mut rng = Rng::new(1);
        let got = p.partition("t", Some(b"foobar"), None, 10, &[], &mut rng);
        assert_eq!(got, to_positive(-790332482) % 10);
    }

    #[test]
    fn no_partitions_is_unknown() {
        let mut rng = Rng::new(1);
        assert_eq!(
            DefaultPartitioner::new().partition("t", None, None, 0, &[], &mut rng),
            UNKNOWN_PARTITION
        );
        assert_eq!(
            DefaultPartitioner::new().partition("t", Some(b"k"), None, 0, &[], &mut rng),
            UNKNOWN_PARTITION
        );
        assert_eq!(
            RoundRobinPartitioner::new().partition("t", None, None, 0, &[], &mut rng),
            UNKNOWN_PARTITION
        );
    }

    #[test]
    fn sticky_excludes_previous_among_all() {
        let mut rng = Rng::new(7);
        let mut p = DefaultPartitioner::new();
        let mut prev = p.partition("t", None, None, 2, &[], &mut rng);
        for _ in 0..50 {
            p.on_new_batch("t", prev);
            let next = p.partition("t", None, None, 2, &[], &mut rng);
            assert_ne!(next, prev);
            prev = next;
        }
    }
}

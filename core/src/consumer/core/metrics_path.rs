//! The consumer's metrics snapshot and per-partition lag.

// The parent's imports: these are methods of `ConsumerCore`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::consumer::metrics::{ConsumerMetrics, Now, PartitionLag};

impl ConsumerCore {
    /// The consumer's metrics at `now` (Java's names; see [`ConsumerMetrics`]), including
    /// the network layer's.
    pub fn metrics(&self, now: Instant) -> ConsumerMetrics {
        let n = Now {
            now,
            net: self.net.recorder(),
            network: self.net.metrics(now),
            lag: self.lag(),
        };
        ConsumerMetrics::snapshot(&self.metrics, n)
    }

    /// Every assigned partition's position, high watermark (the last stable offset under
    /// `read_committed`) from its last fetch, and lag (`high watermark - position`). A
    /// partition appears as soon as it is assigned; its fields are `None` until known.
    pub fn lag(&self) -> BTreeMap<TopicPartition, PartitionLag> {
        self.subs
            .iter()
            .map(|(tp, s)| {
                let position = s.position.map(|p| p.offset);
                let high_watermark = if self.read_committed {
                    s.last_stable_offset
                } else {
                    s.highwater
                };
                let lag = position
                    .zip(high_watermark)
                    .map(|(p, h)| h.saturating_sub(p).max(0));
                (
                    tp.clone(),
                    PartitionLag {
                        position,
                        high_watermark,
                        lag,
                    },
                )
            })
            .collect()
    }
}

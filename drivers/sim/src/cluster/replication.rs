//! Replication between a partition's leader and followers, applied in virtual time.

use std::time::Instant;

use super::{Cluster, Replication};

impl Cluster {
    /// Applies replication due at `now`.
    pub(super) fn advance(&mut self, now: Instant) {
        while let Some(entry) = self.replication.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let r = entry.remove();
            self.replicate(&r.topic, r.partition, Some(r.leo));
        }
    }

    /// Followers of a partition copy the leader's log up to `leo` (all of it for `None`);
    /// ISR and high watermark follow.
    pub(super) fn replicate(&mut self, topic: &str, partition: i32, leo: Option<i64>) {
        let alive: Vec<bool> = self.brokers.iter().map(|b| b.alive).collect();
        let is_alive =
            |b: i32| usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true);
        let Some(p) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partition_mut(partition))
        else {
            return;
        };
        if p.leader < 0 {
            return;
        }
        let leo = leo.unwrap_or(p.log_end_offset());
        for r in p.replicas.clone() {
            if r != p.leader && is_alive(r) {
                p.set_follower_leo(r, leo);
            }
        }
        if p.update_isr_and_hw(&is_alive) {
            self.wake_partition(topic, partition);
        }
    }

    /// After the leader of a partition appended up to `leo`: replicate now or schedule it.
    pub(super) fn after_append(&mut self, topic: &str, partition: i32, leo: i64, now: Instant) {
        if self.config.replication_delay.is_zero() {
            self.replicate(topic, partition, Some(leo));
        } else {
            let alive: Vec<bool> = self.brokers.iter().map(|b| b.alive).collect();
            if let Some(p) = self
                .topics
                .get_mut(topic)
                .and_then(|t| t.partition_mut(partition))
            {
                // The leader alone may already be the whole ISR.
                let is_alive = |b: i32| {
                    usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true)
                };
                // (Woken below in any case.)
                p.update_isr_and_hw(&is_alive);
            }
            self.schedule_replication(topic, partition, leo, now);
        }
        self.wake_partition(topic, partition);
    }

    pub(super) fn schedule_replication(
        &mut self,
        topic: &str,
        partition: i32,
        leo: i64,
        now: Instant,
    ) {
        self.next_seq += 1;
        self.replication.insert(
            (now + self.config.replication_delay, self.next_seq),
            Replication {
                topic: topic.to_owned(),
                partition,
                leo,
            },
        );
    }
}

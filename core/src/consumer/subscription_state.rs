//! The assigned partitions and, for each, where the consumer is: position, the leader epoch
//! of the last record consumed, watermarks, pause flag, a pending offset reset, a preferred
//! read replica and a sticky error.
//!
//! Contract:
//! - The state changes only through these methods; the fetcher reads it to decide what to
//!   fetch ([`PartitionState::is_fetchable`]) and writes positions as records are handed out.
//! - A partition without a position needs a reset: [`SubscriptionState::assign`] starts new
//!   partitions in that state with the configured `auto_offset_reset` (a group coordinator
//!   sets committed positions with [`SubscriptionState::seek`] before fetching starts;
//!   `seek_to_*` request an explicit reset).
//! - Iteration order is the partition order (a `BTreeMap`), so the fetcher is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::error::ConsumerError;
use super::record::TopicPartition;
use crate::config::AutoOffsetReset;
use crate::network::NodeId;

/// ListOffsets timestamp for the earliest offset.
pub(crate) const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp for the latest offset.
pub(crate) const LATEST_TIMESTAMP: i64 = -1;

/// Where a partition's next fetch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the last record consumed (or of the offset lookup that set it).
    pub leader_epoch: Option<i32>,
}

/// A pending offset reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reset {
    /// ListOffsets timestamp: [`EARLIEST_TIMESTAMP`] or [`LATEST_TIMESTAMP`].
    pub timestamp: i64,
    /// Whether a ListOffsets request for it is in flight.
    pub in_flight: bool,
    /// Not before this (after a failed lookup).
    pub retry_at: Option<Instant>,
}

/// One assigned partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionState {
    pub position: Option<FetchPosition>,
    pub reset: Option<Reset>,
    pub highwater: Option<i64>,
    pub last_stable_offset: Option<i64>,
    pub log_start_offset: Option<i64>,
    pub paused: bool,
    /// An error that stops fetching until the application seeks; `reported` once polled.
    pub error: Option<(ConsumerError, bool)>,
    /// KIP-392: the replica to fetch from instead of the leader, until the instant.
    pub preferred_replica: Option<(NodeId, Instant)>,
    /// No fetch before this (after a retriable partition error).
    pub retry_at: Option<Instant>,
    /// The group is revoking the partition (Java's `pendingRevocation`): from the start of
    /// the rebalance until it leaves the assignment it is neither fetched nor are its
    /// buffered records returned, so the positions the revocation callback sees and commits
    /// are the last ones.
    pub pending_revocation: bool,
}

impl PartitionState {
    /// Whether the fetcher may fetch this partition now (buffered data aside).
    pub fn is_fetchable(&self, now: Instant) -> bool {
        self.position.is_some()
            && self.reset.is_none()
            && !self.paused
            && !self.pending_revocation
            && self.error.is_none()
            && self.retry_at.is_none_or(|t| now >= t)
    }

    fn clear_for_seek(&mut self) {
        self.error = None;
        self.reset = None;
        self.retry_at = None;
    }
}

/// The assignment and its per-partition state.
#[derive(Debug, Clone)]
pub(crate) struct SubscriptionState {
    partitions: BTreeMap<TopicPartition, PartitionState>,
    default_reset: AutoOffsetReset,
}

impl SubscriptionState {
    pub fn new(default_reset: AutoOffsetReset) -> Self {
        SubscriptionState {
            partitions: BTreeMap::new(),
            default_reset,
        }
    }

    /// Replaces the assignment; partitions kept keep their state, new ones need a position.
    /// Returns the partitions removed.
    pub fn assign(&mut self, partitions: BTreeSet<TopicPartition>) -> Vec<TopicPartition> {
        let removed: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| !partitions.contains(*tp))
            .cloned()
            .collect();
        for tp in &removed {
            self.partitions.remove(tp);
        }
        for tp in partitions {
            if !self.partitions.contains_key(&tp) {
                let mut state = PartitionState::default();
                self.apply_default_reset(&tp, &mut state);
                self.partitions.insert(tp, state);
            }
        }
        removed
    }

    fn apply_default_reset(&self, tp: &TopicPartition, state: &mut PartitionState) {
        match self.default_reset {
            AutoOffsetReset::Earliest => state.reset = Some(reset(EARLIEST_TIMESTAMP)),
            AutoOffsetReset::None => {
                state.error = Some((
                    ConsumerError::NoOffset {
                        partition: tp.clone(),
                    },
                    false,
                ))
            }
            _ => state.reset = Some(reset(LATEST_TIMESTAMP)),
        }
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> BTreeSet<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    pub fn get(&self, tp: &TopicPartition) -> Result<&PartitionState, ConsumerError> {
        self.partitions
            .get(tp)
            .ok_or_else(|| ConsumerError::NotAssigned {
                partition: tp.clone(),
            })
    }

    pub fn get_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState, ConsumerError> {
        self.partitions
            .get_mut(tp)
            .ok_or_else(|| ConsumerError::NotAssigned {
                partition: tp.clone(),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &PartitionState)> {
        self.partitions.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TopicPartition, &mut PartitionState)> {
        self.partitions.iter_mut()
    }

    /// Sets the position (the application's seek, or a committed offset); clears a pending
    /// reset and a sticky error.
    pub fn seek(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        leader_epoch: Option<i32>,
    ) -> Result<(), ConsumerError> {
        let state = self.get_mut(tp)?;
        state.clear_for_seek();
        state.position = Some(FetchPosition {
            offset,
            leader_epoch,
        });
        Ok(())
    }

    /// Asks for a reset to the earliest or latest offset (`seek_to_beginning/end`).
    pub fn request_reset(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<(), ConsumerError> {
        let state = self.get_mut(tp)?;
        state.clear_for_seek();
        state.position = None;
        state.reset = Some(reset(timestamp));
        Ok(())
    }

    /// The fetch position is out of range: reset by the configured policy, or record the
    /// error for the application when the policy is `none`.
    pub fn handle_out_of_range(&mut self, tp: &TopicPartition, offset: i64) {
        let policy = self.default_reset;
        if let Some(state) = self.partitions.get_mut(tp) {
            match policy {
                AutoOffsetReset::None => {
                    state.error = Some((
                        ConsumerError::OffsetOutOfRange {
                            partition: tp.clone(),
                            offset,
                        },
                        false,
                    ))
                }
                AutoOffsetReset::Earliest => {
                    state.position = None;
                    state.reset = Some(reset(EARLIEST_TIMESTAMP));
                }
                _ => {
                    state.position = None;
                    state.reset = Some(reset(LATEST_TIMESTAMP));
                }
            }
        }
    }

    /// Partitions with a reset due (not in flight, not backing off).
    pub fn resets_due(&self, now: Instant) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, s)| {
                let r = s.reset?;
                (!r.in_flight && r.retry_at.is_none_or(|t| now >= t))
                    .then(|| (tp.clone(), r.timestamp))
            })
            .collect()
    }

    /// Sets the paused flag.
    pub fn set_paused(&mut self, tp: &TopicPartition, paused: bool) -> Result<(), ConsumerError> {
        self.get_mut(tp)?.paused = paused;
        Ok(())
    }

    /// Marks assigned partitions as being revoked (see [`PartitionState::pending_revocation`]).
    pub fn mark_pending_revocation<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) {
        for tp in partitions {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.pending_revocation = true;
            }
        }
    }

    pub fn paused(&self) -> BTreeSet<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The earliest instant something waits for (retries of fetches and resets).
    pub fn next_retry(&self) -> Option<Instant> {
        self.partitions
            .values()
            .flat_map(|s| [s.retry_at, s.reset.and_then(|r| r.retry_at)])
            .flatten()
            .min()
    }

    /// Clears retry times that have passed (so they stop being reported as deadlines).
    pub fn expire_retries(&mut self, now: Instant) {
        for s in self.partitions.values_mut() {
            if s.retry_at.is_some_and(|t| now >= t) {
                s.retry_at = None;
            }
            if let Some(r) = &mut s.reset {
                if r.retry_at.is_some_and(|t| now >= t) {
                    r.retry_at = None;
                }
            }
        }
    }
}

fn reset(timestamp: i64) -> Reset {
    Reset {
        timestamp,
        in_flight: false,
        retry_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(ps: &[i32]) -> BTreeSet<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new("t", p)).collect()
    }

    #[test]
    fn assign_keeps_state_of_retained_partitions() {
        let now = Instant::now();
        let mut s = SubscriptionState::new(AutoOffsetReset::Latest);
        s.assign(tps(&[0, 1]));
        let t0 = TopicPartition::new("t", 0);
        assert_eq!(s.resets_due(now).len(), 2);
        s.seek(&t0, 42, Some(3)).unwrap();
        assert!(s.get(&t0).unwrap().is_fetchable(now));
        let removed = s.assign(tps(&[0, 2]));
        assert_eq!(removed, vec![TopicPartition::new("t", 1)]);
        assert_eq!(s.get(&t0).unwrap().position.unwrap().offset, 42);
        assert_eq!(
            s.resets_due(now),
            vec![(TopicPartition::new("t", 2), LATEST_TIMESTAMP)]
        );
        assert!(matches!(
            s.seek(&TopicPartition::new("t", 1), 0, None),
            Err(ConsumerError::NotAssigned { .. })
        ));
    }

    #[test]
    fn out_of_range_follows_the_policy() {
        let t0 = TopicPartition::new("t", 0);
        for (policy, want) in [
            (AutoOffsetReset::Earliest, Some(EARLIEST_TIMESTAMP)),
            (AutoOffsetReset::Latest, Some(LATEST_TIMESTAMP)),
            (AutoOffsetReset::None, None),
        ] {
            let mut s = SubscriptionState::new(policy);
            s.assign(tps(&[0]));
            s.seek(&t0, 10, None).unwrap();
            s.handle_out_of_range(&t0, 10);
            let st = s.get(&t0).unwrap();
            assert_eq!(st.reset.map(|r| r.timestamp), want);
            if want.is_none() {
                assert!(matches!(
                    st.error,
                    Some((ConsumerError::OffsetOutOfRange { offset: 10, .. }, false))
                ));
                assert!(!st.is_fetchable(Instant::now()));
                s.seek(&t0, 0, None).unwrap();
                assert!(
                    s.get(&t0).unwrap().is_fetchable(Instant::now()),
                    "seek clears"
                );
            }
        }
    }

    #[test]
    fn policy_none_without_position_is_an_error_and_pause_stops_fetching() {
        let now = Instant::now();
        let mut s = SubscriptionState::new(AutoOffsetReset::None);
        s.assign(tps(&[0]));
        let t0 = TopicPartition::new("t", 0);
        assert!(matches!(
            s.get(&t0).unwrap().error,
            Some((ConsumerError::NoOffset { .. }, false))
        ));
        s.seek(&t0, 5, None).unwrap();
        s.set_paused(&t0, true).unwrap();
        assert!(!s.get(&t0).unwrap().is_fetchable(now));
        assert_eq!(s.paused(), tps(&[0]));
        s.set_paused(&t0, false).unwrap();
        assert!(s.get(&t0).unwrap().is_fetchable(now));
    }
}

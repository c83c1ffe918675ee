//! Completing transactions: `Prepare*` state, the COMMIT/ABORT markers written into every
//! partition of the transaction, the transaction's offsets applied to their groups on commit,
//! and the timeout that aborts a transaction left open.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{PendingMarker, TxnState};
use crate::cluster::Cluster;

impl Cluster {
    /// Starts ending the open transaction of `id`: `PrepareCommit` or `PrepareAbort`, with
    /// markers carrying `marker_epoch` due in every partition of the transaction. A commit
    /// makes the transaction's offsets the groups' committed offsets now (Kafka does it when
    /// the marker reaches `__consumer_offsets`, which comes first here); an abort drops them.
    pub(super) fn begin_completion(
        &mut self,
        id: &str,
        commit: bool,
        (marker_producer_id, marker_epoch): (i64, i16),
        now: Instant,
    ) {
        let Some(t) = self.txns.txns.get_mut(id) else {
            return;
        };
        t.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        t.marker_producer_id = marker_producer_id;
        t.marker_epoch = marker_epoch;
        t.deadline = None;
        t.markers = t
            .partitions
            .iter()
            .map(|tp| (tp.clone(), PendingMarker::default()))
            .collect();
        let offsets = std::mem::take(&mut t.pending_offsets);
        if commit {
            for (group, offsets) in offsets {
                self.groups.commit_txn_offsets(&group, offsets);
            }
        }
        self.wake_all();
        self.advance_txns(now);
    }

    /// The next transaction timeout, for [`Cluster::poll_timeout`].
    pub(in crate::cluster) fn txn_deadline(&self) -> Option<Instant> {
        self.txns.txns.values().filter_map(|t| t.deadline).min()
    }

    /// Aborts transactions whose timeout passed (bumping the epoch, which fences their
    /// producer, as Kafka does), then writes pending markers and completes the transactions
    /// whose markers are all replicated. Returns whether anything changed.
    pub(in crate::cluster) fn advance_txns(&mut self, now: Instant) -> bool {
        let expired: Vec<String> = self
            .txns
            .txns
            .values()
            .filter(|t| t.state == TxnState::Ongoing && t.deadline.is_some_and(|d| d <= now))
            .map(|t| t.transactional_id.clone())
            .collect();
        let mut changed = false;
        for id in expired {
            tracing::debug!(transactional_id = %id, "cluster: transaction timed out; aborting");
            if let Some(bump) = self.bump_txn_epoch(&id) {
                self.begin_completion(&id, false, bump.marker, now);
                changed = true;
            }
        }
        if !self.txns.any_prepare() {
            return changed;
        }
        let preparing: Vec<String> = self
            .txns
            .txns
            .values()
            .filter(|t| t.state.is_prepare())
            .map(|t| t.transactional_id.clone())
            .collect();
        for id in preparing {
            changed |= self.write_markers(&id, now);
        }
        changed
    }

    /// Writes the missing markers of `id` where the partition has a live leader, and
    /// completes the transaction once every marker is below its high watermark.
    fn write_markers(&mut self, id: &str, now: Instant) -> bool {
        if self.coordinator_for(id) < 0 {
            // No live broker to coordinate: markers wait for one.
            return false;
        }
        let coordinator_epoch = self.txn_coordinator_epoch(id);
        let Some(t) = self.txns.txns.get_mut(id) else {
            return false;
        };
        let (pid, epoch, commit) = (
            t.marker_producer_id,
            t.marker_epoch,
            t.state == TxnState::PrepareCommit,
        );
        let markers = std::mem::take(&mut t.markers);
        let timestamp = self.wall_ms(now);
        let mut changed = false;
        let mut appended = Vec::new();
        let mut remaining = BTreeMap::new();
        for ((topic, index), mut m) in markers {
            let alive: Vec<bool> = self.brokers.iter().map(|b| b.alive).collect();
            let Some(p) = self
                .topics
                .get_mut(&topic)
                .and_then(|t| t.partition_mut(index))
            else {
                // The topic was deleted: nothing to mark.
                changed = true;
                continue;
            };
            let leader_alive = usize::try_from(p.leader)
                .ok()
                .and_then(|i| alive.get(i))
                .copied()
                == Some(true);
            let written = m.offset.filter(|&o| p.is_marker_at(o, pid));
            match written {
                Some(o) if p.high_watermark() > o => {
                    changed = true;
                    continue;
                }
                Some(_) => {}
                None if leader_alive => {
                    match p.append_marker(pid, epoch, commit, coordinator_epoch, timestamp) {
                        Ok(o) => {
                            m.offset = Some(o);
                            appended.push((topic.clone(), index, o + 1));
                            changed = true;
                        }
                        Err(e) => {
                            tracing::warn!(%topic, index, error = %e, "cluster: cannot build a transaction marker");
                        }
                    }
                }
                None => {}
            }
            remaining.insert((topic, index), m);
        }
        for (topic, index, leo) in appended {
            self.after_append(&topic, index, leo, now);
        }
        // Replication may have moved high watermarks at once: drop what is now done.
        remaining.retain(|(topic, index), m| {
            let done = m.offset.is_some_and(|o| {
                self.partition(topic, *index)
                    .is_some_and(|p| p.is_marker_at(o, pid) && p.high_watermark() > o)
            });
            !done
        });
        let Some(t) = self.txns.txns.get_mut(id) else {
            return changed;
        };
        if remaining.is_empty() {
            t.state = if commit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            };
            t.partitions.clear();
            t.groups.clear();
            t.start_time_ms = -1;
            changed = true;
        }
        t.markers = remaining;
        changed
    }
}

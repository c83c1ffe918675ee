//! Fetch sessions (KIP-227): the client half of one broker's session.
//!
//! A session lets a fetch list only the partitions that changed since the previous one. The
//! client keeps, per broker, the session id the broker handed out, the epoch of the next
//! request and the partitions the broker's copy of the session holds (with the fetch offset,
//! byte limit and leader epoch it last sent for each).
//!
//! Contract, as Java's `FetchSessionHandler` has it:
//! - A *full* request lists every wanted partition. With no session it carries session id 0
//!   and epoch 0 (INITIAL): "create a session". With a session the broker may have lost or
//!   that broke, it carries the old id and epoch 0: "close it and create another". When
//!   sessions are disabled it carries id 0 and epoch -1 (FINAL): "no session".
//! - An *incremental* request carries the session id and the next epoch, lists the partitions
//!   that are new or whose fetch offset, byte limit or leader epoch changed, and names in
//!   `forgotten` those the session holds but the client no longer wants.
//! - On a response without a top-level error the session advances: a full request answered
//!   with a non-zero session id opens the session at epoch 1; an incremental one moves to the
//!   next epoch (wrapping from `i32::MAX` to 1). A full request answered with id 0 means the
//!   broker keeps no session: the next request is full again.
//! - `FETCH_SESSION_ID_NOT_FOUND` forgets the session (next: id 0, epoch 0);
//!   `INVALID_FETCH_SESSION_EPOCH`, any other top-level error and a failed request close it
//!   (next: full with the old id, epoch 0).
//! - One request per broker is in flight at a time (the fetcher guarantees it), so a response
//!   always belongs to the epoch the session is at.

use std::collections::BTreeMap;

use super::record::TopicPartition;
use crate::protocol::ErrorCode;

/// Session id meaning "no session".
pub(crate) const INVALID_SESSION_ID: i32 = 0;
/// Epoch of a request that creates a session.
pub(crate) const INITIAL_EPOCH: i32 = 0;
/// Epoch of a sessionless (or session-closing) request.
pub(crate) const FINAL_EPOCH: i32 = -1;

/// What a fetch asks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionFetch {
    /// The offset to read from.
    pub fetch_offset: i64,
    /// `partition_max_bytes`.
    pub max_bytes: i32,
    /// `current_leader_epoch` (-1 when unknown).
    pub leader_epoch: i32,
}

/// One request's worth of session decisions, built by [`FetchSession::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchPlan {
    /// `session_id` of the request.
    pub session_id: i32,
    /// `session_epoch` of the request.
    pub epoch: i32,
    /// Whether the request lists every wanted partition.
    pub full: bool,
    /// The partitions the request lists.
    pub send: BTreeMap<TopicPartition, PartitionFetch>,
    /// The partitions it tells the broker to drop from the session.
    pub forgotten: Vec<TopicPartition>,
    /// Every partition the session holds once the request succeeds.
    pub wanted: BTreeMap<TopicPartition, PartitionFetch>,
}

/// The client side of one broker's fetch session.
#[derive(Debug, Clone)]
pub(crate) struct FetchSession {
    enabled: bool,
    id: i32,
    epoch: i32,
    partitions: BTreeMap<TopicPartition, PartitionFetch>,
}

/// Whether a response's partitions may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionOutcome {
    /// The session advanced; process the partitions.
    Ok,
    /// The session was reset by the broker's error; nothing in the response is usable and the
    /// next request is full.
    Reset,
}

impl FetchSession {
    /// A session handler; `enabled` is `enable_incremental_fetch_sessions`.
    pub fn new(enabled: bool) -> Self {
        FetchSession {
            enabled,
            id: INVALID_SESSION_ID,
            epoch: if enabled { INITIAL_EPOCH } else { FINAL_EPOCH },
            partitions: BTreeMap::new(),
        }
    }

    /// The broker's session id (0 when there is none).
    #[cfg(test)]
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The epoch the next request carries.
    #[cfg(test)]
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the next request can be incremental.
    pub fn is_established(&self) -> bool {
        self.enabled && self.id != INVALID_SESSION_ID && self.epoch > INITIAL_EPOCH
    }

    /// The request for `wanted` (every partition the client wants from this broker now).
    pub fn plan(&self, wanted: BTreeMap<TopicPartition, PartitionFetch>) -> FetchPlan {
        if !self.is_established() {
            return FetchPlan {
                session_id: if self.enabled {
                    self.id
                } else {
                    INVALID_SESSION_ID
                },
                epoch: if self.enabled {
                    INITIAL_EPOCH
                } else {
                    FINAL_EPOCH
                },
                full: true,
                send: wanted.clone(),
                forgotten: Vec::new(),
                wanted,
            };
        }
        let send = wanted
            .iter()
            .filter(|(tp, p)| self.partitions.get(*tp) != Some(*p))
            .map(|(tp, p)| (tp.clone(), *p))
            .collect();
        let forgotten = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains_key(*tp))
            .cloned()
            .collect();
        FetchPlan {
            session_id: self.id,
            epoch: self.epoch,
            full: false,
            send,
            forgotten,
            wanted,
        }
    }

    /// Applies the response to `plan`: its top-level error and session id.
    pub fn handle_response(
        &mut self,
        plan: FetchPlan,
        error: ErrorCode,
        session_id: i32,
    ) -> SessionOutcome {
        if !self.enabled {
            return if error.is_ok() {
                SessionOutcome::Ok
            } else {
                SessionOutcome::Reset
            };
        }
        if error == ErrorCode::FETCH_SESSION_ID_NOT_FOUND {
            self.forget();
            return SessionOutcome::Reset;
        }
        if error.is_err() {
            self.close_existing();
            return SessionOutcome::Reset;
        }
        if plan.full {
            if session_id == INVALID_SESSION_ID {
                // The broker keeps no session (it has no room, or predates KIP-227): every
                // request stays full.
                self.forget();
            } else {
                self.id = session_id;
                self.epoch = 1;
                self.partitions = plan.wanted;
            }
        } else if session_id != self.id {
            // An incremental request answered for another (or no) session: start over.
            self.forget();
            return SessionOutcome::Reset;
        } else {
            self.epoch = next_epoch(self.epoch);
            self.partitions = plan.wanted;
        }
        SessionOutcome::Ok
    }

    /// The request failed (connection lost, timeout): the broker's session state is unknown,
    /// so the next request closes it and starts a new one.
    pub fn handle_error(&mut self) {
        if self.enabled {
            self.close_existing();
        }
    }

    fn forget(&mut self) {
        self.id = INVALID_SESSION_ID;
        self.epoch = INITIAL_EPOCH;
        self.partitions.clear();
    }

    fn close_existing(&mut self) {
        self.epoch = INITIAL_EPOCH;
        self.partitions.clear();
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn pf(offset: i64) -> PartitionFetch {
        PartitionFetch {
            fetch_offset: offset,
            max_bytes: 100,
            leader_epoch: 0,
        }
    }

    fn wanted(parts: &[(i32, i64)]) -> BTreeMap<TopicPartition, PartitionFetch> {
        parts.iter().map(|&(p, o)| (tp(p), pf(o))).collect()
    }

    #[test]
    fn full_then_incremental_with_changes_and_forgotten() {
        let mut s = FetchSession::new(true);
        let plan = s.plan(wanted(&[(0, 0), (1, 0), (2, 0)]));
        assert!(plan.full);
        assert_eq!((plan.session_id, plan.epoch), (0, 0));
        assert_eq!(plan.send.len(), 3);
        assert_eq!(
            s.handle_response(plan, ErrorCode::NONE, 77),
            SessionOutcome::Ok
        );
        assert_eq!((s.id(), s.epoch()), (77, 1));

        // Partition 0 moved on, 1 unchanged, 2 no longer wanted, 3 new.
        let plan = s.plan(wanted(&[(0, 5), (1, 0), (3, 0)]));
        assert!(!plan.full);
        assert_eq!((plan.session_id, plan.epoch), (77, 1));
        assert_eq!(
            plan.send.keys().cloned().collect::<Vec<_>>(),
            vec![tp(0), tp(3)]
        );
        assert_eq!(plan.forgotten, vec![tp(2)]);
        assert_eq!(
            s.handle_response(plan, ErrorCode::NONE, 77),
            SessionOutcome::Ok
        );
        assert_eq!(s.epoch(), 2);

        // Nothing changed: an empty incremental request.
        let plan = s.plan(wanted(&[(0, 5), (1, 0), (3, 0)]));
        assert!(plan.send.is_empty() && plan.forgotten.is_empty() && !plan.full);
    }

    #[test]
    fn session_id_not_found_starts_over_and_bad_epoch_closes_existing() {
        let mut s = FetchSession::new(true);
        let plan = s.plan(wanted(&[(0, 0)]));
        s.handle_response(plan, ErrorCode::NONE, 9);
        let plan = s.plan(wanted(&[(0, 1)]));
        assert_eq!(
            s.handle_response(plan, ErrorCode::INVALID_FETCH_SESSION_EPOCH, 0),
            SessionOutcome::Reset
        );
        let plan = s.plan(wanted(&[(0, 1)]));
        assert!(plan.full);
        assert_eq!(
            (plan.session_id, plan.epoch),
            (9, 0),
            "close 9, open another"
        );
        assert_eq!(
            s.handle_response(plan, ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 0),
            SessionOutcome::Reset
        );
        let plan = s.plan(wanted(&[(0, 1)]));
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
        s.handle_response(plan, ErrorCode::NONE, 10);
        assert!(s.is_established());
    }

    #[test]
    fn failures_and_sessionless_brokers_fall_back_to_full_requests() {
        let mut s = FetchSession::new(true);
        let plan = s.plan(wanted(&[(0, 0)]));
        s.handle_response(plan, ErrorCode::NONE, 0);
        assert!(!s.is_established(), "broker kept no session");
        assert!(s.plan(wanted(&[(0, 0)])).full);

        let plan = s.plan(wanted(&[(0, 0)]));
        s.handle_response(plan, ErrorCode::NONE, 5);
        s.handle_error();
        let plan = s.plan(wanted(&[(0, 0)]));
        assert_eq!((plan.session_id, plan.epoch, plan.full), (5, 0, true));

        // A reply for another session to an incremental request resets.
        s.handle_response(plan, ErrorCode::NONE, 5);
        let plan = s.plan(wanted(&[(0, 3)]));
        assert_eq!(
            s.handle_response(plan, ErrorCode::NONE, 6),
            SessionOutcome::Reset
        );
        assert!(!s.is_established());
    }

    #[test]
    fn disabled_sessions_send_final_epoch_full_requests() {
        let mut s = FetchSession::new(false);
        for _ in 0..3 {
            let plan = s.plan(wanted(&[(0, 0), (1, 0)]));
            assert_eq!((plan.session_id, plan.epoch, plan.full), (0, -1, true));
            assert_eq!(
                s.handle_response(plan, ErrorCode::NONE, 0),
                SessionOutcome::Ok
            );
        }
    }

    #[test]
    fn epoch_wraps_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(1), 2);
    }
}

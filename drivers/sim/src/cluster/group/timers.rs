//! Timers: the join phase, the SyncGroup deadline, member sessions and pending member ids.
//! Due timers fire in deadline order (ties by group id, then timer kind, then member id).

use std::time::Instant;

use super::rebalance::Ctx;
use super::state::{Group, GroupState};
use super::GroupCoordinator;

/// Which timer of a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The join phase (initial delay or rebalance timeout).
    Join,
    /// Members that have not sent SyncGroup by the rebalance timeout.
    Sync,
    /// A member's session (or a new member's join timeout).
    Session(String),
    /// A member id handed out with `MEMBER_ID_REQUIRED` that never came back.
    Pending(String),
}

/// A [`Timer`] naming its member by reference, ordered as [`Timer`] is: finding the earliest
/// timer clones no member id (that search runs at every step of a simulation, through
/// `Cluster::poll_timeout`, and cloning every member's id was most of its cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef<'a> {
    Join,
    Sync,
    Session(&'a str),
    Pending(&'a str),
}

impl TimerRef<'_> {
    fn to_owned(self) -> Timer {
        match self {
            TimerRef::Join => Timer::Join,
            TimerRef::Sync => Timer::Sync,
            TimerRef::Session(id) => Timer::Session(id.to_owned()),
            TimerRef::Pending(id) => Timer::Pending(id.to_owned()),
        }
    }
}

/// Upper bound on timers fired by one `handle_timeout` call, against any livelock bug.
const MAX_FIRED_PER_CALL: usize = 1_000_000;

impl Group {
    /// This group's earliest timer.
    fn next_timer(&self) -> Option<(Instant, TimerRef<'_>)> {
        let join = self.join_timer.map(|t| (t.deadline(), TimerRef::Join));
        let sync = self.sync_timer.map(|(d, _)| (d, TimerRef::Sync));
        let sessions = self.members.iter().filter_map(|m| {
            m.heartbeat_deadline
                .map(|d| (d, TimerRef::Session(m.id.as_str())))
        });
        let pending = self
            .pending_members
            .iter()
            .map(|(id, d)| (*d, TimerRef::Pending(id.as_str())));
        join.into_iter()
            .chain(sync)
            .chain(sessions)
            .chain(pending)
            .min()
    }

    /// Fires `timer`.
    fn fire(&mut self, timer: Timer, ctx: &mut Ctx<'_>) {
        match timer {
            Timer::Join => self.join_timer_expired(ctx),
            Timer::Sync => self.sync_expired(ctx),
            Timer::Session(id) => self.session_expired(&id, ctx),
            Timer::Pending(id) => {
                tracing::debug!(group = %self.id, member = %id, "pending member id expired");
                self.remove_pending_member_and_update_group(&id, ctx);
            }
        }
    }

    /// Kafka's `onExpirePendingSync`: members that did not send SyncGroup in time are removed
    /// and the group rebalances.
    fn sync_expired(&mut self, ctx: &mut Ctx<'_>) {
        let Some((_, generation)) = self.sync_timer.take() else {
            return;
        };
        if generation != self.generation
            || !matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || self.pending_sync.is_empty()
        {
            return;
        }
        let late: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
        tracing::debug!(group = %self.id, ?late, "removing members that did not sync in time");
        for id in &late {
            self.remove_member(id);
        }
        self.maybe_prepare_rebalance(ctx);
    }

    /// Kafka's `onExpireHeartbeat`: a member that neither heartbeat nor waits on a rebalance
    /// is removed (a new member whose join never completed too).
    fn session_expired(&mut self, id: &str, ctx: &mut Ctx<'_>) {
        let Some(member) = self.member_mut(id) else {
            return;
        };
        member.heartbeat_deadline = None;
        if member.excused_from_heartbeat() {
            // Its session restarts when the rebalance hands it something.
            return;
        }
        tracing::debug!(group = %self.id, member = %id, "member session expired");
        self.remove_member_and_update_group(id, ctx);
    }
}

impl GroupCoordinator {
    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has something to
    /// do, `None` if nothing is scheduled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.groups
            .values()
            .filter_map(|g| g.next_timer().map(|(d, _)| d))
            .min()
    }

    /// Fires every timer due at `now`, in deadline order. Answers to parked requests that this
    /// produces come out of [`take_completed`](Self::take_completed).
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_FIRED_PER_CALL {
            let due = self
                .groups
                .iter()
                .filter_map(|(id, g)| g.next_timer().map(|(d, t)| (d, id, t)))
                .filter(|(d, _, _)| *d <= now)
                .min();
            let Some((_, group_id, timer)) = due else {
                return;
            };
            let (group_id, timer) = (group_id.clone(), timer.to_owned());
            let Some(group) = self.groups.get_mut(&group_id) else {
                return;
            };
            let mut ctx = Ctx {
                config: &self.config,
                now,
                out: &mut self.completed,
            };
            group.fire(timer, &mut ctx);
        }
        tracing::error!(
            "group coordinator: too many timers due at one instant; deferring the rest"
        );
    }
}

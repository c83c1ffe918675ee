//! A member's reconciliation towards its target assignment (Kafka's
//! `CurrentAssignmentBuilder`): revoke first, with the epoch unchanged; assign (and move to the
//! target epoch) only partitions no other member still owns.

use std::collections::BTreeSet;

use kafkit_core::codec::Uuid;

use super::{Assignment, Member};

/// Where a member is in its reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// At its target assignment, or moving to it with nothing to wait for.
    Stable,
    /// It must acknowledge the revocation of `pending_revocation` before going on.
    UnrevokedPartitions,
    /// At the target epoch, but some target partitions are still owned by others.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// Whether `owned` (what the member says it owns) still holds any of `revoking`.
fn still_owns(owned: &Assignment, revoking: &Assignment) -> bool {
    revoking.iter().any(|(t, parts)| {
        owned
            .get(t)
            .is_some_and(|o| parts.iter().any(|p| o.contains(p)))
    })
}

/// Moves `member` one step towards `target` at `target_epoch`. `owned` is what its heartbeat
/// reported owning (`None` if it did not say); `taken(topic, partition)` says whether another
/// member still owns a partition.
pub fn reconcile(
    member: &mut Member,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    taken: &dyn Fn(Uuid, i32) -> bool,
) {
    match member.state {
        MemberState::UnrevokedPartitions => {
            // Without its owned partitions, the member cannot have acknowledged anything.
            if owned.is_some_and(|o| !still_owns(o, &member.pending_revocation)) {
                let epoch = member.member_epoch;
                next_assignment(member, epoch, target_epoch, target, owned, taken);
            }
        }
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            if member.member_epoch != target_epoch
                || member.state == MemberState::UnreleasedPartitions
            {
                let epoch = member.member_epoch;
                next_assignment(member, epoch, target_epoch, target, owned, taken);
            }
        }
    }
}

fn next_assignment(
    member: &mut Member,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    taken: &dyn Fn(Uuid, i32) -> bool,
) {
    let topics: BTreeSet<Uuid> = target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    let mut kept = Assignment::new();
    let mut revoking = Assignment::new();
    let mut adding = Assignment::new();
    let mut unreleased = false;
    let empty = BTreeSet::new();
    for topic in topics {
        let want = target.get(&topic).unwrap_or(&empty);
        let has = member.assigned.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = has.intersection(want).copied().collect();
        let revoke: BTreeSet<i32> = has.difference(&keep).copied().collect();
        let mut add = BTreeSet::new();
        for &p in want.difference(&keep) {
            if taken(topic, p) {
                unreleased = true;
            } else {
                add.insert(p);
            }
        }
        if !keep.is_empty() {
            kept.insert(topic, keep);
        }
        if !revoke.is_empty() {
            revoking.insert(topic, revoke);
        }
        if !add.is_empty() {
            adding.insert(topic, add);
        }
    }
    // A member that already reports not owning the partitions to revoke needs no round trip.
    let must_revoke = !revoking.is_empty() && owned.is_none_or(|o| still_owns(o, &revoking));
    if must_revoke {
        member.state = MemberState::UnrevokedPartitions;
        set_epoch(member, member_epoch);
        member.assigned = kept;
        member.pending_revocation = revoking;
        return;
    }
    for (topic, parts) in adding {
        kept.entry(topic).or_default().extend(parts);
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    set_epoch(member, target_epoch);
    member.assigned = kept;
    member.pending_revocation = Assignment::new();
    member.revocation_deadline = None;
}

/// Moves the member to `epoch`, remembering the one before (a heartbeat whose answer was lost
/// comes back with it).
fn set_epoch(member: &mut Member, epoch: i32) {
    if member.member_epoch != epoch {
        member.previous_member_epoch = member.member_epoch;
        member.member_epoch = epoch;
    }
}

//! Member sessions and revocation deadlines, on the cluster's clock.

use std::time::Instant;

use super::ConsumerGroups;

impl ConsumerGroups {
    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has something to
    /// do: a session or a revocation deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.groups
            .values()
            .flat_map(|g| g.members.values())
            .flat_map(|m| std::iter::once(m.session_deadline).chain(m.revocation_deadline))
            .min()
    }

    /// Removes the members whose session expired, or who did not revoke partitions within
    /// their rebalance timeout, as of `now`; the others are reassigned their partitions.
    pub fn handle_timeout(&mut self, now: Instant) {
        for group in self.groups.values_mut() {
            let due: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
                })
                .map(|m| m.id.clone())
                .collect();
            for id in due {
                tracing::debug!(group = %group.id, member = %id, "consumer group member expired");
                group.remove_member(&id);
            }
        }
    }
}
